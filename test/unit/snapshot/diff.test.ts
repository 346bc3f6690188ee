// diffSnapshots: synthetic manifests (different chunk boundaries, zero vs free, free vs data,
// different disk sizes) and two real snapshots of an image before/after one file changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { diffSnapshots } from '../../../imaging/snapshot/diff';
import type { Area, Extent, Manifest } from '../../../imaging/repo/manifest';
import { Extents } from '../../../imaging/repo/extents';
import { Repository } from '../../../imaging/repo/repository';
import { takeSnapshot } from '../../../imaging/snapshot/take';

const MiB = 1 << 20;
const K = 1024;

function manifest(id: string, size: number, areas: Area[], fs: Record<number, string> = {}): Manifest {
  const partitions = areas
    .filter((a) => a.kind === 'partition')
    .map((a) => ({ index: a.partition!, start: a.start, size: a.size, type: '0x83', ...(fs[a.partition!] ? { fs: fs[a.partition!] } : {}) }));
  return {
    format: 'devsnap-snapshot',
    version: 1,
    id,
    label: id,
    created: '2026-01-01T00:00:00Z',
    host: 'h',
    source: { path: '/dev/x', size, table: 'mbr' },
    consistency: 'offline',
    pinned: false,
    state: 'not-verified',
    stats: { bytesRead: 0, bytesLogical: size, bytesUsed: 0, bytesAdded: 0, chunksNew: 0, chunksReused: 0, durationSeconds: 0 },
    partitions,
    chunkSize: 4 * K,
    table: { type: 'mbr', sectorSize: 512, partitions },
    areas,
    inventory: null,
    warnings: [],
  };
}

const raw = (start: number, size: number, extents: Extent[]): Area => ({ kind: 'raw', start, size, mode: 'raw', extents: Extents.from(extents) });
const part = (n: number, start: number, size: number, extents: Extent[]): Area => ({ kind: 'partition', partition: n, start, size, mode: 'used-blocks', extents: Extents.from(extents) });
const id = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

test('identical manifests: nothing changed, every partition listed', () => {
  const a = manifest(
    'a',
    16 * K,
    [
      raw(0, 4 * K, [[0, 4 * K, id('mbr')]]),
      part(1, 4 * K, 12 * K, [
        [0, 4 * K, id('x')],
        [4 * K, 8 * K, 'f'],
      ]),
    ],
    { 1: 'ext4' },
  );
  const d = diffSnapshots(a, a);
  assert.equal(d.totalChangedBytes, 0);
  assert.deepEqual(d.partitions, [
    { index: null, changedBytes: 0, ranges: [] },
    { index: 1, fs: 'ext4', changedBytes: 0, ranges: [] },
  ]);
});

test('same offset different ref, free<->data, zero vs free, merged ranges', () => {
  const a = manifest(
    'a',
    24 * K,
    [
      raw(0, 4 * K, [[0, 4 * K, id('mbr')]]),
      part(1, 4 * K, 20 * K, [
        [0, 4 * K, id('a0')],
        [4 * K, 4 * K, id('a1')],
        [8 * K, 4 * K, 'z'],
        [12 * K, 4 * K, 'f'],
        [16 * K, 4 * K, id('a4')],
      ]),
    ],
    { 1: 'ext4' },
  );
  const b = manifest(
    'b',
    24 * K,
    [
      raw(0, 4 * K, [[0, 4 * K, id('mbr')]]),
      part(1, 4 * K, 20 * K, [
        [0, 4 * K, id('b0')],
        [4 * K, 4 * K, id('b1')],
        [8 * K, 4 * K, 'f'],
        [12 * K, 4 * K, id('b3')],
        [16 * K, 4 * K, id('a4')],
      ]),
    ],
    { 1: 'ext4' },
  );
  const d = diffSnapshots(a, b);
  // b0, b1 changed (merged into one range), zero->free unchanged, free->data changed, a4 unchanged.
  assert.deepEqual(d.partitions.find((p) => p.index === 1)!.ranges, [
    [4 * K, 8 * K],
    [16 * K, 4 * K],
  ]);
  assert.equal(d.totalChangedBytes, 12 * K);
  assert.equal(d.partitions.find((p) => p.index === null)!.changedBytes, 0);
  // Symmetric.
  assert.equal(diffSnapshots(b, a).totalChangedBytes, 12 * K);
});

