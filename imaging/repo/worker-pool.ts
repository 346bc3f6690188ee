// A small pool of compression workers (one per core, at most 4) with a bounded number of jobs in
// flight, so memory stays bounded whatever the disk size.
import { Worker } from 'worker_threads';
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';
import { BufferPool, chunkBuffers, startMemTrace } from '../core/memory';

startMemTrace(); // DEVSNAP_MEMTRACE only (core/memory.ts): in the main thread and each worker

/**
 * Bytes moving between threads: `length` bytes at `offset` of `data`, an ArrayBuffer moved (transferred)
 * with the message. Pool buffers (core/memory.ts) move whole and come back: a reply's `spare` returns a
 * request's buffers the worker is done with, for the main thread to reuse.
 */
export interface Moved {
  data: ArrayBuffer;
  offset: number;
  length: number;
}
export type WorkerRequest =
  // digestsFor: the chunk id whose block digests (repo/digests.ts) follow its frame.
  | ({ id: number; op: 'compress'; level: number; digestsFor?: string } & Moved)
  // checkDigests: the chunk id, to check the frame's block digests (if any) against the raw bytes.
  | ({ id: number; op: 'decompress'; rawLength: number; hash: boolean; out: ArrayBuffer | null; checkDigests?: string } & Moved)
  | ({
      id: number;
      op: 'overlay';
      rawLength: number;
      baseId: string;
      blockSize: number;
      patch: Moved | null;
      patchOffs: number[];
      patchLens: number[];
      blocks: Moved;
      offs: number[];
      lens: number[];
    } & Moved);
export type WorkerReply = {
  id: number;
  hash?: string;
  kind?: 'same' | 'base' | 'patch' | 'cell';
  error?: string;
  spare: ArrayBuffer[];
  /** decompress with checkDigests: what the frame's block digests are. */
  digests?: 'none' | 'ok' | 'damaged' | 'wrong';
} & Partial<Moved>;

function workerScript(): string {
  // Beside this file both in tsc's out/imaging and in webpack's dist/.
  for (const name of ['compress-worker.js']) {
    const p = path.join(__dirname, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`compress-worker.js not found beside ${__dirname}; run npm run build`);
}

/**
 * A worker's young generation. Its garbage is small objects (messages, views, hashes): by default V8
 * let it grow to 16 MiB per worker (heap 16 MiB); at 3 MiB a worker's heap stays at ~10 MiB, and an
 * incremental of the bench's disk took no longer.
 */
const WORKER_YOUNG_MB = 3;
/** How long requests wait for a busy worker before another one starts (when fewer than `size` run). */
const GROW_AFTER_MS = 250;
/** ... and at least this much waits then: a couple of whole chunks, not a few small patches. */
const GROW_BYTES = 2 << 20;

export class WorkerPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: { req: WorkerRequest; resolve: (r: WorkerReply) => void; reject: (e: Error) => void }[] = [];
  private pending = new Map<number, { worker: Worker; resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  /** Workers allowed from now on (limit()); `size` stays what queues are sized by. */
  private max: number;
  private readonly retired = new WeakSet<Worker>();

  private readonly script = workerScript();
  /** Since when requests have been waiting with no worker idle (0: not now). */
  private backlogSince = 0;
  /** Bytes of the requests waiting. */
  private queuedBytes = 0;

  /**
   * Up to `size` workers, started as the work needs them: one at first, another once requests have
   * waited for a busy worker for GROW_AFTER_MS with GROW_BYTES or more of them waiting. Each costs
   * ~30 MiB (an isolate and the codec's WASM memory), which an incremental (small patches, digests
   * compared in the main thread) does not need twice.
   */
  constructor(readonly size = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length))) {
    this.max = size;
    this.spawn();
  }

  /**
   * At most `n` workers from now on: idle ones beyond that stop now, busy ones once they reply. Once
   * the bulk of a snapshot is compressed, what is left (catching up, the last pass, patches) keeps
   * one busy at most, and each other one would hold its ~30 MiB to the end.
   */
  limit(n: number): void {
    this.max = Math.max(1, Math.min(this.size, n));
    while (this.workers.length > this.max && this.idle.length) this.retire(this.idle.pop()!);
  }

  private retire(w: Worker): void {
    this.retired.add(w);
    this.workers = this.workers.filter((x) => x !== w);
    void w.terminate();
  }

  private spawn(): void {
    const w = new Worker(this.script, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
    w.on('message', (reply: WorkerReply) => this.onReply(w, reply));
    w.on('error', (err) => this.fail(err));
    w.on('exit', (code) => code !== 0 && !this.retired.has(w) && this.fail(new Error(`compression worker exited with code ${code}`)));
    this.workers.push(w);
    this.idle.push(w);
  }

  /** Workers started so far. */
  get started(): number {
    return this.workers.length;
  }

  /**
   * Compresses `raw`. With `take`, a buffer that owns its memory (or a pool buffer) moves to the
   * worker without a copy and is unusable afterwards (the imaging hot path); without, the bytes are
   * copied. The frame is usually in a pool buffer: hand it to chunkBuffers.give() once written.
   */
  compress(raw: Buffer, level: number, opts: { take?: boolean; digestsFor?: string } = {}): Promise<Buffer> {
    return this.run({ id: 0, op: 'compress', ...(opts.take ? movable(raw) : copied(raw)), level, ...(opts.digestsFor ? { digestsFor: opts.digestsFor } : {}) }).then(bytes);
  }

  /**
   * Decompresses a frame (moved to the worker when it owns its memory: unusable after); returns the raw
   * bytes (in a pool buffer when they fit one) with their sha256 (hex), unless `hash` is false. With
   * `checkDigests` (the chunk's id), also whether the block digests after the frame match the bytes.
   */
  decompress(frame: Buffer, rawLength: number, hash = true, checkDigests?: string): Promise<{ raw: Buffer; hash: string; digests?: WorkerReply['digests'] }> {
    const out = rawLength >= BufferPool.MIN_POOLED && rawLength <= BufferPool.CAPACITY ? (chunkBuffers.take(rawLength).buffer as ArrayBuffer) : null;
    return this.run({ id: 0, op: 'decompress', ...movable(frame), rawLength, hash, out, ...(checkDigests ? { checkDigests } : {}) }).then((r) => ({
      raw: bytes(r),
      hash: r.hash ?? '',
      ...(r.digests ? { digests: r.digests } : {}),
    }));
  }

  /**
   * Writes `blocks` over a stored cell in a worker (repo/overlay.ts): `frame` is the base chunk
   * (moved to the worker), `patch` the blocks an earlier patch changed. With kind 'cell', `hash` is the
   * base's sha256, for the caller to check before storing bytes that came from it.
   */
  overlay(
    frame: Buffer,
    rawLength: number,
    baseId: string,
    patch: Map<number, Buffer>,
    blocks: [number, Buffer][],
    blockSize: number,
  ): Promise<{ kind: 'same' | 'base' | 'patch' | 'cell'; data?: Buffer; hash?: string }> {
    const p = [...patch];
    const req: WorkerRequest = {
      id: 0,
      op: 'overlay',
      ...movable(frame),
      rawLength,
      baseId,
      blockSize,
      patch: p.length ? gathered(p.map(([, b]) => b)) : null,
      patchOffs: p.map(([k]) => k),
      patchLens: p.map(([, b]) => b.length),
      blocks: gathered(blocks.map(([, b]) => b)),
      offs: blocks.map(([o]) => o),
      lens: blocks.map(([, b]) => b.length),
    };
    return this.run(req).then((r) => ({ kind: r.kind!, ...(r.data ? { data: bytes(r) } : {}), ...(r.hash ? { hash: r.hash } : {}) }));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }

  private run(req: WorkerRequest): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    req.id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.queuedBytes += req.length;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.queuedBytes -= job.req.length;
      this.pending.set(job.req.id, { worker: w, resolve: job.resolve, reject: job.reject });
      w.postMessage(job.req, requestBuffers(job.req));
    }
    // Chunks have waited for a busy worker for a while (a snapshot bound by compression): another one.
    // (An incremental's small patches, even queued, do not start one.)
    if (!this.queue.length) this.backlogSince = 0;
    else if (!this.backlogSince) this.backlogSince = performance.now();
    else if (performance.now() - this.backlogSince >= GROW_AFTER_MS && this.queuedBytes >= GROW_BYTES && this.workers.length < this.max && this.workers.length) {
      this.backlogSince = 0;
      this.spawn();
      this.dispatch();
    }
  }

  private onReply(w: Worker, reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (this.workers.length > this.max) this.retire(w);
    else this.idle.push(w);
    for (const ab of reply.spare ?? []) chunkBuffers.give(ab);
    if (p) {
      if (reply.error) p.reject(new Error(reply.error));
      else p.resolve(reply);
    }
    this.dispatch();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const j of this.queue) j.reject(err);
    this.queue = [];
  }
}

