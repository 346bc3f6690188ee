// Restoring files from the panel: the dry run first (its plan is shown in the panel and kept here by
// id), then, once the webview confirms it, the restore with progress.
import * as crypto from 'crypto';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../imaging/protocol';
import { EngineError, RestoreFilesOptions } from '../engine';
import { formatProgress } from '../../imaging/core/format';
import { snapshotName } from '../snapshotModel';
import * as ui from '../ui';
import { PLAN_ENTRY_LIMIT } from '../../webview-ui/messages';
import { comparedPartition, CompareRuns } from './compareRuns';
import { messageOf, PanelContext, repoOf, snapshotFiles } from './panelContext';

interface Plan {
  id: string;
  snapshot: SnapshotSummary;
  opts: RestoreFilesOptions;
  original: boolean;
}

export class FileRestore {
  private readonly plans = new Map<string, Plan>();

  /** `runs`: the restored files are in the partition the current comparison looked at. */
  constructor(
    private readonly pc: PanelContext,
    private readonly runs: CompareRuns,
  ) {}

  discard(planId: string): void {
    this.plans.delete(planId);
  }

  async plan(id: string, paths: string[], destination: 'original' | 'folder'): Promise<void> {
    const repo = repoOf(this.pc);
    if (!repo) return;
    try {
      const snap = await this.pc.snapshots.snapshot(id);
      const partition = comparedPartition(this.runs.current);
      let to: string;
      let inPlace: boolean;
      if (destination === 'original') {
        const disks = await this.pc.snapshots.listDisks();
        const ps = this.pc.snapshots.toPanelSnapshot(snap, disks);
        const mp = ps.partitions.find((p) => p.index === partition)?.mountpoint;
        if (!mp) {
          this.pc.post({
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
          this.pc.post({ type: 'restoreCancelled', planId: null });
          return;
        }
        to = picked[0].fsPath;
        inPlace = false;
      }
      const opts: RestoreFilesOptions = { repo, id: snap.id, paths, to, inPlace, partition, dryRun: true };
      const r = await snapshotFiles(this.pc).restoreFiles(opts);
      const planId = crypto.randomBytes(8).toString('hex');
      this.plans.set(planId, { id: planId, snapshot: snap, opts: { ...opts, dryRun: false }, original: destination === 'original' });
      const changing = r.entries.filter((e) => e.action !== 'unchanged');
      this.pc.post({
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
      this.pc.post({ type: 'restoreFailed', planId: null, message: messageOf(err) });
    }
  }

  async confirm(planId: string): Promise<void> {
    const plan = this.plans.get(planId);
    if (!plan) {
      this.pc.post({ type: 'restoreFailed', planId, message: 'That restore plan is no longer valid: run the dry run again.' });
      return;
    }
    if (plan.original) {
      const ok =
        (await ui.confirmDestructive(
          `Restore ${plan.opts.paths.length} item(s) from snapshot ${snapshotName(plan.snapshot)} to their original place under ${plan.opts.to}?`,
          'Files that changed since are replaced by their version in the snapshot (files not in the snapshot are left alone).',
          'Restore',
        )) === 'Restore';
      if (!ok) {
        this.pc.post({ type: 'restoreCancelled', planId });
        return;
      }
    }
    this.plans.delete(planId);
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `devsnap: Restoring files from '${plan.snapshot.label}'`, cancellable: true },
        (progress, token) =>
          snapshotFiles(this.pc).restoreFiles(
            plan.opts,
            (ev) => {
              const message = formatProgress(ev);
              progress.report({ message });
              this.pc.post({ type: 'restoreProgress', planId, message, fraction: ev.bytesTotal > 0 ? ev.bytesDone / ev.bytesTotal : null });
            },
            token,
          ),
      );
      for (const w of r.warnings) this.pc.ctx.log(`restore-files: ${w}`);
      this.pc.post({ type: 'restoreDone', planId, targetRoot: r.targetRoot, totals: r.totals, bytesWritten: r.bytesWritten, warnings: r.warnings });
      void ui.info(`Restored ${r.totals.create + r.totals.replace} item(s) from ${snapshotName(plan.snapshot)} into ${r.targetRoot}.`);
    } catch (err) {
      if (err instanceof EngineError && err.cancelled) this.pc.post({ type: 'restoreCancelled', planId });
      else this.pc.post({ type: 'restoreFailed', planId, message: messageOf(err) });
    }
  }
}
