// What `devsnap recover` offers and proposes: disks in use, running the system, read-only or virtual
// are never offered (with the reason said); the likeliest pair is the same model and size, then a
// verified snapshot before a newer unverified one; too-small disks and damaged snapshots are out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DiskInfo, ListedSnapshot } from '../../../imaging/protocol';
import { nextSteps, recoverChoices, recoverTargets } from '../../../imaging/recovery/recover-plan';

const GB = 1e9;
const disk = (p: string, o: Partial<DiskInfo> = {}): DiskInfo => ({
  path: p,
  kind: 'disk',
  size: 512 * GB,
  model: 'Samsung SSD 980',
  table: 'gpt',
  isSystem: false,
  mountpoints: [],
  partitions: [],
  ...o,
});
const snap = (id: string, o: Partial<ListedSnapshot> = {}): ListedSnapshot =>
  ({
    id,
    label: id,
    created: '2026-11-20T10:00:00Z',
    host: 'ws',
    source: { path: '/dev/nvme0n1', size: 512 * GB, model: 'Samsung SSD 980', table: 'gpt' },
    consistency: 'frozen-two-pass',
    pinned: false,
    state: 'not-verified',
    stats: {},
    partitions: [
      { index: 1, start: 1 << 20, size: 1 << 29, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', fs: 'vfat' },
      { index: 2, start: (1 << 29) + (1 << 20), size: 500 * GB, type: 'x', fs: 'ext4' },
    ],
    warningCount: 0,
    ...o,
  }) as ListedSnapshot;

test('disks in use, running the system, read-only or virtual are not offered, each with its reason', () => {
  const t = recoverTargets(
    [
      disk('/dev/sda', { isSystem: true }),
      disk('/dev/sdb', { partitions: [{ index: 1, start: 0, size: GB, type: 'x', mountpoints: ['/media/ubuntu/BACKUP'] }] }),
      disk('/dev/sdc', { mountpoints: ['/cdrom'] }),
      disk('/dev/sdd', { readOnly: true }),
      disk('/dev/loop3', { kind: 'loop', virtual: { kind: 'loop' } as DiskInfo['virtual'] }),
      disk('/dev/nvme0n1'),
      disk('/work/disk.img', { kind: 'file' }),
    ],
    '/media/ubuntu/BACKUP/devsnap',
  );
  assert.deepEqual(
    t.offered.map((d) => d.path),
    ['/dev/nvme0n1'],
  );
  assert.deepEqual(
    t.refused.map((r) => `${r.disk.path}: ${r.why}`),
    [
      '/dev/sda: it runs the system you are using now',
      '/dev/sdb: it holds the snapshots (mounted at /media/ubuntu/BACKUP)',
      '/dev/sdc: it is in use (mounted at /cdrom)',
      '/dev/sdd: it is read-only',
      '/dev/loop3: it is a virtual device (loop)',
    ],
  );
});

test('the likeliest pair: same model and size, a verified snapshot before a newer one; too small and damaged left out', () => {
  const older = snap('older', { state: 'verified', created: '2026-11-19T10:00:00Z' });
  const newer = snap('newer', { created: '2026-11-21T10:00:00Z' });
  const broken = snap('broken', { state: 'damaged', created: '2026-11-22T10:00:00Z' });
  const same = disk('/dev/nvme0n1');
  const otherModel = disk('/dev/sdb', { model: 'WD Blue' });
  const bigger = disk('/dev/sdc', { size: 1000 * GB, model: 'Crucial' });
  const small = disk('/dev/sdd', { size: 256 * GB }); // the snapshot's partitions say nothing of their use: they cannot shrink
  const c = recoverChoices([older, newer, broken], [small, bigger, otherModel, same]);
  assert.deepEqual(
    c.map((x) => `${x.snapshot.id}→${x.disk.path}`),
    ['older→/dev/nvme0n1', 'newer→/dev/nvme0n1', 'older→/dev/sdb', 'newer→/dev/sdb', 'older→/dev/sdc', 'newer→/dev/sdc'],
  );
  assert.equal(c[0].why, 'same model and size as the disk it was taken of');
  assert.equal(c[2].why, 'same size as the disk it was taken of');
  assert.match(c[4].why, /^larger than the disk it was taken of/);
  // A smaller disk, when the data fits once shrunk: offered last.
  const roomy = snap('roomy', {
    source: { path: '/dev/nvme0n1', size: 512 * GB, table: 'gpt' },
    partitions: [{ index: 1, start: 1 << 20, size: 500 * GB, type: 'x', fs: 'ext4', usedBytes: 50 * GB }],
  });
  const c2 = recoverChoices([roomy], [small, bigger]);
  assert.deepEqual(
    c2.map((x) => x.disk.path),
    ['/dev/sdc', '/dev/sdd'],
  );
  assert.match(c2[1].why, /^smaller than the disk it was taken of .*shrunk to fit/);
});

test('the next steps name the EFI partition for efibootmgr when the snapshot has one', () => {
  assert.match(nextSteps(snap('s'), '/dev/nvme0n1').join('\n'), /efibootmgr --create --disk \/dev\/nvme0n1 --part 1 /);
  assert.doesNotMatch(nextSteps(snap('s', { partitions: [] }), '/dev/sda').join('\n'), /efibootmgr/);
});
