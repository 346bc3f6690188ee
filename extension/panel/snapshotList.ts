// The snapshot and disk lists the compare panel sends at init (and looks snapshots up in), with the
// disks cached until the panel's Refresh.
import type { DiskInfo, SnapshotSummary } from '../../imaging/protocol';
import { EngineError } from '../engine';
import { CommandContext, currentSnapshots } from '../commands/common';
import { HostMessage, PanelSnapshot } from '../../webview-ui/messages';

export class PanelSnapshots {
  private disks: DiskInfo[] | null = null;

  constructor(private readonly ctx: CommandContext) {}

  /** Forgets the cached disks (the panel's Refresh). */
  clear(): void {
    this.disks = null;
  }

  async listDisks(): Promise<DiskInfo[]> {
    if (this.disks) return this.disks;
    try {
      this.disks = await this.ctx.engine().listDisks();
    } catch (err) {
      this.ctx.log(`Compare panel: could not list disks: ${(err as Error).message}`);
      this.disks = [];
    }
    return this.disks;
  }

  toPanelSnapshot(s: SnapshotSummary, disks: DiskInfo[]): PanelSnapshot {
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

  async snapshot(id: string): Promise<SnapshotSummary> {
    const all = await currentSnapshots(this.ctx);
    const s = all.find((x) => x.id === id);
    if (!s) throw new EngineError('NOT_FOUND', `There is no snapshot ${id} in the repository any more.`, 'Refresh the panel.');
    return s;
  }

  /** The 'init' message: every snapshot (none without a repository) and the pair to compare. */
  async initMessage(repo: string | undefined, pair: { a: string; b: string; partition?: number } | null): Promise<HostMessage> {
    if (!repo) return { type: 'init', snapshots: [], a: null, b: null, repo: null };
    const [all, disks] = await Promise.all([currentSnapshots(this.ctx), this.listDisks()]);
    return {
      type: 'init',
      snapshots: all.map((s) => this.toPanelSnapshot(s, disks)),
      a: pair?.a ?? null,
      b: pair?.b ?? null,
      repo,
      ...(pair?.partition !== undefined ? { partition: pair.partition } : {}),
    };
  }
}
