// Reading files inside snapshots without restoring them (no root, no loop device for the reading): the tree
// ImageFs sees must equal the source's treeDigest, for ext4 (4 KiB and 1 KiB blocks, inline_data, deep extent
// trees, sparse files), ext2 (indirect blocks) and the FAT EFI partition.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { cleanup, diffDigests, ext4TreeDigest, fileReader, isRoot, makeDisk, makeFsImage, makeWorkstationTree, sh, tmpDir, treeDigest, vfatTreeDigest, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { openImageFs, imageFsDigest, ImageFs } from '../../../imaging/filesystems/image-fs/index';
import { openSnapshotFs } from '../../../imaging/files/open';
import { ChunkCache, SnapshotDisk } from '../../../imaging/repo/snapshot-disk';
import { ChunkReader } from '../../../imaging/repo/chunk-reader';
import { WorkerPool } from '../../../imaging/repo/worker-pool';
import { chunkBuffers } from '../../../imaging/core/memory';
import { Repository } from '../../../imaging/repo/repository';
import type { Manifest } from '../../../imaging/repo/manifest';
import { DevsnapError } from '../../../imaging/core/errors';

after(cleanup);
const MiB = 1 << 20;
const work = tmpDir('devsnap-imagefs-');
const tree = path.join(work, 'tree');
makeWorkstationTree(tree, { scale: 3 * MiB });
const efi = path.join(work, 'efi');
fs.mkdirSync(path.join(efi, 'EFI', 'debian'), { recursive: true });
fs.writeFileSync(path.join(efi, 'EFI', 'debian', 'grubx64.efi'), crypto.randomBytes(300 * 1024));
fs.writeFileSync(path.join(efi, 'EFI', 'debian', 'A Long File Name with Ünïcode.cfg'), 'set timeout=5\n');
fs.writeFileSync(path.join(efi, 'startup.nsh'), 'fs0:\\EFI\\debian\\grubx64.efi\n');
fs.mkdirSync(path.join(efi, 'EFI', 'BOOT'));
fs.writeFileSync(path.join(efi, 'EFI', 'BOOT', 'BOOTX64.EFI'), crypto.randomBytes(70 * 1024 + 3));
for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(efi, 'EFI', 'debian', `entry-number-${i}.conf`), `title ${i}\n`);

interface Snap {
  repo: Repository;
  m: Manifest;
  close(): Promise<void>;
}

async function snapshotOf(disk: string, repoDir: string): Promise<Snap> {
  const r = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const repo = await Repository.open(repoDir, {}, () => undefined);
  await repo.loadIndex();
  return { repo, m: await repo.readManifest(r.json.id), close: () => repo.close() };
}

async function withSnapshotFs<T>(s: Snap, partition: number | undefined, fn: (f: ImageFs, disk: SnapshotDisk) => Promise<T>): Promise<T> {
  const o = await openSnapshotFs(s.repo, s.m, partition, { cacheChunks: 4 });
  try {
    return await fn(o.fs, o.disk);
  } finally {
    await o.close();
  }
}

