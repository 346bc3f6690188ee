// What disks and restore (a whole snapshot or a partition onto a device or image file) print without --json.
import { formatBytes } from '../../core/format';
import { table } from '../output';
import type { DisksResult, RestoreOpResult } from '../../protocol';

export function disksText(disks: DisksResult['disks']): string {
  return table([
    ['DISK', 'SIZE', 'TABLE', 'MODEL', 'NOTE'],
    ...disks.flatMap((d) => [
      [d.path, formatBytes(d.size), d.table ?? '', d.model ?? '', [d.isSystem ? 'running system' : '', ...(d.notes ?? [])].filter(Boolean).join('; ')],
      ...d.partitions.map((p) => [
        `  ${p.path ?? `#${p.index}`}`,
        formatBytes(p.size),
        p.fs ?? '',
        p.label ?? '',
        [p.usedBytes !== undefined ? `${formatBytes(p.usedBytes)} used` : '', ...(p.mountpoints ?? [])].filter(Boolean).join(' '),
      ]),
    ]),
  ]);
}

export function restoreText(r: RestoreOpResult): string {
  return r.dryRun
    ? [
        `Would write ${formatBytes(r.bytesToWrite)} of snapshot ${r.snapshot} to ${r.target} (${r.targetKind}):`,
        ...r.areas.map((a) => `  ${a.kind === 'partition' ? `partition ${a.partition}` : 'raw area'} at ${a.offset}, ${formatBytes(a.size)} (${a.mode})`),
      ].join('\n')
    : `Restored snapshot ${r.snapshot} to ${r.target}: ${formatBytes(r.bytesWritten)} written, every chunk verified${r.gptRelocated ? '; GPT backup moved to the end of the larger disk' : ''}.`;
}
