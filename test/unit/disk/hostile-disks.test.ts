// Damaged and hostile disks, through the real CLI: filesystems made by mke2fs/mkfs.vfat/mkntfs, then
// damaged the way a bad sector or a crafted image does (a zeroed bitmap, implausible geometry, a torn
// MFT record, a lying boot sector, overlapping partitions). Whatever devsnap cannot trust it must image
// in full and say so; a restore must give back every byte the source's files live in.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { crc32cRaw } from '../../../imaging/filesystems/checksums';
import { cleanup, diffDigests, ext4TreeDigest, isRoot, makeDisk, makeFsImage, seededBytes, sh, tmpDir, treeDigest, vfatTreeDigest, withLoop, writeAt } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const KiB = 1024;
const MiB = 1 << 20;
const work = tmpDir('devsnap-hostile-');
const needsRoot = { skip: !isRoot && 'needs root (mounts the restored filesystem through a loop device)' };

/** `count` files of seeded bytes (1–40 KiB), in folders of 50: mke2fs -d spreads them over the groups. */
function manyFiles(dir: string, count: number, seed: number): string {
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 50)}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}.bin`), seededBytes(seed * 100_000 + i, KiB + ((i * 7919) % (39 * KiB))));
  }
  return dir;
}
const tree = manyFiles(path.join(work, 'tree'), 1000, 1); // about 20 MB, over three 8 MiB groups

const patch = writeAt;

function readAt(file: string, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return b;
}

function cmp(a: string, b: string): void {
  const r = sh('cmp', [a, b], { allowFail: true });
  assert.equal(r.status, 0, `${b} differs from ${a}: ${r.stdout}${r.stderr}`);
}

/** Snapshot `source` into a fresh repository through the CLI and restore it to a new image file. */
function snapshotAndRestore(
  source: string,
  name: string,
): { manifest: { areas: { kind: string; partition?: number; mode: string }[] }; warnings: string[]; out: string; repo: string; id: string; text: string } {
  const repo = path.join(work, `${name}-repo`);
  const snap = devsnap(['snapshot', source, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  const text = devsnap(['show', snap.json.id, '--repo', repo]);
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'snapshots', `${snap.json.id}.json`), 'utf8'));
  const out = path.join(work, `${name}-restored.img`);
  const r = devsnap(['restore', snap.json.id, out, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return { manifest, warnings: snap.json.warnings, out, repo, id: snap.json.id, text: text.stdout };
}

interface Group {
  g: number;
  bitmap: number;
  free: number;
  uninit: boolean;
}

function groupsOf(img: string): Group[] {
  const out = sh('dumpe2fs', [img]).stdout;
  return out
    .split(/^Group (?=\d+:)/m)
    .slice(1)
    .map((sec) => ({
      g: Number(/^(\d+):/.exec(sec)![1]),
      bitmap: Number(/Block bitmap at (\d+)/.exec(sec)![1]),
      free: Number(/(\d+) free blocks,/.exec(sec)![1]),
      uninit: /BLOCK_UNINIT/.test(sec.split('\n')[0]),
    }));
}

async function ext4From(name: string, mkfsArgs: string[]): Promise<string> {
  const img = path.join(work, name);
  await makeFsImage(img, { fs: 'ext4', size: 64 * MiB, blockSize: 1024, fromDir: tree, mkfsArgs });
  return img;
}

// Issue 10 item 3: one group's block bitmap zeroed (a bad sector) made 8 MiB of live data "free".
for (const [kind, mkfsArgs, reason] of [
  ['metadata_csum', [], /block bitmap fails its checksum/],
  ['no checksums', ['-O', '^metadata_csum,^uninit_bg'], /disagrees with its descriptor's free block count/],
] as const) {
  test(`ext4 (${kind}) with one group's block bitmap zeroed: that group is imaged in full, every file restores`, needsRoot, async () => {
    const img = await ext4From(`zeroed-${kind.replace(/ /g, '-')}.img`, [...mkfsArgs]);
    // The fullest group past group 0: its bitmap now says all of its blocks are free.
    const victim = groupsOf(img)
      .filter((x) => x.g > 0 && !x.uninit)
      .sort((a, b) => a.free - b.free)[0];
    assert.ok(victim.free < 4096, `group ${victim.g} holds data (${victim.free} free blocks of 8192)`);
    patch(img, victim.bitmap * KiB, Buffer.alloc(KiB));

    const { warnings, out, text } = snapshotAndRestore(img, `zeroed-${kind.replace(/ /g, '-')}`);
    const w = warnings.find((x) => x.includes(`group ${victim.g}`));
    assert.ok(w, `a warning names group ${victim.g}: ${JSON.stringify(warnings)}`);
    assert.match(w, reason);
    assert.match(w, /imaged in full/);
    assert.match(text, new RegExp(`group ${victim.g}`), '`show` prints the warning');
    assert.equal(diffDigests(treeDigest(tree), await ext4TreeDigest(out)), '', 'every file reads back identical');
  });
}

