// A ByteReader over a snapshot's disk (or one of its partitions), read from the repository's chunks
// on demand. Chunks are cached in a small LRU, so memory stays bounded whatever the disk size.
import { DevsnapError } from '../core/errors';
import { chunkBuffers } from '../core/memory';
import type { ByteReader } from '../filesystems/types';
import { Extent, Kind, Manifest, partitionOf, type Extents } from './manifest';

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

export class SnapshotDisk implements ByteReader {
  readonly size: number;
  // The extents the range covers, in disk order, held as indexes into the areas' Extents (16 bytes
  // each, no tuples: a 1 TB disk has ~a million): where each starts, relative to the range...
  private readonly starts: Float64Array;
  // ...and which area's Extents (`maps`) and which extent of it.
  private readonly mapOf: Uint32Array;
  private readonly indexIn: Uint32Array;
  private readonly maps: Extents[] = [];
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
    // Areas are in disk order without overlap, and each area's extents follow each other (the
    // manifest is checked so when read): the extents in range are in disk order as they come.
    const inRange: [Extents, number, number, number][] = []; // map, first, last + 1, area start
    let n = 0;
    for (const a of [...manifest.areas].sort((x, y) => x.start - y.start)) {
      if (a.start + a.size <= start || a.start >= end) continue;
      const ex = a.extents;
      let first = 0;
      while (first < ex.length && a.start + ex.offset(first) + ex.size(first) <= start) first++;
      let last = first;
      while (last < ex.length && a.start + ex.offset(last) < end) last++;
      inRange.push([ex, first, last, a.start]);
      n += last - first;
    }
    this.starts = new Float64Array(n);
    this.mapOf = new Uint32Array(n);
    this.indexIn = new Uint32Array(n);
    let k = 0;
    for (const [ex, first, last, areaStart] of inRange) {
      this.maps.push(ex);
      for (let i = first; i < last; i++, k++) {
        // A chunk that starts before the range keeps its own start, so offsets into it stay right.
        this.starts[k] = areaStart + ex.offset(i) - start;
        this.mapOf[k] = this.maps.length - 1;
        this.indexIn[k] = i;
      }
    }
  }

  /** Index of the last run starting at or before pos (-1 if none). */
  private find(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= pos) {
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
    while (pos < end && i < this.starts.length) {
      const ex = this.maps[this.mapOf[i]];
      const j = this.indexIn[i];
      const rs = this.starts[i];
      const rl = ex.size(j);
      if (rs + rl <= pos) {
        i++;
        continue;
      }
      if (rs > pos) pos = rs; // a gap no area covers: zeros
      if (pos >= end) break;
      const to = Math.min(rs + rl, end);
      const kind = ex.kind(j);
      if (kind === Kind.Chunk || kind === Kind.Patch) parts.push({ at: pos - position, from: pos - rs, to: to - rs, chunk: this.chunk(ex.at(j)) });
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
