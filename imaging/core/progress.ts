// Progress of long work as ProgressEvents: byte counts, a smoothed rate and the time left,
// emitted at most every `intervalMs` (and once at the end).
import type { ProgressEvent } from '../protocol';

export type ProgressSink = (e: ProgressEvent) => void;

export class ProgressMeter {
  private done = 0;
  private lastEmit = 0;
  private rate = 0;
  private sampleTime: number;
  private sampleBytes = 0;

  constructor(
    private readonly phase: string,
    private total: number,
    private readonly sink?: ProgressSink,
    private readonly intervalMs = 250,
    private message?: string,
  ) {
    this.sampleTime = Date.now();
  }

  setMessage(message: string): void {
    this.message = message;
  }

  add(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    if (now - this.lastEmit >= this.intervalMs) this.emit(now);
  }

  /** Done: the last event says 100% (an incremental skips what did not change, a pass reads less than planned). */
  finish(): void {
    this.total = Math.max(this.total, this.done);
    this.done = this.total;
    this.message = undefined;
    this.emit(Date.now());
  }

  private emit(now: number): void {
    if (!this.sink) return;
    const dt = (now - this.sampleTime) / 1000;
    if (dt >= 0.5 || this.rate === 0) {
      const instant = dt > 0 ? (this.done - this.sampleBytes) / dt : 0;
      this.rate = this.rate === 0 ? instant : 0.7 * this.rate + 0.3 * instant; // exponential smoothing
      this.sampleTime = now;
      this.sampleBytes = this.done;
    }
    this.lastEmit = now;
    const left = Math.max(0, this.total - this.done);
    this.sink({
      type: 'progress',
      phase: this.phase,
      bytesDone: this.done,
      bytesTotal: this.total,
      rate: Math.round(this.rate),
      etaSeconds: this.rate > 0 ? Math.round(left / this.rate) : null,
      ...(this.message ? { message: this.message } : {}),
    });
  }
}
