// ext2/3/4 used-block reader: superblock, group descriptors and the per-group block bitmaps.
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).
// Rule: never under-report. Anything we cannot interpret is marked used, and nothing is trusted that
// fails a check the filesystem offers: a group whose descriptor or bitmap does not hold is imaged in
// full; a superblock whose geometry does not hold makes the whole partition imaged in full.

import { BlockBitmap, countBits } from '../bitmap';
import { crc32cRaw } from '../checksums';
import {
  INCOMPAT_UNDERSTOOD,
  EXT_SB_OFFSET,
  EXT_SB_SIZE,
  RO_COMPAT_BIGALLOC,
  RO_COMPAT_GDT_CSUM,
  RO_COMPAT_METADATA_CSUM,
  extGeometryProblems,
  groupDescriptorChecksum,
  hasSuperBackup,
  parseExtSuperblock,
  readDescriptorTable,
  type ExtSuperblock,
} from './superblock';
import { journalledBlocks } from './journal';
import type { ByteReader, UsedBlocks } from '../types';

const INCOMPAT_FLEX_BG = 0x200;

const BG_BLOCK_UNINIT = 0x2;
/** Group descriptor fields (offsets in a descriptor). */
const BG_FREE_BLOCKS_LO = 0x0c;
const BG_FLAGS = 0x12;
const BG_BLOCK_BITMAP_CSUM_LO = 0x18;
const BG_CHECKSUM = 0x1e;
const BG_FREE_BLOCKS_HI = 0x2c;
const BG_BLOCK_BITMAP_CSUM_HI = 0x38;

/**
 * `flushed`: the filesystem is mounted and was just flushed (syncfs): its bitmaps in place are newer
 * than any copy in its journal, which is not read. (Only the first pass of a two-pass snapshot uses
 * this: blocks allocated later belong to inodes its last pass re-reads.)
 */
export async function readExt(p: ByteReader, opts: { flushed?: boolean } = {}): Promise<UsedBlocks | null> {
  if (p.size < EXT_SB_OFFSET + EXT_SB_SIZE) return null;
  const s = parseExtSuperblock(await p.read(EXT_SB_OFFSET, EXT_SB_SIZE));
  if (!s) return null;

  const bm = new BlockBitmap(s.blockSize, p.size);
  const problems = extGeometryProblems(s, p.size);
  if (problems.length) return wholePartition(bm, s, `implausible superblock: ${problems.join('; ')}`);
  bm.setRange(s.blocksCount, bm.blocks); // past the filesystem's end: not ours to judge

  const understood = (s.incompat & ~INCOMPAT_UNDERSTOOD) === 0 && (s.roCompat & RO_COMPAT_BIGALLOC) === 0;
  if (!understood) {
    // meta_bg (descriptors scattered), bigalloc (cluster bitmaps), external journal devices, unknown features.
    bm.setRange(0, bm.blocks);
    return { ...bm.result(s.fs, s.label, s.uuid), full: true };
  }

  const groups = parseDescriptors(s, await readDescriptorTable(p, s));
  const outside = pointerProblem(s, groups);
  if (outside) return wholePartition(bm, s, outside);
  // A filesystem that needs recovery (mounted, or not cleanly unmounted) has newer bitmaps in its journal.
  let logged = new Set<number>();
  if (s.needsRecovery && !opts.flushed) {
    const found = await journalledBlocks(p, s, s.journalInode);
    if (typeof found === 'string') return wholePartition(bm, s, `it needs journal recovery, but its journal cannot be followed (${found}); no block bitmap can be trusted`);
    logged = found;
  }
  const untrusted = await markGroups(p, s, groups, bm, logged);
  const out = bm.result(s.fs, s.label, s.uuid);
  if (untrusted.length) out.warnings = [describeUntrusted(s, untrusted)];
  return out;
}

/** Every block marked used, with the reason as a warning. */
function wholePartition(bm: BlockBitmap, s: ExtSuperblock, why: string): UsedBlocks {
  bm.setRange(0, bm.blocks);
  return {
    ...bm.result(s.fs, s.label, s.uuid),
    full: true,
    warnings: [
      `${s.fs}: ${why}. The whole partition is imaged in full. Run e2fsck on the source ` +
        // mke2fs puts the first backup at the start of group 1: 8 × block size blocks in, plus the
        // first data block (1 with 1 KiB blocks) — not from the superblock, whose geometry may be what is damaged.
        `(with a backup superblock, e.g. -b ${8 * s.blockSize + (s.blockSize === 1024 ? 1 : 0)} -B ${s.blockSize}, if it cannot open it).`,
    ],
  };
}