// A mounted filesystem (snapshot without --freeze) has allocations in its journal whose home block
// bitmaps are not written back yet: trusting the home bitmap drops the newest files.
for (const [kind, openArgs] of [
  ['journal_64bit', ''],
  ['journal_checksum_v3', ' -c'],
] as const) {
  test(`ext4 needing journal recovery whose home block bitmap is older than the journal's (${kind}): the group is imaged in full, the last file restores after replay`, async () => {
    const img = await ext4From(`journal-${kind}.img`, []);
    const pre = readAt(img, 0, 64 * MiB);
    const late = path.join(work, `late-${kind}.bin`);
    fs.writeFileSync(late, seededBytes(77, 3 * MiB));
    sh('debugfs', ['-w', '-R', `write ${late} late.bin`, img]);
    // The blocks the write changed (a block bitmap and the descriptor block) go into a journal transaction;
    // their home copies go back to what they were, as when the kernel has committed but not written back.
    const changed = [...groupsOf(img).map((x) => x.bitmap), 2].filter((b) => !readAt(img, b * KiB, KiB).equals(pre.subarray(b * KiB, (b + 1) * KiB)));
    assert.ok(changed.length >= 2, `the write changed a block bitmap and the descriptors (${changed})`);
    const blocks = path.join(work, `journal-${kind}.blocks`);
    fs.writeFileSync(blocks, Buffer.concat(changed.map((b) => readAt(img, b * KiB, KiB))));
    sh('debugfs', ['-w', '-f', '-', img], { input: `jo${openArgs}\njw -b ${changed.join(',')} ${blocks}\njc\n` });
    for (const b of changed) patch(img, b * KiB, pre.subarray(b * KiB, (b + 1) * KiB));
    assert.match(sh('dumpe2fs', ['-h', img]).stdout, /needs_recovery/);

    const { warnings, out } = snapshotAndRestore(img, `journal-${kind}`);
    assert.ok(
      warnings.some((w) => /groups? [\d, ]+: (its|each) block bitmap has a newer copy in the journal/.test(w)),
      JSON.stringify(warnings),
    );
    const r = sh('e2fsck', ['-fy', out], { allowFail: true }); // replays the journal, as the kernel would at mount
    assert.ok(r.status <= 1, `e2fsck (exit ${r.status}): ${r.stdout}`);
    const dumped = path.join(work, `late-${kind}.out`);
    sh('debugfs', ['-R', `dump late.bin ${dumped}`, out]);
    cmp(late, dumped);
  });
}

/** The primary superblock's checksum recomputed after an edit (metadata_csum), as a deliberate forger would. */
function fixSuperblockChecksum(img: string): void {
  const sb = readAt(img, 1024, 1024);
  const c = Buffer.alloc(4);
  c.writeUInt32LE(crc32cRaw(0xffffffff, sb.subarray(0, 0x3fc)));
  patch(img, 1024 + 0x3fc, c);
}

