// Storage faults at every operation of the repository-writing work (issue 13: "the fault-injecting
// storage of the reliability work runs on both"): a snapshot after an earlier one (with a parent and
// without), the first snapshot into a new repository (init), and forget + prune, run in-process
// through the engine's own functions over a FaultyStorage (test/helpers/faulty-storage.ts) that
// wraps a folder, and an S3 bucket on a real Ceph radosgw. At operation N the storage stops
// answering, fails with EIO or ENOSPC (each before or after the operation landed), or the process
// "dies" (before or after it landed); reads fail too. After each fault, with the plain storage: the
// lock was released (unless the process died, or the fault hit the lock itself), `check` finds no
// errors, every snapshot there reads back byte for byte as the image it was taken of and its chunks
// verify (so a new one is there whole, or not at all), every earlier one is still there, a failure
// was a devsnap error (never "Unexpected error"), and the same work run again succeeds and verifies.
//
// The matrix: every write operation N of a clean run (counted first). In a folder, every N (up to
// 60, then a deterministic sample: none of these runs makes that many) with all six faults. In the
// bucket, where each request is a round trip to radosgw, sampled to keep the file near 3 minutes on
// two cores: every N but the appends to a pack (of which the first, middle and last), each with four
// faults (an error before and one after the operation landed, their kinds rotating with N; a crash
// before and after). Reads: 8 of them spread over the run, the fault rotating (unavailable, EIO,
// crash). FAULTS_FULL=1 (`npm run test:faults`) runs every N with every fault, reads too, on both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { Ceph, cephSkip, startCeph } from '../../helpers/ceph';
import { Crash, describeStorageFault, FaultyStorage, type StorageFault, type StorageOp } from '../../helpers/faulty-storage';
import { Repository } from '../../../imaging/repo/repository';
import { breakLocks } from '../../../imaging/repo/lock';
import { inspectRepository } from '../../../imaging/repo/check';
import { takeSnapshot } from '../../../imaging/snapshot/take';
import { prune } from '../../../imaging/snapshot/retention';
import { ChunkReader } from '../../../imaging/repo/chunk-reader';
import { extentChunks, FREE, ZERO, type Manifest } from '../../../imaging/repo/manifest';
import { WorkerPool } from '../../../imaging/repo/worker-pool';
import { DevsnapError, toDevsnapError } from '../../../imaging/core/errors';
import { LocalStorage } from '../../../imaging/storage/local';
import { S3Storage } from '../../../imaging/storage/s3';
import type { OpenedStorage } from '../../../imaging/storage/open';
import type { Storage } from '../../../imaging/storage/storage';

after(cleanup);
const KiB = 1024;
const FULL = process.env.FAULTS_FULL === '1';
const INIT = { chunkSize: 64 * KiB, packSize: 256 * KiB };
const log = () => undefined;

const KINDS: Omit<StorageFault, 'at'>[] = [{ kind: 'unavailable' }, { kind: 'unavailable', landed: true }, { kind: 'EIO' }, { kind: 'ENOSPC' }, { kind: 'crash' }, { kind: 'crash', landed: true }];
const ERRORS = ['unavailable', 'EIO', 'ENOSPC'] as const;
/** How many reads of a run are failed (the kind rotating), spread over it (all, with every kind, with FAULTS_FULL). */
const READ_STEPS = 8;

/**
 * The faults at operation `at`: every kind, or (sampled) an error before and one after the operation
 * landed, their kinds rotating with `at`, and a crash before and after it.
 */
function faultsAt(at: number, every: boolean): StorageFault[] {
  if (every) return KINDS.map((k) => ({ ...k, at }));
  return [
    { kind: ERRORS[at % 3], at },
    { kind: ERRORS[(at + 1) % 3], landed: true, at },
    { kind: 'crash', at },
    { kind: 'crash', landed: true, at },
  ];
}

/** A repository's place: a folder or a prefix in a bucket, with its plain storage. */
interface Loc {
  storage: Storage;
  folder: string | null;
  display: string;
}

