// FAT12/16/32 used-block reader: BPB, then every cluster whose FAT entry is non-zero.
// Reference: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103).

import { BlockBitmap, cString } from './bitmap';
import type { ByteReader, UsedBlocks } from './types';

const FAT_CHUNK = 4 << 20; // bytes of FAT read at a time (FAT32 on big disks has FATs of 100+ MiB)

export async function readFat(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < 512) return null;
  const bs = await p.read(0, 512);
  const bps = bs.readUInt16LE(0x0b);
  const spc = bs[0x0d];
  const reserved = bs.readUInt16LE(0x0e);
  const numFats = bs[0x10];
  const rootEntries = bs.readUInt16LE(0x11);
  const totalSectors = bs.readUInt16LE(0x13) || bs.readUInt32LE(0x20);
  const fat16Sectors = bs.readUInt16LE(0x16);
  const fatSectors = fat16Sectors || bs.readUInt32LE(0x24);
  const sane =
    (bs[0] === 0xeb || bs[0] === 0xe9) && [512, 1024, 2048, 4096].includes(bps) && spc > 0 && (spc & (spc - 1)) === 0 &&
    reserved > 0 && numFats > 0 && numFats <= 4 && totalSectors > 0 && fatSectors > 0 && bs.readUInt16LE(510) === 0xaa55;
  if (!sane) return null;

  const clusterBytes = spc * bps;
  const rootDirSectors = Math.ceil((rootEntries * 32) / bps);
  const dataStart = (reserved + numFats * fatSectors + rootDirSectors) * bps;
  const fsBytes = Math.min(totalSectors * bps, p.size);
  if (dataStart >= fsBytes) return null;
  const clusterCount = Math.floor((fsBytes - dataStart) / clusterBytes);
  // Like Linux (and unlike fatgen103's count-only rule): a zero 16-bit FAT size means FAT32, whatever the
  // cluster count (mkfs.vfat -F 32 makes such small FAT32s); otherwise the count picks FAT12 or FAT16.
  const declaredClusters = Math.floor((totalSectors * bps - dataStart) / clusterBytes);
  const bits = fat16Sectors === 0 ? 32 : declaredClusters < 4085 ? 12 : 16;
  if (bits === 32 && rootEntries !== 0) return null;

  const ext = bits === 32 ? 0x40 : 0x24; // extended BPB: drive number, 0x29 signature, serial, label
  const hasExtBpb = bs[ext + 2] === 0x29;
  const serial = hasExtBpb ? bs.readUInt32LE(ext + 3) : undefined;
  const rawLabel = hasExtBpb ? cString(bs.subarray(ext + 7, ext + 18)) : undefined;
  const label = rawLabel === 'NO NAME' ? undefined : rawLabel;
  const uuid = serial === undefined ? undefined : `${hex4(serial >>> 16)}-${hex4(serial & 0xffff)}`;

  // One bit per gcd(cluster, data offset) so cluster boundaries fall on bit boundaries.
  const bm = new BlockBitmap(gcd(clusterBytes, dataStart), p.size);
  bm.setBytes(0, dataStart); // boot sector, reserved sectors, every FAT copy, FAT12/16 root directory
  bm.setBytes(dataStart + clusterCount * clusterBytes, p.size); // tail the clusters do not cover

  // With FAT32 mirroring disabled only the active FAT is current.
  const extFlags = bits === 32 ? bs.readUInt16LE(0x28) : 0;
  const activeFat = extFlags & 0x80 ? extFlags & 0x0f : 0;
  const fatStart = (reserved + activeFat * fatSectors) * bps;
  const perCluster = clusterBytes / bm.blockSize;
  const firstDataBit = dataStart / bm.blockSize;
  const markCluster = (c: number): void => bm.setRange(firstDataBit + (c - 2) * perCluster, perCluster);

  if (bits === 12) {
    const fat = await p.read(fatStart, Math.ceil(((clusterCount + 2) * 3) / 2));
    for (let c = 2; c < clusterCount + 2; c++) {
      const off = (c * 3) >> 1;
      const v = c & 1 ? fat.readUInt16LE(off) >> 4 : fat.readUInt16LE(off) & 0xfff;
      if (v) markCluster(c);
    }
  } else {
    const entryBytes = bits / 8;
    const perChunk = FAT_CHUNK / entryBytes;
    for (let first = 0; first < clusterCount + 2; first += perChunk) {
      const n = Math.min(perChunk, clusterCount + 2 - first);
      const fat = await p.read(fatStart + first * entryBytes, n * entryBytes);
      for (let k = 0; k < n; k++) {
        const c = first + k;
        if (c < 2) continue;
        const v = bits === 16 ? fat.readUInt16LE(k * 2) : fat.readUInt32LE(k * 4) & 0x0fffffff;
        if (v) markCluster(c);
      }
    }
  }
  return bm.result('vfat', label, uuid);
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
