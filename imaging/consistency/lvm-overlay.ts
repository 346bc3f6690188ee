// The disk as it was at the LVM snapshot's instant: a ByteReader over the live disk in which the
// LV's extents are read from the snapshot device and the PVs' metadata areas from copies taken
// just before the snapshot was created (lvm.ts describes the whole sequence).
import type { ByteReader } from '../filesystems/types';
import type { LvPiece } from './lvm-report';

/** An LV byte range on the disk: bytes [diskOffset, diskOffset+length) of the disk are [lvOffset, …) of the LV. */
export interface DiskPiece {
  diskOffset: number;
  length: number;
  lvOffset: number;
}

/** A PV's label and metadata area as copied before the snapshot, at its place on the disk. */
export interface MetadataRegion {
  diskOffset: number;
  bytes: Buffer;
}

/** Turns lvLayout pieces on the PV `pvName` (the partition starting at byte `partitionStart` of the disk) into disk offsets. */
export function piecesOnDisk(layout: LvPiece[], pvName: string, partitionStart: number, partitionSize?: number): DiskPiece[] {
  return layout
    .filter((p) => p.pvName === pvName)
    .map((p) => {
      if (partitionSize !== undefined && p.pvOffset + p.length > partitionSize) {
        throw new Error(`The LV's extents at byte ${p.pvOffset} of ${pvName} run past the end of its partition (${partitionSize} bytes): the partition table and LVM disagree.`);
      }
      return { diskOffset: partitionStart + p.pvOffset, length: p.length, lvOffset: p.lvOffset };
    })
    .sort((a, b) => a.diskOffset - b.diskOffset);
}

interface Region {
  start: number;
  end: number;
  /** Copies disk bytes [from, to) of this region into `out` at `at`. */
  fill(from: number, to: number, out: Buffer, at: number): Promise<void> | void;
}

const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;

/**
 * A ByteReader over `disk` that reads `pieces` from `snapshot` and the `metadata` regions (one per
 * PV of the VG on this disk; one region or a list, possibly empty) from their copies.
 */
export function overlayReader(disk: ByteReader, pieces: DiskPiece[], snapshot: ByteReader, metadata: MetadataRegion | MetadataRegion[]): ByteReader {
  return layeredReader(disk, [{ pieces, snapshot }], metadata);
}

/** overlayReader for several LVs at once, each with its own snapshot (no two regions may overlap). */
export function layeredReader(disk: ByteReader, layers: { pieces: DiskPiece[]; snapshot: ByteReader }[], metadata: MetadataRegion | MetadataRegion[]): ByteReader {
  const regions: Region[] = [];
  for (const { pieces, snapshot } of layers)
    for (const p of pieces) {
      if (!whole(p.diskOffset) || !whole(p.lvOffset) || !whole(p.length) || p.length === 0) throw new Error(`Bad LV piece ${JSON.stringify(p)}.`);
      if (p.diskOffset + p.length > disk.size) throw new Error(`An LV piece (${p.diskOffset}+${p.length}) runs past the end of the disk (${disk.size} bytes).`);
      if (p.lvOffset + p.length > snapshot.size) throw new Error(`An LV piece (LV bytes ${p.lvOffset}+${p.length}) runs past the end of the snapshot (${snapshot.size} bytes).`);
      regions.push({
        start: p.diskOffset,
        end: p.diskOffset + p.length,
        fill: async (from, to, out, at) => {
          (await snapshot.read(p.lvOffset + (from - p.diskOffset), to - from)).copy(out, at);
        },
      });
    }
  for (const m of Array.isArray(metadata) ? metadata : [metadata]) {
    if (!whole(m.diskOffset) || m.bytes.length === 0 || m.diskOffset + m.bytes.length > disk.size) throw new Error(`Bad LVM metadata region at ${m.diskOffset} (${m.bytes.length} bytes).`);
    const start = m.diskOffset;
    regions.push({ start, end: start + m.bytes.length, fill: (from, to, out, at) => void m.bytes.copy(out, at, from - start, to - start) });
  }
  regions.sort((a, b) => a.start - b.start);
  for (let i = 1; i < regions.length; i++) {
    if (regions[i].start < regions[i - 1].end) throw new Error(`Overlapping LV pieces or metadata regions at disk byte ${regions[i].start}.`);
  }
  /** The first region ending after `pos` (regions are disjoint and sorted, so their ends are too). */
  const firstAfter = (pos: number): number => {
    let lo = 0;
    let hi = regions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (regions[mid].end <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  return {
    size: disk.size,
    async read(position: number, length: number): Promise<Buffer> {
      if (!whole(position) || !whole(length)) throw new Error(`Bad read of ${length} bytes at ${position}.`);
      const end = position + length;
      let i = firstAfter(position);
      if (i === regions.length || regions[i].start >= end) return disk.read(position, length);
      const out = Buffer.alloc(length);
      const jobs: Array<Promise<void> | void> = [];
      const fromDisk = (a: number, b: number) => jobs.push(disk.read(a, b - a).then((buf) => void buf.copy(out, a - position)));
      let cur = position;
      for (; i < regions.length && regions[i].start < end; i++) {
        const r = regions[i];
        const a = Math.max(r.start, position);
        const b = Math.min(r.end, end);
        if (a > cur) fromDisk(cur, a);
        jobs.push(r.fill(a, b, out, a - position));
        cur = b;
      }
      if (cur < end) fromDisk(cur, end);
      await Promise.all(jobs);
      return out;
    },
  };
}
