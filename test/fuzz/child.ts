// The fuzz loop of one target, run in a child process (started by run.ts) so that an input that
// aborts the process (a C++ assertion, exit 134) or hangs it is caught by the parent and named: the
// input of every case is written to `<work>/current` before the case runs.
//
// Coverage guidance: V8's precise block coverage (node:inspector, the same counters `c8` uses), read
// after every case; an input that reaches a new block of imaging/ code, or a block a new number of
// times (AFL's count buckets), joins the queue that later mutations start from.
//
// Messages to the parent (process.send): {type:'violation', ...}, {type:'stats', ...}, {type:'done'}.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as inspector from 'inspector';
import * as zlib from 'zlib';
import { DevsnapError } from '../../imaging/core/errors';
import { loadZstd } from '../../imaging/codec/zstd';
import { hotOffsets, mutate, Rng } from './mutate';
import { targetByName, Violation, type FuzzTarget, type RunContext } from './targets';

export interface ChildArgs {
  target: string;
  /** Cache folder of this target (seeds, queue). */
  cache: string;
  /** Folder for the case's input file and scratch files (tmpfs when there is one: rewritten every case). */
  work: string;
  /** Committed corpus files to replay first. */
  replay: string[];
  /** Random cases after the replay (0: replay only). */
  execs: number;
  /** Stop after this many milliseconds of random cases (0: no limit besides execs). */
  ms: number;
  seed: number;
  /** Keep the queue (new-coverage inputs) in the cache for the next run. */
  keepQueue: boolean;
  /** Minimize violating inputs before reporting them. */
  minimize: boolean;
}

export interface Outcome {
  ok: boolean;
  /** Violations: what kind and where, stable across inputs that hit the same bug. */
  signature?: string;
  message?: string;
  refused?: string; // the DevsnapError code of a refused input
}

/** Messages that are Node internals leaking through a DevsnapError (the issue's "messages quote Node internals"). */
const INTERNAL =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not defined|Invalid array length|Maximum call stack|\bERR_[A-Z_]{3,}|RangeError|TypeError|Unexpected error:/;

/** The first stack frame in devsnap's own code (imaging/...:line), for grouping violations. */
function where(err: Error): string {
  for (const line of (err.stack ?? '').split('\n').slice(1)) {
    const m = /(imaging\/[\w./-]+\.[tj]s):(\d+)/.exec(line);
    if (m) return `${m[1]}:${m[2]}`;
  }
  return 'unknown';
}

export async function runCase(t: FuzzTarget, input: Buffer, ctx: RunContext): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(t.timeoutMs)), t.timeoutMs);
  });
  try {
    await Promise.race([t.run(input, ctx), timeout]);
    return { ok: true };
  } catch (e) {
    const err = e as Error;
    if (err instanceof HangError) return { ok: false, signature: 'hang', message: err.message };
    if (err instanceof Violation) return { ok: false, signature: `violation@${where(err)}:${err.message.slice(0, 60)}`, message: err.message };
    if (err instanceof DevsnapError) {
      if (err.code === 'INTERNAL' || INTERNAL.test(err.message)) {
        return {
          ok: false,
          signature: `internal-message@${err.code}:${err.message.replace(/[0-9]+/g, 'N').slice(0, 80)}`,
          message: `DevsnapError ${err.code} quoting a Node internal: ${err.message}`,
        };
      }
      return { ok: true, refused: err.code };
    }
    const name = err?.constructor?.name ?? typeof err;
    const code = (err as NodeJS.ErrnoException)?.code;
    return {
      ok: false,
      signature: `${name}${code ? `(${code})` : ''}@${err instanceof Error ? where(err) : 'unknown'}`,
      message: `${name}${code ? ` ${code}` : ''}: ${err instanceof Error ? err.message : String(err)}\n${err instanceof Error ? (err.stack ?? '').split('\n').slice(1, 6).join('\n') : ''}`,
    };
  } finally {
    clearTimeout(timer);
  }
}

class HangError extends Error {
  constructor(ms: number) {
    super(`a case did not finish within ${ms} ms`);
  }
}

// ---------------------------------------------------------------------------------------------
// Coverage

