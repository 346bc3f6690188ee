// Comparing a pair for the panel: `devsnap diff` (changed bytes per partition) and `devsnap changes`
// (summary, then every change, paged from the engine and streamed in chunks); the last runs kept per pair.
import * as vscode from 'vscode';
import type { ChangesResult } from '../engine';
import { formatProgress } from '../../imaging/core/format';
import { CHANGES_CHUNK, HostMessage } from '../../webview-ui/messages';
import { messageOf, PanelContext, repoOf, snapshotFiles } from './panelContext';

/** Changes in the first engine page (the summary comes with it); the rest come in one more run. */
const FIRST_PAGE = 5000;

export interface CompareRun {
  a: string;
  b: string;
  /** The partition asked for (undefined: the engine's choice). */
  partition?: number;
  /** Everything sent for this pair, in order (replayed after the webview is rebuilt). */
  sent: HostMessage[];
  done: boolean;
  cts: vscode.CancellationTokenSource;
}

/** The partition whose files the run compared (from its summary), once it has one. */
export function comparedPartition(run: CompareRun | null): number | undefined {
  const summary = run?.sent.find((m): m is Extract<HostMessage, { type: 'summary' }> => m.type === 'summary');
  return summary?.partition;
}

export class CompareRuns {
  /** The pair the panel shows now. */
  current: CompareRun | null = null;
  private readonly cache = new Map<string, CompareRun>();

  constructor(private readonly pc: PanelContext) {}

  /** Forgets the kept runs (the panel's Refresh). */
  clear(): void {
    this.cache.clear();
  }

  dispose(): void {
    for (const r of this.cache.values()) r.cts.cancel();
    this.current?.cts.cancel();
  }

  async compare(a: string, b: string, partition?: number): Promise<void> {
    const repo = repoOf(this.pc);
    if (!repo) return;
    const keyOf = (r: { a: string; b: string; partition?: number }) => `${r.a}|${r.b}|${r.partition ?? ''}`;
    const key = keyOf({ a, b, partition });
    if (this.current && keyOf(this.current) !== key && !this.current.done) {
      // Stop it; it restarts on demand.
      this.current.cts.cancel();
      this.cache.delete(keyOf(this.current));
    }
    const cached = this.cache.get(key);
    if (cached) {
      this.current = cached;
      // Replay what this pair has sent so far; a running comparison goes on sending.
      for (const m of cached.sent) this.pc.post(m);
      return;
    }
    const run: CompareRun = { a, b, ...(partition !== undefined ? { partition } : {}), sent: [], done: false, cts: new vscode.CancellationTokenSource() };
    const part = partition !== undefined ? { partition } : {};
    this.current = run;
    this.cache.set(key, run);
    while (this.cache.size > 4) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.get(oldest)?.cts.cancel();
      this.cache.delete(oldest);
    }
    const send = (m: HostMessage, keep = true) => {
      if (keep) run.sent.push(m);
      if (this.current === run) this.pc.post(m);
    };
    send({ type: 'compareStarted', a, b });
    const token = run.cts.token;
    const files = snapshotFiles(this.pc);
    const [sa, sb] = await Promise.all([this.pc.snapshots.snapshot(a), this.pc.snapshots.snapshot(b)]);

    const blocks = (async () => {
      try {
        const d = await this.pc.ctx.engine().diff(repo, a, b, token);
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
        const first: ChangesResult = await files.changes({ repo, a, b, ...part, limit: FIRST_PAGE }, progress, token);
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
          const rest = await files.changes({ repo, a, b, ...part, offset, limit: total - offset }, progress, token);
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
}
