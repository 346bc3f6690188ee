// What decides where things live in an ext filesystem, for comparing states: the layout key and the
// MMP block.
import { crc32cRaw } from '../checksums';
import { INCOMPAT_MMP, INCOMPAT_RECOVER, RO_COMPAT_ORPHAN_PRESENT, type ExtFs } from './inodes';

/** Everything that decides where things live: equal keys, same layout. */
export function layoutKey(fs: ExtFs): string {
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
    s.blockSize,
    s.blocksPerGroup,
    s.inodesPerGroup,
    s.inodeSize,
    s.descSize,
    s.reservedGdtBlocks,
    s.logGroupsPerFlex,
    s.revLevel,
    s.backupBgs.join('/'),
    `c${s.compat.toString(16)}`,
    `i${(s.incompat & ~INCOMPAT_RECOVER).toString(16)}`,
    `r${(s.roCompat & ~RO_COMPAT_ORPHAN_PRESENT).toString(16)}`,
    fs.firstIno,
    s.journalInode,
    ...[0x240, 0x244, 0x26c, 0x280].map((o) => sb.readUInt32LE(o)),
    mmpBlock(fs),
    `g${loc.toString(16)}`,
  ].join(':');
}

export function mmpBlock(fs: ExtFs): number {
  return fs.s.incompat & INCOMPAT_MMP ? fs.sb.readUInt32LE(0x168) + fs.sb.readUInt32LE(0x16c) * 2 ** 32 : 0;
}