class Coverage {
  private session = new inspector.Session();
  readonly seen = new Set<string>();
  private post<T>(method: string, params?: object): Promise<T> {
    return new Promise((resolve, reject) => this.session.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r as T))));
  }
  async start(): Promise<void> {
    this.session.connect();
    await this.post('Profiler.enable');
    await this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }
  /** The features of the case just run (and resets the counters); the number never seen before. */
  async take(): Promise<{ fresh: number; features: string[] }> {
    const r = await this.post<{ result: { scriptId: string; url: string; functions: { ranges: { startOffset: number; endOffset: number; count: number }[] }[] }[] }>('Profiler.takePreciseCoverage');
    const features: string[] = [];
    let fresh = 0;
    for (const s of r.result) {
      if (!s.url.includes('/out/imaging/')) continue;
      for (const f of s.functions) {
        for (const rg of f.ranges) {
          const bucket = rg.count === 0 ? 0 : Math.min(8, 1 + Math.floor(Math.log2(rg.count)));
          const key = `${s.scriptId}:${rg.startOffset}:${bucket}`;
          features.push(key);
          if (!this.seen.has(key)) {
            this.seen.add(key);
            fresh++;
          }
        }
      }
    }
    return { fresh, features };
  }
}

// ---------------------------------------------------------------------------------------------
// Seeds and queue

export async function loadSeeds(t: FuzzTarget, cache: string): Promise<Buffer[]> {
  const dir = path.join(cache, 'seeds');
  const stamp = path.join(dir, 'done');
  if (!fs.existsSync(stamp)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const work = path.join(cache, 'seed-work');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    const seeds = await t.seeds(work);
    fs.rmSync(work, { recursive: true, force: true });
    seeds.forEach((s, i) => fs.writeFileSync(path.join(dir, `seed-${String(i).padStart(3, '0')}.bin`), s));
    fs.writeFileSync(stamp, '');
  }
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.bin'))
    .sort()
    .map((n) => fs.readFileSync(path.join(dir, n)));
}

/** Reads a corpus file (stored gzip-compressed when its name ends in .gz). */
export function readCorpusFile(file: string): Buffer {
  const b = fs.readFileSync(file);
  return file.endsWith('.gz') ? zlib.gunzipSync(b) : b;
}

// ---------------------------------------------------------------------------------------------
// Minimization: smaller inputs with the same signature (truncation, then zeroing blocks).

async function minimize(t: FuzzTarget, input: Buffer, signature: string, ctx: RunContext, budget = 300, ms = 20000): Promise<Buffer> {
  let best = input;
  const deadline = Date.now() + ms;
  const same = async (cand: Buffer) => {
    if (budget-- <= 0 || Date.now() > deadline) return false;
    fs.writeFileSync(ctx.file, cand);
    const o = await runCase(t, cand, ctx);
    return !o.ok && o.signature === signature;
  };
  for (let len = best.length >> 1; len >= 1 && budget > 0; len >>= 1) {
    while (best.length > len && (await same(best.subarray(0, best.length - len)))) best = best.subarray(0, best.length - len);
  }
  for (let block = 1 << 16; block >= 16 && budget > 0; block >>= 2) {
    for (let o = 0; o < best.length && budget > 0; o += block) {
      const slice = best.subarray(o, o + block);
      if (slice.every((x) => x === 0)) continue;
      const cand = Buffer.from(best);
      cand.fill(0, o, Math.min(cand.length, o + block));
      if (await same(cand)) best = cand;
    }
  }
  return Buffer.from(best);
}

// ---------------------------------------------------------------------------------------------

