// The status-bar item: the newest snapshot's age ("Snapshot 2 h ago"), a running snapshot's,
// restore's or verify's percent, and a warning (the theme's warning colours) when the newest
// snapshot is older than devsnap.staleAfterDays, a snapshot is damaged, or the backup drive is not
// connected. Its tooltip is the repository at a glance (glanceModel.ts glanceTooltip). A click opens
// the Snapshots view; while something runs it shows the progress (the view's row and the
// notification with its Cancel button).
import * as vscode from 'vscode';
import type { Glance } from './glance';
import { glanceTooltip, glanceWarning, statusAccessibility, statusText } from './glanceModel';

export const STATUS_ID = 'devsnap.status';
export const SHOW_PROGRESS = 'devsnap.showProgress';

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly glance: Glance) {
    this.item = vscode.window.createStatusBarItem(STATUS_ID, vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'devsnap Snapshots';
    this.subscriptions.push(
      this.item,
      glance.onDidChange(() => this.update()),
      vscode.commands.registerCommand(SHOW_PROGRESS, async () => {
        await vscode.commands.executeCommand('devsnap.snapshots.focus');
        await vscode.commands.executeCommand('notifications.showList');
      }),
    );
    this.update();
    this.item.show();
  }

  update(): void {
    const g = this.glance.input();
    const warning = !g.activity ? glanceWarning(g) : undefined;
    this.item.text = statusText(g);
    const md = new vscode.MarkdownString(glanceTooltip(g), true);
    this.item.tooltip = md;
    this.item.backgroundColor = warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.color = warning ? new vscode.ThemeColor('statusBarItem.warningForeground') : undefined;
    this.item.command = g.activity ? { command: SHOW_PROGRESS, title: 'Show Progress' } : { command: 'devsnap.snapshots.focus', title: 'Open the Snapshots View' };
    this.item.accessibilityInformation = { label: statusAccessibility(g), role: 'button' };
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}
