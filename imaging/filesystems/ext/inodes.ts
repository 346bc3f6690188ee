// The low level of the ext change scan (filesystems/ext/state.ts): a filesystem's geometry with every check it
// offers (descriptor checksums, pointers inside the filesystem), batched reads of block runs, the inode
// fingerprint, and a bounded walk of an inode's block map (extent trees, classic indirect maps).
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).

import { hash64 } from '../runs';
import { crc32cRaw } from '../checksums';
import {
  BG_CHECKSUM_OFFSET,
  EXT_SB_OFFSET,
  EXT_SB_SIZE,
  INCOMPAT_64BIT,
  INCOMPAT_META_BG,
  RO_COMPAT_BIGALLOC,
  RO_COMPAT_GDT_CSUM,
  RO_COMPAT_METADATA_CSUM,
  extGeometryProblems,
  groupDescriptorChecksum,
  parseExtSuperblock,
  readDescriptorTable,
  type ExtSuperblock,
} from './superblock';
import type { ByteReader } from '../types';
import { chunkBuffers } from '../../core/memory';

/** Something on disk does not hold: readExtState answers null, blocksToReread throws it. */
export class ExtDamage extends Error {}

/** Incompat features that do not change where blocks or inodes live (not meta_bg, journal_dev, compression). */
const INCOMPAT_OK =
  0x2 /* filetype */ |
  0x4 /* recover */ |
  0x40 /* extents */ |
  INCOMPAT_64BIT |
  0x100 /* mmp */ |
  0x200 /* flex_bg */ |
  0x400 /* ea_inode */ |
  0x1000 /* dirdata */ |
  0x2000 /* csum_seed */ |
  0x4000 /* largedir */ |
  0x8000 /* inline_data */ |
  0x10000 /* encrypt */ |
  0x20000; /* casefold */
/** Known ro_compat features; bigalloc, snapshots, replicas and shared blocks are not followed. */
const RO_COMPAT_OK =
  0x1 |
  0x2 |
  0x4 |
  0x8 /* huge_file */ |
  RO_COMPAT_GDT_CSUM |
  0x20 |
  0x40 |
  0x100 /* quota */ |
  RO_COMPAT_METADATA_CSUM |
  0x1000 /* readonly */ |
  0x2000 /* project */ |
  0x8000 /* verity */ |
  0x10000; /* orphan_present */
/** lazy_bg (uninitialized groups without checksums), exclude_inode, exclude_bitmap: old snapshot patches. */
const COMPAT_REFUSED = 0x40 | 0x80 | 0x100;
const RO_COMPAT_HUGE_FILE = 0x8;
export const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_MMP = 0x100;
export const RO_COMPAT_ORPHAN_PRESENT = 0x10000;
export const BG_INODE_UNINIT = 0x1;

export interface ExtGroup {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  flags: number;
  freeInodes: number;
  itableUnused: number;
  /** bg_inode_bitmap_csum (lo, and hi when the descriptor has it). */
  inodeBitmapCsum: number;
}

/** One ext filesystem as this scan follows it: superblock, checked descriptors and derived sizes. */
export interface ExtFs {
  p: ByteReader;
  s: ExtSuperblock;
  /** The raw superblock (fields ExtSuperblock does not carry). */
  sb: Buffer;
  groups: ExtGroup[];
  /** Descriptor checksums (gdt_csum or metadata_csum): the uninit flags and bg_itable_unused are meaningful. */
  groupCsum: boolean;
  metadataCsum: boolean;
  /** Descriptors carry bg_inode_bitmap_csum_hi. */
  wideBitmapCsum: boolean;
  inodesPerBlock: number;
  itableBlocks: number;
  firstIno: number;
}

