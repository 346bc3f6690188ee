// The Snapshots view (`devsnap.snapshots`): snapshots grouped by source disk, newest first;
// expanding a snapshot shows its partitions. Snapshots whose manifest is damaged come first, in a
// group of their own with an error icon and the engine's message (never left out). Reloads from the engine on refresh(), when the
// repository's snapshots/ folder changes (FileSystemWatcher) and after every command.
// Sets the context key `devsnap.repositoryState` (none | missing | unplugged | empty | ok | error)
// that the view's welcome content (package.json "viewsWelcome") depends on: `unplugged` when the
// drive that held the repository is not connected (repoInfo.ts). Header rows (the summary and a
// running snapshot's row, viewSummary.ts) come first; refreshAges() re-renders the relative ages.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DamagedSnapshot, PartitionInfo, SnapshotSummary } from '../imaging/protocol';
import type { DevsnapConfig } from './config';
import { Engine, EngineError } from './engine';
import { isS3Repository } from './paths';
import { repositoryPresence } from './repoInfo';
import { isKeysRefusal } from './s3Keys';
import { isAutomaticLabel } from '../imaging/protocol';
import {
  damagedGroupText,
  damagedItemText,
  DiskGroup,
  diskContextValue,
  groupSnapshots,
  isFuzzy,
  partitionDescription,
  partitionContextValue,
  partitionLabel,
  partitionTooltip,
  snapshotContextValue,
  snapshotDescription,
  snapshotIconKind,
  snapshotTooltipMarkdown,
  stateWords,
} from './snapshotModel';
import type { SnapshotSpace } from './snapshotModel';

export type RepositoryState = 'none' | 'missing' | 'unplugged' | 'empty' | 'ok' | 'error';

/** Which repositories held snapshots before (so that a missing one is an unplugged drive, not a new folder). */
export interface RepositoryMemory {
  known(repo: string): boolean;
  remember(repo: string): void;
}

/** A row above the snapshots (the repository summary, a running snapshot): its item is made by its owner. */
export class HeaderNode {
  readonly kind = 'header';
  constructor(readonly item: vscode.TreeItem) {}
}

export class DiskGroupNode {
  readonly kind = 'group';
  constructor(readonly group: DiskGroup) {}
}
export class SnapshotNode {
  readonly kind = 'snapshot';
  constructor(
    readonly snapshot: SnapshotSummary,
    readonly parent: DiskGroupNode,
  ) {}
  get id(): string {
    return this.snapshot.id;
  }
  /** The snapshot of the same disk taken just before this one (its group is newest first). */
  get previous(): SnapshotSummary | undefined {
    const list = this.parent.group.snapshots;
    return list[list.findIndex((s) => s.id === this.snapshot.id) + 1];
  }
}
export class PartitionNode {
  readonly kind = 'partition';
  constructor(
    readonly partition: PartitionInfo,
    readonly parent: SnapshotNode,
  ) {}
}
export class DamagedGroupNode {
  readonly kind = 'damagedGroup';
  constructor(readonly damaged: readonly DamagedSnapshot[]) {}
}
export class DamagedNode {
  readonly kind = 'damaged';
  constructor(
    readonly damaged: DamagedSnapshot,
    readonly parent: DamagedGroupNode,
  ) {}
}
export type SnapshotTreeNode = HeaderNode | DiskGroupNode | SnapshotNode | PartitionNode | DamagedGroupNode | DamagedNode;

