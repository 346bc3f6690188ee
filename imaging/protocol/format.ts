// Pure display helpers that the webview needs as well as the engine and the extension: sizes, dates
// and how a snapshot is one point in time. Dependency-free (only types of this folder), so the webview
// bundles them without any of node's world; imaging/core/format.ts re-exports them for everyone else.
import type { SnapshotSummary } from './snapshots';

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

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local date and time to the minute: "2026-11-25 14:03". */
export function formatTimestamp(date: Date): string {
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
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
      const others =
        p?.methods
          .filter((x) => x.how !== 'two-pass')
          .map((x) =>
            x.how === 'lvm-snapshot'
              ? `${x.mountpoint} from an LVM snapshot`
              : x.how === 'two-pass-ro'
                ? `${x.mountpoint} read-only instead`
                : `${x.mountpoint} ${x.how === 'remount-ro' ? 'read-only' : 'paused'} while read`,
          ) ?? [];
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

/** "GPT", "MBR", or "no partition table" (a filesystem or raw data from the first byte). */
export function tableWords(table: 'gpt' | 'mbr' | 'none' | undefined): string {
  return table && table !== 'none' ? table.toUpperCase() : 'no partition table';
}

/** "GPT, 3 partitions", or "no partition table": how a disk's layout is said everywhere (extension, CLI). */
export function layoutWords(table: 'gpt' | 'mbr' | 'none' | undefined, partitions: number): string {
  return table && table !== 'none' ? `${tableWords(table)}, ${partitions} partition${partitions === 1 ? '' : 's'}` : tableWords(table);
}
