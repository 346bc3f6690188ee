// What disks and restore (a whole snapshot or a partition onto a device or image file) print without --json.
import { formatBytes } from '../../core/format';
import { table } from '../output';
import type { DisksResult, RestoreOpResult } from '../../protocol';

type ListedDisk = DisksResult['disks'][number];

const diskRows = (disks: ListedDisk[], note: (d: ListedDisk) => string[]): string[][] =>
  disks.flatMap((d) => [
    [d.path, formatBytes(d.size), d.table ?? '', d.model ?? '', [...note(d), ...(d.notes ?? [])].filter(Boolean).join('; ')],
    ...d.partitions.map((p) => [
      `  ${p.path ?? `#${p.index}`}`,
      formatBytes(p.size),
      p.fs ?? '',
      p.label ?? '',
      [p.usedBytes !== undefined ? `${formatBytes(p.usedBytes)} used` : '', ...(p.mountpoints ?? [])].filter(Boolean).join(' '),
    ]),
  ]);

/** What a virtual device is, in words: "loop over /srv/disk.img (squashfs)", "compressed RAM (zram)". */
export function virtualNote(d: ListedDisk): string {
  const v = d.virtual;
  if (!v) return '';
  const what =
    v.kind === 'loop' ? `loop device${v.backingFile ? ` over ${v.backingFile}` : ''}` : v.kind === 'zram' ? 'compressed RAM (zram)' : v.kind === 'ram' ? 'RAM disk' : 'nbd device, nothing connected';
  return `${what}${v.fs ? ` (${v.fs})` : ''}${d.mountpoints.length && !d.partitions.length ? `, mounted at ${d.mountpoints.join(' ')}` : ''}`;
}

/** The drives first; virtual devices (loop, RAM disks) apart below them, each saying what it is. */
export function disksText(disks: DisksResult['disks']): string {
  const drives = disks.filter((d) => !d.virtual);
  const virtual = disks.filter((d) => d.virtual);
  const out = [table([['DISK', 'SIZE', 'TABLE', 'MODEL', 'NOTE'], ...diskRows(drives, (d) => [d.isSystem ? 'running system' : ''])])];
  if (virtual.length) {
    out.push(
      '',
      `Virtual devices (not drives of this machine):`,
      table([['DEVICE', 'SIZE', 'TABLE', 'MODEL', 'WHAT'], ...diskRows(virtual, (d) => [d.isSystem ? 'running system' : '', virtualNote(d)])]),
    );
  }
  return out.join('\n');
}

/** "partition 2 (ext4): shrinks from 200 MB to 120 MB, moves to 33.6 MB" */
function resizedLine(p: NonNullable<RestoreOpResult['resized']>[number]): string {
  const what = `partition ${p.partition} (${p.fs ?? 'unknown contents'})`;
  if (p.how === 'keep') return `  ${what}: kept as it is`;
  const moved = p.start !== p.fromStart ? `, starts at ${formatBytes(p.start)} (was ${formatBytes(p.fromStart)})` : '';
  return p.how === 'shrink' ? `  ${what}: shrinks from ${formatBytes(p.fromSize)} to ${formatBytes(p.size)}${moved}` : `  ${what}: ${formatBytes(p.size)}${moved}`;
}

export function restoreText(r: RestoreOpResult): string {
  const resized = r.resized ? [`The target (${formatBytes(r.targetSize)}) is smaller than the snapshot's disk (${formatBytes(r.bytesNeeded)}):`, ...r.resized.map(resizedLine)] : [];
  return r.dryRun
    ? [
        `Would write ${formatBytes(r.bytesToWrite)} of snapshot ${r.snapshot} to ${r.target} (${r.targetKind}):`,
        ...r.areas.map((a) => `  ${a.kind === 'partition' ? `partition ${a.partition}` : 'raw area'} at ${a.offset}, ${formatBytes(a.size)} (${a.mode})`),
        ...resized,
      ].join('\n')
    : [
        `Restored snapshot ${r.snapshot} to ${r.target}: ${formatBytes(r.bytesWritten)} written, every chunk verified${r.gptRelocated && !r.resized ? '; GPT backup moved to the end of the larger disk' : ''}.`,
        ...resized,
        ...(r.newIds
          ? [
              'New ids:',
              ...r.newIds.changed.map(
                (c) =>
                  `  ${c.partition === null ? 'disk' : `partition ${c.partition}`} ${c.what === 'filesystem' ? `${c.kind} UUID` : c.what === 'disk' ? 'GUID' : 'GUID (PARTUUID)'}: ${c.from} → ${c.to}`,
              ),
              ...(r.newIds.filesUpdated.length ? ['Updated to them:', ...r.newIds.filesUpdated.map((f) => `  ${f}`)] : ['No boot file of the restored system named the old ids.']),
              ...r.newIds.warnings.map((w) => `Note: ${w}`),
            ]
          : []),
      ].join('\n');
}
