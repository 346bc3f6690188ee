// What verify (and its comparison with a disk) and check print without --json.
import { formatBytes } from '../../core/format';
import { describeDamage } from '../../snapshot/verify';
import { oneLine } from '../output';
import type { CheckOpResult, DiskComparison, VerifyOpResult } from '../../protocol';

function diskText(d: DiskComparison): string[] {
  const where = (x: DiskComparison['differences'][number]) => `  ${x.partition === null ? 'raw area' : `partition ${x.partition}`}: ${formatBytes(x.length)} at byte ${x.offset}`;
  return [
    ...d.warnings.map((w) => `warning: ${w}`),
    d.equal
      ? `${oneLine(d.source)} holds what the snapshot holds (${formatBytes(d.bytesCompared)} in use compared).`
      : `${oneLine(d.source)} differs from the snapshot in ${formatBytes(d.differingBytes)} of ${formatBytes(d.bytesCompared)} in use:`,
    ...d.differences.map(where),
  ];
}

export function verifyText(r: VerifyOpResult): string {
  return [
    `Checked ${r.chunksChecked} chunks (${formatBytes(r.bytesChecked)}).`,
    ...r.snapshots.map((s) =>
      s.ok
        ? `  ${s.id} "${oneLine(s.label)}": ok`
        : s.error
          ? `  ${s.id} "${oneLine(s.label)}": DAMAGED manifest: ${s.error}`
          : `  ${s.id} "${oneLine(s.label)}": DAMAGED\n${s.damage.map((d) => `    ${describeDamage(d)}`).join('\n')}`,
    ),
    ...(r.disk ? diskText(r.disk) : []),
  ].join('\n');
}

export function checkText(r: CheckOpResult): string {
  return [
    `${r.snapshots} snapshots, ${r.packs} packs, ${r.chunks} chunks.`,
    ...r.errors.map((e) => `error: ${e}`),
    ...r.warnings.map((w) => `note: ${w}`),
    r.ok ? 'No errors found.' : 'Errors found.',
  ].join('\n');
}
