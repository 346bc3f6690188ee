// Files of a dual-boot Windows partition, end to end through the CLI: a GPT disk with an EFI, an NTFS
// and an ext4 partition; `devsnap snapshot`; files changed, added and removed on the NTFS through ntfs-3g
// on a loop device (--offset/--sizelimit); a second snapshot; then `devsnap ls`, `cat`, `changes` and
// `restore-files` with -p 2, each compared with what ntfs-3g shows of the partition in that state.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, diffDigests, isRoot, makeDisk, seededBytes, sh, tmpDir, treeDigest, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;

/** A little Windows: user folders, programs, unicode names, a hard link, a symlink. */
function windowsTree(dir: string): void {
  const put = (p: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data);
  };
  put('Users/alice/Documents/report.txt', 'quarterly report\r\n'.repeat(200));
  put('Users/alice/Documents/notes.txt', 'notes\r\n');
  put('Users/alice/Pictures/photo.jpg', seededBytes(1, 500_000));
  put('Users/alice/Ünïcode 名前.txt', 'unicode\r\n');
  put('Program Files/App/app.exe', seededBytes(2, 1 * MiB + 3));
  put('Program Files/App/settings.ini', '[app]\r\nlevel=1\r\n');
  put('Windows/System32/drivers/etc/hosts', '127.0.0.1 localhost\r\n');
  fs.linkSync(path.join(dir, 'Program Files/App/settings.ini'), path.join(dir, 'Program Files/App/settings-link.ini'));
  fs.symlinkSync('Documents/report.txt', path.join(dir, 'Users/alice/report-link'));
  fs.mkdirSync(path.join(dir, '$Recycle.Bin'));
}

