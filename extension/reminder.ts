// The reminder when snapshots are stale (issue 11, item 5): a notification, at most once a day per
// repository, when the newest snapshot is older than devsnap.staleAfterDays, with Take Snapshot, Set
// Up Automatic Snapshots and Don't Remind Me (kept in VS Code's global state), as Time Machine's
// "no backup for N days" reminder.
import * as vscode from 'vscode';
import { staleAfterDays } from './glance';
import * as ui from './ui';

const DAY = 86400_000;
const TAKE = 'Take Snapshot';
const AUTO = 'Set Up Automatic Snapshots';
const NEVER = "Don't Remind Me";

export class StaleReminder {
  constructor(
    private readonly state: vscode.Memento,
    private readonly repository: () => string | undefined,
  ) {}

  /** After the tree loaded `snapshots`: reminds when due; resolves with whether it did. */
  async check(snapshots: readonly { created: string }[], now = new Date()): Promise<boolean> {
    const days = staleAfterDays();
    const repo = this.repository();
    if (!repo || days <= 0 || !snapshots.length || this.state.get<boolean>('devsnap.reminder.off')) return false;
    const newest = Math.max(...snapshots.map((s) => Date.parse(s.created)));
    const age = Math.floor((now.getTime() - newest) / DAY);
    if (age <= days) return false;
    const key = `devsnap.reminder.at:${repo}`;
    const last = Date.parse(this.state.get<string>(key) ?? '');
    if (now.getTime() - last < DAY) return false;
    const shown = this.state.update(key, now.toISOString()); // kept in memory at once: the next load does not remind again
    void ui.warn(`Your newest snapshot is ${age} days old. Take one now, or let devsnap take them on its own.`, TAKE, AUTO, NEVER).then(async (a) => {
      if (a === TAKE) await vscode.commands.executeCommand('devsnap.takeSnapshot');
      else if (a === AUTO) await vscode.commands.executeCommand('devsnap.setUpAutomatic');
      else if (a === NEVER) await this.state.update('devsnap.reminder.off', true);
    });
    await shown;
    return true;
  }
}
