// The compare & restore panel: one webview panel per window (webview-ui/ draws it). This side
// answers the webview's typed messages (webview-ui/messages.ts) with engine work:
//   compare      → `devsnap diff` (changed bytes per partition) and `devsnap changes` (inventory diff,
//                  file totals, then every change, paged from the engine and streamed to the webview in
//                  chunks); kept per pair so a hidden-and-shown panel gets it again at once;
//   openDiff     → both versions through `devsnap cat` into the read-only devsnap-snapshot: documents,
//                  then VS Code's diff editor;
//   restore files → dry run first (the plan is shown in the panel), then the restore with progress;
//   restore disk → the devsnap.restoreSnapshot command (target pick, confirmation naming the target);
//   recovery     → the command line to run from a live system, in a new untitled editor.
import * as crypto from 'crypto';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskInfo, SnapshotSummary } from '../../imaging/protocol';
import { ChangesResult, EngineError, hasSnapshotFiles, RestoreFilesOptions, SnapshotFilesEngine } from '../engine';
import { formatBytes, formatProgress } from '../../imaging/core/format';
import { snapshotName } from '../snapshotModel';
import * as ui from '../ui';
import { looksBinary, SNAPSHOT_SCHEME, SnapshotDocumentProvider, snapshotFileUri } from '../virtualDocs';
import { CommandContext, currentSnapshots, reportError } from '../commands/common';
import { CHANGES_CHUNK, HostMessage, PanelSnapshot, parseWebviewMessage, PLAN_ENTRY_LIMIT, WebviewMessage } from '../../webview-ui/messages';
import { panelHtml } from './html';

export const PANEL_VIEW_TYPE = 'devsnap.comparePanel';
/** Changes in the first engine page (the summary comes with it); the rest come in one more run. */
const FIRST_PAGE = 5000;

interface Plan {
  id: string;
  snapshot: SnapshotSummary;
  opts: RestoreFilesOptions;
  original: boolean;
}

interface CompareRun {
  a: string;
  b: string;
  /** Everything sent for this pair, in order (replayed after the webview is rebuilt). */
  sent: HostMessage[];
  done: boolean;
  cts: vscode.CancellationTokenSource;
}

export class ComparePanel implements vscode.Disposable {
  static current: ComparePanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private pendingPair: { a: string; b: string } | null = null;
  private run: CompareRun | null = null;
  private readonly cache = new Map<string, CompareRun>();
  private readonly plans = new Map<string, Plan>();
  private disks: DiskInfo[] | null = null;
  /** Messages posted to the webview (newest last), for the in-host tests. */
  readonly posted: HostMessage[] = [];

