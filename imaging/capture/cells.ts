// The image being built, one area at a time, as cells: chunk-sized pieces aligned to the area's start.
// A cell starts as the parent snapshot's (when there is a comparable one) and is replaced as passes
// read the disk: in full (putFull: every used block of the cell read) or in part (overlay: only some
// blocks read, written over what the cell holds). Either way only what differs from the parent's
// stored chunk is stored, as a patch (repo/patch.ts) when that is under a quarter of the cell.
import type { ChunkSaver } from '../repo/chunk-saver';
import type { ChunkReader } from '../repo/chunk-reader';
import { isZero } from '../core/bytes';
import { JobQueue } from '../core/job-queue';
import { chunkBuffers } from '../core/memory';
import { Extents, ExtentsBuilder, ID_BYTES as ID, IdStore, Kind } from '../repo/extents';
import { decodePatch, diffBlocks, encodePatch } from '../repo/patch';
import { DIGEST_BLOCK, changedBlocks, loadDigests } from '../repo/digests';
import { overlayByDigests } from '../repo/overlay';
import type { Repository } from '../repo/repository';
import type { UsedBlocks } from '../filesystems/types';

export type Cell = { t: 'f' } | { t: 'z' } | { t: 'c'; id: string } | { t: 'p'; id: string; base: string };
const FREE_CELL: Cell = { t: 'f' };
/** Bytes read only to diff against: what is stored still names chunks every restore and verify checks. */
const UNVERIFIED = { verify: false };
const ZERO_CELL: Cell = { t: 'z' };

export interface PlannedArea {
  kind: 'raw' | 'partition';
  partition?: number;
  start: number;
  size: number;
  used: UsedBlocks | null;
}

/**
 * The cells of one area. A 1 TB disk has about a million, so they are kept as a kind and an id
 * reference per cell (5 bytes), ids 32 bytes each: the parent's in its Extents (not copied), new
 * ones appended here. `get` makes a Cell object when one is needed.
 */
export class AreaCells {
  readonly length: number;
  /** Whether cells come from a parent snapshot (false: every cell must be read). */
  readonly inherited: boolean;
  private readonly kinds: Uint8Array;
  /** Per data cell, its id's number (a patch's base is the next): below `parentIds`, in the parent's Extents. */
  private readonly refs: Uint32Array;
  /** The parent's cells as they came (keptFromParent). */
  private readonly parentKinds: Uint8Array;
  private readonly parentRefs: Uint32Array;
  private readonly parentIds: Buffer;
  private readonly parentIdCount: number;
  private readonly newIds = new IdStore();

  constructor(
    readonly area: PlannedArea,
    readonly chunkSize: number,
    parent?: Extents,
  ) {
    const n = Math.ceil(area.size / chunkSize);
    this.length = n;
    this.kinds = new Uint8Array(n); // Kind.Free
    this.refs = new Uint32Array(n);
    this.parentIds = parent?.idBytes ?? Buffer.alloc(0);
    this.parentIdCount = this.parentIds.length / ID;
    this.inherited = !!parent && fromExtents(parent, this);
    if (!this.inherited) {
      this.kinds.fill(Kind.Free);
      this.parentIdCount = 0;
    }
    this.parentKinds = this.inherited ? this.kinds.slice() : new Uint8Array(0);
    this.parentRefs = this.inherited ? this.refs.slice() : new Uint32Array(0);
  }

  /**
   * The parent image's used blocks of this area, when known: a block free there held nothing that
   * matters, so new bytes over it need no comparison with what the parent stored (CellStore.overlay).
   */
  parentUsed?: UsedBlocks;

  kind(i: number): Kind {
    return this.kinds[i] as Kind;
  }

  get(i: number): Cell {
    const k = this.kinds[i];
    if (k === Kind.Free) return FREE_CELL;
    if (k === Kind.Zero) return ZERO_CELL;
    const id = this.hex(this.refs[i]);
    return k === Kind.Chunk ? { t: 'c', id } : { t: 'p', id, base: this.hex(this.refs[i] + 1) };
  }

