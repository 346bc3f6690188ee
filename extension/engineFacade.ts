// The extension's Engine on top of one function, `call(op, params)`: the one place where the
// Engine's methods become the engine's operations (imaging/protocol/ops.ts).
import type { ChangesResult, DiskInfo, Inventory, ListDirResult, ListResult, OpName, OpParams, OpResult, RestoreFilesResult, SnapshotPlan, SnapshotSummary } from '../imaging/protocol';
import type {
  CallOptions,
  CancellationLike,
  ChangesOptions,
  DiffResult,
  Engine,
  ForgetOptions,
  ForgetResult,
  ProgressListener,
  PruneResult,
  RestoreFilesOptions,
  RestoreOptions,
  RestoreResult,
  SnapshotFilesEngine,
  SnapshotOptions,
  SnapshotResult,
  VerifyOptions,
  VerifyResult,
} from './engineTypes';
import { EngineError } from './engineError';

const partition = (p: number | undefined) => (p !== undefined ? { partition: p } : {});
const callOptions = (progress?: ProgressListener, token?: CancellationLike): CallOptions => ({ ...(progress ? { progress } : {}), ...(token ? { token } : {}) });
function noop(): void {}

/** The extension's Engine on top of `call`: the one place where its methods become operations. */
export abstract class EngineFacade implements Engine, SnapshotFilesEngine {
  abstract call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>>;

  async listDisks(token?: CancellationLike): Promise<DiskInfo[]> {
    return (await this.call('listDisks', {}, callOptions(undefined, token))).disks;
  }
  async listSnapshots(repo: string, token?: CancellationLike): Promise<SnapshotSummary[]> {
    return (await this.listRepository(repo, token)).snapshots;
  }
  listRepository(repo: string, token?: CancellationLike): Promise<ListResult> {
    return this.call('listSnapshots', { repo }, callOptions(undefined, token));
  }
  async showSnapshot(repo: string, id: string): Promise<SnapshotSummary> {
    return (await this.call('show', { repo, snapshot: id })).snapshot;
  }
  snapshot(o: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<SnapshotResult> {
    const params = { repo: o.repo, source: o.source, label: o.label, ...(o.compressionLevel ? { compressionLevel: o.compressionLevel } : {}), ...(o.fullRead ? { fullRead: true } : {}) };
    return this.call('snapshot', params, callOptions(onProgress ?? noop, token));
  }
  planSnapshot(repo: string, source: string, token?: CancellationLike): Promise<SnapshotPlan> {
    return this.call('planSnapshot', { repo, source }, callOptions(undefined, token));
  }
  async verify(o: VerifyOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<VerifyResult> {
    try {
      return await this.call('verify', { repo: o.repo, ...(o.id ? { snapshot: o.id } : {}) }, callOptions(onProgress ?? noop, token));
    } catch (err) {
      // Damage that stopped the verification itself (a manifest that cannot be read): a failed verification.
      if (err instanceof EngineError && err.code === 'DAMAGED') {
        return {
          ok: false,
          chunksChecked: 0,
          bytesChecked: 0,
          snapshots: [{ id: o.id ?? '', label: '', ok: false, damage: [{ partition: null, offset: 0, length: 0, chunk: '', message: err.message }] }],
        };
      }
      throw err;
    }
  }
  /** The commands confirm with the user (a modal dialog) before they call restore. */
  restore(o: RestoreOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreResult> {
    return this.call('restore', { repo: o.repo, snapshot: o.id, target: o.target, ...partition(o.partition), ...(o.dryRun ? { dryRun: true } : {}) }, callOptions(onProgress ?? noop, token));
  }
  forget(o: ForgetOptions): Promise<ForgetResult> {
    if ('ids' in o) return this.call('forget', { repo: o.repo, ids: o.ids });
    // Rules set to 0 (or nothing) are off, as in the settings.
    const policy = Object.fromEntries(
      Object.entries(o.policy)
        .filter(([, n]) => typeof n === 'number' && n > 0)
        .map(([k, n]) => [k, Math.floor(n as number)]),
    );
    return this.call('forget', { repo: o.repo, policy });
  }
  prune(repo: string, onProgress?: ProgressListener, token?: CancellationLike): Promise<PruneResult> {
    return this.call('prune', { repo }, callOptions(onProgress ?? noop, token));
  }
  async label(repo: string, id: string, text: string): Promise<SnapshotSummary> {
    return (await this.call('label', { repo, snapshot: id, label: text })).snapshot;
  }
  async pin(repo: string, id: string, pinned: boolean): Promise<SnapshotSummary> {
    return (await this.call('pin', { repo, snapshot: id, pinned })).snapshot;
  }
  diff(repo: string, a: string, b: string, token?: CancellationLike): Promise<DiffResult> {
    return this.call('diff', { repo, a, b }, callOptions(undefined, token));
  }
  inventory(repo: string, id: string, p?: number, token?: CancellationLike): Promise<Inventory> {
    return this.call('inventory', { repo, snapshot: id, ...partition(p) }, callOptions(undefined, token));
  }
  changes(o: ChangesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<ChangesResult> {
    const params = {
      repo: o.repo,
      a: o.a,
      b: o.b,
      ...partition(o.partition),
      ...(o.path ? { path: o.path } : {}),
      ...(o.offset !== undefined ? { offset: o.offset } : {}),
      ...(o.limit !== undefined ? { limit: o.limit } : {}),
    };
    return this.call('changes', params, callOptions(onProgress ?? noop, token));
  }
  listDir(repo: string, id: string, dir: string, p?: number, token?: CancellationLike): Promise<ListDirResult> {
    return this.call('listDir', { repo, snapshot: id, path: dir, ...partition(p) }, callOptions(undefined, token));
  }
  /** A file's content; rejects with BAD_SOURCE past `maxBytes` (default 64 MiB). */
  async readFile(repo: string, id: string, file: string, o: { partition?: number; maxBytes?: number } = {}, token?: CancellationLike): Promise<Buffer> {
    const r = await this.call('readFile', { repo, snapshot: id, path: file, ...partition(o.partition), ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}) }, callOptions(undefined, token));
    return Buffer.from(r.base64, 'base64');
  }
  restoreFiles(o: RestoreFilesOptions, onProgress?: ProgressListener, token?: CancellationLike): Promise<RestoreFilesResult> {
    const params = {
      repo: o.repo,
      snapshot: o.id,
      paths: o.paths,
      target: o.to,
      ...partition(o.partition),
      ...(o.inPlace !== undefined ? { inPlace: o.inPlace } : {}),
      ...(o.dryRun ? { dryRun: true } : {}),
    };
    return this.call('restoreFiles', params, callOptions(onProgress ?? noop, token));
  }
}