  /** Opens (or reveals) the panel; with a pair, compares it. */
  static show(ctx: CommandContext, docs: SnapshotDocumentProvider, pair?: { a: string; b: string }): ComparePanel {
    if (ComparePanel.current) {
      const p = ComparePanel.current;
      p.panel.reveal(undefined, false);
      if (pair) {
        p.pendingPair = pair;
        void p.sendInit();
      }
      return p;
    }
    const ext = vscode.extensions.getExtension('devsnap.devsnap');
    const root = ext?.extensionUri ?? vscode.Uri.file(path.join(__dirname, '..'));
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'devsnap: Compare Snapshots', vscode.ViewColumn.Active, {
      enableScripts: true,
      // Only the bundles and the stylesheet; state survives hide/show through getState/setState.
      localResourceRoots: [vscode.Uri.joinPath(root, 'dist'), vscode.Uri.joinPath(root, 'media')],
    });
    panel.iconPath = vscode.Uri.joinPath(root, 'media', 'devsnap.svg');
    const p = new ComparePanel(ctx, docs, panel, root);
    p.pendingPair = pair ?? null;
    ComparePanel.current = p;
    return p;
  }

  private constructor(
    private readonly ctx: CommandContext,
    private readonly docs: SnapshotDocumentProvider,
    readonly panel: vscode.WebviewPanel,
    root: vscode.Uri,
  ) {
    const w = panel.webview;
    w.html = panelHtml({
      cspSource: w.cspSource,
      scriptUri: w.asWebviewUri(vscode.Uri.joinPath(root, 'dist', 'webview.js')).toString(),
      styleUri: w.asWebviewUri(vscode.Uri.joinPath(root, 'media', 'panel.css')).toString(),
    });
    this.disposables.push(
      w.onDidReceiveMessage((raw) => {
        const m = parseWebviewMessage(raw);
        if (!m) {
          this.ctx.log(`Compare panel: ignored a malformed message ${JSON.stringify(raw)?.slice(0, 200)}`);
          return;
        }
        void this.handle(m).catch((err) => reportError(this.ctx, err, 'Compare panel'));
      }),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  dispose(): void {
    if (ComparePanel.current === this) ComparePanel.current = undefined;
    for (const r of this.cache.values()) r.cts.cancel();
    this.run?.cts.cancel();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private post(m: HostMessage): void {
    this.posted.push(m);
    if (this.posted.length > 200) this.posted.splice(0, this.posted.length - 200);
    void this.panel.webview.postMessage(m);
  }

  private repo(): string | undefined {
    return this.ctx.config().repository;
  }

  private files(): SnapshotFilesEngine {
    const e = this.ctx.engine();
    if (!hasSnapshotFiles(e)) throw new EngineError('INTERNAL', 'This engine cannot look inside snapshots.');
    return e;
  }

  private async handle(m: WebviewMessage): Promise<void> {
    switch (m.type) {
      case 'ready':
        return this.sendInit();
      case 'refresh':
        this.cache.clear();
        this.disks = null;
        await this.ctx.tree.refresh();
        return this.sendInit();
      case 'compare':
        return this.compare(m.a, m.b);
      case 'openDiff':
        return this.openDiff(m.path, m.change);
      case 'planRestoreFiles':
        return this.planRestore(m.snapshot, m.paths, m.destination);
      case 'confirmRestoreFiles':
        return this.confirmRestore(m.planId);
      case 'discardRestorePlan':
        this.plans.delete(m.planId);
        return;
      case 'restoreDisk':
        await vscode.commands.executeCommand('devsnap.restoreSnapshot', m.partition !== undefined ? { id: m.snapshot, partition: m.partition } : { id: m.snapshot });
        return;
      case 'recoveryCommand':
        return this.writeRecoveryCommand(m.snapshot, m.partition);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots

  private async listDisks(): Promise<DiskInfo[]> {
    if (this.disks) return this.disks;
    try {
      this.disks = await this.ctx.engine().listDisks();
    } catch (err) {
      this.ctx.log(`Compare panel: could not list disks: ${(err as Error).message}`);
      this.disks = [];
    }
    return this.disks;
  }

  private toPanelSnapshot(s: SnapshotSummary, disks: DiskInfo[]): PanelSnapshot {
    const disk = disks.find((d) => d.path === s.source.path);
    return {
      id: s.id,
      label: s.label,
      created: s.created,
      source: s.source.path,
      sourceIsSystem: !!disk?.isSystem,
      consistency: s.consistency,
      ...(s.pointInTime ? { pointInTime: s.pointInTime } : {}),
      partitions: (s.partitions ?? []).map((p) => {
        const mp = disk?.partitions.find((q) => q.index === p.index)?.mountpoints?.[0];
        return {
          index: p.index,
          size: p.size,
          ...(p.fs ? { fs: p.fs } : {}),
          ...(p.label ? { label: p.label } : {}),
          ...(p.typeName ? { typeName: p.typeName } : {}),
          ...(mp ? { mountpoint: mp } : {}),
        };
      }),
    };
  }

  private async snapshot(id: string): Promise<SnapshotSummary> {
    const all = await currentSnapshots(this.ctx);
    const s = all.find((x) => x.id === id);
    if (!s) throw new EngineError('NOT_FOUND', `There is no snapshot ${id} in the repository any more.`, 'Refresh the panel.');
    return s;
  }

  private async sendInit(): Promise<void> {
    const repo = this.repo();
    const pair = this.pendingPair;
    this.pendingPair = null;
    if (!repo) {
      this.post({ type: 'init', snapshots: [], a: null, b: null, repo: null });
      return;
    }
    const [all, disks] = await Promise.all([currentSnapshots(this.ctx), this.listDisks()]);
    this.post({ type: 'init', snapshots: all.map((s) => this.toPanelSnapshot(s, disks)), a: pair?.a ?? null, b: pair?.b ?? null, repo });
  }

  // -------------------------------------------------------------------------------------------
  // Comparing

  private async compare(a: string, b: string): Promise<void> {
    const repo = this.repo();
    if (!repo) return;
    const key = `${a}|${b}`;
    if (this.run && (this.run.a !== a || this.run.b !== b) && !this.run.done) {
      // Leave it running to the cache only if it is far along? Simpler: stop it; it restarts on demand.
      this.run.cts.cancel();
      this.cache.delete(`${this.run.a}|${this.run.b}`);
    }
    const cached = this.cache.get(key);
    if (cached) {
      this.run = cached;
      // Replay what this pair has sent so far; a running comparison goes on sending.
      for (const m of cached.sent) this.post(m);
      return;
    }
    const run: CompareRun = { a, b, sent: [], done: false, cts: new vscode.CancellationTokenSource() };
    this.run = run;
    this.cache.set(key, run);
    while (this.cache.size > 4) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.get(oldest)?.cts.cancel();
      this.cache.delete(oldest);
    }
    const send = (m: HostMessage, keep = true) => {
      if (keep) run.sent.push(m);
      if (this.run === run) this.post(m);
    };
    send({ type: 'compareStarted', a, b });
    const token = run.cts.token;
    const files = this.files();
    const [sa, sb] = await Promise.all([this.snapshot(a), this.snapshot(b)]);

    const blocks = (async () => {
      try {
        const d = await this.ctx.engine().diff(repo, a, b, token);
        const parts = (d.partitions ?? []).map((p) => {
          const info = sb.partitions.find((q) => q.index === p.index) ?? sa.partitions.find((q) => q.index === p.index);
          return { index: p.index, changedBytes: p.changedBytes, ...(info?.fs ? { fs: info.fs } : {}), ...(info?.label ? { label: info.label } : {}), ...(info ? { size: info.size } : {}) };
        });
        send({ type: 'partitions', a, b, partitions: parts, totalChangedBytes: parts.reduce((n, p) => n + p.changedBytes, 0) });
      } catch (err) {
        if (!token.isCancellationRequested) send({ type: 'sectionError', a, b, section: 'partitions', message: messageOf(err) });
      }
    })();

    const fileChanges = (async () => {
      const progress = (ev: { message?: string; phase: string; bytesDone: number; bytesTotal: number; rate: number; etaSeconds: number | null }) =>
        send({ type: 'progress', a, b, message: ev.message ?? formatProgress({ type: 'progress', ...ev }) }, false);
      try {
        const first: ChangesResult = await files.changes({ repo, a, b, limit: FIRST_PAGE }, progress, token);
        const total = first.files.total;
        send({ type: 'summary', a, b, partition: first.partition, inventory: first.inventory ?? null, totals: first.files.totals, total, directories: first.directories ?? [] });
        let offset = 0;
        const stream = (changes: ChangesResult['files']['changes'], last: boolean) => {
          for (let i = 0; i < changes.length || (last && i === 0); i += CHANGES_CHUNK) {
            const chunk = changes.slice(i, i + CHANGES_CHUNK);
            const done = last && i + CHANGES_CHUNK >= changes.length;
            send({ type: 'changes', a, b, offset, changes: chunk, done });
            offset += chunk.length;
          }
        };
        const more = total > first.files.changes.length;
        stream(first.files.changes, !more);
        if (more) {
          send({ type: 'progress', a, b, message: `Loading ${total - offset} more changes…` }, false);
          const rest = await files.changes({ repo, a, b, offset, limit: total - offset }, progress, token);
          stream(rest.files.changes, true);
        }
        run.done = true;
      } catch (err) {
        if (!token.isCancellationRequested) send({ type: 'sectionError', a, b, section: 'files', message: messageOf(err) });
        run.done = true;
      }
    })();
    await Promise.all([blocks, fileChanges]);
  }

  // -------------------------------------------------------------------------------------------
  // Text diffs

  private async openDiff(file: string, change: string): Promise<void> {
    const repo = this.repo();
    const run = this.run;
    if (!repo || !run) return;
    const [sa, sb] = await Promise.all([this.snapshot(run.a), this.snapshot(run.b)]);
    const summary = run.sent.find((m): m is Extract<HostMessage, { type: 'summary' }> => m.type === 'summary');
    const partition = summary?.partition;
    const left = snapshotFileUri({ repo, id: sa.id, path: file, partition, label: sa.label });
    const right = snapshotFileUri({ repo, id: sb.id, path: file, partition, label: sb.label });
    const [ba, bb] = await vscode.window
      .withProgress({ location: { viewId: 'devsnap.snapshots' }, title: `Reading ${file}` }, () =>
        Promise.all([change === 'added' ? null : this.docs.read({ repo, id: sa.id, path: file, partition }), change === 'removed' ? null : this.docs.read({ repo, id: sb.id, path: file, partition })]),
      )
      .then(
        (r) => r,
        async (err) => {
          if (err instanceof EngineError && err.code === 'BAD_SOURCE') {
            void ui.info(`${file} is too large to show in a diff editor (${err.message}).`);
            return [undefined, undefined] as const;
          }
          throw err;
        },
      );
    if (ba === undefined) return;
    if ((ba && looksBinary(ba)) || (bb && looksBinary(bb))) {
      void ui.info(
        `${file} is a binary file (${ba ? formatBytes(ba.length) : 'absent'} → ${bb ? formatBytes(bb.length) : 'absent'}): there is no text diff to show. Select it in the panel to restore it.`,
      );
      return;
    }
    this.docs.remember(left, ba ? ba.toString('utf8') : '');
    this.docs.remember(right, bb ? bb.toString('utf8') : '');
    const name = path.posix.basename(file);
    await vscode.commands.executeCommand('vscode.diff', left, right, `${name} (${sa.label || sa.id} ↔ ${sb.label || sb.id})`, { preview: true, preserveFocus: false });
  }

  // -------------------------------------------------------------------------------------------
  // Restoring files

  private async planRestore(id: string, paths: string[], destination: 'original' | 'folder'): Promise<void> {
    const repo = this.repo();
    if (!repo) return;
    try {
      const snap = await this.snapshot(id);
      const summary = this.run?.sent.find((m): m is Extract<HostMessage, { type: 'summary' }> => m.type === 'summary');
      const partition = summary?.partition;
      let to: string;
      let inPlace: boolean;
      if (destination === 'original') {
        const disks = await this.listDisks();
        const ps = this.toPanelSnapshot(snap, disks);
        const mp = ps.partitions.find((p) => p.index === partition)?.mountpoint;
        if (!mp) {
          this.post({
            type: 'restoreFailed',
            planId: null,
            message: `Partition ${partition ?? '?'} of ${snap.source.path} is not mounted on this machine, so its files have no original place here. Restore them into a folder instead.`,
          });
          return;
        }
        to = mp;
        inPlace = true;
      } else {
        const picked = await ui.openFolder(`Restore ${paths.length === 1 ? path.posix.basename(paths[0]) : `${paths.length} items`} from '${snap.label}' into which folder?`, 'Restore Here');
        if (!picked?.length) {
          this.post({ type: 'restoreCancelled', planId: null });
          return;
        }
        to = picked[0].fsPath;
        inPlace = false;
      }
      const opts: RestoreFilesOptions = { repo, id: snap.id, paths, to, inPlace, partition, dryRun: true };
      const r = await this.files().restoreFiles(opts);
      const planId = crypto.randomBytes(8).toString('hex');
      this.plans.set(planId, { id: planId, snapshot: snap, opts: { ...opts, dryRun: false }, original: destination === 'original' });
      const changing = r.entries.filter((e) => e.action !== 'unchanged');
      this.post({
        type: 'restorePlan',
        planId,
        snapshot: snap.id,
        targetRoot: r.targetRoot,
        entries: changing.slice(0, PLAN_ENTRY_LIMIT),
        truncated: changing.length > PLAN_ENTRY_LIMIT,
        totals: r.totals,
        bytesToWrite: r.bytesToWrite,
        warnings: r.warnings,
      });
    } catch (err) {
      this.post({ type: 'restoreFailed', planId: null, message: messageOf(err) });
    }
  }

  private async confirmRestore(planId: string): Promise<void> {
    const plan = this.plans.get(planId);
    if (!plan) {
      this.post({ type: 'restoreFailed', planId, message: 'That restore plan is no longer valid: run the dry run again.' });
      return;
    }
    if (plan.original) {
      const ok = await ui.confirm(
        `Restore ${plan.opts.paths.length} item(s) from snapshot ${snapshotName(plan.snapshot)} to their original place under ${plan.opts.to}?`,
        'Files that changed since are replaced by their version in the snapshot (files not in the snapshot are left alone).',
        'Restore',
      );
      if (!ok) {
        this.post({ type: 'restoreCancelled', planId });
        return;
      }
    }
    this.plans.delete(planId);
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `devsnap: Restoring files from '${plan.snapshot.label}'`, cancellable: true },
        (progress, token) =>
          this.files().restoreFiles(
            plan.opts,
            (ev) => {
              const message = formatProgress(ev);
              progress.report({ message });
              this.post({ type: 'restoreProgress', planId, message, fraction: ev.bytesTotal > 0 ? ev.bytesDone / ev.bytesTotal : null });
            },
            token,
          ),
      );
      for (const w of r.warnings) this.ctx.log(`restore-files: ${w}`);
      this.post({ type: 'restoreDone', planId, targetRoot: r.targetRoot, totals: r.totals, bytesWritten: r.bytesWritten, warnings: r.warnings });
      void ui.info(`Restored ${r.totals.create + r.totals.replace} item(s) from ${snapshotName(plan.snapshot)} into ${r.targetRoot}.`);
    } catch (err) {
      if (err instanceof EngineError && err.cancelled) this.post({ type: 'restoreCancelled', planId });
      else this.post({ type: 'restoreFailed', planId, message: messageOf(err) });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Recovery environment

  private async writeRecoveryCommand(id: string, partition?: number): Promise<void> {
    const repo = this.repo() ?? '<repository folder>';
    const snap = await this.snapshot(id);
    const doc = await vscode.workspace.openTextDocument({ language: 'shellscript', content: recoveryScript(snap, repo, partition) });
    await vscode.window.showTextDocument(doc, { preview: false });
  }
}

function messageOf(err: unknown): string {
  return err instanceof EngineError ? err.toUserMessage() : ((err as Error)?.message ?? String(err));
}

/** The commands to restore a snapshot of the running system's disk from a live (recovery) system. */
export function recoveryScript(s: SnapshotSummary, repo: string, partition?: number): string {
  const target = partition !== undefined ? `${s.source.path}${/\d$/.test(s.source.path) ? 'p' : ''}${partition}` : s.source.path;
  const q = (x: string) => (/^[\w@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, `'\\''`)}'`);
  return [
    `#!/bin/sh`,
    `# Restore devsnap snapshot "${s.label}" (${s.id}, taken ${s.created})`,
    `# onto ${target}${partition !== undefined ? ` (partition ${partition} of ${s.source.path})` : ` (the whole disk: partition table and every partition)`}.`,
    `#`,
    `# ${s.source.path} holds the system that is running now, and a disk cannot be overwritten while the`,
    `# system on it runs. Do it from a recovery environment:`,
    `#  1. Boot a live USB stick (any Linux live system) on this machine.`,
    `#  2. Get Node.js 20 or newer there (e.g. "sudo apt install nodejs" on a Debian/Ubuntu live system).`,
    `#  3. Copy devsnap's engine onto the stick or the repository's drive beforehand: the files`,
    `#     dist/devsnap.js and dist/compress-worker.js of the devsnap extension.`,
    `#  4. Mount the drive holding the repository (read-write), e.g.: sudo mount /dev/sdX1 /mnt/backup`,
    `#     and adjust REPO below to where the repository is on it.`,
    `#  5. Check TARGET (lsblk: device names can differ on the live system), then run this script as root.`,
    `#     devsnap checks every chunk while it writes; the restore cannot be undone.`,
    `set -e`,
    `REPO=${q(repo)}`,
    `TARGET=${q(target)}`,
    `DEVSNAP="node ./devsnap.js"`,
    ``,
    `$DEVSNAP show ${q(s.id)} --repo "$REPO"`,
    `$DEVSNAP restore ${q(s.id)} "$TARGET" --repo "$REPO"${partition !== undefined ? ` --partition ${partition}` : ''} --dry-run`,
    `$DEVSNAP restore ${q(s.id)} "$TARGET" --repo "$REPO"${partition !== undefined ? ` --partition ${partition}` : ''}`,
    ``,
  ].join('\n');
}

/** The scheme's provider and the panel's disposal; registered with the commands. */
export function registerPanel(ctx: CommandContext): { docs: SnapshotDocumentProvider; disposables: vscode.Disposable[] } {
  const docs = new SnapshotDocumentProvider(ctx);
  return {
    docs,
    disposables: [vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, docs), { dispose: () => ComparePanel.current?.dispose() }],
  };
}
