// Runs async jobs (compressions, chunk reads) with a bounded number in flight, so memory stays
// bounded whatever the disk size; keeps the first failure and rethrows it to the producer.
export class JobQueue {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(
    private readonly limit: number,
    private readonly mapError: (err: unknown) => unknown = (err) => err,
  ) {}

  /** Starts a job, then waits while `limit` jobs run. Throws an earlier job's failure. */
  async add(job: () => Promise<void>): Promise<void> {
    this.check();
    const p: Promise<void> = job()
      .catch((err) => {
        this.failure ??= this.mapError(err);
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    if (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
  }

  /** Throws the first failure, if any job failed. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits for every job, then throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    this.check();
  }

  /** Waits for every job, ignoring failures (before cleaning up after an error). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }
}
