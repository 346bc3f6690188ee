// The parameters of each engine operation (imaging/ops/registry.ts). Strict objects: an unknown
// field is refused, so a typo (`allowSystemdisk`) cannot silently fall back to the default.
import * as v from 'valibot';
import { bool, count, snapshotName, text } from './common';
import { MAX_RESTORE_PATHS } from './limits';

/** A path inside a snapshot's filesystem: absolute or relative to its root, never through '..'. */
export function checkSnapshotPath(p: string): string | null {
  if (typeof p !== 'string' || !p.length) return 'an empty path';
  if (p.includes('\0')) return `a path with a NUL byte`;
  if (p.split('/').includes('..')) return `${JSON.stringify(p)}: '..' is not allowed (give the path from the snapshot's root)`;
  return null;
}
const PATH_IN_SNAPSHOT = 'must be a path inside the snapshot of at most 4096 characters';
const SnapshotPath = v.pipe(
  v.string(PATH_IN_SNAPSHOT),
  v.maxLength(4096, PATH_IN_SNAPSHOT),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? checkSnapshotPath(dataset.value) : null;
    if (problem) addIssue({ message: `is ${problem}` });
  }),
);

const Path = v.pipe(text(), v.minLength(1, 'must be a path'));
const LEVEL = 'must be a whole number from 1 to 19';
const Partition = v.optional(count());

/** Keys for a repository in an S3 bucket (`repo` "s3:https://…"); without them the SDK's chain (environment, ~/.aws) is used, except in the elevated helper, which never uses root's. */
export const S3Credentials = v.strictObject({
  accessKeyId: v.pipe(text(), v.minLength(1, 'must not be empty')),
  secretAccessKey: v.pipe(text(), v.minLength(1, 'must not be empty')),
  sessionToken: v.optional(text()),
});
export type S3Credentials = v.InferOutput<typeof S3Credentials>;

export const RepoRequest = v.strictObject({
  /** A folder, or "s3:http[s]://host[:port]/bucket[/prefix]". */
  repo: Path,
  /** Password of an encrypted repository. */
  password: v.optional(text()),
  s3Credentials: v.optional(S3Credentials),
});
export type RepoRequest = v.InferOutput<typeof RepoRequest>;
const repo = RepoRequest.entries;

export const EmptyRequest = v.strictObject({});

export const SnapshotRequest = v.strictObject({
  ...repo,
  source: Path,
  label: v.optional(text()),
  compressionLevel: v.optional(v.pipe(v.number(LEVEL), v.integer(LEVEL), v.minValue(1, LEVEL), v.maxValue(19, LEVEL))),
  freeze: v.optional(bool()),
  /** Read a mounted read-write source live, without a point in time. */
  fuzzy: v.optional(bool()),
  /** Read every used block, not only what changed since the parent snapshot. */
  fullRead: v.optional(bool()),
});
export type SnapshotRequest = v.InferOutput<typeof SnapshotRequest>;

export const PlanSnapshotRequest = v.strictObject({ ...repo, source: Path });
export type PlanSnapshotRequest = v.InferOutput<typeof PlanSnapshotRequest>;

export const ShowRequest = v.strictObject({ ...repo, snapshot: snapshotName() });
export type ShowRequest = v.InferOutput<typeof ShowRequest>;

export const RestoreRequest = v.strictObject({
  ...repo,
  snapshot: snapshotName(),
  target: Path,
  partition: Partition,
  dryRun: v.optional(bool()),
  /** A whole disk only: new disk and partition GUIDs and filesystem UUIDs, and the restored system's boot files updated to them. */
  newIds: v.optional(bool()),
});
export type RestoreRequest = v.InferOutput<typeof RestoreRequest>;

export const VerifyRequest = v.strictObject({
  ...repo,
  /** All snapshots when omitted. */
  snapshot: v.optional(snapshotName()),
  /** Also compare the snapshot (one, required) with this disk as it is now (snapshot/verify-disk.ts). */
  against: v.optional(Path),
});
export type VerifyRequest = v.InferOutput<typeof VerifyRequest>;

export const CheckRequest = v.strictObject({ ...repo, readData: v.optional(bool()) });
export type CheckRequest = v.InferOutput<typeof CheckRequest>;

