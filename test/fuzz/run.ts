// `npm run fuzz [-- --minutes N] [--target NAME ...] [--seed N] [--no-save]`: fuzzes every target (or
// the named ones) for N minutes in all (default 10, split evenly), in child processes (child.ts). New
// violations are minimized and saved into test/fuzz/corpus/<target>/ (unless --no-save), where the
// smoke test (test/unit/tools/fuzz-smoke.test.ts) replays them on every `npm test`.
//
// The parent catches what a child cannot report itself: an abort (a C++ assertion: exit 134, or any
// signal) and a synchronous hang (the case's input file not rewritten for a while), and names the
// input that caused it (the child writes each case's input to <cache>/<target>/work/current first).
import { fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import type { ChildArgs } from './child';
import { TARGETS, targetByName } from './targets';

export const ROOT = path.resolve(__dirname, '../../..');
export const CORPUS = path.join(ROOT, 'test/fuzz/corpus');
export const CACHE = path.join(ROOT, '.cache/fuzz');
/** Committed inputs: each at most this large as stored, all together at most CORPUS_TOTAL. */
export const CORPUS_FILE_MAX = 64 << 10;
export const CORPUS_TOTAL = 1 << 20;

export interface KnownOpen {
  target: string;
  /** A corpus file that still fails: replayed by `npm run fuzz`, skipped by the smoke test. */
  file?: string;
  /** Violations with this signature are reported as known, not as new failures. */
  signature?: string;
  note: string;
}

export interface FoundViolation {
  signature: string;
  message: string;
  origin: string;
  known: boolean;
  /** Where the input was saved (the corpus, or the cache when too large to commit). */
  saved?: string;
  input: Buffer;
}

export interface TargetReport {
  target: string;
  execs: number;
  refused: number;
  failing: number;
  features: number;
  queue: number;
  restarts: number;
  ms: number;
  violations: FoundViolation[];
}

export interface FuzzOptions {
  execs?: number;
  ms?: number;
  seed?: number;
  /** Replay the committed corpus first (skipping files listed in open.json when skipKnown). */
  replay?: boolean;
  /** Replay these files instead of the committed corpus. */
  files?: string[];
  skipKnown?: boolean;
  keepQueue?: boolean;
  minimize?: boolean;
  /** Save new violations into the corpus. */
  save?: boolean;
  /** A child whose case input file is not rewritten for this long is hung (default: 2 × the target's case bound, at least 10 s). */
  hangMs?: number;
  log?: (line: string) => void;
}

export function knownOpen(): KnownOpen[] {
  const f = path.join(CORPUS, 'open.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as KnownOpen[]) : [];
}

export function corpusFiles(target: string): string[] {
  const dir = path.join(CORPUS, target);
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => /\.bin(\.gz)?$/.test(n))
        .sort()
        .map((n) => path.join(dir, n))
    : [];
}

/** Saves an input into the corpus (gzip-compressed above 4 KiB); null when it does not fit the size limits. */
export function saveToCorpus(target: string, input: Buffer, prefix: string): string | null {
  const name = `${prefix}-${crypto.createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`;
  const dir = path.join(CORPUS, target);
  const existing = corpusFiles(target).find((f) => path.basename(f).startsWith(name));
  if (existing) return existing;
  let file = path.join(dir, name);
  let bytes = input;
  // Disk images are mostly zeros: anything above a few KiB is stored compressed.
  if (bytes.length > 4096) {
    bytes = zlib.gzipSync(input, { level: 9 });
    file += '.gz';
  }
  const total = TARGETS.flatMap((t) => corpusFiles(t.name)).reduce((n, f) => n + fs.statSync(f).size, 0);
  if (bytes.length > CORPUS_FILE_MAX || total + bytes.length > CORPUS_TOTAL) return null;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

export async function fuzzTarget(name: string, opts: FuzzOptions): Promise<TargetReport> {
  const t = targetByName(name);
  const log = opts.log ?? (() => undefined);
  const cache = path.join(CACHE, name);
  const open = knownOpen().filter((k) => k.target === name);
  let replay = opts.files ?? (opts.replay === false ? [] : corpusFiles(name)).filter((f) => !(opts.skipKnown && open.some((k) => k.file === path.basename(f))));
  const report: TargetReport = { target: name, execs: 0, refused: 0, failing: 0, features: 0, queue: 0, restarts: 0, ms: 0, violations: [] };
  const started = Date.now();
  const seen = new Set<string>();
  let execsLeft = opts.execs ?? Infinity;
  const hangMs = opts.hangMs ?? Math.max(10000, 2 * t.timeoutMs);
  const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), `devsnap-fuzz-${name}-`));

  const record = (signature: string, message: string, input: Buffer, origin: string) => {
    if (seen.has(signature)) return;
    seen.add(signature);
    const known = open.some((k) => k.signature === signature || (k.file !== undefined && k.file === origin));
    const v: FoundViolation = { signature, message, origin, known, input };
    if (opts.save && !known && origin !== 'seed' && !corpusFiles(name).some((f) => path.basename(f) === origin)) {
      v.saved = saveToCorpus(name, input, 'crash') ?? undefined;
      if (!v.saved) {
        const keep = path.join(cache, 'crashes', `${crypto.createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`);
        fs.mkdirSync(path.dirname(keep), { recursive: true });
        fs.writeFileSync(keep, input);
        v.saved = keep;
      }
    }
    report.violations.push(v);
    log(`${name}: ${known ? 'known' : 'NEW'} violation ${signature} (${origin})${v.saved ? ` saved as ${path.relative(ROOT, v.saved)}` : ''}\n  ${message.split('\n').join('\n  ')}`);
  };

  try {
    for (let generation = 0; ; generation++) {
      const msLeft = opts.ms ? opts.ms - (Date.now() - started) : 0;
      if (generation > 0 && ((opts.ms && msLeft <= 0) || execsLeft <= 0)) break;
      if (generation > 50) {
        log(`${name}: the child died 50 times; giving up on this target`);
        break;
      }
      const args: ChildArgs = {
        target: name,
        cache,
        work,
        replay,
        execs: execsLeft === Infinity ? 1e12 : execsLeft,
        ms: opts.ms ? Math.max(1, msLeft) : 0,
        seed: (opts.seed ?? 1) + generation * 7919,
        keepQueue: !!opts.keepQueue,
        minimize: !!opts.minimize,
      };
      const child = fork(path.join(__dirname, 'child.js'), [JSON.stringify(args)], {
        execArgv: ['--enable-source-maps'],
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      let stderr = '';
      // Both streams only for the report of a dying child (the WASM zstd build prints "OOM" to stdout).
      child.stdout!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
      child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
      let ready = false;
      let done = false;
      let hung = false;
      let lastOrigin = 'mutation';
      let stats = { execs: 0, refused: 0, failing: 0, features: 0, queue: 0 };
      child.on('message', (m: { type: string; [k: string]: unknown }) => {
        if (m.type === 'ready') ready = true;
        else if (m.type === 'case') lastOrigin = m.origin as string;
        else if (m.type === 'stats') stats = m as unknown as typeof stats;
        else if (m.type === 'violation') record(m.signature as string, m.message as string, Buffer.from(m.input as string, 'base64'), m.origin as string);
        else if (m.type === 'repeat') log(`${name}: ${m.origin} fails again with ${m.signature}`);
        else if (m.type === 'done') done = true;
        else if (m.type === 'interesting' && opts.save && corpusFiles(name).filter((f) => path.basename(f).startsWith('cov-')).length < 10) {
          const saved = saveToCorpus(name, Buffer.from(m.input as string, 'base64'), 'cov');
          if (saved) log(`${name}: kept ${path.relative(ROOT, saved)} (it reached ${m.fresh} new coverage features)`);
        } else if (m.type === 'error') log(`${name}: the fuzz child failed: ${m.message}`);
      });
      const current = path.join(work, 'current');
      const watchdog = setInterval(() => {
        if (!ready) return;
        let mtime = 0;
        try {
          mtime = fs.statSync(current).mtimeMs;
        } catch {
          return;
        }
        if (Date.now() - mtime > hangMs) {
          hung = true;
          child.kill('SIGKILL');
        }
      }, 1000);
      const [code, signal] = (await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])))) as [number | null, NodeJS.Signals | null];
      clearInterval(watchdog);
      report.execs += stats.execs;
      report.refused += stats.refused;
      report.failing += stats.failing;
      report.features = Math.max(report.features, stats.features);
      report.queue = Math.max(report.queue, stats.queue);
      execsLeft -= stats.execs;
      if (done) break;
      if (code === 2 || !ready) {
        log(`${name}: the fuzz child could not run (exit ${code}): ${stderr.trim()}`);
        throw new Error(`fuzz target ${name} could not run: ${stderr.trim() || `exit ${code}`}`);
      }
      if (code !== 3) {
        // Killed by its input: an abort (C++ assertion, exit 134), a signal, or a hang the watchdog ended.
        const input = fs.existsSync(current) ? fs.readFileSync(current) : Buffer.alloc(0);
        const signature = hung ? 'hang' : `abort(${signal ?? code})`;
        const why = hung ? `the process hung for ${hangMs / 1000} s and was killed` : `the process died (${signal ? `signal ${signal}` : `exit code ${code}`})`;
        record(signature, `${why}\n${stderr.trim().split('\n').slice(-8).join('\n')}`, input, lastOrigin);
        report.failing++;
        execsLeft--;
      }
      report.restarts++;
      // Start after the corpus file that killed the child (the others already ran).
      const at = replay.findIndex((f) => path.basename(f) === lastOrigin);
      if (at >= 0) replay = replay.slice(at + 1);
      else if (lastOrigin === 'mutation' || lastOrigin === 'seed') replay = [];
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  report.ms = Date.now() - started;
  return report;
}

