// devsnap.compareSnapshots and devsnap.openPanel. Until the compare panel (a later issue) lands,
// Compare runs the engine's diff and reports a summary (details in the output channel), and
// Open Panel focuses the Snapshots view.
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../imaging/protocol';
import type { DiffResult } from '../engine';
import { formatBytes } from '../format';
import { compareNewestFirst, previousSnapshot, snapshotName } from '../snapshotModel';
import { SnapshotNode } from '../snapshotTree';
import * as ui from '../ui';
import { CommandContext, currentSnapshots, reportError, requireRepository, resolveSnapshot, SHOW_OUTPUT, snapshotPickItems } from './common';

export interface CompareArgs {
  /** The older snapshot. */
  a?: string;
  /** The newer snapshot. */
  b?: string;
}

export interface CompareResult {
  a: SnapshotSummary;
  b: SnapshotSummary;
  diff: DiffResult;
}

/** A tree item compares with its previous snapshot; `{ a, b }` compares those; else asks. */
export async function compareSnapshots(ctx: CommandContext, arg?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    let a: SnapshotSummary | undefined;
    let b: SnapshotSummary | undefined;
    const args = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as CompareArgs) : {};
    const all = await currentSnapshots(ctx);
    if (arg instanceof SnapshotNode || typeof arg === 'string' || (args.b && !args.a)) {
      b = await resolveSnapshot(ctx, arg instanceof SnapshotNode || typeof arg === 'string' ? arg : args.b, '', repo);
      if (!b) return undefined;
      a = previousSnapshot(all, b);
      if (!a) {
        void ui.info(`Snapshot ${snapshotName(b)} is the oldest of its disk: there is nothing before it to compare with.`);
        return undefined;
      }
    } else if (args.a && args.b) {
      a = await resolveSnapshot(ctx, args.a, '', repo);
      b = await resolveSnapshot(ctx, args.b, '', repo);
    } else {
      if (all.length < 2) {
        void ui.info('Comparing needs at least two snapshots.');
        return undefined;
      }
      const first = await ui.pick(snapshotPickItems(all), { title: 'devsnap: Compare Snapshots (1/2)', placeHolder: 'Compare which snapshot…' });
      if (!first?.snapshot) return undefined;
      const prev = previousSnapshot(all, first.snapshot);
      const others = snapshotPickItems(all.filter((s) => s.id !== first.snapshot!.id));
      if (prev) others.sort((x, y) => Number(y.snapshot?.id === prev.id) - Number(x.snapshot?.id === prev.id));
      const second = await ui.pick(others, { title: 'devsnap: Compare Snapshots (2/2)', placeHolder: `…with which snapshot?${prev ? ' (the previous one of the same disk is first)' : ''}` });
      if (!second?.snapshot) return undefined;
      [a, b] = [first.snapshot, second.snapshot].sort(compareNewestFirst).reverse();
    }
    if (!a || !b) return undefined;
    const older = a;
    const newer = b;
    const diff = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `devsnap: Comparing '${older.label}' with '${newer.label}'`, cancellable: true }, (_p, token) =>
      ctx.engine().diff(repo, older.id, newer.id, token),
    );
    const parts = diff.partitions ?? [];
    const changed = parts.filter((p) => p.changedBytes > 0);
    const total = parts.reduce((n, p) => n + p.changedBytes, 0);
    ctx.log(`Compare ${older.id} (${older.label}) → ${newer.id} (${newer.label}):`);
    for (const p of parts) {
      ctx.log(`  ${p.index === null ? 'outside partitions' : `partition ${p.index}`}: ${formatBytes(p.changedBytes)} changed in ${p.ranges.length} range(s)`);
    }
    const summary = total === 0
      ? `No changes between ${snapshotName(older)} and ${snapshotName(newer)}.`
      : `${formatBytes(total)} changed between ${snapshotName(older)} and ${snapshotName(newer)}, in ${changed.length} of ${parts.length} areas (${changed.map((p) => (p.index === null ? 'outside partitions' : `partition ${p.index}`)).join(', ')}).`;
    void ui.info(summary, SHOW_OUTPUT).then((c) => {
      if (c === SHOW_OUTPUT) ctx.output.show(true);
    });
    return { a: older, b: newer, diff };
  } catch (err) {
    await reportError(ctx, err, 'Compare', 'Compare cancelled.');
    return undefined;
  }
}

export async function openPanel(ctx: CommandContext): Promise<void> {
  await vscode.commands.executeCommand('devsnap.snapshots.focus');
  void ui.info('The snapshots panel with its visual comparison is coming with the compare panel. Meanwhile, use the Snapshots view and "devsnap: Compare Snapshots…".');
  void ctx;
}