  set(i: number, c: Cell): void {
    if (c.t === 'f' || c.t === 'z') {
      this.kinds[i] = c.t === 'f' ? Kind.Free : Kind.Zero;
      return;
    }
    this.kinds[i] = c.t === 'c' ? Kind.Chunk : Kind.Patch;
    this.refs[i] = this.addId(c.id);
    if (c.t === 'p') this.addId(c.base);
  }

  /** Sets cell i from the parent's extent j (fromExtents): its ids stay where they are. */
  inherit(i: number, kind: Kind, parentRef: number): void {
    this.kinds[i] = kind;
    this.refs[i] = parentRef;
  }

  /** Bytes of the cells that hold data (not free, not zero). */
  dataBytes(): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) if (this.kinds[i] === Kind.Chunk || this.kinds[i] === Kind.Patch) n += this.cellLength(i);
    return n;
  }

  /** Data cells still as the parent stored them (an incremental's reused chunks). */
  keptFromParent(): number {
    let n = 0;
    for (let i = 0; i < this.parentKinds.length; i++) {
      const k = this.kinds[i];
      if ((k === Kind.Chunk || k === Kind.Patch) && k === this.parentKinds[i] && this.refs[i] === this.parentRefs[i]) n++;
    }
    return n;
  }

  cellLength(i: number): number {
    return Math.min(this.chunkSize, this.area.size - i * this.chunkSize);
  }

  /** The manifest's extents: one per data cell, zero and free runs merged. */
  extents(): Extents {
    const out = new ExtentsBuilder();
    for (let i = 0; i < this.length; i++) {
      const k = this.kinds[i] as Kind;
      const off = i * this.chunkSize;
      const len = this.cellLength(i);
      if (k === Kind.Free || k === Kind.Zero) out.pushMerged(off, len, k);
      else {
        const [src, at] = this.idBytes(this.refs[i]);
        const [baseSrc, baseAt] = k === Kind.Patch ? this.idBytes(this.refs[i] + 1) : [src, -1];
        out.pushIds(off, len, k, src, at, baseSrc, baseAt);
      }
    }
    return out.finish();
  }

  private addId(hex: string): number {
    return this.parentIdCount + this.newIds.add(hex);
  }

  /** Where id number `ref` is: [buffer, offset]. */
  private idBytes(ref: number): [Buffer, number] {
    return ref < this.parentIdCount ? [this.parentIds, ref * ID] : [this.newIds.bytes, (ref - this.parentIdCount) * ID];
  }

  private hex(ref: number): string {
    const [b, at] = this.idBytes(ref);
    return b.toString('hex', at, at + ID);
  }
}

/** Whether `blocks` (whole filesystem blocks, [offset in cell i, bytes]) all lie where the parent image had free blocks. */
function overParentFree(a: AreaCells, i: number, blocks: [number, Buffer][], blockSize: number): boolean {
  const used = a.parentUsed;
  if (!used || used.blockSize !== blockSize) return false;
  const cellStart = i * a.chunkSize;
  for (const [off, b] of blocks) {
    if (off % blockSize !== 0 || b.length % blockSize !== 0) return false;
    for (let k = (cellStart + off) / blockSize, end = k + b.length / blockSize; k < end; k++) if (used.bitmap[k >> 3] & (1 << (k & 7))) return false;
  }
  return true;
}

/** Fills `cells` from a parent's extents; false when they are not cell-aligned (another chunk size). */
function fromExtents(extents: Extents, cells: AreaCells): boolean {
  const { chunkSize } = cells;
  const size = cells.area.size;
  let pos = 0;
  let c = 0;
  for (let i = 0; i < extents.length; i++) {
    const [off, len, kind] = [extents.offset(i), extents.size(i), extents.kind(i)];
    if (off !== pos || off % chunkSize !== 0) return false;
    if (kind === Kind.Chunk || kind === Kind.Patch) {
      if (len !== Math.min(chunkSize, size - off)) return false;
      cells.inherit(c++, kind, extents.idAt(i) / ID);
    } else {
      if (len % chunkSize !== 0 && off + len !== size) return false;
      for (let o = 0; o < len; o += chunkSize) cells.inherit(c++, kind, 0);
    }
    pos += len;
  }
  return pos === size;
}

/** Stores cells: full chunks, or patches against the chunk a cell held before. */
export class CellStore {
  private readonly jobs: JobQueue;

