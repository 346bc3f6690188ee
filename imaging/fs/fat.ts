// FAT12/16/32 used-block reader: BPB, then every cluster whose FAT entry is non-zero.
// Reference: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103).

import { BlockBitmap } from './bitmap';
import { parseFatBootSector } from './fat-bootsector';
import type { ByteReader, UsedBlocks } from './types';

const FAT_CHUNK = 4 << 20; // bytes of FAT read at a time (FAT32 on big disks has FATs of 100+ MiB)

export async function readFat(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < 512) return null;
  const g = parseFatBootSector(await p.read(0, 512), p.size);
  if (!g) return null;
  const { bits, clusterBytes, dataStart, clusterCount, fatStart } = g;
  // Stricter than the file reader (image-fs/fat-reader.ts), which has always opened these: a data area
  // outside the partition leaves no clusters to map, and a FAT32 with a fixed root directory is malformed.
  // A null here leaves the partition unrecognised rather than mapped from numbers that make no sense.
  if (dataStart >= g.fsBytes) return null;
  if (bits === 32 && g.rootEntries !== 0) return null;

  // One bit per gcd(cluster, data offset) so cluster boundaries fall on bit boundaries.
  const bm = new BlockBitmap(gcd(clusterBytes, dataStart), p.size);
  bm.setBytes(0, dataStart); // boot sector, reserved sectors, every FAT copy, FAT12/16 root directory
  bm.setBytes(dataStart + clusterCount * clusterBytes, p.size); // tail the clusters do not cover

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
  return bm.result('vfat', g.label, g.uuid);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