test('GPT disk snapshot: the ext4 root (default partition) and the FAT EFI partition read back equal to their sources', async () => {
  const dir = tmpDir();
  const disk = path.join(dir, 'disk.img');
  const layout = await makeDisk(disk, {
    table: 'gpt',
    size: 80 * MiB,
    partitions: [
      { size: 16 * MiB, fs: 'vfat', label: 'EFI', fromDir: efi },
      { fs: 'ext4', label: 'root', blockSize: 4096, fromDir: tree },
    ],
  });
  const s = await snapshotOf(disk, path.join(dir, 'repo'));
  try {
    await withSnapshotFs(s, undefined, async (f, sd) => {
      assert.equal(f.fs, 'ext4');
      assert.equal(f.label, 'root');
      assert.equal(diffDigests(treeDigest(tree), await imageFsDigest(f)), '');
      // stat / readdir / readlink / read / symlinks in the middle of a path
      const st = await f.stat('/usr/bin/devsnap-suid');
      assert.equal(st.mode, 0o4755);
      assert.equal(st.type, 'file');
      assert.equal((await f.stat('/usr/bin/tool-link')).target, 'tool');
      assert.equal(await f.readlink('/usr/bin/dangling'), '../missing/target');
      assert.equal((await f.readFile('/usr/bin/tool-link')).toString(), '#!/bin/sh\necho tool\n');
      assert.equal((await f.stat('/home/dev/project/README.md')).xattrs['user.comment'].toString(), 'important file');
      assert.deepEqual((await f.stat('/usr/bin/tool')).xattrs['user.origin'], Buffer.from([0x00, 0xff, 0x10]));
      const names = (await f.readdir('/home/dev/project')).map((e) => e.name);
      assert.ok(names.includes('name with spaces ü.txt'));
      assert.deepEqual(names, [...names].sort());
      assert.equal((await f.read('/home/dev/vm/disk.raw', (4 << 20) + 3, 12)).toString(), 'end of disk\n');
      assert.equal((await f.read('/home/dev/vm/disk.raw', 100, 8)).toString('hex'), '0000000000000000');
      await assert.rejects(f.stat('/nope/x'), (e: unknown) => e instanceof DevsnapError && e.code === 'NOT_FOUND');
      assert.equal(await f.tryStat('/etc/nothing'), null);
      assert.ok(sd.chunkReads > 0 && sd.cacheHits > 0);
    });
    await withSnapshotFs(s, 1, async (f) => {
      assert.equal(f.fs, 'vfat');
      assert.equal(f.label, 'EFI');
      const part = path.join(dir, 'efi.img');
      sh('dd', [`if=${disk}`, `of=${part}`, 'bs=512', `skip=${layout[0].start / 512}`, `count=${layout[0].size / 512}`, 'status=none']);
      assert.equal(diffDigests(vfatTreeDigest(part), await imageFsDigest(f, { fields: ['mtime'] })), '');
      assert.ok((await f.readdir('/EFI/debian')).some((e) => e.name === 'A Long File Name with Ünïcode.cfg'));
      assert.equal((await f.readFile('/startup.nsh')).toString(), 'fs0:\\EFI\\debian\\grubx64.efi\n');
    });
  } finally {
    await s.close();
  }
});

test('MBR disk with a 1 KiB-block ext4 and an ext2 (indirect, double indirect blocks) partition', async () => {
  const dir = tmpDir();
  const disk = path.join(dir, 'disk.img');
  const big = path.join(dir, 'big');
  fs.mkdirSync(big);
  // 1 KiB blocks: 12 direct, 256 indirect, 65536 double-indirect blocks: a 1.5 MiB file needs the double indirect block
  fs.writeFileSync(path.join(big, 'large.bin'), crypto.randomBytes(1536 * 1024 + 77));
  fs.writeFileSync(path.join(big, 'sparse.bin'), '');
  fs.truncateSync(path.join(big, 'sparse.bin'), 3 * MiB);
  const fd = fs.openSync(path.join(big, 'sparse.bin'), 'r+');
  fs.writeSync(fd, Buffer.from('middle'), 0, 6, 2 * MiB + 5);
  fs.closeSync(fd);
  fs.symlinkSync('x'.repeat(100) + '/long/target/needs/a/block', path.join(big, 'slow-link'));
  await makeDisk(disk, {
    table: 'mbr',
    size: 72 * MiB,
    partitions: [
      { size: 48 * MiB, fs: 'ext4', blockSize: 1024, fromDir: tree },
      { fs: 'ext2', blockSize: 1024, fromDir: big },
    ],
  });
  const s = await snapshotOf(disk, path.join(dir, 'repo'));
  try {
    await withSnapshotFs(s, undefined, async (f) => {
      assert.equal(f.fs, 'ext4');
      assert.equal(diffDigests(treeDigest(tree), await imageFsDigest(f)), '');
    });
    await withSnapshotFs(s, 2, async (f) => {
      assert.equal(f.fs, 'ext2');
      assert.equal(diffDigests(treeDigest(big), await imageFsDigest(f)), '');
    });
  } finally {
    await s.close();
  }
});