const over = (loc: Loc, storage: Storage = loc.storage): OpenedStorage => ({ storage, folder: loc.folder, display: loc.display });

/** Where runs happen: new places, and copies of a starting state. */
interface Place {
  name: string;
  /** Sample the Ns (appends) and the error kinds (rotating), unless FAULTS_FULL. */
  sampled: boolean;
  fresh(tag: string): Loc;
  copy(from: Loc, to: Loc): Promise<void>;
  drop(loc: Loc): Promise<void>;
}

/**
 * What ops/operations.ts withRepository does for a location, for an opened storage: open (or create),
 * lock (a snapshot shares the lock in a bucket), load the index, run, always close and release.
 */
async function withRepo<T>(o: OpenedStorage, exclusive: boolean | 'adds-only', purpose: string, fn: (repo: Repository) => Promise<T>, create = false): Promise<T> {
  const repo = create ? await Repository.openOrInit(o, INIT, log) : await Repository.open(o, {}, log);
  const lock = await repo.lock(exclusive === 'adds-only' ? repo.folder !== null : exclusive, purpose, 0);
  try {
    await repo.loadIndex();
    return await fn(repo);
  } finally {
    await repo.close();
    await lock.release();
  }
}

/** snapshotOp: the image file `source` into the repository (created when there is none). Returns the new id. */
const snapshot = (o: OpenedStorage, source: string, label: string) => withRepo(o, 'adds-only', `snapshot of ${source}`, async (repo) => (await takeSnapshot(repo, { source, label, log })).id, true);

/** forgetOp with --prune: forgets `id` (when it is still there) and prunes, under one lock. */
const forgetAndPrune = (o: OpenedStorage, id: string) =>
  withRepo(o, true, 'forget', async (repo) => {
    if ((await repo.listSnapshotIds()).includes(id)) await repo.deleteManifest(id);
    await prune(repo, {});
    return undefined;
  });

/** Compression workers for reading snapshots back (one pool for the file: a pool takes ~40 ms to start). */
let pool: WorkerPool;
before(() => {
  pool = new WorkerPool();
});
after(() => pool?.close());

/**
 * Snapshot `m` read back through the engine's ChunkReader: every extent equals the bytes of the image
 * it was taken of (`image`), and every chunk it names verifies (content address, block digests) as
 * `devsnap verify` checks it. Returns what is wrong, or null.
 */
