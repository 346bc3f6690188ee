// What a snapshot (take.ts) reads before its first pass: the disk cut into areas, each partition's
// filesystem and used-block map, and the environment inventory.
import { layoutProblems, PartitionTable } from '../disk/partitions';
import { detectFilesystem } from '../filesystems/detect';
import type { ByteReader, UsedBlocks } from '../filesystems/types';
import { bootModeFromPartitions, collectInventory, type Inventory } from '../inventory/inventory';
import { openImageFs } from '../filesystems/image-fs/index';
import { sliceReader } from '../disk/source';
import type { PlannedArea } from '../capture/cells';
import type { PartitionInfo } from '../protocol';

/**
 * Cuts the disk into areas: raw gaps and one area per partition, clipped to the disk. Areas never
 * overlap (no byte is imaged twice): a partition that starts inside an earlier one gets an area for
 * its remaining bytes only. fsOf holds a used-block map only for partitions it may be trusted on
 * (snapshot leaves out overlapping ones: another partition's filesystem could call their data free).
 */
export function planAreas(table: PartitionTable, diskSize: number, fsOf: Map<number, UsedBlocks | null>): PlannedArea[] {
  const areas: PlannedArea[] = [];
  let pos = 0;
  for (const p of [...table.partitions].sort((a, b) => a.start - b.start)) {
    if (p.start >= diskSize) continue;
    if (p.start > pos) areas.push({ kind: 'raw', start: pos, size: p.start - pos, used: null });
    const start = Math.max(p.start, pos);
    const end = Math.min(p.start + p.size, diskSize);
    if (end > start) areas.push({ kind: 'partition', partition: p.index, start, size: end - start, used: start === p.start ? (fsOf.get(p.index) ?? null) : null });
    pos = Math.max(pos, end);
  }
  if (pos < diskSize) areas.push({ kind: 'raw', start: pos, size: diskSize - pos, used: null });
  return areas;
}

/**
 * The environment inventory (OS, packages, toolchains, VS Code extensions) stored with the snapshot:
 * of the running system when it is the source, else read from the source's root filesystem.
 */
export async function takeInventory(isSystem: boolean, disk: ByteReader, partitions: PartitionInfo[], warn: (m: string) => void): Promise<Inventory | null> {
  try {
    let inv: Inventory | null = null;
    if (isSystem) inv = await collectInventory('live');
    else {
      const root = partitions.filter((p) => p.fs?.startsWith('ext')).sort((a, b) => b.size - a.size)[0];
      const ifs = root && (await openImageFs(sliceReader(disk, root.start, root.size)));
      if (ifs) inv = await collectInventory(ifs);
    }
    if (inv) inv.bootMode ??= bootModeFromPartitions(partitions);
    return inv;
  } catch (err) {
    warn(`The environment inventory could not be read (${(err as Error).message}); compare shows files and partitions only.`);
    return null;
  }
}

/**
 * Each partition's filesystem and its used-block map: a map only where it may be trusted (a damaged
 * or misplaced partition is imaged in full, mode "full"), with the reasons as warnings.
 */
export async function detectPartitions(
  table: PartitionTable,
  disk: ByteReader,
  sizeOf: (p: { start: number; size: number }) => number,
  diskSize: number,
  warn: (m: string) => void,
  live: Set<number>,
) {
  const fsOf = new Map<number, UsedBlocks | null>();
  const partitions: PartitionInfo[] = [];
  const misplaced = layoutProblems(table.partitions, diskSize);
  for (const p of table.partitions) {
    const name = table.type === 'none' ? 'The whole-device filesystem' : `Partition ${p.index}`;
    const bad = misplaced.get(p.index);
    if (bad) warn(`${name} ${bad}: it is imaged in full (every byte of it on the disk), not through its filesystem's free-block map.`);
    let used: UsedBlocks | null = null;
    try {
      used = await detectFilesystem(sliceReader(disk, p.start, sizeOf(p)), { flushed: live.has(p.index) });
    } catch (err) {
      warn(`${name}: its filesystem could not be read (${(err as Error).message}); imaging it in full.`);
    }
    // A filesystem read live says what is in flight (bitmaps newer in its journal): its frozen pass says what holds.
    if (!live.has(p.index)) for (const w of used?.warnings ?? []) warn(`${name}: ${w}`);
    fsOf.set(p.index, used && !used.full && !bad ? used : null);
    partitions.push({ ...p, ...(used ? { fs: used.fs, label: used.label, fsUuid: used.uuid, ...(used.full ? {} : { usedBytes: used.usedBytes }) } : {}) });
  }
  return { fsOf, partitions };
}
