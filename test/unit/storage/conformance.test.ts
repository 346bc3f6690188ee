// The Storage contract (imaging/storage/storage.ts), one suite every storage passes (issue 13), on
// the model of restic's backend tests and kopia's blobtesting: a folder (LocalStorage) always, and an
// S3 bucket (S3Storage) on a real Ceph radosgw that this file starts with scripts/ceph.sh: 3 OSDs
// with 3 copies, so the last test can kill one mid-operation. Without Ceph and without root to
// install it, the S3 part is skipped with the reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { cleanup, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { Ceph, cephSkip, startCeph } from '../../helpers/ceph';
import { LocalStorage } from '../../../imaging/storage/local';
import { S3Storage, S3StorageOptions } from '../../../imaging/storage/s3';
import { isValidName, Storage, StorageError, StorageErrorKind, Stray } from '../../../imaging/storage/storage';

after(cleanup);
const KiB = 1024;
const MiB = 1024 * KiB;

async function collect(it: AsyncIterable<{ name: string }>): Promise<string[]> {
  const names: string[] = [];
  for await (const o of it) names.push(o.name);
  return names;
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const o of it) out.push(o);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown> | (() => Promise<unknown>), kind: StorageErrorKind, what: string): Promise<StorageError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof StorageError, `${what}: expected StorageError '${kind}', got ${err}`);
    assert.equal(err.kind, kind, `${what}: ${err.message}`);
    return err;
  }
  assert.fail(`${what}: expected StorageError '${kind}', it succeeded`);
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** How the storages differ where the contract lets them. */
interface Traits {
  /** Writing the same bytes again gives a new version (a file's mtime does; S3's ETag is the content's MD5). */
  sameBytesNewVersion: boolean;
  /** onVersion runs before the object is visible, so that a throw there keeps the old one (a folder: before the rename). */
  versionBeforeVisible: boolean;
  /** Leaves what an interrupted write of `name` leaves (made by hand); the name strays() gives it. */
  interrupt(s: Storage, name: string): Promise<string>;
  /** Files a writer may leave outside the objects (temporary files in the folder, spool files). */
  writerFiles(s: Storage): string[];
}

