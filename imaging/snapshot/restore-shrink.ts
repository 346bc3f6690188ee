// Restores a whole disk onto a smaller one (shrink-plan.ts says where each partition goes). First,
// with nothing written to the target: every partition that must shrink is restored into a sparse
// scratch file (in $TMPDIR), checked (e2fsck -fy) and shrunk by its filesystem's own tool (resize2fs,
// ntfsresize), once they say its data fits. Only then is the target written: the bytes before the
// first partition (table, boot code, post-MBR gap) where they were; each kept or moved partition from
// the repository at its new start; each shrunk one from its scratch file, where its metadata says
// blocks are in use (as a snapshot reads them); last the table's entries (a GPT keeps its GUIDs,
// names and attributes, and gets its backup at the new end).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { writeFully } from '../core/fsutil';
import { JobQueue } from '../core/job-queue';
import { ProgressMeter, type ProgressSink } from '../core/progress';
import { handleDevice, rewritePartitionRanges } from '../disk/partitions';
import { runTool } from '../disk/tools';
import { fileReader } from '../disk/source';
import { detectFilesystem } from '../filesystems/detect';
import { parseFatBootSector } from '../filesystems/fat/bootsector';
import { Kind, type Area, type Manifest } from '../repo/manifest';
import type { ChunkReader } from '../repo/chunk-reader';
import type { Logger } from '../repo/repository';
import { SHRINKABLE, type PlacedPartition, type ShrinkPlan } from './shrink-plan';
import { writeArea, type AreaWriter } from './area-writer';

const SHRINK = { neededFor: 'to fit a partition onto a smaller disk' };
const PKG: Record<string, string> = { ntfsresize: 'ntfs-3g', 'mkfs.fat': 'dosfstools', mdir: 'mtools', mcopy: 'mtools' };
const MTOOLS = { MTOOLS_SKIP_CHECK: '1' };

/** A tool's output (stdout and stderr together: resize2fs and ntfsresize say what matters on either). */
async function tool(file: string, args: string[], ok: number[] = [0], env: Record<string, string> = {}): Promise<string> {
  const r = await runTool(file, args, { ...SHRINK, pkg: PKG[file] ?? 'e2fsprogs', ok, env });
  return r.stdout + r.stderr;
}

const dataBytes = (a: Area) => a.extents.bytesExcept(Kind.Free);

/** Shrinks the filesystem in `img` to `size` bytes, after checking that its data fits there. */
async function shrinkFs(img: string, fsType: string, size: number, partition: number, start: number): Promise<void> {
  const tooBig = (min: number) =>
    new DevsnapError(
      'BAD_TARGET',
      `Partition ${partition} (${fsType}) cannot shrink to ${(size / 1e6).toFixed(1)} MB: ${SHRINKABLE[fsType]} needs at least ${(min / 1e6).toFixed(1)} MB for its data. Nothing was written to the target.`,
      'Choose a larger disk.',
    );
  if (SHRINKABLE[fsType] === 'resize2fs') {
    await tool('e2fsck', ['-f', '-y', img], [0, 1]); // resize2fs shrinks only a freshly checked filesystem
    const blockSize = Number(/Block size:\s+(\d+)/.exec(await tool('dumpe2fs', ['-h', img]))?.[1] ?? 4096);
    const min = Number(/Estimated minimum size of the filesystem:\s*(\d+)/.exec(await tool('resize2fs', ['-P', img]))?.[1] ?? NaN) * blockSize;
    if (!(min <= size)) throw tooBig(min);
    await tool('resize2fs', [img, `${Math.floor(size / 1024)}K`]);
  } else if (SHRINKABLE[fsType] === 'mkfs.fat') {
    await remakeFat(img, size, start, tooBig);
    return;
  } else {
    const min = Number(/You might resize at (\d+) bytes/.exec(await tool('ntfsresize', ['--info', '--force', '--no-progress-bar', img], [0, 1]))?.[1] ?? NaN);
    if (!(min <= size)) throw tooBig(min);
    await tool('ntfsresize', ['--force', '--force', '--no-progress-bar', '--size', String(size), img]);
  }
  await fs.promises.truncate(img, size); // NTFS keeps its backup boot sector in the last sector
}

