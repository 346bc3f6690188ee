// Repository locks over a Storage (imaging/repo/lock.ts), on a folder: conflicts between shared and
// exclusive lockers, stale locks of dead processes and of other hosts (judged by the storage's clock,
// the own lock's mtime), the holder's refresh, stillHeld() after someone broke the lock, breakLocks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cleanup, tmpDir } from '../../helpers/disks';
import { acquireLock, breakLocks, type Lock } from '../../../imaging/repo/lock';
import { LocalStorage } from '../../../imaging/storage/local';
import { StorageError, type ObjectInfo, type PutOptions, type Storage, type Stray } from '../../../imaging/storage/storage';
import { DevsnapError } from '../../../imaging/core/errors';

after(cleanup);

const MINUTE = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function repo(): { dir: string; locks: string; storage: LocalStorage; said: string[]; warn: (m: string) => void } {
  const dir = tmpDir('devsnap-lock-');
  const said: string[] = [];
  return { dir, locks: path.join(dir, 'locks'), storage: new LocalStorage(dir), said, warn: (m) => said.push(m) };
}

const lockFiles = (locks: string) =>
  fs.existsSync(locks)
    ? fs
        .readdirSync(locks)
        .filter((f) => f.endsWith('.lock'))
        .sort()
    : [];

/** A lock file as another process writes it; `age`: its mtime that long before now. */
function foreign(locks: string, name: string, o: { pid: number; host: string; exclusive?: boolean; age?: number }): string {
  fs.mkdirSync(locks, { recursive: true });
  const file = path.join(locks, name);
  fs.writeFileSync(file, JSON.stringify({ pid: o.pid, host: o.host, exclusive: o.exclusive ?? true, purpose: 'snapshot of /dev/sda', created: '2026-01-01T00:00:00.000Z' }));
  if (o.age !== undefined) {
    const t = new Date(Date.now() - o.age);
    fs.utimesSync(file, t, t);
  }
  return file;
}

/** A pid no process has (above any pid_max). */
const DEAD_PID = 2_000_000_000;

async function locked(p: Promise<Lock>, message: RegExp, hint?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DevsnapError, String(err));
    assert.equal(err.code, 'LOCKED');
    assert.match(err.message, message);
    if (hint) assert.match(err.hint ?? '', hint);
    return true;
  });
}

test('two exclusive lockers conflict; the second gets the lock once the first released it', async () => {
  const r = repo();
  const a = await acquireLock(r.storage, true, 'snapshot of /dev/a', r.warn, 0);
  const own = lockFiles(r.locks);
  assert.equal(own.length, 1);
  assert.match(own[0], new RegExp(`^${process.pid}-[0-9a-f]{8}\\.lock$`));
  const info = JSON.parse(fs.readFileSync(path.join(r.locks, own[0]), 'utf8'));
  assert.deepEqual([info.pid, info.host, info.exclusive, info.purpose], [process.pid, os.hostname(), true, 'snapshot of /dev/a']);
  await locked(acquireLock(r.storage, true, 'prune', r.warn, 0), new RegExp(`locked by process ${process.pid} on ${os.hostname()} \\(snapshot of /dev/a`), /--lock-wait/);
  assert.deepEqual(lockFiles(r.locks), own, 'the refused locker took its own lock back');
  // waiting: the second gets it as soon as the first lets go
  setTimeout(() => void a.release(), 300);
  const b = await acquireLock(r.storage, true, 'prune', r.warn, 5000);
  await b.release();
  assert.deepEqual(lockFiles(r.locks), []);
  assert.deepEqual(r.said, []);
});

