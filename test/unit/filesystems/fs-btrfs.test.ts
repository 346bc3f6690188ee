// readBtrfs and btrfsChangedSince against filesystems made by mkfs.btrfs and changed through the kernel.
// Oracles are the real tools: the used map must equal the extent tree as `btrfs inspect-internal
// dump-tree` prints it, mapped through its chunk tree; a copy keeping only the used blocks must pass
// `btrfs check` and mount with every file equal; and every used block that differs between a copy
// taken at generation G and the filesystem later must lie in btrfsChangedSince(later, G).runs, which
// copied onto the old copy must give a filesystem that checks clean and reads back equal.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { btrfsChangedSince, readBtrfs, readBtrfsState } from '../../../imaging/filesystems/btrfs/btrfs';
import { openBtrfs, parseRootItem, type RootRef, type TreeBlock } from '../../../imaging/filesystems/btrfs/open';
import { crc32cRaw } from '../../../imaging/filesystems/checksums';
import { DevsnapError } from '../../../imaging/core/errors';
import { detectFilesystem } from '../../../imaging/filesystems/detect';
import type { ByteReader, UsedBlocks } from '../../../imaging/filesystems/types';
import { cleanup, diffDigests, fileReader, isRoot, prng, seededBytes, sh, tmpDir, treeDigest, withLoop, withMount } from '../../helpers/disks';
import { makeBigDir, startWriter } from '../../helpers/writers';

const MiB = 1 << 20;
const haveProgs = spawnSync('mkfs.btrfs', ['--version']).status === 0;
const haveKernel = fs.existsSync('/proc/filesystems') && /\tbtrfs$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
const noTools = !haveProgs && 'needs btrfs-progs (apt-get install btrfs-progs)';
const noMount = noTools || (!isRoot ? 'needs root (mounts btrfs on loop devices)' : !haveKernel && 'needs btrfs in the kernel');
const work = tmpDir('devsnap-btrfs-');
after(cleanup);

function mkfs(img: string, size: number, args: string[] = []): void {
  fs.rmSync(img, { force: true });
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, size);
  sh('mkfs.btrfs', ['-q', '-f', ...args, img]);
}

/** Mounts an image (on a loop device) for the duration of fn. */
function withBtrfs<T>(img: string, options: string, fn: (dir: string, dev: string) => T | Promise<T>): Promise<T> {
  return withLoop(img, {}, (dev) => withMount(dev, 'btrfs', { options }, (dir) => fn(dir, dev)));
}

const digestOf = (img: string) => withBtrfs(img, 'ro', (dir) => treeDigest(dir));

async function usedOf(img: string): Promise<UsedBlocks> {
  const r = fileReader(img);
  try {
    const u = await readBtrfs(r);
    assert.ok(u, `${img}: readBtrfs found no btrfs`);
    return u;
  } finally {
    r.close();
  }
}

const isSet = (u: UsedBlocks, i: number): boolean => (u.bitmap[i >> 3] & (1 << (i & 7))) !== 0;

/** A copy of `src` holding only the blocks `u` marks used (the rest sparse zeros). */
function copyUsed(src: string, dst: string, u: UsedBlocks): void {
  fs.rmSync(dst, { force: true });
  const size = fs.statSync(src).size;
  const from = fs.openSync(src, 'r');
  const to = fs.openSync(dst, 'w');
  try {
    fs.ftruncateSync(to, size);
    const blocks = Math.ceil(size / u.blockSize);
    for (let b = 0; b < blocks;) {
      if (!isSet(u, b)) {
        b++;
        continue;
      }
      let e = b;
      while (e < blocks && isSet(u, e) && e - b < 256) e++;
      const buf = Buffer.alloc((e - b) * u.blockSize);
      const n = fs.readSync(from, buf, 0, buf.length, b * u.blockSize);
      fs.writeSync(to, buf, 0, n, b * u.blockSize);
      b = e;
    }
  } finally {
    fs.closeSync(from);
    fs.closeSync(to);
  }
}

/** Copies the byte runs of `src` onto `dst` (in place). */
function applyRuns(src: string, dst: string, runs: [number, number][]): void {
  const from = fs.openSync(src, 'r');
  const to = fs.openSync(dst, 'r+');
  try {
    for (const [at, len] of runs) {
      for (let done = 0; done < len;) {
        const n = Math.min(8 * MiB, len - done);
        const buf = Buffer.alloc(n);
        fs.readSync(from, buf, 0, n, at + done);
        fs.writeSync(to, buf, 0, n, at + done);
        done += n;
      }
    }
  } finally {
    fs.closeSync(from);
    fs.closeSync(to);
  }
}

function check(img: string): void {
  const r = sh('btrfs', ['check', '--readonly', img], { allowFail: true });
  assert.equal(r.status, 0, `btrfs check --readonly ${img} fails:\n${(r.stdout + r.stderr).slice(-3000)}`);
}

interface ProgsChunk {
  logical: number;
  length: number;
  offsets: number[];
}

/** The chunk tree as dump-tree prints it: logical start, length, every stripe's physical offset. */
function progsChunks(img: string): ProgsChunk[] {
  const chunks: ProgsChunk[] = [];
  const dump = sh('btrfs', ['inspect-internal', 'dump-tree', '-t', 'chunk', img]).stdout;
  for (const m of dump.matchAll(/key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)[^\n]*\n\s*length (\d+)[\s\S]*?num_stripes (\d+)[^\n]*\n((?:\s*stripe \d+ devid \d+ offset \d+\n\s*dev_uuid [^\n]*\n)+)/g)) {
    const offsets = [...m[4].matchAll(/offset (\d+)/g)].map((x) => Number(x[1]));
    assert.equal(offsets.length, Number(m[3]));
    chunks.push({ logical: Number(m[1]), length: Number(m[2]), offsets });
  }
  assert.ok(chunks.length >= 2, 'dump-tree printed too few chunks');
  return chunks;
}

