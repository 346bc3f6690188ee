// Nothing is ever lost: interrupted snapshots, damaged packs and manifests, locks, full disks,
// dangerous targets. Every failure must be a clear message with the documented exit code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, makeWorkstationTree, seededBytes, sh, tmpDir, withLoop, withMount } from '../../helpers/disks';
import { devsnap, devsnapChild } from '../../helpers/cli';
import { acquireLock } from '../../../imaging/repo/lock';
import { LocalStorage } from '../../../imaging/storage/local';

after(cleanup);
const MiB = 1 << 20;

async function smallDisk(dir: string, extra?: { size: number; random: boolean }): Promise<string> {
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 3 * MiB });
  const disk = path.join(dir, 'disk.img');
  const parts: Parameters<typeof makeDisk>[1]['partitions'] = [{ size: 40 * MiB, fs: 'ext4', fromDir: tree }];
  if (extra) parts.push({ size: extra.size, fs: 'none' });
  await makeDisk(disk, { table: 'gpt', size: 41 * MiB + (extra?.size ?? 0) + MiB, partitions: parts });
  return disk;
}

function packFiles(repo: string): string[] {
  return sh('find', [path.join(repo, 'data'), '-name', '*.pack'])
    .stdout.trim()
    .split('\n')
    .filter(Boolean);
}

test('a flipped byte in a pack: verify reports snapshot, partition and range; restore refuses and writes nothing', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir);
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  const pack = packFiles(repo)[0];
  const fd = fs.openSync(pack, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 100);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, 100);
  fs.closeSync(fd);

  const v = devsnap(['verify', '--repo', repo, '--json']);
  assert.equal(v.status, 8, 'verify exits 8 on damage');
  assert.equal(v.json.ok, false);
  const damage = v.json.snapshots[0].damage;
  assert.ok(damage.length >= 1);
  assert.equal(typeof damage[0].offset, 'number');
  assert.ok(damage[0].length > 0);
  assert.match(damage[0].message, /damaged/);
  assert.equal(devsnap(['list', '--repo', repo, '--json']).json.snapshots[0].state, 'damaged');

  const out = path.join(dir, 'out.img');
  const r = devsnap(['restore', snap.json.id, out, '--repo', repo, '--json']);
  assert.equal(r.status, 8);
  assert.equal(r.json.error.code, 'DAMAGED');
  assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  assert.equal(fs.existsSync(out), false, 'no half-written image file');
  assert.deepEqual(
    fs.readdirSync(dir).filter((n) => n.includes('out.img')),
    [],
    'no temporary file left',
  );
  const c = devsnap(['check', '--read-data', '--repo', repo, '--json']);
  assert.equal(c.status, 8);
});

test('a truncated manifest is reported clearly; other snapshots still work', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir);
  const a = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  const b = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  const file = path.join(repo, 'snapshots', `${a.json.id}.json`);
  fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
  const show = devsnap(['show', a.json.id, '--repo', repo, '--json']);
  assert.equal(show.status, 8);
  assert.match(show.json.error.message, /manifest of snapshot .* is truncated or corrupt/);
  const list = devsnap(['list', '--repo', repo, '--json']);
  assert.equal(list.status, 8, 'a damaged manifest is listed as damaged, not left out');
  assert.deepEqual(
    list.json.snapshots.map((s: { id: string }) => s.id),
    [b.json.id],
  );
  assert.deepEqual(
    list.json.damaged.map((d: { id: string }) => d.id),
    [a.json.id],
  );
  const check = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(check.status, 8);
  assert.ok(check.json.errors.some((e: string) => e.includes(a.json.id)));
  const prune = devsnap(['prune', '--repo', repo, '--json']);
  assert.equal(prune.status, 8, 'prune refuses while a manifest is damaged');
  assert.equal(devsnap(['restore', b.json.id, path.join(dir, 'out.img'), '--repo', repo]).status, 0);
  sh('cmp', [disk, path.join(dir, 'out.img')]);
});

