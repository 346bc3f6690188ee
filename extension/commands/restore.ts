// devsnap.restoreSnapshot: write a snapshot back onto a disk or disk image (whole disk or one
// partition) after a modal confirmation that names the target and what gets overwritten.
// Arguments `{ id, target, partition?, dryRun?, confirm: true }` skip every prompt.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { planShrink } from '../../imaging/snapshot/shrink-plan';
import type { DiskInfo, SnapshotSummary } from '../../imaging/protocol';
import { EngineError, RestoreResult } from '../engine';
import { formatBytes } from '../../imaging/core/format';
import { diskDescription, overwriteSummary, snapshotName, sortDisks, sourceLabel } from '../snapshotModel';
import { SnapshotNode } from '../snapshotTree';
import * as ui from '../ui';
import { hiddenVirtualCount, offeredDisks, virtualText } from '../drives';
import { CANCEL, runSteps, Step } from '../steps';
import { stepPick, withSteps } from '../stepInput';
import { checkAccessible, CommandContext, currentSnapshots, refId, reportError, requireRepository, resolveSnapshot, snapshotPickItems, SnapshotRef, withEngineProgress } from './common';

export interface RestoreArgs {
  id?: string;
  /** Block device or disk image file to write to. */
  target?: string;
  /** Restore only this partition (1-based) — written at the START of `target`, so `target` must
   *  be a partition device (e.g. /dev/sdb2) or an image file of that partition. Whole disk when omitted. */
  partition?: number;
  /** Check everything and report what would be written, without writing. */
  dryRun?: boolean;
  /** true: skip the modal confirmation (tests, scripts). */
  confirm?: boolean;
}

const RESTORE = 'Restore';
const DRY_RUN = 'Dry Run';
const SNAPSHOT_FIRST = 'Snapshot Target First';
const RESTORE_NOW = 'Restore…';

interface TargetItem extends vscode.QuickPickItem {
  target?: string;
  browse?: boolean;
}

