// Memory of chunk buffers. Chunks move between threads (postMessage with transfer) by the thousand;
// allocated per chunk, a moved ArrayBuffer's memory is freed only when a garbage collection in the
// thread that last held it finds it (V8 waits for ~64 MB of such memory per thread), and then into
// the glibc arena of the thread that allocated it, which keeps it. Buffers from one pool, moving
// round trip, avoid both: no collection has anything to find, no arena grows. (This replaced a full
// collection forced every 4 chunks in each worker.)
import * as fs from 'fs';
import { isMainThread, threadId } from 'worker_threads';

/**
 * Chunk-sized ArrayBuffers, reused instead of allocated per chunk. A 1 MiB buffer is malloc'd by one
 * thread and freed by another once a collection finds it (it moves between threads), and glibc keeps
 * such memory in per-thread arenas: on the bench's disk that retention, not live data, was ~60 MB of
 * a full snapshot's 212 MB (MALLOC_MMAP_THRESHOLD_=131072 alone brought it to 154 MB). Buffers that
 * go round trip (main -> worker -> main) and back into this pool are never freed at all.
 *
 * One size class: `CAPACITY` holds a 1 MiB chunk (the default chunk size) or its zstd frame, whose
 * bound is a little over the chunk. Smaller requests (patches, small frames) and larger ones (other
 * chunk sizes) are ordinary allocations, as before.
 */
export class BufferPool {
  static readonly CAPACITY = (1 << 20) + (64 << 10);
  static readonly MIN_POOLED = 128 << 10;
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly keep = 16) {}

  /** Counters for DEVSNAP_MEMTRACE: buffers made (none was free), dropped (the pool was full), bytes asked outside the class. */
  readonly stats = { created: 0, dropped: 0, unpooled: 0 };

  /** `n` bytes (contents undefined) in a pooled buffer when `n` fits the class, else a buffer of their own. */
  take(n: number): Buffer {
    if (n < BufferPool.MIN_POOLED || n > BufferPool.CAPACITY) {
      this.stats.unpooled += n;
      return Buffer.allocUnsafeSlow(n);
    }
    return Buffer.from(this.pop(), 0, n);
  }

  /**
   * Like take(), but a pool buffer for any `n` up to CAPACITY: for bytes held briefly and handed back
   * (a metadata read, a stored frame on its way to be decompressed), which, small, would otherwise
   * each be memory of their own that only a collection frees: reading an 8 GiB root's inode tables
   * while paused made ~26 MB of them.
   */
  scratch(n: number): Buffer {
    return n <= BufferPool.CAPACITY && n > 0 ? Buffer.from(this.pop(), 0, n) : this.take(n);
  }

  private pop(): ArrayBuffer {
    if (!this.free.length) this.stats.created++;
    return this.free.pop() ?? new ArrayBuffer(BufferPool.CAPACITY);
  }

  /**
   * Whether `ab` is a pool buffer, which a buffer that moved to a worker and back still is (a moved
   * ArrayBuffer is a new object each time, so it is known by its size, which nothing else uses).
   * Pool buffers are never shared by unrelated views, so a view of one may move its whole buffer.
   */
  owns(ab: ArrayBufferLike): boolean {
    return ab instanceof ArrayBuffer && ab.byteLength === BufferPool.CAPACITY;
  }

  /** Hands a pooled buffer back once nothing uses its bytes any more; any other buffer is ignored (the GC's). */
  give(b: ArrayBufferLike | Uint8Array | null | undefined): void {
    const ab = b instanceof Uint8Array ? b.buffer : b;
    if (!ab || !this.owns(ab)) return;
    if (this.free.length >= this.keep) this.stats.dropped++;
    else if (!this.free.includes(ab as ArrayBuffer)) this.free.push(ab as ArrayBuffer);
  }

  get pooled(): number {
    return this.free.length;
  }
}

/** The main thread's pool: chunk reads, compression and decompression buffers (worker-pool.ts). */
export const chunkBuffers = new BufferPool();

// Debug switch: DEVSNAP_MEMTRACE=FILE makes every thread (main and workers) append a JSON line of
// process.memoryUsage() to FILE every 50 ms (the main thread adds RssAnon/RssFile from
// /proc/self/status), for bench/memtrace.js to say where the peak RSS goes. Off: nothing runs.

let tracing = false;
let t0 = Date.now();

/** With DEVSNAP_MEMTRACE: a line naming the phase that starts now, for bench/memtrace.js to place the peak. */
export function memMark(phase: string): void {
  const file = process.env.DEVSNAP_MEMTRACE;
  if (file && tracing) fs.appendFileSync(file, JSON.stringify({ t: Date.now() - t0, thread: 'mark', phase }) + '\n');
}

export function startMemTrace(): void {
  const file = process.env.DEVSNAP_MEMTRACE;
  if (!file || tracing) return;
  tracing = true;
  t0 = Date.now();
  const sample = () => {
    const m = process.memoryUsage();
    const line: Record<string, number | string> = {
      t: Date.now() - t0,
      thread: isMainThread ? 'main' : `w${threadId}`,
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    };
    if (isMainThread) {
      Object.assign(line, { ...chunkBuffers.stats, free: chunkBuffers.pooled });
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      for (const k of ['RssAnon', 'RssFile', 'VmHWM']) {
        const v = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status);
        if (v) line[k] = Number(v[1]) * 1024;
      }
    }
    fs.appendFileSync(file, JSON.stringify(line) + '\n');
  };
  sample();
  setInterval(sample, 50).unref();
  process.on('exit', sample);
}
