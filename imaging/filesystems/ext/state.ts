// Which blocks of an ext2/3/4 filesystem can differ from an earlier state of it. Every change of a
// file's data or of a directory changes that inode's bytes (ctime at least; size, i_blocks, the block
// map, the link count too), so comparing per-inode fingerprints of two states names the inodes whose
// blocks must be read again. Global metadata (superblocks, descriptors, bitmaps, inode tables, special
// inodes, xattr blocks, the journal) changes without any user inode changing: it is always read again.
// Anything that does not hold makes readExtState answer null and blocksToReread throw: the caller then
// reads everything, which is always safe.

import { hasSuperBackup } from './superblock';
import {
  BG_INODE_UNINIT, ExtDamage, INCOMPAT_MMP, INCOMPAT_RECOVER, RO_COMPAT_ORPHAN_PRESENT, fileAcl, fingerprint, inodeChecksumOk,
  inodeLocation, openExtFs, readRawInode, readRuns, walkInode, words, type ExtFs,
} from './inodes';
import { crc32cRaw } from '../checksums';
import { countBits } from '../bitmap';
import { endianness } from 'os';
import type { ByteReader } from '../types';

/** One filesystem's state at a moment: identity, geometry, and a fingerprint per in-use inode. */
export interface ExtState {
  uuid: string; blockSize: number; blocksCount: number; inodesCount: number; inodeSize: number;
  groupCount: number; firstDataBlock: number;
  /** compat/incompat/ro_compat feature words and anything else geometry-defining, joined: equal strings = same layout. */
  layoutKey: string;
  /** Proof-of-history fields from the superblock: s_mnt_count, s_lastcheck, s_state, s_kbytes_written, s_wtime. */
  mountCount: number; lastCheck: number; state: number; kbytesWritten: number; writeTime: number;
  /** True when inodes carry nanosecond timestamps (inode size > 128 with extra_isize covering the time fields). */
  fineTimestamps: boolean;
  /** Journal: inode number (0 = none) and whether the journal is empty (jbd2 superblock s_start == 0 and no needs_recovery flag in the fs superblock). */
  journalInode: number; journalClean: boolean;
  /** In-use inodes (per the inode bitmaps; groups flagged INODE_UNINIT have none), ascending. */
  inos: Uint32Array;
  /** 64-bit fingerprint of each in-use inode's raw bytes excluding i_atime, i_atime_extra, i_checksum_lo/hi: prints[2i], prints[2i+1] for inos[i]. */
  prints: Uint32Array;
  /** Every distinct xattr block (i_file_acl) of an in-use inode, ascending. */
  xattrBlocks: Float64Array;
}

/** Block runs [firstBlock, count] (filesystem blocks, sorted, merged, within the fs). */
export type BlockRuns = Array<[number, number]>;

export interface Reread {
  /** Global metadata: superblocks and descriptor tables (reserved GDT included), bitmaps, the inode-table blocks of in-use inodes, the MMP block, xattr blocks, special inodes' blocks. */
  metadata: BlockRuns;
  /** Every block of each changed inode: mapping blocks and mapped data blocks (uninitialized extents included). */
  changed: BlockRuns;
  /** The journal inode's first block (the jbd2 superblock), and the rest of its blocks (log and mapping). */
  journalSuper: BlockRuns; journalLog: BlockRuns;
}

const JBD2_MAGIC = 0xc03b3998;
const EXT4_ERROR_FS = 0x2;
/** Table blocks per run when scanning: runs are merged into reads of up to 8 MiB anyway. */
const MAX_TABLE_RUN = 2048;
const LITTLE_ENDIAN = endianness() === 'LE';

/** Reads the state; null when `p` is not an ext filesystem this module can follow. Throws only p's I/O errors. */
export async function readExtState(p: ByteReader, opts: { live?: boolean } = {}): Promise<ExtState | null> {
  try {
    return await scan(p, !!opts.live);
  } catch (e) {
    if (e instanceof ExtDamage || e instanceof RangeError) return null;
    throw e;
  }
}