/** The contract: every storage passes these. `fresh` gives an empty storage for each test. */
function conformance(fresh: () => Storage, traits: Traits): void {
  test('put and get round trips: empty, 1 byte, small, several MiB, binary', async () => {
    const s = fresh();
    const all256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const objects: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['one', Buffer.from([0])],
      ['small.json', Buffer.from('{"version":1}\n')],
      ['bytes/all256', Buffer.concat([all256, all256.reverse()])],
      ['data/ab/large.pack', seededBytes(1, 12 * MiB + 3)], // above the S3 tests' multipart threshold
    ];
    for (const [name, data] of objects) await s.put(name, data);
    for (const [name, data] of objects) {
      assert.ok((await s.get(name)).equals(data), name);
      assert.equal((await s.stat(name))?.size, data.length, name);
    }
  });

  test('getRange at the start, the middle, the end and past the end', async () => {
    const s = fresh();
    const data = seededBytes(2, MiB + 17);
    const n = data.length;
    await s.put('r', data);
    const cases: [number, number, Buffer][] = [
      [0, 10, data.subarray(0, 10)],
      [0, n, data],
      [n >> 1, 4 * KiB, data.subarray(n >> 1, (n >> 1) + 4 * KiB)],
      [n - 10, 10, data.subarray(n - 10)],
      [n - 5, 10, data.subarray(n - 5)], // crosses the end: only what there is
      [n, 10, Buffer.alloc(0)],
      [n + 100, 1, Buffer.alloc(0)],
      [7, 0, Buffer.alloc(0)],
    ];
    for (const [offset, length, want] of cases) assert.ok((await s.getRange('r', offset, length)).equals(want), `${length} bytes at ${offset}`);
    await rejectsWith(s.getRange('missing', 0, 10), 'not-found', 'range of a missing object');
    await rejectsWith(s.getRange('missing', 5, 0), 'not-found', 'empty range of a missing object');
    await rejectsWith(() => s.getRange('r', -1, 10), 'invalid', 'negative offset');
    await rejectsWith(() => s.getRange('r', 0, 1.5), 'invalid', 'fractional length');
  });

  test('overwrite replaces the whole object', async () => {
    const s = fresh();
    await s.put('o', seededBytes(3, 2 * MiB));
    await s.put('o', Buffer.from('short'));
    assert.equal((await s.get('o')).toString(), 'short');
    assert.equal((await s.stat('o'))?.size, 5);
    assert.deepEqual(await collect(s.list('')), ['o']);
  });

  test('ifAbsent: a second put is refused as exists, the first one is kept (small and large)', async () => {
    const s = fresh();
    await s.put('locks/a.lock', Buffer.from('first'), { ifAbsent: true });
    await rejectsWith(s.put('locks/a.lock', Buffer.from('second'), { ifAbsent: true }), 'exists', 'second ifAbsent put');
    assert.equal((await s.get('locks/a.lock')).toString(), 'first');
    const big = seededBytes(4, 9 * MiB);
    await s.put('big', big, { ifAbsent: true });
    await rejectsWith(s.put('big', seededBytes(5, 9 * MiB), { ifAbsent: true }), 'exists', 'second large ifAbsent put');
    assert.ok((await s.get('big')).equals(big));
    // Racing writers of one name: exactly one wins, whole.
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.put('config.json', Buffer.from(`writer ${i}`), { ifAbsent: true })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, `winners: ${won.join(', ')}`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as StorageError).kind, 'exists', String(r.reason));
    assert.equal((await s.get('config.json')).toString(), `writer ${won[0]}`);
  });

  test('stat gives the size and the time of the last write; null when there is no object', async () => {
    const s = fresh();
    const t0 = Date.now();
    await s.put('index/x.idx', Buffer.alloc(1234, 7));
    const st = await s.stat('index/x.idx');
    assert.ok(st);
    assert.equal(st.name, 'index/x.idx');
    assert.equal(st.size, 1234);
    // Object stores report whole seconds: allow that, and a little clock drift.
    assert.ok(st.modified >= t0 - 2000 && st.modified <= Date.now() + 2000, `modified ${new Date(st.modified).toISOString()}`);
    assert.equal(await s.stat('index/none.idx'), null);
    assert.equal(await s.stat('index'), null, 'a "folder" is no object');
  });

  test('list: by prefix, in byte order of names, with sizes', async () => {
    const s = fresh();
    const names = ['kk', 'k0', 'k/2/3', 'k/1', 'k.1', 'k-1', 'snapshots/b.json', 'snapshots/a.json', 'snapshotsX', 'data/00/p.pack'];
    await pool(names, 4, (n) => s.put(n, Buffer.alloc(n.length, 1)));
    // '-' < '.' < '/' < '0' < 'k': S3's order, which a folder-by-folder walk does not give by itself.
    assert.deepEqual(await collect(s.list('k')), ['k-1', 'k.1', 'k/1', 'k/2/3', 'k0', 'kk']);
    assert.deepEqual(await collect(s.list('k/')), ['k/1', 'k/2/3']);
    assert.deepEqual(await collect(s.list('k/2')), ['k/2/3']);
    assert.deepEqual(await collect(s.list('snapshots/')), ['snapshots/a.json', 'snapshots/b.json']);
    assert.deepEqual(await collect(s.list('')), [...names].sort(byteOrder));
    assert.deepEqual(await collect(s.list('nothing/')), []);
    for await (const o of s.list('')) assert.equal(o.size, o.name.length, o.name);
  });

  test('list: more than 1000 objects, every one, in order (pagination)', async () => {
    const s = fresh();
    const names = Array.from({ length: 1100 }, (_, i) => `index/${(i * 7919) % 1100}`.padEnd(12, 'x'));
    await pool(names, 16, (n) => s.put(n, Buffer.from(n)));
    await s.put('other', Buffer.from('not under index/'));
    assert.deepEqual(await collect(s.list('index/')), [...names].sort(byteOrder));
    const ones = names.filter((n) => n.startsWith('index/1')).sort(byteOrder);
    assert.deepEqual(await collect(s.list('index/1')), ones);
    assert.equal((await collect(s.list(''))).length, 1101);
  });

  test('delete removes the object; deleting a missing one is no error', async () => {
    const s = fresh();
    await s.put('d/x', Buffer.from('x'));
    await s.put('d/y', Buffer.from('y'));
    await s.delete('d/x');
    assert.equal(await s.stat('d/x'), null);
    await rejectsWith(s.get('d/x'), 'not-found', 'get after delete');
    await s.delete('d/x');
    await s.delete('never/was');
    assert.deepEqual(await collect(s.list('d/')), ['d/y']);
  });

  test('not-found: get and getRange of what is not there, including a "folder"', async () => {
    const s = fresh();
    await rejectsWith(s.get('config.json'), 'not-found', 'get in an empty storage');
    await s.put('data/ab/p.pack', Buffer.from('p'));
    await rejectsWith(s.get('data/ab/q.pack'), 'not-found', 'get of a missing name');
    await rejectsWith(s.get('data/ab'), 'not-found', 'get of a "folder"');
    await rejectsWith(s.get('data/ab/p.pack/x'), 'not-found', 'get below an object');
    await rejectsWith(s.getRange('data/ab/q.pack', 0, 1), 'not-found', 'getRange of a missing name');
  });

  test('invalid names and prefixes are refused (before any request or file)', async () => {
    const s = fresh();
    const bad = ['', '/abs', 'trail/', 'a//b', '../up', 'a/../b', 'a/./b', '.', 'sp ace', 'back\\slash', 'ümlaut', 'x'.repeat(513), 'nul\0'];
    for (const name of bad) {
      const what = JSON.stringify(name);
      await rejectsWith(() => s.get(name), 'invalid', `get ${what}`);
      await rejectsWith(() => s.getRange(name, 0, 1), 'invalid', `getRange ${what}`);
      await rejectsWith(() => s.put(name, Buffer.from('x')), 'invalid', `put ${what}`);
      await rejectsWith(() => s.put(name, Buffer.from('x'), { ifAbsent: true }), 'invalid', `put ifAbsent ${what}`);
      await rejectsWith(() => s.stat(name), 'invalid', `stat ${what}`);
      await rejectsWith(() => s.delete(name), 'invalid', `delete ${what}`);
    }
    for (const prefix of ['/x', '../', 'a//', 'sp ace', 'a/../']) await rejectsWith(() => collect(s.list(prefix)), 'invalid', `list ${JSON.stringify(prefix)}`);
    assert.deepEqual(await collect(s.list('')), [], 'nothing was written');
  });

  test('concurrent puts of different names all land, each whole', async () => {
    const s = fresh();
    const objects = Array.from({ length: 32 }, (_, i) => ({ name: `data/${String(i).padStart(2, '0')}/p.pack`, data: seededBytes(100 + i, 64 * KiB + i * 1001) }));
    await Promise.all(objects.map((o) => s.put(o.name, o.data)));
    await Promise.all(objects.map(async (o) => assert.ok((await s.get(o.name)).equals(o.data), o.name)));
    assert.deepEqual(
      await collect(s.list('data/')),
      objects.map((o) => o.name),
    );
  });

  test('atomicity: while a large put is in flight a reader sees the old object or the new one (or none), never a part', async (t) => {
    const s = fresh();
    const v1 = Buffer.alloc(12 * MiB, 0xa1);
    const v2 = Buffer.alloc(12 * MiB + 5, 0xb2);
    await s.put('big', v1);
    let reads = 0;
    const watch = async (name: string, allowed: (b: Buffer | null) => boolean, done: () => boolean) => {
      while (!done()) {
        const got = await s.get(name).catch((err: unknown) => {
          if (err instanceof StorageError && err.kind === 'not-found') return null;
          throw err;
        });
        assert.ok(allowed(got), `${name}: read ${got?.length} bytes, neither the old object nor the new one`);
        reads++;
      }
    };
    for (const [name, data, before] of [
      ['big', v2, v1],
      ['fresh', v1, null],
    ] as const) {
      let finished = false;
      const put = s.put(name, data).finally(() => (finished = true));
      await Promise.all([
        put,
        watch(
          name,
          (b) => (b === null ? before === null : b.equals(data) || (before !== null && b.equals(before))),
          () => finished,
        ),
      ]);
      assert.ok((await s.get(name)).equals(data));
    }
    assert.ok(reads >= 2, `only ${reads} reads happened during the puts`);
    t.diagnostic(`${reads} whole reads during the two puts`);
  });

  test('versions: put, stat and list agree; a rewrite gives a new version (same size, and multipart)', async () => {
    const s = fresh();
    const name = 'snapshots/0123456789abcdef.summary';
    const versions = async (n: string) => [(await s.stat(n))?.version, (await all(s.list(n))).find((o) => o.name === n)?.version];
    const a = await s.put(name, Buffer.from('same bytes'));
    assert.equal(a.size, 10);
    assert.ok(a.version, 'a version');
    assert.deepEqual(await versions(name), [a.version, a.version]);
    await sleep(20); // past the filesystem clock's tick: a version changes with every write, not only every second
    const b = await s.put(name, Buffer.from('same bytes'));
    if (traits.sameBytesNewVersion) assert.notEqual(b.version, a.version, 'the same bytes written again');
    assert.deepEqual(await versions(name), [b.version, b.version]);
    await sleep(20);
    const c = await s.put(name, Buffer.from('SAME BYTES'));
    assert.equal(c.size, 10);
    assert.ok(c.version !== a.version && c.version !== b.version, 'other bytes of the same size');
    assert.deepEqual(await versions(name), [c.version, c.version]);
    const big = await s.put('data/ab/big.pack', seededBytes(7, 9 * MiB)); // multipart on S3
    assert.equal(big.size, 9 * MiB);
    assert.deepEqual(await versions('data/ab/big.pack'), [big.version, big.version]);
    const again = await s.put('data/ab/big.pack', seededBytes(8, 9 * MiB));
    assert.notEqual(again.version, big.version);
    assert.deepEqual(await versions('data/ab/big.pack'), [again.version, again.version]);
    const locked = await s.put('locks/a.lock', Buffer.from('lock'), { ifAbsent: true });
    assert.deepEqual(await versions('locks/a.lock'), [locked.version, locked.version]);
  });

  test('onVersion: called once with the size and the version put returns; a throw fails the put with that error', async () => {
    const s = fresh();
    const name = 'snapshots/0123456789abcdef.json';
    const old = Buffer.from('{"old":true}');
    await s.put(name, old);
    for (const [data, opts] of [
      [Buffer.from('{"new":1}'), {}],
      [seededBytes(11, 9 * MiB), {}], // multipart on S3
      [Buffer.from('lock'), { ifAbsent: true }],
    ] as const) {
      const target = opts.ifAbsent ? 'locks/b.lock' : name;
      const calls: { size: number; version: string }[] = [];
      let visible: boolean | undefined;
      const r = await s.put(target, data, {
        ...opts,
        onVersion: async (info) => {
          calls.push(info);
          const st = await s.stat(target);
          visible = st !== null && st.size === data.length && (await s.get(target)).equals(data);
        },
      });
      assert.deepEqual(calls, [{ size: data.length, version: r.version }], `${target}, ${data.length} bytes`);
      assert.equal((await s.stat(target))?.version, r.version);
      assert.equal(visible, !traits.versionBeforeVisible, `the new ${target} is ${visible ? '' : 'not '}visible while onVersion runs`);
    }
    await s.put(name, old);
    const boom = new Error('the summary could not be written');
    await assert.rejects(
      s.put(name, Buffer.from('{"newer":2}'), {
        onVersion: async () => {
          throw boom;
        },
      }),
      (err) => err === boom,
    );
    if (traits.versionBeforeVisible) assert.ok((await s.get(name)).equals(old), 'the old object stays');
    else assert.equal((await s.get(name)).toString(), '{"newer":2}', 'the object was written before onVersion');
    assert.deepEqual(await collect(s.strays('')), [], 'no leftover');
  });

  test('create: invisible until commit, read back while open, whole after commit (small, and over the multipart threshold)', async () => {
    const s = fresh();
    const committed: string[] = [];
    for (const [name, size, piece] of [
      ['data/ab/small.pack', 100 * KiB + 3, 7 * KiB + 1],
      ['data/cd/large.pack', 12 * MiB + 3, MiB + 7],
    ] as const) {
      const data = seededBytes(size, size);
      const w = await s.create(name);
      assert.equal(w.size, 0);
      for (let off = 0; off < size; off += piece) {
        await w.append(data.subarray(off, off + piece));
        assert.equal(w.size, Math.min(size, off + piece));
        if (off === 0) assert.ok((await w.read(10, 100)).equals(data.subarray(10, 110)), 'read after the first append');
      }
      assert.ok((await w.read(5, 1000)).equals(data.subarray(5, 1005)));
      assert.ok((await w.read(piece - 3, 10)).equals(data.subarray(piece - 3, piece + 7)), 'across two appends');
      assert.ok((await w.read(size - 10, 100)).equals(data.subarray(size - 10)), 'only what there is at the end');
      assert.equal((await w.read(size + 5, 10)).length, 0);
      await rejectsWith(() => w.read(-1, 10), 'invalid', 'negative offset');
      assert.equal(await s.stat(name), null, 'not there before commit');
      await rejectsWith(s.get(name), 'not-found', 'get before commit');
      assert.deepEqual(await collect(s.list('')), committed, 'not listed before commit');
      await w.commit();
      committed.push(name);
      assert.ok((await s.get(name)).equals(data), `${name} reads back as appended`);
      assert.equal((await s.stat(name))?.size, size);
      assert.deepEqual(await collect(s.list('')), committed);
      await w.abort(); // after commit: nothing to do
      await assert.rejects(w.append(Buffer.from('x')), /committed or aborted/);
      assert.ok((await s.get(name)).equals(data));
    }
    assert.deepEqual(await collect(s.strays('')), []);
    assert.deepEqual(traits.writerFiles(s), []);
  });

  test('create: abort leaves nothing (no object, no temporary or spool file, no upload); commit replaces an object whole', async () => {
    const s = fresh();
    for (const size of [3 * MiB, 9 * MiB]) {
      const w = await s.create('data/ef/gone.pack');
      await w.append(seededBytes(9, size));
      await w.abort();
      await w.abort();
      await assert.rejects(w.commit(), /committed or aborted/);
      assert.equal(await s.stat('data/ef/gone.pack'), null);
      await rejectsWith(s.get('data/ef/gone.pack'), 'not-found', 'get after abort');
    }
    const empty = await s.create('data/ef/empty.pack');
    await empty.abort();
    assert.deepEqual(await collect(s.list('')), []);
    assert.deepEqual(await collect(s.strays('')), []);
    assert.deepEqual(traits.writerFiles(s), []);

    await s.put('data/ab/r.pack', seededBytes(10, 9 * MiB));
    const w = await s.create('data/ab/r.pack');
    await w.append(Buffer.from('new '));
    await w.append(Buffer.from('pack'));
    assert.equal((await s.stat('data/ab/r.pack'))?.size, 9 * MiB, 'the old object until commit');
    await w.commit();
    assert.equal((await s.get('data/ab/r.pack')).toString(), 'new pack');
    assert.equal((await s.stat('data/ab/r.pack'))?.size, 8);
    const zero = await s.create('data/ab/zero.pack');
    await zero.commit();
    assert.equal((await s.get('data/ab/zero.pack')).length, 0, 'an empty object');
    assert.deepEqual(traits.writerFiles(s), []);
  });

  test('strays: an interrupted write is a leftover, not an object; removeStray removes it, twice is no error', async () => {
    const s = fresh();
    const t0 = Date.now();
    await s.put('data/ab/p.pack', Buffer.from('p'));
    const name = await traits.interrupt(s, 'data/ab/q.pack');
    const strays = await all(s.strays(''));
    assert.deepEqual(
      strays.map((x) => [x.name, x.kind]),
      [[name, 'leftover']],
    );
    assert.ok(strays[0].what);
    assert.ok(strays[0].modified !== undefined && strays[0].modified >= t0 - 2000 && strays[0].modified <= Date.now() + 2000, `modified ${strays[0].modified}`);
    assert.deepEqual(await collect(s.strays('data/')), [name]);
    assert.deepEqual(await collect(s.strays('data/ab/q')), [name]);
    assert.deepEqual(await collect(s.strays('snapshots/')), []);
    assert.deepEqual(await collect(s.list('')), ['data/ab/p.pack'], 'a leftover is not listed');
    await rejectsWith(s.get('data/ab/q.pack'), 'not-found', 'get of the interrupted object');
    await s.removeStray(strays[0]);
    assert.deepEqual(await collect(s.strays('')), []);
    await s.removeStray(strays[0]);
    assert.equal((await s.get('data/ab/p.pack')).toString(), 'p', 'the object stays');
    await rejectsWith(() => collect(s.strays('../')), 'invalid', 'strays of an invalid prefix');
  });
}

