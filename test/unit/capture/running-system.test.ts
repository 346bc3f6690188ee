// The running system, beyond one busy ext4 (point-in-time.test.ts): how each kind of read-write mount
// is paused, what is refused and why, and incrementals that read and store only what changed —
// with their stated limit (a write behind the filesystem's back) and prune keeping patch bases.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, ext4TreeDigest, fsck, isRoot, makeDisk, makeFsImage, makeWorkstationTree, seededBytes, sh, tmpDir, withLoop, withMount } from '../../helpers/disks';
import type { PartitionInfo } from '../../../imaging/protocol';
import { devsnap } from '../../helpers/cli';
import { spawn, spawnSync } from 'child_process';

after(cleanup);
const MiB = 1 << 20;
const skip = !isRoot && 'needs root (loop devices, mount, fsfreeze)';

/** GPT disk: an ext4 partition with a small workstation tree, and optionally an NTFS one. */
async function disk(dir: string, ntfs = false): Promise<{ file: string; parts: PartitionInfo[] }> {
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 4 * MiB });
  fs.writeFileSync(path.join(tree, 'big.bin'), seededBytes(7, 24 * MiB));
  const file = path.join(dir, 'disk.img');
  const parts = await makeDisk(file, {
    table: 'gpt',
    size: (ntfs ? 98 : 66) * MiB,
    partitions: [{ size: 64 * MiB, fs: 'ext4', fromDir: tree, blockSize: 4096 }, ...(ntfs ? [{ size: 32 * MiB, fs: 'ntfs' as const }] : [])],
  });
  return { file, parts };
}

const at = (p: PartitionInfo) => ({ offset: p.start, sizeLimit: p.size });

test(
  'an NTFS partition mounted read-write (ntfs-3g, cannot be frozen) is two-pass, read-only for the last pass only, then writable; ext4 beside it is two-pass; both restore clean',
  { skip },
  async () => {
    const dir = tmpDir();
    const repo = path.join(dir, 'repo');
    const { file, parts } = await disk(dir, true);
    const out = path.join(dir, 'out.img');
    await withLoop(file, at(parts[0]), (edev) =>
      withMount(edev, 'ext', {}, (emnt) =>
        withLoop(file, at(parts[1]), (ndev) =>
          withMount(ndev, 'ntfs', {}, (nmnt) => {
            fs.writeFileSync(path.join(nmnt, 'notes.txt'), 'on the NTFS partition\n');
            fs.writeFileSync(path.join(emnt, 'fresh.txt'), 'on the ext4 partition\n');
            const plan = devsnap(['snapshot', file, '--repo', repo, '--plan', '--json']);
            assert.equal(plan.status, 0, plan.stderr);
            const how = Object.fromEntries(plan.json.mounts.map((m: { mountpoint: string; how: string }) => [m.mountpoint, m.how]));
            assert.deepEqual(how, { [emnt]: 'two-pass', [nmnt]: 'two-pass-ro' });
            assert.ok(plan.json.pauseSeconds > 0 && !plan.json.problem, JSON.stringify(plan.json));

            const r = devsnap(['snapshot', file, '--repo', repo, '--json']);
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.json.snapshot.consistency, 'frozen-two-pass');
            const methods = r.json.snapshot.pointInTime.methods.map((m: { mountpoint: string; how: string }) => `${m.mountpoint}=${m.how}`).sort();
            assert.deepEqual(methods, [`${emnt}=two-pass`, `${nmnt}=two-pass-ro`].sort());
            assert.doesNotMatch(r.stderr, /read-only while it is read/);
            fs.writeFileSync(path.join(nmnt, 'after.txt'), 'writable again\n'); // throws EROFS if it stayed read-only
            assert.equal(devsnap(['restore', r.json.id, out, '--repo', repo]).status, 0);
          }),
        ),
      ),
    );
    await withLoop(out, { ...at(parts[1]), readOnly: true }, (dev) => assert.ok(fsck('ntfs', dev).ok, 'the restored NTFS is clean'));
    await withLoop(out, { ...at(parts[0]), readOnly: true }, (dev) => {
      const c = fsck('ext4', dev);
      assert.ok(c.ok, c.output);
      assert.doesNotMatch(sh('dumpe2fs', ['-h', dev]).stdout, /needs_recovery/);
    });
  },
);