test('ext4 with inline_data: small files and directories stored in the inode read back', async () => {
  const dir = tmpDir();
  const img = path.join(dir, 'inline.img');
  const small = path.join(dir, 'small');
  for (let i = 0; i < 30; i++) {
    fs.mkdirSync(path.join(small, `d${i % 5}`), { recursive: true });
    fs.writeFileSync(path.join(small, `d${i % 5}`, `f${i}`), 'x'.repeat(i * 7));
  }
  fs.writeFileSync(path.join(small, 'exactly60'), 'y'.repeat(60));
  fs.writeFileSync(path.join(small, 'just-over-i_block'), 'z'.repeat(100)); // continues in system.data
  await makeFsImage(img, { fs: 'ext4', size: 16 * MiB, fromDir: small, mkfsArgs: ['-O', 'inline_data', '-I', '256'] });
  const inlined = sh('debugfs', ['-R', 'stat /d1/f1', img]).stdout;
  assert.match(inlined, /Flags: 0x10000000/, 'mke2fs stored the small file inline');
  const r = fileReader(img);
  try {
    const f = await openImageFs(r);
    assert.ok(f);
    assert.equal(diffDigests(treeDigest(small), await imageFsDigest(f)), '');
  } finally {
    r.close();
  }
  // the workstation tree too (as the kernel sees it: mke2fs -d with inline_data loses a sparse file's trailing hole)
  if (isRoot) {
    const img2 = path.join(dir, 'inline-ws.img');
    await makeFsImage(img2, { fs: 'ext4', size: 40 * MiB, fromDir: tree, mkfsArgs: ['-O', 'inline_data'] });
    const r2 = fileReader(img2);
    try {
      assert.equal(diffDigests(await ext4TreeDigest(img2), await imageFsDigest((await openImageFs(r2))!)), '');
    } finally {
      r2.close();
    }
  }
});

test('fragmented file with an extent tree of depth > 0, written through the kernel', { skip: !isRoot && 'needs root (mounts)' }, async () => {
  const dir = tmpDir();
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, { table: 'gpt', size: 40 * MiB, partitions: [{ fs: 'ext4', blockSize: 1024, mkfsArgs: ['-O', '^flex_bg'] }] });
  const layout = JSON.parse(sh('sfdisk', ['-J', disk]).stdout).partitiontable.partitions[0];
  await withLoop(disk, { offset: layout.start * 512, sizeLimit: layout.size * 512 }, (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      fs.mkdirSync(path.join(mnt, 'frag'));
      const a = fs.openSync(path.join(mnt, 'frag', 'a.bin'), 'w');
      const b = fs.openSync(path.join(mnt, 'frag', 'b.bin'), 'w');
      for (let i = 0; i < 1500; i++) {
        fs.writeSync(a, crypto.randomBytes(1024));
        fs.fsyncSync(a);
        fs.writeSync(b, crypto.randomBytes(1024));
        fs.fsyncSync(b);
      }
      fs.closeSync(a);
      fs.closeSync(b);
      fs.writeFileSync(path.join(mnt, 'frag', 'hole.bin'), '');
      fs.truncateSync(path.join(mnt, 'frag', 'hole.bin'), 5 * MiB);
      const h = fs.openSync(path.join(mnt, 'frag', 'hole.bin'), 'r+');
      fs.writeSync(h, Buffer.from('tail'), 0, 4, 5 * MiB - 4);
      fs.closeSync(h);
      fs.writeFileSync(path.join(mnt, 'frag', 'prealloc.bin'), '');
      sh('fallocate', ['-l', '1M', path.join(mnt, 'frag', 'prealloc.bin')]); // unwritten extents read as zeros
      sh('setfattr', ['-n', 'user.big', '-v', 'v'.repeat(600), path.join(mnt, 'frag', 'a.bin')]); // goes to the xattr block
    }),
  );
  const part = path.join(dir, 'p1.img');
  sh('dd', [`if=${disk}`, `of=${part}`, 'bs=512', `skip=${layout.start}`, `count=${layout.size}`, 'status=none']);
  const ex = sh('debugfs', ['-R', 'ex /frag/a.bin', part]).stdout;
  assert.match(ex, /^\s*1\/\s*[12]\s/m, `a.bin has an extent tree of depth > 0:\n${ex.slice(0, 400)}`);
  const want = await ext4TreeDigest(part);
  const s = await snapshotOf(disk, path.join(dir, 'repo'));
  try {
    await withSnapshotFs(s, undefined, async (f) => {
      assert.equal(diffDigests(want, await imageFsDigest(f)), '');
      assert.equal((await f.stat('/frag/a.bin')).xattrs['user.big'].toString(), 'v'.repeat(600));
      assert.equal((await f.read('/frag/prealloc.bin', 0, 16)).toString('hex'), '0'.repeat(32));
    });
  } finally {
    await s.close();
  }
});

