// How the extension runs the imaging engine. Everything else in the extension talks to the `Engine`
// interface below. Every engine is an `EngineFacade` over one function, `call(op, params, options)`,
// which runs one operation of the engine's registry (imaging/protocol/ops.ts) and returns its result
// checked against the operation's schema:
//   ServedEngine (servedEngine.ts)  the user-mode engine service, one long-lived process per window
//   HelperEngine (helperClient.ts)  the elevated helper, one per window, started on first need
//   RoutingEngine (below)           per call, the helper when a path of the request needs root, else the user's
//
// No `vscode` import here: the unit tests run this module under plain node, and the cancellation
// token is the structural subset of vscode.CancellationToken that we need.
import * as fs from 'fs';
import * as path from 'path';
import { OPS } from '../imaging/protocol';
import type {
  ChangesResult,
  DamageInfo,
  DiffOpResult,
  DiskInfo,
  ErrorCode,
  ForgetOpResult,
  Inventory,
  ListDirResult,
  ListResult,
  OpName,
  OpParams,
  OpResult,
  PathUse,
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

/** An engine that can restore files (the user's, and the helper as root). */
export function canRestoreFiles(e: unknown): e is Pick<SnapshotFilesEngine, 'restoreFiles'> {
  return !!e && typeof (e as Partial<SnapshotFilesEngine>).restoreFiles === 'function';
}

export function hasSnapshotFiles(e: unknown): e is SnapshotFilesEngine {
  const o = e as Partial<SnapshotFilesEngine> | null;
  return !!o && typeof o.changes === 'function' && typeof o.readFile === 'function' && typeof o.restoreFiles === 'function';
}

/** An engine failure meant for the user (the engine's ErrorInfo), plus the exit code. */
export class EngineError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly hint?: string,
    public readonly exitCode?: number | null,
  ) {
    super(message);
    this.name = 'EngineError';
  }
  get cancelled(): boolean {
    return this.code === 'CANCELLED';
  }
  /** "message hint" for a notification. */
  toUserMessage(): string {
    return this.hint ? `${this.message} ${this.hint}` : this.message;
  }
}

/**
 * Splits a byte stream into lines, calling `onLine` per complete line; `flush()` delivers a
 * trailing line without a newline.
 */
export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: string): void {
    const text = this.rest + chunk;
    const lines = text.split(/\r?\n/);
    this.rest = lines.pop() ?? '';
    for (const line of lines) if (line.length) this.onLine(line);
  }
  flush(): void {
    if (this.rest.length) this.onLine(this.rest);
    this.rest = '';
  }
}

/** True when a policy keeps a bounded number of snapshots (i.e. retention is switched on). */
export function retentionEnabled(p: RetentionPolicy): boolean {
  return [p.keepLast, p.keepDaily, p.keepWeekly, p.keepMonthly].some((n) => (n ?? 0) > 0);
}

export interface CallOptions {
  progress?: ProgressListener;
  token?: CancellationLike;
}

/** Runs one operation of the engine; rejects with an EngineError. */
export type EngineCall = <K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions) => Promise<OpResult<K>>;

const partition = (p: number | undefined) => (p !== undefined ? { partition: p } : {});
const callOptions = (progress?: ProgressListener, token?: CancellationLike): CallOptions => ({ ...(progress ? { progress } : {}), ...(token ? { token } : {}) });
function noop(): void {}

/** The extension's Engine on top of `call`: the one place where its methods become operations. */
export abstract class EngineFacade implements Engine, SnapshotFilesEngine {
  abstract call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>>;