test('refused with what to do: a mount that cannot be made read-only (a file open for writing), and the repository on the disk being imaged', { skip }, async () => {
  const dir = tmpDir();
  const { file, parts } = await disk(dir, true);
  await withLoop(file, at(parts[0]), (edev) =>
    withMount(edev, 'ext', {}, (emnt) =>
      withLoop(file, at(parts[1]), (ndev) =>
        withMount(ndev, 'ntfs', {}, (nmnt) => {
          const fd = fs.openSync(path.join(nmnt, 'open.txt'), 'w');
          try {
            const r = devsnap(['snapshot', file, '--repo', path.join(dir, 'repo'), '--json']);
            assert.equal(r.json.error.code, 'BAD_SOURCE', r.stderr);
            assert.match(r.json.error.message, new RegExp(`Could not make ${nmnt} read-only while it is imaged`));
            assert.match(r.json.error.hint, /open for writing .* --fuzzy/);
          } finally {
            fs.closeSync(fd);
          }
          const inside = path.join(emnt, 'repo');
          const plan = devsnap(['snapshot', file, '--repo', inside, '--plan', '--json']);
          assert.match(plan.json.problem.message, /is on .*a filesystem of the disk being imaged/);
          const r = devsnap(['snapshot', file, '--repo', inside, '--json']);
          assert.equal(r.json.error.code, 'USAGE');
          assert.match(r.json.error.message + r.json.error.hint, /image would hold the repository's own files.*another drive/s);
          fs.writeFileSync(path.join(emnt, 'still-writable.txt'), 'x'); // nothing was left frozen
        }),
      ),
    ),
  );
});

test("an incremental reads and stores what changed; a write behind the filesystem's back needs --full-read; prune keeps the bases of patches", { skip }, async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { file, parts } = await disk(dir);
  const first = devsnap(['snapshot', file, '--repo', repo, '--json']);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.json.snapshot.readMode, 'all');
  await withLoop(file, at(parts[0]), (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      sh('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'big.bin')}`, 'bs=4096', 'count=1', 'seek=700', 'conv=notrunc', 'status=none']);
      fs.appendFileSync(path.join(mnt, 'notes.log'), 'one more line\n');
    }),
  );
  const second = devsnap(['snapshot', file, '--repo', repo, '--json']);
  assert.equal(second.status, 0, second.stderr);
  const [a, b] = [first.json.snapshot.stats, second.json.snapshot.stats];
  assert.equal(second.json.snapshot.readMode, 'changes');
  // A changed file is read whole (its inode changed), the rest not at all: 24 MiB of big.bin plus metadata.
  assert.ok(b.bytesRead < a.bytesRead, `the incremental read ${b.bytesRead} bytes, the full ${a.bytesRead}`);
  assert.ok(b.bytesAdded < 256 * 1024, `a 4 KiB overwrite and a line added ${b.bytesAdded} bytes (patches, not 1 MiB chunks)`);
  const truth = await withLoop(file, { ...at(parts[0]), readOnly: true }, (dev) => ext4TreeDigest(dev));
  const restoredDigest = async (id: string) => {
    const out = path.join(dir, `${id}.img`);
    assert.equal(devsnap(['restore', id, out, '--repo', repo]).status, 0);
    return withLoop(out, { ...at(parts[0]), readOnly: true }, async (dev) => {
      assert.ok(fsck('ext4', dev).ok);
      return ext4TreeDigest(dev);
    });
  };
  assert.equal(await restoredDigest(second.json.id), truth, 'the incremental restores the filesystem as it is');

  // Behind the filesystem's back: a data block of big.bin rewritten on the raw partition, no inode changed.
  const where = await withLoop(file, { ...at(parts[0]), readOnly: true }, (dev) => Number(/\(0(?:-\d+)?\):(\d+)/.exec(sh('debugfs', ['-R', 'stat /big.bin', dev]).stdout)![1]));
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, seededBytes(99, 4096), 0, 4096, parts[0].start + where * 4096);
  fs.closeSync(fd);
  const rawTruth = await withLoop(file, { ...at(parts[0]), readOnly: true }, (dev) => ext4TreeDigest(dev));
  const missed = devsnap(['snapshot', file, '--repo', repo, '--json']);
  assert.equal(missed.json.snapshot.readMode, 'changes');
  assert.equal(await restoredDigest(missed.json.id), truth, 'the change-based incremental does not see a raw write (the documented limit)');
  // verify --against finds it: exactly that block, in partition 1.
  const cmp = devsnap(['verify', missed.json.id, '--repo', repo, '--against', file, '--json']);
  assert.equal(cmp.status, 10, cmp.stderr);
  assert.deepEqual(cmp.json.disk.differences, [{ partition: 1, offset: parts[0].start + where * 4096, length: 4096 }]);
  const same = devsnap(['verify', second.json.id, '--repo', repo, '--against', file, '--json']);
  assert.equal(same.json.disk.differences.length, 1, 'the earlier snapshot differs in that block too');
  const full = devsnap(['snapshot', file, '--repo', repo, '--full-read', '--json']);
  assert.equal(full.json.snapshot.readMode, 'all');
  assert.ok(full.json.snapshot.stats.bytesAdded < 256 * 1024, 'a full read still stores only what differs');
  assert.equal(await restoredDigest(full.json.id), rawTruth, '--full-read sees it');
  const equal = devsnap(['verify', full.json.id, '--repo', repo, '--against', file, '--json']);
  assert.equal(equal.status, 0, equal.stderr);
  assert.ok(equal.json.disk.equal && equal.json.disk.bytesCompared > 20 * MiB, JSON.stringify(equal.json.disk));

  // The first snapshot's chunks are the bases of the later ones' patches: forgetting it must not lose them.
  const f = devsnap(['forget', first.json.id, '--repo', repo, '--prune', '--json']);
  assert.equal(f.status, 0, f.stderr);
  assert.equal(devsnap(['check', '--repo', repo, '--json']).json.errors.length, 0);
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
  assert.equal(await restoredDigest(full.json.id), rawTruth, 'after prune');
});