test('kill -9 at random points during a snapshot: earlier snapshots intact, check passes, the next snapshot works and prune cleans up', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir, { size: 160 * MiB, random: true });
  const first = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(first.status, 0, first.stderr);
  // change the unknown partition so the next snapshot has much new data to write
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, seededBytes(99, 100 * MiB), 0, 100 * MiB, 42 * MiB);
  fs.closeSync(fd);
  const delays = Array.from({ length: 5 }, () => 100 + Math.floor(Math.random() * 1200));
  console.log(`kill -9 after ${delays.join(', ')} ms`); // random points, printed so a failure can be replayed
  for (const delay of delays) {
    const { child, exited } = devsnapChild(['snapshot', disk, '--repo', repo, '--json']);
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await exited;
    const check = devsnap(['check', '--repo', repo, '--json']);
    assert.equal(check.status, 0, `after kill at ${delay} ms: ${check.stdout}`);
    assert.equal(check.json.errors.length, 0);
    const list = devsnap(['list', '--repo', repo, '--json']);
    assert.ok(list.json.snapshots.some((s: { id: string }) => s.id === first.json.id));
  }
  const next = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(next.status, 0, next.stderr);
  const prune = devsnap(['prune', '--repo', repo, '--json']);
  assert.equal(prune.status, 0, prune.stderr);
  const check = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(check.status, 0);
  assert.deepEqual(check.json.warnings, [], 'prune removed every leftover');
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
  const out = path.join(dir, 'out.img');
  assert.equal(devsnap(['restore', next.json.id, out, '--repo', repo]).status, 0);
  sh('cmp', [disk, out]);
});

test('cancel (SIGINT) leaves the repository exactly as before', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir, { size: 160 * MiB, random: true });
  assert.equal(devsnap(['snapshot', disk, '--repo', repo]).status, 0);
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, seededBytes(7, 100 * MiB), 0, 100 * MiB, 42 * MiB);
  fs.closeSync(fd);
  const before = sh('find', [repo, '-type', 'f', '-not', '-path', '*/locks/*']).stdout.split('\n').sort().join('\n');
  const { child, exited, output } = devsnapChild(['snapshot', disk, '--repo', repo, '--json', '--progress', 'json']);
  // Cancel as soon as imaging has started (its first progress event), as a user's Ctrl-C would.
  while (!output().stderr.includes('"type":"progress"') && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGINT');
  const { code, stdout } = await exited;
  assert.equal(code, 130, 'the snapshot was still running when cancelled');
  assert.equal(JSON.parse(stdout).error.code, 'CANCELLED');
  const after = sh('find', [repo, '-type', 'f', '-not', '-path', '*/locks/*']).stdout.split('\n').sort().join('\n');
  assert.equal(after, before);
});

test('locks: a second writer is refused while one runs; a stale lock of a dead process is removed', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir);
  assert.equal(devsnap(['snapshot', disk, '--repo', repo]).status, 0);
  const held = await acquireLock(new LocalStorage(repo), true, 'snapshot of /dev/test', () => undefined);
  try {
    const r = devsnap(['snapshot', disk, '--repo', repo, '--json', '--lock-wait', '0.5']);
    assert.equal(r.status, 4);
    assert.equal(r.json.error.code, 'LOCKED');
    assert.match(r.json.error.message, new RegExp(`locked by process ${process.pid}`));
    assert.equal(devsnap(['list', '--repo', repo, '--lock-wait', '0']).status, 4, 'readers are refused by an exclusive lock too');
  } finally {
    await held.release();
  }
  // By default a command waits for a short-lived lock (a sidebar's list, a verify) instead of failing.
  const briefly = await acquireLock(new LocalStorage(repo), true, 'snapshot of /dev/test', () => undefined);
  setTimeout(() => void briefly.release(), 1500);
  const waited = await devsnapChild(['list', '--repo', repo, '--json']).exited;
  assert.equal(waited.code, 0, waited.stdout);
  // two real writers at once: the second is refused while the first runs, the first completes
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, seededBytes(5, 4 * MiB), 0, 4 * MiB, 30 * MiB);
  fs.closeSync(fd);
  const bigDisk = await smallDisk(tmpDir(), { size: 120 * MiB, random: true });
  const first = devsnapChild(['snapshot', bigDisk, '--repo', repo, '--json']);
  // The second starts once the first holds the lock (its lock file is there), not after a guessed delay.
  for (let i = 0; !fs.readdirSync(path.join(repo, 'locks')).some((f) => f.endsWith('.lock')); i++) {
    if (i > 1200) throw new Error('the first writer never took the repository lock');
    await new Promise((r) => setTimeout(r, 25));
  }
  const second = devsnap(['snapshot', disk, '--repo', repo, '--json', '--lock-wait', '0']);
  const firstDone = await first.exited;
  assert.equal(firstDone.code, 0, firstDone.stderr);
  assert.equal(second.status, 4, 'the second writer is refused while the first holds the lock');
  assert.equal(second.json.error.code, 'LOCKED');
  fs.writeFileSync(path.join(repo, 'locks', '999999-dead.lock'), JSON.stringify({ pid: 999999, host: os.hostname(), exclusive: true, purpose: 'snapshot', created: '2026-01-01T00:00:00Z' }));
  const r = devsnap(['snapshot', disk, '--repo', repo]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /stale lock of process 999999/);
});

