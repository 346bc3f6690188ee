// devsnap.undoUpgrade: puts back, in place, every file that changed between two snapshots of a
// mounted filesystem (the running system's root, usually): the engine's `undo` (imaging/files/undo.ts).
// A dry run first; a path changed since the second snapshot stops it there (nothing is changed);
// otherwise a modal names what will be restored and removed (Cancel is focused), a safety
// snapshot of the disk is taken, then the undo runs with progress and says what it cannot undo.
// Arguments `{ before, after, target?, partition?, safetySnapshot?: false, confirm: true, dryRun? }`
// skip every prompt (tests, scripts).
import * as vscode from 'vscode';
import type { SnapshotSummary, UndoResult } from '../../imaging/protocol';
import { formatBytes } from '../../imaging/core/format';
import { EngineError } from '../engine';
import { compareNewestFirst, snapshotName, sourceKey } from '../snapshotModel';
import { runSteps, Step } from '../steps';
import { stepPick, withSteps } from '../stepInput';
import * as ui from '../ui';
import { CommandContext, currentSnapshots, reportError, requireRepository, resolveSnapshot, snapshotPickItems, withEngineProgress } from './common';

export interface UndoArgs {
  /** The snapshot taken before the upgrade (what is put back). */
  before?: string;
  /** The one taken after it (what the filesystem must still hold for a path to be undone). */
  after?: string;
  /** Where the filesystem is mounted (default: found from the disks; '/' for the running system). */
  target?: string;
  partition?: number;
  /** false: no safety snapshot of the disk first (default: one is taken). */
  safetySnapshot?: boolean;
  /** true: skip the modal confirmation. */
  confirm?: boolean;
  /** Only plan: resolves with the dry run's result. */
  dryRun?: boolean;
}

const TITLE = 'devsnap: Undo Upgrade';
const SHOW_LIST = 'Show List';
const SHOW_DETAILS = 'Show Details';
const EXT_FS = /^ext[234]$/;

export async function undoUpgrade(ctx: CommandContext, arg?: UndoArgs): Promise<UndoResult | undefined> {
  const args: UndoArgs = arg && typeof arg === 'object' ? arg : {};
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    // Two steps, each skipped when its argument is given: 1. the snapshot taken after the upgrade,
    // 2. the one taken before it (offered: the older ones of the same disk).
    let afterSnap = args.after ? await resolveSnapshot(ctx, args.after, '', repo) : undefined;
    let beforeSnap = args.before ? await resolveSnapshot(ctx, args.before, '', repo) : undefined;
    const total = Number(!args.after) + Number(!args.before);
    const all = await currentSnapshots(ctx);
    const askBefore: Step = async (n) => {
      const a = afterSnap!;
      const older = all.filter((s) => s.id !== a.id && sourceKey(s) === sourceKey(a) && compareNewestFirst(s, a) > 0);
      const items = snapshotPickItems(older.length ? older : all.filter((s) => s.id !== a.id));
      beforeSnap = (await stepPick(items, { title: TITLE, placeholder: `Which snapshot was taken before the upgrade (older than ${snapshotName(a)})?`, n, total })).snapshot;
    };
    const askAfter: Step = async (n) => {
      afterSnap = (await stepPick(snapshotPickItems(all), { title: TITLE, placeholder: 'Which snapshot was taken after the upgrade?', n, total })).snapshot;
      return beforeSnap ? undefined : askBefore;
    };
    const first = !afterSnap ? askAfter : !beforeSnap ? askBefore : undefined;
    if (first && (await withSteps(() => runSteps(first))) === 'cancelled') return undefined;
    const after = afterSnap;
    const before = beforeSnap;
    if (!after || !before) return undefined;
    const partition = args.partition ?? rootPartition(after);
    const target = args.target ?? (await mountedAt(ctx, after, partition));
    if (!target) return undefined;
    const req = { repo, before: before.id, after: after.id, target, ...(partition !== undefined ? { partition } : {}) };

    const plan = await withEngineProgress('Undo: comparing the snapshots with the disk…', ['restore-files'], true, (progress, token) =>
      ctx.engine().call('undo', { ...req, dryRun: true }, { progress, token }),
    );
    if (args.dryRun) return plan;
    const t = plan.totals;
    if (t.conflict) {
      void ui
        .warn(
          `Nothing was undone: ${t.conflict} path${t.conflict > 1 ? 's' : ''} on ${target} changed after snapshot ${snapshotName(after)} was taken, and undoing would overwrite that. Show List names them. Copy away what you want to keep, put those paths back as they were in that snapshot (the compare panel's Files tab restores single files to their original place), then undo again.`,
          SHOW_LIST,
        )
        .then((c) => (c === SHOW_LIST ? showText(undoListing(plan)) : undefined));
      return undefined;
    }
    if (!t.restore && !t.remove) {
      void ui.info(`Nothing to undo on ${target}: every file is already as in snapshot ${snapshotName(before)}.`);
      return plan;
    }
    const safety = args.safetySnapshot !== false;
    if (args.confirm !== true) {
      const detail = [
        `${t.restore} file${t.restore === 1 ? '' : 's'} restored (${formatBytes(plan.bytesToWrite)}), ${t.remove} removed, on ${target}.`,
        plan.excluded.length ? `Left as they are: ${plan.excluded.join(', ')}.` : '',
        safety ? `A snapshot of ${after.source.path} is taken first, so that this undo can itself be undone.` : '',
        ...plan.cannotUndo,
      ]
        .filter(Boolean)
        .join('\n\n');
      const action = safety ? 'Snapshot, Then Undo' : 'Undo';
      if ((await ui.confirmDestructive(`Undo the changes from ${snapshotName(before)} to ${snapshotName(after)}?`, detail, action)) !== action) return undefined;
    }
    if (safety) {
      const taken = await vscode.commands.executeCommand<SnapshotSummary | undefined>('devsnap.takeSnapshot', {
        source: after.source.path,
        label: `before undo of ${after.label || after.id.slice(0, 12)}`,
        confirm: true,
      });
      if (!taken) throw new EngineError('CANCELLED', 'The safety snapshot was not taken, so nothing was undone.');
    }
    const r = await withEngineProgress(`Undoing the changes on ${target}`, ['restore-files'], true, (progress, token) => ctx.engine().call('undo', req, { progress, token }));
    await ctx.tree.refresh();
    ctx.log(undoListing(r));
    const restart = r.cannotUndo.length ? ' Programs running now keep what they loaded until they restart: see the details.' : '';
    void ui
      .info(`Undone on ${target}: ${r.totals.restore} restored, ${r.totals.remove} removed${r.totals.skip ? `, ${r.totals.skip} left (see the details)` : ''}.${restart}`, SHOW_DETAILS)
      .then((c) => (c === SHOW_DETAILS ? showText(undoListing(r)) : undefined));
    return r;
  } catch (err) {
    await reportError(ctx, err, 'Undo');
    return undefined;
  }
}

