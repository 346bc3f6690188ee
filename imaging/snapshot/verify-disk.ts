// `devsnap verify ID --against DISK`: compares a snapshot with a disk as it is now, block by block,
// where the disk's filesystems say blocks are in use (free blocks are not imaged, so they are not
// compared). Right after a snapshot of a disk nobody writes to, any difference is something the
// snapshot missed; later, it is what changed since. This is how a change made behind a filesystem's
// back (which an incremental does not see) is found without taking a full snapshot.
import type * as fs from 'fs';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { inspectPath } from '../disk/device';
import { openDisk } from '../disk/privilege';
import { detectFilesystem } from '../filesystems/detect';
import type { UsedBlocks } from '../filesystems/types';
import { fileReader, sliceReader } from '../disk/source';
import { journalRuns, readExtState, withoutBlocks } from '../capture/ext-tracking';
import { ChunkReader } from '../repo/chunk-reader';
import { FREE, Kind, Manifest, ZERO } from '../repo/manifest';
import type { Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, type ProgressSink } from '../core/progress';
import type { DiskComparison } from '../protocol';

const MAX_LISTED = 20;

export async function compareWithDisk(repo: Repository, m: Manifest, source: string, opts: { onProgress?: ProgressSink; signal?: AbortSignal }): Promise<DiskComparison> {
  const info = await inspectPath(source, 'source');
  if (info.size !== m.source.size)
    throw new DevsnapError(
      'USAGE',
      `${source} has ${info.size} bytes, snapshot ${m.id} a disk of ${m.source.size}: they cannot be compared.`,
      'Give the disk (or image file) the snapshot was taken of.',
    );
  const warnings: string[] = [];
  if (info.mounts.some((m) => !m.readOnly)) warnings.push(`${source} is mounted read-write: what changes while it is compared shows as differences.`);
  let fh: fs.promises.FileHandle;
  try {
    fh = await openDisk(source, 'r');
  } catch (err) {
    throw toDevsnapError(err, `the disk ${source}`);
  }
  const pool = new WorkerPool();
  const reader = new ChunkReader(repo, pool);
  const disk = fileReader(fh, info.size);
  const meter = new ProgressMeter(
    'compare',
    m.areas.reduce((n, a) => n + a.extents.bytesExcept(Kind.Free), 0),
    opts.onProgress,
  );
  const out: DiskComparison = { source, equal: true, bytesCompared: 0, differingBytes: 0, differences: [], warnings };
  const note = (partition: number | null, offset: number, length: number) => {
    out.equal = false;
    out.differingBytes += length;
    const last = out.differences[out.differences.length - 1];
    if (last && last.partition === partition && last.offset + last.length === offset) last.length += length;
    else if (out.differences.length < MAX_LISTED) out.differences.push({ partition, offset, length });
  };
  try {
    for (const a of m.areas) {
      // The disk's own map of used blocks now, where the snapshot imaged used blocks only.
      let used: UsedBlocks | null = null;
      const part = sliceReader(disk, a.start, a.size);
      if (a.mode === 'used-blocks') used = await detectFilesystem(part).catch(() => null);
      // An empty ext journal's log is stored as zeros (FORMAT.md): its bytes on the disk do not matter.
      if (used && !used.full && used.fs.startsWith('ext')) {
        const state = await readExtState(part);
        if (state?.journalClean) used = withoutBlocks(used, await journalRuns(part, state), used.blockSize);
      }
      const bs = used && !used.full ? used.blockSize : 4096;
      const inUse = (off: number) => !used || used.full || (used.bitmap[Math.floor(off / bs) >> 3] & (1 << (Math.floor(off / bs) & 7))) !== 0;
      for (const e of a.extents) {
        if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'Compare cancelled.');
        const [off, len, ref] = e;
        if (ref === FREE) continue;
        const mine = ref === ZERO ? Buffer.alloc(len) : await reader.readExtent(e);
        const theirs = await disk.read(a.start + off, len);
        for (let o = 0; o < len; o += bs) {
          const n = Math.min(bs, len - o);
          if (!inUse(off + o)) continue;
          out.bytesCompared += n;
          if (mine.compare(theirs, o, o + n, o, o + n) !== 0) note(a.partition ?? null, a.start + off + o, n);
        }
        meter.add(len);
      }
    }
  } finally {
    await pool.close();
    await fh.close();
  }
  meter.finish();
  return out;
}