async function readBack(repo: Repository, m: Manifest, image: Buffer | undefined): Promise<string | null> {
  if (!image) return `no image is known for its label "${m.label}"`;
  if (m.source.size !== image.length) return `its source is ${m.source.size} bytes, not ${image.length}`;
  const reader = new ChunkReader(repo, pool);
  const extents = m.areas.flatMap((a) => [...a.extents].map((e) => ({ at: a.start + e[0], e })));
  const covered = extents.reduce((n, x) => n + x.e[1], 0);
  if (covered !== image.length) return `its extents cover ${covered} bytes of ${image.length}`;
  try {
    // Every chunk as verify reads it (all at once: a bucket answers each read in a round trip)...
    const ids = [...new Set(extents.flatMap((x) => extentChunks(x.e)))];
    const raw = new Map(await Promise.all(ids.map(async (id) => [id, Buffer.from(await reader.read(id, { digests: true }))] as const)));
    // ...and every extent as a restore reads it: the bytes of the image.
    for (const { at, e } of extents) {
      if (e[2] === FREE) continue;
      const got = e[2] === ZERO ? Buffer.alloc(e[1]) : e.length === 4 ? await reader.readExtent(e) : raw.get(e[2])!;
      if (!got.equals(image.subarray(at, at + e[1]))) return `bytes ${at}-${at + e[1]} read back differently`;
    }
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

/** What `check` says of the repository (with the plain storage), its snapshots by id and label, and what of them does not read back. */
async function inspect(loc: Loc, images: Map<string, Buffer>): Promise<{ errors: string[]; warnings: string[]; damage: string[]; snapshots: Map<string, string> }> {
  return withRepo(over(loc), false, 'check', async (repo) => {
    const { report } = await inspectRepository(repo);
    const damage: string[] = [];
    const manifests: Manifest[] = [];
    for await (const m of repo.eachManifest(() => undefined)) {
      manifests.push(m);
      const wrong = await readBack(repo, m, images.get(m.label));
      if (wrong) damage.push(`snapshot ${m.id} (${m.label}): ${wrong}`);
    }
    return { errors: report.errors, warnings: report.warnings, damage, snapshots: new Map(manifests.map((m) => [m.id, m.label])) };
  });
}

/** 1 MiB of incompressible "disk" (16 chunks), and a version with 320 KiB of it changed (6 chunks). */
function images(): { a: Buffer; b: Buffer } {
  const a = seededBytes(7, 1024 * KiB);
  const b = Buffer.from(a);
  seededBytes(8, 320 * KiB).copy(b, 300 * KiB);
  return { a, b };
}

interface Started {
  /** The work under test (and run again after the fault, without it); a snapshot's id when it takes one. */
  run(o: OpenedStorage): Promise<string | undefined>;
  /** Snapshots that must survive the fault. */
  keep: string[];
  /** A snapshot the work removes. */
  goes?: string;
  /** The label of the snapshot the work adds. */
  adds?: string;
  /** The image each snapshot was taken of, by label. */
  images: Map<string, Buffer>;
}

interface Scenario {
  name: string;
  /** Builds the starting state in `loc` (image files in `dir`). */
  setup(loc: Loc, dir: string): Promise<Started>;
}

const scenarios: Scenario[] = [
  {
    name: 'the first snapshot into a new repository (init)',
    async setup(_loc, dir) {
      const a = images().a.subarray(0, 512 * KiB); // 8 chunks, 2 packs
      fs.writeFileSync(path.join(dir, 'a.img'), a);
      return { run: (o) => snapshot(o, path.join(dir, 'a.img'), 'first'), keep: [], adds: 'first', images: new Map([['first', a]]) };
    },
  },
  {
    name: 'a snapshot of another disk after an earlier one (no parent)',
    async setup(loc, dir) {
      const { a, b } = images();
      fs.writeFileSync(path.join(dir, 'a.img'), a);
      fs.writeFileSync(path.join(dir, 'b.img'), b);
      const first = await snapshot(over(loc), path.join(dir, 'a.img'), 'before');
      return {
        run: (o) => snapshot(o, path.join(dir, 'b.img'), 'after'),
        keep: [first],
        adds: 'after',
        images: new Map([
          ['before', a],
          ['after', b],
        ]),
      };
    },
  },
  {
    name: 'a snapshot of the same disk after an earlier one (its parent)',
    async setup(loc, dir) {
      const { a, b } = images();
      const disk = path.join(dir, 'disk.img');
      fs.writeFileSync(disk, a);
      const first = await snapshot(over(loc), disk, 'before');
      fs.writeFileSync(disk, b);
      return {
        run: (o) => snapshot(o, disk, 'after'),
        keep: [first],
        adds: 'after',
        images: new Map([
          ['before', a],
          ['after', b],
        ]),
      };
    },
  },
  {
    name: 'forget and prune',
    async setup(loc, dir) {
      const { a, b } = images();
      fs.writeFileSync(path.join(dir, 'a.img'), a);
      fs.writeFileSync(path.join(dir, 'b.img'), b);
      const first = await snapshot(over(loc), path.join(dir, 'a.img'), 'first');
      const second = await snapshot(over(loc), path.join(dir, 'b.img'), 'second');
      return {
        run: (o) => forgetAndPrune(o, first),
        keep: [second],
        goes: first,
        images: new Map([
          ['first', a],
          ['second', b],
        ]),
      };
    },
  },
];

/**
 * The Ns to fault: every one (FAULTS_FULL, or up to `upTo`), else every N up to `upTo` and then a
 * deterministic sample; with `appendSample`, every operation but appends, of which first, middle, last.
 */
function stepsToFault(ops: StorageOp[], o: { upTo: number; appendSample: boolean }): number[] {
  if (FULL) return ops.map((op) => op.n);
  if (o.appendSample) {
    const appends = ops.filter((op) => op.op === 'append');
    const sampled = new Set([appends[0], appends[Math.floor(appends.length / 2)], appends[appends.length - 1]]);
    return ops.filter((op) => op.op !== 'append' || sampled.has(op)).map((op) => op.n);
  }
  const rest = ops.slice(o.upTo);
  const every = Math.max(1, Math.ceil(rest.length / 20));
  return [...ops.slice(0, o.upTo), ...rest.filter((_, i) => i % every === 0 || i === rest.length - 1)].map((op) => op.n);
}

async function objectNames(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list('')) out.push(o.name);
  return out;
}

/** The repository after the work (faulted or not) is sound, and holds what it must. */
async function assertSound(loc: Loc, s: Started, what: string, o: { mayBeEmpty: boolean; lockMayStay?: boolean; afterRerun?: string }): Promise<void> {
  // A lock stays only where the process died, or the fault hit the lock's own delete...
  const locks: string[] = [];
  for await (const l of loc.storage.list('locks/')) locks.push(l.name);
  if (!o.lockMayStay) assert.deepEqual(locks, [], `${what}: the lock was released`);
  // ...and then belongs to a process that is gone, which the next run on this host removes as stale.
  await breakLocks(loc.storage, true);
  if (o.mayBeEmpty && !(await loc.storage.stat('config.json'))) {
    assert.deepEqual(await objectNames(loc.storage), [], `${what}: no config.json, so nothing else either`);
    return;
  }
  const r = await inspect(loc, s.images);
  assert.deepEqual(r.errors, [], `${what}: check finds no errors`);
  assert.deepEqual(r.damage, [], `${what}: every snapshot reads back as taken, and its chunks verify`);
  for (const id of s.keep) assert.ok(r.snapshots.has(id), `${what}: the earlier snapshot ${id} is there`);
  const added = [...r.snapshots].filter(([id]) => !s.keep.includes(id) && id !== s.goes);
  for (const [id, label] of added) assert.equal(label, s.adds, `${what}: only the snapshot the work takes is new (${id})`);
  if (o.afterRerun !== undefined) {
    if (s.adds) assert.ok(r.snapshots.has(o.afterRerun), `${what}: the snapshot taken again is there`);
    if (s.goes) {
      assert.ok(!r.snapshots.has(s.goes), `${what}: the forgotten snapshot is gone`);
      assert.deepEqual(r.warnings, [], `${what}: prune cleaned up every leftover`);
    }
  } else assert.ok(added.length <= 1, `${what}: at most one new snapshot: ${added.map(([id]) => id)}`);
}

/** Runs the work once with `fault` on a copy of the starting state, and judges what it left. */
async function runOnce(place: Place, s: Started, pristine: Loc, tag: string, fault: StorageFault, count: 'writes' | 'reads', what: string): Promise<void> {
  const loc = place.fresh(tag);
  await place.copy(pristine, loc);
  const faulty = new FaultyStorage(loc.storage, fault, count);
  try {
    let failure: unknown = null;
    await s.run(over(loc, faulty)).catch((err) => (failure = err));
    assert.ok(faulty.fired, `${what}: the fault was reached (the work made ${faulty.ops.length} operations)`);
    if (failure && fault.kind !== 'crash') {
      assert.ok(!(failure instanceof Crash), `${what}: ${failure}`);
      assert.notEqual(toDevsnapError(failure).code, 'INTERNAL', `${what}: a devsnap error, not a crash: ${(failure as Error).stack}`);
    }
    // A lock whose put failed (landed or not) is taken back; one stays only when its removal failed.
    const lockMayStay = fault.kind === 'crash' || (faulty.fired?.name.startsWith('locks/') && faulty.fired.op === 'delete');
    await assertSound(loc, s, `${what}, after the fault`, { mayBeEmpty: s.keep.length === 0 && !s.goes, lockMayStay });
    const again = await s.run(over(loc)).catch((err) => assert.fail(`${what}: run again: ${(err as Error).stack}`));
    await assertSound(loc, s, `${what}, after running it again`, { mayBeEmpty: false, afterRerun: again ?? '' });
  } finally {
    await faulty.release();
    await place.drop(loc);
  }
}

/** How many operations a clean run of the work makes, and which. */
async function countOps(place: Place, s: Started, pristine: Loc, tag: string, count: 'writes' | 'reads'): Promise<StorageOp[]> {
  const dry = place.fresh(tag);
  await place.copy(pristine, dry);
  const counter = new FaultyStorage(dry.storage, null, count);
  try {
    await s.run(over(dry, counter));
  } finally {
    await place.drop(dry);
  }
  return counter.ops;
}

const opSummary = (ops: StorageOp[]) => [...ops.reduce((m, op) => m.set(op.op, (m.get(op.op) ?? 0) + 1), new Map<string, number>())].map(([k, v]) => `${v} ${k}`).join(', ');

/** Evenly spaced, first and last included: `n` of `ops`' numbers (all with FAULTS_FULL). */
function spread(ops: StorageOp[], n: number): number[] {
  if (FULL || ops.length <= n) return ops.map((op) => op.n);
  return [...new Set(Array.from({ length: n }, (_, i) => ops[Math.round((i * (ops.length - 1)) / (n - 1))].n))];
}

async function runMatrix(place: Place, sc: Scenario, t: { diagnostic(msg: string): void }): Promise<void> {
  const dir = tmpDir('devsnap-sfault-');
  const tag = sc.name.replace(/[^a-z]+/g, '-').slice(0, 40);
  const pristine = place.fresh(`${tag}-pristine`);
  const s = await sc.setup(pristine, dir);
  let i = 0;

  // Every mutating operation (a sample in the bucket), with every fault (rotating error kinds in the bucket).
  const writes = await countOps(place, s, pristine, `${tag}-dry`, 'writes');
  const faults = stepsToFault(writes, { upTo: 60, appendSample: place.sampled }).flatMap((at) => faultsAt(at, FULL || !place.sampled));
  // Reads that fail (the server stops answering a GET or a listing, a disk fails a read), spread over the run.
  const reads = await countOps(place, s, pristine, `${tag}-dry-reads`, 'reads');
  const readKinds = ['unavailable', 'EIO', 'crash'] as const;
  const readFaults = spread(reads, READ_STEPS).flatMap((at): StorageFault[] => (FULL ? readKinds : [readKinds[at % 3]]).map((kind) => ({ at, kind })));
  t.diagnostic(
    `${place.name}, ${sc.name}: ${writes.length} writes (${opSummary(writes)}), ${faults.length} faulted runs; ` + `${reads.length} reads (${opSummary(reads)}), ${readFaults.length} faulted runs`,
  );
  for (const fault of faults) {
    const op = writes[fault.at - 1];
    await runOnce(place, s, pristine, `${tag}-${i++}`, fault, 'writes', `${place.name}, ${sc.name}, ${describeStorageFault(fault)} (${op.op} ${op.name})`);
  }
  for (const fault of readFaults) {
    const op = reads[fault.at - 1];
    await runOnce(place, s, pristine, `${tag}-${i++}`, fault, 'reads', `${place.name}, ${sc.name}, ${describeStorageFault(fault)} among reads (${op.op} ${op.name})`);
  }
  await place.drop(pristine);
}

const folders = (): Place => {
  const base = tmpDir('devsnap-sfault-repos-');
  return {
    name: 'folder',
    sampled: false,
    fresh(tag) {
      const folder = path.join(base, tag);
      return { storage: new LocalStorage(folder), folder, display: folder };
    },
    async copy(from, to) {
      if (fs.existsSync(from.folder!)) sh('cp', ['-a', from.folder!, to.folder!]);
    },
    async drop(loc) {
      fs.rmSync(loc.folder!, { recursive: true, force: true });
    },
  };
};

// Found by the matrix (the first snapshot into a new folder, any fault at the put of config.json):
// the folder kept the empty data/, index/, snapshots/ and locks/ that init makes first, and every
// later init or first snapshot refused it as "not empty and not a devsnap repository".
test('a folder whose init failed at config.json (disk full, I/O error, killed) is created by the next snapshot', async () => {
  const dir = tmpDir('devsnap-sfault-init-');
  const image = images().a.subarray(0, 256 * KiB);
  const source = path.join(dir, 'a.img');
  fs.writeFileSync(source, image);
  const at = (folder: string): Loc => ({ storage: new LocalStorage(folder), folder, display: folder });
  for (const kind of ['ENOSPC', 'EIO'] as const) {
    const loc = at(path.join(dir, `repo-${kind}`));
    await assert.rejects(snapshot(over(loc, new FaultyStorage(loc.storage, { at: 1, kind })), source, 'first'), (e: DevsnapError) => e.code === (kind === 'ENOSPC' ? 'NO_SPACE' : 'DAMAGED'));
    assert.deepEqual(fs.readdirSync(loc.folder!).sort(), ['data', 'index', 'locks', 'snapshots']);
    // A process killed while it wrote config.json leaves its temporary file too.
    if (kind === 'EIO') fs.writeFileSync(path.join(loc.folder!, 'config.json.4242.0123abcd~tmp'), '{"form');
    const id = await snapshot(over(loc), source, 'first');
    const r = await inspect(loc, new Map([['first', image]]));
    assert.deepEqual([r.errors, r.damage, [...r.snapshots.keys()]], [[], [], [id]]);
    if (kind === 'EIO') assert.match(r.warnings.join('\n'), /config\.json\.4242\.0123abcd~tmp .*prune removes it/);
  }
  // What an interrupted init does not leave is still someone else's: refused.
  const others: [string, (folder: string) => void][] = [
    ['a file', (f) => fs.writeFileSync(path.join(f, 'notes.txt'), 'mine')],
    ['a subfolder with content', (f) => fs.mkdirSync(path.join(f, 'data', 'ab'), { recursive: true })],
  ];
  for (const [what, make] of others) {
    const folder = path.join(dir, what.replace(/ /g, '-'));
    fs.mkdirSync(folder);
    make(folder);
    await assert.rejects(snapshot(over(at(folder)), source, 'first'), (e: DevsnapError) => e.code === 'USAGE' && /is not empty and is not a devsnap repository/.test(e.message), what);
  }
});

// The folder's runs are mostly CPU (compression), the bucket's mostly waiting for radosgw: side by side.
describe('storage faults', { concurrency: true }, () => {
  describe('storage faults in a folder', { concurrency: 1 }, () => {
    const place = folders();
    for (const sc of scenarios) test(`${sc.name}: a fault at any storage operation loses nothing and leaves no half snapshot`, { timeout: 600_000 }, (t) => runMatrix(place, sc, t));
  });

  describe('storage faults in an S3 bucket (Ceph radosgw)', { skip: cephSkip, concurrency: 1 }, () => {
    let ceph: Ceph;
    let place: Place;
    before(
      async () => {
        ceph = await startCeph(1);
        const bucket = `s3:${ceph.endpoint}/faults`;
        const s3 = new S3Storage(bucket, { credentials: ceph.credentials });
        await s3.createBucket();
        s3.close();
        place = {
          name: 's3',
          sampled: true,
          fresh(tag) {
            const display = `${bucket}/${tag}`;
            return { storage: new S3Storage(display, { credentials: ceph.credentials }), folder: null, display };
          },
          async copy(from, to) {
            await Promise.all((await objectNames(from.storage)).map(async (name) => to.storage.put(name, await from.storage.get(name))));
          },
          async drop(loc) {
            await Promise.all((await objectNames(loc.storage)).map((name) => loc.storage.delete(name)));
            for await (const s of loc.storage.strays('')) await loc.storage.removeStray(s);
            (loc.storage as S3Storage).close();
          },
        };
      },
      { timeout: 700_000 },
    );
    after(() => ceph?.stop());
    for (const sc of scenarios) test(`${sc.name}: a fault at any storage operation loses nothing and leaves no half snapshot`, { timeout: 600_000 }, (t) => runMatrix(place, sc, t));
  });
});
