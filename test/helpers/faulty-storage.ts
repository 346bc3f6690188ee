// Faults of the storage itself, in-process, for a folder and a bucket alike (issue 13): a Storage
// (imaging/storage/storage.ts) that wraps another, counts its operations and fails the Nth, as
// kopia's `faulty` blob storage and restic's fault-injecting backend do. What test/helpers/faults.ts
// does with strace at the system calls of the real CLI (a folder only), this does at the contract
// every storage passes, so the same faults reach a repository in an S3 bucket:
//   unavailable  a server that stopped answering (StorageError 'unavailable', as S3Storage throws it
//                once the SDK's retries are spent)
//   EIO, ENOSPC  a disk that fails or fills (an errno Error, as LocalStorage passes it on; on S3, the
//                spool of a pack in the temporary folder)
//   crash        the process is killed: from this operation on every call throws Crash and nothing
//                more reaches the inner storage; what was written before stays
// With `landed`, the operation is done first and then fails: a PUT that landed while its answer was
// lost, a rename that happened before the fsync of its folder failed, a process killed right after.
// Without, it never happens. Operations counted by default: the mutating ones (put, create, and a
// created writer's append, commit and abort; delete; removeStray); `count: 'reads'` or 'all' counts
// (and faults) get, getRange, stat, list, strays and a writer's read too. With no fault it only
// counts: a clean run says how many operations a scenario makes (`ops`).
import type { ObjectInfo, ObjectWriter, PutOptions, Storage, Stray } from '../../imaging/storage/storage';
import { StorageError } from '../../imaging/storage/storage';

export type FaultKind = 'unavailable' | 'EIO' | 'ENOSPC' | 'crash';

export interface StorageFault {
  /** The operation to fail, from 1, among the counted ones. */
  at: number;
  kind: FaultKind;
  /** The operation is done, and then fails (or the process dies right after it). */
  landed?: boolean;
}

export const describeStorageFault = (f: StorageFault) => `${f.kind}${f.landed ? ' after it landed' : ''} at operation #${f.at}`;

/** The process was killed: nothing it does any more reaches the storage. */
export class Crash extends Error {
  constructor(what: string) {
    super(`(the process is dead) ${what}`);
    this.name = 'Crash';
  }
}

/** One counted operation: its number, what it was and on which object. */
export interface StorageOp {
  n: number;
  op: string;
  name: string;
}

type Side = 'read' | 'write';

function errnoError(code: 'EIO' | 'ENOSPC', op: string, name: string): NodeJS.ErrnoException {
  const text = code === 'EIO' ? 'i/o error' : 'no space left on device';
  return Object.assign(new Error(`${code}: ${text}, ${op} '${name}' (injected)`), { code, errno: code === 'EIO' ? -5 : -28, syscall: op === 'delete' ? 'unlink' : 'write' });
}

export class FaultyStorage implements Storage {
  /** Every counted operation so far, in the order they began. */
  readonly ops: StorageOp[] = [];
  /** The operation the fault hit, once it did. */
  fired: StorageOp | null = null;
  /** Set by a crash: every call throws Crash from then on. */
  crashed = false;
  /** Writers of the inner storage neither committed nor aborted (a crash leaves them open): see release(). */
  private readonly open = new Set<ObjectWriter>();

  constructor(
    readonly inner: Storage,
    private readonly fault: StorageFault | null = null,
    private readonly count: 'writes' | 'reads' | 'all' = 'writes',
  ) {}

  get location(): string {
    return this.inner.location;
  }

  private counts(side: Side): boolean {
    return this.count === 'all' || (this.count === 'writes') === (side === 'write');
  }

  private alive(op: string, name: string): void {
    if (this.crashed) throw new Crash(`${op} ${name}`);
  }

  private async run<T>(side: Side, op: string, name: string, work: () => Promise<T>): Promise<T> {
    this.alive(op, name);
    if (!this.counts(side)) return work();
    const rec: StorageOp = { n: this.ops.length + 1, op, name };
    this.ops.push(rec);
    const f = this.fault;
    if (!f || f.at !== rec.n) return work();
    this.fired = rec;
    // Landed: the whole operation happens (and what it calls back into this storage, a put's
    // onVersion writing a summary, is counted and passes), then the caller sees the failure.
    if (f.landed) await work();
    if (f.kind === 'crash') {
      this.crashed = true;
      throw new Crash(`${op} ${name}`);
    }
    if (f.kind === 'unavailable') throw new StorageError('unavailable', `${this.location} did not serve ${op} of ${name} (injected: the server stopped answering). Nothing was lost; try again later.`);
    throw errnoError(f.kind, op, name);
  }

  get(name: string): Promise<Buffer> {
    return this.run('read', 'get', name, () => this.inner.get(name));
  }

  getRange(name: string, offset: number, length: number): Promise<Buffer> {
    return this.run('read', 'getRange', name, () => this.inner.getRange(name, offset, length));
  }

  put(name: string, data: Buffer, opts?: PutOptions): Promise<{ size: number; version: string }> {
    return this.run('write', 'put', name, () => this.inner.put(name, data, opts));
  }

  async create(name: string): Promise<ObjectWriter> {
    const w = await this.run('write', 'create', name, async () => {
      const inner = await this.inner.create(name);
      this.open.add(inner);
      return inner;
    });
    const done = () => this.open.delete(w);
    // The writer's calls are operations of this storage, counted and faulted alike.
    return {
      get size() {
        return w.size;
      },
      append: (data) => this.run('write', 'append', name, () => w.append(data)),
      read: (offset, length) => this.run('read', 'read', name, () => w.read(offset, length)),
      commit: () => this.run('write', 'commit', name, () => w.commit().finally(done)),
      abort: () => this.run('write', 'abort', name, () => w.abort().finally(done)),
    };
  }

  stat(name: string): Promise<ObjectInfo | null> {
    return this.run('read', 'stat', name, () => this.inner.stat(name));
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.listing('list', prefix, () => this.inner.list(prefix));
  }

  /** A listing counted as one read when it starts; a crash meanwhile stops it at the next item. */
  private async *listing<T>(op: string, prefix: string, items: () => AsyncIterable<T>): AsyncIterable<T> {
    await this.run('read', op, prefix, async () => undefined);
    for await (const item of items()) {
      this.alive(op, prefix);
      yield item;
    }
  }

  delete(name: string): Promise<void> {
    return this.run('write', 'delete', name, () => this.inner.delete(name));
  }

  strays(prefix: string): AsyncIterable<Stray> {
    return this.listing('strays', prefix, () => this.inner.strays(prefix));
  }

  removeStray(stray: Stray): Promise<void> {
    return this.run('write', 'removeStray', stray.name, () => this.inner.removeStray(stray));
  }

  /**
   * Aborts the inner writers a crash left open (their temporary files and spools are what a killed
   * process leaves; the test process must still close their handles). Call once a run is judged.
   */
  async release(): Promise<void> {
    for (const w of [...this.open]) await w.abort().catch(() => undefined);
    this.open.clear();
  }
}
