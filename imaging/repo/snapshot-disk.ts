// A ByteReader over a snapshot's disk (or one of its partitions), read from the repository's chunks
// on demand. Chunks are cached in a small LRU, so memory stays bounded whatever the disk size.
import { DevsnapError } from '../core/errors';
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
 */
export class ChunkCache {
  private readonly entries = new Map<string, Promise<Buffer>>();
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

  get(id: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.entries.get(id);
    if (hit) {
      this.hits++;
      this.entries.delete(id);
      this.entries.set(id, hit); // most recently used last
      return hit;
    }
    this.reads++;
    const p = load();
    this.entries.set(id, p);
    p.catch(() => this.entries.delete(id));
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    return p;
  }
}

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

  /** A data extent's bytes; cached by its first chunk id (a patch id names its whole content). */
  private chunk(e: Extent): Promise<Buffer> {
    return this.cache.get(e[2], () => this.chunks.readExtent(e));
  }

  async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || !Number.isFinite(position)) throw new DevsnapError('INTERNAL', `Bad read of ${length} bytes at ${position}.`);
    const out = Buffer.alloc(length);
    const end = Math.min(position + length, this.size);
    // The runs the range covers, their chunks fetched together (decompressed in parallel), then copied.
    const parts: { at: number; from: number; to: number; data: Promise<Buffer> }[] = [];
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
      if (ref !== ZERO && ref !== FREE) parts.push({ at: pos - position, from: pos - rs, to: to - rs, data: this.chunk(ext) });
      pos = to;
      i++;
    }
    for (const p of parts) (await p.data).copy(out, p.at, p.from, p.to);
    return out;
  }
}
