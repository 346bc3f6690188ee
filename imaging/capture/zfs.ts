// ZFS pools on the disk being imaged. A pool's members are written by its transaction groups whatever
// is mounted, and devsnap has no way to pause them or to read a pool as of one instant, so a pool
// imported on this machine makes a snapshot refuse (unless the user asks for a fuzzy read); an
// exported pool, or one this machine has not imported, is imaged as it is.
import * as fs from 'fs';
import * as path from 'path';
import { readZfsLabel, POOL_STATE } from '../filesystems/zfs/label';
import { sliceReader } from '../disk/source';
import type { ByteReader } from '../filesystems/types';

export interface LiveZfs {
  partition: number;
  /** The pool's name, or null when its label does not say (a spare or cache device). */
  pool: string | null;
}

/** The source's partitions that belong to a ZFS pool imported here (`procRoot`: tests point it at a constructed tree). */
export async function liveZfsPools(disk: ByteReader, partitions: { index: number; start: number; size: number }[], procRoot = '/proc'): Promise<LiveZfs[]> {
  const imported = path.join(procRoot, 'spl', 'kstat', 'zfs'); // one folder per imported pool, while the module is loaded
  if (!fs.existsSync(imported)) return [];
  const out: LiveZfs[] = [];
  for (const p of partitions) {
    const size = Math.max(0, Math.min(p.size, disk.size - p.start));
    const label = await readZfsLabel(sliceReader(disk, p.start, size)).catch(() => null);
    if (!label || label.state === POOL_STATE.exported || label.state === POOL_STATE.destroyed) continue;
    // A name that is not a plain pool name cannot be looked up: count it as imported (the safe side).
    const known = label.pool && /^[A-Za-z][A-Za-z0-9_.:-]*$/.test(label.pool) ? label.pool : null;
    if (!known || fs.existsSync(path.join(imported, known))) out.push({ partition: p.index, pool: label.pool });
  }
  return out;
}

/** The refusal for a snapshot of a disk with a live pool, naming it and what to do. */
export function zfsProblem(live: LiveZfs[]): { code: 'BAD_SOURCE'; message: string; hint: string } | null {
  if (!live.length) return null;
  const names = [...new Set(live.map((z) => (z.pool ? `"${z.pool}"` : 'an unnamed one')))].join(', ');
  const parts = live.map((z) => z.partition).join(', ');
  return {
    code: 'BAD_SOURCE',
    message: `Partition${live.length > 1 ? 's' : ''} ${parts} belong${live.length > 1 ? '' : 's'} to the ZFS pool ${names}, imported on this machine: devsnap cannot image a live ZFS pool at one point in time.`,
    hint: `Export the pool first${live[0].pool ? ` (\`zpool export ${live[0].pool}\`)` : ''}, or snapshot from a recovery environment; \`zfs snapshot\` and \`zfs send\` copy its datasets at a point in time. --fuzzy reads it live (not a point in time).`,
  };
}
