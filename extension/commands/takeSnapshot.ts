// devsnap.takeSnapshot: pick a source (the engine's disks, system drive first, plus the
// configured disk image files), ask the engine for its plan (how the image reaches one point in
// time, how long writes pause, or why it would be refused), a label, then snapshot it in a
// cancellable progress notification that first says how long writes pause. Arguments
// `{ source?, label?, confirm? }` skip the prompts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskInfo, SnapshotPlan, SnapshotSummary } from '../../imaging/protocol';
import { EngineError, retentionEnabled, SnapshotOptions, SnapshotResult } from '../engine';
import { defaultSnapshotLabel, formatBytes, ProgressTracker } from '../../imaging/core/format';
import { SECTION } from '../config';
import { diskDescription, previousSnapshot, snapshotDoneMessage, sortDisks } from '../snapshotModel';
import { EditorPlace, heldEditorPlaces, needsPauseConfirmation, pauseNotice, pauseQuestion, shouldReadFully, snapshotsOfSource } from '../snapshotPlan';
import * as ui from '../ui';
import { CANCEL, runSteps, Step } from '../steps';
import { endSteps, stepPick, stepText, withSteps } from '../stepInput';
import { diskOfPath, hiddenVirtualCount, offeredDisks, parseMountinfo, virtualText } from '../drives';
import {
  CHOOSE_ANOTHER,
  checkAccessible,
  CommandContext,
  currentSnapshots,
  OPEN_SETTINGS,
  readMountinfo,
  reportError,
  requireRepository,
  revealSnapshot,
  sameDiskDetail,
  sameDiskQuestion,
  SHOW_OUTPUT,
} from './common';
import { EncryptionArgs, setUpNewRepository } from './encryption';

export interface TakeSnapshotArgs extends EncryptionArgs {
  /** Block device or disk image file to snapshot. */
  source?: string;
  /** Label of the new snapshot. */
  label?: string;
  /** Skip the modal question asked when writes would pause for more than a few seconds. */
  confirm?: boolean;
}

let globalStoragePath: string | undefined;
/** Where this extension's global storage is (context.globalStorageUri): in VS Code's user data folder. */
export function setGlobalStoragePath(p: string | undefined): void {
  globalStoragePath = p;
}

interface SourceItem extends vscode.QuickPickItem {
  source?: string;
  fromSetting?: boolean;
  /** The engine's disks when the picker listed them (to tell whether the repository is on the one picked). */
  disks?: DiskInfo[];
}

const TITLE = 'devsnap: Take Snapshot';
const COMPARE_PREVIOUS = 'Compare with Previous';
const SHOW = 'Show';

/** Resolves with the new snapshot, or undefined when dismissed, cancelled or failed (the user was told). */
export async function takeSnapshot(ctx: CommandContext, args: TakeSnapshotArgs = {}): Promise<SnapshotSummary | undefined> {
  try {
    const repo = await requireRepository(ctx, false);
    if (!repo) return undefined;
    // The first snapshot creates the repository: encrypt it? (asked unless a script names the source)
    if (!(await setUpNewRepository(ctx, repo, args, args.source === undefined))) return undefined;
    const cfg = ctx.config();
    // Two steps, each skipped when its argument is given: 1. the disk, 2. the label.
    const total = (args.source ? 0 : 1) + (args.label === undefined ? 1 : 0);
    let source = args.source;
    let label = args.label;
    let prepared: Prepared | undefined;
    const askLabel: Step = async (n) => {
      label = await stepText({
        title: TITLE,
        n,
        total,
        prompt: `Label for the snapshot of ${source}: what you are about to change`,
        placeholder: 'before upgrade',
        value: label ?? defaultSnapshotLabel(),
        validate: (v) => (v.trim() ? undefined : 'Enter a label, e.g. what you are about to change.'),
      });
    };
    const askSource: Step = async (n) => {
      const picked = await pickSource(ctx, n, total);
      if (!picked?.source) throw CANCEL;
      source = picked.source;
      const disk = picked.disks?.find((d) => d.path === source);
      if (disk && diskOfPath(repo, picked.disks!, parseMountinfo(readMountinfo())) === disk) {
        // The engine would refuse it (the image would hold the repository): say so before the label is asked.
        endSteps();
        const choice = await ui.ask(sameDiskQuestion(repo, disk), sameDiskDetail(disk), [CHOOSE_ANOTHER]);
        if (choice === CHOOSE_ANOTHER) void vscode.commands.executeCommand('devsnap.selectRepository');
        throw CANCEL;
      }
      prepared = await prepare(ctx, repo, source, !!picked.fromSetting);
      if (!prepared) throw CANCEL;
      return label === undefined ? askLabel : undefined;
    };
    if (source) {
      prepared = await prepare(ctx, repo, source, cfg.diskImages.includes(source) || cfg.defaultSource === source);
      if (!prepared) return undefined;
    }
    const first = !source ? askSource : label === undefined ? askLabel : undefined;
    if (first && (await withSteps(() => runSteps(first))) === 'cancelled') return undefined;
    if (!source || !prepared || label === undefined) return undefined;
    const { plan, notice, fullRead } = prepared;
    label = label.trim() || defaultSnapshotLabel();
    if (notice && needsPauseConfirmation(plan) && !args.confirm && !(await ui.confirm(pauseQuestion(plan), notice, 'Take Snapshot'))) return undefined;

    ctx.log(`Taking a snapshot of ${source} into ${repo} (label "${label}", zstd level ${cfg.compressionLevel}${fullRead ? ', reading the whole disk' : ''})`);
    if (notice) ctx.log(notice);
    const note = [notice, fullRead ? 'This snapshot reads every used block (the Full Read Every setting).' : ''].filter(Boolean).join(' ');
    const result = await snapshotWithProgress(ctx, { repo, source, label, compressionLevel: cfg.compressionLevel, ...(fullRead ? { fullRead } : {}) }, note, notice);
    const snap = result.snapshot;
    await ctx.tree.refresh();
    if (retentionEnabled(cfg.retention)) await applyRetentionQuietly(ctx, repo);

    // Not awaited: the command resolves now; the actions run when clicked.
    const prev = previousSnapshot(ctx.tree.snapshots, snap);
    const actions = prev ? [COMPARE_PREVIOUS, SHOW] : [SHOW];
    void ui.info(snapshotDoneMessage(snap), ...actions).then((choice) => {
      if (choice === SHOW) void revealSnapshot(ctx, snap.id);
      else if (choice === COMPARE_PREVIOUS && prev) void vscode.commands.executeCommand('devsnap.compareSnapshots', { a: prev.id, b: snap.id });
    });
    return snap;
  } catch (err) {
    await reportError(ctx, err, 'Snapshot', 'Snapshot cancelled; the repository is unchanged.');
    return undefined;
  }
}