/**
 * `live`: the filesystem is mounted and being written, so its on-disk metadata may be caught between
 * two writes (an inode bitmap newer than its descriptor's checksum, an inode table block older than
 * its bitmap). Such a state is only ever an intermediate one — the last state of a snapshot is read
 * frozen, strictly — so the bitmaps are taken as they are and torn inodes' xattr pointers skipped: an
 * inode a torn bitmap misses is new in the next state, hence re-read.
 */
async function scan(p: ByteReader, live: boolean): Promise<ExtState | null> {
  if (!LITTLE_ENDIAN) return null; // the fingerprint reads inode words natively
  const fs = await openExtFs(p);
  if (typeof fs === 'string') return null;
  const { s } = fs;
  const ipg = s.inodesPerGroup;
  const bitmaps = await inodeBitmaps(fs, live);

  // Output slots: group g's in-use inodes go to [offset[g], offset[g+1]), ascending like the groups.
  const offset = new Float64Array(s.groupCount + 1);
  for (let g = 0; g < s.groupCount; g++) offset[g + 1] = offset[g] + (bitmaps[g] ? countBits(bitmaps[g]!, ipg) : 0);
  const total = offset[s.groupCount];
  const inos = new Uint32Array(total);
  const prints = new Uint32Array(2 * total);

  // Inode-table blocks that hold an in-use inode, as runs tagged with their group.
  const runStart: number[] = [];
  const runCount: number[] = [];
  const runGroup: number[] = [];
  for (let g = 0; g < s.groupCount; g++) {
    const bm = bitmaps[g];
    if (!bm) continue;
    for (let k = 0; k < fs.itableBlocks; k++) {
      if (!anyBit(bm, k * fs.inodesPerBlock, Math.min(ipg, (k + 1) * fs.inodesPerBlock))) continue;
      const blk = fs.groups[g].inodeTable + k;
      const r = runStart.length - 1;
      if (r >= 0 && runGroup[r] === g && runStart[r] + runCount[r] === blk && runCount[r] < MAX_TABLE_RUN) runCount[r]++;
      else { runStart.push(blk); runCount.push(1); runGroup.push(g); }
    }
  }

  const cursor = Float64Array.from(offset);
  const xattr = new RunList();
  const isWords = s.inodeSize / 4;
  let minExtra = Infinity;
  await readRuns(p, s.blockSize, runStart, runCount, (r, bytes) => {
    const g = runGroup[r];
    const bm = bitmaps[g]!;
    const u = words(bytes);
    const first = (runStart[r] - fs.groups[g].inodeTable) * fs.inodesPerBlock;
    const n = runCount[r] * fs.inodesPerBlock;
    for (let j = 0; j < n; j++) {
      const idx = first + j;
      if (idx >= ipg || !(bm[idx >> 3] & (1 << (idx & 7)))) continue;
      const slot = cursor[g]++;
      const ino = g * ipg + idx + 1;
      inos[slot] = ino;
      fingerprint(u, j * isWords, isWords, prints, slot);
      const at = j * s.inodeSize;
      const acl = fileAcl(fs, bytes.subarray(at, at + s.inodeSize));
      if (acl) {
        const outside = acl <= s.firstDataBlock || acl >= s.blocksCount;
        if (outside && !live) throw new ExtDamage(`inode ${ino}'s xattr block ${acl} is outside the filesystem`);
        if (!outside) xattr.add(acl, 1);
      }
      if (s.inodeSize > 128 && (ino === 2 || ino >= fs.firstIno)) minExtra = Math.min(minExtra, u[j * isWords + 32] & 0xffff);
    }
  });

  const { journalClean } = await journalState(fs);
  const sb = fs.sb;
  const xattrBlocks: number[] = [];
  for (const [b, c] of xattr.toRuns()) for (let i = 0; i < c; i++) xattrBlocks.push(b + i);
  return {
    uuid: s.uuid,
    blockSize: s.blockSize,
    blocksCount: s.blocksCount,
    inodesCount: s.inodesCount,
    inodeSize: s.inodeSize,
    groupCount: s.groupCount,
    firstDataBlock: s.firstDataBlock,
    layoutKey: layoutKey(fs),
    mountCount: sb.readUInt16LE(0x34),
    lastCheck: sb.readUInt32LE(0x40) + sb[0x277] * 2 ** 32,
    state: sb.readUInt16LE(0x3a),
    kbytesWritten: sb.readUInt32LE(0x178) + sb.readUInt32LE(0x17c) * 2 ** 32,
    writeTime: sb.readUInt32LE(0x30) + sb[0x274] * 2 ** 32,
    // ctime_extra and mtime_extra end at 0x8c: i_extra_isize ≥ 12 in every inode users can change.
    fineTimestamps: s.inodeSize > 128 && (minExtra === Infinity || minExtra >= 12),
    journalInode: s.journalInode,
    journalClean,
    inos,
    prints,
    xattrBlocks: Float64Array.from(xattrBlocks),
  };
}

