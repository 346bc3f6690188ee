// Snapshot housekeeping: delete (forget + prune), rename (label), pin/unpin, apply retention.
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../imaging/protocol';
import { ForgetResult, PruneResult, retentionEnabled } from '../engine';
import { formatBytes } from '../../imaging/core/format';
import { snapshotName } from '../snapshotModel';
import { SnapshotNode } from '../snapshotTree';
import * as ui from '../ui';
import { CommandContext, refId, reportError, requireRepository, resolveSnapshot, withEngineProgress } from './common';
import { freedText } from '../storageUsage';

export interface DeleteArgs {
  id?: string;
  ids?: string[];
  /** true: skip the modal confirmation. */
  confirm?: boolean;
  /** false: only forget, do not prune the repository (default true). */
  prune?: boolean;
}

/**
 * devsnap.deleteSnapshot. From the tree VS Code passes (clicked item, selected items); from
 * code `{ id | ids, confirm: true }`.
 */
export async function deleteSnapshot(ctx: CommandContext, arg?: unknown, selection?: unknown): Promise<(ForgetResult & Partial<PruneResult>) | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const args: DeleteArgs = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as DeleteArgs) : {};
    let snaps: SnapshotSummary[] = [];
    const selected = Array.isArray(selection) ? selection.filter((n): n is SnapshotNode => n instanceof SnapshotNode) : [];
    if (selected.length > 1) snaps = selected.map((n) => n.snapshot);
    else if (args.ids?.length) {
      for (const id of args.ids) {
        const s = await resolveSnapshot(ctx, id, '', repo);
        if (s) snaps.push(s);
      }
    } else {
      const s = await resolveSnapshot(ctx, arg, 'Which snapshot do you want to delete?', repo);
      if (!s) return undefined;
      snaps = [s];
    }
    if (!snaps.length) return undefined;

    if (args.confirm !== true) {
      const freed = await ctx.storage?.freedByDeleting(
        repo,
        snaps.map((s) => s.id),
      );
      const pinned = snaps.filter((s) => s.pinned);
      const title = snaps.length === 1 ? `Delete snapshot ${snapshotName(snaps[0])}?` : `Delete ${snaps.length} snapshots?`;
      const detail = [
        snaps.length > 1 ? snaps.map(snapshotName).join(', ') + '.' : '',
        pinned.length ? `${pinned.length === 1 && snaps.length === 1 ? 'It is pinned and will be unpinned' : `${pinned.length} of them are pinned and will be unpinned`} first.` : '',
        `Data that no other snapshot uses is removed from the repository ${repo} and its space freed.`,
        freed !== undefined ? freedText(freed, snaps.length) : '',
        `You can no longer restore ${snaps.length === 1 ? 'this snapshot' : 'these snapshots'}. This cannot be undone.`,
      ]
        .filter(Boolean)
        .join(' ');
      if ((await ui.confirmDestructive(title, detail, 'Delete')) !== 'Delete') return undefined;
    }

    const result = await withEngineProgress<ForgetResult & Partial<PruneResult>>(
      `devsnap: Deleting ${snaps.length === 1 ? `'${snaps[0].label}'` : `${snaps.length} snapshots`}`,
      ['prune'],
      false,
      async (onProgress, token) => {
        // The engine refuses to forget pinned snapshots: the user confirmed, so unpin them first.
        for (const s of snaps.filter((x) => x.pinned)) await ctx.engine().pin(repo, s.id, false);
        const f = await ctx.engine().forget({ repo, ids: snaps.map((s) => s.id) });
        if (args.prune === false) return f;
        const p = await ctx.engine().prune(repo, onProgress, token);
        return { ...f, ...p };
      },
    );
    await ctx.tree.refresh();
    const freed = result.bytesFreed !== undefined ? `; ${formatBytes(result.bytesFreed)} freed` : '';
    void ui.info(`Deleted ${result.removed.length === 1 && snaps.length === 1 ? snapshotName(snaps[0]) : `${result.removed.length} snapshot(s)`}${freed}.`);
    return result;
  } catch (err) {
    await ctx.tree.refresh();
    await reportError(ctx, err, 'Delete');
    return undefined;
  }
}

export interface LabelArgs {
  id?: string;
  label?: string;
}