test('a full repository disk: clear error, nothing committed, earlier snapshots intact', { skip: !isRoot && 'needs root (mount)' }, async () => {
  const dir = tmpDir();
  const disk = await smallDisk(dir, { size: 48 * MiB, random: true });
  const small = path.join(dir, 'small.img');
  fs.writeFileSync(small, '');
  fs.truncateSync(small, 40 * MiB);
  sh('mkfs.ext4', ['-q', '-F', small]);
  await withLoop(small, {}, (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      const repo = path.join(mnt, 'repo');
      const tiny = path.join(dir, 'tiny.img');
      fs.writeFileSync(tiny, seededBytes(3, 4 * MiB));
      const first = devsnap(['snapshot', tiny, '--repo', repo, '--json']);
      assert.equal(first.status, 0, first.stderr);
      const r = devsnap(['snapshot', disk, '--repo', repo, '--json']);
      assert.equal(r.status, 9, r.stdout);
      assert.equal(r.json.error.code, 'NO_SPACE');
      assert.match(r.json.error.message, /No space left/);
      const list = devsnap(['list', '--repo', repo, '--json']);
      assert.deepEqual(
        list.json.snapshots.map((s: { id: string }) => s.id),
        [first.json.id],
      );
      assert.equal(devsnap(['check', '--repo', repo]).status, 0);
      assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
      // restoring into an image file on the full filesystem: a clear error, no partial file left behind
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(0));
      const snapDisk = devsnap(['snapshot', tiny, '--repo', path.join(dir, 'repo2'), '--json']);
      const fill = sh('bash', ['-c', `dd if=/dev/zero of=${path.join(mnt, 'filler')} bs=1M status=none || true`]);
      assert.ok(fill);
      const r2 = devsnap(['restore', snapDisk.json.id, path.join(mnt, 'restored.img'), '--repo', path.join(dir, 'repo2'), '--json']);
      assert.equal(r2.status, 9, r2.stdout);
      assert.equal(r2.json.error.code, 'NO_SPACE');
      assert.match(r2.json.error.message, /Nothing was written/);
      assert.deepEqual(
        fs.readdirSync(mnt).filter((n) => n.startsWith('restored')),
        [],
      );
    }),
  );
});