/**
 * Each group's inode bitmap (inodesPerGroup bits), or null for a group that has no inode in use
 * (INODE_UNINIT, trusted only with descriptor checksums, as the kernel does). A bitmap that fails its
 * checksum, disagrees with the descriptor's free count or marks inodes past bg_itable_unused is damage.
 */
async function inodeBitmaps(fs: ExtFs, live: boolean): Promise<(Uint8Array | null)[]> {
  const { s } = fs;
  const ipg = s.inodesPerGroup;
  const out: (Uint8Array | null)[] = new Array(s.groupCount).fill(null);
  const wanted = fs.groups.map((_, g) => g).filter((g) => !(fs.groupCsum && fs.groups[g].flags & BG_INODE_UNINIT));
  await readRuns(fs.p, s.blockSize, wanted.map((g) => fs.groups[g].inodeBitmap), wanted.map(() => 1), (r, bytes) => {
    const g = wanted[r];
    const gd = fs.groups[g];
    const bm = Uint8Array.from(bytes.subarray(0, Math.ceil(ipg / 8)));
    if (fs.metadataCsum && !live) {
      const calc = crc32cRaw(s.csumSeed, bm.subarray(0, ipg >> 3));
      if ((fs.wideBitmapCsum ? calc : calc & 0xffff) !== gd.inodeBitmapCsum) throw new ExtDamage(`group ${g}'s inode bitmap fails its checksum`);
    }
    if (live) {
      out[g] = bm;
      return;
    }
    if (ipg - countBits(bm, ipg) !== gd.freeInodes) throw new ExtDamage(`group ${g}'s inode bitmap disagrees with its free inode count`);
    if (fs.groupCsum && anyBit(bm, ipg - gd.itableUnused, ipg)) throw new ExtDamage(`group ${g}'s inode bitmap marks inodes its descriptor calls never used`);
    out[g] = bm;
  });
  return out;
}

function anyBit(bm: Uint8Array, from: number, to: number): boolean {
  let i = from;
  for (; i < to && i & 7; i++) if (bm[i >> 3] & (1 << (i & 7))) return true;
  for (; i + 8 <= to; i += 8) if (bm[i >> 3]) return true;
  for (; i < to; i++) if (bm[i >> 3] & (1 << (i & 7))) return true;
  return false;
}

