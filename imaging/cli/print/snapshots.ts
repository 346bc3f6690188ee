// What snapshot, snapshot --plan, list, show, diff, pin/unpin and label print without --json.
import { describeConsistency, formatBytes, formatDuration } from '../../core/format';
import { oneLine, table } from '../output';
import type { DiffOpResult, ListResult, ShowResult, SnapshotOpResult, SnapshotPlan, SnapshotRefResult } from '../../protocol';

export function snapshotText(r: SnapshotOpResult, source: string): string {
  const m = r.snapshot;
  const s = m.stats;
  return `Snapshot ${m.id} "${oneLine(m.label)}" of ${oneLine(source)}: ${formatBytes(s.bytesLogical)} disk, ${formatBytes(s.bytesUsed)} used, ${formatBytes(s.bytesAdded)} added (${s.chunksNew} new chunks, ${s.chunksReused} reused) in ${formatDuration(s.durationSeconds)}.\n${describeConsistency(m)}`;
}

export function planText(p: SnapshotPlan): string {
  if (p.consistency === 'offline') return `${oneLine(p.source)} has no filesystem mounted read-write: it is imaged as it is, nothing is paused.`;
  const lines = p.mounts.map(
    (m) =>
      `  ${oneLine(m.mountpoint)}: ${m.how === 'two-pass' ? `read live, then writes paused for about ${m.pauseSeconds!.toFixed(1)} s for the last pass` : m.how === 'two-pass-ro' ? `read live, then read-only for about ${m.pauseSeconds!.toFixed(1)} s for the last pass` : m.how === 'frozen' ? `writes paused while it is read (about ${m.pauseSeconds!.toFixed(1)} s)` : m.how === 'remount-ro' ? `read-only while it is read (about ${m.pauseSeconds!.toFixed(1)} s)` : m.how === 'lvm-snapshot' ? 'read from an LVM snapshot (LVM suspends it for an instant)' : 'cannot be paused'}${m.holdsRepository ? ' (holds the repository)' : ''}`,
  );
  return [
    `A snapshot of ${oneLine(p.source)} is one point in time; writes pause for about ${p.pauseSeconds.toFixed(1)} s:`,
    ...lines,
    ...(p.problem ? [`Refused: ${p.problem.message} ${p.problem.hint}`] : []),
  ].join('\n');
}

/** `devsnap list`: the snapshots, then every damaged manifest (never left out: the command exits non-zero). */
export function listText(r: ListResult): string {
  if (!r.snapshots.length && !r.damaged.length) return 'No snapshots yet.';
  const when = (created: string) => created.slice(0, 16).replace('T', ' ');
  const lines: string[] = [];
  if (r.snapshots.length) {
    lines.push(
      table([
        ['ID', 'CREATED', 'LABEL', 'SOURCE', 'SIZE', 'ADDED', 'STATE'],
        ...r.snapshots.map((m) => [
          m.id,
          when(m.created),
          m.label,
          m.source.path,
          formatBytes(m.stats.bytesLogical),
          formatBytes(m.stats.bytesAdded),
          [m.state, m.pinned ? 'pinned' : '', m.warningCount ? `${m.warningCount} warning${m.warningCount === 1 ? '' : 's'}` : ''].filter(Boolean).join(', '),
        ]),
      ]),
    );
  }
  if (r.damaged.length) {
    lines.push('', `${r.damaged.length} snapshot${r.damaged.length === 1 ? ' has a damaged manifest' : 's have damaged manifests'} and cannot be used:`);
    for (const d of r.damaged) {
      lines.push(`  ${d.id}${d.label !== undefined ? ` (was "${oneLine(d.label)}"${d.created ? ` of ${when(d.created)}` : ''})` : ''}: ${d.message}`);
      if (d.hint) lines.push(`    ${d.hint}`);
    }
    lines.push('Restore from another snapshot; `devsnap check` tells more, and `devsnap forget id:ID` removes a damaged one.');
  }
  return lines.join('\n');
}

export function showText(r: ShowResult): string {
  const m = { ...r.snapshot, warnings: r.warnings };
  return [
    `Snapshot ${m.id} "${oneLine(m.label)}"`,
    `  created ${m.created} on ${oneLine(m.host)}; ${m.state}${m.pinned ? '; pinned' : ''}${m.parent ? `; parent ${m.parent}` : ''}`,
    `  ${describeConsistency(m)}`,
    `  source ${oneLine(m.source.path)}, ${formatBytes(m.source.size)}, ${m.source.table} table`,
    ...m.partitions.map(
      (p) =>
        `  partition ${p.index}: ${formatBytes(p.size)} at ${p.start}, ${p.fs ?? 'unknown content (imaged in full)'}${p.label ? ` "${oneLine(p.label)}"` : ''}${p.usedBytes !== undefined ? `, ${formatBytes(p.usedBytes)} used` : ''}`,
    ),
    `  read ${formatBytes(m.stats.bytesRead)}, added ${formatBytes(m.stats.bytesAdded)} in ${formatDuration(m.stats.durationSeconds)}`,
    ...m.warnings.map((w) => `  warning: ${w}`),
  ].join('\n');
}

export function diffText(r: DiffOpResult): string {
  return [
    ...r.partitions.map((p) => `${p.index === null ? 'raw areas' : `partition ${p.index}`}${p.fs ? ` (${p.fs})` : ''}: ${formatBytes(p.changedBytes)} changed in ${p.ranges.length} range(s)`),
    `total: ${formatBytes(r.totalChangedBytes)} changed`,
  ].join('\n');
}

export const pinText = (r: SnapshotRefResult, pinned: boolean) => `Snapshot ${r.snapshot.id} ${pinned ? 'pinned' : 'unpinned'}.`;

export const labelText = (r: SnapshotRefResult) => `Snapshot ${r.snapshot.id} is now "${oneLine(r.snapshot.label)}".`;