test('NTFS partition of snapshots: ls, cat, changes and restore-files through the CLI equal ntfs-3g', { skip: isRoot ? false : 'needs root: loop devices and ntfs-3g' }, async () => {
  const dir = tmpDir('devsnap-ntfs-files-');
  const src = path.join(dir, 'win');
  windowsTree(src);
  const disk = path.join(dir, 'disk.img');
  const layout = await makeDisk(disk, {
    table: 'gpt',
    size: 96 * MiB,
    partitions: [
      { size: 8 * MiB, fs: 'vfat', label: 'EFI' },
      { size: 48 * MiB, fs: 'ntfs', label: 'Windows', fromDir: src },
      { fs: 'ext4', label: 'root' },
    ],
  });
  const p = layout[1];
  assert.equal(p.index, 2);
  const onNtfs = <T>(readOnly: boolean, fn: (mnt: string) => T | Promise<T>): Promise<T> =>
    withLoop(disk, { offset: p.start, sizeLimit: p.size, readOnly }, (dev) => withMount(dev, 'ntfs', { readOnly }, fn));
  await onNtfs(false, (mnt) => {
    fs.mkdirSync(path.join(mnt, 'Users/alice/Compressed'));
    sh('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', path.join(mnt, 'Users/alice/Compressed')]);
    fs.writeFileSync(path.join(mnt, 'Users/alice/Compressed/log.txt'), 'a line of a log that compresses well\r\n'.repeat(20_000));
    sh('setfattr', ['-n', 'user.Zone.Identifier', '-v', '[ZoneTransfer]\r\nZoneId=3\r\n', path.join(mnt, 'Program Files/App/app.exe')]);
  });
  const before = await onNtfs(true, (mnt) => ({ users: treeDigest(path.join(mnt, 'Users')), names: fs.readdirSync(path.join(mnt, 'Users/alice')).sort() }));

  const repo = path.join(dir, 'repo');
  const run = (args: string[]) => {
    const r = devsnap([...args, '--repo', repo]);
    assert.equal(r.status, 0, `devsnap ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const id1 = run(['snapshot', disk, '--json']).json.id as string;

  // ls: the default partition is still the ext4 root; -p 2 lists the NTFS as ntfs-3g does.
  assert.equal(run(['ls', id1, '/', '--json']).json.fs, 'ext4');
  const ls = run(['ls', id1, '/Users/alice', '-p', '2', '--json']).json;
  assert.equal(ls.fs, 'ntfs');
  assert.equal(ls.partition, 2);
  assert.deepEqual(ls.entries.map((e: { name: string }) => e.name).sort(), before.names);
  const link = ls.entries.find((e: { name: string }) => e.name === 'report-link');
  assert.equal(link.type, 'symlink');
  assert.equal(link.target, 'Documents/report.txt');
  assert.match(run(['ls', id1, '/', '-p', '2']).stdout, /\$Recycle\.Bin/);
  assert.doesNotMatch(run(['ls', id1, '/', '-p', '2']).stdout, /\$MFT|\$Extend/);

  // cat: a resident file, a compressed one, one through a symlink.
  assert.equal(run(['cat', id1, '/Users/alice/Documents/notes.txt', '-p', '2']).stdout, 'notes\r\n');
  assert.equal(run(['cat', id1, '/Users/alice/Compressed/log.txt', '-p', '2']).stdout, 'a line of a log that compresses well\r\n'.repeat(20_000));
  assert.equal(run(['cat', id1, '/Users/alice/report-link', '-p', '2']).stdout, 'quarterly report\r\n'.repeat(200));

  // Windows changes files: one modified (same size: the content decides), one grown, one compressed rewritten, one added, one removed.
  await new Promise((r) => setTimeout(r, 1100));
  await onNtfs(false, (mnt) => {
    const at = (x: string) => path.join(mnt, x);
    const fd = fs.openSync(at('Program Files/App/app.exe'), 'r+');
    fs.writeSync(fd, crypto.randomBytes(4096), 0, 4096, 300_000);
    fs.closeSync(fd);
    fs.appendFileSync(at('Users/alice/Documents/report.txt'), 'addendum\r\n');
    fs.writeFileSync(at('Users/alice/Compressed/log.txt'), 'another log line\r\n'.repeat(30_000));
    fs.writeFileSync(at('Users/alice/Documents/new.txt'), 'new\r\n');
    fs.rmSync(at('Users/alice/Pictures/photo.jpg'));
  });
  const id2 = run(['snapshot', disk, '--json']).json.id as string;

  // changes -p 2: exactly those files (their folders' times changed too: metadata).
  const ch = run(['changes', id1, id2, '-p', '2', '--json']).json;
  assert.equal(ch.partition, 2);
  const files = (ch.files.changes as { path: string; change: string; type: string }[]).filter((c) => c.type !== 'dir');
  assert.deepEqual(files.map((c) => `${c.change} ${c.path}`).sort(), [
    'added /Users/alice/Documents/new.txt',
    'modified /Program Files/App/app.exe',
    'modified /Users/alice/Compressed/log.txt',
    'modified /Users/alice/Documents/report.txt',
    'removed /Users/alice/Pictures/photo.jpg',
  ]);
  assert.ok((ch.files.changes as { type: string; change: string }[]).filter((c) => c.type === 'dir').every((c) => c.change === 'metadata'));

  // restore-files: both snapshots' folders equal what ntfs-3g showed (owner, mode, times, streams as xattrs, links).
  const out1 = tmpDir();
  const r1 = run(['restore-files', id1, '/Users', '--to', out1, '-p', '2', '--json']).json;
  assert.deepEqual(r1.warnings, []);
  assert.equal(diffDigests(before.users, treeDigest(path.join(out1, 'Users'))), '');
  const out2 = tmpDir();
  run(['restore-files', id2, '/Users', '/Program Files', '--to', out2, '-p', '2']);
  await onNtfs(true, (mnt) => {
    for (const d of ['Users', 'Program Files']) assert.equal(diffDigests(treeDigest(path.join(mnt, d)), treeDigest(path.join(out2, d))), '', d);
  });
  assert.match(sh('getfattr', ['-n', 'user.Zone.Identifier', '--only-values', path.join(out2, 'Program Files/App/app.exe')]).stdout, /ZoneId=3/);
  assert.equal(fs.statSync(path.join(out2, 'Program Files/App/settings.ini')).ino, fs.statSync(path.join(out2, 'Program Files/App/settings-link.ini')).ino, 'hard links stay linked');
});