/** Physical offsets of every copy of logical [at, at+len), by the chunks dump-tree printed. */
function progsMap(chunks: ProgsChunk[], at: number, len: number): number[] {
  const c = chunks.find((x) => at >= x.logical && at + len <= x.logical + x.length);
  assert.ok(c, `logical ${at} is in no chunk dump-tree printed`);
  return c.offsets.map((off) => off + at - c.logical);
}

/**
 * The used map by btrfs-progs: every EXTENT_ITEM / METADATA_ITEM of the extent tree as dump-tree
 * prints it, through the chunk tree's stripes, plus what readBtrfs always marks (first MiB, mirrors).
 */
function progsUsedBytes(img: string, blockSize: number): Set<number> {
  const chunks = progsChunks(img);
  const nodeSize = Number(/nodesize\s+(\d+)/.exec(sh('btrfs', ['inspect-internal', 'dump-super', img]).stdout)![1]);
  const used = new Set<number>();
  const markBytes = (at: number, len: number) => {
    for (let b = Math.floor(at / blockSize); b < Math.ceil((at + len) / blockSize); b++) used.add(b);
  };
  const extentDump = sh('btrfs', ['inspect-internal', 'dump-tree', '-t', 'extent', img]).stdout;
  for (const m of extentDump.matchAll(/key \((\d+) (EXTENT_ITEM|METADATA_ITEM) (\d+)\)/g)) {
    const len = m[2] === 'EXTENT_ITEM' ? Number(m[3]) : nodeSize;
    for (const off of progsMap(chunks, Number(m[1]), len)) markBytes(off, len);
  }
  markBytes(0, MiB);
  const size = fs.statSync(img).size;
  for (const m of [0x10000, 0x4000000, 0x4000000000]) if (m < size) markBytes(m, 4096);
  return used;
}

/** The used map equals btrfs-progs' view exactly, block by block. */
function assertMatchesProgs(u: UsedBlocks, img: string): void {
  const want = progsUsedBytes(img, u.blockSize);
  const blocks = Math.ceil(fs.statSync(img).size / u.blockSize);
  const wrong: string[] = [];
  for (let b = 0; b < blocks && wrong.length < 10; b++) if (isSet(u, b) !== want.has(b)) wrong.push(`${b}${want.has(b) ? ' (used, not marked)' : ' (marked, not used)'}`);
  assert.deepEqual(wrong, [], 'blocks whose used state differs from the extent tree as dump-tree prints it');
  assert.equal(u.usedBytes, want.size * u.blockSize);
}

// ---------------------------------------------------------------------------------------------
// Filling

const py = (code: string, ...args: string[]) => sh('python3', ['-c', code, ...args]);

