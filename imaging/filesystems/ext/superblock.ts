// The ext2/3/4 superblock and the group descriptor table's location, parsed in one place for the
// used-block reader (filesystems/ext/used-blocks.ts) and the file reader (filesystems/ext/reader.ts): what a snapshot calls
// ext and what devsnap reads files from must never drift apart.
// Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk format).

import { cString, uuidString } from '../bitmap';
import { crc16, crc32cRaw } from '../checksums';
import type { ByteReader } from '../types';

/** The primary superblock sits 1024 bytes into the partition, whatever the block size. */
export const EXT_SB_OFFSET = 1024;
export const EXT_SB_SIZE = 1024;
const EXT_MAGIC = 0xef53;

const COMPAT_HAS_JOURNAL = 0x4;
const COMPAT_SPARSE_SUPER2 = 0x200;
const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_GDT_CSUM = 0x10;
export const RO_COMPAT_BIGALLOC = 0x200;
export const RO_COMPAT_METADATA_CSUM = 0x400;
const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_64BIT = 0x80;
const INCOMPAT_FLEX_BG = 0x200;
/**
 * Incompat features that do not change where blocks, inodes and block-allocation metadata live:
 * what the used-block reader and the inode reader follow. Not meta_bg (descriptors scattered over
 * the disk), journal_dev or compression.
 */
export const INCOMPAT_UNDERSTOOD =
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
const INCOMPAT_CSUM_SEED = 0x2000;
/** Where s_checksum sits: the superblock checksum covers every byte before it. */
const SB_CHECKSUM_OFFSET = 0x3fc;
const MAX_DESCRIPTOR_TABLE = 256 << 20;
/** Features ext3 knows; anything else makes it ext4 (the same rule blkid uses). */
const EXT3_RO_COMPAT = RO_COMPAT_SPARSE_SUPER | 0x2 /* large_file */ | 0x4; /* btree_dir */
const EXT3_INCOMPAT = 0x2 /* filetype */ | 0x4 /* recover */ | INCOMPAT_META_BG;

export interface ExtSuperblock {
  fs: 'ext2' | 'ext3' | 'ext4';
  blockSize: number;
  /** 64-bit with the 64bit feature (s_blocks_count_hi). */
  blocksCount: number;
  /** 1 with 1 KiB blocks (block 0 is the boot block), else 0. */
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeSize: number;
  groupCount: number;
  /** Bytes per group descriptor: 32, or s_desc_size (at least 32) with the 64bit feature. */
  descSize: number;
  /** Blocks the whole descriptor table takes. */
  gdtBlocks: number;
  reservedGdtBlocks: number;
  compat: number;
  incompat: number;
  roCompat: number;
  /** meta_bg: descriptor blocks from this one on live in their meta group, not after the superblock. */
  firstMetaBg: number;
  /** sparse_super2: the only two groups (besides 0) with superblock backups. */
  backupBgs: [number, number];
  label?: string;
  uuid: string;
  /** The raw 16-byte s_uuid (seeds the descriptor checksums). */
  uuidBytes: Buffer;
  inodesCount: number;
  /** 0 for revision 0 filesystems (fixed 128-byte inodes). */
  revLevel: number;
  /** log2 of the groups per flex group (only meaningful with flex_bg). */
  logGroupsPerFlex: number;
  /** needs_recovery: the journal holds transactions not yet written to their home blocks. */
  needsRecovery: boolean;
  /** s_journal_inum (0 with an external journal device). */
  journalInode: number;
  /** metadata_csum: crc32c seed of every metadata checksum (s_checksum_seed or crc32c of the UUID). */
  csumSeed: number;
  /** metadata_csum: s_checksum_type is crc32c and s_checksum matches the superblock's bytes. Null without metadata_csum. */
  checksumOk: boolean | null;
}

