// What a snapshot of a source will do before it starts: how each read-write filesystem is brought to
// one point in time (two-pass for ext, btrfs and NTFS, else paused or read-only while read) and about how
// long writers will wait, or why it cannot be (the repository on the source, a filesystem stacked on
// LUKS, RAID or an LVM volume an LVM snapshot cannot cover: capture/lvm-source.ts). The extension
// shows this before the user confirms.
import * as fs from 'fs';
import * as path from 'path';
import { isS3Location } from '../storage/location';
import { DevsnapError } from '../core/errors';
import { devnoString, inspectPath, writableMounts, type MountUse } from '../disk/device';
import { openDisk } from '../disk/privilege';
import { readPartitionTable } from '../disk/partitions';
import { parseExtSuperblock, EXT_SB_OFFSET, EXT_SB_SIZE } from '../filesystems/ext/superblock';
import { fileReader, sliceReader } from '../disk/source';
import { inodeTableRuns } from './ext-tracking';
import { readBtrfsState, type BtrfsState } from '../filesystems/btrfs/btrfs';
import { ntfsMftBytes } from '../filesystems/ntfs/state';
import { liveZfsPools, zfsProblem } from './zfs';
import { canFreeze } from './pause';
import { lvmDecisions, lvPartition, type LvmDecision } from './lvm-source';
import type { SnapshotPlan } from '../protocol';

/**
 * Why a two-pass snapshot of these read-write mounts cannot be taken safely, and what to do instead;
 * null when it can. `repoDev` is the device the repository is (or will be) on. The snapshot throws it
 * (snapshot/take.ts), the plan shows it before anything starts.
 */
export function pauseProblem(rw: MountUse[], repoDir: string, repoDev: string | null, lvm: LvmDecision[] = []): { code: 'BAD_SOURCE' | 'USAGE'; message: string; hint: string } | null {
  // Stacked mounts: only LVM volumes lvmDecisions accepts (an LVM snapshot) are imaged.
  const stacked = rw.find((m) => m.offset === undefined && !lvm.some((d) => d.ok && d.mount === m));
  if (stacked) {
    const refused = lvm.find((d) => !d.ok && d.mount === stacked);
    if (refused && !refused.ok) return { code: 'BAD_SOURCE', message: refused.message, hint: refused.hint };
    return {
      code: 'BAD_SOURCE',
      message: `${stacked.mountpoint} is mounted read-write through ${stacked.device} (LVM, LUKS or RAID), which devsnap cannot pause for a point-in-time image.`,
      hint: 'Snapshot from a recovery environment, or use --freeze (writes wait for the whole snapshot) or --fuzzy (an image that is not one point in time).',
    };
  }
  const clash = rw.find((m) => m.devno === repoDev);
  if (clash) {
    return {
      code: 'USAGE',
      message: `The repository ${repoDir} is on ${clash.mountpoint}, a filesystem of the disk being imaged: the image would hold the repository's own files.`,
      hint: 'Keep the repository on another drive (an external disk or a second internal one), which also keeps it safe when this drive fails.',
    };
  }
  return null;
}

/** A conservative read rate for the paused pass: a SATA SSD's random-ish metadata reads. */
const PAUSED_READ_RATE = 250e6;