test('devsnap killed (kill -9) while writes are paused: its guard process resumes them', { skip }, async () => {
  const dir = tmpDir();
  const img = path.join(dir, 'fs.img');
  await makeFsImage(img, { fs: 'ext4', size: 32 * MiB });
  await withLoop(img, {}, (dev) =>
    withMount(dev, 'ext', {}, async (mnt) => {
      const pause = path.join(__dirname, '..', '..', '..', 'imaging', 'capture', 'pause.js');
      // The engine's own freeze, with a 3 s guard, in a process that is then killed: no exit handler runs.
      const script = `require(${JSON.stringify(pause)}).freeze([${JSON.stringify(mnt)}], 3); console.log('frozen'); setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d) => String(d).includes('frozen') && resolve());
          child.on('exit', (code) => reject(new Error(`the freezing process exited (${code})`)));
        });
        child.kill('SIGKILL');
        const stillFrozen = spawnSync('fsfreeze', ['--freeze', mnt], { encoding: 'utf8' });
        assert.notEqual(stillFrozen.status, 0, 'right after the kill the filesystem is still frozen (fsfreeze --freeze refuses)');
        // A writer blocked by a freeze cannot be killed: wait for it asynchronously, and unstick it ourselves if the guard fails.
        const writer = spawn('sh', ['-c', `echo after > ${mnt}/after.txt && sync -f ${mnt}`]);
        const status = await new Promise<number | string>((resolve) => {
          const timer = setTimeout(() => {
            spawnSync('fsfreeze', ['--unfreeze', mnt]);
            resolve('still frozen after 20 s');
          }, 20_000);
          writer.on('exit', (code) => {
            clearTimeout(timer);
            resolve(code ?? -1);
          });
        });
        assert.equal(status, 0, 'writes go through again: the guard thawed the filesystem');
        assert.equal(fs.readFileSync(path.join(mnt, 'after.txt'), 'utf8'), 'after\n');
      } finally {
        child.kill('SIGKILL');
        spawnSync('fsfreeze', ['--unfreeze', mnt]); // never leave it frozen, whatever failed
      }
    }),
  );
});
