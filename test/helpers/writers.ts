// An adversarial writer workload for a mounted filesystem (run by writer-child.ts in its own process) and
// the checker that holds a restored point-in-time image against the writer's log: every file state that
// was durable before the image's moment, and not being changed at that moment, must read back exactly.
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onCleanup, seededBytes, sh } from './disks';

export const WRITER_KINDS = ['mmap', 'direct', 'overwrite', 'truncate', 'punch', 'rename', 'hardlink', 'reuse', 'append', 'bigdir'] as const;
export type WriterKind = (typeof WRITER_KINDS)[number];

/** What writer-child.ts gets as its one argument (JSON). Paths in the log are relative to `dir`. */
export interface WriterConfig {
  dir: string;
  log: string;
  seed: number;
  stopFile: string;
  kinds: WriterKind[];
  /** Relative path of the large directory the 'bigdir' kind keeps changing. */
  bigDir?: string;
  /** 256 KiB of data outside the filesystem, the source of the O_DIRECT writes. */
  directSource: string;
  /** The interpreter for the 'mmap' kind. */
  python?: string;
}

/** A modification of `path` starts. */
export interface BeginEntry {
  path: string;
  beginWall: number;
  beginMono: number;
}

/** `path` is durable (fsync done) with this content, or deleted. */
export interface DurableEntry {
  path: string;
  sha256?: string;
  deleted?: true;
  fsyncDoneWall: number;
  fsyncDoneMono: number;
}

export type LogEntry = BeginEntry | DurableEntry;

/** CLOCK_MONOTONIC in ms: the same clock in every process, unaffected by `date -s`. */
export function monoNow(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/**
 * The python3 interpreter the 'mmap' kind writes through (its mmap module), resolved past wrappers
 * such as pyenv's shims (slow to start); null without one.
 */
export function pythonForMmap(): string | null {
  const r = spawnSync('python3', ['-c', 'import mmap, random, sys; random.Random(1).randbytes(1); print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export interface Writer {
  pid: number;
  /** The kinds that run (mmap is left out without python3). */
  kinds: WriterKind[];
  /** Stops after the current operation; resolves with the number of operations per kind. */
  stop(): Promise<Record<string, number>>;
  /** SIGKILL, for cleanup after a failure. */
  kill(): void;
}

export interface StartWriterOptions {
  dir: string;
  log: string;
  seed: number;
  kinds?: WriterKind[];
  bigDir?: string;
}

/** Starts the writer and resolves once its files exist (logged as durable) and the loop runs. */
export async function startWriter(o: StartWriterOptions): Promise<Writer> {
  let kinds = [...(o.kinds ?? WRITER_KINDS)];
  const python = kinds.includes('mmap') ? pythonForMmap() : null;
  if (!python) kinds = kinds.filter((k) => k !== 'mmap');
  if (kinds.includes('bigdir') && !o.bigDir) throw new Error('startWriter: the bigdir kind needs bigDir');
  const scratch = path.dirname(o.log);
  const cfg: WriterConfig = {
    dir: o.dir,
    log: o.log,
    seed: o.seed,
    stopFile: path.join(scratch, `stop-${o.seed}`),
    kinds,
    bigDir: o.bigDir,
    directSource: path.join(scratch, `direct-${o.seed}.bin`),
    ...(python ? { python } : {}),
  };
  fs.rmSync(cfg.stopFile, { force: true });
  fs.writeFileSync(cfg.directSource, seededBytes(o.seed * 7919, 256 * 1024));
  const child = spawn(process.execPath, [path.join(__dirname, 'writer-child.js'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  onCleanup(kill); // before the mount is released: a running writer would keep it busy
  // The adversary runs ahead of the snapshot's compression workers for the 2 cores (needs root).
  try {
    os.setPriority(child.pid!, -10);
  } catch {
    /* not root: normal priority */
  }
  await new Promise<void>((resolve, reject) => {
    const onData = () => stdout.includes('ready\n') && (child.stdout.off('data', onData), resolve());
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`the writer exited (${code}) before it was ready: ${stderr.trim()}`)));
  });
  return {
    pid: child.pid!,
    kinds,
    kill,
    async stop() {
      fs.writeFileSync(cfg.stopFile, '');
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`the writer failed (exit ${code}): ${stderr.trim()}`);
      const last = stdout.trim().split('\n').pop()!;
      return (JSON.parse(last) as { ops: Record<string, number> }).ops;
    },
  };
}

/** Creates `count` empty files with long names in `dir` (through the kernel, so it gets an htree index). */
export function makeBigDir(dir: string, count: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const name = `entry-${String(i).padStart(6, '0')}-${crypto.createHash('md5').update(String(i)).digest('hex')}`;
    fs.closeSync(fs.openSync(path.join(dir, name), 'w'));
  }
}

/**
 * Makes every file under `mnt` durable (syncfs) and appends its state to the log as a baseline: each
 * file's content, and every path the log has as a file that is gone now (deleted since, e.g. by an
 * upgrade between two snapshots).
 */
export function logBaseline(mnt: string, log: string): number {
  sh('sync', ['-f', mnt]);
  const wall = Date.now();
  const mono = monoNow();
  const lines: string[] = [];
  const last = new Map<string, LogEntry>();
  for (const e of fs.existsSync(log) ? readLog(log) : []) if ('fsyncDoneWall' in e) last.set(e.path, e);
  for (const [p, e] of last) {
    if ('deleted' in e && e.deleted) continue;
    if (!fs.existsSync(path.join(mnt, p))) lines.push(JSON.stringify({ path: p, deleted: true, fsyncDoneWall: wall, fsyncDoneMono: mono }));
  }
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(mnt, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === 'lost+found') continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) lines.push(JSON.stringify({ path: r, sha256: sha256File(path.join(mnt, r)), fsyncDoneWall: wall, fsyncDoneMono: mono }));
    }
  };
  walk('');
  fs.appendFileSync(log, lines.map((l) => l + '\n').join(''));
  return lines.length;
}

