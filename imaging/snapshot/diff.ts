// Compares two snapshots' extent maps: which byte ranges of the disk changed between them, per
// partition. Works on the manifests alone (no chunk is read): two ranges are the same when they
// lie at the same position inside the same chunk; zero and free space count as equal to each
// other (a restore leaves both as zeros, or as whatever the target held); free ↔ data is a change.
// The two snapshots may have different chunk boundaries or partition layouts: both extent lists
// are walked in parallel over disk byte ranges.
import { Area, FREE, Manifest, ZERO } from '../repo/manifest';

export interface PartitionDiff {
  /** Partition index, or null for the raw areas (partition table, boot code, gaps). */
  index: number | null;
  fs?: string;
  changedBytes: number;
  /** [disk byte offset, length], sorted and merged. */
  ranges: [number, number][];
}

export interface SnapshotDiff {
  a: string;
  b: string;
  partitions: PartitionDiff[];
  totalChangedBytes: number;
}

/** A disk-level run: [start, end) with one ref; `base` is where the ref's chunk starts on disk. */
interface Run {
  start: number;
  end: number;
  ref: string;
  base: number;
  key: number | null;
}

function runsOf(m: Manifest): Run[] {
  const runs: Run[] = [];
  const areas = [...m.areas].sort((x, y) => x.start - y.start);
  let pos = 0;
  const gap = (to: number) => {
    if (to > pos) runs.push({ start: pos, end: to, ref: FREE, base: pos, key: null });
  };
  for (const a of areas) {
    gap(a.start);
    for (const [off, len, ref] of a.extents) {
      if (len <= 0) continue;
      const start = a.start + off;
      if (start + len <= pos) continue; // overlapping area (should not happen): the first one wins
      const s = Math.max(start, pos);
      gap(s);
      runs.push({ start: s, end: start + len, ref, base: start, key: keyOf(a) });
      pos = start + len;
    }
    gap(a.start + a.size);
    pos = Math.max(pos, a.start + a.size);
  }
  return runs;
}

const keyOf = (a: Area): number | null => (a.kind === 'partition' && a.partition !== undefined ? a.partition : null);
const isEmpty = (ref: string) => ref === ZERO || ref === FREE;

function same(x: Run | undefined, y: Run | undefined): boolean {
  const rx = x?.ref ?? FREE; // past the end of the smaller disk: nothing is stored there
  const ry = y?.ref ?? FREE;
  if (isEmpty(rx) && isEmpty(ry)) return true;
  return rx === ry && x!.base === y!.base;
}

export function diffSnapshots(a: Manifest, b: Manifest): SnapshotDiff {
  const ra = runsOf(a);
  const rb = runsOf(b);
  const end = Math.max(ra.length ? ra[ra.length - 1].end : 0, rb.length ? rb[rb.length - 1].end : 0, a.source.size, b.source.size);
  const byKey = new Map<number | null, [number, number][]>();
  const add = (key: number | null, from: number, to: number) => {
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    const last = list[list.length - 1];
    if (last && last[0] + last[1] === from) last[1] += to - from;
    else list.push([from, to - from]);
  };

  let i = 0;
  let j = 0;
  let pos = 0;
  while (pos < end) {
    while (i < ra.length && ra[i].end <= pos) i++;
    while (j < rb.length && rb[j].end <= pos) j++;
    const x = i < ra.length && ra[i].start <= pos ? ra[i] : undefined;
    const y = j < rb.length && rb[j].start <= pos ? rb[j] : undefined;
    // The next boundary in either list.
    let next = end;
    if (x) next = Math.min(next, x.end);
    else if (i < ra.length) next = Math.min(next, ra[i].start);
    if (y) next = Math.min(next, y.end);
    else if (j < rb.length) next = Math.min(next, rb[j].start);
    if (next <= pos) break; // defensive: malformed (non-increasing) extents
    if (!same(x, y)) add(y ? y.key : x ? x.key : null, pos, next);
    pos = next;
  }

  // Every partition of either snapshot is listed (unchanged ones with 0 bytes), raw areas first.
  const fsOf = new Map<number, string | undefined>();
  for (const p of a.partitions) fsOf.set(p.index, p.fs);
  for (const p of b.partitions) fsOf.set(p.index, p.fs ?? fsOf.get(p.index));
  const keys = new Set<number | null>([null, ...a.partitions.map((p) => p.index), ...b.partitions.map((p) => p.index), ...byKey.keys()]);
  const partitions: PartitionDiff[] = [...keys]
    .sort((x, y) => (x === null ? -1 : y === null ? 1 : x - y))
    .map((key) => {
      const ranges = byKey.get(key) ?? [];
      const fs = key === null ? undefined : fsOf.get(key);
      return { index: key, ...(fs ? { fs } : {}), changedBytes: ranges.reduce((n, r) => n + r[1], 0), ranges };
    });
  return { a: a.id, b: b.id, partitions, totalChangedBytes: partitions.reduce((n, p) => n + p.changedBytes, 0) };
}
