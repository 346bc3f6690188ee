// Pure formatting helpers shared by the CLI and the extension: sizes, rates, durations, dates and
// progress lines (those the webview shares live in imaging/protocol/format.ts, re-exported here).
// No `vscode` import, so the unit tests (test/unit/extension-format.test.ts) run under plain node.
import type { ProgressEvent } from '../protocol';
import { formatBytes, formatTimestamp } from '../protocol/format';

// Moved to imaging/protocol/format.ts (the webview needs them and may import nothing but the protocol).
export { consistencyName, describeConsistency, formatBytes, formatTimestamp, layoutWords, tableWords } from '../protocol/format';

/** A transfer rate: "85.2 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '0 B/s';
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A duration for humans: "45 s", "3 min 05 s", "1 h 20 min", "2 d 3 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The label Take Snapshot offers by default. */
export function defaultSnapshotLabel(now: Date = new Date()): string {
  return `before upgrade ${formatTimestamp(now)}`;
}

/**
 * How long ago `iso` was, relative to `now`: "just now", "5 minutes ago", "yesterday",
 * "3 days ago"; older than four weeks (or in the future) the local date and time.
 */
export function formatRelativeDate(iso: string | Date, now: Date = new Date()): string {
  const date = iso instanceof Date ? iso : new Date(iso);
  const t = date.getTime();
  if (Number.isNaN(t)) return String(iso);
  const seconds = (now.getTime() - t) / 1000;
  if (seconds < -60) return formatTimestamp(date);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return minutes === 1 ? '1 minute ago' : `${minutes} minutes ago`;
  const hours = Math.round(seconds / 3600);
  if (hours < 24) return hours === 1 ? '1 hour ago' : `${hours} hours ago`;
  // Calendar days, so that "yesterday 23:50" seen at 00:10 says yesterday.
  const startOfDay = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOfDay(now) - startOfDay(date)) / 86_400_000);
  if (days <= 1) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  if (days < 28) {
    const weeks = Math.round(days / 7);
    return weeks === 1 ? '1 week ago' : `${weeks} weeks ago`;
  }
  return formatTimestamp(date);
}

/** Whole percent of done/total, clamped to 0..100 (0 when the total is unknown). */
export function percentOf(done: number, total: number): number {
  if (!(total > 0) || !Number.isFinite(done)) return 0;
  return Math.max(0, Math.min(100, Math.floor((done / total) * 100)));
}

/** The line a progress notification shows: "image · 42% · 85.2 MB/s · 1 min 20 s left · partition 2 (ext4)". */
export function formatProgress(ev: ProgressEvent): string {
  const parts: string[] = [ev.phase];
  if (ev.bytesTotal > 0) parts.push(`${percentOf(ev.bytesDone, ev.bytesTotal)}%`);
  if (ev.rate > 0) parts.push(formatRate(ev.rate));
  if (ev.etaSeconds !== null && ev.etaSeconds !== undefined && Number.isFinite(ev.etaSeconds) && ev.bytesDone < ev.bytesTotal) {
    parts.push(`${formatDuration(ev.etaSeconds)} left`);
  }
  if (ev.message) parts.push(ev.message);
  return parts.join(' · ');
}

/**
 * Turns a stream of ProgressEvents into VS Code progress reports: a message per event and the
 * increment (in percent) to add to the notification's bar, which can only grow. Only the
 * `primary` phases (the long one of a command, e.g. 'image') move the bar; other phases only
 * show their message. An empty `primary` list lets every phase move it.
 */
export class ProgressTracker {
  private reported = 0;
  constructor(private readonly primary: readonly string[] = []) {}

  next(ev: ProgressEvent): { message: string; increment?: number } {
    const message = formatProgress(ev);
    if (this.primary.length && !this.primary.includes(ev.phase)) return { message };
    const pct = percentOf(ev.bytesDone, ev.bytesTotal);
    if (pct <= this.reported) return { message };
    const increment = pct - this.reported;
    this.reported = pct;
    return { message, increment };
  }
}