function write(file: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

function words(seed: number, bytes: number): string {
  let out = '';
  for (let i = 0; out.length < bytes; i++) out += `line ${i} of ${seed}: the quick brown fox jumps over the lazy dog ${(i * 7919) % 1000}\n`;
  return out.slice(0, bytes);
}

/** Small (inline) and large files, compressed ones, a subvolume and its snapshot, deleted files, a nodatacow file, a prealloc file, links, xattrs. */
function fill(dir: string, seed: number): void {
  for (let i = 0; i < 400; i++) write(path.join(dir, `small/d${i % 8}/f${i}`), seededBytes(seed * 1000 + i, (i * 37) % 3000));
  for (let i = 0; i < 24; i++) write(path.join(dir, `medium/m${i}.bin`), seededBytes(seed * 2000 + i, 64 * 1024 + i * 70_001));
  write(path.join(dir, 'big1.bin'), seededBytes(seed * 3000, 24 * MiB));
  write(path.join(dir, 'big2.bin'), seededBytes(seed * 3001, 16 * MiB));
  fs.mkdirSync(path.join(dir, 'zstd'));
  sh('btrfs', ['property', 'set', path.join(dir, 'zstd'), 'compression', 'zstd']);
  for (let i = 0; i < 6; i++) write(path.join(dir, `zstd/text${i}.txt`), words(seed + i, 2 * MiB + i * 1000));
  sh('btrfs', ['subvolume', 'create', path.join(dir, 'sub')]);
  for (let i = 0; i < 30; i++) write(path.join(dir, `sub/s${i}`), seededBytes(seed * 4000 + i, 1000 + i * 40_000));
  sh('btrfs', ['subvolume', 'snapshot', path.join(dir, 'sub'), path.join(dir, 'snap')]);
  write(path.join(dir, 'sub/s0'), 'changed after the snapshot\n');
  fs.rmSync(path.join(dir, 'sub/s1'));
  for (let i = 0; i < 20; i++) write(path.join(dir, `gone/g${i}`), seededBytes(seed * 5000 + i, 200_000));
  for (let i = 0; i < 20; i += 2) fs.rmSync(path.join(dir, `gone/g${i}`));
  const nocow = path.join(dir, 'nocow.img');
  fs.writeFileSync(nocow, '');
  sh('chattr', ['+C', nocow]);
  fs.writeFileSync(nocow, seededBytes(seed * 6000, 8 * MiB));
  sh('fallocate', ['-l', String(10 * MiB), path.join(dir, 'prealloc')]);
  const fd = fs.openSync(path.join(dir, 'prealloc'), 'r+');
  fs.writeSync(fd, seededBytes(seed * 6001, 300_000), 0, 300_000, 2 * MiB);
  fs.closeSync(fd);
  fs.linkSync(path.join(dir, 'big2.bin'), path.join(dir, 'big2.link'));
  fs.symlinkSync('big1.bin', path.join(dir, 'big1.sym'));
  sh('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(dir, 'medium/m3.bin')]);
}

// ---------------------------------------------------------------------------------------------
// Used blocks

const VARIANTS: { name: string; mkfs: string[]; mount: string }[] = [
  { name: 'default (DUP metadata), zstd', mkfs: [], mount: 'compress=zstd' },
  { name: 'single metadata, 4 KiB nodes (deeper trees)', mkfs: ['-m', 'single', '-n', '4096'], mount: 'rw' },
  { name: 'DUP data, sha256 checksums', mkfs: ['-d', 'dup', '--csum', 'sha256'], mount: 'rw' },
  { name: 'mixed block groups', mkfs: ['--mixed'], mount: 'compress=lzo' },
];

for (const v of VARIANTS) {
  test(`used blocks, ${v.name}: equal to the extent tree; a copy of only them checks clean and reads back equal`, { skip: noMount }, async () => {
    const img = path.join(work, 'used.img');
    const copy = path.join(work, 'used-copy.img');
    mkfs(img, 640 * MiB, v.mkfs);
    const digest = await withBtrfs(img, v.mount, (dir) => {
      fill(dir, 1);
      sh('sync', ['-f', dir]);
      return treeDigest(dir);
    });
    const u = await usedOf(img);
    assert.equal(u.fs, 'btrfs');
    assert.ok(!u.full, `imaged in full: ${u.warnings}`);
    assert.equal(u.uuid, sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).stdout.trim());
    assertMatchesProgs(u, img);
    const r = fileReader(img);
    assert.equal((await detectFilesystem(r))?.fs, 'btrfs');
    r.close();
    console.log(`  ${v.name}: ${(u.usedBytes / MiB).toFixed(1)} MiB used of ${(fs.statSync(img).size / MiB).toFixed(0)} MiB`);

    copyUsed(img, copy, u);
    check(copy);
    assert.equal(diffDigests(digest, await digestOf(copy)), '');
    fs.rmSync(copy);
    fs.rmSync(img);
  });
}

test('the copy oracle can fail: leaving out one data extent is caught', { skip: noMount }, async () => {
  const img = path.join(work, 'neg.img');
  const copy = path.join(work, 'neg-copy.img');
  mkfs(img, 300 * MiB, ['-m', 'single']);
  const digest = await withBtrfs(img, 'rw', (dir) => {
    write(path.join(dir, 'a.bin'), seededBytes(9, 3 * MiB));
    return treeDigest(dir);
  });
  const u = await usedOf(img);
  const logical = Number(/key \((\d+) EXTENT_ITEM 3145728\)/.exec(sh('btrfs', ['inspect-internal', 'dump-tree', '-t', 'extent', img]).stdout)![1]);
  const [phys] = progsMap(progsChunks(img), logical, 3 * MiB);
  const b = Math.floor((phys + MiB) / u.blockSize); // a block in the middle of the file's one extent
  assert.ok(isSet(u, b));
  u.bitmap[b >> 3] &= ~(1 << (b & 7));
  copyUsed(img, copy, u);
  await assert.rejects(async () => assert.equal(diffDigests(digest, await digestOf(copy)), ''));
});

test('mkfs --rootdir (no mount): equal to the extent tree; xxhash64 checksums are imaged in full with a warning', { skip: noTools }, async () => {
  const src = path.join(work, 'rootdir');
  for (let i = 0; i < 200; i++) write(path.join(src, `d${i % 5}/f${i}`), seededBytes(7000 + i, (i * 9973) % 200_000));
  const img = path.join(work, 'rootdir.img');
  mkfs(img, 200 * MiB, ['-r', src]);
  const u = await usedOf(img);
  assert.ok(!u.full, String(u.warnings));
  assertMatchesProgs(u, img);
  mkfs(img, 200 * MiB, ['-r', src, '--csum', 'xxhash']);
  const x = await usedOf(img);
  assert.equal(x.full, true);
  assert.match(String(x.warnings), /xxhash64/);
  assert.equal(x.usedBytes, x.bitmap.length * 8 * x.blockSize - (x.bitmap.length * 8 - Math.ceil(fs.statSync(img).size / x.blockSize)) * x.blockSize);
});

test('a log tree (fsync not yet committed): its blocks and the data it references are used; a copy replays it', { skip: noMount }, async () => {
  const img = path.join(work, 'log.img');
  const copy = path.join(work, 'log-copy.img');
  const withLog = path.join(work, 'log-live.img');
  mkfs(img, 300 * MiB);
  // commit=300: no transaction commits between the fsync and the copy, so the copy's superblock has a log root.
  await withBtrfs(img, 'commit=300', (dir, dev) => {
    write(path.join(dir, 'base.bin'), seededBytes(31, 3 * MiB));
    sh('sync', ['-f', dir]);
    py('import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT); os.write(fd,os.urandom(5<<20)); os.fsync(fd); os.close(fd)', path.join(dir, 'logged.bin'));
    sh('dd', [`if=${dev}`, `of=${withLog}`, 'bs=4M', 'iflag=direct', 'status=none']);
  });
  assert.notEqual(Number(/^log_root\s+(\d+)/m.exec(sh('btrfs', ['inspect-internal', 'dump-super', withLog]).stdout)![1]), 0, 'the copy has no log tree');
  const u = await usedOf(withLog);
  assert.ok(!u.full, String(u.warnings));
  copyUsed(withLog, copy, u);
  // Mounting replays the log: the fsync'ed file must come back from the used blocks alone.
  const full = path.join(work, 'log-full.img');
  fs.copyFileSync(withLog, full);
  const want = await withBtrfs(full, 'rw', (dir) => treeDigest(dir));
  assert.match(want, /logged\.bin\tf\t[^\t]*\t[^\t]*\t5242880/);
  assert.equal(diffDigests(want, await withBtrfs(copy, 'rw', (dir) => treeDigest(dir))), '');
});

// ---------------------------------------------------------------------------------------------
// Changed since a generation

interface ChangeFigures {
  usedBytes: number;
  runBytes: number;
  dataBytes: number;
  differing: number;
  blocksRead: number;
}

/**
 * The key oracle: every block used in `b` that differs between `a` and `b` lies in the runs; then
 * `a` with the runs copied from `b` checks clean and reads back as `digestB`.
 */
async function assertCatchesUp(a: string, b: string, since: number, digestB: string, label: string): Promise<ChangeFigures> {
  const r = fileReader(b);
  const c = await btrfsChangedSince(r, since);
  r.close();
  const u = await usedOf(b);
  assert.ok(!u.full, String(u.warnings));
  const inRuns = (at: number) => {
    let lo = 0;
    let hi = c.runs.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (c.runs[m][0] + c.runs[m][1] <= at) lo = m + 1;
      else hi = m;
    }
    return lo < c.runs.length && c.runs[lo][0] <= at;
  };
  for (let i = 1; i < c.runs.length; i++) assert.ok(c.runs[i][0] > c.runs[i - 1][0] + c.runs[i - 1][1], 'runs are not sorted and merged');
  const missed: number[] = [];
  let differing = 0;
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const bs = u.blockSize;
  const ba = Buffer.alloc(MiB);
  const bb = Buffer.alloc(MiB);
  try {
    for (let at = 0; at < fs.statSync(b).size; at += MiB) {
      fs.readSync(fa, ba, 0, MiB, at);
      fs.readSync(fb, bb, 0, MiB, at);
      for (let o = 0; o < MiB; o += bs) {
        const blk = (at + o) / bs;
        if (!isSet(u, blk) || ba.compare(bb, o, o + bs, o, o + bs) === 0) continue;
        differing++;
        if (!inRuns(at + o) || !inRuns(at + o + bs - 1)) missed.push(at + o);
      }
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  assert.deepEqual(missed.slice(0, 10), [], `${missed.length} used blocks differ but are not in the runs (bytes ${missed.slice(0, 10).join(', ')})`);
  assert.equal(c.state.generation, (await readBtrfsState(fileReader(b)))!.generation);

  const caught = a + '.caught';
  fs.copyFileSync(a, caught);
  applyRuns(b, caught, c.runs);
  check(caught);
  assert.equal(diffDigests(digestB, await digestOf(caught)), '', `${label}: the caught-up copy reads back differently`);
  fs.rmSync(caught);
  const figures = { usedBytes: u.usedBytes, runBytes: c.runs.reduce((n, [, l]) => n + l, 0), dataBytes: c.changedDataBytes, differing, blocksRead: c.blocksRead };
  console.log(
    `  ${label}: used ${(figures.usedBytes / MiB).toFixed(1)} MiB, runs ${(figures.runBytes / MiB).toFixed(2)} MiB (data ${(figures.dataBytes / MiB).toFixed(2)} MiB) in ${c.runs.length} runs, ${differing} used blocks differed, ${c.blocksRead} tree blocks read`,
  );
  return figures;
}

/** Every kind of change: in place, append, truncate, punch, nodatacow, mmap, rename over, links, reuse, subvolumes, a big directory, compression, balance. */
function change(dir: string): void {
  py('import sys\nf=open(sys.argv[1],"r+b"); f.seek(1<<20); f.write(b"X"*100000); f.close()', path.join(dir, 'big1.bin'));
  sh('dd', ['if=/dev/urandom', `of=${path.join(dir, 'medium/m5.bin')}`, 'bs=4096', 'seek=3', 'count=4', 'conv=notrunc', 'status=none']);
  fs.appendFileSync(path.join(dir, 'medium/m6.bin'), seededBytes(8000, 50_000));
  fs.truncateSync(path.join(dir, 'medium/m7.bin'), 30_000);
  fs.truncateSync(path.join(dir, 'medium/m8.bin'), 5 * MiB);
  sh('fallocate', ['-p', '-o', String(MiB), '-l', String(MiB), path.join(dir, 'big2.bin')]);
  sh('fallocate', ['-l', String(8 * MiB), path.join(dir, 'fresh-prealloc')]);
  sh('dd', ['if=/dev/urandom', `of=${path.join(dir, 'prealloc')}`, 'bs=4096', 'seek=100', 'count=50', 'conv=notrunc', 'status=none']);
  sh('dd', ['if=/dev/urandom', `of=${path.join(dir, 'nocow.img')}`, 'bs=4096', 'seek=10', 'count=5', 'conv=notrunc', 'status=none']);
  const mmap = 'import mmap,sys\nf=open(sys.argv[1],"r+b"); m=mmap.mmap(f.fileno(),0); m[8192:8192+5000]=b"M"*5000; m.flush(); m.close(); f.close()';
  py(mmap, path.join(dir, 'nocow.img'));
  py(mmap, path.join(dir, 'medium/m9.bin'));
  write(path.join(dir, 'medium/m10.tmp'), seededBytes(8001, 90_000));
  fs.renameSync(path.join(dir, 'medium/m10.tmp'), path.join(dir, 'medium/m10.bin'));
  fs.linkSync(path.join(dir, 'medium/m11.bin'), path.join(dir, 'small/m11.link'));
  fs.unlinkSync(path.join(dir, 'big2.link'));
  fs.rmSync(path.join(dir, 'big1.bin'));
  sh('sync', ['-f', dir]);
  write(path.join(dir, 'reuse.bin'), seededBytes(8002, 20 * MiB));
  sh('btrfs', ['subvolume', 'create', path.join(dir, 'sub2')]);
  for (let i = 0; i < 10; i++) write(path.join(dir, `sub2/n${i}`), seededBytes(8100 + i, 10_000 * i));
  write(path.join(dir, 'sub/s2'), 'rewritten in the subvolume\n');
  sh('btrfs', ['subvolume', 'snapshot', path.join(dir, 'sub'), path.join(dir, 'snap2')]);
  sh('btrfs', ['subvolume', 'delete', path.join(dir, 'snap')]);
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(dir, `small/d0/many-${i}-with-a-long-name-to-fill-leaves`), i % 3 ? '' : `entry ${i}\n`);
  write(path.join(dir, 'zstd/new.txt'), words(99, 3 * MiB));
  sh('btrfs', ['filesystem', 'defragment', '-czstd', path.join(dir, 'medium/m12.bin')]);
  sh('setfattr', ['-n', 'user.note', '-v', 'changed', path.join(dir, 'medium/m3.bin')]);
  fs.chmodSync(path.join(dir, 'medium/m4.bin'), 0o600);
}

test('changed since G: every used block that differs is in the runs; the old copy caught up checks clean and reads back equal', { skip: noMount }, async () => {
  const img = path.join(work, 'chg.img');
  const old = path.join(work, 'chg-old.img');
  mkfs(img, 768 * MiB);
  await withBtrfs(img, 'rw', (dir) => fill(dir, 2));
  /** Copies the image (at generation G), changes it through the kernel, checks the runs against the copy. */
  const round = async (label: string, fn: (dir: string) => void, samePaths = false): Promise<ChangeFigures> => {
    fs.copyFileSync(img, old);
    const G = (await readBtrfsState(fileReader(old)))!.generation;
    assert.equal(G, Number(/^generation\s+(\d+)/m.exec(sh('btrfs', ['inspect-internal', 'dump-super', old]).stdout)![1]));
    await withBtrfs(img, 'rw', fn);
    const digest = await digestOf(img);
    // The oracle is not trivially satisfied: without the runs, the old copy is not the new one.
    if (!samePaths) assert.notEqual(diffDigests(digest, await digestOf(old)), '', `${label}: nothing changed`);
    const f = await assertCatchesUp(old, img, G, digest, label);
    assert.ok(f.differing > 0, `${label}: no used block changed`);
    return f;
  };

  const f = await round('every kind of change', change);
  assert.ok(f.differing > 1000, `only ${f.differing} used blocks changed: the changes did not happen`);
  assert.ok(f.runBytes < f.usedBytes * 0.8, `runs of ${f.runBytes} bytes, used ${f.usedBytes}`);
  // Balance moves data and tree blocks to new places without changing the generation of the file
  // extent items that point there (only the extent tree's new items say so).
  await round(
    'balance of one data and one metadata chunk',
    (dir) => {
      sh('btrfs', ['balance', 'start', '-dlimit=1', '-mlimit=1', dir]);
    },
    true,
  );
  // A deleted subvolume the cleaner has not dropped yet: its root item stays (refs 0), pointing at a tree being freed.
  await round('prepare a subvolume of many files and its snapshot', (dir) => {
    sh('btrfs', ['subvolume', 'create', path.join(dir, 'many')]);
    for (let i = 0; i < 6000; i++) fs.writeFileSync(path.join(dir, `many/f${i}`), 'x'.repeat(i % 700));
    sh('btrfs', ['subvolume', 'snapshot', path.join(dir, 'many'), path.join(dir, 'many-snap')]);
  });
  await round('delete subvolumes, unmounted before they are dropped', (dir) => {
    for (let i = 0; i < 6000; i += 5) fs.appendFileSync(path.join(dir, `many/f${i}`), 'y');
    sh('btrfs', ['subvolume', 'delete', path.join(dir, 'many-snap'), path.join(dir, 'many')]);
  });
  const dead = (sh('btrfs', ['inspect-internal', 'dump-tree', '-t', 'root', img]).stdout.match(/refs 0/g) ?? []).length;
  console.log(`  deleted subvolumes not yet dropped at unmount: ${dead}`);
  const small = await round('a small change', (dir) => {
    write(path.join(dir, 'medium/m13.bin'), 'small change\n');
    sh('dd', ['if=/dev/urandom', `of=${path.join(dir, 'nocow.img')}`, 'bs=4096', 'seek=500', 'count=1', 'conv=notrunc', 'status=none']);
  });
  assert.ok(small.runBytes < small.usedBytes / 5, `runs of ${small.runBytes} bytes for a small change (used ${small.usedBytes})`);
  const G = (await readBtrfsState(fileReader(old)))!.generation;
  const all = await btrfsChangedSince(fileReader(img), G, { allChangedInodes: true });
  console.log(`  with allChangedInodes: ${(all.runs.reduce((n, [, l]) => n + l, 0) / MiB).toFixed(2)} MiB`);
  // Nothing changed since the last generation: only the fixed areas.
  const none = await btrfsChangedSince(fileReader(img), (await readBtrfsState(fileReader(img)))!.generation);
  assert.equal(none.changedDataBytes, 0);
  assert.ok(none.runs.reduce((n, [, l]) => n + l, 0) <= MiB + 8192, `runs with nothing changed: ${JSON.stringify(none.runs)}`);
});

/** A reader of a block device that drops its page cache first (the filesystem writes past it). */
function deviceReader(dev: string): ByteReader & { close(): void } {
  sh('dd', [`if=${dev}`, 'iflag=nocache', 'count=0', 'status=none']);
  return fileReader(dev, 0, Number(sh('blockdev', ['--getsize64', dev]).stdout.trim()));
}

function copyDevice(dev: string, dst: string): void {
  sh('dd', [`if=${dev}`, 'iflag=nocache', 'count=0', 'status=none']);
  sh('dd', [`if=${dev}`, `of=${dst}`, 'bs=4M', 'iflag=direct', 'conv=sparse', 'status=none']);
}

test('live: a writer running, read while frozen through the block device', { skip: noMount }, async () => {
  const img = path.join(work, 'live.img');
  const a = path.join(work, 'live-a.img');
  const b = path.join(work, 'live-b.img');
  mkfs(img, 768 * MiB);
  let G = 0;
  let frozen: Awaited<ReturnType<typeof btrfsChangedSince>> | undefined;
  // commit=1: many transactions (and block reuse) while the copies are read.
  await withBtrfs(img, 'compress=zstd,commit=1', async (dir, dev) => {
    fill(dir, 3);
    fs.mkdirSync(path.join(dir, 'w-nocow'));
    sh('chattr', ['+C', path.join(dir, 'w-nocow')]);
    makeBigDir(path.join(dir, 'w-cow/big'), 2000);
    const logs = tmpDir('devsnap-btrfs-log-');
    const writers = [
      await startWriter({ dir: path.join(dir, 'w-nocow'), log: path.join(logs, 'n.log'), seed: 11, kinds: ['mmap', 'direct', 'overwrite', 'append', 'truncate'] }),
      await startWriter({ dir: path.join(dir, 'w-cow'), log: path.join(logs, 'c.log'), seed: 12, kinds: ['overwrite', 'rename', 'hardlink', 'reuse', 'append', 'bigdir'], bigDir: 'big' }),
    ];
    try {
      sh('sync', ['-f', dir]);
      const r = deviceReader(dev);
      G = (await readBtrfsState(r))!.generation;
      r.close();
      copyDevice(dev, a); // pass 1: read live, torn
      await new Promise((res) => setTimeout(res, 3000));
      sh('fsfreeze', ['-f', dir]);
      try {
        const t0 = Date.now();
        const f = deviceReader(dev);
        frozen = await btrfsChangedSince(f, G);
        const u = await readBtrfs(f);
        f.close();
        console.log(`  frozen: change scan and used map in ${Date.now() - t0} ms; generation ${G} → ${frozen.state.generation}; used map full: ${!!u?.full}`);
        assert.ok(u && !u.full, String(u?.warnings));
        copyDevice(dev, b);
      } finally {
        sh('fsfreeze', ['-u', dir]);
      }
    } finally {
      for (const w of writers) await w.stop();
    }
  });
  assert.ok(frozen && frozen.state.generation > G, 'the writers committed nothing');
  const digestB = await digestOf(b);
  await assertCatchesUp(a, b, G, digestB, 'live writers');
});

// ---------------------------------------------------------------------------------------------
// Hostile input: damage and crafted metadata give null, a full image with a warning, or a DevsnapError

/** A reader of `file` with some byte ranges replaced (no copy of the image per case). */
function patched(file: string, patches: Map<number, Buffer>): ByteReader & { close(): void } {
  const base = fileReader(file);
  return {
    size: base.size,
    async read(pos, len) {
      const buf = await base.read(pos, len);
      for (const [at, data] of patches) {
        const from = Math.max(at, pos);
        const to = Math.min(at + data.length, pos + len);
        if (from < to) data.copy(buf, from - pos, from - at, to - at);
      }
      return buf;
    },
    close: () => base.close(),
  };
}

/** A tree block or superblock with its crc32c recomputed (bytes 0x20 on), as a crafted image would carry. */
function resum(block: Buffer): Buffer {
  const out = Buffer.from(block);
  out.fill(0, 0, 32);
  out.writeUInt32LE(~crc32cRaw(0xffffffff, out.subarray(0x20)) >>> 0, 0);
  return out;
}

interface Outcome {
  kind: 'null' | 'full' | 'map' | 'error';
  warning?: string;
  error?: string;
}

/** readBtrfs and btrfsChangedSince on a crafted image: each must end (quickly) in an allowed way. */
async function outcome(r: ByteReader, since = 1): Promise<{ used: Outcome; changes: Outcome }> {
  const u = await readBtrfs(r);
  const used: Outcome = !u ? { kind: 'null' } : u.full ? { kind: 'full', warning: u.warnings?.join(' ') } : { kind: 'map' };
  if (u?.full) assert.ok(u.warnings?.length, 'a full image without a warning');
  let changes: Outcome;
  try {
    await btrfsChangedSince(r, since);
    changes = { kind: 'map' };
  } catch (e) {
    assert.ok(e instanceof DevsnapError, `btrfsChangedSince threw ${(e as Error)?.stack ?? e}, not a DevsnapError`);
    changes = { kind: 'error', error: e.message };
  }
  return { used, changes };
}

const hostileSkip = noTools;
let hostileImg = '';
/** A small filesystem (4 KiB nodes: trees several levels deep) made without mounting, and where its tree blocks are. */
async function hostileBase(): Promise<{ img: string; blocks: { logical: number; level: number; copies: number[]; owner: string }[]; sb: Buffer; gen: number }> {
  if (!hostileImg) {
    const src = path.join(work, 'hostile-src');
    for (let i = 0; i < 1500; i++) write(path.join(src, `d${i % 30}/file-with-a-longer-name-${i}`), seededBytes(9000 + i, (i * 7919) % 9000));
    hostileImg = path.join(work, 'hostile.img');
    mkfs(hostileImg, 160 * MiB, ['-r', src, '-n', '4096']);
  }
  const r = fileReader(hostileImg);
  try {
    const o = (await openBtrfs(r))!;
    const blocks: { logical: number; level: number; copies: number[]; owner: string }[] = [];
    const roots: RootRef[] = [];
    const collect = (owner: string) => ({
      onBlock: (b: TreeBlock, copies: [number, number][]) => {
        blocks.push({ logical: b.logical, level: b.level, copies: copies.map(([at]) => at), owner });
        if (!b.level && owner === 'root') for (let i = 0; i < b.nritems; i++) if (b.itemType(i) === 132) roots.push(parseRootItem(b, i));
      },
    });
    await o.reader.walk({ logical: o.s.chunkRoot, level: o.s.chunkRootLevel }, 'chunk', collect('chunk'));
    await o.reader.walk({ logical: o.s.root, level: o.s.rootLevel }, 'root', collect('root'));
    for (const t of roots) await o.reader.walk(t, String(t.id), collect(String(t.id)));
    return { img: hostileImg, blocks, sb: await r.read(0x10000, 4096), gen: o.s.generation };
  } finally {
    r.close();
  }
}

test('hostile: not btrfs, a truncated image, a damaged or crafted superblock', { skip: hostileSkip }, async () => {
  const { img, sb } = await hostileBase();
  const zeros = patched(img, new Map([[0, Buffer.alloc(2 * MiB)]]));
  assert.equal(await readBtrfs(zeros), null);
  assert.equal(await readBtrfs({ size: 4096, read: async (_p, l) => Buffer.alloc(l) }), null);
  assert.equal(await readBtrfsState(zeros), null);

  // NTFS made over a btrfs (mkntfs -Q leaves its superblock at 64 KiB): the NTFS is what is there.
  const over = path.join(work, 'ntfs-over-btrfs.img');
  mkfs(over, 120 * MiB);
  if (spawnSync('mkntfs', ['--version']).status === 0) {
    sh('mkntfs', ['-Q', '-F', over]);
    assert.equal((await fileReader(over).read(0x10040, 8)).toString('latin1'), '_BHRfS_M', 'mkntfs wiped the btrfs superblock: the case is gone');
    assert.equal(await readBtrfs(fileReader(over)), null);
    assert.equal((await detectFilesystem(fileReader(over)))?.fs, 'ntfs');
  }

  const truncated = fileReader(img, 0, 40 * MiB);
  const t = await outcome(truncated);
  assert.equal(t.used.kind, 'full');
  assert.match(t.used.warning!, /truncated/);
  assert.match(t.changes.error!, /truncated/);
  await assert.rejects(readBtrfsState(truncated), DevsnapError);

  const flipped = Buffer.from(sb);
  flipped[0x200] ^= 0x40; // in the label, checksum not updated
  assert.match((await outcome(patched(img, new Map([[0x10000, flipped]])))).used.warning!, /superblock fails its checksum/);

  // A real two-device filesystem (RAID1): not followed, imaged in full.
  const d1 = path.join(work, 'dev1.img');
  const d2 = path.join(work, 'dev2.img');
  for (const d of [d1, d2]) {
    fs.closeSync(fs.openSync(d, 'w'));
    fs.truncateSync(d, 300 * MiB);
  }
  sh('mkfs.btrfs', ['-q', '-f', '-d', 'raid1', '-m', 'raid1', d1, d2]);
  const two = await outcome(fileReader(d1));
  assert.equal(two.used.kind, 'full');
  assert.match(two.used.warning!, /spans 2 devices/);
  assert.match(two.changes.error!, /spans 2 devices/);

  const crafted: [string, (b: Buffer) => void, RegExp][] = [
    ['num_devices 2', (b) => b.writeUInt32LE(2, 0x88), /spans 2 devices/],
    ['RAID56 incompat bit', (b) => b.writeUInt32LE(b.readUInt32LE(0xbc) | 0x80, 0xbc), /RAID56/],
    ['xxhash64 checksums', (b) => b.writeUInt16LE(1, 0xc4), /xxhash64/],
    ['node size 3', (b) => b.writeUInt32LE(3, 0x94), /node size/],
    ['a 5000-byte system chunk array', (b) => b.writeUInt32LE(5000, 0xa0), /system chunk array/],
    ['a root past 2^53', (b) => b.writeUInt32LE(0xffffffff, 0x54), /implausibly large/],
    ['a chunk with 60000 stripes', (b) => b.writeUInt16LE(60000, 0x32b + 17 + 44), /system chunk array|stripes/],
    ['a chunk beyond the device', (b) => b.writeUInt32LE(0x10, 0x32b + 17 + 48 + 8 + 4), /outside the device/],
    ['the device larger than the partition', (b) => b.writeUInt32LE(0x10, 0xc9 + 8 + 4), /truncated/],
    ['the log root pointing nowhere', (b) => b.writeUInt32LE(0x7000000, 0x60), /log root tree|outside every chunk/],
  ];
  for (const [what, edit, why] of crafted) {
    const b = Buffer.from(sb);
    edit(b);
    const o = await outcome(patched(img, new Map([[0x10000, b.readUInt16LE(0xc4) === 0 ? resum(b) : b]])));
    assert.equal(o.used.kind, 'full', `${what}: ${JSON.stringify(o)}`);
    assert.match(o.used.warning!, why, what);
    assert.equal(o.changes.kind, 'error', what);
  }
});

test('hostile: bad node checksums, cyclic and shared pointers, absurd item counts and sizes', { skip: hostileSkip }, async () => {
  const { img, blocks } = await hostileBase();
  const clean = await usedOf(img);
  assert.ok(!clean.full, String(clean.warnings));
  const ns = 4096;
  const base = fileReader(img);
  const raw = async (at: number) => base.read(at, ns);
  const extentRoot = blocks.find((b) => b.owner === '2' && b === blocks.filter((x) => x.owner === '2').reduce((m, x) => (x.level > m.level ? x : m)))!;
  assert.ok(extentRoot.level >= 1, 'the extent tree is one leaf: the test needs a deeper one');
  assert.equal(extentRoot.copies.length, 2, 'metadata is not DUP');

  // One bad copy: btrfs reads the other, so does readBtrfs.
  const bad = Buffer.from(await raw(extentRoot.copies[0]));
  bad[200] ^= 1;
  const one = await readBtrfs(patched(img, new Map([[extentRoot.copies[0], bad]])));
  assert.ok(one && !one.full, String(one?.warnings));
  assert.equal(one.usedBytes, clean.usedBytes);
  // Both bad: nothing to trust.
  const both = await outcome(
    patched(
      img,
      new Map([
        [extentRoot.copies[0], bad],
        [extentRoot.copies[1], bad],
      ]),
    ),
  );
  assert.equal(both.used.kind, 'full');
  assert.match(both.used.warning!, /checksum/);

  const node = await raw(extentRoot.copies[0]);
  const n = node.readUInt32LE(0x60);
  const ptr = (i: number) => 101 + i * 33;
  const craft = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(node);
    edit(b);
    const s = resum(b);
    return new Map(extentRoot.copies.map((c) => [c, s]));
  };
  const cases: [string, Map<number, Buffer>, RegExp][] = [
    [
      'a node pointing at itself',
      craft((b) => {
        b.writeBigUInt64LE(BigInt(extentRoot.logical), ptr(1) + 17);
        b.writeBigUInt64LE(b.readBigUInt64LE(0x50), ptr(1) + 25);
      }),
      /reached twice/,
    ],
    [
      'every pointer to the same child',
      craft((b) => {
        for (let i = 1; i < n; i++) b.copy(b, ptr(i) + 17, ptr(0) + 17, ptr(0) + 33);
      }),
      /reached twice/,
    ],
    ['a pointer outside every chunk', craft((b) => b.writeBigUInt64LE(1n << 40n, ptr(0) + 17)), /outside every chunk/],
    ['an absurd item count', craft((b) => b.writeUInt32LE(0xffffffff, 0x60)), /key pointers/],
    [
      'a level of 200',
      craft((b) => {
        b[0x64] = 200;
      }),
      /level/,
    ],
  ];
  const leaf = blocks.find((b) => b.owner === '2' && b.level === 0)!;
  const leafRaw = await raw(leaf.copies[0]);
  const craftLeaf = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(leafRaw);
    edit(b);
    const s = resum(b);
    return new Map(leaf.copies.map((c) => [c, s]));
  };
  cases.push(
    ['an item size of 4 GiB', craftLeaf((b) => b.writeUInt32LE(0xffffffff, 101 + 21)), /impossible place/],
    ['items out of order', craftLeaf((b) => b.copy(b, 101, 101 + 25, 101 + 25 + 17)), /out of order|impossible/],
    [
      'an extent of 2^52 bytes',
      craftLeaf((b) => {
        b.writeUInt32LE(0, 101 + 9);
        b.writeUInt32LE(0x100000, 101 + 13);
        b[101 + 8] = 168;
      }),
      /outside every chunk|out of order/,
    ],
  );
  for (const [what, p, why] of cases) {
    const o = await outcome(patched(img, p));
    assert.equal(o.used.kind, 'full', `${what}: ${JSON.stringify(o)}`);
    assert.match(o.used.warning!, why, what);
    assert.equal(o.changes.kind, 'error', `${what}: ${JSON.stringify(o)}`);
  }
  base.close();
});

