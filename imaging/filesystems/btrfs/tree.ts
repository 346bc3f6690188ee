// btrfs address translation and tree walking: the chunk map (logical → physical on this device, every
// copy) and a breadth-first walker that reads each level's blocks in physical order, verifies every
// block (checksum, fsid, address, level, the generation its parent recorded) and never visits a block
// twice in one walk. Levels strictly decrease down a walk (at most 8) and a session reads at most a
// budget of blocks, so crafted pointers (cycles, shared subtrees) cannot make it loop or explode.

import {
  BG_DUP,
  BG_KNOWN_PROFILES,
  BG_RAID0,
  BG_RAID1,
  BG_RAID10,
  BG_RAID1C3,
  BG_RAID1C4,
  BG_RAID5,
  BG_RAID6,
  BtrfsDamage,
  BtrfsUnsupported,
  CHUNK_ITEM,
  HEADER_SIZE,
  KEY_PTR_SIZE,
  TreeBlock,
  blockProblem,
  u64,
  type Superblock,
} from './format';
import type { ByteReader } from '../types';

export interface Chunk {
  logical: number;
  length: number;
  type: number;
  copies: number[]; /* physical offset of each copy on this device */
}

/** Copies each profile keeps of every byte, and how many stripes its chunks have. */
const MIRRORS: [number, number][] = [
  [BG_DUP, 2],
  [BG_RAID1, 2],
  [BG_RAID1C3, 3],
  [BG_RAID1C4, 4],
];

/** One chunk item (from the superblock's system chunk array or the chunk tree); `size` is what the item may span. */
export function parseChunk(s: Superblock, logical: number, b: Buffer, exactSize: boolean): Chunk {
  if (b.length < 80) throw new BtrfsDamage(`the chunk item at logical ${logical} is truncated (${b.length} bytes)`);
  const length = u64(b, 0, 'a chunk length');
  const type = u64(b, 24, 'a chunk type');
  const n = b.readUInt16LE(44);
  const size = 48 + 32 * n;
  if (n < 1 || size > b.length || (exactSize && size !== b.length)) throw new BtrfsDamage(`the chunk item at logical ${logical} claims ${n} stripes in ${b.length} bytes`);
  if (!length || length % s.sectorSize || logical % s.sectorSize) throw new BtrfsDamage(`the chunk at logical ${logical} has an implausible length ${length}`);
  if (type & ~(0x7 | BG_KNOWN_PROFILES)) throw new BtrfsDamage(`the chunk at logical ${logical} has unknown type bits 0x${type.toString(16)}`);
  if (type & (BG_RAID5 | BG_RAID6)) throw new BtrfsUnsupported('it has RAID5/6 chunks');
  const mirrored = MIRRORS.find(([bit]) => type & bit);
  const striped = type & (BG_RAID0 | BG_RAID10);
  // A striped chunk over one stripe is laid out like a single one.
  if ((striped && n > 1) || (mirrored && n !== mirrored[1]) || (!mirrored && !striped && n !== 1)) {
    throw new BtrfsUnsupported(`a chunk at logical ${logical} has ${n} stripes in profile 0x${type.toString(16)} (striped over several devices)`);
  }
  const copies: number[] = [];
  for (let i = 0; i < n; i++) {
    const devid = u64(b, 48 + 32 * i, 'a stripe devid');
    const offset = u64(b, 56 + 32 * i, 'a stripe offset');
    if (devid !== s.devid) throw new BtrfsUnsupported(`a chunk has a copy on device ${devid}, this is device ${s.devid} (a filesystem over several devices)`);
    if (offset % s.sectorSize || offset + length > s.devTotalBytes)
      throw new BtrfsDamage(`the chunk at logical ${logical} has a copy at byte ${offset}, outside the device (${s.devTotalBytes} bytes)`);
    copies.push(offset);
  }
  return { logical, length, type, copies };
}

/** Logical → physical for this device, built from the system chunk array and the chunk tree. */
export class ChunkMap {
  private chunks: Chunk[] = [];

  add(c: Chunk): void {
    const i = this.indexAfter(c.logical); // first chunk starting after c
    const prev = this.chunks[i - 1];
    if (prev && prev.logical === c.logical) {
      // The system chunks appear in the superblock's array and in the chunk tree: the same chunk twice.
      if (prev.length === c.length && prev.type === c.type && prev.copies.join() === c.copies.join()) return;
      throw new BtrfsDamage(`two different chunks start at logical ${c.logical}`);
    }
    const next = this.chunks[i];
    if ((prev && prev.logical + prev.length > c.logical) || (next && c.logical + c.length > next.logical)) {
      throw new BtrfsDamage(`the chunk at logical ${c.logical} overlaps another`);
    }
    this.chunks.splice(i, 0, c);
  }

