// Restores a snapshot (the whole disk, or one partition) onto a block device or an image file.
// Every chunk is checked against its hash before it is written. A new image file is written under
// a temporary name and renamed only when complete, so a failed restore never leaves a half-written
// file behind; a device that fails mid-way is reported as incomplete.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { assertNotInRepository, assertNotInUse, inspectPath, DeviceInfo } from '../disk/device';
import { openDisk } from '../disk/privilege';
import { handleDevice, relocateGptBackup } from '../disk/partitions';
import { Area, Kind, Manifest, partitionOf } from '../repo/manifest';
import { Logger, Repository } from '../repo/repository';
import { assertChunksStored, ChunkReader } from '../repo/chunk-reader';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { removeDeadTemps, tempName } from '../core/fsutil';
import { JobQueue } from '../core/job-queue';
import { writeArea, type AreaWriter } from './area-writer';
import { planShrink, type ShrinkPlan } from './shrink-plan';
import { restoreShrunk } from './restore-shrink';
import { giveNewIds, type NewIdsResult } from './new-ids';

export interface RestoreOptions {
  id: string;
  target: string;
  partition?: number;
  dryRun?: boolean;
  /** New GUIDs and UUIDs for a copy that lives beside the original (new-ids.ts). */
  newIds?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log: Logger;
}

export interface RestorePlan {
  snapshot: string;
  target: string;
  targetKind: 'block' | 'file' | 'new-file';
  targetSize: number;
  bytesNeeded: number; // size of the disk or partition being restored
  bytesToWrite: number; // data + zero ranges (free space is skipped)
  areas: { kind: Area['kind']; partition?: number; offset: number; size: number; mode: Area['mode'] }[];
  /** A whole disk onto a smaller one: where each partition goes, and which filesystems shrink (shrink-plan.ts). */
  resized?: { partition: number; fs?: string; fromStart: number; fromSize: number; start: number; size: number; how: 'keep' | 'move' | 'shrink' }[];
}

export interface RestoreResult extends RestorePlan {
  ok: true;
  newIds?: NewIdsResult;
  dryRun: boolean;
  bytesWritten: number;
  gptRelocated: boolean;
}

const fmtGiB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

async function checkTarget(target: string, needed: number, what: string, repoDir?: string, smallerOk = false): Promise<{ info: DeviceInfo | null }> {
  if (repoDir) assertNotInRepository(target, repoDir);
  if (!fs.existsSync(target)) {
    const dir = path.dirname(path.resolve(target));
    if (!fs.existsSync(dir)) throw new DevsnapError('BAD_TARGET', `The folder ${dir} for the new image file ${target} does not exist.`);
    return { info: null }; // a new image file
  }
  const info = await inspectPath(target, 'target');
  if (info.isSystem) {
    throw new DevsnapError(
      'BAD_TARGET',
      `${target} holds the running system; it cannot be overwritten while the system runs from it.`,
      'Boot a recovery environment (a live USB), then run the same `devsnap restore` command there.',
    );
  }
  assertNotInUse(info, target);
  if (info.kind === 'block' && info.size < needed && !smallerOk) {
    throw new DevsnapError(
      'BAD_TARGET',
      `${target} is too small: it has ${fmtGiB(info.size)} (${info.size} bytes), ${what} needs ${fmtGiB(needed)} (${needed} bytes).`,
      'Choose a target at least as large as the source.',
    );
  }
  return { info };
}

