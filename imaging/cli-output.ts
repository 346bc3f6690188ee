// How the CLI reports: one JSON object on stdout with --json; progress as a bar on a TTY, plain
// lines otherwise, or one JSON ProgressEvent per stderr line with --progress json.
import { SingleBar } from 'cli-progress';
import type { ProgressEvent } from './protocol';
import { formatBytes, formatDuration, formatRate } from './format';

export type ProgressMode = 'bar' | 'plain' | 'json' | 'none';

export function chooseProgressMode(requested: string | undefined, json: boolean): ProgressMode {
  if (requested === 'bar' || requested === 'plain' || requested === 'json' || requested === 'none') return requested;
  if (json) return 'none';
  return process.stderr.isTTY ? 'bar' : 'plain';
}

export class ProgressPrinter {
  private bar: SingleBar | null = null;
  private phase = '';
  private lastPlain = 0;

  constructor(private readonly mode: ProgressMode) {}

  readonly sink = (e: ProgressEvent): void => {
    if (this.mode === 'none') return;
    if (this.mode === 'json') {
      process.stderr.write(JSON.stringify(e) + '\n');
      return;
    }
    const eta = e.etaSeconds === null ? '?' : formatDuration(e.etaSeconds);
    if (e.bytesTotal <= 0) {
      // Work of unknown size (e.g. comparing file trees): a line now and then, no bar, no bytes.
      const now = Date.now();
      if (now - this.lastPlain < (this.mode === 'bar' ? 1000 : 5000)) return;
      this.lastPlain = now;
      process.stderr.write(`${e.phase}: ${e.message ?? formatBytes(e.bytesDone)}\n`);
      return;
    }
    if (this.mode === 'plain') {
      const now = Date.now();
      if (now - this.lastPlain < 5000 && e.bytesDone < e.bytesTotal) return;
      this.lastPlain = now;
      const pct = e.bytesTotal ? Math.floor((100 * e.bytesDone) / e.bytesTotal) : 100;
      process.stderr.write(`${e.phase}: ${pct}% ${formatBytes(e.bytesDone)} of ${formatBytes(e.bytesTotal)}, ${formatRate(e.rate)}, ${eta} left${e.message ? ` (${e.message})` : ''}\n`);
      return;
    }
    if (!this.bar || this.phase !== e.phase) {
      this.stop();
      this.phase = e.phase;
      this.bar = new SingleBar({
        format: `${e.phase.padEnd(8)} [{bar}] {percentage}% | {done} of {all} | {rate} | {eta_text} left {message}`,
        barsize: 30,
        hideCursor: true,
        stream: process.stderr,
      });
    }
    const payload = { done: formatBytes(e.bytesDone), all: formatBytes(e.bytesTotal), rate: formatRate(e.rate), eta_text: eta, message: e.message ?? '' };
    if (!this.bar.isActive) this.bar.start(e.bytesTotal, e.bytesDone, payload);
    this.bar.setTotal(e.bytesTotal);
    this.bar.update(e.bytesDone, payload);
  };

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