test('different chunk boundaries are compared on byte ranges', () => {
  // a: one 8K chunk X at 0, then 8K zero. b: 4K chunk X' at 0, 4K chunk Y, 4K free, 4K chunk Z.
  const a = manifest('a', 16 * K, [
    part(1, 0, 16 * K, [
      [0, 8 * K, id('X')],
      [8 * K, 8 * K, 'z'],
    ]),
  ]);
  const b = manifest('b', 16 * K, [
    part(1, 0, 16 * K, [
      [0, 4 * K, id('X2')],
      [4 * K, 4 * K, id('Y')],
      [8 * K, 4 * K, 'f'],
      [12 * K, 4 * K, id('Z')],
    ]),
  ]);
  const d = diffSnapshots(a, b);
  assert.deepEqual(d.partitions.find((p) => p.index === 1)!.ranges, [
    [0, 8 * K],
    [12 * K, 4 * K],
  ]);
  assert.equal(d.totalChangedBytes, 12 * K);
  // The same chunk id at a different position is not the same bytes there.
  const c = manifest('c', 16 * K, [
    part(1, 0, 16 * K, [
      [0, 4 * K, 'z'],
      [4 * K, 8 * K, id('X')],
      [12 * K, 4 * K, 'z'],
    ]),
  ]);
  assert.deepEqual(diffSnapshots(a, c).partitions[1].ranges, [[0, 12 * K]]);
  // A partition split into two areas in one snapshot but not the other: same chunk at same place = unchanged.
  const e1 = manifest('e1', 8 * K, [
    raw(0, 8 * K, [
      [0, 4 * K, id('P')],
      [4 * K, 4 * K, id('Q')],
    ]),
  ]);
  const e2 = manifest('e2', 8 * K, [raw(0, 4 * K, [[0, 4 * K, id('P')]]), raw(4 * K, 4 * K, [[0, 4 * K, id('Q')]])]);
  assert.equal(diffSnapshots(e1, e2).totalChangedBytes, 0);
});

test('layout changes and disk size changes', () => {
  const a = manifest('a', 16 * K, [raw(0, 4 * K, [[0, 4 * K, id('t1')]]), part(1, 4 * K, 12 * K, [[0, 12 * K, 'f']])], { 1: 'ext4' });
  // b: a larger disk, new table, partition 2 appears with data at the end.
  const b = manifest(
    'b',
    24 * K,
    [
      raw(0, 4 * K, [[0, 4 * K, id('t2')]]),
      part(1, 4 * K, 12 * K, [[0, 12 * K, 'f']]),
      part(2, 16 * K, 8 * K, [
        [0, 4 * K, id('n')],
        [4 * K, 4 * K, 'z'],
      ]),
    ],
    { 1: 'ext4', 2: 'vfat' },
  );
  const d = diffSnapshots(a, b);
  assert.deepEqual(d.partitions, [
    { index: null, changedBytes: 4 * K, ranges: [[0, 4 * K]] },
    { index: 1, fs: 'ext4', changedBytes: 0, ranges: [] },
    { index: 2, fs: 'vfat', changedBytes: 4 * K, ranges: [[16 * K, 4 * K]] }, // the zero tail equals "nothing"
  ]);
  assert.equal(d.totalChangedBytes, 8 * K);
  assert.equal(d.a, 'a');
  assert.equal(d.b, 'b');
});

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

test("two real snapshots before/after one file changed: only that file's chunk changed", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-diff-'));
  try {
    const img = path.join(dir, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 48 * MiB);
    sh('sfdisk', ['-q', img], 'label: gpt\nstart=2048, size=65536, type=L\n');
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(tree, `file${i}.bin`), crypto.randomBytes(1 * MiB));
    const p1 = path.join(dir, 'p1.img');
    fs.writeFileSync(p1, '');
    fs.truncateSync(p1, 32 * MiB);
    sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', tree, p1]);
    // Where file3's data lives inside the filesystem, then change 100 bytes of it in place.
    const stat = sh('debugfs', ['-R', 'stat /file3.bin', p1]);
    const m = /EXTENTS:\s*\(0(?:-\d+)?\):(\d+)/.exec(stat);
    assert.ok(m, stat);
    const fileBlock = Number(m[1]);
    sh('dd', [`if=${p1}`, `of=${img}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);

    const repo = await Repository.init(path.join(dir, 'repo'), {}, () => undefined);
    await repo.loadIndex();
    const before = await takeSnapshot(repo, { source: img, log: () => undefined });
    const changedAt = 2048 * 512 + fileBlock * 4096 + 1000; // disk byte offset
    const fd = fs.openSync(img, 'r+');
    fs.writeSync(fd, crypto.randomBytes(100), 0, 100, changedAt);
    fs.closeSync(fd);
    // A write behind the filesystem's back (no inode changed): only a full read sees it.
    const after = await takeSnapshot(repo, { source: img, log: () => undefined, fullRead: true });
    await repo.close();

    const d = diffSnapshots(before, after);
    const chunk = before.chunkSize;
    const p = d.partitions.find((x) => x.index === 1)!;
    assert.equal(p.fs, 'ext4');
    const partStart = 2048 * 512;
    const chunkStart = partStart + Math.floor((changedAt - partStart) / chunk) * chunk;
    assert.deepEqual(p.ranges, [[chunkStart, chunk]]);
    assert.equal(p.changedBytes, chunk);
    assert.equal(d.totalChangedBytes, chunk);
    assert.equal(d.partitions.find((x) => x.index === null)!.changedBytes, 0);
    assert.equal(diffSnapshots(after, after).totalChangedBytes, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