  get all(): readonly Chunk[] {
    return this.chunks;
  }

  private indexAfter(logical: number): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.chunks[mid].logical <= logical) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Every physical copy of [logical, logical+length) on this device, as [offset, length] runs; throws if any byte is unmapped. */
  map(logical: number, length: number, what: string): [number, number][] {
    const out: [number, number][] = [];
    let at = logical;
    const end = logical + length;
    if (!(length > 0) || end > Number.MAX_SAFE_INTEGER) throw new BtrfsDamage(`${what} has an implausible length ${length}`);
    while (at < end) {
      const c = this.chunks[this.indexAfter(at) - 1];
      if (!c || at >= c.logical + c.length) throw new BtrfsDamage(`${what} (logical ${logical}+${length}) is outside every chunk`);
      const n = Math.min(end, c.logical + c.length) - at;
      for (const copy of c.copies) out.push([copy + (at - c.logical), n]);
      at += n;
    }
    return out;
  }
}

/** Parses the superblock's system chunk array: (key, chunk item) pairs. */
export function bootstrapChunks(s: Superblock): ChunkMap {
  const map = new ChunkMap();
  const a = s.sysChunkArray;
  let at = 0;
  for (let n = 0; at < a.length; n++) {
    if (at + 17 + 48 > a.length || n > 64) throw new BtrfsDamage('the system chunk array does not parse');
    if (a[at + 8] !== CHUNK_ITEM) throw new BtrfsDamage(`the system chunk array holds a key of type ${a[at + 8]}`);
    const logical = u64(a, at + 9, 'a system chunk address');
    const size = 48 + 32 * a.readUInt16LE(at + 17 + 44);
    if (at + 17 + size > a.length) throw new BtrfsDamage('the system chunk array does not parse');
    map.add(parseChunk(s, logical, a.subarray(at + 17, at + 17 + size), true));
    at += 17 + size;
  }
  if (!map.all.length) throw new BtrfsDamage('the system chunk array is empty');
  return map;
}

/** A block to read: its address, the level and (when known) generation its parent recorded, the key range it covers. */
export interface Want {
  logical: number;
  level: number;
  generation?: number;
  lo: bigint;
  hi: bigint;
}

export interface WalkOptions {
  /** Whether to read child i of `node` (its range: lo..hi objectids); default: every child. */
  descend?(node: TreeBlock, i: number, lo: bigint, hi: bigint): boolean;
  onBlock(b: TreeBlock, copies: [number, number][]): void;
  /**
   * A tree being dropped (a deleted subvolume): its parents still point at children the cleaner has
   * freed, whose place may hold anything now. Children that do not verify are skipped, not fatal.
   */
  tolerant?: boolean;
}

const MAX_KEY = 2n ** 64n - 1n;
const READ_RUN = 64; // blocks per read when they lie back to back

/** Reads verified tree blocks of one filesystem; counts them against a budget. */
export class TreeReader {
  private read = 0;
  private readonly budget: number;

  constructor(
    readonly p: ByteReader,
    readonly s: Superblock,
    readonly map: ChunkMap,
  ) {
    // Every block of the device twice over, plus slack: more means pointers loop through shared subtrees.
    this.budget = 2 * Math.ceil(p.size / s.nodeSize) + 10_000;
  }

  get blocksRead(): number {
    return this.read;
  }

  /** Walks the tree rooted at `root` breadth first; `what` names it in errors. */
  async walk(root: { logical: number; level: number; generation?: number }, what: string, o: WalkOptions): Promise<void> {
    const seen = new Set<number>([root.logical]);
    let level: Want[] = [{ ...root, lo: 0n, hi: MAX_KEY }];
    while (level.length) {
      const next: Want[] = [];
      const blocks = await this.readMany(level);
      for (let k = 0; k < level.length; k++) {
        const w = level[k];
        const b = blocks[k];
        if (typeof b === 'string') {
          if (o.tolerant) continue;
          throw new BtrfsDamage(`${what}: tree block ${w.logical} (level ${w.level}) ${b}`);
        }
        o.onBlock(b, this.map.map(b.logical, this.s.nodeSize, `${what}: tree block ${b.logical}`));
        if (!b.level) continue;
        for (let i = 0; i < b.nritems; i++) {
          const lo = b.ptrKey(i).objectid;
          const hi = i + 1 < b.nritems ? b.ptrKey(i + 1).objectid : w.hi;
          if (o.descend && !o.descend(b, i, lo, hi)) continue;
          const child = b.ptrBlock(i);
          // Within one tree every block has one parent (only different trees share blocks).
          if (seen.has(child)) throw new BtrfsDamage(`${what}: tree block ${child} is reached twice (from ${b.logical}): the tree pointers loop`);
          seen.add(child);
          next.push({ logical: child, level: b.level - 1, generation: b.ptrGeneration(i), lo, hi });
        }
      }
      level = next;
    }
  }