  /** `compareBytes` (--full-read): cells read whole are compared with their base's bytes, not its digests. */
  constructor(
    private readonly repo: Repository,
    private readonly saver: ChunkSaver,
    private readonly reader: ChunkReader,
    depth: number,
    private readonly opts: { compareBytes?: boolean } = {},
  ) {
    this.jobs = new JobQueue(depth, (err) => err);
  }

  /**
   * Cell i's bytes are `buf` (null: nothing used in it). `blockSize` is the granularity of a patch.
   * Queued: the caller goes on reading while earlier cells are compared and stored.
   */
  async putFull(a: AreaCells, i: number, buf: Buffer | null, blockSize: number): Promise<void> {
    this.jobs.check();
    if (!buf) {
      a.set(i, FREE_CELL);
      return;
    }
    // A buffer not handed on goes back to the pool (core/memory.ts) rather than to the collector.
    if (isZero(buf)) {
      a.set(i, ZERO_CELL);
      chunkBuffers.give(buf);
      return;
    }
    const id = this.repo.cipher.chunkId(buf);
    const before = a.get(i);
    if (before.t === 'c' && before.id === id) {
      chunkBuffers.give(buf); // unchanged since the parent
      return;
    }
    if (before.t !== 'c' && before.t !== 'p') {
      a.set(i, { t: 'c', id });
      await this.saver.save(id, buf, true, true);
      return;
    }
    await this.jobs.add(async () => {
      a.set(i, await this.store(buf, id, before.t === 'p' ? before.base : before.id, blockSize));
    });
  }

  /**
   * Writes `blocks` ([offset in the cell, bytes]) over what cell i holds. Blocks freed since are not
   * zeroed: a free block's bytes do not matter to a filesystem, so the parent's are kept rather than
   * stored anew (a cell with no used block left becomes free: freeUnused).
   */
  async overlay(a: AreaCells, i: number, blocks: [number, Buffer][], blockSize: number): Promise<void> {
    this.jobs.check();
    const before = a.get(i);
    const len = a.cellLength(i);
    await this.jobs.add(async () => {
      try {
        await this.overlayCell(a, i, before, len, blocks, blockSize);
      } finally {
        for (const [, b] of blocks) chunkBuffers.give(b); // copied or compared by now: read buffers go back to the pool
      }
    });
  }

  private async overlayCell(a: AreaCells, i: number, before: Cell, len: number, blocks: [number, Buffer][], blockSize: number): Promise<void> {
    if ((before.t === 'c' || before.t === 'p') && overParentFree(a, i, blocks, blockSize)) {
      // New blocks where the parent had free space (a file written since): they are the patch as
      // they are, without reading and decompressing the base to compare.
      const baseId = before.t === 'c' ? before.id : before.base;
      const patch = before.t === 'p' ? decodePatch(await this.reader.read(before.id), before.id) : null;
      if (!patch || patch.blockSize === blockSize) {
        const merged = new Map(patch?.blocks ?? []);
        for (const [off, b] of blocks) for (let o = 0; o < b.length; o += blockSize) merged.set((off + o) / blockSize, b.subarray(o, o + blockSize));
        let bytes = 0;
        for (const b of merged.values()) bytes += b.length;
        if (bytes * 4 <= len) {
          a.set(i, await this.savePatch(encodePatch({ base: baseId, cellLength: len, blockSize, blocks: merged }), baseId));
          return;
        }
      }
    }
    if (before.t !== 'c' && before.t !== 'p') {
      // Nothing stored there: the blocks over zeros. (Even where every used block of a cell is new,
      // the cell is compared with its base: a file rewritten in place differs in a few blocks only.)
      const cell = chunkBuffers.take(len).fill(0);
      for (const [off, b] of blocks) b.copy(cell, off);
      if (isZero(cell)) {
        a.set(i, ZERO_CELL);
        chunkBuffers.give(cell);
      } else a.set(i, await this.storeChunk(cell, this.repo.cipher.chunkId(cell)));
      return;
    }
    const baseId = before.t === 'c' ? before.id : before.base;
    // The earlier patch is read verified here: its blocks go into the new patch under a new id.
    const earlier = before.t === 'p' ? decodePatch(await this.reader.read(before.id), before.id) : null;
    if (earlier && earlier.blockSize !== blockSize) {
      // Patched at another granularity (the partition holds another filesystem now): a whole new cell.
      const cell = await this.reader.readExtent([0, len, before.id, baseId]);
      for (const [off, b] of blocks) b.copy(cell, off);
      a.set(i, await this.storeChunk(cell, this.repo.cipher.chunkId(cell)));
      return;
    }
    const patch = earlier?.blocks ?? new Map<number, Buffer>();
    // Against the base's block digests when it has them: the base is then not read back at all.
    const digests = blockSize === DIGEST_BLOCK ? await this.reader.digests(baseId) : null;
    const byDigests = digests && overlayByDigests({ digests, hash: await loadDigests(), patch: new Map(patch), blocks, cellLength: len, blockSize, baseId });
    const r = byDigests || (await this.reader.overlay(baseId, patch, blocks, blockSize));
    if (r.kind === 'same') return;
    if (r.kind === 'base') a.set(i, { t: 'c', id: baseId });
    else if (r.kind === 'patch') a.set(i, await this.savePatch(r.data!, baseId));
    else a.set(i, isZero(r.data!) ? ZERO_CELL : await this.storeChunk(r.data!, this.repo.cipher.chunkId(r.data!)));
  }

