// What `devsnap undo` prints without --json.
import { formatBytes } from '../../core/format';
import type { UndoResult } from '../../protocol';

export function undoText(r: UndoResult): string {
  const t = r.totals;
  // A dry run lists everything to do; a real undo what it left or forced (the entries with a reason).
  const listed = r.entries.filter((e) => (r.dryRun ? e.action !== 'unchanged' : !!e.reason));
  return [
    `${r.dryRun ? 'Would undo' : 'Undid'} the changes from snapshot ${r.before} to ${r.after} on ${r.target} (partition ${r.partition}): ${t.restore} restored, ${t.remove} removed, ${t.unchanged} already as before${t.conflict ? `, ${t.conflict} changed since ${r.after} (conflicts)` : ''}${t.skip ? `, ${t.skip} not undone` : ''}; ${formatBytes(r.dryRun ? r.bytesToWrite : r.bytesWritten)}${r.dryRun ? ' to write' : ' written'}.`,
    ...listed.map((e) => `  ${e.action.padEnd(9)} ${e.path}${e.type === 'dir' ? '/' : ''}  (${e.change}${e.reason ? `: ${e.reason}` : ''})`),
    r.excluded.length ? `Left as they are: ${r.excluded.join(', ')}.` : '',
    ...r.cannotUndo.map((s) => `note: ${s}`),
    ...r.warnings.map((w) => `warning: ${w}`),
  ]
    .filter(Boolean)
    .join('\n');
}