test('dangerous or wrong targets are refused before anything is written', { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir);
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  // too small
  const small = path.join(dir, 'small.img');
  fs.writeFileSync(small, '');
  fs.truncateSync(small, 8 * MiB);
  await withLoop(small, {}, (dev) => {
    const r = devsnap(['restore', snap.json.id, dev, '--repo', repo, '--yes', '--json']);
    assert.equal(r.status, 7);
    assert.match(r.json.error.message, /too small/);
  });
  // mounted
  const target = path.join(dir, 'target.img');
  fs.writeFileSync(target, '');
  fs.truncateSync(target, 64 * MiB);
  sh('mkfs.ext4', ['-q', '-F', target]);
  await withLoop(target, {}, (dev) =>
    withMount(dev, 'ext', {}, () => {
      const r = devsnap(['restore', snap.json.id, dev, '--repo', repo, '--yes', '--json']);
      assert.equal(r.status, 7);
      assert.match(r.json.error.message, /mounted/);
    }),
  );
  // the running system's disk (dry run: even the refusal path never writes)
  const rootDev = sh('findmnt', ['-no', 'SOURCE', '/']).stdout.trim();
  if (rootDev.startsWith('/dev/')) {
    const r = devsnap(['restore', snap.json.id, rootDev, '--repo', repo, '--dry-run', '--json']);
    assert.equal(r.status, 7);
    assert.match(r.json.error.message, /running system/);
    assert.match(r.json.error.hint, /recovery environment/);
  }
  // a device without --yes and no terminal
  await withLoop(target, {}, (dev) => {
    const r = devsnap(['restore', snap.json.id, dev, '--repo', repo, '--json']);
    assert.equal(r.status, 2);
    assert.match(r.json.error.hint, /--yes/);
  });
  // wrong source
  const r = devsnap(['snapshot', path.join(dir, 'nope.img'), '--repo', repo, '--json']);
  assert.equal(r.status, 5);
  assert.match(r.json.error.message, /does not exist/);
  const d = devsnap(['snapshot', dir, '--repo', repo, '--json']);
  assert.equal(d.json.error.code, 'BAD_SOURCE');
  const empty = path.join(dir, 'empty.img');
  fs.writeFileSync(empty, '');
  const e = devsnap(['snapshot', empty, '--repo', repo, '--json']);
  assert.equal(e.json.error.code, 'BAD_SOURCE');
  assert.match(e.json.error.message, /is empty/);
});

test('bad command lines and repositories give messages, not stack traces', () => {
  const dir = tmpDir();
  assert.equal(devsnap(['--help']).status, 0);
  assert.match(devsnap(['restore', '--help']).stdout, /--dry-run/);
  assert.equal(devsnap(['frobnicate']).status, 2);
  const noRepo = devsnap(['list', '--repo', path.join(dir, 'none'), '--json']);
  assert.equal(noRepo.status, 3);
  assert.equal(noRepo.json.error.code, 'NO_REPO');
  const missing = devsnap(['list', '--json'], { DEVSNAP_REPO: '' });
  assert.equal(missing.json.error.code, 'USAGE');
  for (const r of [noRepo, missing]) assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
});

test('encrypted repository: round trip with the password, refused without or with a wrong one', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir);
  const pw = { DEVSNAP_PASSWORD: 'correct horse battery staple' };
  assert.equal(devsnap(['init', '--encrypt', '--repo', repo], pw).status, 0);
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json'], pw);
  assert.equal(snap.status, 0, snap.stderr);
  const wrong = devsnap(['list', '--repo', repo, '--json'], { DEVSNAP_PASSWORD: 'nope' });
  assert.equal(wrong.json.error.code, 'BAD_PASSWORD');
  assert.equal(devsnap(['list', '--repo', repo, '--json'], { DEVSNAP_PASSWORD: '' }).json.error.code, 'BAD_PASSWORD');
  const manifest = fs.readFileSync(path.join(repo, 'snapshots', `${snap.json.id}.json`));
  assert.ok(!manifest.includes(Buffer.from('ext4')), 'manifests are encrypted');
  const out = path.join(dir, 'out.img');
  assert.equal(devsnap(['restore', snap.json.id, out, '--repo', repo], pw).status, 0);
  sh('cmp', [disk, out]);
});

