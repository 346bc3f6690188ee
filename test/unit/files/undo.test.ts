// `devsnap undo` on a mounted ext4 filesystem: snapshot, an upgrade (files modified in place and
// replaced by rename, added, removed, modes, owners and xattrs changed, symlinks and hard links added
// and removed, directories created and removed, types changed, a kernel installed), snapshot, undo:
// the filesystem's tree (contents, types, modes, owners, sizes, mtimes, symlink targets, xattrs, hard
// links) is again the one before the upgrade. A dry run and a refused undo change nothing; a path
// changed since the second snapshot is a conflict; the wrong snapshots or target are refused by name;
// the running kernel's files are left alone.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cleanup, diffDigests, isRoot, makeDisk, makeWorkstationTree, sh, simulateUpgrade, tmpDir, treeDigest, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { runOp } from '../../../imaging/ops/registry';
import { DevsnapError } from '../../../imaging/core/errors';
import type { UndoEntry } from '../../../imaging/protocol';

after(cleanup);
const MiB = 1 << 20;
const skip = !isRoot && 'needs root (loop devices, mounts, owners)';

interface Scenario {
  dir: string;
  disk: string;
  repo: string;
  mnt: string;
  before: string;
  after: string;
  digestBefore: string;
  digestAfter: string;
}

function snapshot(disk: string, repo: string): string {
  const s = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(s.status, 0, s.stderr);
  return s.json.id;
}

/** An upgrade as dpkg does one, and more: every kind of change undo must put back. */
function upgrade(mnt: string): void {
  const p = (rel: string) => path.join(mnt, rel);
  fs.writeFileSync(p('etc/.os-release.dpkg-new'), 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n');
  fs.renameSync(p('etc/.os-release.dpkg-new'), p('etc/os-release')); // replaced by rename: a new inode
  fs.chmodSync(p('etc/hostname'), 0o600);
  sh('setfattr', ['-n', 'user.added', '-v', 'by the upgrade', p('etc/hostname')]);
  sh('setfattr', ['-n', 'user.comment', '-v', 'changed by the upgrade', p('home/dev/project/README.md')]); // xattrs only
  fs.chownSync(p('etc/shadow'), 0, 0); // owner only (was 0:42)
  fs.rmSync(p('usr/bin/tool-link'));
  fs.symlinkSync('tool-2.1', p('usr/bin/tool-link')); // symlink target changed
  fs.symlinkSync('tool', p('usr/bin/tool-new')); // symlink added
  fs.linkSync(p('usr/bin/tool'), p('usr/bin/tool-3')); // hard link added...
  fs.rmSync(p('usr/bin/tool-2.1')); // ...and another name of the same file removed
  fs.mkdirSync(p('opt/new/deep'), { recursive: true }); // directories created
  fs.writeFileSync(p('opt/new/deep/file'), 'new\n');
  fs.mkdirSync(p('var/lib/newpkg')); // an empty one
  fs.rmSync(p('etc/apt'), { recursive: true }); // a directory removed
  fs.rmSync(p('etc/fstab')); // file -> directory
  fs.mkdirSync(p('etc/fstab'));
  fs.writeFileSync(p('etc/fstab/00-root'), 'UUID=x / ext4 defaults 0 1\n');
  fs.rmSync(p('home/dev/vm'), { recursive: true }); // directory (with a sparse file) -> file
  fs.writeFileSync(p('home/dev/vm'), 'now a file\n');
  fs.chmodSync(p('home/dev/project/src'), 0o700); // a directory's mode
  fs.mkdirSync(p('boot'));
  fs.writeFileSync(p('boot/vmlinuz-9.9.9-test'), 'a kernel\n'); // a kernel and its modules installed
  fs.mkdirSync(p('lib/modules/9.9.9-test/kernel'), { recursive: true });
  fs.writeFileSync(p('lib/modules/9.9.9-test/kernel/x.ko'), 'a module\n');
  simulateUpgrade(mnt, 0.15); // contents rewritten in place, files removed and added, /var/lib/dpkg/status
}

/** A disk whose ext4 filesystem is mounted for `fn`, snapshotted before and after upgrade(). */
async function withUpgraded(fn: (s: Scenario) => Promise<void>): Promise<void> {
  const dir = tmpDir('devsnap-undo-');
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 2 * MiB });
  const disk = path.join(dir, 'disk.img');
  const repo = path.join(dir, 'repo');
  const [root] = await makeDisk(disk, { table: 'gpt', size: 40 * MiB, partitions: [{ fs: 'ext4', fromDir: tree }] });
  await withLoop(disk, { offset: root.start, sizeLimit: root.size }, (dev) =>
    withMount(dev, 'ext', {}, async (mnt) => {
      const digestBefore = treeDigest(mnt);
      const before = snapshot(disk, repo);
      upgrade(mnt);
      const digestAfter = treeDigest(mnt);
      assert.notEqual(diffDigests(digestBefore, digestAfter), '', 'the upgrade changed the tree');
      const after = snapshot(disk, repo);
      await fn({ dir, disk, repo, mnt, before, after, digestBefore, digestAfter });
    }),
  );
}