export async function restoreSnapshot(ctx: CommandContext, arg?: SnapshotRef | RestoreArgs): Promise<RestoreResult | undefined> {
  const args: RestoreArgs = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as RestoreArgs) : {};
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    // Up to three steps, each skipped when its argument is given: 1. the snapshot, 2. the whole disk
    // or one partition (for a snapshot of several), 3. the target.
    const given = refId(arg) ?? args.id;
    let picked = given ? await resolveSnapshot(ctx, given, '', repo) : undefined;
    let disks: DiskInfo[] | undefined;
    const loadDisks = async (): Promise<DiskInfo[]> => {
      if (disks) return disks;
      try {
        disks = await ctx.engine().listDisks();
      } catch (err) {
        ctx.log(`Could not list disks: ${(err as Error).message}`, 'warn');
        disks = [];
      }
      return disks;
    };
    let partition = args.partition;
    let chosenTarget = args.target;
    // A partition restore writes the partition at the start of its target, so its target is a
    // partition (e.g. /dev/sdb2) or an image file of that partition alone.
    const asksScope = (s: SnapshotSummary) => args.partition === undefined && args.target === undefined && (s.partitions?.length ?? 0) > 1;
    const remaining = (s: SnapshotSummary | undefined) => (s ? Number(asksScope(s)) : 1) + Number(args.target === undefined);
    const askTarget: Step = async (n) => {
      chosenTarget = await pickTarget(ctx, picked!, await loadDisks(), partition, n, n);
    };
    const askScope: Step = async (n) => {
      const choice = await pickPartition(picked!, n, n + 1);
      partition = choice === 'all' ? undefined : choice;
      return askTarget;
    };
    const afterSnapshot = (s: SnapshotSummary): Step | undefined => (asksScope(s) ? askScope : args.target === undefined ? askTarget : undefined);
    const askSnapshot: Step = async (n) => {
      const all = await currentSnapshots(ctx);
      if (!all.length) {
        void ui.info(`There are no snapshots in ${repo} yet.`);
        throw CANCEL;
      }
      const most = Math.max(...all.map(remaining));
      picked = (await stepPick(snapshotPickItems(all), { title: 'devsnap: Restore Snapshot', placeholder: 'Which snapshot do you want to restore?', n, total: n + most })).snapshot;
      partition = args.partition;
      return afterSnapshot(picked!);
    };
    const first = picked ? afterSnapshot(picked) : askSnapshot;
    if (first && (await withSteps(() => runSteps(first))) === 'cancelled') return undefined;
    const snap = picked;
    const target = chosenTarget;
    if (!snap || !target) return undefined;
    await loadDisks();
    const allDisks = disks ?? [];
    // A disk image file that does not exist yet is created by the restore.
    const newFile = !target.startsWith('/dev/') && !fs.existsSync(target);
    if (newFile) {
      if (!fs.existsSync(path.dirname(target))) throw new EngineError('NOT_FOUND', `The folder ${path.dirname(target)} does not exist.`, 'Choose an existing folder for the new disk image.');
    } else {
      await checkAccessible(target, target.startsWith('/dev/') ? (partition !== undefined ? 'partition' : 'disk') : 'disk image', !args.dryRun, undefined, ctx.config().elevation !== 'none');
    }

    if (args.confirm !== true && !args.dryRun) {
      const targetDisk = allDisks.find((d) => d.path === target);
      const targetPart = allDisks.flatMap((d) => d.partitions).find((p) => p.path === target);
      const size = targetDisk?.size ?? targetPart?.size ?? (newFile ? undefined : fs.statSync(target).size);
      const targetText = `${target}${size !== undefined ? ` (${targetDisk?.model ? targetDisk.model + ', ' : ''}${formatBytes(size)})` : ''}`;
      const source = partition !== undefined ? `partition ${partition} of the snapshot` : 'the whole disk of the snapshot';
      let detail: string;
      if (newFile) detail = `This creates the image file ${target} from ${source}.`;
      else if (targetDisk)
        detail = `This overwrites ${overwriteSummary(targetDisk)} on ${targetText}, and its partition table, with ${source}.${
          partition === undefined && targetDisk.size < snap.source.size
            ? ` The disk is smaller than the snapshot's (${formatBytes(snap.source.size)}): its filesystems are shrunk to fit first, and nothing is written unless they fit.`
            : ''
        }`;
      else if (targetPart) detail = `This overwrites ${targetText}${targetPart.fs ? ` (${targetPart.fs}${targetPart.label ? ` “${targetPart.label}”` : ''})` : ''} with ${source}.`;
      else detail = `This overwrites all of ${targetText} with ${source}.`;
      const extras: string[] = [DRY_RUN];
      // A target that holds data can be snapshotted first, to go back to (not a file the restore creates).
      if (!newFile) extras.push(SNAPSHOT_FIRST);
      const choice = await ui.confirmDestructive(
        `Restore snapshot ${snapshotName(snap)} onto ${target}?`,
        newFile
          ? detail
          : `${detail} Anything written there since is lost. This cannot be undone.${extras.includes(SNAPSHOT_FIRST) ? ` "${SNAPSHOT_FIRST}" keeps what is there now in a new snapshot, then restores.` : ''}`,
        RESTORE,
        extras,
      );
      if (!choice) return undefined;
      if (choice === DRY_RUN) args.dryRun = true;
      if (choice === SNAPSHOT_FIRST) {
        const safety = await vscode.commands.executeCommand<SnapshotSummary | undefined>('devsnap.takeSnapshot', {
          source: target,
          label: `before restoring '${snap.label}' onto ${path.basename(target)}`,
        });
        if (!safety) {
          void ui.warn(`Nothing was restored onto ${target}: the snapshot of it was not taken.`);
          return undefined;
        }
      }
    }

    const verb = args.dryRun ? 'Checking restore of' : 'Restoring';
    const result = await withEngineProgress(`devsnap: ${verb} '${snap.label}' onto ${path.basename(target)}`, ['restore'], true, (onProgress, token) =>
      ctx.engine().restore({ repo, id: snap.id, target, partition, dryRun: args.dryRun }, onProgress, token),
    );
    if (args.dryRun) {
      // From the confirmation: the next step is the restore itself, asked again.
      void ui.info(`Dry run: restoring ${snapshotName(snap)} onto ${result.target} would write ${formatBytes(result.bytesWritten)}; nothing was written.`, RESTORE_NOW).then((c) => {
        if (c === RESTORE_NOW) void vscode.commands.executeCommand('devsnap.restoreSnapshot', { id: snap.id, target, partition });
      });
    } else void ui.info(`Restored ${snapshotName(snap)} onto ${result.target} (${formatBytes(result.bytesWritten)} written).`);
    return result;
  } catch (err) {
    await reportError(ctx, err, 'Restore', 'Restore cancelled. The target may be partly overwritten: restore again before using it.');
    return undefined;
  }
}

/** For a disk smaller than the snapshot's: whether its filesystems can shrink onto it (the engine's plan) or it is too small. */
function smallerDiskText(snap: SnapshotSummary, d: DiskInfo): string {
  if (d.size >= snap.source.size) return '';
  try {
    planShrink(snap.partitions, snap.source.table, d.size);
    return 'smaller: its filesystems will be shrunk to fit';
  } catch {
    return 'too small';
  }
}

async function pickTarget(ctx: CommandContext, snap: SnapshotSummary, disks: DiskInfo[], partition: number | undefined, n: number, total: number): Promise<string | undefined> {
  if (partition !== undefined) return pickPartitionTarget(snap, offeredDisks(disks, ctx.config().showVirtualDisks), partition, n, total);
  const cfg = ctx.config();
  const items: TargetItem[] = [];
  const seen = new Set<string>();
  const offered = offeredDisks(disks, cfg.showVirtualDisks);
  const usable = sortDisks(offered).filter((d) => !d.isSystem && d.kind !== 'file');
  if (usable.length) items.push({ label: 'Disks', kind: vscode.QuickPickItemKind.Separator });
  for (const d of usable) {
    seen.add(d.path);
    const mounted = [...d.mountpoints, ...d.partitions.flatMap((p) => p.mountpoints ?? [])];
    items.push({
      label: `$(${d.virtual ? 'file-binary' : 'server'}) ${d.path}${d.model ? ` — ${d.model}` : ''}`,
      description:
        [d.path === snap.source.path ? 'snapshot source' : '', d.virtual ? virtualText(d) : '', smallerDiskText(snap, d), mounted.length ? 'mounted' : ''].filter(Boolean).join(' · ') || undefined,
      detail: diskDescription(d) + (mounted.length ? ` · mounted at ${mounted.join(', ')}` : ''),
      target: d.path,
    });
  }
  const files = [...new Set([snap.source.path, ...cfg.diskImages, ...disks.filter((d) => d.kind === 'file').map((d) => d.path)])].filter((p) => !p.startsWith('/dev/') && !seen.has(p));
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
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Restore into a disk image file…', description: 'an existing or a new file', browse: true });
  const hidden = disks.filter((d) => d.isSystem).map((d) => d.path);
  const virtual = hiddenVirtualCount(disks, offered);
  const picked = await stepPick(items, {
    title: `devsnap: Restore '${snap.label}' (${sourceLabel(snap.source)}, ${formatBytes(snap.source.size)})`,
    placeholder: `Which disk should be overwritten?${hidden.length ? " The running system's drive is not offered." : ''}${virtual ? ` Loop and RAM devices are not shown (the Show Virtual Disks setting offers them).` : ''}`,
    n,
    total,
  });
  if (picked.browse) return browseImageFile(snap, `${snap.label}.img`);
  return picked.target;
}

function browseImageFile(snap: SnapshotSummary, name: string): Thenable<string | undefined> {
  const dir = snap.source.path.startsWith('/dev/') ? os.homedir() : path.dirname(snap.source.path);
  return ui.saveFile('Restore into which image file?', 'Restore Here', vscode.Uri.file(path.join(dir, name.replace(/[^\w.-]+/g, '-')))).then((uri) => uri?.fsPath);
}

/** Targets for one partition: partitions of other disks at least as large, or an image file. */
async function pickPartitionTarget(snap: SnapshotSummary, disks: DiskInfo[], partition: number, n: number, total: number): Promise<string | undefined> {
  const part = snap.partitions.find((p) => p.index === partition);
  const needed = part?.size ?? 0;
  const items: TargetItem[] = [];
  for (const d of sortDisks(disks).filter((x) => !x.isSystem)) {
    for (const p of d.partitions.filter((x) => x.path)) {
      items.push({
        label: `$(layers) ${p.path}`,
        description: [p.fs ?? p.typeName, p.label ? `“${p.label}”` : '', formatBytes(p.size), p.size < needed ? 'too small' : '', p.mountpoints?.length ? `mounted at ${p.mountpoints.join(', ')}` : '']
          .filter(Boolean)
          .join(' · '),
        detail: `partition ${p.index} of ${d.path}${d.model ? ` (${d.model})` : ''}`,
        target: p.path,
      });
    }
  }
  if (items.length) items.unshift({ label: 'Partitions', kind: vscode.QuickPickItemKind.Separator });
  items.push(
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Restore into an image file of the partition…', description: 'an existing or a new file', browse: true },
  );
  const picked = await stepPick(items, {
    title: `devsnap: Restore partition ${partition} of '${snap.label}' (${formatBytes(needed)})`,
    placeholder: 'Which partition should be overwritten? (partitions of the system drive are not offered)',
    n,
    total,
  });
  if (picked.browse) return browseImageFile(snap, `${snap.label}-partition${partition}.img`);
  return picked.target;
}

async function pickPartition(snap: SnapshotSummary, n: number, total: number): Promise<number | 'all'> {
  type Item = vscode.QuickPickItem & { value: number | 'all' };
  const items: Item[] = [
    { label: '$(server) Entire disk', description: `all ${snap.partitions.length} partitions and the partition table`, value: 'all' },
    ...[...snap.partitions]
      .sort((a, b) => a.index - b.index)
      .map((p) => ({
        label: `$(layers) Partition ${p.index}`,
        description: [p.fs ?? p.typeName, p.label ? `“${p.label}”` : '', formatBytes(p.size)].filter(Boolean).join(' · '),
        value: p.index,
      })),
  ];
  const picked = await stepPick(items, { title: `devsnap: Restore '${snap.label}'`, placeholder: 'Restore the whole disk or one partition?', n, total });
  return picked.value;
}