/** The superblock read at EXT_SB_OFFSET (EXT_SB_SIZE bytes), or null when it is not a sane ext superblock. */
export function parseExtSuperblock(sb: Buffer): ExtSuperblock | null {
  if (sb.length < EXT_SB_SIZE || sb.readUInt16LE(0x38) !== EXT_MAGIC) return null;
  const logBlock = sb.readUInt32LE(0x18);
  const blocksPerGroup = sb.readUInt32LE(0x20);
  const inodesPerGroup = sb.readUInt32LE(0x28);
  // The magic alone is 2 bytes: these keep random data (and divisions by zero) out.
  if (logBlock > 6 || blocksPerGroup === 0 || inodesPerGroup === 0) return null;

  const blockSize = 1024 << logBlock;
  const compat = sb.readUInt32LE(0x5c);
  const incompat = sb.readUInt32LE(0x60);
  const roCompat = sb.readUInt32LE(0x64);
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blocksCount = sb.readUInt32LE(0x04) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const firstDataBlock = sb.readUInt32LE(0x14);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  // The raw s_desc_size with 64bit (extGeometryProblems refuses anything but 64..512), else the fixed 32.
  const descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
  const metadataCsum = (roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  const uuidBytes = Buffer.from(sb.subarray(0x68, 0x78));
  const ext4 = (incompat & ~EXT3_INCOMPAT) !== 0 || (roCompat & ~EXT3_RO_COMPAT) !== 0;
  return {
    fs: ext4 ? 'ext4' : compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2',
    blockSize,
    blocksCount,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    // Revision 0 filesystems have no s_inode_size: their inodes are 128 bytes.
    inodeSize: sb.readUInt32LE(0x4c) === 0 ? 128 : sb.readUInt16LE(0x58),
    groupCount,
    descSize,
    gdtBlocks: descSize ? Math.ceil((groupCount * descSize) / blockSize) : 0,
    reservedGdtBlocks: sb.readUInt16LE(0xce),
    compat,
    incompat,
    roCompat,
    firstMetaBg: sb.readUInt32LE(0x104),
    backupBgs: [sb.readUInt32LE(0x24c), sb.readUInt32LE(0x250)],
    label: cString(sb.subarray(0x78, 0x88), 'utf8'),
    uuid: uuidString(uuidBytes),
    uuidBytes,
    inodesCount: sb.readUInt32LE(0x00),
    revLevel: sb.readUInt32LE(0x4c),
    logGroupsPerFlex: sb[0x174],
    needsRecovery: (incompat & INCOMPAT_RECOVER) !== 0,
    journalInode: sb.readUInt32LE(0xe0),
    csumSeed: incompat & INCOMPAT_CSUM_SEED ? sb.readUInt32LE(0x270) : crc32cRaw(0xffffffff, uuidBytes),
    // s_checksum_type 1 is crc32c, the only one defined.
    checksumOk: metadataCsum ? sb[0x175] === 1 && crc32cRaw(0xffffffff, sb.subarray(0, SB_CHECKSUM_OFFSET)) === sb.readUInt32LE(SB_CHECKSUM_OFFSET) : null,
  };
}

/**
 * What makes this superblock implausible for a partition of `partitionSize` bytes (empty: it holds),
 * after the kernel's ext4_fill_super and libext2fs's ext2fs_open checks. A superblock that fails any of
 * them cannot locate its groups' bitmaps: nothing read through it may decide what is free.
 */
export function extGeometryProblems(s: ExtSuperblock, partitionSize: number): string[] {
  const out: string[] = [];
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  const bigalloc = (s.roCompat & RO_COMPAT_BIGALLOC) !== 0;
  if (s.checksumOk === false) out.push('the superblock fails its checksum (metadata_csum)');
  // Bigalloc counts groups in clusters, not blocks; its reader images everything anyway.
  if (!bigalloc && (s.blocksPerGroup > 8 * s.blockSize || s.blocksPerGroup % 8 !== 0)) {
    out.push(`${s.blocksPerGroup} blocks per group (at most 8 × the ${s.blockSize}-byte block size, and a multiple of 8)`);
  }
  if (s.inodesPerGroup > 8 * s.blockSize) out.push(`${s.inodesPerGroup} inodes per group (at most ${8 * s.blockSize})`);
  if (s.revLevel > 0 && (!pow2(s.inodeSize) || s.inodeSize < 128 || s.inodeSize > s.blockSize)) out.push(`an inode size of ${s.inodeSize} bytes`);
  if (s.incompat & INCOMPAT_64BIT && (!pow2(s.descSize) || s.descSize < 64 || s.descSize > 512)) {
    out.push(`a group descriptor size of ${s.descSize} bytes (64bit filesystems use 64)`);
  }
  const firstData = s.blockSize === 1024 && !bigalloc ? 1 : 0;
  if (s.firstDataBlock !== firstData) out.push(`first data block ${s.firstDataBlock} (expected ${firstData} with ${s.blockSize}-byte blocks)`);
  if (s.blocksCount <= s.firstDataBlock || s.groupCount <= 0) out.push(`a block count of ${s.blocksCount}`);
  else if (s.blocksCount * s.blockSize > partitionSize) {
    out.push(`${s.blocksCount} blocks of ${s.blockSize} bytes, more than the ${partitionSize}-byte partition holds`);
  }
  if (s.groupCount > 0 && s.inodesCount !== s.groupCount * s.inodesPerGroup) {
    out.push(`${s.inodesCount} inodes, not ${s.groupCount} groups × ${s.inodesPerGroup} inodes per group`);
  }
  if (s.reservedGdtBlocks > s.blockSize / 4) out.push(`${s.reservedGdtBlocks} reserved descriptor blocks`);
  if (!(s.incompat & INCOMPAT_META_BG) && 1 + s.gdtBlocks + s.reservedGdtBlocks > s.blocksPerGroup) {
    out.push(`a descriptor table (${s.gdtBlocks} + ${s.reservedGdtBlocks} reserved blocks) larger than a group`);
  }
  // Read whole by readDescriptorTable: 256 MiB describes 4 million groups (512 TiB of 4 KiB blocks).
  if (s.gdtBlocks * s.blockSize > MAX_DESCRIPTOR_TABLE) out.push(`a descriptor table of ${Math.round((s.gdtBlocks * s.blockSize) / 2 ** 20)} MiB`);
  if (s.incompat & INCOMPAT_META_BG && s.firstMetaBg > s.gdtBlocks) out.push(`first meta block group ${s.firstMetaBg} past the descriptor table`);
  if (s.incompat & INCOMPAT_FLEX_BG && s.logGroupsPerFlex > 31) out.push(`2^${s.logGroupsPerFlex} groups per flex group`);
  return out;
}

/** Whether group g holds a superblock + GDT backup (sparse_super, sparse_super2 or neither), as ext2fs_bg_has_super. */
export function hasSuperBackup(s: ExtSuperblock, g: number): boolean {
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

/**
 * The whole group descriptor table (gdtBlocks blocks). Normally it follows the superblock; with
 * meta_bg, descriptor block i (from s_first_meta_bg on) lives in the first group of meta group i,
 * right after that group's superblock backup if it has one (sparse_super2 included, as in the
 * kernel's descriptor_loc and libext2fs's ext2fs_descriptor_block_loc2).
 */
export async function readDescriptorTable(p: ByteReader, s: ExtSuperblock): Promise<Buffer> {
  const { blockSize, firstDataBlock } = s;
  if (!(s.incompat & INCOMPAT_META_BG)) return p.read((firstDataBlock + 1) * blockSize, s.gdtBlocks * blockSize);
  const perBlock = blockSize / s.descSize;
  const parts: Buffer[] = [];
  for (let i = 0; i < s.gdtBlocks; i++) {
    let blk: number;
    if (i < s.firstMetaBg) blk = firstDataBlock + 1 + i;
    else {
      const g = i * perBlock;
      blk = firstDataBlock + g * s.blocksPerGroup + (hasSuperBackup(s, g) ? 1 : 0);
    }
    parts.push(await p.read(blk * blockSize, blockSize));
  }
  return Buffer.concat(parts);
}

/** Offset of bg_checksum in a group descriptor. */
export const BG_CHECKSUM_OFFSET = 0x1e;

/**
 * bg_checksum as ext4_group_desc_csum computes it: crc32c (low 16 bits) with metadata_csum, else crc16
 * (gdt_csum). Used by the used-block reader (filesystems/ext/used-blocks.ts) and the change scan (filesystems/ext/inodes.ts).
 */
export function groupDescriptorChecksum(s: ExtSuperblock, g: number, raw: Buffer): number {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(g);
  const after = raw.subarray(BG_CHECKSUM_OFFSET + 2);
  if (s.roCompat & RO_COMPAT_METADATA_CSUM) {
    let c = crc32cRaw(s.csumSeed, le);
    c = crc32cRaw(c, raw.subarray(0, BG_CHECKSUM_OFFSET));
    c = crc32cRaw(c, Buffer.alloc(2)); // the checksum field itself counts as zero
    return crc32cRaw(c, after) & 0xffff;
  }
  let c = crc16(0xffff, s.uuidBytes);
  c = crc16(c, le);
  c = crc16(c, raw.subarray(0, BG_CHECKSUM_OFFSET));
  return s.incompat & INCOMPAT_64BIT ? crc16(c, after) : c;
}
