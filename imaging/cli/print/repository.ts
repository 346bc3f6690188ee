// What init, forget, prune, unlock, export and import print without --json.
import { formatBytes } from '../../core/format';
import type { ForgetOpResult, PruneOpResult } from '../../protocol';

export const initText = (dir: string, encrypted: boolean) => `Created repository ${dir}${encrypted ? ' (encrypted)' : ''}.`;

export const forgetText = (r: ForgetOpResult) =>
  `${r.dryRun ? 'Would remove' : 'Removed'} ${r.removed.length} snapshot(s)${r.removed.length ? `: ${r.removed.join(', ')}` : ''}; ${r.kept.length} kept.${r.prune ? ` Pruned ${formatBytes(r.prune.bytesFreed)}.` : ''}`;

export const pruneText = (r: PruneOpResult) =>
  `${r.dryRun ? 'Would free' : 'Freed'} ${formatBytes(r.bytesFreed)}: ${r.packsRemoved} pack(s) removed (${r.packsRewritten} rewritten), ${r.tempFilesRemoved} leftover file(s).`;

export const unlockText = (removed: number) => `Removed ${removed} lock(s).`;

export const exportText = (id: string, file: string) => `Exported snapshot ${id} to ${file}.`;

export const importText = (file: string) => `Imported ${file}.`;