export class SnapshotTreeProvider implements vscode.TreeDataProvider<SnapshotTreeNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<SnapshotTreeNode | undefined | void>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly loadedEmitter = new vscode.EventEmitter<readonly SnapshotSummary[]>();
  /** Fires after every reload with the snapshots now shown. */
  readonly onDidLoad = this.loadedEmitter.event;

  private groups: DiskGroupNode[] = [];
  private damagedGroup: DamagedGroupNode | undefined;
  private snapshotNodes = new Map<string, SnapshotNode>();
  private list: SnapshotSummary[] = [];
  private _state: RepositoryState = 'none';
  private _lastError: EngineError | Error | undefined;
  private watcher: vscode.Disposable | undefined;
  private watchedRepo: string | undefined;
  private watchedExists = false;
  private debounce: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private header: HeaderNode[] = [];
  /** What deleting a snapshot frees, for its tooltip (storageUsage.ts), when known. */
  spaceOf?: (id: string) => SnapshotSpace | undefined;
  /** Show only this host's snapshots (a repository several workstations share); undefined: every host's. */
  private _hostFilter: string | undefined;

  get hostFilter(): string | undefined {
    return this._hostFilter;
  }
  /** The hosts whose snapshots the repository holds, sorted. */
  get hosts(): string[] {
    return [...new Set(this.list.map((s) => s.host))].sort();
  }
  /** Shows one host's snapshots, or every host's (undefined). */
  setHostFilter(host: string | undefined): void {
    this._hostFilter = host;
    this.setData(this.list, this.damagedGroup?.damaged ? [...this.damagedGroup.damaged] : [], this._state);
  }

  constructor(
    private readonly getEngine: () => Engine,
    private readonly getConfig: () => DevsnapConfig,
    private readonly log: (line: string, level?: 'info' | 'warn' | 'error') => void,
    private readonly memory?: RepositoryMemory,
  ) {}

  /** The rows above the snapshots (none hides them). */
  setHeader(items: readonly vscode.TreeItem[]): void {
    this.header = items.map((i) => new HeaderNode(i));
    this.changeEmitter.fire();
  }
  get headerItems(): readonly vscode.TreeItem[] {
    return this.header.map((h) => h.item);
  }

  /** Re-renders the rows (their relative ages are computed when rendered). */
  refreshAges(): void {
    this.changeEmitter.fire();
  }

  /** The snapshots last loaded (newest last, as the engine lists them). */
  get snapshots(): readonly SnapshotSummary[] {
    return this.list;
  }
  /** Snapshots whose manifest is damaged, as last loaded. */
  get damaged(): readonly DamagedSnapshot[] {
    return this.damagedGroup?.damaged ?? [];
  }
  get state(): RepositoryState {
    return this._state;
  }
  get lastError(): Error | undefined {
    return this._lastError;
  }

  /** Reloads from the engine. Concurrent calls share one load (plus one more if asked meanwhile). */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          await this.load();
        } while (this.again);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** Refresh soon, coalescing bursts of file events. */
  scheduleRefresh(delayMs = 400): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.refresh();
    }, delayMs);
  }

  private async load(): Promise<void> {
    const repo = this.getConfig().repository;
    this.updateWatcher(repo && !isS3Repository(repo) ? repo : undefined); // a bucket is not watched
    let snapshots: SnapshotSummary[] = [];
    let damaged: DamagedSnapshot[] = [];
    let state: RepositoryState;
    this._lastError = undefined;
    const presence = repo ? repositoryPresence(repo, this.memory?.known(repo) ?? false) : undefined;
    if (!repo) {
      state = 'none';
    } else if (presence === 'unplugged') {
      state = 'unplugged';
    } else if (presence === 'new') {
      state = 'missing';
    } else {
      try {
        ({ snapshots, damaged } = await this.getEngine().listRepository(repo));
        state = snapshots.length || damaged.length ? 'ok' : 'empty';
        if (state === 'ok') this.memory?.remember(repo);
        for (const d of damaged) this.log(`Snapshot ${d.id} in ${repo} cannot be used: ${d.message}`, 'warn');
      } catch (err) {
        if (err instanceof EngineError && err.code === 'NO_REPO' && (isS3Repository(repo) || isEmptyDir(repo))) {
          state = 'missing'; // an empty folder or bucket: the first snapshot makes it a repository
        } else {
          state = 'error';
          this._lastError = err as Error;
          this.log(`Could not list the snapshots in ${repo}: ${err instanceof EngineError ? err.toUserMessage() : (err as Error).message}`, 'error');
        }
      }
    }
    this.setData(snapshots, damaged, state);
  }

  private setData(snapshots: SnapshotSummary[], damaged: DamagedSnapshot[], state: RepositoryState): void {
    this.list = snapshots;
    this.damagedGroup = damaged.length ? new DamagedGroupNode(damaged) : undefined;
    this._state = state;
    const hosts = new Set(snapshots.map((s) => s.host));
    if (this._hostFilter !== undefined && !hosts.has(this._hostFilter)) this._hostFilter = undefined; // that host's snapshots are gone
    this.groups = groupSnapshots(this._hostFilter === undefined ? snapshots : snapshots.filter((s) => s.host === this._hostFilter), hosts.size).map((g) => new DiskGroupNode(g));
    this.snapshotNodes.clear();
    for (const g of this.groups) for (const s of g.group.snapshots) this.snapshotNodes.set(s.id, new SnapshotNode(s, g));
    void vscode.commands.executeCommand('setContext', 'devsnap.repositoryState', state);
    // Which welcome text explains an error: a folder that holds something else, or another failure.
    const code = state === 'error' && this._lastError instanceof EngineError ? this._lastError.code : undefined;
    const keys = state === 'error' && this._lastError instanceof EngineError && isKeysRefusal(this._lastError);
    const why = keys ? 'keys' : code === 'NO_REPO' ? 'notRepository' : code === 'BAD_PASSWORD' ? 'locked' : 'other';
    void vscode.commands.executeCommand('setContext', 'devsnap.repositoryError', state === 'error' ? why : undefined);
    void vscode.commands.executeCommand('setContext', 'devsnap.hasSnapshots', snapshots.length > 0);
    void vscode.commands.executeCommand('setContext', 'devsnap.severalHosts', hosts.size > 1);
    this.changeEmitter.fire();
    this.loadedEmitter.fire(snapshots);
  }

  private updateWatcher(repo: string | undefined): void {
    // Watch again once the folder exists: a watcher on a missing folder may never fire.
    const exists = !!repo && fs.existsSync(path.join(repo, 'snapshots'));
    if (repo === this.watchedRepo && exists === this.watchedExists) return;
    this.watcher?.dispose();
    this.watcher = undefined;
    this.watchedRepo = repo;
    this.watchedExists = exists;
    if (!repo) return;
    try {
      // Manifests only: their summaries follow them, and a listing that rebuilds a summary must not refresh again.
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(repo), 'snapshots/*.json'));
      const on = () => this.scheduleRefresh();
      this.watcher = vscode.Disposable.from(w, w.onDidCreate(on), w.onDidChange(on), w.onDidDelete(on));
    } catch (err) {
      this.log(`Could not watch ${repo}: ${(err as Error).message}`, 'warn');
    }
  }

  /** The tree node of a snapshot (for reveal), if it is shown. */
  nodeFor(id: string): SnapshotNode | undefined {
    return this.snapshotNodes.get(id);
  }
  find(id: string): SnapshotSummary | undefined {
    return this.snapshotNodes.get(id)?.snapshot ?? this.list.find((s) => s.id === id);
  }

  getChildren(element?: SnapshotTreeNode): SnapshotTreeNode[] {
    if (!element) return [...this.header, ...(this.damagedGroup ? [this.damagedGroup] : []), ...this.groups];
    if (element instanceof DamagedGroupNode) return element.damaged.map((d) => new DamagedNode(d, element));
    if (element instanceof DiskGroupNode) return element.group.snapshots.map((s) => this.snapshotNodes.get(s.id)!).filter(Boolean);
    if (element instanceof SnapshotNode) return [...(element.snapshot.partitions ?? [])].sort((a, b) => a.index - b.index).map((p) => new PartitionNode(p, element));
    return [];
  }

  getParent(element: SnapshotTreeNode): SnapshotTreeNode | undefined {
    if (element instanceof HeaderNode || element instanceof DiskGroupNode || element instanceof DamagedGroupNode) return undefined;
    return element.parent;
  }

  getTreeItem(element: SnapshotTreeNode): vscode.TreeItem {
    if (element instanceof HeaderNode) return element.item;
    if (element instanceof DamagedGroupNode) {
      const t = damagedGroupText(element.damaged.length);
      const item = new vscode.TreeItem(t.label, vscode.TreeItemCollapsibleState.Expanded);
      item.id = 'damaged';
      item.description = t.description;
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('list.errorForeground'));
      item.contextValue = 'damagedGroup';
      return item;
    }
    if (element instanceof DamagedNode) {
      const t = damagedItemText(element.damaged);
      const item = new vscode.TreeItem(t.label, vscode.TreeItemCollapsibleState.None);
      item.id = `damaged:${element.damaged.id}`;
      item.description = t.description;
      item.tooltip = t.tooltip;
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('list.errorForeground'));
      item.contextValue = 'damagedSnapshot'; // no snapshot command applies to it
      item.accessibilityInformation = { label: `Damaged snapshot ${t.label}: ${t.description}` };
      return item;
    }
    if (element instanceof DiskGroupNode) {
      const g = element.group;
      const item = new vscode.TreeItem(g.label, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `disk:${g.key}`;
      item.description = g.description;
      item.iconPath = new vscode.ThemeIcon(g.source.path.startsWith('/dev/') ? 'server' : 'file-binary');
      item.tooltip = `${g.source.path}${g.source.model ? `\n${g.source.model}` : ''}\n${g.description}`;
      item.contextValue = diskContextValue(g);
      return item;
    }
    if (element instanceof SnapshotNode) {
      const s = element.snapshot;
      const item = new vscode.TreeItem(s.label || '(no label)', s.partitions?.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `snapshot:${s.id}`;
      // Automatic snapshots (the timer's, the package managers' hooks') say so: retention removes only them.
      item.description = `${snapshotDescription(s)}${isAutomaticLabel(s.label) ? ' · automatic' : ''}`;
      const md = new vscode.MarkdownString(snapshotTooltipMarkdown(s, undefined, this.spaceOf?.(s.id)), true);
      item.tooltip = md;
      const previous = element.previous;
      item.contextValue = snapshotContextValue(s, !previous);
      item.iconPath = snapshotIcon(snapshotIconKind(s), isFuzzy(s));
      item.accessibilityInformation = { label: `Snapshot ${s.label}, ${item.description}, ${stateWords(s)}` };
      // A click compares it with the snapshot before it (as a click on a file in Source Control opens
      // its changes); the oldest has nothing before it, so a click only selects it.
      if (previous) item.command = { command: 'devsnap.compareWithPrevious', title: 'Compare with Previous', arguments: [{ id: s.id }] };
      return item;
    }
    const p = element.partition;
    const item = new vscode.TreeItem(partitionLabel(p), vscode.TreeItemCollapsibleState.None);
    item.id = `partition:${element.parent.snapshot.id}:${p.index}`;
    item.description = partitionDescription(p);
    item.tooltip = partitionTooltip(p);
    item.iconPath = new vscode.ThemeIcon('layers');
    item.contextValue = partitionContextValue(p, !!element.parent.previous);
    return item;
  }

  dispose(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.dispose();
    this.changeEmitter.dispose();
    this.loadedEmitter.dispose();
  }
}

/** The state's icon; a fuzzy read keeps its state's shape in the warning colour (damage stays red). */
function snapshotIcon(kind: ReturnType<typeof snapshotIconKind>, fuzzy = false): vscode.ThemeIcon {
  const warn = fuzzy ? new vscode.ThemeColor('list.warningForeground') : undefined;
  switch (kind) {
    case 'damaged':
      return new vscode.ThemeIcon('error', new vscode.ThemeColor('list.errorForeground'));
    case 'pinned':
      return new vscode.ThemeIcon('pinned', warn);
    case 'verified':
      return new vscode.ThemeIcon('verified-filled', warn ?? new vscode.ThemeColor('testing.iconPassed'));
    default:
      // A badge without its check (not an empty circle, which reads as a radio button).
      return new vscode.ThemeIcon('unverified', warn);
  }
}

function isEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch {
    return false;
  }
}
