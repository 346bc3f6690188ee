// THE one module that runs the imaging engine. Everything else in the extension talks to the
// `Engine` interface below. Two implementations: `CliEngine` (one CLI process per command, as the
// current user) and `HelperEngine` (extension/helperClient.ts: the elevated helper, one per window).
// `RoutingEngine` picks between them per operation: see its comment for the rule.
//
// The CLI contract: `node dist/devsnap.js <command> [args] --json [--progress json]`.
// stdout carries exactly one JSON object: the result, or `{ "error": ErrorInfo }` with a non-zero
// exit code (130 = cancelled). With `--progress json`, stderr carries one ProgressEvent JSON
// object per line; other stderr lines are diagnostics for the output channel. Cancel = SIGINT:
// the engine stops at a safe point, leaves the repository as before and exits 130.
//
// No `vscode` import here: the unit tests run this module under plain node, and the cancellation
// token is the structural subset of vscode.CancellationToken that we need.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type {
  DamageInfo, DiffOpResult, DiskInfo, ErrorCode, ErrorInfo, ForgetOpResult, ListResult, ProgressEvent, PruneOpResult, RestoreFilesResult, RestoreOpResult, SnapshotOpResult,
  SnapshotPlan, SnapshotSummary, VerifyOpResult,
} from '../imaging/protocol';
import type { RetentionPolicy } from '../imaging/snapshot/retention';
import type { ChangesResult, Inventory, ListDirResult } from '../imaging/protocol';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../imaging/runtime';

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
 * restore-files). Separate from Engine: only engines that can read a repository's chunks as the
 * current user implement it (CliEngine, and RoutingEngine through its user engine).
 */
