// The contract of every engine operation: its name, its parameters and its result, as schemas.
// The engine implements each one once (imaging/ops/registry.ts); the CLI, the user-mode engine
// service (`devsnap serve --stdio`) and the elevated helper serve them; the extension calls them
// by name (extension/engineClient.ts) and checks each result against the schema here.
import * as v from 'valibot';
import { DisksResult } from './disks';
import { ChangesResult, Inventory, ListDirResult, ReadFileResult } from './files';
import {
  ChangesRequest,
  CheckRequest,
  DiffRequest,
  EmptyRequest,
  ForgetRequest,
  InventoryRequest,
  LabelRequest,
  ListDirRequest,
  PinRequest,
  PlanSnapshotRequest,
  PruneRequest,
  ReadFileRequest,
  RepoRequest,
  RestoreFilesRequest,
  RestoreRequest,
  ShowRequest,
  SnapshotRequest,
  VerifyRequest,
} from './requests';
import { KitStatus, KitStatusRequest, KitWriteRequest } from './recovery';
import { CheckOpResult, DiffOpResult, ForgetOpResult, PruneOpResult, RestoreFilesResult, RestoreOpResult, VerifyOpResult } from './results';
import { ListResult, ShowResult, SnapshotOpResult, SnapshotPlan, SnapshotRefResult } from './snapshots';
import { UndoRequest, UndoResult } from './undo';
import { AutoInstallRequest, AutoRemoveRequest, AutoStatus, AutoStatusRequest, InstallResult, RemoveResult } from './automation';
import { InitRequest, InitResult, UsageRequest, UsageResult } from './usage';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Schema = v.GenericSchema<any, any>;
/**
 * How a path parameter is used, which decides whether the operation needs root: 'read' and 'write'
 * for a source or a target (a block device always needs the elevated helper), 'repository' for the
 * repository folder (it needs root only when the user cannot read and write it).
 */
export type PathUse = 'read' | 'write' | 'repository';

/**
 * `elevate`: the parameters whose paths decide whether the operation runs in the elevated helper
 * (when any of them needs root) or as the user; null: always as the user (it needs no root, and the
 * helper does not serve it). restoreFiles decides per destination (extension/engineClient.ts).
 */
const op = <P extends Schema, R extends Schema>(params: P, result: R, elevate: Partial<Record<keyof v.InferOutput<P>, PathUse>> | null) => ({ params, result, elevate });
const inRepo = { repo: 'repository' } as const;

export const OPS = {
  listDisks: op(EmptyRequest, DisksResult, null),
  listSnapshots: op(RepoRequest, ListResult, inRepo),
  show: op(ShowRequest, ShowResult, inRepo),
  snapshot: op(SnapshotRequest, SnapshotOpResult, { source: 'read', ...inRepo }),
  // The same route as the snapshot itself: the plan reads the source's mounts and partition table.
  planSnapshot: op(PlanSnapshotRequest, SnapshotPlan, { source: 'read', ...inRepo }),
  restore: op(RestoreRequest, RestoreOpResult, { target: 'write', ...inRepo }),
  verify: op(VerifyRequest, VerifyOpResult, inRepo),
  check: op(CheckRequest, CheckOpResult, inRepo),
  diff: op(DiffRequest, DiffOpResult, inRepo),
  forget: op(ForgetRequest, ForgetOpResult, inRepo),
  prune: op(PruneRequest, PruneOpResult, inRepo),
  label: op(LabelRequest, SnapshotRefResult, inRepo),
  pin: op(PinRequest, SnapshotRefResult, inRepo),
  restoreFiles: op(RestoreFilesRequest, RestoreFilesResult, inRepo),
  inventory: op(InventoryRequest, Inventory, null),
  listDir: op(ListDirRequest, ListDirResult, null),
  readFile: op(ReadFileRequest, ReadFileResult, null),
  changes: op(ChangesRequest, ChangesResult, null),
  // Writes in place below `target` (the running system's '/' needs root); reads the repository.
  undo: op(UndoRequest, UndoResult, { target: 'write', ...inRepo }),
  // Reads manifests and the index only: never needs root beyond reading the repository.
  usage: op(UsageRequest, UsageResult, null),
  // Creates a repository in a folder of the user's (an existing one is opened, its password checked).
  init: op(InitRequest, InitResult, null),
  // Automatic snapshots: install and remove write below `root` (the system's '/' needs root; pass it
  // always, the route is decided from it); the status reads files everyone may read.
  autoInstall: op(AutoInstallRequest, InstallResult, { root: 'write' }),
  autoRemove: op(AutoRemoveRequest, RemoveResult, { root: 'write' }),
  autoStatus: op(AutoStatusRequest, AutoStatus, null),
  // The recovery kit: written into the user's repository or a folder of theirs, as the user.
  kitWrite: op(KitWriteRequest, KitStatus, null),
  kitStatus: op(KitStatusRequest, KitStatus, null),
};

export type OpName = keyof typeof OPS;
export type OpParams<K extends OpName> = v.InferOutput<(typeof OPS)[K]['params']>;
export type OpResult<K extends OpName> = v.InferOutput<(typeof OPS)[K]['result']>;
export const OP_NAMES = Object.keys(OPS) as OpName[];
export const isOpName = (s: unknown): s is OpName => typeof s === 'string' && Object.prototype.hasOwnProperty.call(OPS, s);

/** Where an issue is: `paths[2]`, `policy.keepDaily`. */
function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  }
  return out;
}

/**
 * A schema's failure as one sentence, from its first problem: `unknown field "x"`, `the field "x"
 * is missing`, or `"paths[2]" must be ...` (schemas in requests.ts word their messages as predicates).
 */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const first = issues[0];
  if (!first) return 'invalid';
  const where = issuePath(first);
  const unknownKey = first.kind === 'schema' && first.expected === 'never' && first.path?.length;
  if (unknownKey && first.path!.length === 1) return `unknown field "${where}"`;
  if (first.received === 'undefined' && where) return `the field "${where}" is missing`;
  return where ? `"${where}" ${first.message}` : first.message;
}

/** Checks a value against a schema: the typed value, or the sentence that says what is wrong. */
export function check<S extends Schema>(schema: S, value: unknown): { ok: true; value: v.InferOutput<S> } | { ok: false; problem: string } {
  const r = v.safeParse(schema, value, { abortEarly: true });
  return r.success ? { ok: true, value: r.output } : { ok: false, problem: describeIssues(r.issues) };
}