/** devsnap.labelSnapshot: `{ id, label }` or a tree item (then asks for the new label). */
export async function labelSnapshot(ctx: CommandContext, arg?: unknown): Promise<SnapshotSummary | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const snap = await resolveSnapshot(ctx, arg, 'Which snapshot do you want to rename?', repo);
    if (!snap) return undefined;
    let label = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as LabelArgs).label : undefined;
    if (label === undefined) {
      label = await ui.input({
        title: 'devsnap: Rename Snapshot',
        prompt: `New label for snapshot ${snapshotName(snap)}`,
        value: snap.label,
        validateInput: (v) => (v.trim() ? undefined : 'The label cannot be empty.'),
      });
      if (label === undefined) return undefined;
    }
    if (!label.trim()) throw new Error('The label cannot be empty.');
    const updated = await ctx.engine().label(repo, snap.id, label.trim());
    await ctx.tree.refresh();
    return updated;
  } catch (err) {
    await reportError(ctx, err, 'Rename');
    return undefined;
  }
}

export interface PinArgs {
  id?: string;
  /** true pins, false unpins; toggles when omitted. */
  pinned?: boolean;
}

/** devsnap.pinSnapshot / devsnap.unpinSnapshot (`forcePinned` false). */
export async function pinSnapshot(ctx: CommandContext, arg?: unknown, forcePinned?: boolean): Promise<SnapshotSummary | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const argPinned = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as PinArgs).pinned : undefined;
    const wanted = forcePinned ?? argPinned;
    const snap = await resolveSnapshot(ctx, refId(arg) ?? arg, wanted === false ? 'Which snapshot do you want to unpin?' : 'Which snapshot do you want to pin (or unpin)?', repo);
    if (!snap) return undefined;
    const pinned = wanted ?? !snap.pinned;
    const updated = await ctx.engine().pin(repo, snap.id, pinned);
    await ctx.tree.refresh();
    void vscode.window.setStatusBarMessage(`devsnap: ${pinned ? 'pinned' : 'unpinned'} ${snapshotName(snap)}`, 4000);
    return updated;
  } catch (err) {
    await reportError(ctx, err, 'Pin');
    return undefined;
  }
}

/** devsnap.applyRetention: forget what the retention settings do not keep, then prune. `{ confirm: true }` skips the question. */
export async function applyRetention(ctx: CommandContext, arg?: { confirm?: boolean }): Promise<(ForgetResult & Partial<PruneResult>) | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const policy = ctx.config().retention;
    if (!retentionEnabled(policy)) {
      void ui.info('No retention is configured: set devsnap.retention.keepLast (or keepDaily, keepWeekly, keepMonthly) first.', 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'devsnap.retention');
      });
      return undefined;
    }
    const rules = Object.entries(policy)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k.replace(/^keep/, 'keep ').toLowerCase()} ${n}`)
      .join(', ');
    if (arg?.confirm !== true) {
      const choice = await ui.confirmDestructive(
        `Apply the retention policy (${rules}) to ${repo}?`,
        'Snapshots the policy does not keep are deleted and their space freed. Pinned snapshots are always kept. This cannot be undone. "Dry Run" lists what would be deleted, and deletes nothing.',
        'Apply',
        ['Dry Run'],
      );
      if (!choice) return undefined;
      if (choice === 'Dry Run') return await retentionDryRun(ctx, repo);
    }
    const result = await withEngineProgress<ForgetResult & Partial<PruneResult>>('devsnap: Applying retention', ['prune'], false, async (onProgress, token) => {
      const f = await ctx.engine().forget({ repo, policy });
      if (!f.removed.length) return f;
      return { ...f, ...(await ctx.engine().prune(repo, onProgress, token)) };
    });
    await ctx.tree.refresh();
    void ui.info(`Retention: ${result.removed.length} snapshot(s) deleted, ${result.kept.length} kept${result.bytesFreed !== undefined ? `; ${formatBytes(result.bytesFreed)} freed` : ''}.`);
    return result;
  } catch (err) {
    await reportError(ctx, err, 'Applying retention');
    return undefined;
  }
}

/** What the retention policy would delete, said without deleting anything; "Apply…" asks again. */
async function retentionDryRun(ctx: CommandContext, repo: string): Promise<ForgetResult> {
  const policy = Object.fromEntries(Object.entries(ctx.config().retention).filter(([, n]) => n > 0));
  const r = await ctx.engine().call('forget', { repo, policy, dryRun: true });
  const name = (id: string) => {
    const s = ctx.tree.find(id);
    return s ? snapshotName(s) : id.slice(0, 8);
  };
  const text = r.removed.length
    ? `Dry run: the retention policy would delete ${r.removed.length} snapshot(s) (${r.removed.map(name).join(', ')}) and keep ${r.kept.length}; nothing was deleted.`
    : `Dry run: the retention policy keeps all ${r.kept.length} snapshot(s); nothing would be deleted.`;
  void ui.info(text, ...(r.removed.length ? ['Apply…'] : [])).then((c) => {
    if (c) void vscode.commands.executeCommand('devsnap.applyRetention');
  });
  return r;
}