test('retention: forget by policy keeps pinned snapshots; prune reclaims space and the rest still verifies', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const disk = await smallDisk(dir, { size: 8 * MiB, random: true });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const fd = fs.openSync(disk, 'r+');
    fs.writeSync(fd, seededBytes(100 + i, 4 * MiB), 0, 4 * MiB, 42 * MiB);
    fs.closeSync(fd);
    const s = devsnap(['snapshot', disk, '--repo', repo, '--label', `s${i}`, '--json']);
    assert.equal(s.status, 0, s.stderr);
    ids.push(s.json.id);
  }
  assert.equal(devsnap(['pin', ids[0], '--repo', repo]).status, 0);
  assert.equal(devsnap(['label', ids[1], 'renamed', '--repo', repo, '--json']).json.snapshot.label, 'renamed');
  assert.equal(devsnap(['show', 'renamed', '--repo', repo, '--json']).json.snapshot.id, ids[1], 'a snapshot can be named by its label');
  assert.equal(devsnap(['show', 'no such label', '--repo', repo, '--json']).json.error.code, 'NOT_FOUND');
  const f = devsnap(['forget', '--keep-last', '1', '--repo', repo, '--json']);
  assert.equal(f.status, 0, f.stderr);
  assert.deepEqual(f.json.removed.sort(), [ids[1], ids[2]].sort());
  assert.deepEqual(f.json.kept.sort(), [ids[0], ids[3]].sort());
  const byId = devsnap(['forget', ids[3], '--dry-run', '--repo', repo, '--json']);
  assert.deepEqual(byId.json.removed, [ids[3]]);
  assert.deepEqual(byId.json.kept, [ids[0]]);
  const p = devsnap(['prune', '--repo', repo, '--json']);
  assert.equal(p.status, 0, p.stderr);
  assert.ok(p.json.bytesFreed > 0);
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
  assert.equal(devsnap(['check', '--repo', repo, '--json']).json.warnings.length, 0);
  assert.equal(devsnap(['forget', ids[0], '--repo', repo, '--json']).json.error.code, 'USAGE', 'a pinned snapshot is not forgotten');
});

test(
  'a source mounted read-write: one point in time by default; --fuzzy warns; --freeze is consistent; the filesystem is thawed after',
  { skip: !isRoot && 'needs root (mount, fsfreeze)' },
  async () => {
    const dir = tmpDir();
    const repo = path.join(dir, 'repo');
    const disk = await smallDisk(dir);
    const layout = sh('sfdisk', ['-J', disk]).stdout;
    const p1 = JSON.parse(layout).partitiontable.partitions[0];
    await withLoop(disk, { offset: p1.start * 512, sizeLimit: p1.size * 512 }, (dev) =>
      withMount(dev, 'ext', {}, (mnt) => {
        fs.writeFileSync(path.join(mnt, 'fresh.txt'), 'written just before the snapshot\n');
        const plain = devsnap(['snapshot', disk, '--repo', repo, '--json']);
        assert.equal(plain.status, 0, plain.stderr);
        assert.equal(plain.json.snapshot.consistency, 'frozen-two-pass');
        assert.ok(plain.json.snapshot.pointInTime.pauseSeconds < 5, JSON.stringify(plain.json.snapshot.pointInTime));
        fs.writeFileSync(path.join(mnt, 'between.txt'), 'writable after the two-pass snapshot\n'); // would hang if still frozen
        const fuzzy = devsnap(['snapshot', disk, '--repo', repo, '--fuzzy', '--json']);
        assert.equal(fuzzy.status, 0, fuzzy.stderr);
        assert.equal(fuzzy.json.snapshot.consistency, 'fuzzy');
        assert.match(fuzzy.json.warnings.join('\n'), /mounted read-write .* read live \(--fuzzy\): the image is not one point in time/);
        const frozen = devsnap(['snapshot', disk, '--repo', repo, '--freeze', '--json']);
        assert.equal(frozen.status, 0, frozen.stderr);
        assert.equal(frozen.json.snapshot.consistency, 'frozen');
        fs.writeFileSync(path.join(mnt, 'after.txt'), 'the filesystem is writable again\n'); // would hang if still frozen
        const out = path.join(dir, 'out.img');
        assert.equal(devsnap(['restore', frozen.json.id, out, '--repo', repo]).status, 0);
        return withLoop(out, { offset: p1.start * 512, sizeLimit: p1.size * 512, readOnly: true }, (rdev) =>
          withMount(rdev, 'ext', { readOnly: true }, (rmnt) => {
            assert.equal(fs.readFileSync(path.join(rmnt, 'fresh.txt'), 'utf8'), 'written just before the snapshot\n');
          }),
        );
      }),
    );
  },
);