/** Group g's descriptor checksum recomputed (metadata_csum, 64-byte descriptors, 1 KiB blocks: the table at block 2). */
function fixDescriptorChecksum(img: string, g: number): void {
  const uuid = readAt(img, 1024 + 0x68, 16);
  const off = 2 * KiB + g * 64;
  const d = readAt(img, off, 64);
  const le = Buffer.alloc(4);
  le.writeUInt32LE(g);
  let c = crc32cRaw(crc32cRaw(0xffffffff, uuid), le);
  c = crc32cRaw(c, d.subarray(0, 0x1e));
  c = crc32cRaw(c, Buffer.alloc(2));
  c = crc32cRaw(c, d.subarray(0x20));
  const v = Buffer.alloc(2);
  v.writeUInt16LE(c & 0xffff);
  patch(img, off + 0x1e, v);
}

// Issue 10 item 3: implausible geometry that `e2fsck -b` (a backup superblock) still recovers.
const geometry: [string, (img: string) => void, RegExp][] = [
  [
    'descriptor size 1024 (superblock checksum fixed up)',
    (img) => {
      const v = Buffer.alloc(2);
      v.writeUInt16LE(1024);
      patch(img, 1024 + 0xfe, v);
      fixSuperblockChecksum(img);
    },
    /group descriptor size of 1024 bytes/,
  ],
  [
    'a block bitmap pointer outside the filesystem (descriptor checksum fixed up)',
    (img) => {
      const blocks = readAt(img, 1024 + 4, 4).readUInt32LE(0);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(blocks + 100);
      patch(img, 2 * KiB + 3 * 64, v);
      fixDescriptorChecksum(img, 3);
    },
    /group 3's block bitmap is at block \d+, outside the filesystem/,
  ],
  ['s_log_groups_per_flex corrupted (superblock checksum not fixed)', (img) => patch(img, 1024 + 0x174, Buffer.from([0xff])), /superblock fails its checksum/],
];
for (const [what, damage, reason] of geometry) {
  test(`ext4 with ${what}: the whole partition is imaged in full and e2fsck -b recovers the restored copy`, needsRoot, async () => {
    const slug = what.split(' ').slice(0, 3).join('-');
    const img = await ext4From(`geometry-${slug}.img`, ['-O', '64bit']);
    damage(img);
    assert.notEqual(sh('e2fsck', ['-fn', img], { allowFail: true }).status, 0, 'the damage is real: e2fsck finds it');

    const { manifest, warnings, out } = snapshotAndRestore(img, `geometry-${slug}`);
    assert.ok(
      warnings.some((w) => reason.test(w) && /whole partition is imaged in full/.test(w)),
      JSON.stringify(warnings),
    );
    if (!/superblock fails/.test(reason.source))
      assert.ok(
        warnings.some((w) => /e\.g\. -b 8193 -B 1024,/.test(w)),
        `the hint names the 1 KiB-block backup superblock: ${JSON.stringify(warnings)}`,
      );
    assert.deepEqual(
      manifest.areas.map((a) => a.mode),
      ['full'],
    );
    cmp(img, out); // every byte, the damaged metadata and the backups e2fsck needs included

    const r = sh('e2fsck', ['-fy', '-b', '8193', '-B', '1024', out], { allowFail: true });
    assert.ok(r.status <= 1, `e2fsck -b 8193 recovers the restored copy (exit ${r.status}): ${r.stdout}`);
    assert.equal(diffDigests(treeDigest(tree), await ext4TreeDigest(out)), '');
  });
}

test('healthy ext4 (metadata_csum) and ext4 with the older crc16 descriptor checksums: no warning, used blocks only', async () => {
  for (const args of [[], ['-O', '^metadata_csum,uninit_bg']]) {
    const img = await ext4From(`healthy${args.length}.img`, args);
    const repo = path.join(work, `healthy${args.length}-repo`);
    const snap = devsnap(['snapshot', img, '--repo', repo, '--json']);
    assert.equal(snap.status, 0, snap.stderr);
    assert.deepEqual(snap.json.warnings, []);
    const m = JSON.parse(fs.readFileSync(path.join(repo, 'snapshots', `${snap.json.id}.json`), 'utf8'));
    assert.deepEqual(
      m.areas.map((a: { mode: string }) => a.mode),
      ['used-blocks'],
    );
  }
});

/** An MBR disk with one 16 MiB NTFS partition; returns the disk and the partition's start. */
async function ntfsDisk(name: string): Promise<{ disk: string; start: number }> {
  const disk = path.join(work, name);
  const [p] = await makeDisk(disk, { table: 'mbr', size: 20 * MiB, partitions: [{ fs: 'ntfs', size: 16 * MiB, label: 'stick' }] });
  return { disk, start: p.start };
}