/** Whether the journal is empty; its mapping must hold and its superblock must be jbd2's. */
async function journalState(fs: ExtFs): Promise<{ journalClean: boolean }> {
  const { s } = fs;
  if (!s.journalInode) return { journalClean: !s.needsRecovery }; // no journal, or on another device
  let first = -1;
  await walkInode(fs, s.journalInode, await readRawInode(fs, s.journalInode), {
    data: (lblk, pblk) => { if (lblk === 0) first = pblk; },
    map: () => undefined,
  });
  if (first < 0) throw new ExtDamage('the journal has no first block');
  const jsb = await fs.p.read(first * s.blockSize, 1024);
  const type = jsb.readUInt32BE(4);
  if (jsb.readUInt32BE(0) !== JBD2_MAGIC || (type !== 3 && type !== 4)) throw new ExtDamage('the journal superblock is not jbd2\'s');
  return { journalClean: !s.needsRecovery && jsb.readUInt32BE(0x1c) === 0 };
}

/** Reserved inodes (except the journal), the quota inodes and the orphan file: always read again. */
function specialInodes(fs: ExtFs): number[] {
  const sb = fs.sb;
  const list = new Set<number>();
  for (let i = 1; i < fs.firstIno; i++) list.add(i);
  for (const off of [0x240, 0x244, 0x26c, 0x280]) {
    const ino = sb.readUInt32LE(off);
    if (ino) list.add(ino);
  }
  list.delete(fs.s.journalInode);
  for (const ino of list) if (ino > fs.s.inodesCount) throw new ExtDamage(`special inode ${ino} is past the last inode`);
  return [...list].sort((a, b) => a - b);
}

/** Everything that decides where things live: equal keys, same layout. */
function layoutKey(fs: ExtFs): string {
  const { s, sb } = fs;
  let loc = 0xffffffff;
  const le = Buffer.alloc(24);
  for (const gd of fs.groups) {
    le.writeDoubleLE(gd.blockBitmap, 0);
    le.writeDoubleLE(gd.inodeBitmap, 8);
    le.writeDoubleLE(gd.inodeTable, 16);
    loc = crc32cRaw(loc, le);
  }
  return [
    s.blockSize, s.blocksPerGroup, s.inodesPerGroup, s.inodeSize, s.descSize, s.reservedGdtBlocks, s.logGroupsPerFlex, s.revLevel,
    s.backupBgs.join('/'), `c${s.compat.toString(16)}`, `i${(s.incompat & ~INCOMPAT_RECOVER).toString(16)}`,
    `r${(s.roCompat & ~RO_COMPAT_ORPHAN_PRESENT).toString(16)}`, fs.firstIno, s.journalInode,
    ...[0x240, 0x244, 0x26c, 0x280].map((o) => sb.readUInt32LE(o)), mmpBlock(fs), `g${loc.toString(16)}`,
  ].join(':');
}

function mmpBlock(fs: ExtFs): number {
  return fs.s.incompat & INCOMPAT_MMP ? fs.sb.readUInt32LE(0x168) + fs.sb.readUInt32LE(0x16c) * 2 ** 32 : 0;
}

/** Why two states cannot be compared, or null if they can. */
export function incomparable(before: ExtState, after: ExtState, opts: { sameRun?: boolean } = {}): string | null {
  if (before.uuid !== after.uuid) return `the filesystem UUID changed (${before.uuid} → ${after.uuid}): another filesystem, or tune2fs -U`;
  if (before.blockSize !== after.blockSize || before.inodeSize !== after.inodeSize || before.firstDataBlock !== after.firstDataBlock) {
    return 'the block or inode size changed: the filesystem was recreated or converted';
  }
  if (before.blocksCount !== after.blocksCount || before.inodesCount !== after.inodesCount || before.groupCount !== after.groupCount) {
    return `the filesystem was resized (${before.blocksCount} → ${after.blocksCount} blocks, ${before.inodesCount} → ${after.inodesCount} inodes)`;
  }
  if (before.layoutKey !== after.layoutKey) return 'its features or metadata layout changed (tune2fs, resize2fs or e2fsck rewrote it)';
  if (before.lastCheck !== after.lastCheck) return 'its last-checked time changed: e2fsck (or tune2fs -T) ran on it in between';
  if (after.mountCount < before.mountCount) return `its mount count went down (${before.mountCount} → ${after.mountCount}): e2fsck or tune2fs -C reset it, or an older copy was restored`;
  if (after.kbytesWritten < before.kbytesWritten) return 'its lifetime-writes counter went down: an older copy of it was restored';
  // Within one snapshot a clock set back moves s_wtime back too; the snapshot watches the clock itself.
  if (!opts.sameRun && after.writeTime < before.writeTime) return 'its last write time went backwards: an older copy was restored, or the clock was set back';
  if (after.state & EXT4_ERROR_FS) return 'the filesystem has recorded errors: run e2fsck on it';
  return null;
}

