// Unit tests of extension/drives.ts: which disks the pickers offer, the drives a repository can go
// on, the disk a folder is on, and an unplugged backup drive told from a new folder. The last test
// uses a real loop device mounted here (root), listed by the engine and found through /proc.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { DiskInfo } from '../../../imaging/protocol';
import { listDisks } from '../../../imaging/disk/disks';
import {
  backupDriveMissing,
  defaultSourceDisk,
  diskOfPath,
  driveDescription,
  hiddenVirtualCount,
  offeredDisks,
  parseFstab,
  parseMountinfo,
  PlaceView,
  repositoryDrives,
  virtualText,
} from '../../../extension/drives';
import { withLoop, withMount } from '../../helpers/disks';

const GB = 1e9;
const disk = (p: string, o: Partial<DiskInfo> = {}): DiskInfo => ({ path: p, kind: 'disk', size: 500 * GB, isSystem: false, mountpoints: [], partitions: [], ...o });
const system = disk('/dev/nvme0n1', {
  isSystem: true,
  mountpoints: ['/', '/boot/efi'],
  partitions: [
    { index: 1, start: 1 << 20, size: 1 << 29, type: 'ef00', fs: 'vfat', path: '/dev/nvme0n1p1', mountpoints: ['/boot/efi'] },
    { index: 2, start: 1 << 30, size: 400 * GB, type: '8300', fs: 'ext4', path: '/dev/nvme0n1p2', mountpoints: ['/'] },
  ],
});
const usb = disk('/dev/sdb', {
  model: 'Samsung T7',
  mountpoints: ['/media/me/backup'],
  partitions: [{ index: 1, start: 1 << 20, size: 500 * GB, type: '0700', fs: 'ext4', label: 'backup', path: '/dev/sdb1', mountpoints: ['/media/me/backup'] }],
});
const snap = disk('/dev/loop3', { kind: 'loop', size: 60e6, mountpoints: ['/snap/core/1'], virtual: { kind: 'loop', backingFile: '/var/lib/snapd/snaps/core_1.snap', fs: 'squashfs' } });
const zram = disk('/dev/zram0', { size: 8 * GB, virtual: { kind: 'zram' } });

const MOUNTINFO = [
  '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw',
  '23 22 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw',
  '40 22 7:3 / /snap/core/1 ro,nodev,relatime shared:20 - squashfs /dev/loop3 ro',
  '41 22 8:17 / /media/me/backup rw,nosuid,nodev shared:30 - ext4 /dev/sdb1 rw',
  '42 22 0:50 / /mnt/nas rw,relatime shared:31 - nfs4 nas.local:/export/backup rw',
  '43 22 0:51 / /mnt/with\\040space rw shared:32 - tmpfs tmpfs rw',
].join('\n');

describe('virtual devices in pickers', () => {
  it('leaves loop, zram and ram devices out unless asked, or unless it is the configured one', () => {
    const all = [system, usb, snap, zram];
    assert.deepEqual(
      offeredDisks(all, false).map((d) => d.path),
      ['/dev/nvme0n1', '/dev/sdb'],
    );
    assert.equal(hiddenVirtualCount(all, offeredDisks(all, false)), 2);
    assert.deepEqual(
      offeredDisks(all, true).map((d) => d.path),
      all.map((d) => d.path),
    );
    assert.deepEqual(
      offeredDisks(all, false, ['/dev/loop3']).map((d) => d.path),
      ['/dev/nvme0n1', '/dev/sdb', '/dev/loop3'],
    );
    assert.equal(virtualText(snap), 'loop device over /var/lib/snapd/snaps/core_1.snap (squashfs)');
    assert.equal(virtualText(zram), 'compressed RAM (zram)');
    assert.equal(virtualText(usb), undefined);
  });
});

describe('drives for a repository', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  it('reads mountinfo (escapes, read-only flag, source, type)', () => {
    const { devno: _devno, ...m5 } = mounts[5];
    assert.deepEqual(m5, { mountpoint: '/mnt/with space', readOnly: false, source: 'tmpfs', fstype: 'tmpfs' });
    assert.equal(mounts[2].readOnly, true);
    assert.equal(mounts[4].source, 'nas.local:/export/backup');
  });

  it('offers writable filesystems of other drives and network shares, most free space first, with their space', () => {
    const space = (p: string) => (p === '/media/me/backup' ? { free: 120 * GB, total: 500 * GB } : p === '/mnt/nas' ? { free: 2000 * GB, total: 4000 * GB } : undefined);
    const drives = repositoryDrives([system, usb, snap, zram], mounts, false, space);
    assert.deepEqual(
      drives.map((d) => [d.mountpoint, d.device, d.freeBytes]),
      [
        ['/mnt/nas', 'nas.local:/export/backup', 2000 * GB],
        ['/media/me/backup', '/dev/sdb1', 120 * GB],
      ],
    );
    assert.equal(driveDescription(drives[1]), '120 GB free of 500 GB · ext4 “backup” · /dev/sdb1 · Samsung T7');
    assert.equal(driveDescription(drives[0]), '2 TB free of 4 TB · nfs4 · network share nas.local:/export/backup');
    // A read-only squashfs is never offered, not even with virtual devices shown.
    assert.ok(!repositoryDrives([system, usb, snap], mounts, true, space).some((d) => d.mountpoint === '/snap/core/1'));
  });

  it('finds the disk a folder is on, and the disk snapshotted by default', () => {
    const all = [system, usb, snap];
    assert.equal(diskOfPath('/media/me/backup/devsnap/not/yet', all, mounts)?.path, '/dev/sdb');
    assert.equal(diskOfPath('/home/me/snapshots', all, mounts)?.path, '/dev/nvme0n1');
    assert.equal(diskOfPath('/mnt/nas/devsnap', all, mounts), undefined);
    // A bucket is on no disk (as a path it would resolve under the current folder, on the system drive).
    assert.equal(diskOfPath('s3:https://s3.example.com/team/workstations', all, mounts), undefined);
    assert.equal(defaultSourceDisk(all, undefined)?.path, '/dev/nvme0n1');
    assert.equal(defaultSourceDisk(all, '/dev/sdb1')?.path, '/dev/sdb');
    assert.equal(defaultSourceDisk(all, '/home/me/disk.img'), undefined);
  });
});

