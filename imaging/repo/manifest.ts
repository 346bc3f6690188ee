// The snapshot manifest: everything needed to restore a disk, as one JSON document
// (snapshots/<id>.json). See imaging/FORMAT.md.
import * as crypto from 'crypto';
import type { PartitionInfo, SnapshotSummary } from '../protocol';
import type { PartitionTable } from '../partitions';
import { DevsnapError } from '../errors';

/** A chunk id (hex), 'z' for an all-zero range (stored as a marker), 'f' for free space (not imaged). */
export type ExtentRef = string;
export const ZERO = 'z';
export const FREE = 'f';

/** [offset relative to the area's start, length, ref]. Zero and free runs are merged. */
export type Extent = [number, number, ExtentRef];

export interface Area {
  kind: 'raw' | 'partition';
  partition?: number;                     // PartitionInfo.index for kind 'partition'
  start: number;                          // byte offset in the disk
  size: number;
  mode: 'raw' | 'used-blocks' | 'full';   // used-blocks: the filesystem told us which blocks matter
  extents: Extent[];
}

export interface Manifest extends SnapshotSummary {
  format: 'devsnap-snapshot';
  version: 1;
  chunkSize: number;
  table: PartitionTable;
  areas: Area[];
  inventory: unknown | null;              // the environment inventory (compare issue)
  warnings: string[];
  digest?: string;                        // sha256 of the manifest without this field
}

function digestOf(m: Manifest): string {
  const { digest: _omit, ...rest } = m;
  return crypto.createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

export function serializeManifest(m: Manifest): Buffer {
  const withDigest = { ...m, digest: undefined } as Manifest;
  withDigest.digest = digestOf(withDigest);
  return Buffer.from(JSON.stringify(withDigest));
}

export function parseManifest(bytes: Buffer, id: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new DevsnapError('DAMAGED', `The manifest of snapshot ${id} is truncated or corrupt.`, 'This snapshot cannot be used; restore from another snapshot and run `devsnap check`.');
  }
  if (m?.format !== 'devsnap-snapshot') throw new DevsnapError('DAMAGED', `snapshots/${id}.json is not a devsnap snapshot manifest.`);
  if (m.version !== 1) throw new DevsnapError('DAMAGED', `Snapshot ${id} has manifest version ${m.version}, which this devsnap does not know.`, 'Update devsnap.');
  if (m.digest !== digestOf(m)) throw new DevsnapError('DAMAGED', `The manifest of snapshot ${id} is corrupt (its checksum does not match).`, 'Restore from another snapshot and run `devsnap check`.');
  return m;
}

/** The summary the extension and `list --json` show: the manifest without its extent maps. */
export function summarize(m: Manifest): SnapshotSummary {
  const { format: _f, version: _v, chunkSize: _c, table: _t, areas: _a, inventory: _i, warnings: _w, digest: _d, ...summary } = m;
  return summary;
}

export function partitionOf(m: Manifest, index: number): PartitionInfo {
  const p = m.partitions.find((x) => x.index === index);
  if (!p) throw new DevsnapError('NOT_FOUND', `Snapshot ${m.id} has no partition ${index}.`, `It has partitions ${m.partitions.map((x) => x.index).join(', ') || '(none)'}.`);
  return p;
}

/** Every data chunk id the manifest references. */
export function* chunkRefs(m: Manifest): Generator<string> {
  for (const a of m.areas) for (const e of a.extents) if (e[2] !== ZERO && e[2] !== FREE) yield e[2];
}