test('SnapshotDisk keeps a bounded chunk cache', async () => {
  const dir = tmpDir();
  const img = path.join(dir, 'fs.img');
  await makeFsImage(img, { fs: 'ext4', size: 24 * MiB, fromDir: tree });
  const s = await snapshotOf(img, path.join(dir, 'repo'));
  try {
    const o = await openSnapshotFs(s.repo, s.m, undefined, { cacheChunks: 3 });
    try {
      let n = 0;
      for await (const st of o.fs.walk()) if (st.type === 'file') n += (await o.fs.readFile(st.path)).length;
      assert.ok(n > MiB);
      assert.ok((o.disk as unknown as { cache: { size: number } }).cache.size <= 3);
    } finally {
      await o.close();
    }
  } finally {
    await s.close();
  }
});

test('SnapshotDisk: concurrent reads through a cache of two chunks, into pool buffers, return the image bytes', { timeout: 60_000 }, async () => {
  // A raw image (no table, no filesystem): every byte is stored, so every read has its answer in the file.
  const dir = tmpDir();
  const img = path.join(dir, 'raw.img');
  const bytes = crypto.randomBytes(12 * MiB);
  fs.writeFileSync(img, bytes);
  const s = await snapshotOf(img, path.join(dir, 'repo'));
  const pool = new WorkerPool(2);
  const give = chunkBuffers.give.bind(chunkBuffers);
  let recycled = 0;
  chunkBuffers.give = (b) => {
    if (b instanceof Uint8Array && b.length === MiB) recycled++;
    give(b);
  };
  try {
    const disk = new SnapshotDisk(new ChunkReader(s.repo, pool), s.m, undefined, { cacheChunks: 2 });
    // Many reads at once over 12 chunks through a cache of 2: entries are dropped while other reads
    // still wait to copy from them, and pool buffers come back into play (as `into`) meanwhile.
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const reads = Array.from({ length: 300 }, () => {
      const len = 1 + rnd(2 * MiB);
      return { pos: rnd(bytes.length - len), len };
    });
    // Others take pool buffers and write over them meanwhile, as a snapshot's reads do: a chunk given
    // back while a read still had to copy from it would show their bytes.
    let running = true;
    const churn = async () => {
      while (running) {
        const b = chunkBuffers.take(MiB).fill(0xaa);
        await new Promise((r) => setImmediate(r));
        chunkBuffers.give(b);
      }
    };
    const churners = [churn(), churn(), churn()];
    const bad = await Promise.all(
      reads.map(async ({ pos, len }) => {
        const into = len <= MiB ? chunkBuffers.take(len) : undefined;
        const out = await disk.read(pos, len, into);
        const ok = out.equals(bytes.subarray(pos, pos + len));
        chunkBuffers.give(into);
        return ok ? 0 : 1;
      }),
    );
    running = false;
    await Promise.all(churners);
    assert.equal(
      bad.reduce((a: number, b) => a + b, 0),
      0,
      'every read returns the image bytes',
    );
    assert.ok(recycled > 0, 'dropped chunks went back to the pool');
  } finally {
    chunkBuffers.give = give;
    await pool.close();
    await s.close();
  }
});

test('ChunkCache: a dropped chunk still pinned by a read stays out of the pool until it is released', async () => {
  const cache = new ChunkCache(2);
  const given: ArrayBufferLike[] = [];
  const give = chunkBuffers.give.bind(chunkBuffers);
  chunkBuffers.give = (b) => {
    if (b) given.push(b instanceof Uint8Array ? b.buffer : b);
    give(b);
  };
  try {
    const chunk = (c: string) => async () => chunkBuffers.take(MiB).fill(c);
    const a = cache.use('a', chunk('a'));
    const aBytes = await a.data;
    cache.use('b', chunk('b')).release();
    cache.use('c', chunk('c')).release(); // drops 'a', still pinned
    await new Promise((r) => setImmediate(r));
    assert.ok(!given.includes(aBytes.buffer), 'a pinned chunk is not given back when dropped');
    assert.equal(aBytes[0], 'a'.charCodeAt(0));
    a.release();
    await new Promise((r) => setImmediate(r));
    assert.ok(given.includes(aBytes.buffer), 'given back once released');
    cache.use('d', chunk('d')).release(); // drops 'b', not pinned: given back at once
    await new Promise((r) => setImmediate(r));
    assert.equal(given.length, 2);
  } finally {
    chunkBuffers.give = give;
  }
});
