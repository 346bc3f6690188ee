// devsnap.verifySnapshot: re-reads a snapshot's chunks and checks their hashes, with progress;
// reports the first damage found. Arguments: a tree item, `{ id }`, or `{ all: true }`.
import * as vscode from 'vscode';
import type { Damage, VerifyResult } from '../engine';
import { formatBytes } from '../../imaging/core/format';
import { snapshotName } from '../snapshotModel';
import * as ui from '../ui';
import { CommandContext, currentSnapshots, refId, reportError, requireRepository, resolveSnapshot, SHOW_OUTPUT, snapshotPickItems, SnapshotPickItem, withEngineProgress } from './common';

export interface VerifyArgs {
  id?: string;
  /** Verify every snapshot in the repository. */
  all?: boolean;
}

export function describeDamage(d: Damage): string {
  const where = d.partition !== null && d.partition !== undefined ? `partition ${d.partition}, ` : '';
  return `${where}${formatBytes(d.length)} at offset ${formatBytes(d.offset)} (${d.offset}): ${d.message}`;
}

export async function verifySnapshot(ctx: CommandContext, arg?: unknown): Promise<VerifyResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    let id = refId(arg);
    let all = !!(arg && typeof arg === 'object' && (arg as VerifyArgs).all);
    if (!id && !all) {
      const snapshots = await currentSnapshots(ctx);
      if (!snapshots.length) {
        void ui.info(`There are no snapshots in ${repo} to verify.`);
        return undefined;
      }
      const items: (SnapshotPickItem & { all?: boolean })[] = [
        { label: '$(checklist) All snapshots', description: `${snapshots.length} in ${repo}`, all: true },
        { label: '', kind: vscode.QuickPickItemKind.Separator },
        ...snapshotPickItems(snapshots),
      ];
      const picked = await ui.pick(items, { title: 'devsnap: Verify', placeHolder: 'Which snapshot do you want to verify?' });
      if (!picked) return undefined;
      all = !!picked.all;
      id = picked.snapshot?.id;
    }
    const snap = id ? await resolveSnapshot(ctx, id, '', repo) : undefined;
    const name = snap ? snapshotName(snap) : 'all snapshots';
    const r = await withEngineProgress(`devsnap: Verifying ${name}`, ['verify'], true, (onProgress, token) => ctx.engine().verify({ repo, id: snap?.id }, onProgress, token));
    await ctx.tree.refresh();
    const damaged = r.snapshots.filter((s) => !s.ok);
    if (r.ok && !damaged.length) {
      void ui.info(snap ? `Snapshot ${name} verified: no damage found.` : `All ${r.snapshots.length} snapshots verified: no damage found.`);
    } else {
      const first = damaged.find((s) => s.damage.length) ?? damaged[0];
      const firstSnap = first ? ctx.tree.find(first.id) : undefined;
      const total = damaged.reduce((n, s) => n + s.damage.length, 0);
      for (const s of damaged) for (const d of s.damage) ctx.log(`  damaged: snapshot ${s.id}: ${describeDamage(d)}`);
      for (const s of damaged) if (s.error) ctx.log(`  damaged: snapshot ${s.id}: ${s.error}`);
      const whose = firstSnap ? `Snapshot ${snapshotName(firstSnap)}` : first?.id ? `Snapshot ${first.id}` : 'The repository';
      const detail = first?.damage[0] ? `: ${describeDamage(first.damage[0])}` : first?.error ? `: ${first.error}` : '.';
      const more = total > 1 ? ` (${total - 1} more damaged range${total > 2 ? 's' : ''}${damaged.length > 1 ? ` in ${damaged.length} snapshots` : ''}; see the output)` : '';
      void ui.error(`${whose} is damaged${detail}${more}`, SHOW_OUTPUT).then((c) => {
        if (c === SHOW_OUTPUT) ctx.output.show(true);
      });
    }
    return r;
  } catch (err) {
    await reportError(ctx, err, 'Verify', 'Verify cancelled.');
    return undefined;
  }
}