/**
 * FAT cannot be shrunk in place by a well-kept tool, so it is made anew, smaller, with the same FAT
 * type where it fits, volume ID, label and cluster size, and its files (folders, times and
 * attributes) copied over with mtools. The firmware finds an EFI system partition by its partition
 * GUID and the boot loader by its path: both stay.
 */
async function remakeFat(img: string, size: number, start: number, tooBig: (min: number) => DevsnapError): Promise<void> {
  const fd = await fs.promises.open(img, 'r');
  const bs = Buffer.alloc(512);
  await fd.read(bs, 0, 512, 0);
  await fd.close();
  const g = parseFatBootSector(bs, (await fs.promises.stat(img)).size);
  if (!g) throw new DevsnapError('BAD_SOURCE', 'The FAT partition to shrink has no readable boot sector.');
  const files = path.join(path.dirname(img), `${path.basename(img)}.files`);
  await fs.promises.mkdir(files);
  const listing = await tool('mdir', ['-b', '-i', img, '::/'], [0, 1], MTOOLS);
  if (listing.trim()) await tool('mcopy', ['-s', '-p', '-m', '-n', '-i', img, '::/*', files], [0], MTOOLS);
  const smaller = `${img}.new`;
  await fs.promises.writeFile(smaller, '');
  await fs.promises.truncate(smaller, size);
  const volid = (g.uuid ?? '').replace('-', '');
  const common = ['-S', '512', '-h', String(start / 512), ...(/^[0-9A-F]{8}$/i.test(volid) ? ['-i', volid] : []), ...(g.label && g.label !== 'NO NAME' ? ['-n', g.label] : [])];
  const spc = String(g.clusterBytes / 512);
  // The same FAT type and cluster size where the new size allows them, else what mkfs.fat chooses.
  await tool('mkfs.fat', ['-F', String(g.bits), '-s', spc, ...common, smaller]).catch(() => tool('mkfs.fat', [...common, smaller]));
  if ((await fs.promises.readdir(files)).length) {
    const entries = (await fs.promises.readdir(files)).map((n) => path.join(files, n));
    try {
      await tool('mcopy', ['-s', '-p', '-m', '-n', '-i', smaller, ...entries, '::/'], [0], MTOOLS);
    } catch (err) {
      if (/disk full|no free|not enough/i.test((err as Error).message)) throw tooBig(g.declaredBytes);
      throw err;
    }
  }
  await fs.promises.rm(files, { recursive: true, force: true });
  await fs.promises.rename(smaller, img);
}

/**
 * Copies the shrunk filesystem in `img` onto the target at `start`: the blocks its own metadata says
 * are in use (the reader a snapshot uses, filesystems/detect.ts; what it does not describe, such as
 * NTFS's backup boot sector, counts as used), so the target's old contents elsewhere do not matter.
 * Written through the target's handle: in the elevated helper only that handle has root's rights.
 */
async function copyUsedBlocks(img: string, size: number, fh: fs.promises.FileHandle, start: number, signal?: AbortSignal): Promise<void> {
  const src = await fs.promises.open(img, 'r');
  try {
    const used = await detectFilesystem(fileReader(src, size));
    if (!used) throw new DevsnapError('INTERNAL', `The shrunk filesystem in ${img} is not recognised any more.`);
    const bs = used.blockSize;
    const bits = Math.ceil(size / bs);
    const isSet = (i: number) => used.full || (used.bitmap[i >> 3] & (1 << (i & 7))) !== 0;
    const buf = Buffer.alloc(Math.max(bs, 1 << 20));
    for (let i = 0; i < bits;) {
      if (!isSet(i)) {
        i++;
        continue;
      }
      let j = i;
      while (j < bits && isSet(j) && (j - i + 1) * bs <= buf.length) j++;
      if (signal?.aborted) throw new DevsnapError('CANCELLED', 'Restore cancelled.');
      const off = i * bs;
      const len = Math.min((j - i) * bs, size - off);
      const { bytesRead } = await src.read(buf, 0, len, off);
      if (bytesRead < len) buf.fill(0, bytesRead, len);
      await writeFully(fh, buf.subarray(0, len), start + off);
      i = j;
    }
  } finally {
    await src.close();
  }
}

