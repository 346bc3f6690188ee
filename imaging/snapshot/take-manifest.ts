// The manifest of a snapshot taken by take.ts: what it records of the source, how the image reached
// one point in time, its areas with their extents, and its figures.
import * as os from 'os';
import * as crypto from 'crypto';
import type { PartitionTable } from '../disk/partitions';
import type { Inventory } from '../inventory/inventory';
import type { Area, Consistency, Manifest } from '../repo/manifest';
import type { ChunkSaver } from '../repo/chunk-saver';
import type { AreaCells, PlannedArea } from '../capture/cells';
import type { PartitionInfo, PointInTime } from '../protocol';

/** What take.ts read and stored, for the manifest. */
export interface Taken {
  source: string;
  label?: string;
  size: number;
  table: PartitionTable;
  consistency: Consistency;
  pointInTime?: PointInTime;
  readChanges: boolean;
  parent: Manifest | null;
  areas: PlannedArea[];
  cellsOf: Map<PlannedArea, AreaCells>;
  partitions: PartitionInfo[];
  chunkSize: number;
  inventory: Inventory | null;
  warnings: string[];
  bytesRead: number;
  saver: ChunkSaver;
  bytesAdded: number;
  /** performance.now() when the snapshot started. */
  started: number;
}

export function snapshotManifest(t: Taken): Manifest {
  const { table, cellsOf, parent, pointInTime } = t;
  const resultAreas: Area[] = t.areas.map((a) => ({
    kind: a.kind,
    ...(a.partition !== undefined ? { partition: a.partition } : {}),
    start: a.start,
    size: a.size,
    mode: a.kind === 'raw' ? 'raw' : a.used ? 'used-blocks' : 'full',
    extents: cellsOf.get(a)!.extents(),
  }));
  const created = new Date().toISOString();
  return {
    format: 'devsnap-snapshot',
    version: 2,
    id: crypto.randomBytes(8).toString('hex'),
    label: t.label?.trim() || `snapshot ${created.slice(0, 16).replace('T', ' ')}`,
    created,
    host: os.hostname(),
    source: { path: t.source, size: t.size, table: table.type, ...(table.diskId ? { diskId: table.diskId } : {}) },
    consistency: t.consistency,
    ...(pointInTime ? { pointInTime } : {}),
    readMode: t.readChanges ? 'changes' : 'all',
    ...(parent ? { parent: parent.id } : {}),
    pinned: false,
    state: 'not-verified',
    stats: {
      bytesRead: t.bytesRead,
      bytesUsed: [...cellsOf.values()].reduce((n, c) => n + c.dataBytes(), 0),
      chunksNew: t.saver.stats.chunksNew,
      chunksReused: t.saver.stats.chunksReused + [...cellsOf.values()].reduce((n, c) => n + c.keptFromParent(), 0),
      bytesLogical: t.size,
      bytesAdded: t.bytesAdded,
      durationSeconds: (performance.now() - t.started) / 1000,
    },
    partitions: t.partitions,
    chunkSize: t.chunkSize,
    table,
    areas: resultAreas,
    inventory: t.inventory,
    warnings: t.warnings,
  };
}