export const DiffRequest = v.strictObject({ ...repo, a: snapshotName(), b: snapshotName() });
export type DiffRequest = v.InferOutput<typeof DiffRequest>;

export const RetentionRules = v.strictObject(
  {
    keepLast: v.optional(count()),
    keepDaily: v.optional(count()),
    keepWeekly: v.optional(count()),
    keepMonthly: v.optional(count()),
  },
  'is not a retention rule',
);
export type RetentionRules = v.InferOutput<typeof RetentionRules>;

const IDS = 'must be a list of snapshot ids';
export const ForgetRequest = v.strictObject({
  ...repo,
  /** Snapshots to remove; when empty or omitted, `policy` decides. */
  ids: v.optional(v.pipe(v.array(snapshotName(), IDS), v.maxLength(10000, IDS))),
  policy: v.optional(RetentionRules),
  dryRun: v.optional(bool()),
  prune: v.optional(bool()),
});
export type ForgetRequest = v.InferOutput<typeof ForgetRequest>;

export const PruneRequest = v.strictObject({ ...repo, dryRun: v.optional(bool()) });
export type PruneRequest = v.InferOutput<typeof PruneRequest>;

export const LabelRequest = v.strictObject({ ...repo, snapshot: snapshotName(), label: text() });
export type LabelRequest = v.InferOutput<typeof LabelRequest>;

export const PinRequest = v.strictObject({ ...repo, snapshot: snapshotName(), pinned: bool() });
export type PinRequest = v.InferOutput<typeof PinRequest>;

const PATHS = `must be a list of 1 to ${MAX_RESTORE_PATHS} paths`;
/** Restoring selected files and folders of a snapshot's filesystem (imaging/files/file-restore.ts). */
export const RestoreFilesRequest = v.strictObject({
  ...repo,
  snapshot: snapshotName(),
  /** The partition whose filesystem is read (default: the root, the largest ext partition). */
  partition: Partition,
  /** Paths inside the snapshot's filesystem: absolute, or relative to its root; no '..'. */
  paths: v.pipe(v.array(SnapshotPath, PATHS), v.minLength(1, PATHS), v.maxLength(MAX_RESTORE_PATHS, PATHS)),
  /** The folder to restore into; with inPlace each path goes below it at its full path ('/' = the original place). */
  target: Path,
  /** Default: true when target is '/'. */
  inPlace: v.optional(bool()),
  dryRun: v.optional(bool()),
  /** Compare contents (not only size and mtime) to decide that an existing file is unchanged. */
  deep: v.optional(bool()),
});
export type RestoreFilesRequest = v.InferOutput<typeof RestoreFilesRequest>;

/** Looking inside one snapshot's filesystem (default partition: the root, the largest ext one). */
export const InventoryRequest = v.strictObject({ ...repo, snapshot: snapshotName(), partition: Partition });
export type InventoryRequest = v.InferOutput<typeof InventoryRequest>;

export const ListDirRequest = v.strictObject({ ...repo, snapshot: snapshotName(), path: v.optional(SnapshotPath), partition: Partition });
export type ListDirRequest = v.InferOutput<typeof ListDirRequest>;

export const ReadFileRequest = v.strictObject({
  ...repo,
  snapshot: snapshotName(),
  path: SnapshotPath,
  partition: Partition,
  /** Refused (BAD_SOURCE) past this size; default 64 MiB. */
  maxBytes: v.optional(v.pipe(count(), v.maxValue(256 << 20))),
});
export type ReadFileRequest = v.InferOutput<typeof ReadFileRequest>;

export const ChangesRequest = v.strictObject({
  ...repo,
  a: snapshotName(),
  b: snapshotName(),
  partition: Partition,
  /** Only this directory (or file). */
  path: v.optional(SnapshotPath),
  offset: v.optional(count()),
  limit: v.optional(v.pipe(count(), v.maxValue(100000))),
  /** Compare contents even where size and mtime are equal. */
  deep: v.optional(bool()),
  /** Directory depth of the per-directory summary (default 2). */
  depth: v.optional(v.pipe(count(), v.maxValue(64))),
});
export type ChangesRequest = v.InferOutput<typeof ChangesRequest>;