/** The ArrayBuffers a request moves (each once: a transfer list may not name one twice). */
export function requestBuffers(r: WorkerRequest): ArrayBuffer[] {
  const all = [r.data, r.op === 'decompress' ? r.out : null, r.op === 'overlay' ? r.blocks.data : null, r.op === 'overlay' ? r.patch?.data : null];
  return [...new Set(all.filter((b): b is ArrayBuffer => !!b))];
}

/** A reply's bytes as a Buffer (a view of the moved memory). */
function bytes(r: WorkerReply): Buffer {
  return Buffer.from(r.data!, r.offset, r.length);
}

/** A copy of the bytes, in memory of its own (a pool buffer when they fit one), to move to a worker. */
function copied(b: Uint8Array): Moved {
  const c = chunkBuffers.take(b.byteLength);
  c.set(b);
  return { data: c.buffer as ArrayBuffer, offset: c.byteOffset, length: c.byteLength };
}

/** Pieces joined into memory of their own, to move to a worker. */
function gathered(parts: Uint8Array[]): Moved {
  const c = chunkBuffers.take(parts.reduce((n, b) => n + b.byteLength, 0));
  let pos = 0;
  for (const b of parts) {
    c.set(b, pos);
    pos += b.byteLength;
  }
  return { data: c.buffer as ArrayBuffer, offset: c.byteOffset, length: c.byteLength };
}

/**
 * The bytes to move to another thread. A buffer that owns its whole ArrayBuffer (as Buffer.alloc of
 * a chunk does), or a view of a pool buffer, moves as it is, without a copy: the caller must not use
 * it after. Anything else (a slice of Node's shared 8 KiB pool, say) is copied.
 */
export function movable(b: Uint8Array): Moved {
  const ab = b.buffer;
  if (ab instanceof ArrayBuffer && ((b.byteOffset === 0 && b.byteLength === ab.byteLength) || chunkBuffers.owns(ab))) return { data: ab, offset: b.byteOffset, length: b.byteLength };
  return copied(b);
}
