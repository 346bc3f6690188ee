// A small pool of compression workers (one per core, at most 4) with a bounded number of jobs in
// flight, so memory stays bounded whatever the disk size.
import { Worker } from 'worker_threads';
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';

export type WorkerRequest =
  | { id: number; op: 'compress'; data: ArrayBuffer; level: number }
  | { id: number; op: 'decompress'; data: ArrayBuffer; rawLength: number; hash: boolean }
  | {
      id: number; op: 'overlay'; data: ArrayBuffer; rawLength: number; baseId: string; blockSize: number;
      patch: ArrayBuffer | null; patchOffs: number[]; patchLens: number[]; blocks: ArrayBuffer; offs: number[]; lens: number[];
    };
export type WorkerReply = { id: number; data?: ArrayBuffer; hash?: string; kind?: 'same' | 'base' | 'patch' | 'cell'; error?: string };

function workerScript(): string {
  // Beside this file both in tsc's out/imaging and in webpack's dist/.
  for (const name of ['compress-worker.js']) {
    const p = path.join(__dirname, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`compress-worker.js not found beside ${__dirname}; run npm run build`);
}

export class WorkerPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: { req: WorkerRequest; resolve: (r: WorkerReply) => void; reject: (e: Error) => void }[] = [];
  private pending = new Map<number, { worker: Worker; resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;

  constructor(size = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length))) {
    const script = workerScript();
    for (let i = 0; i < size; i++) {
      const w = new Worker(script);
      w.on('message', (reply: WorkerReply) => this.onReply(w, reply));
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`compression worker exited with code ${code}`)));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Compresses `raw`. With `take`, a buffer that owns its memory moves to the worker without a copy
   * and is unusable afterwards (the imaging hot path); without, the bytes are copied.
   */
  compress(raw: Buffer, level: number, opts: { take?: boolean } = {}): Promise<Buffer> {
    return this.run({ id: 0, op: 'compress', data: opts.take ? toTransferable(raw) : copyOf(raw), level }).then((r) => Buffer.from(r.data!));
  }

  /** Decompresses a frame (moved to the worker when it owns its memory: unusable after); returns the raw bytes with their sha256 (hex), unless `hash` is false. */
  decompress(frame: Buffer, rawLength: number, hash = true): Promise<{ raw: Buffer; hash: string }> {
    return this.run({ id: 0, op: 'decompress', data: toTransferable(frame), rawLength, hash }).then((r) => ({ raw: Buffer.from(r.data!), hash: r.hash ?? '' }));
  }

  /**
   * Writes `blocks` over a stored cell in a worker (capture/overlay.ts): `frame` is the base chunk
   * (moved to the worker), `patch` the blocks an earlier patch changed. With kind 'cell', `hash` is the
   * base's sha256, for the caller to check before storing bytes that came from it.
   */
  overlay(frame: Buffer, rawLength: number, baseId: string, patch: Map<number, Buffer>, blocks: [number, Buffer][], blockSize: number): Promise<{ kind: 'same' | 'base' | 'patch' | 'cell'; data?: Buffer; hash?: string }> {
    const p = [...patch];
    const req: WorkerRequest = {
      id: 0, op: 'overlay', data: toTransferable(frame), rawLength, baseId, blockSize,
      patch: p.length ? copyOf(Buffer.concat(p.map(([, b]) => b))) : null, patchOffs: p.map(([k]) => k), patchLens: p.map(([, b]) => b.length),
      blocks: copyOf(Buffer.concat(blocks.map(([, b]) => b))), offs: blocks.map(([o]) => o), lens: blocks.map(([, b]) => b.length),
    };
    return this.run(req).then((r) => ({ kind: r.kind!, ...(r.data ? { data: Buffer.from(r.data) } : {}), ...(r.hash ? { hash: r.hash } : {}) }));
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
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.pending.set(job.req.id, { worker: w, resolve: job.resolve, reject: job.reject });
      const r = job.req;
      w.postMessage(r, r.op === 'overlay' ? [r.data, r.blocks, ...(r.patch ? [r.patch] : [])] : [r.data]);
    }
  }

  private onReply(w: Worker, reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    this.idle.push(w);
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

function copyOf(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/**
 * The bytes as an ArrayBuffer to move to a worker. A buffer that owns its whole ArrayBuffer (as
 * Buffer.alloc of a chunk does) is moved as is, without a copy: the caller must not use it after.
 */
export function toTransferable(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  return copyOf(b);
}