export async function planRestore(
  m: Manifest,
  target: string,
  partition?: number,
  repoDir?: string,
): Promise<{ plan: RestorePlan; areas: Area[]; base: number; info: DeviceInfo | null; shrink?: ShrinkPlan }> {
  const part = partition === undefined ? undefined : partitionOf(m, partition);
  const areas = part ? m.areas.filter((a) => a.kind === 'partition' && a.partition === part.index) : m.areas;
  // A partition restore writes the partition's first byte at the target's start. A partition that starts
  // inside an earlier one has its first bytes in that one's area: restored alone it would land shifted.
  if (part && part.size > 0 && part.start < m.source.size && areas[0]?.start !== part.start) {
    const other = m.areas.find((a) => a.start <= part.start && part.start < a.start + a.size);
    throw new DevsnapError(
      'BAD_SOURCE',
      `Partition ${part.index} of snapshot ${m.id} overlaps ${other?.partition !== undefined ? `partition ${other.partition}` : 'another partition'} on the source disk: its first bytes are stored with that one, so it cannot be restored on its own without being shifted.`,
      `Restore the whole disk (without --partition), e.g. to an image file, and copy the partition out of it (it starts at byte ${part.start}).`,
    );
  }
  if (!areas.length) throw new DevsnapError('NOT_FOUND', `Snapshot ${m.id} holds no data for partition ${partition}.`);
  const base = part ? part.start : 0; // partition restores write at the target's start
  const needed = partition === undefined ? m.source.size : areas[0].size;
  const what = partition === undefined ? `snapshot ${m.id} of ${m.source.path}` : `partition ${partition} of snapshot ${m.id}`;
  // A whole disk onto a smaller disk: its partitions are moved and its filesystems shrunk when the data fits.
  const { info } = await checkTarget(target, needed, what, repoDir, partition === undefined);
  const shrink = partition === undefined && info?.kind === 'block' && info.size < needed ? planShrink(m.partitions, m.table.type, info.size) : undefined;
  const bytesToWrite = areas.reduce((n, a) => n + a.extents.bytesExcept(Kind.Free), 0);
  return {
    plan: {
      snapshot: m.id,
      target,
      targetKind: info ? info.kind : 'new-file',
      targetSize: info ? Math.max(info.size, info.kind === 'file' ? needed : 0) : needed,
      bytesNeeded: needed,
      bytesToWrite,
      areas: areas.map((a) => ({ kind: a.kind, ...(a.partition !== undefined ? { partition: a.partition } : {}), offset: a.start - base, size: a.size, mode: a.mode })),
      ...(shrink
        ? { resized: shrink.partitions.map((p) => ({ partition: p.index, ...(p.fs ? { fs: p.fs } : {}), fromStart: p.oldStart, fromSize: p.oldSize, start: p.newStart, size: p.newSize, how: p.how })) }
        : {}),
    },
    areas,
    base,
    info,
    ...(shrink ? { shrink } : {}),
  };
}

/** An image file target must fit on its filesystem: refuse before writing rather than fail half-way. */
async function checkFreeSpace(target: string, areas: Area[], fresh: boolean): Promise<void> {
  const writes = areas.reduce((n, a) => n + (fresh ? a.extents.bytesExcept(Kind.Free, Kind.Zero) : a.extents.bytesExcept(Kind.Free)), 0);
  const allocated = fresh ? 0 : (await fs.promises.stat(target)).blocks * 512; // overwritten in place
  const needed = Math.max(0, writes - allocated);
  const dir = path.dirname(path.resolve(target));
  const st = await fs.promises.statfs(dir);
  const free = st.bavail * st.bsize;
  if (free < needed) {
    throw new DevsnapError(
      'NO_SPACE',
      `Not enough space for ${target}: it needs ${fmtGiB(needed)} (${needed} bytes), ${dir} has ${fmtGiB(free)} free. Nothing was written.`,
      'Free some space or choose another folder.',
    );
  }
}

