// devsnap.compareSnapshots, devsnap.compareWithPrevious, devsnap.compareWith and devsnap.openPanel:
// all open the compare & restore panel (extension/panel/comparePanel.ts), on the pair they name.
//   compareSnapshots   { a, b } (older, newer) | { b } | item (= with previous) | nothing (the newest
//                      snapshot and the one before it of the same disk)
//   compareWithPrevious item | { id }
//   compareWith        item | { id }: asks which snapshot to compare it with
//   compareSelected    the two snapshots selected in the view | { ids: [x, y] }
//   compareNewestTwo   a disk group: its two newest snapshots
//   showPartitionFiles a partition row | { id, partition }: that partition's files, against the snapshot before
//   openPanel          reveals the panel (a new one shows the newest pair)
import type { SnapshotSummary } from '../../imaging/protocol';
import { ComparePanel } from '../panel/comparePanel';
import { compareNewestFirst, newestPair, previousSnapshot, selectedPair, snapshotName } from '../snapshotModel';
import { DiskGroupNode, PartitionNode, SnapshotNode } from '../snapshotTree';
import { runSteps, Step } from '../steps';
import { stepPick, withSteps } from '../stepInput';
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

/** "Compare with…": the snapshot the item names (or step 1: one the user picks), and step 2: the other one. */
export async function compareWith(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const all = await currentSnapshots(ctx);
    if (all.length < 2) {
      void ui.info('Comparing needs at least two snapshots.');
      return undefined;
    }
    const id = refId(arg);
    let first = id ? await resolveSnapshot(ctx, id, '', repo) : undefined;
    let second: SnapshotSummary | undefined;
    const total = id ? 1 : 2;
    const askSecond: Step = async (n) => {
      const f = first!;
      const prev = previousSnapshot(all, f);
      const others = snapshotPickItems(all.filter((s) => s.id !== f.id));
      if (prev) others.sort((x, y) => Number(y.snapshot?.id === prev.id) - Number(x.snapshot?.id === prev.id));
      second = (await stepPick(others, { title: `devsnap: Compare '${f.label}' with…`, placeholder: `Which snapshot?${prev ? ' (the previous one of the same disk is first)' : ''}`, n, total }))
        .snapshot;
    };
    const askFirst: Step = async (n) => {
      first = (await stepPick(snapshotPickItems(all), { title: 'devsnap: Compare with…', placeholder: 'Compare which snapshot…', n, total })).snapshot;
      return askSecond;
    };
    if ((await withSteps(() => runSteps(first ? askSecond : askFirst))) === 'cancelled' || !first || !second) return undefined;
    const [a, b] = older(first, second);
    return { a, b, panel: ComparePanel.show(ctx, docs, { a: a.id, b: b.id }) };
  } catch (err) {
    await reportError(ctx, err, 'Compare');
    return undefined;
  }
}

/**
 * "Compare Selected": the two snapshots selected in the Snapshots view. From its context menu VS
 * Code passes (the item right-clicked, every selected item); from code `{ ids: [x, y] }`.
 */
export async function compareSelected(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown, selection?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const nodes = Array.isArray(selection) ? selection : ctx.treeView.selection;
    let chosen = nodes.filter((n): n is SnapshotNode => n instanceof SnapshotNode).map((n) => n.snapshot);
    const ids = arg && typeof arg === 'object' && Array.isArray((arg as { ids?: unknown }).ids) ? ((arg as { ids: unknown[] }).ids.filter((x) => typeof x === 'string') as string[]) : undefined;
    if (ids) chosen = await Promise.all(ids.map((id) => resolveSnapshot(ctx, id, '', repo) as Promise<SnapshotSummary>));
    const pair = selectedPair(chosen.filter(Boolean));
    if (!pair) {
      void ui.info(`Select two snapshots to compare (${chosen.length} selected): Ctrl+click (Cmd+click on macOS) adds one to the selection.`);
      return undefined;
    }
    return { ...pair, panel: ComparePanel.show(ctx, docs, { a: pair.a.id, b: pair.b.id }) };
  } catch (err) {
    await reportError(ctx, err, 'Compare');
    return undefined;
  }
}

/** "Compare Newest Two" on a disk: its newest snapshot and the one before it. */
export async function compareNewestTwo(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown): Promise<CompareResult | undefined> {
  const group = arg instanceof DiskGroupNode ? arg.group : undefined;
  const pair = group ? newestPair(group) : undefined;
  if (!pair) return compareSnapshots(ctx, docs);
  return compareSnapshots(ctx, docs, { a: pair.a.id, b: pair.b.id });
}

/**
 * "Show Changed Files" on a partition: the compare panel on the snapshot and the one before it,
 * comparing that partition's files. `{ id, partition }` from code.
 */
export async function showPartitionFiles(ctx: CommandContext, docs: SnapshotDocumentProvider, arg?: unknown): Promise<CompareResult | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    const ref = partitionRef(arg);
    if (!ref) return undefined;
    const b = await resolveSnapshot(ctx, ref.id, '', repo);
    if (!b) return undefined;
    const a = previousSnapshot(await currentSnapshots(ctx), b);
    if (!a) {
      void ui.info(`Snapshot ${snapshotName(b)} is the oldest of its disk: there is nothing before it to compare its files with.`);
      return undefined;
    }
    return { a, b, panel: ComparePanel.show(ctx, docs, { a: a.id, b: b.id, partition: ref.partition }) };
  } catch (err) {
    await reportError(ctx, err, 'Compare');
    return undefined;
  }
}

/** A partition given to a command: a partition row of the view, or `{ id, partition }`. */
export function partitionRef(arg: unknown): { id: string; partition: number } | undefined {
  if (arg instanceof PartitionNode) return { id: arg.parent.snapshot.id, partition: arg.partition.index };
  const o = arg as { id?: unknown; partition?: unknown } | undefined;
  if (o && typeof o === 'object' && typeof o.id === 'string' && typeof o.partition === 'number') return { id: o.id, partition: o.partition };
  return undefined;
}

export async function openPanel(ctx: CommandContext, docs: SnapshotDocumentProvider): Promise<ComparePanel | undefined> {
  try {
    if (ComparePanel.current) return ComparePanel.show(ctx, docs);
    const repo = ctx.config().repository;
    const pair = repo ? defaultPair(await currentSnapshots(ctx).catch(() => [])) : undefined;
    return ComparePanel.show(ctx, docs, pair ? { a: pair.a.id, b: pair.b.id } : undefined);
  } catch (err) {
    await reportError(ctx, err, 'Open Compare Panel');
    return undefined;
  }
}