export async function planSnapshot(repoDir: string, source: string): Promise<SnapshotPlan> {
  const info = await inspectPath(source, 'source');
  const rw = writableMounts(info.mounts);
  const plan: SnapshotPlan = { source, consistency: rw.length ? 'frozen-two-pass' : 'offline', mounts: [], pauseSeconds: 0, isSystem: info.isSystem };
  // A repository not created yet will be where its nearest existing folder is.
  let repoDev: string | null = null;
  // A bucket is on no filesystem here.
  for (let d = path.resolve(repoDir); repoDev === null && !isS3Location(repoDir); d = path.dirname(d)) {
    try {
      repoDev = devnoString(fs.statSync(d).dev);
    } catch {
      if (d === path.dirname(d)) break;
    }
  }
  const lvm = lvmDecisions(
    rw.filter((m) => m.offset === undefined),
    info,
  );
  const problem = pauseProblem(rw, repoDir, repoDev, lvm);
  if (problem) plan.problem = { message: problem.message, hint: problem.hint };
  let fh: Awaited<ReturnType<typeof openDisk>>;
  try {
    fh = await openDisk(source, 'r');
  } catch (err) {
    if (!rw.length) return plan; // nothing to plan; the snapshot itself checks for a live ZFS pool
    throw err;
  }
  try {
    const disk = fileReader(fh, info.size);
    const table = await readPartitionTable(disk, () => undefined);
    if (table.type === 'none') table.partitions = [{ index: 1, start: 0, size: info.size, type: 'none' }];
    const zfs = zfsProblem(await liveZfsPools(disk, table.partitions));
    if (zfs && !plan.problem) plan.problem = { message: zfs.message, hint: zfs.hint };
    for (const m of rw) {
      const p = table.partitions.find((x) => x.start === m.offset);
      const holdsRepository = m.devno === repoDev;
      const viaLvm = lvm.find((d) => d.mount === m);
      if (viaLvm?.ok) {
        // LVM suspends the volume for an instant while it makes the snapshot: writers wait ~0 s.
        const partition = lvPartition(viaLvm, table.partitions);
        plan.mounts.push({ mountpoint: m.mountpoint, ...(partition !== undefined ? { partition } : {}), fstype: m.fstype, how: 'lvm-snapshot', pauseSeconds: 0, holdsRepository });
        continue;
      }
      if (m.offset === undefined || !p) {
        plan.mounts.push({ mountpoint: m.mountpoint, how: 'unsupported', holdsRepository });
        continue;
      }
      const part = sliceReader(disk, p.start, Math.min(p.size, info.size - p.start));
      const sb = m.fstype?.startsWith('ext') ? parseExtSuperblock(await part.read(EXT_SB_OFFSET, EXT_SB_SIZE)) : null;
      let bstate: BtrfsState | null = null;
      let mftBytes: number | null = null;
      if (sb) {
        // The paused pass reads the inode tables in use, the bitmaps and what changed in the last round.
        const tables = (await inodeTableRuns(part)).reduce((n, [, c]) => n + c * sb.blockSize, 0);
        const seconds = 0.1 + (tables + sb.blocksCount / 4) / PAUSED_READ_RATE;
        plan.mounts.push({ mountpoint: m.mountpoint, partition: p.index, fstype: m.fstype, how: 'two-pass', pauseSeconds: seconds, holdsRepository });
        plan.pauseSeconds = Math.max(plan.pauseSeconds, seconds);
      } else if (m.fstype === 'btrfs' && (bstate = await readBtrfsState(part).catch(() => null))) {
        // The paused pass walks the extent tree (the used-block map) and reads what later generations
        // wrote: metadata is a few per cent of the data; 2% is assumed.
        const seconds = 0.1 + (bstate.bytesUsed * 0.02) / PAUSED_READ_RATE;
        plan.mounts.push({ mountpoint: m.mountpoint, partition: p.index, fstype: m.fstype, how: 'two-pass', pauseSeconds: seconds, holdsRepository });
        plan.pauseSeconds = Math.max(plan.pauseSeconds, seconds);
      } else if (!canFreeze(m.fstype) && (mftBytes = await ntfsMftBytes(part)) !== null) {
        // NTFS: read-only for the last pass, which reads the whole MFT, the other system files
        // ($LogFile is the largest, up to 64 MiB) and the changed files.
        const seconds = 0.1 + (mftBytes + (64 << 20)) / PAUSED_READ_RATE;
        plan.mounts.push({ mountpoint: m.mountpoint, partition: p.index, fstype: m.fstype, how: 'two-pass-ro', pauseSeconds: seconds, holdsRepository });
        plan.pauseSeconds = Math.max(plan.pauseSeconds, seconds);
      } else {
        // Not tracked: paused (or read-only) for the whole read of its used bytes — the partition's size is the bound.
        const seconds = 0.1 + p.size / PAUSED_READ_RATE;
        plan.mounts.push({ mountpoint: m.mountpoint, partition: p.index, fstype: m.fstype, how: canFreeze(m.fstype) ? 'frozen' : 'remount-ro', pauseSeconds: seconds, holdsRepository });
        plan.pauseSeconds = Math.max(plan.pauseSeconds, seconds);
      }
    }
    if (plan.mounts.length && plan.mounts.every((m) => m.how === 'lvm-snapshot')) plan.consistency = 'native-snapshot';
  } catch (err) {
    if (err instanceof DevsnapError) throw err;
    throw new DevsnapError('BAD_SOURCE', `Could not read ${source} to plan the snapshot: ${(err as Error).message}.`);
  } finally {
    await fh.close();
  }
  return plan;
}