/** The partition the engine undoes by default: the largest ext one (the root). */
function rootPartition(s: SnapshotSummary): number | undefined {
  const ext = s.partitions.filter((p) => EXT_FS.test(p.fs ?? '')).sort((a, b) => b.size - a.size);
  return ext[0]?.index;
}

/** Where the snapshot's filesystem is mounted now: from the disks (the running system's at '/'), else asked. */
async function mountedAt(ctx: CommandContext, s: SnapshotSummary, partition: number | undefined): Promise<string | undefined> {
  try {
    const disks = await ctx.engine().listDisks();
    const disk = disks.find((d) => d.path === s.source.path);
    const part = disk?.partitions.find((p) => p.index === partition);
    const mount = part?.mountpoints?.[0] ?? (disk?.table === 'none' ? disk.mountpoints[0] : undefined);
    if (mount) return mount;
  } catch (err) {
    ctx.log(`Could not list disks: ${(err as Error).message}`);
  }
  const picked = await ui.openFolder(`Where is the filesystem of ${snapshotName(s)} (${s.source}) mounted?`, 'Undo Here');
  return picked?.[0]?.fsPath;
}

function undoListing(r: UndoResult): string {
  const lines = r.entries.filter((e) => e.action !== 'unchanged').map((e) => `${e.action.padEnd(9)} ${e.path}${e.type === 'dir' ? '/' : ''}  (${e.change}${e.reason ? `: ${e.reason}` : ''})`);
  return [
    `Undo of the changes from snapshot ${r.before} to ${r.after} on ${r.target} (partition ${r.partition})${r.dryRun ? ': plan' : ''}`,
    `${r.totals.restore} restored, ${r.totals.remove} removed, ${r.totals.unchanged} already as before, ${r.totals.conflict} conflicts, ${r.totals.skip} left`,
    '',
    ...lines,
    ...(r.excluded.length ? ['', `Left as they are: ${r.excluded.join(', ')}`] : []),
    ...r.cannotUndo.map((s) => `\nNot undone: ${s}`),
    ...r.warnings.map((w) => `\nWarning: ${w}`),
  ].join('\n');
}

async function showText(content: string): Promise<void> {
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content, language: 'plaintext' }), { preview: true });
}