/** Inodes in use in `after` whose fingerprint differs from `before` or that `before` did not have in use. Ascending. */
export function changedInodes(before: ExtState, after: ExtState): Uint32Array {
  const out = new Uint32Array(after.inos.length);
  let n = 0;
  let j = 0;
  for (let i = 0; i < after.inos.length; i++) {
    const ino = after.inos[i];
    while (j < before.inos.length && before.inos[j] < ino) j++;
    const same = j < before.inos.length && before.inos[j] === ino &&
      before.prints[2 * j] === after.prints[2 * i] && before.prints[2 * j + 1] === after.prints[2 * i + 1];
    if (!same) out[n++] = ino;
  }
  return out.slice(0, n);
}

/** What to read again on `p` (now in state `after`); throws an Error saying what did not hold. */
export async function blocksToReread(p: ByteReader, after: ExtState, changed: Uint32Array, alsoInUse?: Uint32Array): Promise<Reread> {
  try {
    return await reread(p, after, changed, alsoInUse ?? new Uint32Array(0));
  } catch (e) {
    if (e instanceof ExtDamage || e instanceof RangeError) throw new Error(`ext change scan: ${e.message}`);
    throw e;
  }
}

async function reread(p: ByteReader, after: ExtState, changed: Uint32Array, alsoInUse: Uint32Array): Promise<Reread> {
  if (!(after.xattrBlocks instanceof Float64Array)) throw new ExtDamage('the state has no xattr block list (not made by readExtState)');
  const fs = await openExtFs(p);
  if (typeof fs === 'string') throw new ExtDamage(`the filesystem cannot be followed: ${fs}`);
  const { s } = fs;
  if (s.uuid !== after.uuid || s.blocksCount !== after.blocksCount || s.inodesCount !== after.inodesCount || layoutKey(fs) !== after.layoutKey) {
    throw new ExtDamage('the filesystem is not the one (or no longer laid out as) the state describes');
  }
  const meta = new RunList();
  const groupStart = (g: number) => s.firstDataBlock + g * s.blocksPerGroup;
  const sbAndGdt = 1 + s.gdtBlocks + s.reservedGdtBlocks;
  meta.add(0, s.firstDataBlock + sbAndGdt);
  for (let g = 1; g < s.groupCount; g++) if (hasSuperBackup(s, g)) meta.add(groupStart(g), Math.min(sbAndGdt, s.blocksCount - groupStart(g)));
  for (const gd of fs.groups) {
    meta.add(gd.blockBitmap, 1);
    meta.add(gd.inodeBitmap, 1);
  }
  // Inode-table blocks of inodes in use now or earlier (a freed inode's slot changed too).
  for (let i = 0, j = 0; i < after.inos.length || j < alsoInUse.length; ) {
    const a = i < after.inos.length ? after.inos[i] : Infinity;
    const b = j < alsoInUse.length ? alsoInUse[j] : Infinity;
    const ino = Math.min(a, b);
    if (a === ino) i++;
    if (b === ino) j++;
    meta.add(inodeLocation(fs, ino).block, 1);
  }
  const mmp = mmpBlock(fs);
  if (mmp) {
    if (mmp <= s.firstDataBlock || mmp >= s.blocksCount) throw new ExtDamage(`the MMP block ${mmp} is outside the filesystem`);
    meta.add(mmp, 1);
  }
  for (const b of after.xattrBlocks) meta.add(b, 1);
  const metaSink = { data: (_l: number, pblk: number, len: number) => meta.add(pblk, len), map: (pblk: number) => meta.add(pblk, 1) };
  for (const ino of specialInodes(fs)) await walkInode(fs, ino, await readRawInode(fs, ino), metaSink);

  const jSuper = new RunList();
  const jLog = new RunList();
  if (s.journalInode) {
    await walkInode(fs, s.journalInode, await readRawInode(fs, s.journalInode), {
      data: (lblk, pblk, len) => {
        if (lblk === 0) { jSuper.add(pblk, 1); jLog.add(pblk + 1, len - 1); } else jLog.add(pblk, len);
      },
      map: (pblk) => jLog.add(pblk, 1),
    });
  }
  return { metadata: meta.toRuns(), changed: await changedBlocks(fs, changed), journalSuper: jSuper.toRuns(), journalLog: jLog.toRuns() };
}

