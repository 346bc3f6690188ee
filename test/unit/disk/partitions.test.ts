// readPartitionTable / relocateGptBackup against tables written by sfdisk and checked by sgdisk.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { layoutProblems, readPartitionTable, relocateGptBackup } from '../../../imaging/disk/partitions';
import { DevsnapError } from '../../../imaging/core/errors';
import { cleanup, fileDevice, fileReader, makeDisk, makeFsImage, postMbrGap, readLayout, sh, tmpDir } from '../../helpers/disks';

const work = tmpDir('devsnap-parts-');
after(cleanup);
const MiB = 1 << 20;

async function table(img: string, size?: number) {
  const r = fileReader(img, 0, size);
  try {
    return await readPartitionTable(r);
  } finally {
    r.close();
  }
}

async function gptDisk(name: string): Promise<string> {
  const img = path.join(work, name);
  await makeDisk(img, {
    table: 'gpt',
    size: 64 * MiB,
    partitions: [
      { size: MiB, type: 'bios', fs: 'none', name: 'BIOS boot' },
      { size: 8 * MiB, type: 'efi', fs: 'vfat', label: 'EFI', name: 'EFI system partition' },
      { size: 4 * MiB, type: 'swap', fs: 'none', name: 'swap' },
      { size: 24 * MiB, type: 'linux', fs: 'ext4', label: 'root', name: 'root ✓' },
      { type: 'ntfs', fs: 'none', name: 'data' },
    ],
  });
  return img;
}

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('GPT written by sfdisk: layout, types, names, GUIDs', async () => {
  const img = await gptDisk('gpt.img');
  const t = await table(img);
  const expected = readLayout(img);
  assert.equal(t.type, 'gpt');
  assert.equal(t.diskId, JSON.parse(sh('sfdisk', ['-J', img]).stdout).partitiontable.id.toLowerCase());
  assert.deepEqual(
    t.partitions.map(({ index, start, size, type, uuid, name }) => ({ index, start, size, type, uuid, name })),
    expected.map(({ index, start, size, type, uuid, name }) => ({ index, start, size, type, uuid, name })),
  );
  assert.deepEqual(
    t.partitions.map((p) => p.typeName),
    ['BIOS boot', 'EFI System', 'Linux swap', 'Linux filesystem', 'Microsoft basic data'],
  );
  assert.equal(t.partitions[3].name, 'root ✓');
  const sectors = fs.statSync(img).size / 512;
  assert.deepEqual(t.gpt, { headerLba: 1, backupLba: sectors - 1, entriesLba: 2, entryCount: 128, entrySize: 128, firstUsableLba: 2048, lastUsableLba: sectors - 34 }); // sfdisk starts the usable area at 1 MiB
  // makeDisk wrote bootloader-like bytes into the gap after the table, and real filesystems into the slots.
  const gap = postMbrGap('gpt');
  assert.ok((await fileReader(img).read(gap.offset, gap.length)).some((b) => b !== 0));
  assert.match(sh('blkid', ['-p', '-O', String(t.partitions[3].start), '-o', 'value', '-s', 'LABEL', img]).stdout, /root/);
});

test('GPT with a damaged primary header falls back to the backup', async () => {
  const img = await gptDisk('gpt-bad.img');
  const good = await table(img);
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 512 + 60); // inside the disk GUID: header CRC no longer matches
  fs.closeSync(fd);
  const t = await table(img);
  assert.deepEqual(t.partitions, good.partitions);
  assert.equal(t.gpt?.headerLba, fs.statSync(img).size / 512 - 1);
  // and with the backup gone too, a clear error
  const fd2 = fs.openSync(img, 'r+');
  fs.writeSync(fd2, Buffer.alloc(512), 0, 512, fs.statSync(img).size - 512);
  fs.closeSync(fd2);
  await assert.rejects(table(img), (e: unknown) => e instanceof DevsnapError && e.code === 'BAD_SOURCE' && /primary and backup/.test(e.message));
});

test('GPT with damaged partition entries (entries CRC) falls back to the backup entries', async () => {
  const img = await gptDisk('gpt-entries.img');
  const good = await table(img);
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, Buffer.from('xx'), 0, 2, 2 * 512 + 128 + 56); // partition 2's name
  fs.closeSync(fd);
  assert.deepEqual((await table(img)).partitions, good.partitions);
});