/** Every file below `dir` ('/'-separated, relative), folders and links not included. */
function filesBelow(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

// An S3 writer's spool files: unlinked at once where the system allows it (else removed after commit
// or abort), so on Linux also the ones this process still has open (as /proc/self/fd/N).
const openSpools = () =>
  (process.platform === 'linux' ? fs.readdirSync('/proc/self/fd') : [])
    .map((fd) => `/proc/self/fd/${fd}`)
    .filter((p) => {
      try {
        return fs.readlinkSync(p).includes('devsnap-s3-');
      } catch {
        return false; // closed meanwhile (readdir's own)
      }
    });
const SPOOL_DIR = process.env.TMPDIR === undefined && fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const spoolFiles = () => [...new Set([SPOOL_DIR, os.tmpdir()])].flatMap((d) => fs.readdirSync(d).filter((n) => n.startsWith('devsnap-s3-'))).concat(openSpools());

describe('LocalStorage (a folder)', () => {
  const dirOf = (s: Storage) => s.location.replace(/^folder /, '');
  conformance(() => new LocalStorage(path.join(tmpDir(), 'repo')), {
    sameBytesNewVersion: true,
    versionBeforeVisible: true,
    interrupt: async (s, name) => {
      const tmp = `${name}.99999999.0badf00d~tmp`; // what put() or a writer leaves when killed before its rename
      fs.mkdirSync(path.dirname(path.join(dirOf(s), tmp)), { recursive: true });
      fs.writeFileSync(path.join(dirOf(s), tmp), 'left by a crash');
      return tmp;
    },
    // Files that are no objects: a writer's temporary file must be gone once it is committed or aborted.
    writerFiles: (s) => filesBelow(dirOf(s)).filter((f) => !isValidName(f)),
  });

  test('files 0600 and folders 0700; temporary files and other entries are not listed', async () => {
    const dir = path.join(tmpDir(), 'repo');
    const s = new LocalStorage(dir);
    await s.put('data/ab/p.pack', Buffer.from('p'));
    assert.equal(fs.statSync(path.join(dir, 'data/ab/p.pack')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'data/ab')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'data')).mode & 0o777, 0o700);
    fs.writeFileSync(path.join(dir, 'data/ab/p.pack.123.0badf00d~tmp'), 'left by a crash');
    fs.symlinkSync('/etc/passwd', path.join(dir, 'data/link'));
    fs.mkdirSync(path.join(dir, 'empty'));
    assert.deepEqual(await collect(s.list('')), ['data/ab/p.pack']);
    await rejectsWith(s.get('data/link'), 'not-found', 'a symlink is no object');
  });

  test("a writer's temporary file: 0600, beside its name, named as put's", async () => {
    const dir = path.join(tmpDir(), 'repo');
    const s = new LocalStorage(dir);
    const w = await s.create('data/ab/w.pack');
    await w.append(Buffer.from('pack'));
    const [tmp, ...more] = filesBelow(dir);
    assert.deepEqual(more, []);
    assert.match(tmp, /^data\/ab\/w\.pack\.\d+\.[0-9a-f]{8}~tmp$/);
    assert.equal(fs.statSync(path.join(dir, tmp)).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'data/ab')).mode & 0o777, 0o700);
    await w.commit();
    assert.deepEqual(filesBelow(dir), ['data/ab/w.pack']);
    assert.equal(fs.statSync(path.join(dir, 'data/ab/w.pack')).mode & 0o777, 0o600);
  });

  test('strays: temporary files (own and core/fsutil.ts tempName ones), and a link to /dev/zero, a fifo and a folder with object names, never read', async () => {
    const dir = path.join(tmpDir(), 'repo');
    const s = new LocalStorage(dir);
    const at = (n: string) => path.join(dir, n);
    await s.put('snapshots/aaaaaaaaaaaaaaaa.json', Buffer.from('{}'));
    await s.put('data/ab/p.pack', Buffer.from('p'));
    await s.put('locks/keep.lock', Buffer.from('l'));
    fs.writeFileSync(at('snapshots/bbbbbbbbbbbbbbbb.json.4242.0badf00d.tmp'), 'writeFileAtomic, killed'); // core/fsutil.ts tempName
    fs.mkdirSync(at('index'));
    fs.writeFileSync(at('index/x.idx.77.deadbeef~tmp'), 'put, killed');
    fs.writeFileSync(at('snapshots/c.json.tmp'), 'not the pattern: an object as far as a storage can tell');
    fs.symlinkSync('/dev/zero', at('snapshots/zero.json'));
    sh('mkfifo', [at('locks/1-a.lock')]);
    fs.mkdirSync(at('snapshots/0123456789abcdef.json'));
    fs.writeFileSync(at('snapshots/0123456789abcdef.json/in~side'), 'in the folder');
    fs.mkdirSync(at('snapshots/plainfolder')); // no '.': a folder a repository could have, no stray
    const strays = await Promise.race([all(s.strays('')), sleep(10_000).then(() => assert.fail('strays() hangs: it read the fifo or /dev/zero'))]);
    assert.deepEqual(
      strays.map((x) => [x.name, x.kind, x.what]),
      [
        ['index/x.idx.77.deadbeef~tmp', 'leftover', 'a temporary file of an interrupted write'],
        ['locks/1-a.lock', 'not-an-object', 'a fifo'],
        ['snapshots/0123456789abcdef.json', 'not-an-object', 'a folder'],
        ['snapshots/bbbbbbbbbbbbbbbb.json.4242.0badf00d.tmp', 'leftover', 'a temporary file of an interrupted write'],
        ['snapshots/zero.json', 'not-an-object', 'a symbolic link'],
      ],
    );
    for (const x of strays) assert.ok(typeof x.modified === 'number' && x.modified > 0, x.name);
    assert.deepEqual(await collect(s.strays('locks/')), ['locks/1-a.lock']);
    assert.deepEqual(await collect(s.strays('snapshots/0')), ['snapshots/0123456789abcdef.json']);
    assert.deepEqual(await collect(s.list('')), ['data/ab/p.pack', 'locks/keep.lock', 'snapshots/aaaaaaaaaaaaaaaa.json', 'snapshots/c.json.tmp']);
    await rejectsWith(s.get('locks/1-a.lock'), 'not-found', 'a fifo is no object (and get does not hang)');
    await rejectsWith(s.get('snapshots/zero.json'), 'not-found', 'a link is no object');

    // removeStray removes only what strays() reports, as what it reports it as.
    const refused: Stray[] = [
      { name: 'data', kind: 'not-an-object', what: 'a folder' },
      { name: 'data/ab', kind: 'not-an-object', what: 'a folder' },
      { name: 'snapshots/aaaaaaaaaaaaaaaa.json', kind: 'leftover', what: 'a temporary file of an interrupted write' },
      { name: 'snapshots/aaaaaaaaaaaaaaaa.json', kind: 'not-an-object', what: 'a folder' },
      { name: 'snapshots/zero.json', kind: 'leftover', what: 'a temporary file of an interrupted write' },
      { name: 'snapshots/0123456789abcdef.json/in~side', kind: 'leftover', what: 'a temporary file of an interrupted write' },
    ];
    for (const x of refused) await rejectsWith(s.removeStray(x), 'invalid', `removeStray ${x.name} as ${x.kind}`);
    for (const name of ['../outside.1.0badf00d~tmp', '/etc/x.1.0badf00d~tmp', 'a//b', ''])
      await rejectsWith(s.removeStray({ name, kind: 'leftover', what: '' }), 'invalid', `removeStray ${JSON.stringify(name)}`);
    for (const x of strays) await s.removeStray(x);
    for (const x of strays) await s.removeStray(x);
    assert.deepEqual(await collect(s.strays('')), []);
    assert.ok(fs.lstatSync('/dev/zero').isCharacterDevice(), 'the link was removed, not what it points to');
    assert.deepEqual(await collect(s.list('')), ['data/ab/p.pack', 'locks/keep.lock', 'snapshots/aaaaaaaaaaaaaaaa.json', 'snapshots/c.json.tmp']);
    assert.ok(fs.existsSync(at('snapshots/plainfolder')));
  });
});