  /**
   * A cell whose content is `cell` (id `id`, hashed here only when needed), stored as a patch over
   * chunk `base` when that is under a quarter of the cell (the rule repo/overlay.ts applies in the
   * worker), else as a chunk of its own.
   */
  private async store(cell: Buffer, id: string | null, base: string, blockSize: number): Promise<Cell> {
    // `cell` and the base read here go back to the pool (core/memory.ts) once nothing uses their bytes.
    if (id === base) {
      chunkBuffers.give(cell);
      return { t: 'c', id };
    }
    // The base's block digests say which blocks differ without reading the base back.
    const digests = !this.opts.compareBytes && blockSize === DIGEST_BLOCK ? await this.reader.digests(base) : null;
    let changed: Map<number, Buffer>;
    if (digests && digests.length === 8 * Math.ceil(cell.length / DIGEST_BLOCK)) changed = changedBlocks(await loadDigests(), digests, cell);
    else {
      const read = await this.reader.readExtent([0, cell.length, base], UNVERIFIED);
      changed = diffBlocks(read, cell, blockSize);
      chunkBuffers.give(read);
    }
    if (!changed.size) {
      chunkBuffers.give(cell);
      return { t: 'c', id: base };
    }
    let bytes = 0;
    for (const b of changed.values()) bytes += b.length;
    if (bytes * 4 > cell.length) return this.storeChunk(cell, id ?? this.repo.cipher.chunkId(cell));
    const patch = encodePatch({ base, cellLength: cell.length, blockSize, blocks: changed }); // copies the changed blocks out of cell
    chunkBuffers.give(cell);
    return this.savePatch(patch, base);
  }

  private async savePatch(raw: Buffer, base: string): Promise<Cell> {
    const pid = this.repo.cipher.chunkId(raw);
    await this.saver.save(pid, raw, true);
    return { t: 'p', id: pid, base };
  }

  private async storeChunk(cell: Buffer, id: string): Promise<Cell> {
    await this.saver.save(id, cell, true, true);
    return { t: 'c', id };
  }

  /** Marks cells that hold no used block any more as free (`used` is the area's current map). */
  freeUnused(a: AreaCells): void {
    const used = a.area.used;
    if (!used) return;
    for (let i = 0; i < a.length; i++) {
      const from = Math.floor((i * a.chunkSize) / used.blockSize);
      const to = Math.ceil((i * a.chunkSize + a.cellLength(i)) / used.blockSize);
      let any = false;
      for (let b = from; b < to && !any; b++) any = (used.bitmap[b >> 3] & (1 << (b & 7))) !== 0;
      if (!any) a.set(i, FREE_CELL);
    }
  }

  check(): void {
    this.jobs.check();
  }

  /** Waits until every queued cell is stored, its chunks appended to packs (so later overlays can read them back). */
  async drain(): Promise<void> {
    await this.jobs.drain();
    await this.saver.drain();
  }

  async settle(): Promise<void> {
    await this.jobs.settle();
    await this.saver.settle();
  }
}