// Issue 10 item 11: MFT record size byte 0xE0 (2^32 bytes) aborted Node with a C++ assertion.
test('NTFS boot sector with MFT record size byte 0xE0: imaged in full with a warning; `devsnap disks` lists the disk with a note', async () => {
  const { disk, start } = await ntfsDisk('ntfs-e0.img');
  patch(disk, start + 0x40, Buffer.from([0xe0]));
  const { manifest, warnings, out } = snapshotAndRestore(disk, 'ntfs-e0');
  assert.ok(
    warnings.some((w) => /^Partition 1: ntfs: implausible boot sector: MFT record size byte 0xe0/.test(w)),
    JSON.stringify(warnings),
  );
  assert.deepEqual(
    manifest.areas.map((a) => a.mode),
    ['raw', 'full', 'raw'],
  );
  cmp(disk, out);
  if (!isRoot) return;
  await withLoop(disk, { readOnly: true }, (dev) => {
    const r = devsnap(['disks', '--json']);
    assert.equal(r.status, 0, `devsnap disks exits 0 (${r.status}): ${r.stderr}`);
    const listed = r.json.disks.find((d: { path: string }) => d.path === dev);
    assert.ok(listed, `${dev} is listed`);
    assert.ok(
      (listed.notes ?? []).some((n: string) => /partition 1: ntfs: implausible boot sector: MFT record size byte 0xe0/.test(n)),
      JSON.stringify(listed),
    );
    assert.match(devsnap(['disks']).stdout, /MFT record size byte 0xe0/);
  });
});

test('NTFS with a torn $Bitmap record (update sequence mismatch): imaged in full with a warning', async () => {
  const { disk, start } = await ntfsDisk('ntfs-torn.img');
  const bs = readAt(disk, start, 512);
  const cluster = bs.readUInt16LE(0x0b) * bs[0x0d];
  const record6 = start + Number(bs.readBigUInt64LE(0x30)) * cluster + 6 * 1024;
  assert.equal(readAt(disk, record6, 4).toString('latin1'), 'FILE');
  const tail = readAt(disk, record6 + 1022, 2);
  patch(disk, record6 + 1022, Buffer.from([tail[0] ^ 0xff, tail[1]])); // the second sector was not written completely
  const { manifest, warnings, out } = snapshotAndRestore(disk, 'ntfs-torn');
  assert.ok(
    warnings.some((w) => /MFT record 6 is torn/.test(w) && /imaged in full/.test(w)),
    JSON.stringify(warnings),
  );
  assert.equal(manifest.areas[1].mode, 'full');
  cmp(disk, out);
});

/** A FAT16 image with 2 KiB clusters, filled with files. */
async function fat16(name: string): Promise<string> {
  const img = path.join(work, name);
  const src = manyFiles(path.join(work, `${name}-src`), 200, 2); // about 4 MB
  await makeFsImage(img, { fs: 'vfat', size: 16 * MiB, fatBits: 16, blockSize: 2048, fromDir: src });
  return img;
}

function bpb(img: string): { reserved: number; fatSectors: number } {
  const bs = readAt(img, 0, 512);
  return { reserved: bs.readUInt16LE(0x0e), fatSectors: bs.readUInt16LE(0x16) };
}

test('FAT16 whose first FAT lost a sector: clusters the second copy calls used are imaged, every file restores', async () => {
  const img = await fat16('fat-zeroed.img');
  const src = vfatTreeDigest(img);
  const { reserved } = bpb(img);
  patch(img, (reserved + 1) * 512, Buffer.alloc(512)); // FAT entries 256–511 of the first copy
  assert.notEqual(sh('fsck.vfat', ['-n', img], { allowFail: true }).status, 0, 'the damage is real: fsck.vfat finds it');
  const { warnings, out } = snapshotAndRestore(img, 'fat-zeroed');
  assert.ok(
    warnings.some((w) => /copies of the FAT disagree on 256 cluster/.test(w)),
    JSON.stringify(warnings),
  );
  // The restored image has the damaged first FAT too: repaired from the second copy, every file is there.
  const { fatSectors } = bpb(out);
  patch(out, reserved * 512, readAt(out, (reserved + fatSectors) * 512, fatSectors * 512));
  assert.equal(diffDigests(src, vfatTreeDigest(out)), '');
});