export interface ShrinkRestoreContext {
  reader: ChunkReader;
  jobs: JobQueue;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log: Logger;
}

/** Restores `m` onto the block device `target` of `plan.targetSize` bytes; the bytes written. */
export async function restoreShrunk(m: Manifest, plan: ShrinkPlan, fh: fs.promises.FileHandle, c: ShrinkRestoreContext): Promise<number> {
  const areaOf = (index: number) => m.areas.find((a) => a.kind === 'partition' && a.partition === index);
  const shrink = plan.partitions.filter((p) => p.how === 'shrink');
  const total = m.areas.reduce((n, a) => n + dataBytes(a), 0) + shrink.reduce((n, p) => n + dataBytes(areaOf(p.index)!), 0);
  const meter = new ProgressMeter('restore', total, c.onProgress);
  let written = 0;
  const zeros = Buffer.alloc(m.chunkSize);
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'devsnap-shrink-'));
  try {
    // 1. The shrunk filesystems, in scratch files: everything that can refuse happens before the target is touched.
    const need = shrink.reduce((n, p) => n + dataBytes(areaOf(p.index)!), 0);
    const st = await fs.promises.statfs(scratch);
    if (st.bavail * st.bsize < need)
      throw new DevsnapError(
        'NO_SPACE',
        `Fitting the partitions onto the smaller disk needs ${(need / 1e9).toFixed(2)} GB of scratch space in ${os.tmpdir()}, which has ${((st.bavail * st.bsize) / 1e9).toFixed(2)} GB free. Nothing was written to the target.`,
        'Set TMPDIR to a folder on a drive with that much free space (the backup drive, for example), then try again.',
      );
    const images = new Map<number, string>();
    for (const p of shrink) {
      const a = areaOf(p.index)!;
      const img = path.join(scratch, `partition-${p.index}.img`);
      const sh = await fs.promises.open(img, 'wx', 0o600);
      try {
        await sh.truncate(p.oldSize);
        const w: AreaWriter = { reader: c.reader, jobs: c.jobs, fh: sh, fresh: true, zeros, meter, signal: c.signal, written: () => undefined };
        await writeArea(w, a, 0);
        await c.jobs.drain();
        await sh.sync();
      } finally {
        await sh.close();
      }
      meter.setMessage(`partition ${p.index}: shrinking ${p.fs} to ${(p.newSize / 1e6).toFixed(0)} MB`);
      await shrinkFs(img, p.fs!, p.newSize, p.index, p.newStart);
      c.log(`Partition ${p.index} (${p.fs}) shrunk from ${p.oldSize} to ${p.newSize} bytes.`);
      images.set(p.index, img);
    }
    // 2. The target: the head, the partitions at their new places, then the table.
    const w: AreaWriter = { reader: c.reader, jobs: c.jobs, fh, fresh: false, zeros, meter, signal: c.signal, written: (n) => (written += n) };
    const first = Math.min(...plan.partitions.map((p) => p.oldStart));
    for (const a of m.areas) if (a.kind === 'raw' && a.start < first) await writeArea(w, { ...a, extents: a.extents.filter((e) => a.start + e[0] < first) }, a.start);
    for (const p of plan.partitions) {
      if (p.how === 'shrink') continue;
      const a = areaOf(p.index);
      if (a) await writeArea(w, a, p.newStart);
    }
    await c.jobs.drain();
    await fh.sync();
    for (const p of shrink) {
      meter.setMessage(`partition ${p.index}: writing the shrunk ${p.fs}`);
      await copyUsedBlocks(images.get(p.index)!, p.newSize, fh, p.newStart, c.signal);
      const d = dataBytes(areaOf(p.index)!);
      written += d;
      meter.add(d);
    }
    const moved = new Map(plan.partitions.filter((p) => p.how !== 'keep').map((p: PlacedPartition) => [p.index, { start: p.newStart, size: p.newSize }]));
    await rewritePartitionRanges(handleDevice(fh), plan.targetSize, m.table.type as 'gpt' | 'mbr', moved);
    await fh.sync();
    meter.finish();
    return written;
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}
