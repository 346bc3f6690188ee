// Writes the extents of a snapshot's area onto a target (a disk, a partition, an image or scratch
// file): each chunk checked against its hash as it is read, several in flight, zero ranges written
// unless the file is new (a hole reads as zeros), free ranges skipped.
import type * as fs from 'fs';
import { DevsnapError } from '../core/errors';
import { writeFully } from '../core/fsutil';
import type { JobQueue } from '../core/job-queue';
import { chunkBuffers } from '../core/memory';
import type { ProgressMeter } from '../core/progress';
import type { ChunkReader } from '../repo/chunk-reader';
import { FREE, ZERO, type Area } from '../repo/manifest';

/** What writing an area's extents needs: where the chunks come from, where they go, and the counters. */
export interface AreaWriter {
  reader: ChunkReader;
  jobs: JobQueue;
  fh: fs.promises.FileHandle;
  /** A new (sparse) file: zero ranges stay holes instead of being written. */
  fresh: boolean;
  zeros: Buffer;
  meter: ProgressMeter;
  signal?: AbortSignal;
  written(bytes: number): void;
}

/** Writes area `a`'s data (chunks checked against their hashes) and zero ranges with its first byte at `at`; free ranges are skipped. */
export async function writeArea(w: AreaWriter, a: Area, at: number): Promise<void> {
  w.meter.setMessage(a.kind === 'partition' ? `partition ${a.partition}` : 'partition table and boot areas');
  for (const e of a.extents) {
    const [off, len, ref] = e;
    if (w.signal?.aborted) throw new DevsnapError('CANCELLED', 'Restore cancelled.');
    w.jobs.check();
    const pos = at + off;
    if (ref === FREE) continue;
    if (ref === ZERO) {
      if (!w.fresh) for (let o = 0; o < len; o += w.zeros.length) await writeFully(w.fh, w.zeros.subarray(0, Math.min(w.zeros.length, len - o)), pos + o);
      w.written(len);
      w.meter.add(len);
      continue;
    }
    await w.jobs.add(async () => {
      const raw = await w.reader.readExtent(e);
      await writeFully(w.fh, raw, pos);
      chunkBuffers.give(raw); // written: reused for a later chunk (core/memory.ts)
      w.written(len);
      w.meter.add(len);
    });
  }
}
