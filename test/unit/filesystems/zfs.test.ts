// ZFS pool members (filesystems/zfs/label.ts) and the refusal of a live pool (capture/zfs.ts). This machine has no
// ZFS module, so labels are built here byte by byte and libblkid (`blkid -p`) is the oracle: what it calls
// a zfs_member with a pool name, devsnap must too, and nothing else. Whether a pool is imported is read
// from /proc/spl/kstat/zfs, pointed at constructed trees.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readZfsLabel, topLevelPairs } from '../../../imaging/filesystems/zfs/label';
import { liveZfsPools, zfsProblem } from '../../../imaging/capture/zfs';
import { cleanup, fileReader, makeDisk, prng, sh, tmpDir } from '../../helpers/disks';

after(cleanup);
const MiB = 1 << 20;
const KiB = 1024;

/** One XDR nvpair (big-endian): [size, decoded size, name length, name padded to 4, type, count, value]. */
function pair(name: string, value: string | bigint): Buffer {
  const nameBuf = Buffer.alloc((name.length + 3) & ~3);
  nameBuf.write(name, 'latin1');
  let v: Buffer;
  if (typeof value === 'string') {
    const s = Buffer.alloc((value.length + 3) & ~3);
    s.write(value, 'utf8');
    v = Buffer.concat([u32(9), u32(1), u32(value.length), s]);
  } else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(value);
    v = Buffer.concat([u32(8), u32(1), b]);
  }
  const size = 12 + nameBuf.length + v.length;
  return Buffer.concat([u32(size), u32(size), u32(name.length), nameBuf, v]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** An XDR nvlist: its 12-byte header (encoding, endianness, version, flags), the pairs, a zero end. */
function nvlist(pairs: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([1, 1, 0, 0]), u32(0), u32(1), ...pairs, Buffer.alloc(8)]);
}

