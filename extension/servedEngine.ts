// The Engine of the current user: every operation through the engine service (engineClient.ts),
// one long-lived process per window instead of one CLI process per call.
import type { DiskInfo, ListResult, SnapshotPlan, SnapshotSummary } from '../imaging/protocol';
import type { Inventory } from '../imaging/inventory/inventory';
import { CallOptions, EngineClient } from './engineClient';
import {
  CancellationLike, ChangesOptions, ChangesResult, DiffResult, Engine, EngineError, ForgetOptions, ForgetResult, ListDirResult, ProgressListener, PruneResult,
  RestoreFilesOptions, RestoreOptions, RestoreResult, SnapshotFilesEngine, SnapshotOptions, SnapshotResult, VerifyOptions, VerifyResult,
} from './engine';
import type { RestoreFilesResult } from '../imaging/protocol';

const partition = (p: number | undefined) => (p !== undefined ? { partition: p } : {});
const opts = (progress?: ProgressListener, token?: CancellationLike): CallOptions => ({ ...(progress ? { progress } : {}), ...(token ? { token } : {}) });

export class ServedEngine implements Engine, SnapshotFilesEngine {
  constructor(readonly client: EngineClient) {}

  async listDisks(token?: CancellationLike): Promise<DiskInfo[]> {
    return (await this.client.call('listDisks', {}, opts(undefined, token))).disks;
  }
  async listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]> {
    return (await this.listRepository(repo, token)).snapshots;
  }
  listRepository(repo: string, token?: CancellationLike): Promise<ListResult> {
    return this.client.call('listSnapshots', { repo }, opts(undefined, token));
  }
  async showSnapshot(repo: string, id: string): Promise<SnapshotSummary> {
    return (await this.client.call('show', { repo, snapshot: id })).snapshot;
  }
  snapshot(o: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult> {
    const params = { repo: o.repo, source: o.source, label: o.label, ...(o.compressionLevel ? { compressionLevel: o.compressionLevel } : {}), ...(o.fullRead ? { fullRead: true } : {}) };
    return this.client.call('snapshot', params, opts(onProgress ?? noop, token));
  }
  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan> {
    return this.client.call('planSnapshot', { repo, source }, opts(undefined, token));
  }
  async verify(o: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult> {
    try {
      return await this.client.call('verify', { repo: o.repo, ...(o.id ? { snapshot: o.id } : {}) }, opts(onProgress ?? noop, token));
    } catch (err) {
      // Damage that stopped the verification itself (a manifest that cannot be read): a failed verification.
      if (err instanceof EngineError && err.code === 'DAMAGED') {
        return { ok: false, chunksChecked: 0, bytesChecked: 0, snapshots: [{ id: o.id ?? '', label: '', ok: false, damage: [{ partition: null, offset: 0, length: 0, chunk: '', message: err.message }] }] };
      }
      throw err;
    }
  }
  restore(o: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult> {
    return this.client.call('restore', { repo: o.repo, snapshot: o.id, target: o.target, ...partition(o.partition), ...(o.dryRun ? { dryRun: true } : {}) }, opts(onProgress ?? noop, token));
  }
  forget(o: ForgetOptions): Promise<ForgetResult> {
    if ('ids' in o) return this.client.call('forget', { repo: o.repo, ids: o.ids });
    // Rules set to 0 (or nothing) are off, as in the settings.
    const policy = Object.fromEntries(Object.entries(o.policy).filter(([, n]) => typeof n === 'number' && n > 0).map(([k, n]) => [k, Math.floor(n as number)]));
    return this.client.call('forget', { repo: o.repo, policy });
  }
  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult> {
    return this.client.call('prune', { repo }, opts(onProgress ?? noop, token));
  }
  async label(repo: string, id: string, text: string): Promise<SnapshotSummary> {
    return (await this.client.call('label', { repo, snapshot: id, label: text })).snapshot;
  }
  async pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary> {
    return (await this.client.call('pin', { repo, snapshot: id, pinned })).snapshot;
  }
  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult> {
    return this.client.call('diff', { repo, a, b }, opts(undefined, token));
  }
  inventory(repo: string, id: string, p?: number, token?: CancellationLike): Promise<Inventory> {
    return this.client.call('inventory', { repo, snapshot: id, ...partition(p) }, opts(undefined, token));
  }
  changes(o: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult> {
    const params = { repo: o.repo, a: o.a, b: o.b, ...partition(o.partition), ...(o.path ? { path: o.path } : {}), ...(o.offset !== undefined ? { offset: o.offset } : {}), ...(o.limit !== undefined ? { limit: o.limit } : {}) };
    return this.client.call('changes', params, opts(onProgress ?? noop, token));
  }
  listDir(repo: string, id: string, dir: string, p?: number, token?: CancellationLike): Promise<ListDirResult> {
    return this.client.call('listDir', { repo, snapshot: id, path: dir, ...partition(p) }, opts(undefined, token));
  }
  async readFile(repo: string, id: string, file: string, o: { partition?: number; maxBytes?: number } = {}, token?: CancellationLike): Promise<Buffer> {
    const r = await this.client.call('readFile', { repo, snapshot: id, path: file, ...partition(o.partition), ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}) }, opts(undefined, token));
    return Buffer.from(r.base64, 'base64');
  }
  restoreFiles(o: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult> {
    const params = { repo: o.repo, snapshot: o.id, paths: o.paths, target: o.to, ...partition(o.partition), ...(o.inPlace ? { inPlace: true } : {}), ...(o.dryRun ? { dryRun: true } : {}) };
    return this.client.call('restoreFiles', params, opts(onProgress ?? noop, token));
  }
}

function noop(): void {}
