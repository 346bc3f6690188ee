// The extension's view of the engine: the Engine interface every engine implements, the options of
// its methods, and `call`, the one function every engine is built on (engine.ts, engineFacade.ts).
import type {
  ChangesResult,
  DamageInfo,
  DiffOpResult,
  DiskInfo,
  ForgetOpResult,
  Inventory,
  ListDirResult,
  ListResult,
  OpName,
  OpParams,
  OpResult,
  ProgressEvent,
  PruneOpResult,
  RestoreFilesResult,
  RestoreOpResult,
  RetentionRules,
  SnapshotOpResult,
  SnapshotPlan,
  SnapshotSummary,
  VerifyOpResult,
} from '../imaging/protocol';

type RetentionPolicy = RetentionRules;

/** What we need of vscode.CancellationToken (which satisfies it). */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: (e: unknown) => unknown): { dispose(): unknown };
}

export type ProgressListener = (ev: ProgressEvent) => void;

export interface SnapshotOptions {
  repo: string;
  source: string;
  label: string;
  compressionLevel?: number;
  /** Read every used block, not only what changed since the previous snapshot (devsnap.fullReadEvery). */
  fullRead?: boolean;
}
// Results are the engine's own protocol types (imaging/protocol.ts), whichever engine produced them.
export type SnapshotResult = SnapshotOpResult;
export interface VerifyOptions {
  repo: string;
  /** Verify one snapshot; all of them when omitted. */
  id?: string;
}
export type Damage = DamageInfo;
export type VerifyResult = VerifyOpResult;
export interface RestoreOptions {
  repo: string;
  id: string;
  target: string;
  partition?: number;
  dryRun?: boolean;
}
export type RestoreResult = RestoreOpResult;
export type { RetentionPolicy };
export type ForgetOptions = { repo: string; ids: string[] } | { repo: string; policy: RetentionPolicy };
export type ForgetResult = ForgetOpResult;
export type PruneResult = PruneOpResult;
export type DiffResult = DiffOpResult;

/** The operations the extension performs on disks and repositories. */
export interface Engine {
  /** Any operation of the engine by name (imaging/protocol/ops.ts), its result checked: what a new command calls. */
  call: EngineCall;
  listDisks(token?: CancellationLike): Promise<DiskInfo[]>;
  listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]>;
  /** The snapshots and, listed apart, those whose manifest is damaged (the Snapshots view shows both). */
  listRepository(repo: string, token?: CancellationLike): Promise<ListResult>;
  showSnapshot(repo: string, id: string): Promise<SnapshotSummary>;
  snapshot(opts: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult>;
  /** What a snapshot of `source` would do (how it reaches one point in time, the pause, or why it would be refused); changes nothing. */
  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan>;
  verify(opts: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult>;
  restore(opts: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult>;
  forget(opts: ForgetOptions): Promise<ForgetResult>;
  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult>;
  label(repo: string, id: string, text: string): Promise<SnapshotSummary>;
  pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary>;
  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult>;
}

export interface ChangesOptions {
  repo: string;
  a: string;
  b: string;
  /** The partition to compare (default: the root, the largest ext partition). */
  partition?: number;
  /** Only this directory (or file). */
  path?: string;
  offset?: number;
  limit?: number;
}
export type { ChangesResult, ListDirResult };
export interface RestoreFilesOptions {
  repo: string;
  id: string;
  paths: string[];
  /** Destination folder; '/' (or inPlace) puts each path back at its full path below it. */
  to: string;
  inPlace?: boolean;
  partition?: number;
  dryRun?: boolean;
}

/**
 * Looking inside snapshots and restoring files from them (the CLI's inventory, changes, ls, cat and
 * restore-files). Separate from Engine: the helper serves only restoreFiles of these.
 */
export interface SnapshotFilesEngine {
  inventory(repo: string, id: string, partition?: number, token?: CancellationLike): Promise<Inventory>;
  changes(opts: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult>;
  listDir(repo: string, id: string, dir: string, partition?: number, token?: CancellationLike): Promise<ListDirResult>;
  /** A file's content; rejects with BAD_SOURCE past `maxBytes` (default 64 MiB). */
  readFile(repo: string, id: string, file: string, opts?: { partition?: number; maxBytes?: number }, token?: CancellationLike): Promise<Buffer>;
  restoreFiles(opts: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult>;
}

export interface CallOptions {
  progress?: ProgressListener;
  token?: CancellationLike;
}

/** Runs one operation of the engine; rejects with an EngineError. */
export type EngineCall = <K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions) => Promise<OpResult<K>>;
