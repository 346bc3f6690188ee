// ext2/3/4 used-block reader: superblock, group descriptors and the per-group block bitmaps.
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).
// Rule: never under-report. Anything we cannot interpret is marked used.

import { BlockBitmap, cString, uuidString } from './bitmap';
import type { ByteReader, UsedBlocks } from './types';

const SB_OFFSET = 1024;
const EXT_MAGIC = 0xef53;

const COMPAT_HAS_JOURNAL = 0x4;
const COMPAT_SPARSE_SUPER2 = 0x200;
const RO_COMPAT_SPARSE_SUPER = 0x1;
const RO_COMPAT_GDT_CSUM = 0x10;
const RO_COMPAT_BIGALLOC = 0x200;
const RO_COMPAT_METADATA_CSUM = 0x400;
const INCOMPAT_JOURNAL_DEV = 0x8;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_64BIT = 0x80;
/** Incompat features that do not change where block-allocation metadata lives. */
const INCOMPAT_HANDLED =
  0x2 /* filetype */ | 0x4 /* recover */ | 0x40 /* extents */ | INCOMPAT_64BIT | 0x100 /* mmp */ | 0x200 /* flex_bg */ |
  0x400 /* ea_inode */ | 0x1000 /* dirdata */ | 0x2000 /* csum_seed */ | 0x4000 /* largedir */ | 0x8000 /* inline_data */ |
  0x10000 /* encrypt */ | 0x20000 /* casefold */;
/** Features ext3 knows; anything else makes it ext4 (the same rule blkid uses). */
const EXT3_RO_COMPAT = RO_COMPAT_SPARSE_SUPER | 0x2 /* large_file */ | 0x4 /* btree_dir */;
const EXT3_INCOMPAT = 0x2 | 0x4 | INCOMPAT_META_BG;

const BG_BLOCK_UNINIT = 0x2;

interface Super {
  blockSize: number;
  blocksCount: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  groupCount: number;
  descSize: number;
  inodeTableBlocks: number;
  reservedGdtBlocks: number;
  compat: number;
  incompat: number;
  roCompat: number;
  backupBgs: [number, number];
}

export async function readExt(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < SB_OFFSET + 1024) return null;
  const sb = await p.read(SB_OFFSET, 1024);
  if (sb.readUInt16LE(0x38) !== EXT_MAGIC) return null;
  const logBlock = sb.readUInt32LE(0x18);
  const blocksPerGroup = sb.readUInt32LE(0x20);
  const inodesPerGroup = sb.readUInt32LE(0x28);
  if (logBlock > 6 || blocksPerGroup === 0 || inodesPerGroup === 0) return null; // not a sane ext superblock

  const blockSize = 1024 << logBlock;
  const compat = sb.readUInt32LE(0x5c);
  const incompat = sb.readUInt32LE(0x60);
  const roCompat = sb.readUInt32LE(0x64);
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blocksCount = sb.readUInt32LE(0x04) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const firstDataBlock = sb.readUInt32LE(0x14);
  const inodeSize = sb.readUInt32LE(0x4c) === 0 ? 128 : sb.readUInt16LE(0x58);
  const s: Super = {
    blockSize,
    blocksCount,
    firstDataBlock,
    blocksPerGroup,
    groupCount: Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup),
    descSize: is64 ? Math.max(32, sb.readUInt16LE(0xfe)) : 32,
    inodeTableBlocks: Math.ceil((inodesPerGroup * inodeSize) / blockSize),
    reservedGdtBlocks: sb.readUInt16LE(0xce),
    compat,
    incompat,
    roCompat,
    backupBgs: [sb.readUInt32LE(0x24c), sb.readUInt32LE(0x250)],
  };

  const bm = new BlockBitmap(blockSize, p.size);
  const label = cString(sb.subarray(0x78, 0x88), 'utf8');
  const uuid = uuidString(sb.subarray(0x68, 0x78));
  const kind = extKind(s);
  bm.setRange(blocksCount, bm.blocks); // past the filesystem's end: not ours to judge

  const understood =
    (incompat & ~INCOMPAT_HANDLED) === 0 && (roCompat & RO_COMPAT_BIGALLOC) === 0 && s.groupCount > 0 && s.descSize <= 1024;
  if (!understood) {
    // meta_bg (descriptors scattered), bigalloc (cluster bitmaps), external journal devices, unknown features.
    bm.setRange(0, bm.blocks);
    return bm.result(kind, label, uuid);
  }

  await markGroups(p, s, bm);
  return bm.result(kind, label, uuid);
}

function extKind(s: Super): UsedBlocks['fs'] {
  if ((s.incompat & ~EXT3_INCOMPAT) !== 0 || (s.roCompat & ~EXT3_RO_COMPAT) !== 0) return 'ext4';
  return s.compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
}

interface GroupDesc {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  blockUninit: boolean;
}

async function markGroups(p: ByteReader, s: Super, bm: BlockBitmap): Promise<void> {
  const { blockSize, blocksPerGroup, firstDataBlock } = s;
  const gdtBlocks = Math.ceil((s.groupCount * s.descSize) / blockSize);
  const gdt = await p.read((firstDataBlock + 1) * blockSize, gdtBlocks * blockSize);
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
    bm.setRange(gd.inodeTable, s.inodeTableBlocks);
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

/** Whether group g holds a superblock + GDT backup (sparse_super, sparse_super2 or neither). */
function hasSuperBackup(s: Super, g: number): boolean {
  if (g === 0) return true;
  if (s.compat & COMPAT_SPARSE_SUPER2) return g === s.backupBgs[0] || g === s.backupBgs[1];
  if (!(s.roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  return g === 1 || isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

function isPowerOf(n: number, base: number): boolean {
  let v = base;
  while (v < n) v *= base;
  return v === n;
}