test('shared locks coexist; a shared and an exclusive one conflict either way', async () => {
  const r = repo();
  const a = await acquireLock(r.storage, false, 'list', r.warn, 0);
  const b = await acquireLock(r.storage, false, 'verify', r.warn, 0);
  assert.equal(lockFiles(r.locks).length, 2);
  await locked(acquireLock(r.storage, true, 'snapshot', r.warn, 0), /locked by process .*\(list|locked by process .*\(verify/);
  await a.release();
  await b.release();
  const w = await acquireLock(r.storage, true, 'snapshot', r.warn, 0);
  await locked(acquireLock(r.storage, false, 'list', r.warn, 0), /\(snapshot, since/);
  await w.release();
  assert.deepEqual(lockFiles(r.locks), []);
});

test("a dead process's lock on this host is stale: removed and reported; garbage and non-files never block", async () => {
  const r = repo();
  foreign(r.locks, `${DEAD_PID}-0badf00d.lock`, { pid: DEAD_PID, host: os.hostname() });
  fs.writeFileSync(path.join(r.locks, '1234-abcd.lock'), '{"pid": "garbage"');
  fs.mkdirSync(path.join(r.locks, '1234-abce.lock'));
  fs.symlinkSync('/dev/zero', path.join(r.locks, '1234-abcf.lock'));
  const l = await acquireLock(r.storage, true, 'snapshot', r.warn, 0);
  assert.ok(
    r.said.some((m) => m.startsWith(`Removed a stale lock of process ${DEAD_PID} (snapshot of /dev/sda, started 2026-01-01T00:00:00.000Z), which is no longer running`)),
    r.said.join('\n'),
  );
  assert.ok(
    r.said.some((m) => m.startsWith('Removed an unreadable lock file locks/1234-abcd.lock')),
    r.said.join('\n'),
  );
  assert.ok(!fs.existsSync(path.join(r.locks, `${DEAD_PID}-0badf00d.lock`)));
  assert.ok(!fs.existsSync(path.join(r.locks, '1234-abcd.lock')));
  await l.release();
});

test("another host's lock: stale after 30 minutes without refresh (by the storage's clock), live before", async () => {
  const r = repo();
  const old = foreign(r.locks, '4242-00000001.lock', { pid: 4242, host: 'elsewhere', age: 31 * MINUTE });
  const l = await acquireLock(r.storage, true, 'prune', r.warn, 0);
  assert.ok(!fs.existsSync(old));
  assert.ok(
    r.said.some((m) => /^Removed a stale lock of process 4242 on elsewhere \(snapshot of \/dev\/sda, started 2026-01-01T00:00:00\.000Z\), not refreshed for 3[01] minutes\.$/.test(m)),
    r.said.join('\n'),
  );
  await l.release();

  // 5 minutes: live, whatever its pid (not of this host), for writers and readers alike
  const live = foreign(r.locks, '4242-00000002.lock', { pid: 4242, host: 'elsewhere', age: 5 * MINUTE });
  await locked(acquireLock(r.storage, true, 'prune', r.warn, 0), /locked by process 4242 on elsewhere/, /devsnap unlock --all/);
  await locked(acquireLock(r.storage, false, 'list', r.warn, 0), /locked by process 4242 on elsewhere/, /devsnap unlock --all/);
  assert.deepEqual(lockFiles(r.locks), ['4242-00000002.lock']);
  // the stale age is an option (the default, 30 minutes, is the design's)
  const t = new Date(Date.now() - 31 * MINUTE);
  fs.utimesSync(live, t, t);
  await locked(acquireLock(r.storage, true, 'prune', r.warn, 0, { staleMs: 40 * MINUTE }), /locked by process 4242 on elsewhere/, /expires after 40 minutes/);
  await (await acquireLock(r.storage, true, 'prune', r.warn, 0)).release();
  assert.deepEqual(lockFiles(r.locks), []);
  // a shared lock of another host never blocks a reader
  foreign(r.locks, '4242-00000003.lock', { pid: 4242, host: 'elsewhere', exclusive: false, age: 5 * MINUTE });
  await (await acquireLock(r.storage, false, 'list', r.warn, 0)).release();
  assert.deepEqual(lockFiles(r.locks), ['4242-00000003.lock']);
});

/** A storage whose clock is two hours behind this host's: every time it reports is shifted. */
class SlowClock implements Storage {
  constructor(private readonly s: Storage) {}
  readonly location = 'a storage with a slow clock';
  private shift = (o: ObjectInfo): ObjectInfo => ({ ...o, modified: o.modified - 120 * MINUTE });
  get = (name: string) => this.s.get(name);
  getRange = (name: string, offset: number, length: number) => this.s.getRange(name, offset, length);
  put = (name: string, data: Buffer, opts?: PutOptions) => this.s.put(name, data, opts);
  create = (name: string) => this.s.create(name);
  stat = async (name: string) => {
    const st = await this.s.stat(name);
    return st && this.shift(st);
  };
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const o of this.s.list(prefix)) yield this.shift(o);
  }
  delete = (name: string) => this.s.delete(name);
  strays = (prefix: string) => this.s.strays(prefix);
  removeStray = (s: Stray) => this.s.removeStray(s);
}

test("another host's lock is judged by the storage's clock, never this host's", async () => {
  const r = repo();
  const storage = new SlowClock(r.storage);
  // 5 minutes old by the storage's clock (2 h 5 min by this host's): live
  foreign(r.locks, '4242-00000001.lock', { pid: 4242, host: 'elsewhere', age: 5 * MINUTE });
  await locked(acquireLock(storage, true, 'prune', r.warn, 0), /locked by process 4242 on elsewhere/);
  assert.equal(await breakLocks(storage, false), 0);
  assert.deepEqual(lockFiles(r.locks), ['4242-00000001.lock']);
  // 31 minutes old by its clock: stale
  const t = new Date(Date.now() - 31 * MINUTE);
  fs.utimesSync(path.join(r.locks, '4242-00000001.lock'), t, t);
  assert.equal(await breakLocks(storage, false), 1);
  assert.deepEqual(fs.readdirSync(r.locks), []);
});

test('a lock whose put landed but whose answer was lost is taken back: it does not block others until it is stale', async () => {
  const r = repo();
  // The server stored the lock, then the connection dropped before its answer.
  const lost = Object.assign(Object.create(r.storage) as LocalStorage, {
    put: async (name: string, data: Buffer, opts?: PutOptions) => {
      await r.storage.put(name, data, opts);
      throw new StorageError('unavailable', `${name}: no answer (injected)`);
    },
  });
  await assert.rejects(acquireLock(lost, true, 'prune', r.warn, 0), (err: unknown) => err instanceof DevsnapError && err.code === 'UNAVAILABLE');
  assert.deepEqual(lockFiles(r.locks), []);
  const next = await acquireLock(r.storage, true, 'prune', r.warn, 0);
  await next.release();
});

test('entries named like a lock that are no objects (strays) are removed; leftovers of writes are left alone', async () => {
  const r = repo();
  fs.mkdirSync(path.join(r.locks, '1234-abce.lock'), { recursive: true });
  const removed: string[] = [];
  const strays: Stray[] = [
    { name: 'locks/1234-abce.lock', kind: 'not-an-object', what: 'a folder' },
    { name: 'locks/1234-abcf.lock.99.0badf00d~tmp', kind: 'leftover', what: 'a temporary file of an interrupted write' },
  ];
  const storage: Storage = Object.assign(Object.create(r.storage) as LocalStorage, {
    strays: async function* () {
      yield* strays;
    },
    removeStray: async (s: Stray) => {
      removed.push(s.name);
      fs.rmSync(path.join(r.dir, s.name), { recursive: true, force: true });
    },
  });
  const l = await acquireLock(storage, true, 'snapshot', r.warn, 0);
  assert.deepEqual(removed, ['locks/1234-abce.lock']);
  assert.ok(r.said.includes('Removed locks/1234-abce.lock, which is no lock but a folder.'), r.said.join('\n'));
  await l.release();
  fs.mkdirSync(path.join(r.locks, '1234-abce.lock'));
  assert.equal(await breakLocks(storage, false), 1);
  assert.deepEqual(fs.readdirSync(r.locks), []);
});

test('the holder puts its lock again every refreshMs, until released', async () => {
  const r = repo();
  const l = await acquireLock(r.storage, false, 'verify', r.warn, 0, { refreshMs: 50 });
  const [name] = lockFiles(r.locks);
  const file = path.join(r.locks, name);
  const before = { mtime: fs.statSync(file).mtimeMs, text: fs.readFileSync(file, 'utf8') };
  assert.equal(JSON.parse(before.text).refreshed, undefined);
  await sleep(300);
  const after = { mtime: fs.statSync(file).mtimeMs, text: fs.readFileSync(file, 'utf8') };
  assert.ok(after.mtime > before.mtime, `mtime ${before.mtime} → ${after.mtime}`);
  const info = JSON.parse(after.text);
  assert.match(info.refreshed, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual({ ...info, refreshed: undefined }, { ...JSON.parse(before.text), refreshed: undefined });
  await l.stillHeld();
  await l.release();
  await sleep(200);
  assert.deepEqual(fs.readdirSync(r.locks), [], 'no refresh after release puts it back');
});

test('stillHeld: passes while the lock is there; fails once someone removed it (and a refresh does not take it back)', async () => {
  const r = repo();
  const l = await acquireLock(r.storage, true, 'snapshot', r.warn, 0, { refreshMs: 50 });
  await l.stillHeld();
  await sleep(120);
  await l.stillHeld();
  const [name] = lockFiles(r.locks);
  assert.equal(await breakLocks(r.storage, false), 0, 'a live lock of this process is not stale');
  fs.rmSync(path.join(r.locks, name));
  await sleep(200);
  assert.deepEqual(fs.readdirSync(r.locks), []);
  await assert.rejects(l.stillHeld(), (err: unknown) => {
    assert.ok(err instanceof DevsnapError);
    assert.equal(err.code, 'LOCKED');
    assert.match(err.message, /lock on the repository was removed \(by `devsnap unlock --all` or by another host that judged it stale\) while it worked; its data was not committed/);
    assert.equal(err.hint, 'Run it again.');
    return true;
  });
  await l.release();
});

test('stillHeld fails when the lock was not refreshed within the stale age (a suspended computer)', async () => {
  const r = repo();
  const l = await acquireLock(r.storage, true, 'snapshot', r.warn, 0, { refreshMs: 10 * MINUTE, staleMs: 300 });
  await l.stillHeld();
  await sleep(350);
  await assert.rejects(l.stillHeld(), /was not refreshed for 0 minutes/);
  await l.release();
});

test('breakLocks: without all, only stale locks and garbage; with all, every lock', async () => {
  const r = repo();
  const mine = await acquireLock(r.storage, false, 'list', r.warn, 0);
  const [own] = lockFiles(r.locks);
  foreign(r.locks, `${DEAD_PID}-00000001.lock`, { pid: DEAD_PID, host: os.hostname() });
  foreign(r.locks, '4242-00000002.lock', { pid: 4242, host: 'elsewhere', age: 31 * MINUTE });
  foreign(r.locks, '4242-00000003.lock', { pid: 4242, host: 'elsewhere', age: 5 * MINUTE });
  fs.writeFileSync(path.join(r.locks, '1234-abcd.lock'), '');
  assert.equal(await breakLocks(r.storage, false), 3);
  assert.deepEqual(lockFiles(r.locks), ['4242-00000003.lock', own].sort());
  assert.equal(await breakLocks(r.storage, true), 2);
  assert.deepEqual(fs.readdirSync(r.locks), []);
  await assert.rejects(mine.stillHeld(), /was removed/);
  await mine.release();
});