/** Every block of each changed inode, its raw inode read again (in batches of table blocks) from `p`. */
async function changedBlocks(fs: ExtFs, changed: Uint32Array): Promise<BlockRuns> {
  const out = new RunList();
  const sink = { data: (_l: number, pblk: number, len: number) => out.add(pblk, len), map: (pblk: number) => out.add(pblk, 1) };
  // One run per table block; first[r]..first[r+1] are its changed inodes.
  const starts: number[] = [];
  const first: number[] = [];
  for (let i = 0; i < changed.length; i++) {
    if (i && changed[i] <= changed[i - 1]) throw new ExtDamage('the changed inode list is not ascending');
    const blk = inodeLocation(fs, changed[i]).block;
    if (!starts.length || starts[starts.length - 1] !== blk) { starts.push(blk); first.push(i); }
  }
  first.push(changed.length);
  await readRuns(fs.p, fs.s.blockSize, starts, starts.map(() => 1), async (r, bytes) => {
    for (let i = first[r]; i < first[r + 1]; i++) {
      const ino = changed[i];
      if (ino === fs.s.journalInode) continue; // in journalSuper/journalLog
      const at = inodeLocation(fs, ino).offset;
      const raw = bytes.subarray(at, at + fs.s.inodeSize);
      if (!inodeChecksumOk(fs, ino, raw)) throw new ExtDamage(`inode ${ino} fails its checksum`);
      await walkInode(fs, ino, raw, sink);
    }
  });
  return out.toRuns();
}

/** Block runs collected in any order; toRuns() sorts and merges them. */
class RunList {
  private starts = new Float64Array(256);
  private ends = new Float64Array(256);
  private n = 0;

  add(start: number, count: number): void {
    if (!(count > 0)) return;
    const end = start + count;
    const last = this.n - 1;
    // Most runs arrive in order: extend the last one in place.
    if (last >= 0 && start >= this.starts[last] && start <= this.ends[last]) {
      if (end > this.ends[last]) this.ends[last] = end;
      return;
    }
    if (this.n === this.starts.length) {
      const grow = (a: Float64Array) => { const b = new Float64Array(a.length * 2); b.set(a); return b; };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
    }
    this.starts[this.n] = start;
    this.ends[this.n++] = end;
  }

  toRuns(): BlockRuns {
    const order = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    order.sort((a, b) => this.starts[a] - this.starts[b]);
    const out: Array<[number, number]> = [];
    let s = -1;
    let e = -1;
    for (const i of order) {
      if (s >= 0 && this.starts[i] <= e) e = Math.max(e, this.ends[i]);
      else {
        if (s >= 0) out.push([s, e - s]);
        s = this.starts[i];
        e = this.ends[i];
      }
    }
    if (s >= 0) out.push([s, e - s]);
    return out;
  }
}
