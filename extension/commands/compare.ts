// devsnap.compareSnapshots, devsnap.compareWithPrevious, devsnap.compareWith and devsnap.openPanel:
// all open the compare & restore panel (extension/panel/comparePanel.ts), on the pair they name.
//   compareSnapshots   { a, b } (older, newer) | { b } | item (= with previous) | nothing (the newest
//                      snapshot and the one before it of the same disk)
//   compareWithPrevious item | { id }
//   compareWith        item | { id }: asks which snapshot to compare it with
//   openPanel          reveals the panel (a new one shows the newest pair)
import type { SnapshotSummary } from '../../imaging/protocol';
import { ComparePanel } from '../panel/comparePanel';
import { compareNewestFirst, previousSnapshot, snapshotName } from '../snapshotModel';
import { SnapshotNode } from '../snapshotTree';
import * as ui from '../ui';
import type { SnapshotDocumentProvider } from '../virtualDocs';
import { CommandContext, currentSnapshots, refId, reportError, requireRepository, resolveSnapshot, snapshotPickItems } from './common';

export interface CompareArgs {
  /** The older snapshot. */
  a?: string;
  /** The newer snapshot. */
  b?: string;
}

export interface CompareResult {
  a: SnapshotSummary;
  b: SnapshotSummary;
  panel: ComparePanel;
}

/** The pair a new panel shows: the newest snapshot and the one before it (of the same disk if there is one). */
export function defaultPair(all: readonly SnapshotSummary[]): { a: SnapshotSummary; b: SnapshotSummary } | undefined {
  const sorted = [...all].sort(compareNewestFirst);
  const b = sorted[0];
  if (!b) return undefined;
  const a = previousSnapshot(all, b) ?? sorted[1];
  return a ? { a, b } : undefined;
}

const older = (x: SnapshotSummary, y: SnapshotSummary) => [x, y].sort(compareNewestFirst).reverse() as [SnapshotSummary, SnapshotSummary];

export async function compareSnapshots(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const all = await currentSnapshots(ctx);
    const args = arg && typeof arg === 'object' && !(arg instanceof SnapshotNode) ? (arg as CompareArgs) : {};
    let a: SnapshotSummary | undefined;
    let b: SnapshotSummary | undefined;
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
      const pair = defaultPair(all);
      if (!pair) {
        void ui.info('Comparing needs at least two snapshots.');
        return undefined;
      }
      ({ a, b } = pair);
    }
    if (!a || !b) return undefined;
    const panel = ComparePanel.show(ctx, docs, { a: a.id, b: b.id });
    return { a, b, panel };
  } catch (err) {
    await reportError(ctx, err, 'Compare');
    return undefined;
  }
}

/** "Compare with…": the snapshot the item names, and one the user picks. */
export async function compareWith(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const first = await resolveSnapshot(ctx, refId(arg) ?? arg, 'Compare which snapshot…', repo);
    if (!first) return undefined;
    const all = await currentSnapshots(ctx);
    const prev = previousSnapshot(all, first);
    const others = snapshotPickItems(all.filter((s) => s.id !== first.id));
    if (!others.length) {
      void ui.info('Comparing needs at least two snapshots.');
      return undefined;
    }
    if (prev) others.sort((x, y) => Number(y.snapshot?.id === prev.id) - Number(x.snapshot?.id === prev.id));
    const second = await ui.pick(others, { title: `devsnap: Compare '${first.label}' with…`, placeHolder: `Which snapshot?${prev ? ' (the previous one of the same disk is first)' : ''}` });
    if (!second?.snapshot) return undefined;
    const [a, b] = older(first, second.snapshot);
    return { a, b, panel: ComparePanel.show(ctx, docs, { a: a.id, b: b.id }) };
  } catch (err) {
    await reportError(ctx, err, 'Compare');
    return undefined;
  }
}

export async function openPanel(ctx: CommandContext, docs: SnapshotDocumentProvider): Promise<ComparePanel | undefined> {
  try {
    if (ComparePanel.current) return ComparePanel.show(ctx, docs);
    const repo = ctx.config().repository;
    const pair = repo ? defaultPair(await currentSnapshots(ctx).catch(() => [])) : undefined;
    return ComparePanel.show(ctx, docs, pair ? { a: pair.a.id, b: pair.b.id } : undefined);
  } catch (err) {
    await reportError(ctx, err, 'Open Snapshots Panel');
    return undefined;
  }
}