const undo = (s: Scenario, ...flags: string[]) => devsnap(['undo', s.before, s.after, '--repo', s.repo, '--target', s.mnt, '--json', ...flags]);
const byPath = (r: { entries: UndoEntry[] }) => new Map(r.entries.map((e) => [e.path, e]));

test('undo puts the tree back as it was before the upgrade; a dry run and an unconfirmed undo change nothing; again, nothing is left to do', { skip }, async () => {
  await withUpgraded(async (s) => {
    const dry = undo(s, '--everything', '--dry-run');
    assert.equal(dry.status, 0, dry.stderr);
    assert.equal(diffDigests(s.digestAfter, treeDigest(s.mnt)), '', 'a dry run changes nothing');
    assert.equal(dry.json.dryRun, true);
    assert.equal(dry.json.totals.conflict, 0);
    const e = byPath(dry.json);
    const action = (p: string) => [e.get(p)?.change, e.get(p)?.action];
    assert.deepEqual(action('/etc/os-release'), ['modified', 'restore']);
    assert.deepEqual(action('/etc/apt/sources.list'), ['removed', 'restore']);
    assert.deepEqual(action('/etc/fstab'), ['replaced', 'restore']);
    assert.deepEqual(action('/etc/fstab/00-root'), ['added', 'remove']);
    assert.deepEqual(action('/opt/new/deep/file'), ['added', 'remove']);
    assert.deepEqual(action('/usr/bin/tool-3'), ['added', 'remove']);
    assert.deepEqual(action('/home/dev/project/README.md'), ['metadata', 'restore']);
    assert.deepEqual(action('/var/lib/dpkg/status'), ['modified', 'restore'], 'the package database goes back with the files');
    assert.match(dry.json.cannotUndo.join('\n'), /changed \/boot.*kernel running now/s);
    assert.match(dry.json.cannotUndo.join('\n'), /Kernel modules changed/);

    // Without --yes (and no terminal to ask on): refused before anything is changed.
    const unconfirmed = undo(s, '--everything');
    assert.equal(unconfirmed.status, 2, unconfirmed.stderr);
    assert.match(unconfirmed.json.error.hint, /--yes/);
    assert.equal(diffDigests(s.digestAfter, treeDigest(s.mnt)), '');

    const r = undo(s, '--everything', '--yes', '--source', s.disk);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json.warnings, []);
    assert.equal(r.json.totals.conflict + r.json.totals.skip, 0, JSON.stringify(r.json.entries.filter((x: { action: string }) => x.action === 'skip')));
    assert.equal(diffDigests(s.digestBefore, treeDigest(s.mnt)), '', 'the tree is the one before the upgrade');
    assert.equal(fs.statSync(path.join(s.mnt, 'usr/bin/tool')).ino, fs.statSync(path.join(s.mnt, 'usr/bin/tool-2.1')).ino, 'hard links linked again');
    assert.ok(fs.statSync(path.join(s.mnt, 'home/dev/vm/disk.raw')).blocks * 512 < 4 * MiB, 'a sparse file stays sparse');
    // Frozen, the journal is written home: e2fsck reads the filesystem as it is.
    sh('fsfreeze', ['--freeze', s.mnt]);
    try {
      const fsck = sh('e2fsck', ['-fn', sh('findmnt', ['-no', 'SOURCE', s.mnt]).stdout.trim()], { allowFail: true });
      assert.equal(fsck.status, 0, `the filesystem is consistent: ${fsck.stdout}`);
    } finally {
      sh('fsfreeze', ['--unfreeze', s.mnt]);
    }

    // The safety snapshot, taken first, holds the filesystem as it was after the upgrade.
    const changes = devsnap(['changes', s.after, r.json.safetySnapshot, '--repo', s.repo, '--json']);
    assert.equal(changes.status, 0, changes.stderr);
    assert.equal(changes.json.files.total, 0, JSON.stringify(changes.json.files.changes.slice(0, 5)));

    const again = undo(s, '--everything', '--yes');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.json.totals.remove + again.json.totals.conflict + again.json.totals.skip, 0);
    assert.deepEqual(again.json.warnings, []);
    assert.equal(diffDigests(s.digestBefore, treeDigest(s.mnt)), '');
  });
});

