// Stores chunks in the repository once: a chunk the repository (or this run) already has is only
// referenced; a new one is compressed on the worker pool and appended to a pack. Used by snapshot
// and import, which both turn a stream of raw chunks into stored ones.
import { toDevsnapError } from '../core/errors';
import { JobQueue } from '../core/job-queue';
import { chunkBuffers } from '../core/memory';
import type { PackWriter } from './repository';
import type { WorkerPool } from './worker-pool';

export class ChunkSaver {
  readonly stats = { chunksNew: 0, chunksReused: 0 };
  private readonly jobs: JobQueue;

  constructor(
    private readonly writer: PackWriter,
    private readonly pool: WorkerPool,
    private readonly level: number,
    repoDir: string,
  ) {
    this.jobs = new JobQueue(pool.size * 2, (err) => toDevsnapError(err, `the repository ${repoDir}`));
  }

  /**
   * Saves `raw` under `id` unless it is stored already. With `take`, the buffer is handed to the
   * worker without a copy and must not be used afterwards. With `digests`, the chunk is stored with
   * its block digests (repo/digests.ts), which later incrementals compare with.
   */
  async save(id: string, raw: Buffer, take = false, digests = false): Promise<void> {
    if (this.writer.has(id)) {
      this.stats.chunksReused++;
      if (take) chunkBuffers.give(raw); // handed over: nothing else uses it
      return;
    }
    this.writer.reserve(id);
    this.stats.chunksNew++;
    const length = raw.length;
    await this.jobs.add(async () => {
      const frame = await this.pool.compress(raw, this.level, { take, ...(digests ? { digestsFor: id } : {}) });
      await this.writer.add(id, frame, length);
      chunkBuffers.give(frame); // written (or sealed into a copy): the pool buffer is free again
    });
  }

  /** Throws when a save failed (the producer stops early). */
  check(): void {
    this.jobs.check();
  }

  /** Waits until every chunk is written to its pack; throws the first failure. */
  drain(): Promise<void> {
    return this.jobs.drain();
  }

  /** Waits for saves under way, ignoring failures: call before abandoning the writer. */
  settle(): Promise<void> {
    return this.jobs.settle();
  }
}
