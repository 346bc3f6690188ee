// Which blocks of an ext2/3/4 filesystem can differ from an earlier state of it. Every change of a
// file's data or of a directory changes that inode's bytes (ctime at least; size, i_blocks, the block
// map, the link count too), so comparing per-inode fingerprints of two states names the inodes whose
// blocks must be read again. Global metadata (superblocks, descriptors, bitmaps, inode tables, special
// inodes, xattr blocks, the journal) changes without any user inode changing: it is always read again.
// Anything that does not hold makes readExtState answer null and blocksToReread throw: the caller then
// reads everything, which is always safe.

import { BG_INODE_UNINIT, MAX_READ_BLOCKS_BYTES, ExtDamage, fileAcl, fingerprint, openExtFs, readRawInode, readRuns, walkInode, words, type ExtFs } from './inodes';
import { crc32cRaw } from '../checksums';
import { countBits } from '../bitmap';
import { endianness } from 'os';
import type { ByteReader } from '../types';
import { layoutKey } from './layout';
import { RunList } from './run-list';
import type { ExtState } from './state-types';

// What moved to the modules above stays importable from here.
export type { BlockRuns, ExtState, Reread } from './state-types';
export { blocksToReread } from './reread';

const JBD2_MAGIC = 0xc03b3998;
const EXT4_ERROR_FS = 0x2;
/**
 * Table bytes per run when scanning: a run is read whole, so one that fits a read (and a pool buffer,
 * core/memory.ts) costs no memory of its own. 8 MiB runs were 26 MB of buffers per scan for the
 * collector to find, on the bench's 8 GiB root.
 */
const MAX_TABLE_RUN_BYTES = MAX_READ_BLOCKS_BYTES;
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
  const maxRun = Math.max(1, Math.floor(MAX_TABLE_RUN_BYTES / s.blockSize));
  for (let g = 0; g < s.groupCount; g++) {
    const bm = bitmaps[g];
    if (!bm) continue;
    for (let k = 0; k < fs.itableBlocks; k++) {
      if (!anyBit(bm, k * fs.inodesPerBlock, Math.min(ipg, (k + 1) * fs.inodesPerBlock))) continue;
      const blk = fs.groups[g].inodeTable + k;
      const r = runStart.length - 1;
      if (r >= 0 && runGroup[r] === g && runStart[r] + runCount[r] === blk && runCount[r] < maxRun) runCount[r]++;
      else {
        runStart.push(blk);
        runCount.push(1);
        runGroup.push(g);
      }
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
  await readRuns(
    fs.p,
    s.blockSize,
    wanted.map((g) => fs.groups[g].inodeBitmap),
    wanted.map(() => 1),
    (r, bytes) => {
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
    },
  );
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
    data: (lblk, pblk) => {
      if (lblk === 0) first = pblk;
    },
    map: () => undefined,
  });
  if (first < 0) throw new ExtDamage('the journal has no first block');
  const jsb = await fs.p.read(first * s.blockSize, 1024);
  const type = jsb.readUInt32BE(4);
  if (jsb.readUInt32BE(0) !== JBD2_MAGIC || (type !== 3 && type !== 4)) throw new ExtDamage("the journal superblock is not jbd2's");
  return { journalClean: !s.needsRecovery && jsb.readUInt32BE(0x1c) === 0 };
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
    const same = j < before.inos.length && before.inos[j] === ino && before.prints[2 * j] === after.prints[2 * i] && before.prints[2 * j + 1] === after.prints[2 * i + 1];
    if (!same) out[n++] = ino;
  }
  return out.slice(0, n);
}
