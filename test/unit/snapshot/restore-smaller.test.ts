// A whole disk restored onto a smaller one: a GPT disk (EFI vfat + ext4 root + NTFS data) whose data
// fits onto a disk 60% of its size, the target full of random bytes first. Every filesystem passes its
// fsck (e2fsck -fn, ntfsfix -n, fsck.vfat -n), every file's content and metadata equal the source's,
// the table keeps its partition GUIDs, names and types and has its backup at the new end (sfdisk -V).
// A target too small even with the filesystems shrunk is refused before anything is written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, ext4TreeDigest, fsck, isRoot, makeDisk, makeWorkstationTree, ntfsTreeDigest, readLayout, sh, tmpDir, vfatTreeDigest } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

const MiB = 1 << 20;
after(cleanup);

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** A loop device over each partition of a disk image (read-only), by partition index. */
function partitionLoops(img: string): Map<number, string> {
  return new Map(readLayout(img).map((p) => [p.index, attachLoop(img, { offset: p.start, sizeLimit: p.size, readOnly: true })]));
}

test('a GPT disk (EFI + ext4 + NTFS) restores onto a disk 60% of its size: fsck clean, every file equal', { skip: !isRoot && 'needs root (loop devices, ntfs-3g)' }, async () => {
  const dir = tmpDir('devsnap-smaller-');
  const rootTree = path.join(dir, 'root');
  makeWorkstationTree(rootTree, { scale: 24 * MiB, seed: 5 });
  const dataTree = path.join(dir, 'data');
  fs.mkdirSync(path.join(dataTree, 'Users', 'dev', 'Documents'), { recursive: true });
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dataTree, 'Users', 'dev', 'Documents', `report-${i}.txt`), `report ${i}\n`.repeat(2000 + i * 100));
  fs.writeFileSync(path.join(dataTree, 'Users', 'dev', 'photo.bin'), crypto.randomBytes(6 * MiB));
  const efiTree = path.join(dir, 'efi');
  fs.mkdirSync(path.join(efiTree, 'EFI', 'BOOT'), { recursive: true });
  fs.writeFileSync(path.join(efiTree, 'EFI', 'BOOT', 'BOOTX64.EFI'), crypto.randomBytes(300 << 10));
  const src = path.join(dir, 'disk.img');
  await makeDisk(src, {
    table: 'gpt',
    size: 400 * MiB,
    partitions: [
      { fs: 'vfat', size: 32 * MiB, label: 'EFI', name: 'EFI system partition', fromDir: efiTree },
      { fs: 'ext4', size: 200 * MiB, label: 'root', name: 'root', fromDir: rootTree },
      { fs: 'ntfs', label: 'DATA', name: 'Basic data partition', fromDir: dataTree },
    ],
  });
  const repo = path.join(dir, 'repo');
  let r = devsnap(['snapshot', src, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);

  const target = path.join(dir, 'small.img');
  sh('sh', ['-c', `head -c ${240 * MiB} /dev/urandom > '${target}'`]); // old contents everywhere: nothing may rely on zeros
  const dev = attachLoop(target);

  // A dry run says where each partition goes, and writes nothing.
  const before = sha(target);
  r = devsnap(['restore', 'latest', dev, '--repo', repo, '--dry-run', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const resized = r.json.resized as { partition: number; how: string; size: number; fromSize: number }[];
  assert.deepEqual(
    resized.map((p) => `${p.partition}:${p.how}`),
    ['1:keep', '2:shrink', '3:shrink'],
  );
  assert.ok(resized[1].size < resized[1].fromSize && resized[2].size < resized[2].fromSize, JSON.stringify(resized));
  assert.equal(sha(target), before, 'the dry run wrote to the target');

  r = devsnap(['restore', 'latest', dev, '--repo', repo, '--yes', '--json']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  detachLoop(dev);

  // The table: verified by sfdisk, every partition inside the smaller disk, GUIDs, names and types kept.
  const v = sh('sfdisk', ['-V', target], { allowFail: true });
  assert.equal(v.status, 0, `sfdisk -V: ${v.stdout}${v.stderr}`);
  const a = JSON.parse(sh('sfdisk', ['-J', src]).stdout).partitiontable;
  const b = JSON.parse(sh('sfdisk', ['-J', target]).stdout).partitiontable;
  assert.equal(b.id, a.id, 'the disk GUID is kept');
  for (let i = 0; i < 3; i++) {
    for (const k of ['uuid', 'name', 'type']) assert.equal(b.partitions[i][k], a.partitions[i][k], `partition ${i + 1} ${k}`);
    assert.ok((b.partitions[i].start + b.partitions[i].size) * 512 <= 240 * MiB - 33 * 512, `partition ${i + 1} ends inside the disk`);
  }
  assert.equal(b.partitions[0].start, a.partitions[0].start, 'the EFI partition stays where the firmware finds it');

  // Every filesystem: fsck clean, and the same files (content, modes, owners, times, xattrs, links).
  const s = partitionLoops(src);
  const t = partitionLoops(target);
  const efiCheck = fsck('vfat', t.get(1)!);
  assert.ok(efiCheck.ok, efiCheck.output);
  const extCheck = fsck('ext4', t.get(2)!);
  assert.ok(extCheck.ok, extCheck.output);
  const ntfsCheck = fsck('ntfs', t.get(3)!);
  assert.ok(ntfsCheck.ok, ntfsCheck.output);
  const want = { efi: vfatTreeDigest(s.get(1)!), root: await ext4TreeDigest(s.get(2)!), data: await ntfsTreeDigest(s.get(3)!) };
  assert.match(want.efi, /EFI\/BOOT\/BOOTX64\.EFI/);
  assert.match(want.root, /etc\//);
  assert.match(want.data, /Users\/dev\/photo\.bin\tf\t.*\t6291456\t/);
  assert.equal(vfatTreeDigest(t.get(1)!), want.efi, 'EFI files');
  assert.equal(await ext4TreeDigest(t.get(2)!), want.root, 'root files');
  assert.equal(await ntfsTreeDigest(t.get(3)!), want.data, 'NTFS files');
  for (const d of [...s.values(), ...t.values()]) detachLoop(d);

  // Too small even shrunk: refused with what it needs, nothing written.
  const tiny = path.join(dir, 'tiny.img');
  sh('sh', ['-c', `head -c ${64 * MiB} /dev/urandom > '${tiny}'`]);
  const tinyDev = attachLoop(tiny);
  const tinyBefore = sha(tiny);
  r = devsnap(['restore', 'latest', tinyDev, '--repo', repo, '--yes', '--json']);
  assert.equal(r.status, 7, r.stdout + r.stderr);
  assert.match(r.json.error.message, /too small for this snapshot even with its filesystems shrunk: it needs at least/);
  detachLoop(tinyDev);
  assert.equal(sha(tiny), tinyBefore, 'a refused restore wrote to the target');
});

test('when shrinking ext is not enough, the EFI partition (FAT) is made anew, smaller, with the same files, ID and label', { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  const dir = tmpDir('devsnap-smaller-fat-');
  const efiTree = path.join(dir, 'efi');
  fs.mkdirSync(path.join(efiTree, 'EFI', 'BOOT'), { recursive: true });
  fs.mkdirSync(path.join(efiTree, 'EFI', 'debian'), { recursive: true });
  fs.writeFileSync(path.join(efiTree, 'EFI', 'BOOT', 'BOOTX64.EFI'), crypto.randomBytes(900 << 10));
  fs.writeFileSync(path.join(efiTree, 'EFI', 'debian', 'grubx64.efi'), crypto.randomBytes(2 << 20));
  fs.writeFileSync(path.join(efiTree, 'EFI', 'debian', 'grub.cfg'), 'search.fs_uuid 1234 root\n');
  const src = path.join(dir, 'disk.img');
  await makeDisk(src, {
    table: 'gpt',
    size: 400 * MiB,
    partitions: [
      { fs: 'vfat', size: 200 * MiB, label: 'ESP', name: 'EFI system partition', fromDir: efiTree, fatBits: 32 },
      { fs: 'ext4', label: 'root', name: 'root' },
    ],
  });
  const repo = path.join(dir, 'repo');
  let r = devsnap(['snapshot', src, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const target = path.join(dir, 'small.img');
  sh('sh', ['-c', `head -c ${250 * MiB} /dev/urandom > '${target}'`]);
  const dev = attachLoop(target);
  r = devsnap(['restore', 'latest', dev, '--repo', repo, '--yes', '--json']);
  detachLoop(dev);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(
    (r.json.resized as { how: string }[]).map((p) => p.how),
    ['shrink', 'shrink'],
  );
  const v = sh('sfdisk', ['-V', target], { allowFail: true });
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const s = partitionLoops(src);
  const t = partitionLoops(target);
  const blk = (d: string) =>
    sh('blkid', ['-p', '-o', 'export', d])
      .stdout.split('\n')
      .filter((l) => /^(UUID|LABEL|TYPE)=/.test(l))
      .sort()
      .join(' ');
  assert.equal(blk(t.get(1)!), blk(s.get(1)!), 'the EFI partition keeps its volume ID and label');
  const check = fsck('vfat', t.get(1)!);
  assert.ok(check.ok, check.output);
  const want = vfatTreeDigest(s.get(1)!);
  assert.match(want, /EFI\/debian\/grubx64\.efi/);
  assert.equal(vfatTreeDigest(t.get(1)!), want, 'EFI files');
  assert.ok(fsck('ext4', t.get(2)!).ok);
  for (const d of [...s.values(), ...t.values()]) detachLoop(d);

  // The guided restore offers the smaller disk and says it cannot be compared block by block.
  const again = path.join(dir, 'again.img');
  sh('sh', ['-c', `head -c ${250 * MiB} /dev/urandom > '${again}'`]);
  const dev2 = attachLoop(again);
  r = devsnap(['recover', '--repo', repo, '--disk', dev2, '--confirm', dev2, '--include-virtual', '--json']);
  detachLoop(dev2);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.json.verified, false);
  assert.match(r.stderr, /smaller than the disk it was taken of .*shrunk to fit/);
  assert.equal(sh('sfdisk', ['-V', again], { allowFail: true }).status, 0);
});