  async listDisks(token?: CancellationLike): Promise<DiskInfo[]> {
    return (await this.call('listDisks', {}, callOptions(undefined, token))).disks;
  }
  async listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]> {
    return (await this.listRepository(repo, token)).snapshots;
  }
  listRepository(repo: string, token?: CancellationLike): Promise<ListResult> {
    return this.call('listSnapshots', { repo }, callOptions(undefined, token));
  }
  async showSnapshot(repo: string, id: string): Promise<SnapshotSummary> {
    return (await this.call('show', { repo, snapshot: id })).snapshot;
  }
  snapshot(o: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult> {
    const params = { repo: o.repo, source: o.source, label: o.label, ...(o.compressionLevel ? { compressionLevel: o.compressionLevel } : {}), ...(o.fullRead ? { fullRead: true } : {}) };
    return this.call('snapshot', params, callOptions(onProgress ?? noop, token));
  }
  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan> {
    return this.call('planSnapshot', { repo, source }, callOptions(undefined, token));
  }
  async verify(o: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult> {
    try {
      return await this.call('verify', { repo: o.repo, ...(o.id ? { snapshot: o.id } : {}) }, callOptions(onProgress ?? noop, token));
    } catch (err) {
      // Damage that stopped the verification itself (a manifest that cannot be read): a failed verification.
      if (err instanceof EngineError && err.code === 'DAMAGED') {
        return {
          ok: false,
          chunksChecked: 0,
          bytesChecked: 0,
          snapshots: [{ id: o.id ?? '', label: '', ok: false, damage: [{ partition: null, offset: 0, length: 0, chunk: '', message: err.message }] }],
        };
      }
      throw err;
    }
  }
  /** The commands confirm with the user (a modal dialog) before they call restore. */
  restore(o: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult> {
    return this.call('restore', { repo: o.repo, snapshot: o.id, target: o.target, ...partition(o.partition), ...(o.dryRun ? { dryRun: true } : {}) }, callOptions(onProgress ?? noop, token));
  }
  forget(o: ForgetOptions): Promise<ForgetResult> {
    if ('ids' in o) return this.call('forget', { repo: o.repo, ids: o.ids });
    // Rules set to 0 (or nothing) are off, as in the settings.
    const policy = Object.fromEntries(
      Object.entries(o.policy)
        .filter(([, n]) => typeof n === 'number' && n > 0)
        .map(([k, n]) => [k, Math.floor(n as number)]),
    );
    return this.call('forget', { repo: o.repo, policy });
  }
  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult> {
    return this.call('prune', { repo }, callOptions(onProgress ?? noop, token));
  }
  async label(repo: string, id: string, text: string): Promise<SnapshotSummary> {
    return (await this.call('label', { repo, snapshot: id, label: text })).snapshot;
  }
  async pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary> {
    return (await this.call('pin', { repo, snapshot: id, pinned })).snapshot;
  }
  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult> {
    return this.call('diff', { repo, a, b }, callOptions(undefined, token));
  }
  inventory(repo: string, id: string, p?: number, token?: CancellationLike): Promise<Inventory> {
    return this.call('inventory', { repo, snapshot: id, ...partition(p) }, callOptions(undefined, token));
  }
  changes(o: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult> {
    const params = {
      repo: o.repo,
      a: o.a,
      b: o.b,
      ...partition(o.partition),
      ...(o.path ? { path: o.path } : {}),
      ...(o.offset !== undefined ? { offset: o.offset } : {}),
      ...(o.limit !== undefined ? { limit: o.limit } : {}),
    };
    return this.call('changes', params, callOptions(onProgress ?? noop, token));
  }
  listDir(repo: string, id: string, dir: string, p?: number, token?: CancellationLike): Promise<ListDirResult> {
    return this.call('listDir', { repo, snapshot: id, path: dir, ...partition(p) }, callOptions(undefined, token));
  }
  /** A file's content; rejects with BAD_SOURCE past `maxBytes` (default 64 MiB). */
  async readFile(repo: string, id: string, file: string, o: { partition?: number; maxBytes?: number } = {}, token?: CancellationLike): Promise<Buffer> {
    const r = await this.call('readFile', { repo, snapshot: id, path: file, ...partition(o.partition), ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}) }, callOptions(undefined, token));
    return Buffer.from(r.base64, 'base64');
  }
  restoreFiles(o: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult> {
    const params = {
      repo: o.repo,
      snapshot: o.id,
      paths: o.paths,
      target: o.to,
      ...partition(o.partition),
      ...(o.inPlace !== undefined ? { inPlace: o.inPlace } : {}),
      ...(o.dryRun ? { dryRun: true } : {}),
    };
    return this.call('restoreFiles', params, callOptions(onProgress ?? noop, token));
  }
}

/** Whether a path needs the elevated helper to be read ('read') or written ('write'). */
export type ElevationProbe = (p: string, mode: 'read' | 'write' | 'repository') => boolean;

/**
 * The default probe: block devices always go through the helper (reading or writing a whole disk
 * is what the helper is for, and a device the user happens to access, e.g. via the `disk` group,
 * still must pass the helper's mounted / system-disk checks); image files and repositories only
 * when the user cannot access them. A path that does not exist yet needs no elevation if its
 * folder is writable.
 */
export function needsElevation(p: string, mode: 'read' | 'write' | 'repository'): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    try {
      fs.accessSync(path.dirname(p), fs.constants.W_OK | fs.constants.X_OK);
      return false;
    } catch {
      return true;
    }
  }
  if (st.isBlockDevice()) return mode !== 'repository';
  const want = mode === 'read' ? fs.constants.R_OK : mode === 'write' ? fs.constants.W_OK : fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK;
  try {
    fs.accessSync(p, want);
    return false;
  } catch {
    return true;
  }
}
/** Anything with the engine's `call` (every EngineFacade). */
export interface Callable {
  call: EngineCall;
}

