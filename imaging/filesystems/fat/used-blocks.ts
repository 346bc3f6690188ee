// FAT12/16/32 used-block reader: BPB, then every cluster whose FAT entry is non-zero in any copy of the FAT.
// Reference: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103).

import { BlockBitmap } from '../bitmap';
import { fatGeometryProblems, parseFatBootSector } from './bootsector';
import type { ByteReader, UsedBlocks } from '../types';

const FAT_CHUNK = 4 << 20; // bytes of FAT read at a time (FAT32 on big disks has FATs of 100+ MiB)

export async function readFat(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < 512) return null;
  const g = parseFatBootSector(await p.read(0, 512), p.size);
  if (!g) return null;
  const { bits, clusterBytes, dataStart, clusterCount } = g;
  // Stricter than the file reader (filesystems/fat/reader.ts), which reads whatever is reachable: a map
  // from numbers that make no sense would call data free, so the partition is imaged in full instead.
  const problems = fatGeometryProblems(g, p.size);
  if (problems.length) {
    const bm = new BlockBitmap(512, p.size);
    bm.setRange(0, bm.blocks);
    return {
      ...bm.result('vfat', g.label, g.uuid),
      full: true,
      warnings: [`vfat: implausible boot sector: ${problems.join('; ')}. The whole partition is imaged in full. Run fsck.fat on the source.`],
    };
  }

  // One bit per gcd(cluster, data offset) so cluster boundaries fall on bit boundaries.
  const bm = new BlockBitmap(gcd(clusterBytes, dataStart), p.size);
  bm.setBytes(0, dataStart); // boot sector, reserved sectors, every FAT copy, FAT12/16 root directory
  bm.setBytes(dataStart + clusterCount * clusterBytes, p.size); // tail the clusters do not cover

  const perCluster = clusterBytes / bm.blockSize;
  const firstDataBit = dataStart / bm.blockSize;
  const markCluster = (c: number): void => bm.setRange(firstDataBit + (c - 2) * perCluster, perCluster);

  // Every mirrored copy is read: a cluster any copy calls used is imaged (a bad sector zeroes one copy, not both).
  const entry = (fat: Buffer, k: number): number =>
    bits === 12 ? (k & 1 ? fat.readUInt16LE((k * 3) >> 1) >> 4 : fat.readUInt16LE((k * 3) >> 1) & 0xfff) : bits === 16 ? fat.readUInt16LE(k * 2) : fat.readUInt32LE(k * 4) & 0x0fffffff;
  const total = clusterCount + 2;
  // FAT12 entries straddle bytes: read it whole (at most 6 KiB); FAT16/32 in chunks.
  const perChunk = bits === 12 ? total : FAT_CHUNK / (bits / 8);
  const byteRange = (first: number, n: number): [number, number] => (bits === 12 ? [0, Math.ceil((total * 3) / 2) + 1] : [(first * bits) / 8, (n * bits) / 8]);
  // Entries from `total` up to the reserved values point at clusters that do not exist: the FAT is
  // damaged or read with the wrong entry width, and the clusters it calls free cannot be trusted.
  const reservedFrom = bits === 12 ? 0xff0 : bits === 16 ? 0xfff0 : 0x0ffffff0;
  let outOfRange = 0;
  let differing = 0;
  let mediaOk = false;
  for (let first = 0; first < total; first += perChunk) {
    const n = Math.min(perChunk, total - first);
    const [off, len] = byteRange(first, n);
    const copies = await Promise.all(g.fatCopies.map((start) => p.read(start + off, len)));
    if (first === 0) mediaOk = copies.some((fat) => (entry(fat, 0) & 0xff) === g.media);
    for (let k = Math.max(0, 2 - first); k < n; k++) {
      let used = 0;
      let beyond = false;
      for (const fat of copies) {
        const v = entry(fat, bits === 12 ? first + k : k);
        if (v) used++;
        if (v >= total && v < reservedFrom) beyond = true;
      }
      if (beyond) outOfRange++;
      if (used) markCluster(first + k);
      if (used && used < copies.length) differing++;
    }
  }
  const out = bm.result('vfat', g.label, g.uuid);
  if (!mediaOk) {
    // Entry 0 repeats the media byte in every healthy FAT: without it the start of the FAT is not trusted.
    bm.setRange(0, bm.blocks);
    return {
      ...bm.result('vfat', g.label, g.uuid),
      full: true,
      warnings: ['vfat: no copy of the FAT starts with the media descriptor (damaged FAT). The whole partition is imaged in full. Run fsck.fat on the source.'],
    };
  }
  if (outOfRange) {
    bm.setRange(0, bm.blocks);
    return {
      ...bm.result('vfat', g.label, g.uuid),
      full: true,
      warnings: [
        `vfat: ${outOfRange} FAT entr${outOfRange === 1 ? 'y points' : 'ies point'} past the last cluster (${total - 1}) (damaged FAT, or a boot sector whose geometry does not match it). The whole partition is imaged in full. Run fsck.fat on the source.`,
      ],
    };
  }
  if (differing) {
    out.warnings = [`vfat: the ${g.fatCopies.length} copies of the FAT disagree on ${differing} cluster(s); every cluster any copy calls used is imaged. Run fsck.fat on the source.`];
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
