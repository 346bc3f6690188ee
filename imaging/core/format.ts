// Pure formatting helpers shared by the CLI, the extension and the webview: sizes, rates, durations, dates and
// progress lines. No `vscode` import, so the unit tests (test/unit/extension-format.test.ts) run
// under plain node.
import type { ProgressEvent, SnapshotSummary } from '../protocol';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Decimal (SI) sizes, as disk vendors and file managers show them: 512 B, 1.5 MB, 64 GB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '? B';
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  let unit = 0;
  while (n >= 1000 && unit < UNITS.length - 1) {
    n /= 1000;
    unit++;
  }
  if (unit === 0) return `${sign}${Math.round(n)} B`;
  // Keep three significant digits at most: 1.23 GB, 12.3 GB, 123 GB.
  const digits = n < 10 ? 2 : n < 100 ? 1 : 0;
  let text = n.toFixed(digits);
  if (text.includes('.')) text = text.replace(/\.?0+$/, '');
  // Rounding can produce "1000 MB": carry into the next unit.
  if (text === '1000' && unit < UNITS.length - 1) return `${sign}1 ${UNITS[unit + 1]}`;
  return `${sign}${text} ${UNITS[unit]}`;
}

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

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local date and time to the minute: "2026-11-25 14:03". */
export function formatTimestamp(date: Date): string {
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
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

/** A short name for how a snapshot is one point in time (the sidebar's description, the panel's badge). */
export function consistencyName(m: Pick<SnapshotSummary, 'consistency'>): string {
  switch (m.consistency) {
    case 'offline':
      return 'offline';
    case 'native-snapshot':
      return 'point in time (LVM snapshot)';
    case 'frozen-two-pass':
      return 'point in time';
    case 'frozen':
      return 'point in time (writes paused throughout)';
    default:
      return 'fuzzy read';
  }
}

/** One sentence on how the image is (or is not) one point in time, for `show`, tooltips and the panel. */
export function describeConsistency(m: Pick<SnapshotSummary, 'consistency' | 'pointInTime'>): string {
  const p = m.pointInTime;
  const when = p ? ` at ${formatTimestamp(new Date(p.at))}` : '';
  switch (m.consistency) {
    case 'offline':
      return 'Offline: no filesystem of the disk was mounted read-write, so the image is the disk as it was.';
    case 'native-snapshot':
      return `Point in time${when}: read from an LVM snapshot, without pausing writes.`;
    case 'frozen-two-pass': {
      const pause = p ? `${p.pauseSeconds < 10 ? p.pauseSeconds.toFixed(1) : Math.round(p.pauseSeconds)} s` : 'a moment';
      const others = p?.methods.filter((x) => x.how !== 'two-pass').map((x) =>
        x.how === 'lvm-snapshot' ? `${x.mountpoint} from an LVM snapshot` : x.how === 'two-pass-ro' ? `${x.mountpoint} read-only instead` : `${x.mountpoint} ${x.how === 'remount-ro' ? 'read-only' : 'paused'} while read`) ?? [];
      return `Point in time${when}: read live, then what changed re-read with writes paused for ${pause}${others.length ? ` (${others.join(', ')})` : ''}.`;
    }
    case 'frozen':
      return 'Point in time: writes were paused for the whole snapshot (--freeze).';
    case 'crash-consistent':
      return 'Fuzzy read (taken by an earlier devsnap): the disk changed while it was read; the restored filesystems may need repair.';
    default:
      return 'Fuzzy read (--fuzzy): the disk changed while it was read, so this is not one point in time; the restored filesystems may need repair.';
  }
}