describe('S3 locations and errors, without a server', () => {
  test('locations are parsed and checked, with errors that say what a valid one looks like', async () => {
    const { parseS3Location, parseLocation } = await import('../../../imaging/storage/location');
    assert.deepEqual(parseS3Location('s3:https://s3.example.com/bucket'), { kind: 's3', endpoint: 'https://s3.example.com', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Location('s3:http://127.0.0.1:7480/my.bucket-1/team/devsnap/'), { kind: 's3', endpoint: 'http://127.0.0.1:7480', bucket: 'my.bucket-1', prefix: 'team/devsnap' });
    assert.deepEqual(parseLocation('/media/usb/devsnap'), { kind: 'folder', path: '/media/usb/devsnap' });
    const bad: [string, RegExp][] = [
      ['s3:ftp://host/bucket', /scheme is ftp/],
      ['s3:https://host', /no bucket/],
      ['s3:https://host/', /no bucket/],
      ['s3:https://host/Bucket', /not a bucket name/],
      ['s3:https://host/ab', /not a bucket name/],
      ['s3:https://key:secret@host/bucket', /credentials.*AWS_ACCESS_KEY_ID/],
      ['s3:https://host/bucket?x=1', /query/],
      ['s3:https://host/bucket/a//b', /folder/],
      ['s3:https://host/bucket/a/../b', /"\.\." segments/],
      ['s3:https://host/other/../bucket', /"\.\." segments/],
      ['s3:https://host/bucket/%2e%2e/x', /%-escapes/],
      ['s3:not a url', /not a URL/],
    ];
    for (const [loc, why] of bad) {
      const err = await rejectsWith(async () => parseS3Location(loc), 'invalid', loc);
      assert.match(err.message, why, loc);
      assert.match(err.message, /s3:https:\/\/s3\.example\.com\/my-bucket\/devsnap/, 'the error shows a valid one');
    }
  });

  test('invalid names are refused before any request; a server that does not answer is "unavailable" after the retries', async () => {
    // Port 1 on 127.0.0.1: nothing listens, so a request that were sent would fail as unavailable.
    const s = new S3Storage('s3:http://127.0.0.1:1/bucket', { maxAttempts: 2, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    try {
      await rejectsWith(() => s.put('../x', Buffer.from('x')), 'invalid', 'put of an invalid name');
      await rejectsWith(() => collect(s.list('/x')), 'invalid', 'list of an invalid prefix');
      const err = await rejectsWith(s.get('config.json'), 'unavailable', 'get from a closed port');
      assert.match(err.message, /2 attempts.*ECONNREFUSED/);
      await rejectsWith(s.put('config.json', Buffer.from('x'), { ifAbsent: true }), 'unavailable', 'put to a closed port');
      await rejectsWith(() => collect(s.list('')), 'unavailable', 'list from a closed port');
    } finally {
      s.close();
    }
  });
});

const run = (cmd: string, args: string[], timeout: number) =>
  new Promise<string>((resolve, reject) =>
    execFile(cmd, args, { timeout, encoding: 'utf8', maxBuffer: 1 << 24 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );

describe('S3Storage on Ceph radosgw (3 OSDs, started by scripts/ceph.sh)', { skip: cephSkip }, () => {
  let ceph: Ceph | undefined;
  let dir = '';
  let endpoint = '';
  let credentials = { accessKeyId: '', secretAccessKey: '' };
  let conf = '';
  let n = 0;
  const opened: S3Storage[] = [];

  const prefixes = new Map<Storage, string>();
  const storage = (bucket = 'conformance', opts: S3StorageOptions = {}) => {
    const prefix = `t${++n}`;
    const s = new S3Storage(
      { kind: 's3', endpoint, bucket, prefix },
      { credentials, multipartThreshold: 8 * MiB, partSize: 5 * MiB, ...opts }, // multipart for the suite's 9 and 12 MiB objects
    );
    opened.push(s);
    prefixes.set(s, prefix);
    return s;
  };
  // Another client, to do what devsnap does not: start a multipart upload and never complete it.
  let raw: S3Client | undefined;

  before(
    async () => {
      ceph = await startCeph(3); // 3 copies, so that the last test can kill one OSD; up to ~1 min more when it installs Ceph
      ({ dir, endpoint, credentials, conf } = ceph);
      await storage().createBucket();
    },
    { timeout: 660_000 },
  );
  after(() => {
    for (const s of opened) s.close();
    raw?.destroy();
    ceph?.stop();
  });

  conformance(() => storage(), {
    sameBytesNewVersion: false,
    versionBeforeVisible: false,
    interrupt: async (s, name) => {
      raw ??= new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      const Key = `${prefixes.get(s)}/${name}`;
      const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: 'conformance', Key }));
      const part = Buffer.alloc(KiB, 1);
      await raw.send(new UploadPartCommand({ Bucket: 'conformance', Key, UploadId, PartNumber: 1, Body: part, ContentLength: part.length }));
      return name;
    },
    writerFiles: () => spoolFiles(),
  });

  test("a writer's spool: 0600, in /dev/shm (no freeze of the running system blocks it) while it is open, gone after commit and abort", async () => {
    const s = storage();
    const w = await s.create('data/ab/s.pack');
    await w.append(Buffer.from('spooled'));
    const open = spoolFiles();
    assert.equal(open.length, 1, open.join(', '));
    for (const fd of openSpools()) {
      assert.equal(fs.statSync(fd).mode & 0o777, 0o600);
      assert.ok(fs.readlinkSync(fd).startsWith(`${SPOOL_DIR}/`), `${fs.readlinkSync(fd)} is in ${SPOOL_DIR}`);
    }
    await w.commit();
    assert.deepEqual(spoolFiles(), []);
    assert.equal((await s.get('data/ab/s.pack')).toString(), 'spooled');
    const v = await s.create('data/ab/t.pack');
    await v.append(Buffer.from('dropped'));
    await v.abort();
    assert.deepEqual(spoolFiles(), []);
  });

  test('removeStray refuses what is not an unfinished upload with its id', async () => {
    const s = storage();
    await rejectsWith(s.removeStray({ name: 'data/ab/p.pack', kind: 'not-an-object', what: 'a folder' }), 'invalid', 'not-an-object on S3');
    await rejectsWith(s.removeStray({ name: 'data/ab/p.pack', kind: 'leftover', what: 'an unfinished multipart upload' }), 'invalid', 'without its upload id');
    await s.removeStray({ name: 'data/ab/p.pack', kind: 'leftover', what: 'an unfinished multipart upload', ref: 'no-such-upload' });
  });

  test('a bucket that does not exist: put says so (not-found, naming it), createBucket makes it, twice is no error', async () => {
    const s = storage('new-bucket');
    assert.equal(await s.bucketExists(), false);
    const err = await rejectsWith(s.put('config.json', Buffer.from('{}')), 'not-found', 'put into a missing bucket');
    assert.match(err.message, /bucket "new-bucket" does not exist/);
    assert.deepEqual(await collect(s.list('')).catch((e: StorageError) => e.kind), 'not-found');
    await s.createBucket();
    await s.createBucket();
    assert.equal(await s.bucketExists(), true);
    await s.put('config.json', Buffer.from('{}'), { ifAbsent: true });
    assert.equal((await s.get('config.json')).toString(), '{}');
  });

  test('a wrong secret is "denied", with what to check', async () => {
    const s = storage('conformance', { credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: 'wrong' }, maxAttempts: 2 });
    const err = await rejectsWith(s.get('config.json'), 'denied', 'get with a wrong secret');
    assert.match(err.message, /AWS_SECRET_ACCESS_KEY/);
    await rejectsWith(s.put('config.json', Buffer.from('x')), 'denied', 'put with a wrong secret');
  });

  test('prefixes keep repositories in one bucket apart', async () => {
    const a = new S3Storage({ kind: 's3', endpoint, bucket: 'conformance', prefix: 'team/a' }, { credentials });
    const ab = new S3Storage({ kind: 's3', endpoint, bucket: 'conformance', prefix: 'team/ab' }, { credentials });
    opened.push(a, ab);
    await a.put('config.json', Buffer.from('a'));
    await ab.put('config.json', Buffer.from('ab'));
    assert.deepEqual(await collect(a.list('')), ['config.json']);
    assert.equal((await a.get('config.json')).toString(), 'a');
  });

  // Last: it leaves the cluster with an OSD down.
  test('one OSD of three killed (kill -9, then marked down) amid puts and gets: each completes or fails with a StorageError; every stored object reads back whole', { timeout: 300_000 }, async (t) => {
    const s = storage('conformance', { maxAttempts: 10, requestTimeoutMs: 20_000 });
    const stored = new Map<string, Buffer>();
    const failures: string[] = [];
    let ok = 0;
    /** The operation's result, or `failed` when it threw a StorageError (anything else fails the test). */
    const failed = Symbol('failed');
    const attempt = async <T>(fn: () => Promise<T>): Promise<T | typeof failed> => {
      try {
        const r = await fn();
        ok++;
        return r;
      } catch (err) {
        assert.ok(err instanceof StorageError, `an error that is not a StorageError: ${(err as Error)?.stack ?? err}`);
        failures.push(`${err.kind}: ${err.message}`);
        return failed;
      }
    };
    const start = Date.now();
    for (let i = 0; i < 60; i++) {
      if (i === 20) {
        const pid = Number(fs.readFileSync(path.join(dir, 'run', 'osd.2.pid'), 'utf8'));
        process.kill(pid, 'SIGKILL');
        // Marked down at once, instead of after the ~20 s heartbeat grace.
        await run('ceph', ['-c', conf, '--connect-timeout', '30', 'osd', 'down', '2'], 60_000);
        t.diagnostic(`osd.2 (pid ${pid}) killed after ${Date.now() - start} ms`);
      }
      const name = `f/${String(i).padStart(2, '0')}`;
      const data = seededBytes(1000 + i, i === 30 ? 10 * MiB : 16 * KiB + ((i * 7919) % (512 * KiB))); // one multipart upload among them
      const earlier = [...stored.keys()];
      const pick = earlier[(i * 31) % Math.max(1, earlier.length)];
      const [, got] = await Promise.all([attempt(() => s.put(name, data)).then((r) => r !== failed && stored.set(name, data)), pick ? attempt(() => s.get(pick)) : failed]);
      if (Buffer.isBuffer(got)) assert.ok(got.equals(stored.get(pick)!), `${pick} read back changed during the fault`);
    }
    t.diagnostic(`${ok} operations completed, ${failures.length} failed with a StorageError, in ${Date.now() - start} ms${failures.length ? `: ${failures.slice(0, 3).join(' | ')}` : ''}`);
    assert.ok(stored.size > 0, 'no put succeeded');
    for (const [name, data] of stored) assert.ok((await s.get(name)).equals(data), `${name} does not read back as stored`);
    const listed = await collect(s.list('f/'));
    for (const name of stored.keys()) assert.ok(listed.includes(name), `${name} is not listed`);
  });
});
