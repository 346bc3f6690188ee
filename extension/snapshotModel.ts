// Pure logic behind the Snapshots tree and the pickers: grouping by source disk, ordering,
// and the texts shown for disks, snapshots and partitions. No `vscode` import (unit-tested in
// test/unit/extension-model.test.ts).
import type { DamagedSnapshot, DiskInfo, PartitionInfo, SnapshotSummary } from '../imaging/protocol';
import { consistencyName, describeConsistency, formatBytes, formatRelativeDate, formatTimestamp, layoutWords, tableWords } from '../imaging/core/format';
import { shortAge } from './ages';

export interface DiskGroup {
  /** Stable key of the source disk: its disk id when known, else its path. */
  key: string;
  /** "Samsung SSD 970 (/dev/nvme0n1)" or the image file's path. */
  label: string;
  /** "512 GB · 3 snapshots". */
  description: string;
  source: SnapshotSummary['source'];
  /** Newest first. */
  snapshots: SnapshotSummary[];
}

/** What makes snapshots "of the same disk": the host that took them and the disk (its GUID, else its path). */
export function sourceKey(s: SnapshotSummary): string {
  return `${s.host}\0${s.source.diskId ? `id:${s.source.diskId}` : `path:${s.source.path}`}`;
}

function time(s: SnapshotSummary): number {
  const t = Date.parse(s.created);
  return Number.isNaN(t) ? 0 : t;
}