test('FAT16 whose boot sector claims a FAT too small for its clusters: imaged in full with a warning', async () => {
  const img = await fat16('fat-geometry.img');
  const { fatSectors } = bpb(img);
  const v = Buffer.alloc(2);
  v.writeUInt16LE(Math.floor(fatSectors / 4));
  patch(img, 0x16, v);
  const { manifest, warnings, out } = snapshotAndRestore(img, 'fat-geometry');
  assert.ok(
    warnings.some((w) => /vfat: implausible boot sector: a FAT of \d+ bytes, too small/.test(w)),
    JSON.stringify(warnings),
  );
  assert.deepEqual(
    manifest.areas.map((a) => a.mode),
    ['full'],
  );
  cmp(img, out);
});

// Issue 10 item 4: p2 starting inside p1 was imaged through p1's free-block map.
test('overlapping partitions: both imaged in full, the disk restores byte for byte, p2 alone is refused rather than shifted', async () => {
  const disk = path.join(work, 'overlap.img');
  fs.closeSync(fs.openSync(disk, 'w'));
  fs.truncateSync(disk, 64 * MiB);
  const p1 = { start: MiB, size: 40 * MiB };
  const p2 = { start: 24 * MiB, size: 32 * MiB }; // starts inside p1
  // MBR by hand: sfdisk refuses overlapping partitions.
  const mbr = Buffer.alloc(512);
  mbr.writeUInt32LE(0x0dd1ab1e, 440);
  [p1, p2].forEach((p, i) => {
    const e = 446 + 16 * i;
    mbr[e + 4] = 0x83;
    mbr.writeUInt32LE(p.start / 512, e + 8);
    mbr.writeUInt32LE(p.size / 512, e + 12);
  });
  mbr.writeUInt16LE(0xaa55, 510);
  // p1: a nearly empty ext4 (its bitmap calls p2's bytes free); p2: an ext4 full of files, written over p1's tail.
  const small = path.join(work, 'overlap-small');
  fs.mkdirSync(small);
  fs.writeFileSync(path.join(small, 'hello.txt'), 'p1\n');
  const img1 = path.join(work, 'overlap-p1.img');
  const img2 = path.join(work, 'overlap-p2.img');
  await makeFsImage(img1, { fs: 'ext4', size: p1.size, fromDir: small });
  await makeFsImage(img2, { fs: 'ext4', size: p2.size, fromDir: manyFiles(path.join(work, 'overlap-tree'), 600, 3) });
  sh('dd', [`if=${img1}`, `of=${disk}`, 'bs=1M', `seek=${p1.start / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  sh('dd', [`if=${img2}`, `of=${disk}`, 'bs=1M', `seek=${p2.start / MiB}`, 'conv=notrunc', 'status=none']); // every byte, zeros too
  patch(disk, 0, mbr);

  const { manifest, warnings, out, repo, id } = snapshotAndRestore(disk, 'overlap');
  assert.ok(
    warnings.some((w) => /^Partition 1 overlaps partition 2 .*imaged in full/.test(w)),
    JSON.stringify(warnings),
  );
  assert.ok(
    warnings.some((w) => /^Partition 2 overlaps partition 1 .*imaged in full/.test(w)),
    JSON.stringify(warnings),
  );
  assert.deepEqual(
    manifest.areas.filter((a) => a.kind === 'partition').map((a) => [a.partition, a.mode]),
    [
      [1, 'full'],
      [2, 'full'],
    ],
  );
  cmp(disk, out);
  const restoredP2 = path.join(work, 'overlap-p2-restored.img');
  sh('dd', [`if=${out}`, `of=${restoredP2}`, 'bs=1M', `skip=${p2.start / MiB}`, `count=${p2.size / MiB}`, 'status=none']);
  cmp(img2, restoredP2);

  const alone = devsnap(['restore', id, path.join(work, 'p2-alone.img'), '--partition', '2', '--repo', repo, '--json']);
  assert.equal(alone.status, 7, alone.stdout + alone.stderr);
  assert.match(alone.json.error.message, /Partition 2 .* overlaps partition 1 .*without being shifted/);
  assert.ok(!fs.existsSync(path.join(work, 'p2-alone.img')));
  // p1's area starts at p1's first byte: it restores on its own, every byte in place.
  const p1Out = path.join(work, 'p1-alone.img');
  const one = devsnap(['restore', id, p1Out, '--partition', '1', '--repo', repo, '--json']);
  assert.equal(one.status, 0, one.stderr);
  const p1Src = path.join(work, 'overlap-p1-src.img');
  sh('dd', [`if=${disk}`, `of=${p1Src}`, 'bs=1M', `skip=${p1.start / MiB}`, `count=${p1.size / MiB}`, 'status=none']);
  cmp(p1Src, p1Out);
});

/** `count` small files (512 B–4.5 KiB) in folders of 100. */
function smallFiles(dir: string, count: number, seed: number): string {
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 100)}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}.bin`), seededBytes(seed * 100_000 + i, 512 + ((i * 7919) % (4 * KiB))));
  }
  return dir;
}

