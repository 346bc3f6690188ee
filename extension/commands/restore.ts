// devsnap.restoreSnapshot: write a snapshot back onto a disk or disk image (whole disk or one
// partition) after a modal confirmation that names the target and what gets overwritten.
// Arguments `{ id, target, partition?, dryRun?, confirm: true }` skip every prompt.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskInfo, SnapshotSummary } from '../../imaging/protocol';
import type { RestoreResult } from '../engine';
import { formatBytes } from '../format';
import { diskDescription, overwriteSummary, snapshotName, sortDisks, sourceLabel } from '../snapshotModel';
import { SnapshotNode } from '../snapshotTree';
import * as ui from '../ui';
import { checkAccessible, CommandContext, reportError, requireRepository, resolveSnapshot, SnapshotRef, withEngineProgress } from './common';

export interface RestoreArgs {
  id?: string;
  /** Block device or disk image file to write to. */
  target?: string;
  /** Restore only this partition (1-based); the whole disk when omitted. */
  partition?: number;
  /** Check everything and report what would be written, without writing. */
  dryRun?: boolean;
  /** true: skip the modal confirmation (tests, scripts). */
  confirm?: boolean;
}

interface TargetItem extends vscode.QuickPickItem {
  target?: string;
  browse?: boolean;
}

export async function restoreSnapshot(ctx: CommandContext, arg?: SnapshotRef | RestoreArgs): Promise<RestoreResult | undefined> {
  const args: RestoreArgs = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as RestoreArgs) : {};
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const snap = await resolveSnapshot(ctx, arg, 'Which snapshot do you want to restore?', repo);
    if (!snap) return undefined;

    let disks: DiskInfo[] = [];
    try {
      disks = await ctx.engine().listDisks();
    } catch (err) {
      ctx.log(`Could not list disks: ${(err as Error).message}`);
    }
    const interactive = args.target === undefined;
    const target = args.target ?? (await pickTarget(ctx, snap, disks));
    if (!target) return undefined;
    await checkAccessible(target, target.startsWith('/dev/') ? 'disk' : 'disk image', !args.dryRun);
    const targetDisk = disks.find((d) => d.path === target);

    let partition = args.partition;
    if (partition === undefined && interactive && (snap.partitions?.length ?? 0) > 1) {
      const choice = await pickPartition(snap);
      if (choice === undefined) return undefined;
      partition = choice === 'all' ? undefined : choice;
    }

    if (args.confirm !== true && !args.dryRun) {
      const what = overwriteSummary(targetDisk, partition);
      const targetText = targetDisk ? `${target} (${targetDisk.model ? targetDisk.model + ', ' : ''}${formatBytes(targetDisk.size)})` : target;
      const ok = await ui.confirm(
        `Restore snapshot ${snapshotName(snap)} onto ${target}?`,
        `This overwrites ${what} on ${targetText} with the snapshot's ${partition !== undefined ? `partition ${partition}` : 'whole disk'}. ` +
          `Anything written there since the snapshot is lost. This cannot be undone.`,
        'Restore',
      );
      if (!ok) return undefined;
    }

    const verb = args.dryRun ? 'Checking restore of' : 'Restoring';
    const result = await withEngineProgress(`devsnap: ${verb} '${snap.label}' onto ${path.basename(target)}`, ['restore'], true, (onProgress, token) =>
      ctx.engine().restore({ repo, id: snap.id, target, partition, dryRun: args.dryRun }, onProgress, token),
    );
    void ui.info(args.dryRun
      ? `Dry run: restoring ${snapshotName(snap)} onto ${result.target} would write ${formatBytes(result.bytesWritten)}.`
      : `Restored ${snapshotName(snap)} onto ${result.target} (${formatBytes(result.bytesWritten)} written).`);
    return result;
  } catch (err) {
    await reportError(ctx, err, 'Restore', 'Restore cancelled. The target may be partly overwritten: restore again before using it.');
    return undefined;
  }
}

async function pickTarget(ctx: CommandContext, snap: SnapshotSummary, disks: DiskInfo[]): Promise<string | undefined> {
  const cfg = ctx.config();
  const items: TargetItem[] = [];
  const seen = new Set<string>();
  const usable = sortDisks(disks).filter((d) => !d.isSystem && d.kind !== 'file');
  if (usable.length) items.push({ label: 'Disks', kind: vscode.QuickPickItemKind.Separator });
  for (const d of usable) {
    seen.add(d.path);
    const mounted = [...d.mountpoints, ...d.partitions.flatMap((p) => p.mountpoints ?? [])];
    items.push({
      label: `$(server) ${d.path}${d.model ? ` — ${d.model}` : ''}`,
      description: [d.path === snap.source.path ? 'snapshot source' : '', d.size < snap.source.size ? 'too small' : '', mounted.length ? 'mounted' : ''].filter(Boolean).join(' · ') || undefined,
      detail: diskDescription(d) + (mounted.length ? ` · mounted at ${mounted.join(', ')}` : ''),
      target: d.path,
    });
  }
  const files = [...new Set([snap.source.path, ...cfg.diskImages, ...disks.filter((d) => d.kind === 'file').map((d) => d.path)])]
    .filter((p) => !p.startsWith('/dev/') && !seen.has(p));
  if (files.length) items.push({ label: 'Disk images', kind: vscode.QuickPickItemKind.Separator });
  for (const p of files) {
    let detail = 'does not exist';
    try {
      detail = `${formatBytes(fs.statSync(p).size)} disk image`;
    } catch {
      /* shown as missing */
    }
    items.push({ label: `$(file-binary) ${path.basename(p)}`, description: [path.dirname(p), p === snap.source.path ? 'snapshot source' : ''].filter(Boolean).join(' · '), detail, target: p });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Browse for a disk image file…', browse: true });
  const hidden = disks.filter((d) => d.isSystem).map((d) => d.path);
  const picked = await ui.pick(items, {
    title: `devsnap: Restore '${snap.label}' (${sourceLabel(snap.source)}, ${formatBytes(snap.source.size)})`,
    placeHolder: `Which disk should be overwritten?${hidden.length ? ` (the system drive ${hidden.join(', ')} is not offered: it cannot be restored while it runs)` : ''}`,
  });
  if (!picked) return undefined;
  if (picked.browse) {
    const uris = await ui.openFile('Restore onto which disk image file?', 'Restore Here');
    return uris?.[0]?.fsPath;
  }
  return picked.target;
}

async function pickPartition(snap: SnapshotSummary): Promise<number | 'all' | undefined> {
  type Item = vscode.QuickPickItem & { value: number | 'all' };
  const items: Item[] = [
    { label: '$(server) Entire disk', description: `all ${snap.partitions.length} partitions and the partition table`, value: 'all' },
    ...[...snap.partitions].sort((a, b) => a.index - b.index).map((p) => ({
      label: `$(layers) Partition ${p.index}`,
      description: [p.fs ?? p.typeName, p.label ? `“${p.label}”` : '', formatBytes(p.size)].filter(Boolean).join(' · '),
      value: p.index,
    })),
  ];
  const picked = await ui.pick(items, { title: `devsnap: Restore '${snap.label}'`, placeHolder: 'Restore the whole disk or one partition?' });
  return picked?.value;
}
