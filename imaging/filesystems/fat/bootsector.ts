// The FAT12/16/32 boot sector (BPB), parsed in one place for the used-block reader (filesystems/fat/used-blocks.ts) and
// the file reader (filesystems/fat/reader.ts): what a snapshot calls vfat and what devsnap reads files
// from must never drift apart. Reference: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103).

import { cString } from '../bitmap';

/** Where everything is, in bytes from the partition start unless a name says otherwise. */
export interface FatGeometry {
  bits: 12 | 16 | 32;
  clusterBytes: number;
  /** s_root_entries: must be 0 on FAT32 (only filesystems/fat/used-blocks.ts enforces it, see there). */
  rootEntries: number;
  /** The FAT that is current: the first, or with FAT32 mirroring disabled the active one. */
  fatStart: number;
  /** Where each copy of the FAT starts that should hold the current map (all of them while mirroring is on). */
  fatCopies: number[];
  /** Bytes of one FAT. */
  fatBytes: number;
  numFats: number;
  /** The BPB's media descriptor, which the low byte of FAT entry 0 repeats. */
  media: number;
  /** FAT32's active FAT index when mirroring is disabled (may be out of range on a damaged BPB). */
  activeFat: number;
  /** FAT12/16's fixed root directory (empty on FAT32, whose root is a cluster chain). */
  rootDirStart: number;
  rootDirBytes: number;
  /** FAT32's root directory cluster; 0 on FAT12/16. */
  rootCluster: number;
  /** Byte offset of cluster 2. */
  dataStart: number;
  /** Bytes the BPB says the filesystem spans, clipped to the partition. */
  fsBytes: number;
  /** Bytes the BPB says the filesystem spans (total sectors × sector size). */
  declaredBytes: number;
  /** Clusters the BPB declares (from its sector count; decides FAT12 vs FAT16). */
  declaredClusters: number;
  /** Clusters that fit in fsBytes (the partition may be smaller than the BPB says). */
  clusterCount: number;
  label?: string;
  /** The volume serial as blkid prints it (XXXX-XXXX). */
  uuid?: string;
}

/** The boot sector (first 512 bytes) of a partition of `partitionSize` bytes, or null when it is not a sane BPB. */
export function parseFatBootSector(bs: Buffer, partitionSize: number): FatGeometry | null {
  if (bs.length < 512) return null;
  const bps = bs.readUInt16LE(0x0b);
  const spc = bs[0x0d];
  const reserved = bs.readUInt16LE(0x0e);
  const numFats = bs[0x10];
  const rootEntries = bs.readUInt16LE(0x11);
  const totalSectors = bs.readUInt16LE(0x13) || bs.readUInt32LE(0x20);
  const fat16Sectors = bs.readUInt16LE(0x16);
  const fatSectors = fat16Sectors || bs.readUInt32LE(0x24);
  // FAT has no magic number: a jump instruction, power-of-two geometry and the 0xaa55 signature
  // are what keeps other data (and divisions by zero) out.
  const sane =
    (bs[0] === 0xeb || bs[0] === 0xe9) &&
    [512, 1024, 2048, 4096].includes(bps) &&
    spc > 0 &&
    (spc & (spc - 1)) === 0 &&
    reserved > 0 &&
    numFats > 0 &&
    numFats <= 4 &&
    totalSectors > 0 &&
    fatSectors > 0 &&
    bs.readUInt16LE(510) === 0xaa55;
  if (!sane) return null;

  const clusterBytes = spc * bps;
  const rootDirSectors = Math.ceil((rootEntries * 32) / bps);
  const dataStart = (reserved + numFats * fatSectors + rootDirSectors) * bps;
  const fsBytes = Math.min(totalSectors * bps, partitionSize);
  // Like Linux (and unlike fatgen103's count-only rule): a zero 16-bit FAT size means FAT32, whatever the
  // cluster count (mkfs.vfat -F 32 makes such small FAT32s); otherwise the count picks FAT12 or FAT16.
  const declaredClusters = Math.floor((totalSectors * bps - dataStart) / clusterBytes);
  const bits = fat16Sectors === 0 ? 32 : declaredClusters < 4085 ? 12 : 16;

  // With FAT32 mirroring disabled (extended flags bit 7) only the active FAT is current.
  const extFlags = bits === 32 ? bs.readUInt16LE(0x28) : 0;
  const activeFat = extFlags & 0x80 ? extFlags & 0x0f : 0;

  const ext = bits === 32 ? 0x40 : 0x24; // extended BPB: drive number, 0x29 signature, serial, label
  const hasExtBpb = bs[ext + 2] === 0x29;
  const serial = hasExtBpb ? bs.readUInt32LE(ext + 3) : undefined;
  const rawLabel = hasExtBpb ? cString(bs.subarray(ext + 7, ext + 18)) : undefined;

  return {
    bits,
    clusterBytes,
    rootEntries,
    fatStart: (reserved + activeFat * fatSectors) * bps,
    fatCopies: extFlags & 0x80 ? [(reserved + activeFat * fatSectors) * bps] : Array.from({ length: numFats }, (_, k) => (reserved + k * fatSectors) * bps),
    fatBytes: fatSectors * bps,
    numFats,
    media: bs[0x15],
    activeFat,
    rootDirStart: (reserved + numFats * fatSectors) * bps,
    rootDirBytes: rootDirSectors * bps,
    rootCluster: bits === 32 ? bs.readUInt32LE(0x2c) : 0,
    dataStart,
    fsBytes,
    declaredBytes: totalSectors * bps,
    declaredClusters,
    clusterCount: Math.floor((fsBytes - dataStart) / clusterBytes),
    // mkfs.vfat writes "NO NAME" when there is no label; blkid reports none.
    label: rawLabel === 'NO NAME' ? undefined : rawLabel,
    uuid: serial === undefined ? undefined : `${hex4(serial >>> 16)}-${hex4(serial & 0xffff)}`,
  };
}

