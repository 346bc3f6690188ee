// Mounted targets and the running system through stacked devices (issue 10, items 5 and 6), in the
// CLI and the elevated helper alike (one shared function, imaging/device.ts):
// - for real, with loop devices: a whole-disk loop device whose partition is mounted through a
//   second loop device at an offset of the same file; a loop device on a loop device; a loop over
//   another range of the file (allowed); the image file itself, also by a hard link (by inode);
// - restores onto the repository itself (a pack, config.json, a new file inside it, a loop device
//   over a pack) are refused;
// - device-mapper and md RAID on constructed sysfs trees mirroring Ubuntu's LUKS + LVM install and
//   a RAID 1 (this machine has no device-mapper: those code paths are untested on a real kernel).
import { makeSysfs as buildSysfs, type SysDev } from '../../helpers/sysfs';
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlockLayer, deviceUsage, inspectPath, SystemView } from '../../../imaging/disk/device';
import { attachLoop, cleanup, isRoot, sh, tmpDir, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { launchHelper } from '../helper/helper-harness';

after(cleanup);
const MiB = 1 << 20;

/** A sysfs tree with the given devices, and where device.ts reads mounts and swaps. */
function makeSysfs(root: string, devs: SysDev[]): SystemView {
  return { sys: buildSysfs(root, devs), mountinfo: path.join(root, 'mountinfo'), swaps: path.join(root, 'swaps') };
}

/** One mountinfo line, as the kernel writes it. */
const mountLine = (id: number, devno: string, mountpoint: string, fstype: string, source: string) => `${id} 1 ${devno} / ${mountpoint} rw,relatime shared:1 - ${fstype} ${source} rw\n`;

describe('stacked devices on constructed sysfs trees (device-mapper and md RAID: untested on a real kernel)', () => {
  let dir: string;
  let view: SystemView;
  before(() => {
    dir = tmpDir('devsnap-sysfs-');
    // Ubuntu's encrypted install: nvme0n1p1 EFI, p2 /boot, p3 LUKS (dm-0) holding the LVM volume
    // group vgubuntu: root (dm-1) and swap_1 (dm-2). A data RAID 1 (md0) over sda1 and sdb1 on /srv.
    // sdc: an unrelated, unused disk.
    view = makeSysfs(dir, [
      { name: 'nvme0n1', devno: '259:0', sectors: 1000215216 },
      { name: 'nvme0n1p1', devno: '259:1', sectors: 1048576, parent: 'nvme0n1', start: 2048 },
      { name: 'nvme0n1p2', devno: '259:2', sectors: 3670016, parent: 'nvme0n1', start: 1050624 },
      { name: 'nvme0n1p3', devno: '259:3', sectors: 995491840, parent: 'nvme0n1', start: 4720640 },
      { name: 'dm-0', devno: '253:0', sectors: 995458048, slaves: ['nvme0n1p3'], virtual: true },
      { name: 'dm-1', devno: '253:1', sectors: 993263616, slaves: ['dm-0'], virtual: true },
      { name: 'dm-2', devno: '253:2', sectors: 2097152, slaves: ['dm-0'], virtual: true },
      { name: 'sda', devno: '8:0', sectors: 2097152 },
      { name: 'sda1', devno: '8:1', sectors: 2095104, parent: 'sda', start: 2048 },
      { name: 'sdb', devno: '8:16', sectors: 2097152 },
      { name: 'sdb1', devno: '8:17', sectors: 2095104, parent: 'sdb', start: 2048 },
      { name: 'md0', devno: '9:0', sectors: 2093056, slaves: ['sda1', 'sdb1'], virtual: true },
      { name: 'sdc', devno: '8:32', sectors: 2097152 },
    ]);
    fs.writeFileSync(
      view.mountinfo,
      mountLine(26, '253:1', '/', 'ext4', '/dev/mapper/vgubuntu-root') +
        mountLine(30, '259:2', '/boot', 'ext4', '/dev/nvme0n1p2') +
        mountLine(31, '259:1', '/boot/efi', 'vfat', '/dev/nvme0n1p1') +
        mountLine(32, '9:0', '/srv/my\\040data', 'ext4', '/dev/md0'),
    );
    fs.writeFileSync(view.swaps, 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n');
  });

  it('traces the root on LVM on LUKS down to its disk: the disk, every partition and mapping on it is the running system', () => {
    const layer = new BlockLayer(view);
    assert.deepEqual([...layer.systemDevices()].sort(), ['253:0', '253:1', '259:0', '259:3']);
    const disk = deviceUsage('259:0', view, layer);
    assert.equal(disk.isSystem, true);
    assert.deepEqual(disk.holders.sort(), ['dm-0', 'dm-1', 'dm-2']);
    assert.deepEqual(disk.mounts.map((m) => `${m.mountpoint}@${m.device}`).sort(), ['/@dm-1', '/boot/efi@nvme0n1p1', '/boot@nvme0n1p2']);
    // Its EFI partition: part of the running system's disk (and mounted).
    const efi = deviceUsage('259:1', view, layer);
    assert.equal(efi.isSystem, true);
    assert.deepEqual(
      efi.mounts.map((m) => m.mountpoint),
      ['/boot/efi'],
    );
    assert.deepEqual(efi.holders, []);
    // The LUKS partition: its mapping and the volumes in it.
    const luks = deviceUsage('259:3', view, layer);
    assert.equal(luks.isSystem, true);
    assert.deepEqual(luks.holders.sort(), ['dm-0', 'dm-1', 'dm-2']);
  });

  it('sees a filesystem mounted through md RAID on each member disk, and nothing on an unrelated disk', () => {
    const layer = new BlockLayer(view);
    for (const devno of ['8:0', '8:1', '8:16']) {
      const u = deviceUsage(devno, view, layer);
      assert.equal(u.isSystem, false, devno);
      assert.deepEqual(u.holders, ['md0'], devno);
      assert.deepEqual(
        u.mounts.map((m) => `${m.mountpoint}@${m.device}`),
        ['/srv/my data@md0'],
        devno,
      );
    }
    assert.deepEqual(deviceUsage('8:32', view, layer), { mounts: [], holders: [], isSystem: false });
  });

  it('a system whose root is on md RAID: both member disks are the running system', () => {
    const v2 = { ...view, mountinfo: path.join(dir, 'mountinfo-raid-root') };
    fs.writeFileSync(v2.mountinfo, mountLine(26, '9:0', '/', 'ext4', '/dev/md0'));
    const layer = new BlockLayer(v2);
    assert.deepEqual([...layer.systemDevices()].sort(), ['8:0', '8:1', '8:16', '8:17', '9:0']);
    assert.equal(deviceUsage('8:16', v2, layer).isSystem, true);
    assert.equal(deviceUsage('259:0', v2, layer).isSystem, false);
  });
});

describe('stacked loop devices, for real (CLI and helper)', { skip: isRoot ? false : 'needs root (loop devices)' }, () => {
  let work: string;
  let repo: string;
  let snap: string;
  before(() => {
    work = tmpDir('devsnap-stacked-');
    repo = path.join(work, 'repo');
    const src = path.join(work, 'src.img');
    fs.writeFileSync(src, crypto.randomBytes(2 * MiB));
    const s = devsnap(['snapshot', src, '--repo', repo, '--json']);
    assert.equal(s.status, 0, s.stderr);
    snap = s.json.id;
  });

  /** `devsnap restore --dry-run` onto target: the error (or null when it would go ahead). */
  const cliRestore = (target: string): { code: string; message: string } | null => {
    const r = devsnap(['restore', snap, target, '--dry-run', '--repo', repo, '--json']);
    if (r.status === 0) return null;
    assert.ok(r.json?.error, `${r.stdout} ${r.stderr}`);
    return r.json.error;
  };

  it('a whole-disk loop device whose partition is mounted through an offset loop device is refused; another range is not', async () => {
    const img = path.join(work, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 40 * MiB);
    sh('sfdisk', ['-q', img], { input: 'label: dos\nstart=2048, size=32768, type=83\nstart=40960, size=20480, type=83\n' });
    const whole = attachLoop(img);
    const part1 = attachLoop(img, { offset: MiB, sizeLimit: 16 * MiB });
    sh('mkfs.ext4', ['-q', part1]);
    const part2 = attachLoop(img, { offset: 20 * MiB, sizeLimit: 10 * MiB });
    const link = path.join(work, 'disk-hardlink.img');
    fs.linkSync(img, link);
    const h = await launchHelper();
    try {
      await withMount(part1, 'ext', {}, async (mnt) => {
        const info = await inspectPath(whole, 'target');
        assert.deepEqual(
          info.mounts.map((m) => [m.mountpoint, m.device]),
          [[mnt, path.basename(part1)]],
        );
        for (const target of [whole, img, link]) {
          const e = cliRestore(target);
          assert.equal(e?.code, 'BAD_TARGET', `${target}: ${JSON.stringify(e)}`);
          assert.match(e!.message, new RegExp(`has mounted filesystems \\(${mnt} \\(through ${path.basename(part1)}\\)\\)`));
        }
        // The helper, through the same check.
        const m = await h.call('restore', { repo, snapshot: snap, target: whole, dryRun: true, confirmed: true });
        assert.equal(m.error?.code, 'BAD_TARGET', JSON.stringify(m));
        assert.match(m.error.message, /mounted filesystems .*through/);
        // The second partition's range does not overlap the mounted one.
        assert.equal(cliRestore(part2), null);
        const ok = await h.call('restore', { repo, snapshot: snap, target: part2, dryRun: true, confirmed: true });
        assert.equal(ok.type, 'result', JSON.stringify(ok));
      });
      // Unmounted: the whole disk may be restored onto.
      assert.equal(cliRestore(whole), null);
    } finally {
      await h.close();
    }
  });

  it('a loop device on a loop device: a filesystem mounted on the upper one protects the lower one and its file', async () => {
    const img = path.join(work, 'lower.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 24 * MiB);
    const lower = attachLoop(img);
    const upper = attachLoop(lower, { offset: 4 * MiB });
    sh('mkfs.ext4', ['-q', upper]);
    await withMount(upper, 'ext', { readOnly: true }, async (mnt) => {
      for (const target of [lower, img]) {
        const e = cliRestore(target);
        assert.equal(e?.code, 'BAD_TARGET', `${target}: ${JSON.stringify(e)}`);
        assert.match(e!.message, new RegExp(`${mnt} \\(through ${path.basename(upper)}\\)`));
      }
    });
  });

  it('restoring onto the repository itself is refused: a pack, config.json, a new file in it, a loop device over a pack', async () => {
    const packDir = path.join(repo, 'data', fs.readdirSync(path.join(repo, 'data'))[0]);
    const pack = path.join(packDir, fs.readdirSync(packDir)[0]);
    const viaLink = path.join(work, 'repo-link');
    fs.symlinkSync(repo, viaLink);
    const h = await launchHelper();
    try {
      for (const target of [pack, path.join(repo, 'config.json'), path.join(repo, 'snapshots', 'new.img'), path.join(viaLink, 'config.json')]) {
        const e = cliRestore(target);
        assert.equal(e?.code, 'BAD_TARGET', `${target}: ${JSON.stringify(e)}`);
        assert.match(e!.message, /inside the repository .*would destroy the repository/);
      }
      const loop = attachLoop(pack);
      let e = cliRestore(loop);
      assert.equal(e?.code, 'BAD_TARGET', JSON.stringify(e));
      assert.match(e!.message, /a loop device backed by .* inside the repository/);
      // Also a hard link to a pack outside the repository.
      const hard = path.join(work, 'pack-link');
      fs.linkSync(pack, hard);
      e = cliRestore(hard);
      assert.equal(e?.code, 'BAD_TARGET', JSON.stringify(e));
      for (const target of [pack, loop]) {
        const m = await h.call('restore', { repo, snapshot: snap, target, dryRun: true, confirmed: true });
        assert.equal(m.error?.code, 'BAD_TARGET', JSON.stringify(m));
        assert.match(m.error.message, /inside the repository/);
      }
      assert.equal(devsnap(['check', '--repo', repo, '--json']).status, 0);
    } finally {
      await h.close();
    }
  });
});
