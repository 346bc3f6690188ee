// The compare & restore panel: one webview panel per window (webview-ui/ draws it). This side
// answers the webview's typed messages (webview-ui/messages.ts) with engine work:
//   compare      → `devsnap diff` (changed bytes per partition) and `devsnap changes` (inventory diff,
//                  file totals, then every change, paged from the engine and streamed to the webview in
//                  chunks); kept per pair so a hidden-and-shown panel gets it again at once (compareRuns.ts);
//   openDiff     → both versions through `devsnap cat` into the read-only devsnap-snapshot: documents,
//                  then VS Code's diff editor (textDiff.ts);
//   restore files → dry run first (the plan is shown in the panel), then the restore with progress
//                  (restoreFiles.ts);
//   restore disk → the devsnap.restoreSnapshot command (target pick, confirmation naming the target);
//   recovery     → the command line to run from a live system, in a new untitled editor (recovery.ts);
//   undo         → the devsnap.undoUpgrade command (plan, confirmation, safety snapshot, undo).
// This file holds the panel's lifecycle and the dispatch; snapshotList.ts the lists sent at init.
import * as path from 'path';
import * as vscode from 'vscode';
import { CommandContext, reportError } from '../commands/common';
import { SNAPSHOT_SCHEME, SnapshotDocumentProvider } from '../virtualDocs';
import { HostMessage, parseWebviewMessage, WebviewMessage } from '../../webview-ui/messages';
import { CompareRuns } from './compareRuns';
import { panelHtml } from './html';
import { PanelContext, repoOf } from './panelContext';
import { writeRecoveryCommand } from './recovery';
import { FileRestore } from './restoreFiles';
import { PanelSnapshots } from './snapshotList';
import { openDiff } from './textDiff';

export { recoveryScript } from './recovery';

export const PANEL_VIEW_TYPE = 'devsnap.comparePanel';

/** What the panel is asked to compare: two snapshots (older first) and, optionally, whose partition's files. */
export interface ComparePair {
  a: string;
  b: string;
  partition?: number;
}

export class ComparePanel implements vscode.Disposable {
  static current: ComparePanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private pendingPair: ComparePair | null = null;
  private readonly pc: PanelContext;
  private readonly snapshots: PanelSnapshots;
  private readonly runs: CompareRuns;
  private readonly restore: FileRestore;
  /** Messages posted to the webview (newest last), for the in-host tests. */
  readonly posted: HostMessage[] = [];

  /** Opens (or reveals) the panel; with a pair, compares it. */
  static show(ctx: CommandContext, docs: SnapshotDocumentProvider, pair?: ComparePair): ComparePanel {
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
    this.snapshots = new PanelSnapshots(ctx);
    this.pc = { ctx, snapshots: this.snapshots, post: (m) => this.post(m) };
    this.runs = new CompareRuns(this.pc);
    this.restore = new FileRestore(this.pc, this.runs);
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
    this.runs.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private post(m: HostMessage): void {
    this.posted.push(m);
    if (this.posted.length > 200) this.posted.splice(0, this.posted.length - 200);
    void this.panel.webview.postMessage(m);
  }

  private async handle(m: WebviewMessage): Promise<void> {
    switch (m.type) {
      case 'ready':
        return this.sendInit();
      case 'refresh':
        this.runs.clear();
        this.snapshots.clear();
        await this.ctx.tree.refresh();
        return this.sendInit();
      case 'compare':
        return this.runs.compare(m.a, m.b, m.partition);
      case 'openDiff':
        return openDiff(this.pc, this.docs, this.runs.current, m.path, m.change);
      case 'planRestoreFiles':
        return this.restore.plan(m.snapshot, m.paths, m.destination);
      case 'confirmRestoreFiles':
        return this.restore.confirm(m.planId);
      case 'discardRestorePlan':
        this.restore.discard(m.planId);
        return;
      case 'restoreDisk':
        await vscode.commands.executeCommand('devsnap.restoreSnapshot', m.partition !== undefined ? { id: m.snapshot, partition: m.partition } : { id: m.snapshot });
        return;
      case 'recoveryCommand':
        return writeRecoveryCommand(this.pc, m.snapshot, m.partition);
      case 'undoUpgrade':
        await vscode.commands.executeCommand('devsnap.undoUpgrade', { before: m.before, after: m.after });
        return;
    }
  }

  private async sendInit(): Promise<void> {
    const repo = repoOf(this.pc);
    const pair = this.pendingPair;
    this.pendingPair = null;
    this.post(await this.snapshots.initMessage(repo, pair));
  }
}

/** The scheme's provider and the panel's disposal; registered with the commands. */
export function registerPanel(ctx: CommandContext): { docs: SnapshotDocumentProvider; disposables: vscode.Disposable[] } {
  const docs = new SnapshotDocumentProvider(ctx);
  return {
    docs,
    disposables: [vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, docs), { dispose: () => ComparePanel.current?.dispose() }],
  };
}