  /** Reads and verifies blocks, in physical order, back-to-back ones together; a string says why a block did not verify on any copy. */
  async readMany(wants: Want[]): Promise<(TreeBlock | string)[]> {
    const ns = this.s.nodeSize;
    this.read += wants.length;
    if (this.read > this.budget) throw new BtrfsDamage(`more than ${this.budget} tree blocks were reached: the tree pointers loop`);
    const out: (TreeBlock | string)[] = new Array(wants.length);
    const copies = wants.map((w) => {
      try {
        if (w.logical % this.s.sectorSize) return `is not sector-aligned`;
        const c = this.map.map(w.logical, ns, `tree block ${w.logical}`).map(([off]) => off);
        return c.some((off) => off + ns > this.p.size) ? `lies past the end of the partition (${this.p.size} bytes): is the image truncated?` : c;
      } catch (e) {
        if (e instanceof BtrfsDamage) return 'is outside every chunk';
        throw e;
      }
    });
    const order = wants.map((_, k) => k).filter((k) => typeof copies[k] !== 'string');
    for (const k of wants.keys()) if (typeof copies[k] === 'string') out[k] = copies[k] as string;
    order.sort((a, b) => (copies[a] as number[])[0] - (copies[b] as number[])[0]);
    for (let i = 0; i < order.length;) {
      const first = (copies[order[i]] as number[])[0];
      let j = i + 1;
      while (j < order.length && j - i < READ_RUN && (copies[order[j]] as number[])[0] === first + (j - i) * ns) j++;
      const buf = await this.p.read(first, (j - i) * ns);
      for (let m = i; m < j; m++) {
        const k = order[m];
        out[k] = await this.verified(wants[k], copies[k] as number[], buf.subarray((m - i) * ns, (m - i + 1) * ns));
      }
      i = j;
    }
    return out;
  }

  /** The first copy that verifies (the first one already read), else every copy's problem. */
  private async verified(w: Want, copies: number[], firstCopy: Buffer): Promise<TreeBlock | string> {
    const problems: string[] = [];
    for (let c = 0; c < copies.length; c++) {
      const buf = c === 0 ? firstCopy : await this.p.read(copies[c], this.s.nodeSize);
      let why: string | null;
      try {
        why = this.problem(w, buf);
      } catch (e) {
        if (!(e instanceof BtrfsDamage)) throw e;
        why = e.message;
      }
      if (!why) return new TreeBlock(w.logical, Buffer.from(buf));
      problems.push(copies.length > 1 ? `copy ${c + 1} at byte ${copies[c]} ${why}` : why);
    }
    return problems.join('; ');
  }

  private problem(w: Want, buf: Buffer): string | null {
    const why = blockProblem(this.s, w.logical, buf);
    if (why) return why;
    const level = buf[0x64];
    if (level !== w.level) return `has level ${level}, its parent says ${w.level}`;
    const gen = u64(buf, 0x50, 'a tree block generation');
    if (w.generation !== undefined && gen !== w.generation) return `has generation ${gen}, its parent says ${w.generation} (a stale or overwritten block)`;
    // Log trees are written in the transaction after the superblock's.
    if (gen > this.s.generation + 1) return `has generation ${gen}, newer than the filesystem's ${this.s.generation}`;
    if (level > 0) {
      for (let i = 0; i < buf.readUInt32LE(0x60); i++) {
        const at = HEADER_SIZE + i * KEY_PTR_SIZE;
        if (u64(buf, at + 17, 'a child pointer') % this.s.sectorSize) return `points at unaligned child ${buf.readBigUInt64LE(at + 17)}`;
        if (u64(buf, at + 25, 'a child generation') > gen) return `has a child newer than itself`;
      }
    }
    return null;
  }
}