// Found by an independent tester: one byte (sectors per cluster) made a FAT16 count as FAT12; its FAT
// was read with 12-bit entries, files' clusters were called free, and snapshot/verify/restore all passed.
test('FAT16 whose sectors-per-cluster byte became 0x80 (now "FAT12" with an 80-sector FAT16 layout): imaged in full with a warning, restores byte for byte', async () => {
  const img = path.join(work, 'fat-spc.img');
  await makeFsImage(img, { fs: 'vfat', size: 40 * MiB, fatBits: 16, fromDir: smallFiles(path.join(work, 'fat-spc-src'), 2000, 4) });
  assert.equal(bpb(img).fatSectors, 80);
  patch(img, 13, Buffer.from([0x80]));
  assert.notEqual(sh('fsck.fat', ['-n', img], { allowFail: true }).status, 0, 'the damage is real: fsck.fat finds it');
  const { manifest, warnings, out } = snapshotAndRestore(img, 'fat-spc');
  assert.ok(
    warnings.some((w) => /vfat: implausible boot sector: a FAT of 40960 bytes where FAT12's \d+ clusters need \d+ .*imaged in full/.test(w)),
    JSON.stringify(warnings),
  );
  assert.deepEqual(
    manifest.areas.map((a) => a.mode),
    ['full'],
  );
  cmp(img, out);
});

test('FAT16 with a cluster chain pointing past the last cluster (in both copies): imaged in full with a warning', async () => {
  const img = await fat16('fat-chain.img');
  const { reserved, fatSectors } = bpb(img);
  const bs = readAt(img, 0, 512);
  const clusters = Math.floor((bs.readUInt16LE(0x13) - reserved - 2 * fatSectors - (bs.readUInt16LE(0x11) * 32) / 512) / bs[0x0d]);
  // The first used entry past the root's (a file's chain) now points at a cluster that does not exist.
  const fat = readAt(img, reserved * 512, fatSectors * 512);
  let k = 3;
  while (fat.readUInt16LE(k * 2) === 0) k++;
  const v = Buffer.alloc(2);
  v.writeUInt16LE(clusters + 2 + 5);
  for (const copy of [0, 1]) patch(img, (reserved + copy * fatSectors) * 512 + k * 2, v);
  assert.notEqual(sh('fsck.fat', ['-n', img], { allowFail: true }).status, 0, 'the damage is real: fsck.fat finds it');
  const { manifest, warnings, out } = snapshotAndRestore(img, 'fat-chain');
  assert.ok(
    warnings.some((w) => new RegExp(`vfat: 1 FAT entry points past the last cluster \\(${clusters + 1}\\).*imaged in full`).test(w)),
    JSON.stringify(warnings),
  );
  assert.deepEqual(
    manifest.areas.map((a) => a.mode),
    ['full'],
  );
  cmp(img, out);
});

test('genuine FAT12/16/32 volumes of several sizes and cluster sizes (mkfs.fat pads their FATs to the cluster size): used blocks, no warning', async () => {
  const src = smallFiles(path.join(work, 'fat-genuine-src'), 20, 5);
  // mtools refuses to write to a FAT32 of fewer than 65,525 clusters, so that one (a 64-sector FAT for 4 sectors of entries) stays empty.
  for (const [bits, size, spc] of [
    [12, 4, 0],
    [12, 16, 128],
    [16, 40, 0],
    [16, 128, 64],
    [32, 40, 0],
    [32, 16, 64],
  ] as const) {
    const img = path.join(work, `fat-genuine-${bits}-${size}-${spc}.img`);
    await makeFsImage(img, { fs: 'vfat', size: size * MiB, fatBits: bits, ...(bits === 32 && spc ? {} : { fromDir: src }), ...(spc ? { blockSize: spc * 512 } : {}) });
    const repo = path.join(work, `fat-genuine-${bits}-${size}-${spc}-repo`);
    const snap = devsnap(['snapshot', img, '--repo', repo, '--json']);
    assert.equal(snap.status, 0, snap.stderr);
    assert.deepEqual(snap.json.warnings, [], `FAT${bits} ${size} MiB, ${spc || 'default'} sectors per cluster`);
    const m = JSON.parse(fs.readFileSync(path.join(repo, 'snapshots', `${snap.json.id}.json`), 'utf8'));
    assert.deepEqual(
      m.areas.map((a: { mode: string }) => a.mode),
      ['used-blocks'],
    );
  }
});

/** The GPT header at `lba` with `value` at `offset`, its CRC recomputed (a deliberate forger, or a tool's bug). */
function patchGptHeader(disk: string, lba: number, offset: number, value: bigint): void {
  const h = readAt(disk, lba * 512, 512);
  h.writeBigUInt64LE(value, offset);
  h.writeUInt32LE(0, 16);
  h.writeUInt32LE(zlib.crc32(h.subarray(0, h.readUInt32LE(12))), 16);
  patch(disk, lba * 512, h);
}

// Found by an independent tester: such a header made `devsnap snapshot` fail (exit 1) with "devsnap built
// an invalid manifest … table.gpt.backupLba is not a whole number".
for (const [field, offset, value] of [
  ['AlternateLBA', 32, 0xffffffffffffffffn],
  ['LastUsableLBA', 48, 0x20000000000001n],
] as const) {
  test(`GPT primary header with ${field} ${value} (CRC fixed up): the backup header is used; without one the disk is imaged as if it had no table`, async () => {
    const disk = path.join(work, `gpt-${field}.img`);
    const [p] = await makeDisk(disk, { table: 'gpt', size: 12 * MiB, partitions: [{ fs: 'vfat', size: 8 * MiB, fromDir: smallFiles(path.join(work, `gpt-${field}-src`), 10, 6) }] });
    patchGptHeader(disk, 1, offset, value);
    const name = field === 'AlternateLBA' ? 'alternate LBA' : 'last usable LBA';

    const a = snapshotAndRestore(disk, `gpt-${field}`);
    assert.ok(
      a.warnings.some((w) => w.startsWith(`The primary GPT header is damaged (its ${name} is ${value}, beyond any disk); the backup header`)),
      JSON.stringify(a.warnings),
    );
    const m = a.manifest as unknown as { source: { table: string }; partitions: { start: number; fs?: string }[] };
    assert.equal(m.source.table, 'gpt');
    assert.deepEqual(
      m.partitions.map((x) => [x.start, x.fs]),
      [[p.start, 'vfat']],
    );
    cmp(disk, a.out);

    patch(disk, 12 * MiB - 512, Buffer.alloc(512)); // and no backup header
    const b = snapshotAndRestore(disk, `gpt-${field}-nobackup`);
    assert.ok(
      b.warnings.some((w) => /^The GPT partition table is damaged .* imaged in full as if it had no partition table/.test(w)),
      JSON.stringify(b.warnings),
    );
    assert.equal((b.manifest as unknown as { source: { table: string } }).source.table, 'none');
    assert.deepEqual(
      b.manifest.areas.map((x) => x.mode),
      ['full'],
    );
    cmp(disk, b.out);
  });
}