interface Prepared {
  plan: SnapshotPlan;
  /** How long writes pause, and where (said before and during the snapshot). */
  notice: string | undefined;
  /** This snapshot reads every used block (devsnap.fullReadEvery). */
  fullRead: boolean;
}

/**
 * Checks the source and asks the engine how it would take it; undefined (the user was told) when
 * the engine would refuse it.
 */
async function prepare(ctx: CommandContext, repo: string, source: string, fromSetting: boolean): Promise<Prepared | undefined> {
  const cfg = ctx.config();
  const isDevice = source.startsWith('/dev/');
  await checkAccessible(source, isDevice ? 'disk' : 'disk image', false, fromSetting ? 'Check the Disk Images and Default Source settings of devsnap.' : undefined, cfg.elevation !== 'none');
  // Through the same engine (helper or CLI) as the snapshot: it reads the same mounts.
  const plan = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `devsnap: checking ${path.basename(source)}` }, () => ctx.engine().planSnapshot(repo, source));
  ctx.log(`Plan for ${source}: ${plan.consistency}${plan.mounts.map((m) => `, ${m.mountpoint} ${m.how}${m.pauseSeconds !== undefined ? ` ~${m.pauseSeconds.toFixed(2)} s` : ''}`).join('')}`);
  if (plan.problem) {
    const text = `No snapshot of ${source} was started: ${plan.problem.message} ${plan.problem.hint}`;
    ctx.log(text, 'warn');
    endSteps();
    void ui.error(text, SHOW_OUTPUT).then((choice) => choice === SHOW_OUTPUT && ctx.output.show(true));
    return undefined;
  }
  const notice = pauseNotice(plan, heldEditorPlaces(plan.mounts, editorPlaces()));
  const fullRead = shouldReadFully(snapshotsOfSource(await currentSnapshots(ctx), source), fullReadEvery());
  return { plan, notice, fullRead };
}

/**
 * The snapshot in a cancellable notification whose first message is `first` (the pause, the full
 * read); `pause` stays after each progress line, since the pause comes near the end.
 */
function snapshotWithProgress(ctx: CommandContext, opts: SnapshotOptions, first: string, pause: string | undefined): Thenable<SnapshotResult> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `devsnap: Snapshot of ${path.basename(opts.source)}`, cancellable: true }, (progress, token) => {
    const tracker = new ProgressTracker(['image']);
    progress.report({ message: first || 'starting…' });
    return ctx.engine().snapshot(
      opts,
      (ev) => {
        const r = tracker.next(ev);
        progress.report(pause ? { ...r, message: `${r.message} — ${pause}` } : r);
      },
      token,
    );
  });
}

/** VS Code's own folders: a filesystem paused under them makes the editor wait too. */
function editorPlaces(): EditorPlace[] {
  const places: EditorPlace[] = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => ({ name: 'this workspace', path: f.uri.fsPath }));
  // Without the storage path (set on activation), the home folder: where VS Code keeps its user data by default.
  places.push({ name: "VS Code's settings", path: globalStoragePath ?? os.homedir() });
  const self = vscode.extensions.getExtension('devsnap.devsnap');
  if (self) places.push({ name: "VS Code's extensions", path: path.dirname(self.extensionUri.fsPath) });
  return places;
}

