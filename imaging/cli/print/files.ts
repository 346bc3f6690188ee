// What ls, inventory, changes and restore-files print without --json.
import { formatBytes } from '../../core/format';
import { describeInventoryDiff } from '../../inventory/inventory';
import type { ChangesResult, Inventory, ListDirResult, RestoreFilesResult, WireStat } from '../../protocol';

function modeString(st: WireStat): string {
  const t = st.type === 'dir' ? 'd' : st.type === 'symlink' ? 'l' : st.type === 'file' ? '-' : st.special === 'chardev' ? 'c' : st.special === 'blockdev' ? 'b' : st.special === 'fifo' ? 'p' : 's';
  const m = st.mode;
  const rwx = (shift: number, special: number, ch: string) =>
    (m & (4 << shift) ? 'r' : '-') + (m & (2 << shift) ? 'w' : '-') + (m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? 'x' : '-');
  return t + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

export function lsText(r: ListDirResult): string {
  return r.entries
    .map(
      (e) =>
        `${modeString(e)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(e.size).padStart(10)} ${new Date(e.mtime).toISOString().slice(0, 19).replace('T', ' ')} ${e.name}${e.type === 'dir' ? '/' : ''}${e.target !== undefined ? ` -> ${e.target}` : ''}`,
    )
    .join('\n');
}

export function inventoryText(inv: Inventory): string {
  return [
    `OS: ${inv.os.prettyName ?? `${inv.os.name} ${inv.os.version}`}${inv.os.kernel ? `, kernel ${inv.os.kernel}` : ''}${inv.bootMode ? `, ${inv.bootMode}` : ''}`,
    `Packages: ${inv.packages.length}${inv.packages.length ? ` (${[...new Set(inv.packages.map((p) => p.manager))].join(', ')})` : ''}`,
    ...inv.toolchains.map((t) => `  ${t.name} ${t.version}${t.path ? ` (${t.path})` : ''}`),
    `VS Code extensions: ${inv.vscodeExtensions.length}`,
    ...inv.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

export function changesText(r: ChangesResult): string {
  const t = r.files.totals;
  return [
    describeInventoryDiff(r.inventory),
    `Files (partition ${r.partition}): ${t.added} added, ${t.removed} removed, ${t.modified} modified, ${t.metadata} metadata only`,
    ...r.files.changes.map(
      (c) =>
        `  ${c.change === 'added' ? 'A' : c.change === 'removed' ? 'D' : c.change === 'modified' ? 'M' : 'm'} ${c.path}${c.type === 'dir' ? '/' : ''}${c.detail.length ? `  (${c.detail.join(', ')})` : ''}`,
    ),
    r.files.total > r.files.offset + r.files.changes.length ? `  … ${r.files.total - r.files.offset - r.files.changes.length} more (use --offset/--limit)` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

export function restoreFilesText(r: RestoreFilesResult): string {
  const t = r.totals;
  return [
    `${r.dryRun ? 'Would restore' : 'Restored'} to ${r.targetRoot}: ${t.create} created, ${t.replace} replaced, ${t.unchanged} unchanged${t.conflict ? `, ${t.conflict} conflicts` : ''}${t.skip ? `, ${t.skip} skipped` : ''}; ${formatBytes(r.dryRun ? r.bytesToWrite : r.bytesWritten)}${r.dryRun ? ' to write' : ' written'}.`,
    ...(r.dryRun ? r.entries.filter((e) => e.action !== 'unchanged').map((e) => `  ${e.action.padEnd(9)} ${e.dest}${e.reason ? `  (${e.reason})` : ''}`) : []),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}
