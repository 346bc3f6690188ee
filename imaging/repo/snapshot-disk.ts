// A ByteReader over a snapshot's disk (or one of its partitions), read from the repository's chunks
// on demand. Chunks are cached in a small LRU, so memory stays bounded whatever the disk size.
import { DevsnapError } from '../core/errors';
import { chunkBuffers } from '../core/memory';
import type { ByteReader } from '../filesystems/types';
import { Extent, FREE, Manifest, ZERO, partitionOf } from './manifest';

/** Anything that returns a data extent's verified raw bytes (a ChunkReader). */
export interface ChunkSource {
  readExtent(e: Extent): Promise<Buffer>;
}

export interface SnapshotDiskOptions {
  /** Chunks kept in memory (default 32: 32 MiB with the default 1 MiB chunks). */
  cacheChunks?: number;
  /**
   * A cache shared with other snapshots of the same repository (instead of one of its own): two
   * snapshots of one disk share most of their chunks, so comparing them decompresses each once.
   */
  cache?: ChunkCache;
}

/**
 * Decompressed chunks by id, least recently used dropped first. Ids name content (a chunk's hash,
 * a patch's id its whole content), so one cache serves every snapshot of a repository.
 *
 * A dropped chunk's buffer goes back to the pool (core/memory.ts) once no read still copies from it
 * (`use` pins it meanwhile): left to the collector, reading a parent's inode tables through this
 * cache made ~1 MiB of garbage per chunk, tens of MB before a collection found it.
 */
export class ChunkCache {
  private readonly entries = new Map<string, Entry>();
  /** Counters (tests and diagnostics). */
  reads = 0;
  hits = 0;

  constructor(private readonly max = 32) {
    this.max = Math.max(2, max);
  }

  /** Chunks held now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Chunk `id` (loaded with `load` unless held), pinned until `release` is called: the caller copies
   * what it needs out of it in between and keeps no view of it afterwards.
   */
  use(id: string, load: () => Promise<Buffer>): { data: Promise<Buffer>; release: () => void } {
    const held = this.entries.get(id);
    const entry: Entry = held ?? { data: load(), pins: 0, dropped: false };
    if (held) this.hits++;
    else {
      this.reads++;
      entry.data.catch(() => this.entries.get(id) === entry && this.entries.delete(id));
    }
    this.entries.delete(id);
    this.entries.set(id, entry); // most recently used last
    entry.pins++;
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      const old = this.entries.get(oldest)!;
      this.entries.delete(oldest);
      old.dropped = true;
      if (!old.pins) recycle(old);
    }
    let released = false;
    return {
      data: entry.data,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.pins === 0 && entry.dropped) recycle(entry);
      },
    };
  }
}

type Entry = { data: Promise<Buffer>; pins: number; dropped: boolean };
const recycle = (e: Entry) =>
  e.data.then(
    (b) => chunkBuffers.give(b),
    () => undefined,
  );

/** A run of the disk: [diskOffset, length, ref, the extent (for data)]. */
type Run = [number, number, string, Extent];

export class SnapshotDisk implements ByteReader {
  readonly size: number;
  private readonly runs: Run[];
  private readonly cache: ChunkCache;

  /**
   * The whole disk of `manifest`, or (with `partition`) the byte range of that partition, with
   * positions relative to its start.
   */
  constructor(
    private readonly chunks: ChunkSource,
    manifest: Manifest,
    partition?: number,
    opts: SnapshotDiskOptions = {},
  ) {
    this.cache = opts.cache ?? new ChunkCache(opts.cacheChunks ?? 32);
    let start = 0;
    let size = manifest.source.size;
    if (partition !== undefined) {
      const p = partitionOf(manifest, partition);
      start = p.start;
      size = p.size;
    }
    this.size = size;
    const end = start + size;
    const runs: Run[] = [];
    for (const a of [...manifest.areas].sort((x, y) => x.start - y.start)) {
      if (a.start + a.size <= start || a.start >= end) continue;
      for (const e of a.extents) {
        const [off, len, ref] = e;
        const from = Math.max(a.start + off, start);
        const to = Math.min(a.start + off + len, end);
        if (to <= from) continue;
        // A chunk that starts before the range: keep the chunk's own start so offsets into it stay right.
        runs.push([a.start + off - start, len, ref, e]);
      }
    }
    runs.sort((x, y) => x[0] - y[0]);
    this.runs = runs;
  }

  /** Index of the last run starting at or before pos (-1 if none). */
  private find(pos: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.runs[mid][0] <= pos) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** Counters of the cache it uses (tests and diagnostics). */
  get chunkReads(): number {
    return this.cache.reads;
  }
  get cacheHits(): number {
    return this.cache.hits;
  }

  /** A data extent's bytes, pinned until released; cached by its first chunk id (a patch id names its whole content). */
  private chunk(e: Extent): { data: Promise<Buffer>; release: () => void } {
    return this.cache.use(e[2], () => this.chunks.readExtent(e));
  }

  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    if (position < 0 || length < 0 || !Number.isFinite(position)) throw new DevsnapError('INTERNAL', `Bad read of ${length} bytes at ${position}.`);
    const out = into && into.length >= length ? into.subarray(0, length).fill(0) : Buffer.alloc(length);
    const end = Math.min(position + length, this.size);
    // The runs the range covers, their chunks fetched together (decompressed in parallel), then copied.
    const parts: { at: number; from: number; to: number; chunk: { data: Promise<Buffer>; release: () => void } }[] = [];
    let pos = position;
    let i = Math.max(0, this.find(pos));
    while (pos < end && i < this.runs.length) {
      const [rs, rl, ref, ext] = this.runs[i];
      if (rs + rl <= pos) {
        i++;
        continue;
      }
      if (rs > pos) pos = rs; // a gap no area covers: zeros
      if (pos >= end) break;
      const to = Math.min(rs + rl, end);
      if (ref !== ZERO && ref !== FREE) parts.push({ at: pos - position, from: pos - rs, to: to - rs, chunk: this.chunk(ext) });
      pos = to;
      i++;
    }
    try {
      for (const p of parts) (await p.chunk.data).copy(out, p.at, p.from, p.to);
    } finally {
      for (const p of parts) p.chunk.release();
    }
    return out;
  }
}
