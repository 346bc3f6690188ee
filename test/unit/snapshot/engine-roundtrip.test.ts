// Round trips through the real CLI on real disks: images made by sfdisk/mke2fs/mkfs.vfat/mkntfs,
// restored to image files and to loop devices, then compared byte for byte and checked by fsck.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import {
  cleanup,
  ext4TreeDigest,
  fsck,
  isRoot,
  makeDisk,
  makeWorkstationTree,
  sh,
  tmpDir,
  vfatTreeDigest,
  withLoop,
  withMount,
  simulateUpgrade,
  ntfsTreeDigest,
  diffDigests,
} from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;

function cmpFiles(a: string, b: string, length?: number): void {
  const args = length ? ['-n', String(length), a, b] : [a, b];
  const r = sh('cmp', args, { allowFail: true });
  assert.equal(r.status, 0, `expected ${b} to equal ${a}: ${r.stdout}${r.stderr}`);
}

function extractPartition(disk: string, p: { start: number; size: number }, out: string): string {
  sh('dd', [`if=${disk}`, `of=${out}`, 'bs=512', `skip=${p.start / 512}`, `count=${p.size / 512}`, 'status=none']);
  return out;
}

async function workstationDisk(dir: string, table: 'gpt' | 'mbr', blockSize = 4096) {
  const tree = path.join(dir, 'tree');
  const efi = path.join(dir, 'efi');
  makeWorkstationTree(tree, { scale: 6 * MiB });
  fs.mkdirSync(path.join(efi, 'EFI', 'debian'), { recursive: true });
  fs.writeFileSync(path.join(efi, 'EFI', 'debian', 'grubx64.efi'), Buffer.alloc(300 * 1024, 7));
  const disk = path.join(dir, 'disk.img');
  const layout = await makeDisk(disk, {
    table,
    size: 96 * MiB,
    partitions: [
      { size: 16 * MiB, fs: 'vfat', label: 'EFI', fromDir: efi },
      { size: 56 * MiB, fs: 'ext4', label: 'root', blockSize, fromDir: tree },
      { fs: 'none' }, // unknown content: imaged in full
    ],
  });
  return { disk, layout, tree };
}

test('GPT disk (EFI vfat, ext4 4 KiB, unknown partition): snapshot, verify, restore to a file is byte-identical', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { disk, layout } = await workstationDisk(dir, 'gpt');
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--label', 'before upgrade', '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  const s = snap.json.snapshot;
  assert.match(snap.json.id, /^[0-9a-f]{16}$/);
  assert.equal(s.label, 'before upgrade');
  assert.deepEqual(
    s.partitions.map((p: { fs?: string }) => p.fs),
    ['vfat', 'ext4', undefined],
  );
  assert.equal(s.partitions[1].label, 'root');
  assert.ok(s.stats.bytesRead < fs.statSync(disk).size, 'free blocks are not read');
  assert.equal(s.partitions[1].start, layout[1].start);

  const v = devsnap(['verify', snap.json.id, '--repo', repo, '--json']);
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.json.ok, true);
  assert.equal(devsnap(['list', '--repo', repo, '--json']).json.snapshots[0].state, 'verified');

  const out = path.join(dir, 'restored.img');
  const r = devsnap(['restore', snap.json.id, out, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  cmpFiles(disk, out);
  const efiCopy = extractPartition(out, layout[0], path.join(dir, 'efi.img'));
  assert.ok(fsck('vfat', efiCopy).ok, fsck('vfat', efiCopy).output);
  const rootCopy = extractPartition(out, layout[1], path.join(dir, 'root.img'));
  assert.ok(fsck('ext4', rootCopy).ok, fsck('ext4', rootCopy).output);
  sh('sgdisk', ['-v', out]);
});

test('MBR disk with 1 KiB-block ext4: round trip; a partition restores on its own', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { disk, layout } = await workstationDisk(dir, 'mbr', 1024);
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  assert.equal(snap.json.snapshot.source.table, 'mbr');
  const out = path.join(dir, 'restored.img');
  assert.equal(devsnap(['restore', snap.json.id, out, '--repo', repo]).status, 0);
  cmpFiles(disk, out);

  const part = path.join(dir, 'p2.img');
  const dry = devsnap(['restore', snap.json.id, part, '--partition', '2', '--dry-run', '--repo', repo, '--json']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.equal(dry.json.dryRun, true);
  assert.equal(dry.json.bytesNeeded, layout[1].size);
  assert.equal(fs.existsSync(part), false, 'a dry run writes nothing');
  assert.equal(devsnap(['restore', snap.json.id, part, '--partition', '2', '--repo', repo]).status, 0);
  assert.equal(fs.statSync(part).size, layout[1].size);
  assert.ok(fsck('ext4', part).ok);
  cmpFiles(extractPartition(disk, layout[1], path.join(dir, 'p2-orig.img')), part);
});

