// The state of the backups at a glance, kept current: gathers what the status bar and the
// Snapshots view's header show (the tree's snapshots and state, the repository's size and its
// drive's free space, the running activity, the settings, the next scheduled run) and fires
// onDidChange when any of it changes, and when a relative age on screen would read differently
// (one timer, set for the next such moment, at most a minute away; the tree is re-rendered only
// while the view is visible). The texts themselves are glanceModel.ts.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { SECTION } from './config';
import type { ActivityTracker } from './activity';
import { nextAgeRefresh } from './ages';
import type { GlanceInput, NextRun } from './glanceModel';
import { newestSnapshot } from './glanceModel';
import { repositoryUsage, RepositoryUsage } from './repoInfo';
import type { SnapshotTreeNode, SnapshotTreeProvider } from './snapshotTree';

/** Free space is read again at most this often (statfs; cheap). */
const SPACE_EVERY_MS = 60_000;
/** A finished activity's row stays until the tree shows its result, or this long. */
const SETTLE_FALLBACK_MS = 5_000;
/** Progress events re-render at most this often. */
const PROGRESS_THROTTLE_MS = 200;

export class Glance implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  /** Fires when anything shown may have changed (the clock included). */
  readonly onDidChange = this.emitter.event;
  private usage: RepositoryUsage | undefined;
  private usageRepo: string | undefined;
  private usageAt = 0;
  private measuring: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private throttle: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private nextRun: (() => NextRun | undefined) | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private disposed = false;

  constructor(
    private readonly tree: SnapshotTreeProvider,
    private readonly treeView: vscode.TreeView<SnapshotTreeNode>,
    readonly activity: ActivityTracker,
    private readonly getRepository: () => string | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.subscriptions.push(
      tree.onDidLoad(() => {
        activity.settle(); // the result is on screen now
        void this.measure(true);
        this.changed();
      }),
      treeView.onDidChangeVisibility((e) => {
        if (e.visible) tree.refreshAges();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SECTION}.staleAfterDays`)) this.changed();
      }),
    );
    const sub = activity.onDidChange(() => this.activityChanged());
    this.subscriptions.push({ dispose: () => sub.dispose() });
    this.schedule();
  }

  /** The scheduling hook: how to learn the next automatic run (undefined: "not scheduled"). */
  setNextRunProvider(provider: (() => NextRun | undefined) | undefined): void {
    this.nextRun = provider;
    this.changed();
  }

  /** Everything the texts need, as of `now`. */
  input(now: Date = new Date()): GlanceInput {
    const repo = this.getRepository();
    return {
      state: this.tree.state,
      repo,
      snapshots: this.tree.snapshots,
      damagedManifests: this.tree.damaged.length,
      usage: repo && repo === this.usageRepo ? this.usage : undefined,
      activity: this.activity.current,
      staleAfterDays: staleAfterDays(),
      nextRun: this.nextRun?.(),
      now,
    };
  }

  /** Measures the repository's size and its drive's free space again (the size only when `full`). */
  measure(full: boolean): Promise<void> {
    if (this.measuring) return this.measuring;
    const repo = this.getRepository();
    if (!repo || this.tree.state === 'unplugged' || this.tree.state === 'none') {
      this.usage = undefined;
      this.usageRepo = undefined;
      return Promise.resolve();
    }
    this.measuring = (async () => {
      try {
        const u = await repositoryUsage(repo);
        const keepSize = !full && this.usageRepo === repo && this.usage?.sizeBytes !== undefined;
        this.usage = keepSize ? { ...u, sizeBytes: this.usage!.sizeBytes, sizePartial: this.usage!.sizePartial } : u;
        this.usageRepo = repo;
        this.usageAt = Date.now();
      } catch (err) {
        this.log(`Could not measure ${repo}: ${(err as Error).message}`);
      } finally {
        this.measuring = undefined;
      }
      if (!this.disposed) this.changed();
    })();
    return this.measuring;
  }

  private activityChanged(): void {
    const a = this.activity.activities;
    if (a.some((x) => x.done)) {
      if (this.settleTimer) clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => this.activity.settle(), SETTLE_FALLBACK_MS);
    }
    // Start and end at once; progress at most every PROGRESS_THROTTLE_MS.
    const current = this.activity.current;
    if (!current || current.percent === undefined || current.finishing) {
      this.changed();
      return;
    }
    if (this.throttle) return;
    this.throttle = setTimeout(() => {
      this.throttle = undefined;
      this.changed();
    }, PROGRESS_THROTTLE_MS);
  }

  private changed(): void {
    if (this.disposed) return;
    if (this.throttle) {
      clearTimeout(this.throttle);
      this.throttle = undefined;
    }
    this.emitter.fire();
    this.schedule();
  }

  /** The next tick: when the newest snapshot's age, or a visible one's, next reads differently. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.disposed) return;
    const newest = newestSnapshot(this.tree.snapshots);
    const dates = this.treeView.visible ? this.tree.snapshots.map((s) => s.created) : newest ? [newest.created] : [];
    let delay = nextAgeRefresh(dates) + 20; // a little past the moment, so the text has changed
    const days = staleAfterDays();
    const stale = newest && days > 0 ? Date.parse(newest.created) + days * 86_400_000 - Date.now() : NaN;
    if (stale > 0) delay = Math.min(delay, stale + 20); // the moment it turns stale
    this.timer = setTimeout(() => this.tick(), delay);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.disposed) return;
    if (this.treeView.visible) this.tree.refreshAges();
    this.checkPresence();
    if (Date.now() - this.usageAt >= SPACE_EVERY_MS) void this.measure(false);
    this.changed();
  }

  /** A drive plugged in or pulled out since the last load: reload (the tree's state follows). */
  private checkPresence(): void {
    const repo = this.getRepository();
    if (!repo) return;
    const state = this.tree.state;
    const there = fs.existsSync(path.join(repo, 'config.json'));
    if ((state === 'unplugged' && there) || ((state === 'ok' || state === 'empty') && !there)) this.tree.scheduleRefresh(0);
  }

  dispose(): void {
    this.disposed = true;
    for (const t of [this.timer, this.throttle, this.settleTimer]) if (t) clearTimeout(t);
    for (const s of this.subscriptions) s.dispose();
    this.emitter.dispose();
  }
}

/** devsnap.staleAfterDays: warn when the newest snapshot is older (0: never). */
export function staleAfterDays(): number {
  const v = vscode.workspace.getConfiguration(SECTION).get<unknown>('staleAfterDays', 7);
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}