/** Newest first; equal times keep a stable order by id. */
export function compareNewestFirst(a: SnapshotSummary, b: SnapshotSummary): number {
  return time(b) - time(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Groups snapshots by host and source disk; groups ordered by their newest snapshot, newest first. */
export function groupSnapshots(snapshots: readonly SnapshotSummary[], hostCount = new Set(snapshots.map((s) => s.host)).size): DiskGroup[] {
  const groups = new Map<string, DiskGroup>();
  for (const s of [...snapshots].sort(compareNewestFirst)) {
    const key = sourceKey(s);
    let g = groups.get(key);
    if (!g) {
      g = { key, label: groupLabel(s.source), description: '', source: s.source, snapshots: [] };
      groups.set(key, g);
    }
    g.snapshots.push(s);
  }
  const list = [...groups.values()];
  // A repository several workstations share (`hostCount`, also when a filter shows one): each group says whose disk it is.
  for (const g of list) {
    const n = g.snapshots.length;
    g.description = `${hostCount > 1 ? `on ${g.snapshots[0].host} · ` : ''}${formatBytes(g.source.size)} · ${n} snapshot${n === 1 ? '' : 's'}`;
  }
  return list; // already ordered: groups were created in newest-first order of their first snapshot
}

/** A disk group's name: "Model (/dev/sda)", "/dev/sda", or an image file's name (its folder is in the tooltip). */
export function groupLabel(src: { path: string; model?: string }): string {
  if (!src.path.startsWith('/dev/') && !src.model) return src.path.split(/[\\/]/).pop() || src.path;
  return sourceLabel(src);
}

export function sourceLabel(src: { path: string; model?: string }): string {
  return src.model ? `${src.model} (${src.path})` : src.path;
}

/** The snapshot taken of the same source just before `s`, if any. */
export function previousSnapshot(all: readonly SnapshotSummary[], s: SnapshotSummary): SnapshotSummary | undefined {
  const key = sourceKey(s);
  return [...all].filter((o) => o.id !== s.id && sourceKey(o) === key && compareNewestFirst(o, s) > 0).sort(compareNewestFirst)[0];
}

/** The image is not one point in time (a fuzzy read, forced or by an earlier devsnap): the sidebar marks it. */
export function isFuzzy(s: Pick<SnapshotSummary, 'consistency'>): boolean {
  // Every name consistencyName does not know is a fuzzy read to it too.
  return !['offline', 'native-snapshot', 'frozen-two-pass', 'frozen'].includes(s.consistency);
}

/**
 * The row's description, most useful first and short enough for the default sidebar width:
 * "2 h ago · +1.2 GB" (the age, then what it added; the disk's size is on its group's row), plus
 * "· fuzzy read" for the rare image that is not one point in time.
 */
export function snapshotDescription(s: SnapshotSummary, now: Date = new Date()): string {
  const text = `${shortAge(s.created, now)} · +${formatBytes(s.stats?.bytesAdded ?? 0)}`;
  return isFuzzy(s) ? `${text} · ${consistencyName(s)}` : text;
}

export type SnapshotIconKind = 'damaged' | 'pinned' | 'verified' | 'not-verified';

/** Which state the item's icon shows: damage wins over pinned, pinned over verification. */
export function snapshotIconKind(s: SnapshotSummary): SnapshotIconKind {
  if (s.state === 'damaged') return 'damaged';
  if (s.pinned) return 'pinned';
  return s.state === 'verified' ? 'verified' : 'not-verified';
}

export function stateText(s: SnapshotSummary): string {
  switch (s.state) {
    case 'verified':
      return s.verifiedAt ? `verified ${formatTimestamp(new Date(s.verifiedAt))}` : 'verified';
    case 'damaged':
      return 'damaged — run Verify for details';
    default:
      return 'not verified yet';
  }
}

/**
 * contextValue of a snapshot item, used by the `when` clauses of its menus: "snapshot", plus
 * ".pinned" when pinned, plus ".oldest" when no earlier snapshot of its disk exists (nothing to
 * compare it with: no Compare with Previous).
 */
export function snapshotContextValue(s: SnapshotSummary, oldest = false): string {
  return `snapshot${s.pinned ? '.pinned' : ''}${oldest ? '.oldest' : ''}`;
}

/** contextValue of a disk group: "disk", "disk.pair" with two snapshots or more (Compare Newest Two). */
export function diskContextValue(g: Pick<DiskGroup, 'snapshots'>): string {
  return g.snapshots.length >= 2 ? 'disk.pair' : 'disk';
}

/** Filesystems whose files devsnap reads inside a snapshot (the compare panel's Files tab). */
export function readsFiles(p: Pick<PartitionInfo, 'fs'>): boolean {
  return /^(ext[234]|vfat|fat(12|16|32)?|ntfs)$/.test(p.fs ?? '');
}

/** contextValue of a partition: "partition", plus ".files" when its changed files can be shown (a readable filesystem and an earlier snapshot). */
export function partitionContextValue(p: Pick<PartitionInfo, 'fs'>, hasPrevious: boolean): string {
  return `partition${hasPrevious && readsFiles(p) ? '.files' : ''}`;
}

/**
 * The pair Compare Selected compares: exactly two snapshots, older first; undefined otherwise
 * (the same snapshot twice counts as one).
 */
export function selectedPair(selected: readonly SnapshotSummary[]): { a: SnapshotSummary; b: SnapshotSummary } | undefined {
  const unique = [...new Map(selected.map((s) => [s.id, s])).values()];
  if (unique.length !== 2) return undefined;
  const [b, a] = unique.sort(compareNewestFirst);
  return { a, b };
}

/** The two newest snapshots of a disk group, older first (Compare Newest Two). */
export function newestPair(g: Pick<DiskGroup, 'snapshots'>): { a: SnapshotSummary; b: SnapshotSummary } | undefined {
  const [b, a] = [...g.snapshots].sort(compareNewestFirst);
  return a && b ? { a, b } : undefined;
}

/** What "verified" means for a snapshot, in plain words ("not verified yet", never "not-verified"). */
export function stateWords(s: Pick<SnapshotSummary, 'state' | 'pinned'>): string {
  const state = s.state === 'verified' ? 'verified' : s.state === 'damaged' ? 'damaged' : 'not verified yet';
  return s.pinned ? `${state}, pinned` : state;
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

/** What deleting a snapshot frees (data only it uses) and the repository's stored total, when known. */
export interface SnapshotSpace {
  uniqueBytes: number;
  totalBytes?: number;
}

/** "frees 1.2 GB" (of the repository's 3.4 GB). */
export function freesText(u: SnapshotSpace): string {
  return `frees ${formatBytes(u.uniqueBytes)}${u.totalBytes !== undefined ? ` of the repository's ${formatBytes(u.totalBytes)}` : ''}`;
}

/** The Markdown of a snapshot item's tooltip. */
export function snapshotTooltipMarkdown(s: SnapshotSummary, now: Date = new Date(), space?: SnapshotSpace): string {
  const st = s.stats;
  const lines = [
    `**${escapeMd(s.label || '(no label)')}**${s.pinned ? ' $(pinned) pinned' : ''}`,
    '',
    `Taken ${escapeMd(formatTimestamp(new Date(s.created)))} (${escapeMd(formatRelativeDate(s.created, now))}) on ${escapeMd(s.host)}`,
    '',
    `| | |`,
    `|---|---|`,
    `| Source | ${escapeMd(sourceLabel(s.source))} |`,
    `| Disk size | ${formatBytes(s.source.size)} (${tableWords(s.source.table)}) |`,
    `| Data | ${formatBytes(st?.bytesUsed ?? 0)} used |`,
    `| Added to repository | ${formatBytes(st?.bytesAdded ?? 0)} |`,
    ...(reusedText(s) ? [`| Reused | ${reusedText(s)} |`] : []),
    ...(space ? [`| Deleting it | ${freesText(space)} (data no other snapshot uses) |`] : []),
    `| Consistency | ${escapeMd(describeConsistency(s))} |`,
    ...(s.readMode ? [`| Read | ${s.readMode === 'changes' ? 'what changed since the previous snapshot' : 'every used block'} |`] : []),
    `| State | ${escapeMd(stateText(s))} |`,
    `| Id | \`${s.id}\` |`,
  ];
  return lines.join('\n');
}

/** "80% of its data was already in the repository": how much deduplication saved, in plain words. */
export function reusedText(s: SnapshotSummary): string | undefined {
  const n = (s.stats?.chunksNew ?? 0) + (s.stats?.chunksReused ?? 0);
  if (!n) return undefined;
  return `${Math.round((100 * (s.stats?.chunksReused ?? 0)) / n)}% of its data was already in the repository`;
}

/** "2 · ext4 “root”" */
export function partitionLabel(p: PartitionInfo): string {
  const what = p.fs ?? p.typeName ?? 'unknown';
  const name = p.label || p.name;
  return `${p.index} · ${what}${name ? ` “${name}”` : ''}`;
}

/** "12 GB used of 40 GB" or "40 GB". */
export function partitionDescription(p: PartitionInfo): string {
  return p.usedBytes !== undefined ? `${formatBytes(p.usedBytes)} used of ${formatBytes(p.size)}` : formatBytes(p.size);
}

export function partitionTooltip(p: PartitionInfo): string {
  const lines = [`Partition ${p.index}${p.name ? ` (${p.name})` : ''}`];
  lines.push(`Type: ${p.typeName ?? p.type}`);
  if (p.fs) lines.push(`Filesystem: ${p.fs}${p.label ? ` “${p.label}”` : ''}${p.fsUuid ? `, UUID ${p.fsUuid}` : ''}`);
  lines.push(`Size: ${formatBytes(p.size)} at offset ${formatBytes(p.start)}`);
  if (p.usedBytes !== undefined) lines.push(`Used: ${formatBytes(p.usedBytes)}`);
  return lines.join('\n');
}

/** Bytes in use on a disk, summed over partitions whose filesystem reports it. */
export function diskUsedBytes(d: DiskInfo): number | undefined {
  const used = d.partitions.map((p) => p.usedBytes).filter((n): n is number => typeof n === 'number');
  return used.length ? used.reduce((a, b) => a + b, 0) : undefined;
}

/** System drive first, then by path. */
export function sortDisks(disks: readonly DiskInfo[]): DiskInfo[] {
  return [...disks].sort((a, b) => Number(b.isSystem) - Number(a.isSystem) || a.path.localeCompare(b.path));
}

/** "512 GB · 120 GB used · GPT, 3 partitions" */
export function diskDescription(d: DiskInfo): string {
  const parts = [formatBytes(d.size)];
  const used = diskUsedBytes(d);
  if (used !== undefined) parts.push(`${formatBytes(used)} used`);
  parts.push(layoutWords(d.table, d.partitions.length));
  return parts.join(' · ');
}

/** What a restore onto `target` overwrites, for the confirmation: "partitions 1 (vfat “EFI”), 2 (ext4 “root”)". */
export function overwriteSummary(target: DiskInfo | undefined, partition?: number): string {
  if (!target) return partition !== undefined ? `partition ${partition}` : 'everything on it';
  const parts = target.partitions.filter((p) => partition === undefined || p.index === partition);
  if (!parts.length) return partition !== undefined ? `partition ${partition}` : 'all of its contents';
  const one = (p: DiskInfo['partitions'][number]) =>
    `${p.index} (${[p.fs ?? p.typeName ?? 'unknown', p.label ? `“${p.label}”` : '', p.mountpoints?.length ? `mounted at ${p.mountpoints.join(', ')}` : ''].filter(Boolean).join(' ')})`;
  return `${parts.length === 1 ? 'partition' : 'partitions'} ${parts.map(one).join(', ')}`;
}

/** "Snapshot 'before upgrade' added 1.2 GB to the repository (a 64 GB disk). Point in time at …: read live, then …" */
export function snapshotDoneMessage(s: SnapshotSummary): string {
  return `Snapshot '${s.label}' added ${formatBytes(s.stats?.bytesAdded ?? 0)} to the repository (a ${formatBytes(s.stats?.bytesLogical ?? s.source.size)} disk). ${describeConsistency(s)}`;
}

/** "'label' (2026-11-25 14:03)" — how a snapshot is named in messages. */
export function snapshotName(s: SnapshotSummary): string {
  return `'${s.label || s.id}' (${formatTimestamp(new Date(s.created))})`;
}

/** The tree's group of snapshots whose manifest is damaged: "Damaged snapshots", "2 cannot be used". */
export function damagedGroupText(n: number): { label: string; description: string } {
  return { label: 'Damaged snapshots', description: `${n} cannot be used` };
}

/** A damaged snapshot's item: its last known label (or its id) and what is wrong. */
export function damagedItemText(d: DamagedSnapshot): { label: string; description: string; tooltip: string } {
  const known = d.label !== undefined ? `'${d.label}'${d.created ? ` (${formatTimestamp(new Date(d.created))})` : ''}` : '';
  return {
    label: d.label || d.id,
    description: d.message,
    tooltip: [
      `Snapshot ${d.id}${known ? `, last known as ${known}` : ''}: its manifest is damaged, so it cannot be restored or compared.`,
      d.message,
      d.hint ?? 'Restore from another snapshot.',
      // The view cannot remove a snapshot it cannot read: a terminal can.
      `To remove this one, run \`devsnap forget id:${d.id}\` in a terminal; the devsnap output channel says more.`,
    ].join('\n'),
  };
}