/** The filesystem on `p`, or why this scan cannot follow it. */
export async function openExtFs(p: ByteReader): Promise<ExtFs | string> {
  if (p.size < EXT_SB_OFFSET + EXT_SB_SIZE) return 'too small for an ext filesystem';
  const sb = await p.read(EXT_SB_OFFSET, EXT_SB_SIZE);
  const s = parseExtSuperblock(sb);
  if (!s) return 'no ext superblock';
  const problems = extGeometryProblems(s, p.size);
  if (problems.length) return `implausible superblock: ${problems.join('; ')}`;
  if (s.incompat & INCOMPAT_META_BG) return 'meta_bg (scattered descriptors) is not followed';
  if (s.roCompat & RO_COMPAT_BIGALLOC) return 'bigalloc is not followed';
  if (s.incompat & ~INCOMPAT_OK) return `unknown incompat features 0x${(s.incompat & ~INCOMPAT_OK).toString(16)}`;
  if (s.roCompat & ~RO_COMPAT_OK) return `unknown ro_compat features 0x${(s.roCompat & ~RO_COMPAT_OK).toString(16)}`;
  if (s.compat & COMPAT_REFUSED) return `compat features 0x${(s.compat & COMPAT_REFUSED).toString(16)} are not followed`;
  const firstIno = s.revLevel === 0 ? 11 : sb.readUInt32LE(0x54);
  if (firstIno < 11 || firstIno > s.inodesCount) return `first inode ${firstIno}`;
  if (s.journalInode > s.inodesCount) return `journal inode ${s.journalInode} past the last inode`;

  const groupCsum = (s.roCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
  const gdt = await readDescriptorTable(p, s);
  const wide = s.descSize >= 64;
  const inodesPerBlock = s.blockSize / s.inodeSize;
  const itableBlocks = Math.ceil(s.inodesPerGroup / inodesPerBlock);
  const groups: ExtGroup[] = [];
  for (let g = 0; g < s.groupCount; g++) {
    const raw = gdt.subarray(g * s.descSize, (g + 1) * s.descSize);
    if (groupCsum && raw.readUInt16LE(BG_CHECKSUM_OFFSET) !== groupDescriptorChecksum(s, g, raw)) return `group ${g}'s descriptor fails its checksum`;
    const hi32 = (off: number) => (wide ? raw.readUInt32LE(off) * 2 ** 32 : 0);
    const hi16 = (off: number) => (wide ? raw.readUInt16LE(off) * 2 ** 16 : 0);
    const gd: ExtGroup = {
      blockBitmap: raw.readUInt32LE(0) + hi32(0x20),
      inodeBitmap: raw.readUInt32LE(4) + hi32(0x24),
      inodeTable: raw.readUInt32LE(8) + hi32(0x28),
      flags: raw.readUInt16LE(0x12),
      freeInodes: raw.readUInt16LE(0x0e) + hi16(0x2e),
      itableUnused: raw.readUInt16LE(0x1c) + hi16(0x32),
      inodeBitmapCsum: raw.readUInt16LE(0x1a) + (s.descSize >= 0x3c ? raw.readUInt16LE(0x3a) * 2 ** 16 : 0),
    };
    const inside = (b: number, n: number) => b > s.firstDataBlock && b + n <= s.blocksCount;
    if (!inside(gd.blockBitmap, 1) || !inside(gd.inodeBitmap, 1) || !inside(gd.inodeTable, itableBlocks)) {
      return `group ${g}'s bitmaps or inode table lie outside the filesystem`;
    }
    if (gd.freeInodes > s.inodesPerGroup || (groupCsum && gd.itableUnused > s.inodesPerGroup)) return `group ${g}'s descriptor counts more inodes than a group holds`;
    groups.push(gd);
  }
  // Overlapping inode tables would give one inode slot two numbers.
  const byTable = groups.map((gd) => gd.inodeTable).sort((a, b) => a - b);
  for (let i = 1; i < byTable.length; i++) if (byTable[i] < byTable[i - 1] + itableBlocks) return 'two groups share inode table blocks';
  return {
    p,
    s,
    sb,
    groups,
    groupCsum,
    firstIno,
    inodesPerBlock,
    itableBlocks,
    metadataCsum: (s.roCompat & RO_COMPAT_METADATA_CSUM) !== 0,
    wideBitmapCsum: s.descSize >= 0x3c,
  };
}

/** Where inode `ino` lives: its table block and byte offset in that block. */
export function inodeLocation(fs: ExtFs, ino: number): { block: number; offset: number } {
  if (!Number.isInteger(ino) || ino < 1 || ino > fs.s.inodesCount) throw new ExtDamage(`inode ${ino} is outside the filesystem (1–${fs.s.inodesCount})`);
  const g = Math.floor((ino - 1) / fs.s.inodesPerGroup);
  const idx = (ino - 1) % fs.s.inodesPerGroup;
  return { block: fs.groups[g].inodeTable + Math.floor(idx / fs.inodesPerBlock), offset: (idx % fs.inodesPerBlock) * fs.s.inodeSize };
}

export async function readRawInode(fs: ExtFs, ino: number): Promise<Buffer> {
  const { block, offset } = inodeLocation(fs, ino);
  return fs.p.read(block * fs.s.blockSize + offset, fs.s.inodeSize);
}

// ---- batched reads

/** Bytes per read: sequential enough, and little memory (8 MiB reads cost an incremental ~20 MB of peak memory for no speed). */
const MAX_READ_BLOCKS_BYTES = 1 << 20;
/** Unneeded blocks read through between two runs rather than a second request. */
const MAX_GAP_BYTES = 64 << 10;

/**
 * Reads runs [starts[r], starts[r]+counts[r]) in ascending block order, merging runs whose gaps are
 * small into one read, and calls fn(r, bytes) for each; the next read is in flight while fn works.
 */
export async function readRuns(p: ByteReader, blockSize: number, starts: ArrayLike<number>, counts: ArrayLike<number>, fn: (r: number, bytes: Buffer) => void | Promise<void>): Promise<void> {
  const order = Array.from({ length: starts.length }, (_, i) => i).sort((a, b) => starts[a] - starts[b]);
  const maxBlocks = Math.max(1, Math.floor(MAX_READ_BLOCKS_BYTES / blockSize));
  const gap = Math.floor(MAX_GAP_BYTES / blockSize);
  const reads: { from: number; to: number; runs: number[] }[] = [];
  for (const r of order) {
    const last = reads[reads.length - 1];
    const end = starts[r] + counts[r];
    if (last && starts[r] <= last.to + gap && Math.max(last.to, end) - last.from <= maxBlocks) {
      last.to = Math.max(last.to, end);
      last.runs.push(r);
    } else reads.push({ from: starts[r], to: end, runs: [r] });
  }
  // Into pool buffers (core/memory.ts), each back once its runs are done: an inode-table scan reads
  // ~1 MiB per 4,000 inodes, which allocated per read left tens of MB for the collector to find.
  const start = (i: number) => {
    const n = (reads[i].to - reads[i].from) * blockSize;
    const into = chunkBuffers.take(n);
    const pr = p.read(reads[i].from * blockSize, n, into);
    pr.catch(() => undefined); // awaited below; this only keeps a failing fn from leaving it unhandled
    return { pr, into };
  };
  let pending = reads.length ? start(0) : null;
  for (let i = 0; i < reads.length; i++) {
    const { pr, into } = pending!;
    const buf = await pr;
    pending = i + 1 < reads.length ? start(i + 1) : null;
    for (const r of reads[i].runs) {
      const off = (starts[r] - reads[i].from) * blockSize;
      await fn(r, buf.subarray(off, off + counts[r] * blockSize));
    }
    chunkBuffers.give(into); // fn keeps no view of it (copies what it keeps)
  }
}

// ---- fingerprints

const scratch = new Uint32Array(1024); // a raw inode is at most 4 KiB

/**
 * 64-bit fingerprint of a raw inode (inodeSize/4 little-endian words from `w0` of `u`) into out[2i],
 * out[2i+1], leaving out i_atime, i_checksum_lo, i_checksum_hi and i_atime_extra (the last two only when
 * i_extra_isize covers them).
 */
export function fingerprint(u: Uint32Array, w0: number, words: number, out: Uint32Array, i: number): void {
  const limit = words > 32 ? 128 + (u[w0 + 32] & 0xffff) : 128;
  scratch.set(u.subarray(w0, w0 + words));
  scratch[2] = 0; // i_atime
  scratch[31] &= 0xffff0000; // i_checksum_lo (l_i_reserved stays)
  if (limit >= 0x84) scratch[32] &= 0xffff; // i_checksum_hi (i_extra_isize stays)
  if (limit >= 0x90) scratch[35] = 0; // i_atime_extra
  hash64(scratch, 0, words, out, i);
}

/** A Uint32Array over `buf` (copied when its offset is not 4-aligned). Little-endian hosts only (checked by the caller). */
export function words(buf: Buffer): Uint32Array {
  const b = buf.byteOffset % 4 ? Buffer.from(buf) : buf;
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

/** i_file_acl: the xattr block (high 16 bits only with the 64bit feature, as the kernel reads it). */
export function fileAcl(fs: ExtFs, raw: Buffer): number {
  return raw.readUInt32LE(0x68) + (fs.s.incompat & INCOMPAT_64BIT ? raw.readUInt16LE(0x76) * 2 ** 32 : 0);
}

/** ext4_inode_csum_verify, or true without metadata_csum. */
export function inodeChecksumOk(fs: ExtFs, ino: number, raw: Buffer): boolean {
  if (!fs.metadataCsum) return true;
  const zero = Buffer.alloc(2);
  let c = crc32cRaw(inodeSeed(fs, ino, raw), raw.subarray(0, 0x7c));
  c = crc32cRaw(c, zero);
  c = crc32cRaw(c, raw.subarray(0x7e, 128));
  let stored = raw.readUInt16LE(0x7c);
  let mask = 0xffff;
  if (fs.s.inodeSize > 128) {
    c = crc32cRaw(c, raw.subarray(128, 0x82));
    if (128 + raw.readUInt16LE(0x80) >= 0x84) {
      c = crc32cRaw(crc32cRaw(c, zero), raw.subarray(0x84, fs.s.inodeSize));
      stored += raw.readUInt16LE(0x82) * 0x10000;
      mask = 0xffffffff;
    } else c = crc32cRaw(c, raw.subarray(0x82, fs.s.inodeSize));
  }
  return (c & mask) >>> 0 === stored;
}

/** The per-inode checksum seed: crc32c of the inode number and generation, from the filesystem's seed. */
function inodeSeed(fs: ExtFs, ino: number, raw: Buffer): number {
  const le = Buffer.alloc(8);
  le.writeUInt32LE(ino, 0);
  le.writeUInt32LE(raw.readUInt32LE(0x64), 4);
  return crc32cRaw(crc32cRaw(fs.s.csumSeed, le.subarray(0, 4)), le.subarray(4));
}

// ---- block maps

export interface BlockSink {
  /** Blocks [pblk, pblk+len) hold logical blocks from lblk on (uninitialized extents included). */
  data(lblk: number, pblk: number, len: number): void;
  /** A mapping block: extent tree node or indirect block. */
  map(pblk: number): void;
}

const FL_HUGE_FILE = 0x40000;
const FL_EXTENTS = 0x80000;
const FL_INLINE_DATA = 0x10000000;
const EXTENT_MAGIC = 0xf30a;
const MAX_EXTENT_DEPTH = 5;

/**
 * Every block of inode `ino` (raw bytes `raw`) into `sink`. Throws ExtDamage when the map does not hold:
 * a bad extent header or checksum, a block outside the filesystem, a mapping block met twice (a cycle)
 * or more mapping blocks than i_blocks accounts for.
 */
export async function walkInode(fs: ExtFs, ino: number, raw: Buffer, sink: BlockSink): Promise<void> {
  const mode = raw.readUInt16LE(0);
  const flags = raw.readUInt32LE(0x20);
  const type = mode & 0xf000;
  if (flags & FL_INLINE_DATA) return; // data in the inode and its in-inode xattrs
  if (type === 0x1000 || type === 0x2000 || type === 0x6000 || type === 0xc000) return; // fifo, devices (i_block holds numbers), socket
  const { s } = fs;
  const iBlocks = raw.readUInt32LE(0x1c) + (s.roCompat & RO_COMPAT_HUGE_FILE ? raw.readUInt16LE(0x74) * 2 ** 32 : 0);
  const owned = flags & FL_HUGE_FILE && s.roCompat & RO_COMPAT_HUGE_FILE ? iBlocks : Math.floor(iBlocks / (s.blockSize / 512));
  // A fast symlink keeps its target in i_block: no blocks besides a possible xattr block.
  if (type === 0xa000 && owned - (fileAcl(fs, raw) ? 1 : 0) <= 0) return;
  const w = new MapWalk(fs, ino, raw, sink, Math.min(owned, s.blocksCount));
  if (flags & FL_EXTENTS) await w.extents(raw.subarray(0x28, 0x28 + 60), -1, true);
  else await w.indirect(raw);
}

class MapWalk {
  private readonly seen = new Set<number>();
  private seed: number | null = null;

  constructor(
    private readonly fs: ExtFs,
    private readonly ino: number,
    private readonly raw: Buffer,
    private readonly sink: BlockSink,
    private readonly maxMapBlocks: number,
  ) {}

  private fail(what: string): never {
    throw new ExtDamage(`inode ${this.ino}: ${what}`);
  }

  private checkRange(pblk: number, len: number, what: string): void {
    const { firstDataBlock, blocksCount } = this.fs.s;
    if (pblk <= firstDataBlock || pblk + len > blocksCount) this.fail(`${what} ${pblk}${len > 1 ? `+${len}` : ''} is outside the filesystem (blocks ${firstDataBlock + 1}–${blocksCount - 1})`);
  }

  /** Counts a mapping block once: a second visit is a cycle, more than i_blocks a map that lies. */
  private claim(pblk: number, what: string): void {
    this.checkRange(pblk, 1, what);
    if (this.seen.has(pblk)) this.fail(`${what} ${pblk} is reached twice (a cycle in the block map)`);
    if (this.seen.size >= this.maxMapBlocks) this.fail(`the block map has more mapping blocks than the ${this.maxMapBlocks} blocks i_blocks accounts for`);
    this.seen.add(pblk);
    this.sink.map(pblk);
  }

  private async mapBlock(pblk: number, what: string): Promise<Buffer> {
    this.claim(pblk, what);
    const bs = this.fs.s.blockSize;
    return this.fs.p.read(pblk * bs, bs);
  }

  async extents(node: Buffer, parentDepth: number, root: boolean): Promise<void> {
    const magic = node.readUInt16LE(0);
    const entries = node.readUInt16LE(2);
    const max = node.readUInt16LE(4);
    const depth = node.readUInt16LE(6);
    const where = root ? 'the extent tree root' : 'an extent tree node';
    if (magic !== EXTENT_MAGIC) this.fail(`${where} has a bad magic (0x${magic.toString(16)})`);
    if (max > (node.length - 12) / 12 || entries > max) this.fail(`${where} claims ${entries} of ${max} entries, more than fit`);
    if (root ? depth > MAX_EXTENT_DEPTH : depth !== parentDepth - 1) this.fail(`${where} has depth ${depth}${root ? ` (at most ${MAX_EXTENT_DEPTH})` : `, not ${parentDepth - 1}`}`);
    let prevEnd = 0;
    for (let i = 0; i < entries; i++) {
      const e = 12 + i * 12;
      const lblk = node.readUInt32LE(e);
      if (lblk < prevEnd) this.fail(`${where} has entries out of order`);
      if (depth === 0) {
        const raw = node.readUInt16LE(e + 4);
        const len = raw > 32768 ? raw - 32768 : raw; // above 32768: uninitialized, still allocated
        if (len === 0) this.fail(`an extent of ${where} has length 0`);
        const pblk = node.readUInt16LE(e + 6) * 2 ** 32 + node.readUInt32LE(e + 8);
        this.checkRange(pblk, len, `extent (logical ${lblk}) at block`);
        this.sink.data(lblk, pblk, len);
        prevEnd = lblk + len;
      } else {
        const child = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * 2 ** 32;
        const b = await this.mapBlock(child, 'extent index block');
        if (this.fs.metadataCsum) this.checkExtentCsum(b, child);
        await this.extents(b, depth, false);
        prevEnd = lblk + 1;
      }
    }
  }

  /** ext4_extent_block_csum_verify: the tail after eh_max entries holds crc32c(inode seed, node). */
  private checkExtentCsum(b: Buffer, pblk: number): void {
    const tail = 12 + 12 * b.readUInt16LE(4);
    if (b.readUInt16LE(0) !== EXTENT_MAGIC) return; // reported by extents() with its reason
    if (tail + 4 > b.length) this.fail(`extent tree node ${pblk} has no room for its checksum`);
    this.seed ??= inodeSeed(this.fs, this.ino, this.raw);
    if (crc32cRaw(this.seed, b.subarray(0, tail)) !== b.readUInt32LE(tail)) this.fail(`extent tree node ${pblk} fails its checksum`);
  }

  /** i_block[0..11] direct, [12] indirect, [13] double, [14] triple: every non-zero pointer, whatever i_size says. */
  async indirect(raw: Buffer): Promise<void> {
    const per = this.fs.s.blockSize / 4;
    for (let i = 0; i < 12; i++) this.ptr(raw.readUInt32LE(0x28 + i * 4), i);
    let first = 12;
    for (let level = 1; level <= 3; level++) {
      const b = raw.readUInt32LE(0x28 + (11 + level) * 4);
      if (b) await this.level(b, level, first, per);
      first += per ** level;
    }
  }

  private ptr(pblk: number, lblk: number): void {
    if (!pblk) return;
    this.checkRange(pblk, 1, `block (logical ${lblk}) at`);
    this.sink.data(lblk, pblk, 1);
  }

  private async level(blk: number, level: number, first: number, per: number, bytes?: Buffer): Promise<void> {
    const b = bytes ?? (await this.mapBlock(blk, `level-${level} indirect block`));
    const span = per ** (level - 1);
    if (level === 1) {
      for (let k = 0; k < per; k++) this.ptr(b.readUInt32LE(k * 4), first + k);
      return;
    }
    // Children are read together where they lie close (the resize inode's reserved GDT blocks do).
    const kids: number[] = [];
    const at: number[] = [];
    for (let k = 0; k < per; k++) {
      const p = b.readUInt32LE(k * 4);
      if (!p) continue;
      this.claim(p, `level-${level - 1} indirect block`);
      kids.push(p);
      at.push(first + k * span);
    }
    await readRuns(
      this.fs.p,
      this.fs.s.blockSize,
      kids,
      kids.map(() => 1),
      (r, child) => this.level(kids[r], level - 1, at[r], per, child),
    );
  }
}
