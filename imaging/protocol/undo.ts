// Undoing an upgrade (imaging/files/undo.ts): its request and its result.
import * as v from 'valibot';
import { absolutePath, bool, count, snapshotName } from './common';
import { ChangeKind } from './files';
import { RepoRequest } from './requests';

/** Left as they are unless `everything`: what users and services write all the time, not what an upgrade installs. */
export const UNDO_DEFAULT_EXCLUDES: readonly string[] = ['/home', '/root', '/tmp', '/var/tmp', '/var/log', '/var/cache', '/lost+found'];

const PATHS = 'must be a list of at most 1000 absolute paths inside the snapshot';
const InSnapshot = v.pipe(
  absolutePath(),
  v.check((p) => !p.split('/').includes('..'), "must not go through '..'"),
);

export const UndoRequest = v.strictObject({
  ...RepoRequest.entries,
  /** The snapshot taken before the upgrade: what is put back. */
  before: snapshotName(),
  /** The snapshot taken after it: what the target must still hold for a path to be undone. */
  after: snapshotName(),
  /** The partition whose filesystem is undone (default: the root, the largest ext partition). */
  partition: v.optional(count()),
  /** Where that filesystem is mounted ('/' for the running system). */
  target: absolutePath(),
  /** List what would be done; change nothing. */
  dryRun: v.optional(bool()),
  /** Undo paths changed again since `after` too, and onto a target not confirmed as the snapshots' filesystem. */
  force: v.optional(bool()),
  /** Compare contents even where size and mtime are equal. */
  deep: v.optional(bool()),
  /** Also undo below UNDO_DEFAULT_EXCLUDES. */
  everything: v.optional(bool()),
  /** More paths (and what is below them) to leave as they are. */
  exclude: v.optional(v.pipe(v.array(InSnapshot, PATHS), v.maxLength(1000, PATHS))),
});
export type UndoRequest = v.InferOutput<typeof UndoRequest>;

/**
 * What is done to one path: 'restore' (put back as in `before`), 'remove' (the upgrade added it),
 * 'unchanged' (already as in `before`), 'conflict' (changed since `after`: refused unless forced),
 * 'skip' (not undone, `reason` says why).
 */
export const UndoAction = v.picklist(['restore', 'remove', 'unchanged', 'conflict', 'skip']);
export type UndoAction = v.InferOutput<typeof UndoAction>;

export const UndoEntry = v.object({
  path: v.string(),
  /** What the upgrade did: a ChangeKind, or 'replaced' when the path changed type. */
  change: v.picklist([...ChangeKind.options, 'replaced']),
  /** The entry's type before the upgrade (after it, for an added path). */
  type: v.picklist(['file', 'dir', 'symlink', 'other']),
  action: UndoAction,
  /** Bytes of content to write back (0 for what is not restored). */
  size: v.number(),
  reason: v.optional(v.string()),
});
export type UndoEntry = v.InferOutput<typeof UndoEntry>;

export const UndoResult = v.object({
  before: v.string(),
  after: v.string(),
  partition: v.number(),
  target: v.string(),
  dryRun: v.boolean(),
  /** Paths left as they were: the defaults (unless `everything`), `exclude`, the repository when it is on the target. */
  excluded: v.array(v.string()),
  entries: v.array(UndoEntry),
  totals: v.object({ restore: v.number(), remove: v.number(), unchanged: v.number(), conflict: v.number(), skip: v.number() }),
  bytesToWrite: v.number(),
  bytesWritten: v.number(),
  /** Plain sentences: what undoing files cannot put back (a running kernel, loaded firmware, the boot loader, other filesystems). */
  cannotUndo: v.array(v.string()),
  warnings: v.array(v.string()),
});
export type UndoResult = v.InferOutput<typeof UndoResult>;
