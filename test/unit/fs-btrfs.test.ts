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
import * as os from 'os';
import * as path from 'path';
import { btrfsChangedSince, readBtrfs, readBtrfsState } from '../../imaging/fs/btrfs';
import { detectFilesystem } from '../../imaging/fs/detect';
import type { ByteReader, UsedBlocks } from '../../imaging/fs/types';
import { attachLoop, cleanup, detachLoop, diffDigests, fileReader, isRoot, onCleanup, seededBytes, sh, tmpDir, treeDigest } from '../helpers/disks';
import { makeBigDir, startWriter } from '../helpers/writers';

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

/** Mounts an image (on a loop device) for the duration of fn. The mount dir is not a tracked temp dir: cleanup never recurses into a mounted filesystem. */
async function withBtrfs<T>(img: string, options: string, fn: (dir: string, dev: string) => T | Promise<T>): Promise<T> {
  const dev = attachLoop(img);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-btrfs-mnt-'));
  let mounted = false;
  const release = () => {
    if (mounted && sh('umount', [dir], { allowFail: true }).status !== 0) sh('umount', ['-l', dir], { allowFail: true });
    mounted = false;
  };
  onCleanup(release);
  try {
    sh('mount', ['-t', 'btrfs', '-o', options, dev, dir]);
    mounted = true;
    return await fn(dir, dev);
  } finally {
    try { sh('fsfreeze', ['-u', dir], { allowFail: true }); } finally {
      release();
      fs.rmdirSync(dir);
      detachLoop(dev);
    }
  }
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
    for (let b = 0; b < blocks; ) {
      if (!isSet(u, b)) { b++; continue; }
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
      for (let done = 0; done < len; ) {
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

interface ProgsChunk { logical: number; length: number; offsets: number[] }

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
  const markBytes = (at: number, len: number) => { for (let b = Math.floor(at / blockSize); b < Math.ceil((at + len) / blockSize); b++) used.add(b); };
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

// ---------------------------------------------------------------------------------------------
// Changed since a generation

interface ChangeFigures { usedBytes: number; runBytes: number; dataBytes: number; differing: number; blocksRead: number }

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
    while (lo < hi) { const m = (lo + hi) >> 1; if (c.runs[m][0] + c.runs[m][1] <= at) lo = m + 1; else hi = m; }
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
  console.log(`  ${label}: used ${(figures.usedBytes / MiB).toFixed(1)} MiB, runs ${(figures.runBytes / MiB).toFixed(2)} MiB (data ${(figures.dataBytes / MiB).toFixed(2)} MiB) in ${c.runs.length} runs, ${differing} used blocks differed, ${c.blocksRead} tree blocks read`);
  return figures;
}

const py = (code: string, ...args: string[]) => sh('python3', ['-c', code, ...args]);

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
  await round('balance of one data and one metadata chunk', (dir) => {
    sh('btrfs', ['balance', 'start', '-dlimit=1', '-mlimit=1', dir]);
  }, true);
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
// Hostile input: see fs-btrfs-hostile.test.ts