/** Writes the four labels of a pool member into `file` at `start` (a device of `size` bytes). */
function writeMember(file: string, start: number, size: number, o: { pool?: string; state?: bigint; uberblocks?: number; swapped?: boolean }): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const pairs = [pair('version', 5000n), ...(o.pool ? [pair('name', o.pool)] : []), ...(o.state !== undefined ? [pair('state', o.state)] : []), pair('pool_guid', 1234567890123n)];
    const nv = nvlist(pairs);
    const end = size - (size % (256 * KiB));
    for (const l of [0, 256 * KiB, end - 512 * KiB, end - 256 * KiB]) {
      fs.writeSync(fd, nv, 0, nv.length, start + l + 16 * KiB);
      for (let k = 0; k < (o.uberblocks ?? 4); k++) {
        const ub = Buffer.alloc(40);
        if (o.swapped) ub.writeBigUInt64BE(0x00bab10cn, 0);
        else ub.writeBigUInt64LE(0x00bab10cn, 0);
        ub.writeBigUInt64LE(5000n, 8);
        ub.writeBigUInt64LE(BigInt(100 + k), 16);
        fs.writeSync(fd, ub, 0, ub.length, start + l + 128 * KiB + (4 + k) * KiB);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

function blank(dir: string, size: number): string {
  const f = path.join(dir, `dev-${size}.img`);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, size);
  return f;
}

function blkid(file: string): Record<string, string> {
  const r = sh('blkid', ['-p', '-o', 'export', file], { allowFail: true });
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

async function label(file: string) {
  const r = fileReader(file);
  try {
    return await readZfsLabel(r);
  } finally {
    r.close();
  }
}

test('a pool member as libblkid sees it: the pool name and state from the label', async () => {
  const dir = tmpDir('devsnap-zfs-');
  for (const swapped of [false, true]) {
    const f = blank(dir, 80 * MiB + 100 * KiB); // not a multiple of 256 KiB: the end labels are aligned down
    writeMember(f, 0, 80 * MiB + 100 * KiB, { pool: 'rpool', state: 0n, swapped });
    const b = blkid(f);
    assert.equal(b.TYPE, 'zfs_member', JSON.stringify(b));
    assert.equal(b.LABEL, 'rpool');
    assert.deepEqual(await label(f), { pool: 'rpool', state: 0, uberblocks: 16 });
  }
});

test('not a member: too few uberblocks (as libblkid), too small a device, an empty one', async () => {
  const dir = tmpDir('devsnap-zfs-');
  const few = blank(dir, 80 * MiB);
  writeMember(few, 0, 80 * MiB, { pool: 'tank', state: 0n, uberblocks: 0 });
  const fd = fs.openSync(few, 'r+');
  const ub = Buffer.alloc(8);
  ub.writeBigUInt64LE(0x00bab10cn);
  for (const at of [128 * KiB, 129 * KiB, 130 * KiB]) fs.writeSync(fd, ub, 0, 8, at); // three, one short
  fs.closeSync(fd);
  assert.notEqual(blkid(few).TYPE, 'zfs_member');
  assert.equal(await label(few), null);
  const small = blank(dir, 32 * MiB);
  writeMember(small, 0, 32 * MiB, { pool: 'tank', state: 0n });
  assert.equal(await label(small), null, 'under 64 MiB is no vdev (libblkid: minsz)');
  assert.equal(await label(blank(dir, 80 * MiB + 512)), null);
});

test('the nvlist reader takes top-level strings and numbers, skips what it does not read, stops at garbage', () => {
  const nested = Buffer.concat([u32(40), u32(40), u32(9), Buffer.from('vdev_tree\0\0\0'), u32(19), u32(1), Buffer.alloc(8)]);
  const nv = nvlist([pair('version', 5000n), nested, pair('name', 'tank'), pair('state', 1n)]);
  assert.deepEqual(Object.fromEntries(topLevelPairs(nv)), { version: 5000n, name: 'tank', state: 1n });
  // Hostile: sizes past the end, a name longer than its pair, random bytes: never a throw.
  const bad = Buffer.from(nv);
  bad.writeUInt32BE(0x7fffffff, 12);
  assert.equal(topLevelPairs(bad).size, 0);
  const longName = Buffer.from(nv);
  longName.writeUInt32BE(5000, 12 + 8);
  assert.equal(topLevelPairs(longName).size, 0);
  const rand = prng(7);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(nv);
    for (let k = 0; k < 4; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    topLevelPairs(b);
  }
});

test('a snapshot refuses a partition of a pool imported here, names it and says what to do; an exported or foreign pool is imaged', async () => {
  const dir = tmpDir('devsnap-zfs-');
  const disk = path.join(dir, 'disk.img');
  const parts = await makeDisk(disk, {
    table: 'gpt',
    size: 200 * MiB,
    partitions: [
      { size: 64 * MiB, fs: 'ext4' },
      { size: 128 * MiB, fs: 'none' },
    ],
  });
  writeMember(disk, parts[1].start, parts[1].size, { pool: 'rpool', state: 0n });
  const proc = path.join(dir, 'proc');
  const r = fileReader(disk);
  try {
    assert.deepEqual(await liveZfsPools(r, parts, proc), [], 'no ZFS module loaded: nothing is imported');
    fs.mkdirSync(path.join(proc, 'spl/kstat/zfs/other'), { recursive: true });
    assert.deepEqual(await liveZfsPools(r, parts, proc), [], 'another pool is imported, not this one');
    fs.mkdirSync(path.join(proc, 'spl/kstat/zfs/rpool'));
    const live = await liveZfsPools(r, parts, proc);
    assert.deepEqual(live, [{ partition: 2, pool: 'rpool' }]);
    const p = zfsProblem(live)!;
    assert.match(p.message, /Partition 2 belongs to the ZFS pool "rpool", imported on this machine/);
    assert.match(p.hint, /zpool export rpool.*--fuzzy/s);
    writeMember(disk, parts[1].start, parts[1].size, { pool: 'rpool', state: 1n });
    assert.deepEqual(await liveZfsPools(r, parts, proc), [], 'exported: nobody writes to it');
    writeMember(disk, parts[1].start, parts[1].size, { state: 0n });
    assert.deepEqual(await liveZfsPools(r, parts, proc), [{ partition: 2, pool: null }], 'a member whose label names no pool counts as imported');
  } finally {
    r.close();
  }
  assert.equal(zfsProblem([]), null);
});