test('a path changed since the second snapshot is a conflict: refused, nothing changed; left out by --exclude (and the defaults), or undone by --force', { skip }, async () => {
  await withUpgraded(async (s) => {
    fs.writeFileSync(path.join(s.mnt, 'etc/os-release'), 'a local edit after the upgrade\n');
    fs.writeFileSync(path.join(s.mnt, 'opt/new/deep/file'), 'edited too\n');
    const edited = treeDigest(s.mnt);
    const refused = undo(s, '--everything', '--yes');
    assert.equal(refused.status, 7, refused.stderr);
    assert.equal(refused.json.error.code, 'BAD_TARGET');
    assert.match(refused.json.error.message, /2 paths .* changed since snapshot .*\/etc\/os-release \(changed since snapshot/);
    assert.match(refused.json.error.message, /\/opt\/new\/deep\/file/);
    assert.match(refused.json.error.hint, /Nothing was changed.*--exclude.*--force/);
    assert.equal(diffDigests(edited, treeDigest(s.mnt)), '', 'a refused undo changes nothing');
    const dry = undo(s, '--everything', '--dry-run');
    assert.deepEqual(
      dry.json.entries.filter((x: { action: string }) => x.action === 'conflict').map((x: { path: string }) => x.path),
      ['/etc/os-release', '/opt/new/deep/file'],
    );

    // Left out: the edited paths, and (the defaults) /home, /var/log...: those keep what the upgrade did.
    const partial = undo(s, '--yes', '--exclude', '/etc/os-release', '--exclude', 'opt/new');
    assert.equal(partial.status, 0, partial.stderr);
    assert.ok(partial.json.excluded.includes('/home') && partial.json.excluded.includes('/opt/new'));
    // /opt, created by the upgrade, stays: it holds /opt/new.
    assert.match(byPath(partial.json).get('/opt')?.reason ?? '', /not empty/);
    const left = (line: string) => /^(home|root|tmp|var\/tmp|var\/log|var\/cache|etc\/os-release|opt)(\/|\t)/.test(line);
    const pick = (digest: string, keep: boolean) =>
      digest
        .split('\n')
        .filter((l) => l && left(l) === keep)
        .join('\n');
    const now = treeDigest(s.mnt);
    assert.equal(diffDigests(pick(s.digestBefore, false), pick(now, false)), '', 'undone outside what was left out');
    assert.equal(diffDigests(pick(edited, true), pick(now, true)), '', 'what was left out is as it was');

    const forced = undo(s, '--everything', '--yes', '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(byPath(forced.json).get('/etc/os-release')?.reason ?? '', /undone anyway \(--force\)/);
    assert.equal(diffDigests(s.digestBefore, treeDigest(s.mnt)), '', 'forced: all of it undone');
  });
});

test('refused by name: snapshots of different filesystems or in the wrong order, a target that is not the filesystem, a request that does not fit; the running kernel is left', { skip }, async () => {
  const dir = tmpDir('devsnap-undo-');
  const repo = path.join(dir, 'repo');
  const disks = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const disk = path.join(dir, `${name}.img`);
      const tree = path.join(dir, `tree-${name}`);
      fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(tree, 'etc/hostname'), `${name}\n`);
      const [p] = await makeDisk(disk, { table: 'gpt', size: 16 * MiB, partitions: [{ fs: 'ext4', fromDir: tree }] });
      return { disk, p };
    }),
  );
  const [a1, b1, a2] = [snapshot(disks[0].disk, repo), snapshot(disks[1].disk, repo), snapshot(disks[0].disk, repo)];
  const run = (...args: string[]) => devsnap(['undo', ...args, '--repo', repo, '--json', '--yes']);
  await withLoop(disks[0].disk, { offset: disks[0].p.start, sizeLimit: disks[0].p.size }, (devA) =>
    withLoop(disks[1].disk, { offset: disks[1].p.start, sizeLimit: disks[1].p.size }, (devB) =>
      withMount(devA, 'ext', {}, (mntA) =>
        withMount(devB, 'ext', {}, async (mntB) => {
          const different = run(a1, b1, '--target', mntA);
          assert.equal(different.json.error.code, 'USAGE');
          assert.match(different.json.error.message, new RegExp(`Snapshots ${a1} and ${b1} hold different filesystems`));
          assert.match(different.json.error.hint, /same disk/);

          const reversed = run(a2, a1, '--target', mntA);
          assert.match(reversed.json.error.message, new RegExp(`Snapshot ${a2} \\(BEFORE, .*\\) is newer than ${a1}`));
          assert.match(reversed.json.error.hint, /older snapshot first/);

          const elsewhere = run(a1, a2, '--target', mntB);
          assert.equal(elsewhere.status, 7);
          assert.match(elsewhere.json.error.message, new RegExp(`${mntB} holds another filesystem \\(${devB}, UUID [0-9a-f-]+\\) than the snapshots`));
          const notMounted = run(a1, a2, '--target', dir);
          assert.match(notMounted.json.error.message, /is not where a filesystem is mounted/);
          const ok = run(a1, a2, '--target', mntA);
          assert.equal(ok.status, 0, ok.stderr);
          assert.equal(ok.json.entries.length, 0, 'nothing changed between the two snapshots of a');
          assert.equal(fs.readFileSync(path.join(mntB, 'etc/hostname'), 'utf8'), 'b\n');

          // Files of the kernel running now are left alone (unless --force), and the result says so.
          const module = path.join(mntA, 'lib/modules', os.release(), 'updates/x.ko');
          fs.mkdirSync(path.dirname(module), { recursive: true });
          fs.writeFileSync(module, 'a module of the running kernel\n');
          const a3 = snapshot(disks[0].disk, repo);
          const kernel = run(a2, a3, '--target', mntA);
          assert.equal(kernel.status, 0, kernel.stderr);
          assert.match(byPath(kernel.json).get(`/lib/modules/${os.release()}/updates/x.ko`)?.reason ?? '', /belongs to the kernel running now/);
          assert.match(kernel.json.cannotUndo.join('\n'), /Files of the kernel running now .* are left as they are/);
          assert.ok(fs.existsSync(module));
        }),
      ),
    ),
  );
  // The engine's own check of a request, as every client meets it.
  await assert.rejects(
    async () => runOp('undo', { repo, before: a1, after: a2, target: 'relative/dir' }, { log: () => undefined }),
    (err: DevsnapError) => err.code === 'USAGE' && /"target" must be an absolute path/.test(err.message),
  );
  await assert.rejects(async () => runOp('undo', { repo, before: a1, after: a2, target: '/', exclude: ['/a/../etc'] }, { log: () => undefined }), /"exclude\[0\]" must not go through '\.\.'/);
});
