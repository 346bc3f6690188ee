// listDisks (lsblk + the engine's own readers where lsblk cannot tell) and describeImageFile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeImageFile, listDisks } from '../../../imaging/disk/disks';
import { DevsnapError } from '../../../imaging/core/errors';

const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** 32 MiB GPT image: p1 (1 MiB..17 MiB) ext4 labelled "data", made in place with mkfs.ext4 -E offset; p2 without a filesystem. */
function makeImage(dir: string): string {
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 32 * MiB);
  sh('sfdisk', ['-q', img], 'label: gpt\nstart=2048, size=32768, type=L, name="data part"\nstart=34816, size=8192, type=L\n');
  sh('mkfs.ext4', ['-q', '-F', '-L', 'data', '-E', `offset=${2048 * 512}`, img, '16M']);
  return img;
}

test('lsblk lists the system disk, marked, first', async () => {
  const disks = await listDisks();
  assert.ok(disks.length >= 1, 'at least one disk');
  const system = disks.filter((d) => d.isSystem);
  assert.equal(system.length, 1, `exactly one system disk: ${JSON.stringify(disks.map((d) => [d.path, d.isSystem]))}`);
  assert.equal(disks[0], system[0], 'the system disk comes first');
  assert.ok(system[0].size > 0);
  const mounted = [...system[0].mountpoints, ...system[0].partitions.flatMap((p) => p.mountpoints ?? [])];
  assert.ok(mounted.includes('/'), `the system disk holds / (${mounted.join(', ')})`);
  for (const d of disks) {
    // RAM disks and zram are listed only marked virtual (the pickers leave them out).
    if (/^\/dev\/z?ram/.test(d.path)) assert.ok(d.virtual?.kind === 'ram' || d.virtual?.kind === 'zram', `${d.path} is marked virtual`);
    assert.ok(d.size > 0);
    assert.ok(d.kind === 'disk' || d.kind === 'loop');
    for (const p of d.partitions) assert.ok(p.index >= 1 && p.start >= 0 && p.size > 0, JSON.stringify(p));
  }
});

test('a loop device over a GPT image is listed with its backing file, partitions and ext4', { skip: !isRoot && 'needs root for losetup' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-disks-'));
  let dev: string | undefined;
  try {
    const img = makeImage(dir);
    dev = sh('losetup', ['-f', '--show', img]).trim();
    const disks = await listDisks();
    const d = disks.find((x) => x.path === dev);
    assert.ok(d, `${dev} is listed (${disks.map((x) => x.path).join(', ')})`);
    assert.equal(d.kind, 'loop');
    assert.equal(d.backingFile, fs.realpathSync(img));
    assert.equal(d.isSystem, false);
    assert.equal(d.size, 32 * MiB);
    assert.equal(d.table, 'gpt');
    assert.equal(d.partitions.length, 2);
    const [p1, p2] = d.partitions;
    assert.equal(p1.index, 1);
    assert.equal(p1.start, 2048 * 512);
    assert.equal(p1.size, 16 * MiB);
    assert.equal(p1.fs, 'ext4');
    assert.equal(p1.label, 'data');
    assert.equal(p1.name, 'data part');
    assert.equal(p1.type, '0fc63daf-8483-4772-8e79-3d69d8477de4');
    assert.match(p1.uuid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(p1.fsUuid ?? '', /^[0-9a-f-]{36}$/);
    assert.ok((p1.usedBytes ?? 0) > 0 && p1.usedBytes! < 16 * MiB, `used ${p1.usedBytes}`);
    assert.equal(p2.index, 2);
    assert.equal(p2.fs, undefined);
    // probe: false reports only what lsblk says, without reading the device.
    const bare = (await listDisks({ probe: false })).find((x) => x.path === dev);
    assert.ok(bare);
    assert.equal(bare.backingFile, fs.realpathSync(img));
  } finally {
    if (dev) sh('losetup', ['-d', dev]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('describeImageFile reads the partition table and filesystems of an image file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-disks-'));
  try {
    const img = makeImage(dir);
    const d = await describeImageFile(img);
    assert.equal(d.kind, 'file');
    assert.equal(d.path, path.resolve(img));
    assert.equal(d.size, 32 * MiB);
    assert.equal(d.table, 'gpt');
    assert.equal(d.isSystem, false);
    assert.deepEqual(d.mountpoints, []);
    assert.deepEqual(
      d.partitions.map((p) => [p.index, p.start, p.size, p.fs, p.label]),
      [
        [1, 1 * MiB, 16 * MiB, 'ext4', 'data'],
        [2, 34816 * 512, 4 * MiB, undefined, undefined],
      ],
    );
    assert.equal(d.partitions[0].typeName, 'Linux filesystem');
    assert.ok(d.partitions[0].usedBytes! > 0);

    // An MBR image made with sfdisk + dd of a filesystem into the slot.
    const mbr = path.join(dir, 'mbr.img');
    fs.writeFileSync(mbr, '');
    fs.truncateSync(mbr, 16 * MiB);
    sh('sfdisk', ['-q', mbr], 'label: dos\nstart=2048, size=20480, type=83\n');
    const fsImg = path.join(dir, 'fs.img');
    fs.writeFileSync(fsImg, '');
    fs.truncateSync(fsImg, 10 * MiB);
    sh('mkfs.ext4', ['-q', '-F', '-b', '1024', '-L', 'boot', fsImg]);
    sh('dd', [`if=${fsImg}`, `of=${mbr}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
    const m = await describeImageFile(mbr);
    assert.equal(m.table, 'mbr');
    assert.deepEqual(
      m.partitions.map((p) => [p.index, p.start, p.size, p.type, p.fs, p.label]),
      [[1, 1 * MiB, 10 * MiB, '0x83', 'ext4', 'boot']],
    );

    // No partition table at all.
    const blank = path.join(dir, 'blank.img');
    fs.writeFileSync(blank, Buffer.alloc(MiB));
    assert.deepEqual((await describeImageFile(blank)).partitions, []);
    assert.equal((await describeImageFile(blank)).table, 'none');

    await assert.rejects(describeImageFile(path.join(dir, 'nope.img')), (e: unknown) => e instanceof DevsnapError && e.code === 'NOT_FOUND');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
