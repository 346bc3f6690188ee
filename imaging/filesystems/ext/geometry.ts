// An ext filesystem as the change scan (inodes.ts) follows it: the features it can follow, the group
// descriptors with every check they offer, and where each inode lives.

import {
  BG_CHECKSUM_OFFSET,
  EXT_SB_OFFSET,
  EXT_SB_SIZE,
  INCOMPAT_META_BG,
  INCOMPAT_UNDERSTOOD,
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

/** Something on disk does not hold: readExtState answers null, blocksToReread throws it. */
export class ExtDamage extends Error {}

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
export const RO_COMPAT_HUGE_FILE = 0x8;
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
  if (s.incompat & ~INCOMPAT_UNDERSTOOD) return `unknown incompat features 0x${(s.incompat & ~INCOMPAT_UNDERSTOOD).toString(16)}`;
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