test('incremental: a second snapshot after an upgrade stores only what changed', { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { disk, layout } = await workstationDisk(dir, 'gpt');
  const first = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(first.status, 0, first.stderr);
  await withLoop(disk, { offset: layout[1].start, sizeLimit: layout[1].size }, (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      simulateUpgrade(mnt, 0.05);
    }),
  );
  const second = devsnap(['snapshot', disk, '--repo', repo, '--label', 'after upgrade', '--json']);
  assert.equal(second.status, 0, second.stderr);
  const a = first.json.snapshot.stats;
  const b = second.json.snapshot.stats;
  assert.equal(second.json.snapshot.parent, first.json.id);
  assert.ok(b.chunksReused > 0);
  assert.ok(b.bytesAdded < a.bytesAdded / 2, `second snapshot added ${b.bytesAdded} bytes, first ${a.bytesAdded}`);
  const diff = devsnap(['diff', first.json.id, second.json.id, '--repo', repo, '--json']);
  assert.equal(diff.status, 0, diff.stderr);
  const root = diff.json.partitions.find((p: { index: number | null }) => p.index === 2);
  assert.ok(root && root.changedBytes > 0, 'the root partition changed');
  // the upgraded state restores with every file as it was (deleted files' old blocks are free space, not imaged)
  const out = path.join(dir, 'after.img');
  assert.equal(devsnap(['restore', second.json.id, out, '--repo', repo]).status, 0);
  const part = { offset: layout[1].start, sizeLimit: layout[1].size, readOnly: true };
  const src = await withLoop(disk, part, (dev) => ext4TreeDigest(dev));
  const dst = await withLoop(out, part, (dev) => {
    assert.ok(fsck('ext4', dev).ok);
    return ext4TreeDigest(dev);
  });
  assert.equal(dst, src, diffDigests(src, dst));
});

test('restore to a larger loop device moves the GPT backup; files, owners, modes, xattrs, links equal the source', { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { disk, layout } = await workstationDisk(dir, 'gpt');
  // Leave garbage in free blocks: write a file and delete it, so the restore cannot be a plain copy.
  await withLoop(disk, { offset: layout[1].start, sizeLimit: layout[1].size }, (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      fs.writeFileSync(path.join(mnt, 'junk'), Buffer.alloc(8 * MiB, 0x5a));
      sh('sync', []);
      fs.rmSync(path.join(mnt, 'junk'));
    }),
  );
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  const bigger = path.join(dir, 'bigger.img');
  fs.writeFileSync(bigger, '');
  fs.truncateSync(bigger, 160 * MiB);
  await withLoop(bigger, {}, (dev) => {
    const r = devsnap(['restore', snap.json.id, dev, '--repo', repo, '--yes', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.gptRelocated, true);
  });
  const verifyTable = sh('sgdisk', ['-v', bigger]).stdout;
  assert.match(verifyTable, /No problems found/);
  const src = await withLoop(disk, { offset: layout[1].start, sizeLimit: layout[1].size, readOnly: true }, (dev) => ext4TreeDigest(dev));
  const dst = await withLoop(bigger, { offset: layout[1].start, sizeLimit: layout[1].size, readOnly: true }, (dev) => {
    assert.ok(fsck('ext4', dev).ok);
    return ext4TreeDigest(dev);
  });
  assert.equal(dst, src, diffDigests(src, dst));
  const efiSrc = vfatTreeDigest(`${disk}@@${layout[0].start}`);
  const efiDst = vfatTreeDigest(`${bigger}@@${layout[0].start}`);
  assert.equal(efiDst, efiSrc);
  // raw areas are byte-identical: boot code, and the gap between the GPT and the first partition
  cmpFiles(disk, bigger, 440);
  const gap = 34 * 512;
  assert.equal(sh('cmp', ['-i', String(gap), '-n', String(layout[0].start - gap), disk, bigger], { allowFail: true }).status, 0);
});

test('NTFS partition: used clusters only, restored volume passes ntfsfix and has the same files', { skip: !isRoot && 'needs root (ntfs-3g)' }, async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 2 * MiB });
  fs.rmSync(path.join(tree, 'home'), { recursive: true, force: true });
  const disk = path.join(dir, 'win.img');
  const layout = await makeDisk(disk, { table: 'gpt', size: 80 * MiB, partitions: [{ fs: 'ntfs', label: 'Windows', fromDir: path.join(tree, 'etc') }] });
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  assert.equal(snap.json.snapshot.partitions[0].fs, 'ntfs');
  assert.ok(snap.json.snapshot.stats.bytesRead < layout[0].size / 2, 'free clusters are not read');
  const out = path.join(dir, 'out.img');
  assert.equal(devsnap(['restore', snap.json.id, out, '--repo', repo]).status, 0);
  cmpFiles(disk, out);
  const part = path.join(dir, 'p1.img');
  assert.equal(devsnap(['restore', snap.json.id, part, '--partition', '1', '--repo', repo]).status, 0);
  assert.ok(fsck('ntfs', part).ok, fsck('ntfs', part).output);
  const original = extractPartition(disk, layout[0], path.join(dir, 'p1-orig.img'));
  assert.equal(await ntfsTreeDigest(part, { fields: ['mtime'] }), await ntfsTreeDigest(original, { fields: ['mtime'] }));
});

test('packs are standard zstd: the zstd CLI decompresses them to the raw chunks', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const { disk } = await workstationDisk(dir, 'gpt');
  assert.equal(devsnap(['snapshot', disk, '--repo', repo]).status, 0);
  const packs = sh('find', [path.join(repo, 'data'), '-name', '*.pack'])
    .stdout.trim()
    .split('\n');
  assert.ok(packs.length >= 1);
  for (const p of packs) {
    sh('zstd', ['-tq', p]);
    const out = sh('bash', ['-c', `zstd -dc '${p}' | wc -c`]).stdout.trim();
    assert.ok(Number(out) > 0 && Number(out) % 512 === 0, `decompressed ${out} bytes`);
  }
  const mode = fs.statSync(packs[0]).mode & 0o777;
  assert.equal(mode, 0o600, 'repository files are readable by their owner only');
});
