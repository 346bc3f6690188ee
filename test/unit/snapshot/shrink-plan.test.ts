// Where partitions go on a smaller disk: order, table entries and the first partition's start are
// kept; ext and NTFS give up space in proportion to their free space, never below their data plus the
// margin; other filesystems keep their size; a layout that cannot fit is refused with what it needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevsnapError } from '../../../imaging/core/errors';
import type { PartitionInfo } from '../../../imaging/protocol';
import { MARGIN_MIN, minimumPartitionSize, planShrink } from '../../../imaging/snapshot/shrink-plan';

const MiB = 1 << 20;
const GiB = 1 << 30;
const part = (index: number, start: number, size: number, fs?: string, usedBytes?: number): PartitionInfo => ({
  index,
  start,
  size,
  type: 'x',
  ...(fs ? { fs } : {}),
  ...(usedBytes !== undefined ? { usedBytes } : {}),
});

test('ext and NTFS shrink in proportion to their free space; the EFI partition keeps its place and size', () => {
  const parts = [part(1, MiB, 512 * MiB, 'vfat', 10 * MiB), part(2, 513 * MiB, 100 * GiB, 'ext4', 20 * GiB), part(3, 513 * MiB + 100 * GiB, 50 * GiB, 'ntfs', 5 * GiB)];
  const p = planShrink(parts, 'gpt', 90 * GiB);
  assert.deepEqual(
    p.partitions.map((x) => x.how),
    ['keep', 'shrink', 'shrink'],
  );
  assert.equal(p.partitions[0].newStart, MiB);
  assert.equal(p.partitions[0].newSize, 512 * MiB);
  for (let i = 1; i < 3; i++) {
    const x = p.partitions[i];
    assert.ok(x.newStart >= p.partitions[i - 1].newStart + p.partitions[i - 1].newSize, 'no overlap');
    assert.equal(x.newStart % MiB, 0, 'aligned');
    assert.ok(x.newSize >= minimumPartitionSize(parts[i]), 'never below its data and margin');
  }
  const last = p.partitions[2];
  assert.ok(last.newStart + last.newSize + MiB <= 90 * GiB, 'the GPT backup fits after it');
  // Free space given up in proportion: ext had 80 GiB free, NTFS 45 GiB.
  const gaveExt = parts[1].size - p.partitions[1].newSize;
  const gaveNtfs = parts[2].size - p.partitions[2].newSize;
  assert.ok(Math.abs(gaveExt / gaveNtfs - (80 - 2) / (45 - 0.5)) < 0.2, `${gaveExt} vs ${gaveNtfs}`);
});

test('a disk too small even shrunk is refused with what it needs; no table, logical partitions refused', () => {
  const parts = [part(1, MiB, 512 * MiB, 'vfat', 10 * MiB), part(2, 513 * MiB, 100 * GiB, 'ext4', 60 * GiB)];
  assert.throws(
    () => planShrink(parts, 'gpt', 40 * GiB),
    (e: unknown) => e instanceof DevsnapError && e.code === 'BAD_TARGET' && /needs at least .*partition 2 \(ext4\) at least/.test(e.message),
  );
  assert.equal(minimumPartitionSize(part(1, 0, GiB, 'ext4', 0)), MARGIN_MIN);
  assert.equal(minimumPartitionSize(part(1, 0, GiB, 'swap')), GiB, 'what cannot shrink keeps its size');
  assert.equal(minimumPartitionSize(part(1, 0, GiB, 'ext4')), GiB, 'without a known use it keeps its size');
  assert.throws(() => planShrink(parts, 'none', 40 * GiB), /no partition table/);
  assert.throws(() => planShrink([part(1, MiB, GiB, 'ext4', MiB), part(5, 2 * GiB, GiB, 'ext4', MiB)], 'mbr', GiB), /logical partitions/);
});

test('FAT (the EFI partition) shrinks only when the rest shrunk does not make room, and an ESP keeps 100 MiB', () => {
  const esp = (size: number, used: number) => ({ ...part(1, MiB, size, 'vfat', used), type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B' });
  const roomy = planShrink([esp(2 * GiB, 10 * MiB), part(2, MiB + 2 * GiB, 10 * GiB, 'ext4', 5 * GiB)], 'gpt', 11 * GiB);
  assert.deepEqual(
    roomy.partitions.map((x) => x.how),
    ['keep', 'shrink'],
  );
  const tight = planShrink([esp(2 * GiB, 10 * MiB), part(2, MiB + 2 * GiB, 10 * GiB, 'ext4', 9 * GiB)], 'gpt', 10.5 * GiB);
  assert.deepEqual(
    tight.partitions.map((x) => x.how),
    ['shrink', 'shrink'],
  );
  assert.ok(tight.partitions[0].newSize >= 100 * MiB, 'an EFI system partition keeps at least 100 MiB');
});