export interface SnapshotFilesEngine {
  inventory(repo: string, id: string, partition?: number, token?: CancellationLike): Promise<Inventory>;
  changes(opts: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult>;
  listDir(repo: string, id: string, dir: string, partition?: number, token?: CancellationLike): Promise<ListDirResult>;
  /** A file's content; rejects with BAD_SOURCE past `maxBytes` (default 64 MiB). */
  readFile(repo: string, id: string, file: string, opts?: { partition?: number; maxBytes?: number }, token?: CancellationLike): Promise<Buffer>;
  restoreFiles(opts: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult>;
}

/** An engine that can restore files (CliEngine, and HelperEngine as root). */
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

/** Parses one stderr line: a ProgressEvent, or null for a plain diagnostic line. */
export function parseProgressLine(line: string): ProgressEvent | null {
  const text = line.trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  if (o.type !== 'progress' || typeof o.phase !== 'string') return null;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const ev: ProgressEvent = {
    type: 'progress',
    phase: o.phase,
    bytesDone: num(o.bytesDone),
    bytesTotal: num(o.bytesTotal),
    rate: num(o.rate),
    etaSeconds: typeof o.etaSeconds === 'number' && Number.isFinite(o.etaSeconds) ? o.etaSeconds : null,
  };
  if (typeof o.message === 'string') ev.message = o.message;
  return ev;
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

const ERROR_CODES: readonly ErrorCode[] = [
  'USAGE', 'NO_REPO', 'REPO_EXISTS', 'BAD_PASSWORD', 'LOCKED', 'NOT_FOUND', 'PERMISSION',
  'BAD_SOURCE', 'BAD_TARGET', 'DAMAGED', 'NO_SPACE', 'CANCELLED', 'INTERNAL',
];

/**
 * Interprets a finished CLI run: its stdout, exit code (null when killed by a signal) and the
 * last stderr lines. Returns the result object or throws an EngineError.
 * `okExitCodes` are the exit codes that still carry a result (verify exits 8 when damaged).
 */
export function interpretResult<T>(stdout: string, exitCode: number | null, stderrTail: string[], okExitCodes: readonly number[] = [0]): T {
  const text = stdout.trim();
  let parsed: unknown;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // Tolerate diagnostics before the JSON object: take the last line that parses.
      const lines = text.split(/\r?\n/).reverse();
      for (const line of lines) {
        try {
          parsed = JSON.parse(line);
          break;
        } catch {
          /* keep looking */
        }
      }
    }
  }
  const obj = parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  if (obj && obj.error && typeof obj.error === 'object') {
    const info = obj.error as Partial<ErrorInfo>;
    const code = ERROR_CODES.includes(info.code as ErrorCode) ? (info.code as ErrorCode) : 'INTERNAL';
    throw new EngineError(code, String(info.message ?? 'The engine reported an error.'), info.hint, exitCode);
  }
  if (exitCode === 130) throw new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.', exitCode);
  if (obj && exitCode !== null && okExitCodes.includes(exitCode)) return obj as T;
  const tail = stderrTail.filter((l) => l.trim()).slice(-3).join(' | ');
  if (exitCode === null) {
    throw new EngineError('INTERNAL', 'The devsnap engine was stopped before it finished.', tail || undefined, exitCode);
  }
  if (!obj) {
    throw new EngineError('INTERNAL', `The devsnap engine exited with code ${exitCode} without a result.`, tail ? `It said: ${tail}` : 'See the devsnap output channel.', exitCode);
  }
  throw new EngineError('INTERNAL', `The devsnap engine exited with code ${exitCode}.`, tail ? `It said: ${tail}` : undefined, exitCode);
}

/** Builds the argument list of `forget`. */
export function forgetArgs(opts: ForgetOptions): string[] {
  if ('ids' in opts) return ['forget', ...opts.ids, '--repo', opts.repo];
  const p = opts.policy;
  const args = ['forget'];
  const add = (flag: string, n: number | undefined) => {
    if (n && n > 0) args.push(flag, String(Math.floor(n)));
  };
  add('--keep-last', p.keepLast);
  add('--keep-daily', p.keepDaily);
  add('--keep-weekly', p.keepWeekly);
  add('--keep-monthly', p.keepMonthly);
  args.push('--repo', opts.repo);
  return args;
}

/** True when a policy keeps a bounded number of snapshots (i.e. retention is switched on). */
export function retentionEnabled(p: RetentionPolicy): boolean {
  return [p.keepLast, p.keepDaily, p.keepWeekly, p.keepMonthly].some((n) => (n ?? 0) > 0);
}

export interface CliEngineOptions {
  /** Path of the CLI bundle, e.g. <extensionPath>/dist/devsnap.js. */
  cliPath: string;
  /** The node to run it with: process.execPath (with ELECTRON_RUN_AS_NODE=1 in VS Code desktop). */
  nodePath?: string;
  /** Where every invocation, its diagnostics and exit code are logged (the output channel). */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

interface RunOptions {
  progress?: ProgressListener;
  token?: CancellationLike;
  okExitCodes?: readonly number[];
}

/** Runs the engine's CLI as a child process, as the current user. */
export class CliEngine implements Engine, SnapshotFilesEngine {
  constructor(private readonly opts: CliEngineOptions) {}

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Runs one CLI command and resolves with its JSON result (see interpretResult). */
  run<T>(args: string[], ro: RunOptions = {}): Promise<T> {
    const cli = this.opts.cliPath;
    const fullArgs = [...args, '--json', ...(ro.progress ? ['--progress', 'json'] : [])];
    if (!fs.existsSync(cli)) {
      return Promise.reject(new EngineError('INTERNAL', `The devsnap engine is missing: ${cli} does not exist.`, 'Reinstall the extension, or run `npm run build` in a development checkout.'));
    }
    if (ro.token?.isCancellationRequested) return Promise.reject(new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.'));
    const node = this.opts.nodePath ?? process.execPath;
    const started = Date.now();
    this.log(`$ devsnap ${fullArgs.map(quoteArg).join(' ')}`);
    return new Promise<T>((resolve, reject) => {
      let child;
      try {
        child = spawn(node, [...ENGINE_NODE_ARGS, cli, ...fullArgs], {
          env: { ...process.env, ...this.opts.env, ...ENGINE_ENV, ELECTRON_RUN_AS_NODE: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
          windowsHide: true,
        });
      } catch (err) {
        reject(new EngineError('INTERNAL', `Could not start the devsnap engine: ${(err as Error).message}`));
        return;
      }
      let stdout = '';
      const stderrTail: string[] = [];
      let lastPhase = '';
      const stderr = new LineSplitter((line) => {
        const ev = parseProgressLine(line);
        if (ev) {
          if (ev.phase !== lastPhase) {
            lastPhase = ev.phase;
            this.log(`  [${ev.phase}]${ev.message ? ' ' + ev.message : ''}`);
          }
          try {
            ro.progress?.(ev);
          } catch (err) {
            this.log(`  (progress listener failed: ${(err as Error).message})`);
          }
          return;
        }
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
        this.log(`  ${line}`);
      });
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (d: string) => (stdout += d));
      child.stderr.on('data', (d: string) => stderr.push(d));
      let cancelled = false;
      const sub = ro.token?.onCancellationRequested(() => {
        if (cancelled || child.exitCode !== null) return;
        cancelled = true;
        this.log(`  cancel requested: sending SIGINT to ${child.pid}`);
        child.kill('SIGINT');
      });
      let settled = false;
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        sub?.dispose();
        this.log(`  could not start ${node}: ${err.message}`);
        reject(new EngineError('INTERNAL', `Could not start the devsnap engine (${node}): ${err.message}`));
      });
      child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        sub?.dispose();
        stderr.flush();
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        this.log(`  exit ${code ?? signal} after ${secs} s`);
        // Killed by our SIGINT without a chance to answer: still a cancellation.
        const exit = code === null && signal === 'SIGINT' && cancelled ? 130 : code;
        try {
          const result = interpretResult<T>(stdout, exit, stderrTail, ro.okExitCodes);
          resolve(result);
        } catch (err) {
          if (err instanceof EngineError) this.log(`  error ${err.code}: ${err.toUserMessage()}`);
          reject(err);
        }
      });
    });
  }

  async listDisks(token?: CancellationLike): Promise<DiskInfo[]> {
    const r = await this.run<{ disks: DiskInfo[] }>(['disks'], { token });
    return Array.isArray(r.disks) ? r.disks : [];
  }

  async listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]> {
    return (await this.listRepository(repo, token)).snapshots;
  }

  async listRepository(repo: string, token?: CancellationLike): Promise<ListResult> {
    // `list` exits 8 (DAMAGED) when a manifest is damaged, and still answers.
    const r = await this.run<Partial<ListResult>>(['list', '--repo', repo], { token, okExitCodes: [0, 8] });
    return { snapshots: Array.isArray(r.snapshots) ? r.snapshots : [], damaged: Array.isArray(r.damaged) ? r.damaged : [] };
  }

  async showSnapshot(repo: string, id: string): Promise<SnapshotSummary> {
    return (await this.run<{ snapshot: SnapshotSummary }>(['show', id, '--repo', repo])).snapshot;
  }

  snapshot(opts: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult> {
    const args = ['snapshot', opts.source, '--repo', opts.repo, '--label', opts.label];
    if (opts.compressionLevel) args.push('--compression', String(opts.compressionLevel));
    if (opts.fullRead) args.push('--full-read');
    return this.run<SnapshotResult>(args, { progress: onProgress ?? noop, token });
  }

  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan> {
    return this.run<SnapshotPlan>(['snapshot', source, '--repo', repo, '--plan'], { token });
  }

  async verify(opts: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult> {
    const args = ['verify', ...(opts.id ? [opts.id] : []), '--repo', opts.repo];
    try {
      return await this.run<VerifyResult>(args, { progress: onProgress ?? noop, token, okExitCodes: [0, 8] });
    } catch (err) {
      // An engine that reports damage as an error instead of a result: turn it into one.
      if (err instanceof EngineError && err.code === 'DAMAGED') {
        return { ok: false, chunksChecked: 0, bytesChecked: 0, snapshots: [{ id: opts.id ?? '', label: '', ok: false, damage: [{ partition: null, offset: 0, length: 0, chunk: '', message: err.message }] }] };
      }
      throw err;
    }
  }

  restore(opts: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult> {
    const args = ['restore', opts.id, opts.target, '--repo', opts.repo];
    if (opts.partition !== undefined) args.push('--partition', String(opts.partition));
    if (opts.dryRun) args.push('--dry-run');
    args.push('--yes');
    return this.run<RestoreResult>(args, { progress: onProgress ?? noop, token });
  }

  forget(opts: ForgetOptions): Promise<ForgetResult> {
    return this.run<ForgetResult>(forgetArgs(opts));
  }

  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult> {
    return this.run<PruneResult>(['prune', '--repo', repo], { progress: onProgress ?? noop, token });
  }

  async label(repo: string, id: string, text: string): Promise<SnapshotSummary> {
    return (await this.run<{ snapshot: SnapshotSummary }>(['label', id, text, '--repo', repo])).snapshot;
  }

  async pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary> {
    return (await this.run<{ snapshot: SnapshotSummary }>([pinned ? 'pin' : 'unpin', id, '--repo', repo])).snapshot;
  }

  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult> {
    return this.run<DiffResult>(['diff', a, b, '--repo', repo], { token });
  }

  inventory(repo: string, id: string, partition?: number, token?: CancellationLike): Promise<Inventory> {
    return this.run<Inventory>(['inventory', id, '--repo', repo, ...partArgs(partition)], { token });
  }

  changes(opts: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult> {
    const args = ['changes', opts.a, opts.b, '--repo', opts.repo, ...partArgs(opts.partition)];
    if (opts.path) args.push('--path', opts.path);
    if (opts.offset !== undefined) args.push('--offset', String(opts.offset));
    if (opts.limit !== undefined) args.push('--limit', String(opts.limit));
    return this.run<ChangesResult>(args, { progress: onProgress ?? noop, token });
  }

  listDir(repo: string, id: string, dir: string, partition?: number, token?: CancellationLike): Promise<ListDirResult> {
    return this.run<ListDirResult>(['ls', id, dir, '--repo', repo, ...partArgs(partition)], { token });
  }

  readFile(repo: string, id: string, file: string, opts: { partition?: number; maxBytes?: number } = {}, token?: CancellationLike): Promise<Buffer> {
    const max = opts.maxBytes ?? 64 << 20;
    const args = ['cat', id, file, '--repo', repo, ...partArgs(opts.partition), '--json'];
    const node = this.opts.nodePath ?? process.execPath;
    this.log(`$ devsnap ${args.map(quoteArg).join(' ')}`);
    return new Promise<Buffer>((resolve, reject) => {
      const child = spawn(node, [...ENGINE_NODE_ARGS, this.opts.cliPath, ...args], { env: { ...process.env, ...this.opts.env, ...ENGINE_ENV, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      const tail: string[] = [];
      child.stdout.on('data', (d: Buffer) => {
        size += d.length;
        if (size > max) {
          if (!tooLarge) child.kill('SIGTERM');
          tooLarge = true;
          return;
        }
        chunks.push(d);
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => tail.push(...d.split('\n').filter(Boolean)));
      const sub = token?.onCancellationRequested(() => child.kill('SIGINT'));
      child.on('error', (err) => reject(new EngineError('INTERNAL', `Could not start the devsnap engine: ${err.message}`)));
      child.on('close', (code) => {
        sub?.dispose();
        if (tooLarge) return reject(new EngineError('BAD_SOURCE', `${file} is larger than ${Math.round(max / (1 << 20))} MiB.`));
        const out = Buffer.concat(chunks);
        if (code === 0) return resolve(out);
        try {
          interpretResult(out.toString('utf8'), code, tail.slice(-20));
          reject(new EngineError('INTERNAL', `Reading ${file} failed (exit ${code}).`));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  restoreFiles(opts: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult> {
    const args = ['restore-files', opts.id, ...opts.paths, '--to', opts.to, '--repo', opts.repo, ...partArgs(opts.partition)];
    if (opts.inPlace) args.push('--in-place');
    if (opts.dryRun) args.push('--dry-run');
    return this.run<RestoreFilesResult>(args, { progress: onProgress ?? noop, token });
  }
}

const partArgs = (p: number | undefined) => (p !== undefined ? ['--partition', String(p)] : []);

function noop(): void {}

/** Quotes an argument for the log line the way a shell would need it. */
export function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
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

/**
 * Routes each operation: to `elevated` (the helper) when it touches a block device or a file or
 * repository the user cannot access, else to `user` (the CLI as the current user). So opening the
 * Snapshots view or snapshotting an image file never asks for a password; snapshotting or
 * restoring a disk does (once per window: the helper stays for the next request). The disk list
 * comes from the CLI (lsblk and the partition tables the user can read need no root).
 */
export class RoutingEngine implements Engine, SnapshotFilesEngine {
  constructor(private readonly user: Engine, private readonly elevated: Engine, private readonly probe: ElevationProbe = needsElevation, private readonly log?: (line: string) => void) {}

  private pick(what: string, ...checks: [string, 'read' | 'write' | 'repository'][]): Engine {
    const hit = checks.find(([p, m]) => this.probe(p, m));
    if (hit) this.log?.(`${what}: through the elevated helper (${hit[0]} needs root)`);
    return hit ? this.elevated : this.user;
  }

  listDisks(token?: CancellationLike): Promise<DiskInfo[]> {
    return this.user.listDisks(token);
  }
  listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]> {
    return this.pick('list', [repo, 'repository']).listSnapshots(repo, token);
  }
  listRepository(repo: string, token?: CancellationLike): Promise<ListResult> {
    return this.pick('list', [repo, 'repository']).listRepository(repo, token);
  }
  showSnapshot(repo: string, id: string): Promise<SnapshotSummary> {
    return this.pick('show', [repo, 'repository']).showSnapshot(repo, id);
  }
  snapshot(opts: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult> {
    return this.pick('snapshot', [opts.source, 'read'], [opts.repo, 'repository']).snapshot(opts, onProgress, token);
  }
  // The same route as the snapshot itself: the plan reads the source's mounts and partition table.
  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan> {
    return this.pick('plan snapshot', [source, 'read'], [repo, 'repository']).planSnapshot(repo, source, token);
  }
  verify(opts: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult> {
    return this.pick('verify', [opts.repo, 'repository']).verify(opts, onProgress, token);
  }
  restore(opts: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult> {
    return this.pick('restore', [opts.target, 'write'], [opts.repo, 'repository']).restore(opts, onProgress, token);
  }
  forget(opts: ForgetOptions): Promise<ForgetResult> {
    return this.pick('forget', [opts.repo, 'repository']).forget(opts);
  }
  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult> {
    return this.pick('prune', [repo, 'repository']).prune(repo, onProgress, token);
  }
  label(repo: string, id: string, text: string): Promise<SnapshotSummary> {
    return this.pick('label', [repo, 'repository']).label(repo, id, text);
  }
  pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary> {
    return this.pick('pin', [repo, 'repository']).pin(repo, id, pinned);
  }
  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult> {
    return this.pick('diff', [repo, 'repository']).diff(repo, a, b, token);
  }
  // Looking inside snapshots: as the current user. Restoring files: see restoreFiles.
  private files(): SnapshotFilesEngine {
    if (!hasSnapshotFiles(this.user)) throw new EngineError('INTERNAL', 'This engine cannot look inside snapshots.');
    return this.user;
  }
  inventory(repo: string, id: string, partition?: number, token?: CancellationLike): Promise<Inventory> {
    return this.files().inventory(repo, id, partition, token);
  }
  changes(opts: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult> {
    return this.files().changes(opts, onProgress, token);
  }
  listDir(repo: string, id: string, dir: string, partition?: number, token?: CancellationLike): Promise<ListDirResult> {
    return this.files().listDir(repo, id, dir, partition, token);
  }
  readFile(repo: string, id: string, file: string, opts?: { partition?: number; maxBytes?: number }, token?: CancellationLike): Promise<Buffer> {
    return this.files().readFile(repo, id, file, opts, token);
  }
  /**
   * Through the helper when the user could not write the result: the target folder, or (in place)
   * the nearest existing folder of a destination and an existing destination folder itself (e.g.
   * /usr/lib when restoring /usr/lib/x in place under '/'), or when the repository needs root; else
   * as the current user, as before.
   */
  restoreFiles(opts: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult> {
    if (canRestoreFiles(this.elevated)) {
      const root = path.resolve(opts.to);
      const checks: [string, 'read' | 'write' | 'repository'][] = [[opts.repo, 'repository']];
      if (!(opts.inPlace ?? root === '/')) checks.push([root, 'write']);
      else {
        for (const p of opts.paths) {
          const dest = path.join(root, path.posix.normalize('/' + p));
          checks.push([existingFolder(path.dirname(dest)), 'write']);
          if (isDirectory(dest)) checks.push([dest, 'write']);
        }
      }
      const e = this.pick('restore files', ...checks);
      if (e === this.elevated) return this.elevated.restoreFiles(opts, onProgress, token);
    }
    return this.files().restoreFiles(opts, onProgress, token);
  }
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