function parseArgs(argv: string[]): { minutes: number; targets: string[]; seed: number; save: boolean; replay: string[] } {
  const out = { minutes: 10, targets: [] as string[], seed: Date.now() % 1e9, save: true, replay: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--minutes') out.minutes = Number(argv[++i]);
    else if (a === '--target') out.targets.push(...argv[++i].split(','));
    else if (a === '--seed') out.seed = Number(argv[++i]);
    else if (a === '--no-save') out.save = false;
    else if (a === '--replay') out.replay.push(path.resolve(argv[++i]));
    else throw new Error(`unknown argument ${a}; usage: npm run fuzz -- [--minutes N] [--target NAME[,NAME]] [--seed N] [--no-save] [--target NAME --replay FILE]`);
  }
  if (!(out.minutes > 0)) throw new Error('--minutes must be a positive number');
  for (const t of out.targets) targetByName(t);
  if (!out.targets.length) out.targets = TARGETS.map((t) => t.name);
  return out;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.replay.length) {
    // Reproduce: run these inputs once through one target (no random cases, nothing saved).
    if (a.targets.length !== 1) throw new Error('--replay needs exactly one --target');
    const r = await fuzzTarget(a.targets[0], { files: a.replay, execs: 0, log: (l) => console.log(l) });
    console.log(r.violations.length ? `${r.violations.length} violation(s).` : `The input(s) hold: ${a.targets[0]} returned or threw a DevsnapError.`);
    process.exit(r.violations.length ? 1 : 0);
  }
  const per = (a.minutes * 60000) / a.targets.length;
  console.log(`Fuzzing ${a.targets.join(', ')} for ${(per / 60000).toFixed(1)} min each (seed ${a.seed}).`);
  const reports: TargetReport[] = [];
  let broken = 0;
  for (const name of a.targets) {
    let r: TargetReport;
    try {
      r = await fuzzTarget(name, { ms: per, seed: a.seed, replay: true, keepQueue: true, minimize: true, save: a.save, log: (l) => console.log(l) });
    } catch (err) {
      // A target that cannot run (its seeds, or the harness itself) does not stop the others.
      console.log(`${name}: could not run: ${(err as Error).message}`);
      broken++;
      continue;
    }
    reports.push(r);
    console.log(
      `${name}: ${r.execs} cases (${Math.round(r.execs / (r.ms / 1000))}/s), ${r.refused} refused with a DevsnapError, ${r.features} coverage features, queue ${r.queue}, ${r.violations.length} distinct violations (${r.violations.filter((v) => !v.known).length} new), ${r.restarts} child restarts`,
    );
  }
  console.log('\ntarget         cases   cases/s  features  violations(new)');
  for (const r of reports) {
    console.log(
      `${r.target.padEnd(14)} ${String(r.execs).padStart(7)} ${String(Math.round(r.execs / (r.ms / 1000))).padStart(8)} ${String(r.features).padStart(9)}  ${r.violations.length}(${r.violations.filter((v) => !v.known).length})`,
    );
  }
  fs.mkdirSync(CACHE, { recursive: true });
  const out = path.join(CACHE, `report-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(
    out,
    JSON.stringify(
      reports.map((r) => ({ ...r, violations: r.violations.map(({ input: _i, ...v }) => v) })),
      null,
      2,
    ),
  );
  console.log(`\nReport: ${path.relative(ROOT, out)}`);
  process.exit(broken || reports.some((r) => r.violations.some((v) => !v.known)) ? 1 : 0);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}