describe('an unplugged backup drive, told from a new folder', () => {
  const view = (o: Partial<PlaceView> & { dirs?: Record<string, number> }): PlaceView => ({
    exists: (p) => p in (o.dirs ?? {}),
    hasEntries: (p) => (o.dirs?.[p] ?? 0) > 0,
    mountpoints: o.mountpoints ?? new Set(['/']),
    fstab: o.fstab ?? [],
    user: o.user ?? 'me',
  });
  it('a drive under /media or /mnt with nothing mounted is not connected', () => {
    assert.equal(backupDriveMissing('/media/usb/devsnap', view({})), '/media/usb');
    assert.equal(backupDriveMissing('/media/me/T7/snapshots/devsnap', view({ dirs: { '/media/me': 0 } })), '/media/me/T7');
    assert.equal(backupDriveMissing('/run/media/me/T7/devsnap', view({})), '/run/media/me/T7');
    assert.equal(backupDriveMissing('/mnt/backup/devsnap', view({ dirs: { '/mnt/backup': 0 } })), '/mnt/backup', 'an empty mount point left behind');
  });
  it('a new folder on a connected drive, or in a plain folder, or anywhere else, is new', () => {
    assert.equal(backupDriveMissing('/media/usb/devsnap', view({ mountpoints: new Set(['/', '/media/usb']) })), undefined);
    assert.equal(backupDriveMissing('/mnt/data/devsnap', view({ dirs: { '/mnt/data': 3 } })), undefined);
    assert.equal(backupDriveMissing('/home/me/devsnap', view({})), undefined);
    assert.equal(backupDriveMissing('/media/usb/devsnap', view({ dirs: { '/media/usb/devsnap': 1 } })), undefined, 'it exists');
  });
  it('an /etc/fstab mount point that is not mounted is an unplugged drive, wherever it is', () => {
    const fstab = parseFstab('# comment\nUUID=1 / ext4 defaults 0 1\nUUID=2 none swap sw 0 0\nUUID=3 /srv/backup ext4 noauto,nofail 0 2\n');
    assert.deepEqual(fstab, ['/srv/backup']);
    assert.equal(backupDriveMissing('/srv/backup/devsnap', view({ fstab, dirs: { '/srv/backup': 0 } })), '/srv/backup');
    assert.equal(backupDriveMissing('/srv/backup/devsnap', view({ fstab, mountpoints: new Set(['/', '/srv/backup']) })), undefined);
  });
});

describe('on this machine', () => {
  it(
    'a mounted loop device is a drive for the repository only with virtual devices shown; a folder on it is on it',
    { skip: process.getuid?.() !== 0 && 'needs root for losetup and mount' },
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-drives-'));
      try {
        const img = path.join(dir, 'backup.img');
        fs.writeFileSync(img, '');
        fs.truncateSync(img, 16 << 20);
        const r = spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'backup', img], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        await withLoop(img, {}, async (dev) => {
          await withMount(dev, 'ext', {}, async (mnt) => {
            const disks = await listDisks();
            const mounts = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
            assert.ok(!repositoryDrives(disks, mounts, false).some((d) => d.mountpoint === mnt), 'hidden as a virtual device');
            const drive = repositoryDrives(disks, mounts, true).find((d) => d.mountpoint === mnt);
            assert.ok(drive, `${mnt} is offered with virtual devices shown`);
            assert.equal(drive.device, dev);
            assert.ok(drive.freeBytes! > 0 && drive.freeBytes! < 16 << 20, `free ${drive.freeBytes}`);
            assert.equal(diskOfPath(path.join(mnt, 'devsnap', 'new'), disks, mounts)?.path, dev);
            assert.equal(defaultSourceDisk(disks, dev)?.path, dev);
            assert.notEqual(diskOfPath(dir, disks, mounts)?.path, dev);
          });
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
