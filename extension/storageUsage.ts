// What each snapshot costs the repository (the engine's `usage` operation): the stored bytes only it
// references, which deleting it frees, and the repository's total. Fetched after the Snapshots view
// loads a different set of snapshots (a snapshot taken or deleted, another repository), in the
// background; the tree's tooltips read it from here. Also what deleting some snapshots frees, for
// the delete confirmation.
import * as vscode from 'vscode';
import type { SnapshotSummary, SnapshotUsage, UsageResult } from '../imaging/protocol';
import type { Engine } from './engine';
import { formatBytes } from '../imaging/core/format';

export class StorageUsage implements vscode.Disposable {
  private byId = new Map<string, SnapshotUsage>();
  private _total: UsageResult['total'] | undefined;
  private key = '';
  private pending: Promise<void> = Promise.resolve();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when new figures arrived. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly engine: () => Engine,
    private readonly repository: () => string | undefined,
    private readonly log: (line: string) => void,
  ) {}

  get total(): UsageResult['total'] | undefined {
    return this._total;
  }
  of(id: string): SnapshotUsage | undefined {
    return this.byId.get(id);
  }

  /** Resolves once the figures of the last update() are there (or failed). */
  settled(): Promise<void> {
    return this.pending;
  }

  /** Reads the figures again when the repository or its set of snapshots changed; resolves when they are there. */
  update(snapshots: readonly SnapshotSummary[]): Promise<void> {
    const repo = this.repository();
    const key =
      repo && snapshots.length
        ? `${repo}\0${snapshots
            .map((s) => s.id)
            .sort()
            .join(',')}`
        : '';
    if (key === this.key) return this.pending;
    this.key = key;
    // Figures of another set of snapshots are wrong for this one (a new snapshot shares what another owned).
    this.byId = new Map();
    this._total = undefined;
    this.changed.fire();
    if (key) this.pending = this.fetch(repo!, key);
    return this.pending;
  }

  private async fetch(repo: string, key: string): Promise<void> {
    try {
      const r = await this.engine().call('usage', { repo });
      if (this.key !== key) return; // another load meanwhile
      this.byId = new Map(r.snapshots.map((s) => [s.id, s]));
      this._total = r.total;
      this.changed.fire();
    } catch (err) {
      if (this.key === key) this.key = ''; // try again on the next load
      this.log(`Could not read the repository's space per snapshot: ${(err as Error).message}`);
    }
  }

  /** What deleting `ids` together frees (forget + prune), or undefined when it cannot be said. */
  async freedByDeleting(repo: string, ids: string[]): Promise<number | undefined> {
    try {
      return (await this.engine().call('usage', { repo, forget: ids })).forget?.freedBytes;
    } catch (err) {
      this.log(`Could not tell what deleting ${ids.join(', ')} frees: ${(err as Error).message}`);
      return undefined;
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** "Deleting it frees 1.2 GB." */
export function freedText(bytes: number, count: number): string {
  const it = count === 1 ? 'it' : 'them';
  return `Deleting ${it} frees ${formatBytes(bytes)}${bytes === 0 ? ` (other snapshots share all of ${count === 1 ? 'its' : 'their'} data)` : ''}.`;
}
