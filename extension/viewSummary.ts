// The Snapshots view's header: its description (TreeView.description: the newest snapshot's age, or
// "backup drive not connected"), a summary row on top (the repository, its size, its drive's free
// space, the last verify; the tooltip adds the newest snapshot and the next run), and while a
// snapshot, restore or verify runs a transient row ("Taking snapshot… 42%", then "finishing") and
// the view's own progress bar (window.withProgress on the view), until the result is shown.
import * as vscode from 'vscode';
import type { Glance } from './glance';
import { activityRow, glanceTooltip, glanceWarning, summaryRow, viewDescription } from './glanceModel';
import type { SnapshotTreeNode, SnapshotTreeProvider } from './snapshotTree';
import { SHOW_PROGRESS } from './statusBar';

export const VIEW_ID = 'devsnap.snapshots';

export class ViewSummary implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[] = [];
  private endProgress: (() => void) | undefined;
  private lastKey = '';

  constructor(
    private readonly glance: Glance,
    private readonly tree: SnapshotTreeProvider,
    private readonly treeView: vscode.TreeView<SnapshotTreeNode>,
  ) {
    this.subscriptions.push(glance.onDidChange(() => this.update()));
    this.update();
  }

  update(): void {
    const g = this.glance.input();
    this.treeView.description = viewDescription(g);
    const items: vscode.TreeItem[] = [];
    for (const a of this.glance.activity.activities) {
      const row = activityRow(a);
      const item = new vscode.TreeItem(row.label, vscode.TreeItemCollapsibleState.None);
      item.id = `activity:${a.seq}`;
      item.description = row.description;
      item.iconPath = new vscode.ThemeIcon('sync~spin');
      item.tooltip = `${row.label}${row.description ? `\n${row.description}` : ''}\nClick to show the progress notification (with Cancel).`;
      item.contextValue = 'activity';
      item.command = { command: SHOW_PROGRESS, title: 'Show Progress' };
      item.accessibilityInformation = { label: `${row.label} ${row.description}` };
      items.push(item);
    }
    const summary = summaryRow(g);
    if (summary) {
      const warning = glanceWarning(g);
      const item = new vscode.TreeItem(summary.label, vscode.TreeItemCollapsibleState.None);
      item.id = 'summary';
      item.description = summary.description;
      item.tooltip = new vscode.MarkdownString(glanceTooltip(g), true);
      item.iconPath = warning ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')) : new vscode.ThemeIcon('database');
      item.contextValue = 'repositorySummary';
      item.accessibilityInformation = { label: `Repository ${summary.label}: ${summary.description}` };
      items.push(item);
    }
    // Re-render the rows only when what they say changed (the timer ticks also for other reasons).
    const key = JSON.stringify(
      items.map((i) => [i.id, i.label, i.description, (i.iconPath as vscode.ThemeIcon | undefined)?.id, i.tooltip instanceof vscode.MarkdownString ? i.tooltip.value : i.tooltip]),
    );
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.tree.setHeader(items);
    }
    this.updateProgress();
  }

  /** The view's progress bar runs while any activity does (and until its result is shown). */
  private updateProgress(): void {
    const running = this.glance.activity.activities.length > 0;
    if (running && !this.endProgress) {
      let end!: () => void;
      const done = new Promise<void>((resolve) => (end = resolve));
      this.endProgress = end;
      void vscode.window.withProgress({ location: { viewId: VIEW_ID } }, () => done);
    } else if (!running && this.endProgress) {
      this.endProgress();
      this.endProgress = undefined;
    }
  }

  /** Whether the view's progress bar is running (for tests). */
  get progressShown(): boolean {
    return !!this.endProgress;
  }

  dispose(): void {
    this.endProgress?.();
    this.endProgress = undefined;
    for (const s of this.subscriptions) s.dispose();
  }
}
