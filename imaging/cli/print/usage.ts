// What `devsnap stats` prints without --json.
import { formatBytes } from '../../core/format';
import { oneLine, table } from '../output';
import type { UsageResult } from '../../protocol';

export function usageText(r: UsageResult): string {
  const t = r.total;
  const lines: string[] = [];
  if (r.snapshots.length) {
    lines.push(
      table([
        ['ID', 'CREATED', 'LABEL', 'ONLY IN IT (FREED BY DELETING IT)', 'REFERENCED'],
        ...r.snapshots.map((s) => [s.id, s.created.slice(0, 16).replace('T', ' '), s.label, formatBytes(s.uniqueBytes), formatBytes(s.referencedBytes)]),
      ]),
      '',
    );
  } else lines.push('No snapshots yet.', '');
  lines.push(
    `Repository: ${formatBytes(t.storedBytes)} stored in ${t.chunks} chunk(s); ${formatBytes(t.sharedBytes)} shared by two or more snapshots; ${formatBytes(t.unreferencedBytes)} used by none (\`devsnap prune\` frees it).`,
  );
  if (r.forget) lines.push(`Deleting ${r.forget.ids.join(', ')} (forget, then prune) frees ${formatBytes(r.forget.freedBytes)} (${r.forget.chunks} chunk(s) no other snapshot uses).`);
  if (r.missingChunks) lines.push(`${r.missingChunks} chunk reference(s) are missing from the repository: run \`devsnap check\`.`);
  for (const d of r.damaged) lines.push(`Snapshot ${d.id} cannot be read (${oneLine(d.message)}): data it shares may be counted as unique to others.`);
  return lines.join('\n');
}