test('partition past the end of the disk: listed as the table says, and layoutProblems names it (snapshot images it in full)', async () => {
  const img = await gptDisk('gpt-short.img');
  const t = await table(img, 60 * MiB);
  assert.deepEqual(t.partitions, (await table(img)).partitions);
  const problems = layoutProblems(t.partitions, 60 * MiB);
  assert.ok(problems.size > 0);
  for (const [i, why] of problems) {
    const p = t.partitions.find((x) => x.index === i)!;
    assert.ok(p.start + p.size > 60 * MiB);
    assert.match(why, /past the end of the disk \(62914560 bytes\)/);
  }
  assert.equal(layoutProblems(t.partitions, fs.statSync(img).size).size, 0);
});

test('MBR written by sfdisk: primaries, types, disk id; extended reported whole, logicals skipped', async () => {
  const img = path.join(work, 'mbr.img');
  const parts = await makeDisk(img, {
    table: 'mbr',
    size: 48 * MiB,
    partitions: [
      { size: 8 * MiB, type: '0x0c', fs: 'vfat', label: 'BOOT' },
      { size: 16 * MiB, fs: 'ext4' },
      { size: 4 * MiB, type: 'swap', fs: 'none' },
    ],
  });
  const t = await table(img);
  assert.equal(t.type, 'mbr');
  assert.equal(t.diskId, sh('sfdisk', ['--disk-id', img]).stdout.trim());
  assert.deepEqual(
    t.partitions.map(({ index, start, size, type }) => ({ index, start, size, type })),
    parts.map(({ index, start, size, type }) => ({ index, start, size, type })),
  );
  assert.deepEqual(
    t.partitions.map((p) => p.typeName),
    ['W95 FAT32 (LBA)', 'Linux', 'Linux swap'],
  );
  assert.ok(
    (await fileReader(img).read(512, 512)).some((b) => b !== 0),
    'post-MBR gap has bootloader bytes',
  );

  const ext = path.join(work, 'ext.img');
  fs.writeFileSync(ext, '');
  fs.truncateSync(ext, 32 * MiB);
  sh('sfdisk', ['-q', ext], { input: 'label: dos\nsize=4MiB, type=83\ntype=5\nsize=8MiB, type=83\nsize=8MiB, type=82\n' });
  const e = await table(ext);
  assert.deepEqual(
    e.partitions.map((p) => [p.index, p.type, p.typeName]),
    [
      [1, '0x83', 'Linux'],
      [2, '0x05', 'Extended'],
    ],
  );
  assert.equal(e.partitions[1].size, readLayout(ext).find((p) => p.index === 2)!.size);
});

test('bare filesystems and blank disks have no partition table', async () => {
  const img = path.join(work, 'bare.img');
  for (const fsKind of ['vfat', 'ntfs', 'ext4'] as const) {
    await makeFsImage(img, { fs: fsKind, size: 16 * MiB });
    assert.equal((await table(img)).type, 'none', fsKind);
  }
  await makeFsImage(img, { fs: 'vfat', size: 300 * MiB, fatBits: 32 });
  assert.equal((await table(img)).type, 'none', 'FAT32');
  fs.writeFileSync(img, Buffer.alloc(MiB));
  assert.deepEqual(await table(img), { type: 'none', sectorSize: 512, partitions: [] });
});

test('relocateGptBackup after growing the disk: sgdisk -v finds no problems', async () => {
  const img = await gptDisk('grow.img');
  const before = await table(img);
  fs.truncateSync(img, 100 * MiB + 4096);
  assert.doesNotMatch(sh('sgdisk', ['-v', img], { allowFail: true }).stdout, /No problems found/); // the test can fail
  const dev = fileDevice(img);
  try {
    await relocateGptBackup(dev, fs.statSync(img).size);
  } finally {
    dev.close();
  }
  const v = sh('sgdisk', ['-v', img], { allowFail: true }).stdout;
  assert.match(v, /No problems found/, v);
  const sectors = fs.statSync(img).size / 512;
  const after1 = await table(img);
  assert.deepEqual(after1.partitions, before.partitions);
  assert.equal(after1.gpt?.backupLba, sectors - 1);
  assert.equal(after1.gpt?.lastUsableLba, sectors - 34);
  assert.equal(fs.readFileSync(img).readUInt32LE(446 + 12), sectors - 1, 'protective MBR covers the disk');
  // the backup itself is valid: damage the primary and read again
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, Buffer.alloc(512), 0, 512, 512);
  fs.closeSync(fd);
  assert.deepEqual((await table(img)).partitions, before.partitions);
});

test('relocateGptBackup is a no-op when the backup is already at the end', async () => {
  const img = await gptDisk('same.img');
  const h = sha(img);
  const dev = fileDevice(img);
  try {
    await relocateGptBackup(dev, fs.statSync(img).size);
  } finally {
    dev.close();
  }
  assert.equal(sha(img), h);
});
