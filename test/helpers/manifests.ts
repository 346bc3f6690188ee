// Synthetic but valid snapshot manifests (the real types, written by the real Repository.writeManifest):
// for tests and benchmarks of listing and naming at scale, where imaging 1,000 real disks of 2 TB is
// out of the question. Each one describes a GPT disk: the first and last MiB as raw areas, and one
// ext4 partition in between with `chunks` used 1 MiB chunks, each followed by a free MiB.
import * as crypto from 'crypto';
import type { Area, Extent, Manifest } from '../../imaging/repo/manifest';
import { Extents } from '../../imaging/repo/extents';

const MiB = 1 << 20;
export const TB = 1e12;

export interface SyntheticOptions {
  id: string; // 16 hex digits
  label?: string;
  created?: string; // ISO 8601
  diskSize?: number; // default 2 TB
  chunks?: number; // used chunks in the partition (default 4): the manifest grows ~90 bytes per chunk
  source?: string;
  pinned?: boolean;
  seed?: string; // chunk ids derive from it (default: the id); equal seeds share chunks, as snapshots of one disk do
}

export function chunkRef(seed: string, i: number): string {
  return crypto.createHash('sha256').update(`${seed}:${i}`).digest('hex');
}

export function syntheticManifest(o: SyntheticOptions): Manifest {
  const size = Math.floor((o.diskSize ?? 2 * TB) / MiB) * MiB;
  const chunks = o.chunks ?? 4;
  const partStart = MiB;
  const partSize = size - 2 * MiB;
  if (2 * chunks * MiB > partSize) throw new Error(`${chunks} chunks do not fit a disk of ${size} bytes`);
  const seed = o.seed ?? o.id;
  const extents: Extent[] = [];
  for (let i = 0; i < chunks; i++) extents.push([2 * i * MiB, MiB, chunkRef(seed, i)], [(2 * i + 1) * MiB, MiB, 'f']);
  if (2 * chunks * MiB < partSize) extents.push([2 * chunks * MiB, partSize - 2 * chunks * MiB, 'f']);
  const areas: Area[] = [
    { kind: 'raw', start: 0, size: MiB, mode: 'raw', extents: Extents.from([[0, MiB, chunkRef(seed, -1)]]) },
    { kind: 'partition', partition: 1, start: partStart, size: partSize, mode: 'used-blocks', extents: Extents.from(extents) },
    { kind: 'raw', start: size - MiB, size: MiB, mode: 'raw', extents: Extents.from([[0, MiB, chunkRef(seed, -2)]]) },
  ];
  const partitions = [{ index: 1, start: partStart, size: partSize, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', typeName: 'Linux filesystem', fs: 'ext4', label: 'root', usedBytes: chunks * MiB }];
  const created = o.created ?? new Date(Date.UTC(2026, 0, 1)).toISOString();
  return {
    format: 'devsnap-snapshot',
    version: 1,
    id: o.id,
    label: o.label ?? `snapshot ${o.id}`,
    created,
    host: 'bench-host',
    source: { path: o.source ?? '/dev/nvme0n1', size, table: 'gpt', diskId: '11111111-2222-3333-4444-555555555555' },
    consistency: 'offline',
    pinned: !!o.pinned,
    state: 'not-verified',
    stats: { bytesRead: (chunks + 2) * MiB, bytesLogical: size, bytesUsed: (chunks + 2) * MiB, bytesAdded: (chunks + 2) * MiB, chunksNew: chunks + 2, chunksReused: 0, durationSeconds: 1 },
    partitions,
    chunkSize: MiB,
    table: {
      type: 'gpt',
      sectorSize: 512,
      diskId: '11111111-2222-3333-4444-555555555555',
      partitions,
      gpt: { headerLba: 1, backupLba: size / 512 - 1, entriesLba: 2, entryCount: 128, entrySize: 128, firstUsableLba: 34, lastUsableLba: size / 512 - 34 },
    },
    areas,
    inventory: null,
    warnings: [],
  };
}

/** 16 hex digits from a number, for predictable ids. */
export function hexId(n: number, prefix = ''): string {
  return (prefix + n.toString(16).padStart(16, '0').slice(prefix.length)).slice(0, 16);
}
