// How the CLI reports: one JSON object on stdout with --json; progress as a bar on a TTY, plain
// lines otherwise, or one JSON ProgressEvent per stderr line with --progress json.
import { SingleBar } from 'cli-progress';
import type { ProgressEvent } from '../protocol';
import { formatBytes, formatDuration, formatRate } from '../core/format';

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

const escapeChar = (c: string) => {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/**
 * Text for a terminal: control characters (other than newline and tab) shown as \xNN, bidirectional
 * controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069) as \uNNNN. Labels, host names and file
 * names come from repositories and archives anyone may have written: printed raw, an escape sequence
 * could rewrite what the terminal shows, and a right-to-left override reorder what it reads.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, escapeChar);
}

/** A value inside a line (a table cell, a label in a sentence): newline and tab escaped too, so it cannot fake another line or column. */
export function oneLine(text: string): string {
  return terminalSafe(text).replace(/[\t\n]/g, escapeChar);
}

/** Columns padded to their widest cell; every cell on one line (oneLine). */
export function table(rows: string[][]): string {
  const cells = rows.map((r) => r.map(oneLine));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