/**
 * Routes each operation: to `elevated` (the helper) when a path of the request needs root (the
 * paths each operation names in protocol/ops.ts, `elevate`: a block device, a file or repository the
 * user cannot access), else to `user`. So opening the Snapshots view or snapshotting an image file
 * never asks for a password; snapshotting or restoring a disk does (once per window: the helper stays
 * for the next request). Operations with `elevate: null` (listing disks, looking inside snapshots)
 * always run as the user.
 */
export class RoutingEngine extends EngineFacade {
  constructor(
    private readonly user: Callable,
    private readonly elevated: Callable,
    private readonly probe: ElevationProbe = needsElevation,
    private readonly log?: (line: string) => void,
  ) {
    super();
  }

  call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>> {
    return this.route(op, params).call(op, params, options);
  }

  private route<K extends OpName>(op: K, params: OpParams<K>): Callable {
    const uses = OPS[op].elevate as Record<string, PathUse> | null;
    if (!uses) return this.user;
    const p = params as Record<string, unknown>;
    const checks: [string, PathUse][] = Object.entries(uses)
      .filter(([field]) => typeof p[field] === 'string')
      .map(([field, use]) => [p[field] as string, use]);
    if (op === 'restoreFiles') checks.push(...restoreFilesChecks(params as OpParams<'restoreFiles'>));
    const hit = checks.find(([path, use]) => this.probe(path, use));
    if (!hit) return this.user;
    this.log?.(`${op.replace(/[A-Z]/g, (c) => ' ' + c.toLowerCase())}: through the elevated helper (${hit[0]} needs root)`);
    return this.elevated;
  }
}

/**
 * What a file restore writes into: the target folder, or (in place) the nearest existing folder of
 * each destination and an existing destination folder itself (e.g. /usr/lib when restoring
 * /usr/lib/x in place under '/').
 */
function restoreFilesChecks(o: OpParams<'restoreFiles'>): [string, PathUse][] {
  const root = path.resolve(o.target);
  if (!(o.inPlace ?? root === '/')) return [[root, 'write']];
  const checks: [string, PathUse][] = [];
  for (const p of o.paths) {
    const dest = path.join(root, path.posix.normalize('/' + p));
    checks.push([existingFolder(path.dirname(dest)), 'write']);
    if (isDirectory(dest)) checks.push([dest, 'write']);
  }
  return checks;
}

/** `dir`, or its nearest ancestor that exists (what a restore creating `dir` writes into). */
function existingFolder(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(d) || d === path.dirname(d)) return d;
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