/** devsnap.fullReadEvery as a whole number (0 = never). */
function fullReadEvery(): number {
  const v = vscode.workspace.getConfiguration(SECTION).get<unknown>('fullReadEvery', 10);
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** Forgets what the retention settings do not keep (pinned snapshots stay) and frees the space. */
async function applyRetentionQuietly(ctx: CommandContext, repo: string): Promise<void> {
  const policy = ctx.config().retention;
  try {
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'devsnap: applying retention' }, async () => {
      const r = await ctx.engine().forget({ repo, policy });
      ctx.log(`Retention: removed ${r.removed.length} snapshot(s), kept ${r.kept.length}`);
      if (r.removed.length) {
        const p = await ctx.engine().prune(repo);
        ctx.log(`Prune: removed ${p.packsRemoved} pack(s), freed ${formatBytes(p.bytesFreed)}`);
      }
    });
  } catch (err) {
    await reportError(ctx, err, 'Applying the retention settings');
  }
  await ctx.tree.refresh();
}

/** The quick pick of sources (step `n` of `total`): engine disks (system drive first and marked) and image files. */
async function pickSource(ctx: CommandContext, n: number, total: number): Promise<SourceItem | undefined> {
  const cfg = ctx.config();
  let hidden = 0;
  const load = async (): Promise<SourceItem[]> => {
    let disks: DiskInfo[] = [];
    try {
      disks = sortDisks(await ctx.engine().listDisks());
    } catch (err) {
      const msg = err instanceof EngineError ? err.toUserMessage() : (err as Error).message;
      ctx.log(`Could not list disks: ${msg}`);
      void ui.warn(`Could not list the disks: ${msg}`);
    }
    const items: SourceItem[] = [];
    const seen = new Set<string>();
    const diskItems = offeredDisks(
      disks.filter((d) => d.kind !== 'file'),
      cfg.showVirtualDisks,
      [cfg.defaultSource],
    );
    hidden = hiddenVirtualCount(disks, diskItems);
    if (diskItems.length) items.push({ label: 'Disks', kind: vscode.QuickPickItemKind.Separator });
    for (const d of diskItems) {
      seen.add(d.path);
      const isDefault = cfg.defaultSource === d.path;
      const mounted = [...d.mountpoints, ...d.partitions.flatMap((p) => p.mountpoints ?? [])];
      items.push({
        label: `$(${d.isSystem ? 'device-desktop' : d.virtual ? 'file-binary' : 'server'}) ${d.path}${d.model ? ` — ${d.model}` : ''}`,
        description: [d.isSystem ? 'System drive' : '', d.virtual ? virtualText(d) : '', isDefault ? 'default' : ''].filter(Boolean).join(' · ') || undefined,
        detail: diskDescription(d) + (mounted.length ? ` · mounted at ${[...new Set(mounted)].join(', ')}` : ''),
        source: d.path,
        disks,
      });
    }
    const images = [
      ...new Set([...disks.filter((d) => d.kind === 'file').map((d) => d.path), ...cfg.diskImages, ...(cfg.defaultSource && !cfg.defaultSource.startsWith('/dev/') ? [cfg.defaultSource] : [])]),
    ].filter((p) => !seen.has(p));
    if (images.length) items.push({ label: 'Disk images', kind: vscode.QuickPickItemKind.Separator });
    for (const p of images) {
      let detail: string;
      try {
        const st = fs.statSync(p);
        detail = st.isFile() ? `${formatBytes(st.size)} disk image` : 'not a file';
      } catch {
        detail = '$(warning) does not exist — check the Disk Images setting';
      }
      items.push({
        label: `$(file-binary) ${path.basename(p)}`,
        description: [path.dirname(p), cfg.defaultSource === p ? 'default' : ''].filter(Boolean).join(' · '),
        detail,
        source: p,
        fromSetting: true,
      });
    }
    // The configured default source on top, in its own section.
    const di = items.findIndex((i) => i.source && i.source === cfg.defaultSource);
    if (di >= 0) {
      const [d] = items.splice(di, 1);
      items.unshift({ label: 'Default source', kind: vscode.QuickPickItemKind.Separator }, d);
    }
    // Drop separators left without items.
    return items.filter((it, i) => it.kind !== vscode.QuickPickItemKind.Separator || (items[i + 1] && items[i + 1].kind !== vscode.QuickPickItemKind.Separator));
  };
  const items = await load();
  if (!items.some((i) => i.source)) {
    void ui.error('devsnap found no disk to snapshot. Add disk image files in the Disk Images setting, or check the output for why the disks could not be listed.', OPEN_SETTINGS).then((choice) => {
      if (choice === OPEN_SETTINGS) void vscode.commands.executeCommand('workbench.action.openSettings', 'devsnap.diskImages');
    });
    return undefined;
  }
  const placeHolder = `Which disk do you want to snapshot?${hidden ? ` (${hidden} loop or RAM device${hidden === 1 ? ' is' : 's are'} not shown: see the Show Virtual Disks setting)` : ''}`;
  return stepPick(items, { title: TITLE, placeholder: placeHolder, n, total });
}