export async function restoreSnapshot(repo: Repository, opts: RestoreOptions): Promise<RestoreResult> {
  const m = await repo.readManifest(opts.id);
  if (opts.newIds && opts.partition !== undefined)
    throw new DevsnapError('USAGE', '--new-ids gives a whole disk new ids; it does not go with --partition.', 'Restore the whole disk with --new-ids, or one partition without it.');
  const { plan, areas, base, info, shrink } = await planRestore(m, opts.target, opts.partition, repo.dir);
  if (info?.kind !== 'block' && !opts.dryRun) {
    // A restore to a new file killed with -9 leaves its temporary file, as large as the disk.
    for (const f of await removeDeadTemps(opts.target)) opts.log(`Removed ${f}, left by a restore that was killed.`);
  }
  if (info?.kind !== 'block') await checkFreeSpace(opts.target, areas, info === null);
  if (opts.dryRun) return { ...plan, ok: true, dryRun: true, bytesWritten: 0, gptRelocated: false };

  assertChunksStored(repo, m, areas, 'restore');

  const fresh = info === null; // a new file: write it aside, rename when complete; zero ranges stay holes
  const writePath = fresh ? tempName(path.resolve(opts.target)) : opts.target;
  let fh: fs.promises.FileHandle;
  try {
    fh = await openDisk(writePath, fresh ? 'wx' : 'r+', 0o600); // as root only in the helper (disk/privilege.ts)
  } catch (err) {
    throw toDevsnapError(err, `the target ${opts.target}`);
  }
  const pool = new WorkerPool();
  const reader = new ChunkReader(repo, pool);
  const meter = new ProgressMeter('restore', plan.bytesToWrite, opts.onProgress);
  const zeros = Buffer.alloc(m.chunkSize);
  const jobs = new JobQueue(repo.folder !== null ? pool.size * 3 : 16); // in a bucket, more reads overlap their round trips
  let bytesWritten = 0;
  let gptRelocated = false;
  try {
    if (fresh) await fh.truncate(plan.bytesNeeded);
    else if (info?.kind === 'file' && info.size < plan.bytesNeeded) await fh.truncate(plan.bytesNeeded);
    // New ids where the partitions are now (moved when shrunk), once everything is written.
    const renew = async (): Promise<NewIdsResult | undefined> => {
      if (!opts.newIds) return undefined;
      const parts = shrink ? shrink.partitions.map((p) => ({ index: p.index, start: p.newStart, size: p.newSize })) : m.partitions.map((p) => ({ index: p.index, start: p.start, size: p.size }));
      await fh.sync();
      return giveNewIds(writePath, fh, plan.targetSize, m.table.type, parts, opts.log);
    };
    if (shrink) {
      bytesWritten = await restoreShrunk(m, shrink, fh, { reader, jobs, signal: opts.signal, onProgress: opts.onProgress, log: opts.log });
      const newIds = await renew();
      await fh.sync();
      await fh.close();
      return { ...plan, ok: true, dryRun: false, bytesWritten, gptRelocated: m.table.type === 'gpt', ...(newIds ? { newIds } : {}) };
    }
    const w: AreaWriter = { reader, jobs, fh, fresh, zeros, meter, signal: opts.signal, written: (n) => (bytesWritten += n) };
    for (const a of areas) await writeArea(w, a, a.start - base);
    await jobs.drain();
    if (opts.partition === undefined && m.table.type === 'gpt' && plan.targetSize > m.source.size) {
      await relocateGptBackup(handleDevice(fh), plan.targetSize);
      gptRelocated = true;
    }
    const newIds = await renew();
    await fh.sync();
    await fh.close();
    if (fresh) await fs.promises.rename(writePath, opts.target);
    meter.finish();
    return { ...plan, ok: true, dryRun: false, bytesWritten, gptRelocated, ...(newIds ? { newIds } : {}) };
  } catch (err) {
    await jobs.settle();
    await fh.close().catch(() => undefined);
    if (fresh) await fs.promises.rm(writePath, { force: true });
    const e = toDevsnapError(err, `the target ${opts.target}`);
    if (!fresh && e.code !== 'CANCELLED') e.message += ` The target ${opts.target} is now incomplete.`;
    if (!fresh && e.code === 'CANCELLED') e.message = `Restore cancelled; the target ${opts.target} is incomplete.`;
    throw e;
  } finally {
    await pool.close();
  }
}
