// ext2/3/4 used-block reader: superblock, group descriptors and the per-group block bitmaps.
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).
// Rule: never under-report. Anything we cannot interpret is marked used.

import { BlockBitmap } from './bitmap';
import { EXT_SB_OFFSET, EXT_SB_SIZE, INCOMPAT_64BIT, hasSuperBackup, parseExtSuperblock, readDescriptorTable, type ExtSuperblock } from './ext-superblock';
import type { ByteReader, UsedBlocks } from './types';

const RO_COMPAT_GDT_CSUM = 0x10;
const RO_COMPAT_BIGALLOC = 0x200;
const RO_COMPAT_METADATA_CSUM = 0x400;
/**
 * Incompat features that do not change where block-allocation metadata lives. Not meta_bg
 * (descriptors scattered over the disk: marked all used rather than chased) nor journal_dev.
 */
const INCOMPAT_HANDLED =
  0x2 /* filetype */ | 0x4 /* recover */ | 0x40 /* extents */ | INCOMPAT_64BIT | 0x100 /* mmp */ | 0x200 /* flex_bg */ |
  0x400 /* ea_inode */ | 0x1000 /* dirdata */ | 0x2000 /* csum_seed */ | 0x4000 /* largedir */ | 0x8000 /* inline_data */ |
  0x10000 /* encrypt */ | 0x20000 /* casefold */;

const BG_BLOCK_UNINIT = 0x2;

export async function readExt(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < EXT_SB_OFFSET + EXT_SB_SIZE) return null;
  const s = parseExtSuperblock(await p.read(EXT_SB_OFFSET, EXT_SB_SIZE));
  if (!s) return null;

  const bm = new BlockBitmap(s.blockSize, p.size);
  bm.setRange(s.blocksCount, bm.blocks); // past the filesystem's end: not ours to judge

  const understood =
    (s.incompat & ~INCOMPAT_HANDLED) === 0 && (s.roCompat & RO_COMPAT_BIGALLOC) === 0 && s.groupCount > 0 && s.descSize <= 1024;
  if (!understood) {
    // meta_bg (descriptors scattered), bigalloc (cluster bitmaps), external journal devices, unknown features.
    bm.setRange(0, bm.blocks);
    return bm.result(s.fs, s.label, s.uuid);
  }

  await markGroups(p, s, bm);
  return bm.result(s.fs, s.label, s.uuid);
}

interface GroupDesc {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  blockUninit: boolean;
}

async function markGroups(p: ByteReader, s: ExtSuperblock, bm: BlockBitmap): Promise<void> {
  const { blockSize, blocksPerGroup, firstDataBlock, gdtBlocks } = s;
  const inodeTableBlocks = Math.ceil((s.inodesPerGroup * s.inodeSize) / blockSize);
  const gdt = await readDescriptorTable(p, s); // contiguous after the superblock: meta_bg never gets here
  // BLOCK_UNINIT is only trusted with group-descriptor checksums, as in the kernel.
  const csum = (s.roCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
  const groups: GroupDesc[] = [];
  for (let g = 0; g < s.groupCount; g++) {
    const d = g * s.descSize;
    const hi = (off: number): number => (s.descSize >= 64 ? gdt.readUInt32LE(d + off) * 2 ** 32 : 0);
    groups.push({
      blockBitmap: gdt.readUInt32LE(d) + hi(0x20),
      inodeBitmap: gdt.readUInt32LE(d + 4) + hi(0x24),
      inodeTable: gdt.readUInt32LE(d + 8) + hi(0x28),
      blockUninit: csum && (gdt.readUInt16LE(d + 0x12) & BG_BLOCK_UNINIT) !== 0,
    });
  }

  // Always used, whatever the bitmaps say: boot block, superblock/GDT copies, every group's metadata.
  bm.setRange(0, firstDataBlock + 1 + gdtBlocks + s.reservedGdtBlocks);
  for (let g = 0; g < s.groupCount; g++) {
    if (hasSuperBackup(s, g)) bm.setRange(firstDataBlock + g * blocksPerGroup, 1 + gdtBlocks + s.reservedGdtBlocks);
    const gd = groups[g];
    bm.set(gd.blockBitmap);
    bm.set(gd.inodeBitmap);
    bm.setRange(gd.inodeTable, inodeTableBlocks);
  }

  // The bitmaps themselves, read in runs of consecutive blocks (flex_bg packs them together).
  const toRead = groups.map((gd, g) => ({ g, block: gd.blockBitmap })).filter((x) => !groups[x.g].blockUninit);
  toRead.sort((a, b) => a.block - b.block);
  const bitsPerBitmap = Math.min(blocksPerGroup, blockSize * 8);
  for (let i = 0; i < toRead.length; ) {
    let j = i + 1;
    while (j < toRead.length && j - i < 256 && toRead[j].block === toRead[j - 1].block + 1) j++;
    const buf = await p.read(toRead[i].block * blockSize, (j - i) * blockSize);
    for (let k = i; k < j; k++) {
      const g = toRead[k].g;
      const start = firstDataBlock + g * blocksPerGroup;
      const bits = Math.min(bitsPerBitmap, s.blocksCount - start);
      bm.orBits(buf.subarray((k - i) * blockSize, (k - i + 1) * blockSize), start, bits);
    }
    i = j;
  }
}