/**
 * What makes a sane-looking BPB's geometry implausible for the used-block map (empty: it holds): a map
 * read from a FAT that cannot describe every cluster, or from outside the partition, would call data free.
 */
export function fatGeometryProblems(g: FatGeometry, partitionSize: number): string[] {
  const out: string[] = [];
  if (g.declaredBytes > partitionSize) out.push(`${g.declaredBytes} bytes, more than the ${partitionSize}-byte partition holds`);
  if (g.dataStart >= g.fsBytes) out.push(`a data area starting at byte ${g.dataStart}, past the filesystem's end`);
  else if (Math.floor((g.fatBytes * 8) / g.bits) < g.clusterCount + 2) out.push(`a FAT of ${g.fatBytes} bytes, too small for ${g.clusterCount} clusters`);
  else if (fatOversized(g)) {
    out.push(
      `a FAT of ${g.fatBytes} bytes where FAT${g.bits}'s ${g.declaredClusters} clusters need ${Math.ceil(((g.declaredClusters + 2) * g.bits) / 8)} (a FAT laid out for another FAT type, e.g. a damaged sectors-per-cluster byte)`,
    );
  }
  if (g.bits === 32 && g.rootEntries !== 0) out.push(`${g.rootEntries} fixed root directory entries on FAT32`);
  if (g.bits !== 32 && g.rootEntries === 0) out.push(`no root directory entries on FAT${g.bits}`);
  if (g.bits === 32 && (g.rootCluster < 2 || g.rootCluster >= g.clusterCount + 2)) out.push(`root directory cluster ${g.rootCluster}`);
  if (g.bits === 32 && g.clusterCount > 0x0ffffff5) out.push(`${g.clusterCount} clusters`);
  if (g.activeFat >= g.numFats) out.push(`active FAT ${g.activeFat} of ${g.numFats}`);
  return out;
}

/**
 * A FAT far larger than the cluster count needs: the count (which decides FAT12/16) and the FAT's layout
 * disagree, as when the sectors-per-cluster byte is damaged, and entries would be read with the wrong width.
 * Formatters pad a FAT only to align the data area: mkfs.fat to the cluster size (a FAT12 of 128-sector
 * clusters may have a 128-sector FAT for 1 sector of entries), SD-card formatters to the erase block. So
 * padding beyond twice the need (plus slack) is accepted only when the data area starts on a power-of-two
 * boundary, at least a cluster, that is larger than the padding.
 */
function fatOversized(g: FatGeometry): boolean {
  const need = Math.ceil(((g.declaredClusters + 2) * g.bits) / 8);
  const excess = g.fatBytes - need;
  if (g.fatBytes <= 2 * need + 8 * 512) return false;
  let alignment = 512; // the largest power of two dividing the data area's start (bytes may pass 2^31)
  while (alignment < 2 ** 40 && g.dataStart % (alignment * 2) === 0) alignment *= 2;
  return !(alignment >= g.clusterBytes && excess <= alignment);
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
