// The low level of the ext change scan (filesystems/ext/state.ts): a filesystem's geometry with every check it
// offers (descriptor checksums, pointers inside the filesystem), batched reads of block runs, the inode
// fingerprint, and a bounded walk of an inode's block map (extent trees, classic indirect maps).
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).

import { crc32cRaw } from '../checksums';
import type { ByteReader } from '../types';
import { chunkBuffers } from '../../core/memory';
import { ExtDamage, RO_COMPAT_HUGE_FILE, type ExtFs } from './geometry';
import { fileAcl, inodeSeed } from './inode-bytes';

// The filesystem's geometry (geometry.ts) and a raw inode's fields (inode-bytes.ts), for the importers of this module.
export { BG_INODE_UNINIT, ExtDamage, INCOMPAT_MMP, INCOMPAT_RECOVER, RO_COMPAT_ORPHAN_PRESENT, inodeLocation, openExtFs, readRawInode, type ExtFs, type ExtGroup } from './geometry';
export { fileAcl, fingerprint, inodeChecksumOk, words } from './inode-bytes';

// ---- batched reads

/** Bytes per read: sequential enough, and little memory (8 MiB reads cost an incremental ~20 MB of peak memory for no speed). */
export const MAX_READ_BLOCKS_BYTES = 1 << 20;
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
    const into = chunkBuffers.scratch(n);
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