test('hostile: fuzzing metadata blocks and the superblock ends in a map, a full image or a DevsnapError', { skip: hostileSkip }, async () => {
  const { img, blocks, sb, gen } = await hostileBase();
  const rand = prng(4242);
  const base = fileReader(img);
  const kinds: Record<string, number> = {};
  const t0 = Date.now();
  for (let i = 0; i < 400; i++) {
    const superblock = i % 8 === 0;
    const target = superblock ? { copies: [0x10000] } : blocks[Math.floor(rand() * blocks.length)];
    const orig = superblock ? sb : await base.read(target.copies[0], 4096);
    const b = Buffer.from(orig);
    const flips = 1 + Math.floor(rand() * 6);
    for (let k = 0; k < flips; k++) {
      // Mostly headers, item/pointer tables and the superblock's fields, where values become offsets and counts.
      const at = 0x20 + Math.floor(rand() * (rand() < 0.7 ? 0x400 : b.length - 0x20));
      b[at] = rand() < 0.5 ? b[at] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
    }
    const data = rand() < 0.8 ? resum(b) : b;
    const p = patched(img, new Map(target.copies.map((c) => [c, data])));
    const started = Date.now();
    const o = await outcome(p, Math.max(0, gen - 1 - Math.floor(rand() * 3)));
    assert.ok(Date.now() - started < 5000, `case ${i} took ${Date.now() - started} ms`);
    const key = `${o.used.kind}/${o.changes.kind}`;
    kinds[key] = (kinds[key] ?? 0) + 1;
  }
  base.close();
  console.log(`  400 fuzzed images in ${Date.now() - t0} ms: ${JSON.stringify(kinds)}`);
  assert.ok((kinds['full/error'] ?? 0) > 50, 'the fuzzing rarely hit anything');
});