async function main(args: ChildArgs): Promise<void> {
  const t = targetByName(args.target);
  // Awaited where the process exits right after: an exit drops IPC messages not yet flushed.
  const send = (m: object) => new Promise<void>((resolve) => (process.send ? process.send(m, undefined, undefined, () => resolve()) : resolve()));
  const work = args.work;
  const ctx: RunContext = { file: path.join(work, 'current'), scratch: work, codec: await loadZstd() };
  const seeds = await loadSeeds(t, args.cache);
  await send({ type: 'ready' });
  const queueDir = path.join(args.cache, 'queue');
  fs.mkdirSync(queueDir, { recursive: true });
  // Only long runs start from (and add to) the kept queue: the smoke test starts from the seeds alone.
  const queued = args.keepQueue
    ? fs
        .readdirSync(queueDir)
        .sort()
        .map((n) => fs.readFileSync(path.join(queueDir, n)))
    : [];
  const maxLength = Math.max(...seeds.map((s) => s.length), 4096) + 65536;
  const cov = new Coverage();
  await cov.start();
  const reported = new Set<string>();
  let execs = 0;
  let refused = 0;
  let failing = 0; // cases that violated the property (repeats of a reported signature included)

  const exec = async (input: Buffer, origin: string): Promise<Outcome> => {
    fs.writeFileSync(ctx.file, input);
    if (origin !== 'mutation') await send({ type: 'case', origin });
    const o = await runCase(t, input, ctx);
    execs++;
    if (o.refused) refused++;
    if (!o.ok && o.signature) {
      if (o.signature === 'hang') {
        // The case may still be running in the background: report it and let the parent start afresh.
        await send({ type: 'stats', execs, refused, queue: 0, failing, features: cov.seen.size });
        await send({ type: 'violation', signature: o.signature, message: o.message, input: input.toString('base64'), origin });
        process.exit(3);
      }
      if (!reported.has(o.signature)) {
        reported.add(o.signature);
        const small = args.minimize ? await minimize(t, input, o.signature, ctx) : input;
        send({ type: 'violation', signature: o.signature, message: o.message, input: small.toString('base64'), origin });
      } else if (origin !== 'mutation') send({ type: 'repeat', signature: o.signature, origin });
      failing++;
    }
    return o;
  };

  // 1. The committed corpus, each file reported by name.
  for (const file of args.replay) {
    await exec(readCorpusFile(file), path.basename(file));
    await cov.take();
  }
  if (args.execs === 0) {
    await send({ type: 'stats', execs, refused, queue: 0, failing, features: cov.seen.size });
    await send({ type: 'done' });
    return;
  }
  // 2. Seeds and the kept queue: the starting population.
  const pool: Buffer[] = [];
  for (const s of [...seeds, ...queued]) {
    await exec(s, 'seed');
    await cov.take();
    pool.push(s);
  }
  const hot = t.hot ? new Map<Buffer, number[]>() : null;
  const hotOf = (b: Buffer) => {
    if (!hot) return undefined;
    let h = hot.get(b);
    if (!h) hot.set(b, (h = hotOffsets(b)));
    return h;
  };
  // 3. Mutations, until the budget is spent.
  await send({ type: 'case', origin: 'mutation' });
  const rng = new Rng(args.seed);
  const finds: { input: Buffer; fresh: number }[] = [];
  const deadline = args.ms ? Date.now() + args.ms : Infinity;
  const dictionary = (t.dictionary ?? []).map((s) => Buffer.from(s, 'latin1'));
  let lastStats = Date.now();
  for (let i = 0; i < args.execs && Date.now() < deadline; i++) {
    // Newer queue entries found new coverage most recently: favour them a little.
    const parent = pool[rng.chance(0.3) ? pool.length - 1 - rng.int(Math.min(pool.length, 16)) : rng.int(pool.length)];
    let child = (t.mutate && rng.chance(0.4) && t.mutate(parent, rng, ctx)) || mutate(parent, rng, { dictionary, others: pool, maxLength }, hotOf(parent));
    if (t.fix && rng.chance(0.5)) child = t.fix(child);
    const o = await exec(child, 'mutation');
    const { fresh } = await cov.take();
    if (fresh > 0 && o.ok) {
      pool.push(child);
      finds.push({ input: child, fresh });
      if (args.keepQueue && child.length <= 4 << 20) fs.writeFileSync(path.join(queueDir, crypto.createHash('sha1').update(child).digest('hex').slice(0, 16)), child);
    }
    if (Date.now() - lastStats > 1000) {
      lastStats = Date.now();
      send({ type: 'stats', execs, refused, queue: pool.length, failing, features: cov.seen.size });
    }
  }
  if (args.keepQueue) {
    // The inputs of this run that opened the most new code, if small: candidates for the committed corpus.
    const small = finds
      .filter((f) => zlib.gzipSync(f.input).length <= 8192)
      .sort((a, b) => b.fresh - a.fresh)
      .slice(0, 3);
    for (const f of small) await send({ type: 'interesting', input: f.input.toString('base64'), fresh: f.fresh });
  }
  await send({ type: 'stats', execs, refused, queue: pool.length, failing, features: cov.seen.size });
  await send({ type: 'done' });
}

if (require.main === module) {
  const args = JSON.parse(process.argv[2]) as ChildArgs;
  main(args).then(
    () => process.exit(0),
    (err) => process.send?.({ type: 'error', message: String((err as Error)?.stack ?? err) }, undefined, undefined, () => process.exit(2)) ?? process.exit(2),
  );
}