/** The log's entries in order (a torn last line, from a killed writer, is left out). */
export function readLog(file: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as LogEntry);
    } catch {
      /* torn line */
    }
  }
  return out;
}

export interface CheckOptions {
  /** Which of the log's clocks T and `until` are on; default 'wall'. 'mono' survives a stepped clock. */
  clock?: 'wall' | 'mono';
  /**
   * End of the window in which the image's moment lies (default T): a modification begun before it
   * and not durable before T may or may not be in the image, so its path is undetermined.
   */
  until?: number;
  /** Also count the checked states that became durable at or after this time (e.g. while imaging). */
  since?: number;
}

export interface CheckFailure {
  path: string;
  expected: string;
  actual: string;
  /** When the expected state became durable, on the chosen clock. */
  durableAt: number;
  /** What was found, if it is another logged state of the path: when that one became durable (the last time before T, else the first). */
  foundStateOf?: number;
}

export interface CheckResult {
  /** Paths with a durable state before T and nothing in flight: each must read back exactly. */
  checked: number;
  intact: number;
  /** Paths being modified at the image's moment: not checked. */
  undetermined: number;
  /** Paths first durable only after T: not checked. */
  later: number;
  /** Checked states that became durable at or after `since`. */
  checkedSince: number;
  failures: CheckFailure[];
}

/**
 * Holds the filesystem mounted at `dir` (a restored image) against the writer's log: for every path,
 * its last state durable before T must be there (content hash, or absent when deleted), unless a
 * modification of it began after that and before `until`.
 */
export function checkImage(dir: string, log: LogEntry[] | string, T: number, opts: CheckOptions = {}): CheckResult {
  const entries = typeof log === 'string' ? readLog(log) : log;
  const mono = opts.clock === 'mono';
  const until = opts.until ?? T;
  const state = new Map<string, { last?: DurableEntry; inFlight: boolean; seen: Map<string, number[]> }>();
  for (const e of entries) {
    let s = state.get(e.path);
    if (!s) state.set(e.path, (s = { inFlight: false, seen: new Map() }));
    if ('fsyncDoneWall' in e) {
      const t = mono ? e.fsyncDoneMono : e.fsyncDoneWall;
      const key = e.deleted ? 'deleted' : `sha256 ${e.sha256}`;
      s.seen.set(key, [...(s.seen.get(key) ?? []), t]);
      if (t < T) {
        s.last = e;
        s.inFlight = false;
      }
    } else if ((mono ? e.beginMono : e.beginWall) < until) {
      s.inFlight = true; // cleared again if this modification was durable before T
    }
  }
  const r: CheckResult = { checked: 0, intact: 0, undetermined: 0, later: 0, checkedSince: 0, failures: [] };
  for (const [p, s] of state) {
    if (!s.last) {
      r.later++;
      continue;
    }
    if (s.inFlight) {
      r.undetermined++;
      continue;
    }
    r.checked++;
    const at = mono ? s.last.fsyncDoneMono : s.last.fsyncDoneWall;
    if (opts.since !== undefined && at >= opts.since) r.checkedSince++;
    const expected = s.last.deleted ? 'deleted' : `sha256 ${s.last.sha256}`;
    const actual = observe(path.join(dir, p));
    if (actual === expected) r.intact++;
    else {
      const times = s.seen.get(actual) ?? [];
      const other = times.filter((t) => t < T).pop() ?? times[0];
      r.failures.push({ path: p, expected, actual, durableAt: at, ...(other !== undefined ? { foundStateOf: other } : {}) });
    }
  }
  return r;
}

/** The state of a path in the same terms as the log: 'deleted', 'sha256 …', or what else is there. */
function observe(p: string): string {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (err) {
    return `unreadable (${(err as NodeJS.ErrnoException).code})`;
  }
  if (!st) return 'deleted';
  if (!st.isFile()) return `not a regular file (mode ${st.mode.toString(8)})`;
  try {
    return `sha256 ${sha256File(p)}`;
  } catch (err) {
    return `unreadable (${(err as NodeJS.ErrnoException).code})`;
  }
}

function sha256File(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** A summary line, then the first failures with their times relative to T (ms). */
export function describeCheck(r: CheckResult, T?: number): string {
  const head = `${r.checked} files checked: ${r.intact} intact, ${r.failures.length} wrong; ${r.undetermined} in flight (not checked), ${r.checkedSince} checked states written while imaging`;
  const rel = (t: number) => (T === undefined ? '' : ` (durable ${Math.abs(T - t)} ms ${t < T ? 'before' : 'after'} T)`);
  const found = (f: CheckFailure) => (f.foundStateOf === undefined ? ' (never logged)' : `: another logged state${rel(f.foundStateOf)}`);
  const fails = r.failures.slice(0, 8).map((f) => `\n  ${f.path}: expected ${f.expected}${rel(f.durableAt)}, found ${f.actual}${found(f)}`);
  return head + fails.join('') + (r.failures.length > 8 ? `\n  … and ${r.failures.length - 8} more` : '');
}