interface GroupDesc {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  /** BLOCK_UNINIT, only with a valid descriptor checksum (as the kernel trusts it). */
  blockUninit: boolean;
  freeBlocks: number;
  /** Why this group's descriptor cannot be trusted (its checksum fails), or null. */
  bad: string | null;
  raw: Buffer;
}

function parseDescriptors(s: ExtSuperblock, gdt: Buffer): GroupDesc[] {
  const metadataCsum = (s.roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  const csum = metadataCsum || (s.roCompat & RO_COMPAT_GDT_CSUM) !== 0;
  const groups: GroupDesc[] = [];
  for (let g = 0; g < s.groupCount; g++) {
    const raw = gdt.subarray(g * s.descSize, (g + 1) * s.descSize);
    const hi = (off: number, bytes: 2 | 4): number => (s.descSize >= 64 ? (bytes === 4 ? raw.readUInt32LE(off) * 2 ** 32 : raw.readUInt16LE(off) * 2 ** 16) : 0);
    const bad = csum && raw.readUInt16LE(BG_CHECKSUM) !== groupDescriptorChecksum(s, g, raw) ? 'descriptor checksum' : null;
    groups.push({
      blockBitmap: raw.readUInt32LE(0) + hi(0x20, 4),
      inodeBitmap: raw.readUInt32LE(4) + hi(0x24, 4),
      inodeTable: raw.readUInt32LE(8) + hi(0x28, 4),
      blockUninit: csum && !bad && (raw.readUInt16LE(BG_FLAGS) & BG_BLOCK_UNINIT) !== 0,
      freeBlocks: raw.readUInt16LE(BG_FREE_BLOCKS_LO) + hi(BG_FREE_BLOCKS_HI, 2),
      bad,
      raw,
    });
  }
  return groups;
}

/**
 * A trusted descriptor whose bitmap or inode table lies outside the filesystem (outside its own group
 * without flex_bg), as the kernel's ext4_check_descriptors refuses: the table is not what it claims.
 */
function pointerProblem(s: ExtSuperblock, groups: GroupDesc[]): string | null {
  const inodeTableBlocks = Math.ceil((s.inodesPerGroup * s.inodeSize) / s.blockSize);
  const flex = (s.incompat & INCOMPAT_FLEX_BG) !== 0;
  for (let g = 0; g < groups.length; g++) {
    const gd = groups[g];
    if (gd.bad) continue; // imaged in full on its own; its pointers are not followed
    const lo = flex ? s.firstDataBlock : s.firstDataBlock + g * s.blocksPerGroup;
    const hi = flex ? s.blocksCount : Math.min(s.blocksCount, lo + s.blocksPerGroup);
    const inside = (b: number, n: number) => b >= lo && b + n <= hi;
    if (!inside(gd.blockBitmap, 1)) return `group ${g}'s block bitmap is at block ${gd.blockBitmap}, outside ${flex ? 'the filesystem' : 'its group'} (blocks ${lo}–${hi - 1})`;
    if (!inside(gd.inodeBitmap, 1)) return `group ${g}'s inode bitmap is at block ${gd.inodeBitmap}, outside ${flex ? 'the filesystem' : 'its group'} (blocks ${lo}–${hi - 1})`;
    if (!inside(gd.inodeTable, inodeTableBlocks)) return `group ${g}'s inode table is at block ${gd.inodeTable}, outside ${flex ? 'the filesystem' : 'its group'} (blocks ${lo}–${hi - 1})`;
  }
  return null;
}

interface Untrusted {
  g: number;
  why: string;
}

/** Marks every used block; returns the groups imaged in full because their descriptor or bitmap did not hold. */
async function markGroups(p: ByteReader, s: ExtSuperblock, groups: GroupDesc[], bm: BlockBitmap, journalled: Set<number>): Promise<Untrusted[]> {
  const { blockSize, blocksPerGroup, firstDataBlock, gdtBlocks } = s;
  const inodeTableBlocks = Math.ceil((s.inodesPerGroup * s.inodeSize) / blockSize);
  const metadataCsum = (s.roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  const untrusted: Untrusted[] = [];
  const groupStart = (g: number) => firstDataBlock + g * blocksPerGroup;
  const groupBlocks = (g: number) => Math.min(blocksPerGroup, s.blocksCount - groupStart(g));
  const distrust = (g: number, why: string) => {
    untrusted.push({ g, why });
    bm.setRange(groupStart(g), groupBlocks(g));
  };

  // Always used, whatever the bitmaps say: boot block, superblock/GDT copies, every group's metadata.
  bm.setRange(0, firstDataBlock + 1 + gdtBlocks + s.reservedGdtBlocks);
  for (let g = 0; g < s.groupCount; g++) {
    if (hasSuperBackup(s, g)) bm.setRange(groupStart(g), 1 + gdtBlocks + s.reservedGdtBlocks);
    const gd = groups[g];
    // Every change of a group's allocation logs its block bitmap (with the descriptor, whose block is
    // shared by many groups and logged for inode changes too): the bitmap is what tells.
    if (!gd.bad && journalled.has(gd.blockBitmap)) gd.bad = 'journal';
    if (gd.bad) {
      distrust(g, gd.bad);
      if (gd.bad === 'descriptor checksum') continue;
    }
    bm.set(gd.blockBitmap);
    bm.set(gd.inodeBitmap);
    bm.setRange(gd.inodeTable, inodeTableBlocks);
  }

  // The bitmaps themselves, read in runs of consecutive blocks (flex_bg packs them together).
  const toRead = groups.map((gd, g) => ({ g, block: gd.blockBitmap })).filter((x) => !groups[x.g].blockUninit && !groups[x.g].bad);
  toRead.sort((a, b) => a.block - b.block);
  for (let i = 0; i < toRead.length;) {
    let j = i + 1;
    while (j < toRead.length && j - i < 256 && toRead[j].block === toRead[j - 1].block + 1) j++;
    const buf = await p.read(toRead[i].block * blockSize, (j - i) * blockSize);
    for (let k = i; k < j; k++) {
      const g = toRead[k].g;
      const bitmap = buf.subarray((k - i) * blockSize, (k - i + 1) * blockSize);
      const bits = groupBlocks(g);
      if (metadataCsum && !bitmapChecksumOk(s, groups[g].raw, bitmap)) distrust(g, 'block bitmap checksum');
      // Every writer of a bitmap updates the descriptor's free count with it; a bitmap that disagrees
      // (a zeroed sector on a filesystem without metadata_csum) is not the group's.
      else if (bits - countBits(bitmap, bits) !== groups[g].freeBlocks) distrust(g, 'free block count');
      else bm.orBits(bitmap, groupStart(g), bits);
    }
    i = j;
  }
  return untrusted;
}

/** ext4_block_bitmap_csum_verify: crc32c of the group's bitmap bytes; 32 bits with 64-byte descriptors, else the low 16. */
function bitmapChecksumOk(s: ExtSuperblock, desc: Buffer, bitmap: Buffer): boolean {
  const calc = crc32cRaw(s.csumSeed, bitmap.subarray(0, s.blocksPerGroup / 8));
  const lo = desc.readUInt16LE(BG_BLOCK_BITMAP_CSUM_LO);
  if (s.descSize < BG_BLOCK_BITMAP_CSUM_HI + 2) return lo === (calc & 0xffff);
  return (lo | (desc.readUInt16LE(BG_BLOCK_BITMAP_CSUM_HI) << 16)) >>> 0 === calc;
}

const WHY: Record<string, string> = {
  'descriptor checksum': 'descriptor fails its checksum',
  'block bitmap checksum': 'block bitmap fails its checksum',
  'free block count': "block bitmap disagrees with its descriptor's free block count",
  journal: 'block bitmap has a newer copy in the journal, not yet written back (the filesystem needs recovery)',
};

function describeUntrusted(s: ExtSuperblock, list: Untrusted[]): string {
  const byWhy = new Map<string, number[]>();
  for (const u of list) byWhy.set(u.why, [...(byWhy.get(u.why) ?? []), u.g]);
  const parts = [...byWhy].map(([why, gs]) => {
    const shown = gs.slice(0, 10).join(', ') + (gs.length > 10 ? ` and ${gs.length - 10} more` : '');
    return `${gs.length === 1 ? 'group' : 'groups'} ${shown}: ${gs.length === 1 ? 'its' : 'each'} ${WHY[why]}`;
  });
  const mib = (list.length * s.blocksPerGroup * s.blockSize) / 2 ** 20;
  return (
    `${s.fs}: ${parts.join('; ')}. ${list.length === 1 ? 'That group is' : `Those ${list.length} groups are`} imaged in full ` +
    `(up to ${mib.toFixed(mib < 10 ? 1 : 0)} MiB) instead of trusting ${list.length === 1 ? 'its' : 'their'} free-block map.` +
    // A journal not yet written back is what every mounted filesystem has; anything else is damage.
    (list.some((u) => u.why !== 'journal') ? ' Run e2fsck on the source.' : '')
  );
}
