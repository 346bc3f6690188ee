// What a source or target path is, and what stands on it: a block device (its size from sysfs) or a
// regular image file; every device stacked on it (partitions, device-mapper and md RAID holders —
// LVM, LUKS — and loop devices over the same file or device whose byte range overlaps it, at any
// depth); which of them are mounted or used as swap; and whether the running system lives on it
// (its root filesystem traced down through holders' slaves, partitions and loop backing files to
// the disks). One implementation for the CLI and the elevated helper, used to refuse dangerous
// restore targets and to warn about mounted sources.
//
// Everything is read from sysfs, /proc/self/mountinfo and /proc/swaps, whose locations are a
// parameter (`SystemView`): the device-mapper and md paths are exercised on constructed sysfs trees
// mirroring real layouts (test/unit/stacked-devices.test.ts), as this project's test machines have
// no device-mapper; loop devices are tested for real.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { BlockLayer, fileKey, type BlockDev } from './block-layer';
import { devnoString, list, LIVE_SYSTEM, mountDevnos, readMounts, readSys, unescapeOctal, type SystemView } from './sysfs';

// What moved to the modules above stays importable from here.
export { BlockLayer, fileKey } from './block-layer';
export { devnoString, LIVE_SYSTEM, readMounts, type SystemView } from './sysfs';

export interface DeviceInfo {
  path: string;
  kind: 'block' | 'file';
  size: number;
  /** "major:minor" of a block device. */
  devno?: string;
  /** Mounted filesystems (and swap) on the device or anything stacked on it, with the device they are on. */
  mounts: MountUse[];
  /** Active device-mapper or md devices built on it (e.g. "dm-0"): LVM volumes, LUKS mappings, RAID arrays. */
  holders: string[];
  /** The device (or the disk it is part of, or a device it holds) carries the running system's root filesystem. */
  isSystem: boolean;
}

export interface MountUse {
  mountpoint: string;
  readOnly: boolean;
  devno: string;
  device: string;
  /** The filesystem type from mountinfo ("ext4", "vfat", "swap" for a swap area…). */
  fstype?: string;
  /** Where the mounted device's bytes start on the inspected source, when they lie on it directly
   *  (a partition, or a loop device with an offset); absent when stacked through LVM, LUKS or RAID. */
  offset?: number;
}

/** The mounts a snapshot must pause: read-write filesystems (swap in use is scratch, whatever instant it is read at). */
export const writableMounts = (mounts: MountUse[]): MountUse[] => mounts.filter((m) => !m.readOnly && m.fstype !== 'swap' && !m.mountpoint.startsWith('[swap]'));

/** Mounts and swap areas on any of `devs`; with `layer` and `source` (the inspected object and its first byte), where each lies on it. */
function usesOf(devs: BlockDev[], view: SystemView, layer?: BlockLayer, source?: { obj: string; start: number }): DeviceInfo['mounts'] {
  const names = new Map(devs.map((d) => [d.devno, d.name]));
  const out: DeviceInfo['mounts'] = [];
  for (const m of readMounts(view.mountinfo)) {
    const hit = mountDevnos(m).find((n) => names.has(n));
    if (!hit) continue;
    const d = layer?.byDevno.get(hit);
    const b = d && layer!.base(d);
    const offset = b && source && b.obj === source.obj && b.start >= source.start ? b.start - source.start : undefined;
    out.push({ mountpoint: m.mountpoint, readOnly: m.readOnly, devno: hit, device: names.get(hit)!, fstype: m.fstype, ...(offset !== undefined ? { offset } : {}) });
  }
  // /proc/swaps: "Filename Type Size Used Priority"; a swap partition or file in use.
  for (const line of (readSys(view.swaps) ?? '').split('\n').slice(1)) {
    const file = unescapeOctal(line.split(/\s+/)[0] ?? '');
    if (!file.startsWith('/')) continue;
    try {
      const st = fs.statSync(file);
      const n = st.isBlockDevice() ? devnoString(st.rdev) : undefined;
      if (n && names.has(n)) out.push({ mountpoint: `[swap] ${file}`, readOnly: false, devno: n, device: names.get(n)! });
    } catch {
      /* not on this machine */
    }
  }
  return out;
}

/** The device-mapper and md devices among `devs` (those built on slaves), other than `self`. */
const holdersIn = (devs: BlockDev[], self?: string) => devs.filter((d) => d.slaves.length > 0 && d.devno !== self).map((d) => d.name);

/** What stands on a device: its mounts (through any stacking), its active holders, whether it carries the system. */
export function deviceUsage(devno: string, view: SystemView = LIVE_SYSTEM, layer = new BlockLayer(view)): Pick<DeviceInfo, 'mounts' | 'holders' | 'isSystem'> {
  const stacked = layer.stackedOn({ devno });
  const system = layer.systemDevices();
  const d = layer.byDevno.get(devno);
  // The disk a partition (or a loop over a disk) is part of: a restore onto the EFI partition of the
  // running system's disk is refused as well.
  const disk = d ? layer.base(d).obj.replace(/^dev:/, '') : devno;
  return {
    mounts: usesOf(stacked, view, layer, d ? layer.base(d) : undefined),
    holders: holdersIn(stacked, devno),
    isSystem: system.has(disk) || stacked.some((s) => system.has(s.devno)),
  };
}

export async function inspectPath(p: string, what: 'source' | 'target', view: SystemView = LIVE_SYSTEM): Promise<DeviceInfo> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(p);
  } catch (err) {
    throw toDevsnapError(err, `The ${what} ${p}`);
  }
  if (st.isBlockDevice()) {
    const devno = devnoString(st.rdev);
    const sectors = Number(readSys(path.join(view.sys, 'dev', 'block', devno, 'size')) ?? 'NaN');
    if (!Number.isFinite(sectors)) throw new DevsnapError('BAD_SOURCE', `Cannot tell the size of ${p}.`, 'Is the device still attached?');
    return { path: p, kind: 'block', size: sectors * 512, devno, ...deviceUsage(devno, view) };
  }
  if (st.isFile()) {
    const layer = new BlockLayer(view);
    let paths: string[] = [];
    try {
      paths = [fs.realpathSync(p)];
    } catch {
      /* stat worked: keep the inode match */
    }
    const stacked = layer.stackedOn({ file: fileKey(st), paths });
    return { path: p, kind: 'file', size: st.size, mounts: usesOf(stacked, view, layer, { obj: fileKey(st), start: 0 }), holders: holdersIn(stacked), isSystem: false };
  }
  throw new DevsnapError(what === 'source' ? 'BAD_SOURCE' : 'BAD_TARGET', `${p} is neither a block device nor a disk image file.`, 'Give a device such as /dev/sdb or a raw disk image file.');
}

/** Refuses a restore target that is in use: mounted (through any stacking), used as swap, or under an active LVM/LUKS/RAID device. */
export function assertNotInUse(info: DeviceInfo, target: string): void {
  if (info.mounts.length) {
    const via = info.mounts.map((m) => `${m.mountpoint}${info.devno !== m.devno ? ` (through ${m.device})` : ''}`);
    throw new DevsnapError('BAD_TARGET', `${target} has mounted filesystems (${via.join(', ')}); restoring would corrupt them.`, 'Unmount them first (umount; swapoff for swap), then try again.');
  }
  if (info.holders.length) {
    throw new DevsnapError(
      'BAD_TARGET',
      `${target} is in use by ${info.holders.join(', ')} (a device-mapper or RAID device built on it: an LVM volume, a LUKS mapping or an md array); restoring would destroy what they hold.`,
      'Deactivate them first (vgchange -an, cryptsetup close, mdadm --stop), then try again.',
    );
  }
}

/**
 * Refuses a restore onto the repository itself: a file inside the repository folder (found by the
 * folder's device and inode among the target's real ancestors, so symlinks and bind mounts do not
 * hide it), a hard link to one of its files, or a device whose bytes live on such a file (a loop
 * device over a pack, at any depth).
 */
export function assertNotInRepository(
  target: string,
  repoDir: string,
  view: SystemView = LIVE_SYSTEM,
  consequence = 'restoring onto it would destroy the repository (and the snapshot being restored)',
): void {
  let repoSt: fs.Stats;
  try {
    repoSt = fs.statSync(repoDir);
  } catch {
    return; // no repository folder: nothing to protect
  }
  const refuse = (what: string) => new DevsnapError('BAD_TARGET', `${target} is ${what} inside the repository ${repoDir}; ${consequence}.`, 'Choose a target outside the repository.');
  /** Whether `file` (a real path) lies in the repository folder. */
  const inside = (file: string): boolean => {
    for (let d = path.dirname(file); ; d = path.dirname(d)) {
      const st = fs.statSync(d, { throwIfNoEntry: false });
      if (st && st.dev === repoSt.dev && st.ino === repoSt.ino) return true;
      if (d === path.dirname(d)) return false;
    }
  };
  /** Whether a file of the repository has the inode `st` (a hard link elsewhere). */
  const linked = (st: fs.Stats): boolean => {
    if (st.nlink < 2 || st.dev !== repoSt.dev) return false;
    const walk = (d: string, depth: number): boolean =>
      list(d).some((n) => {
        const e = fs.lstatSync(path.join(d, n), { throwIfNoEntry: false });
        return !!e && ((e.isFile() && e.ino === st.ino) || (e.isDirectory() && depth < 3 && walk(path.join(d, n), depth + 1)));
      });
    return walk(repoDir, 0);
  };
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    // A new image file: where it would be created.
    let dir: string;
    try {
      dir = fs.realpathSync(path.dirname(path.resolve(target)));
    } catch {
      return;
    }
    if (inside(path.join(dir, path.basename(target)))) throw refuse('a new file');
    return;
  }
  const st = fs.statSync(real);
  if (st.isFile()) {
    if (inside(real) || linked(st)) throw refuse('a file');
    return;
  }
  if (!st.isBlockDevice()) return;
  // A device whose bytes are a file of the repository: a loop device over it (or over such a loop…).
  const layer = new BlockLayer(view);
  const d = layer.byDevno.get(devnoString(st.rdev));
  if (!d) return;
  const obj = layer.base(d).obj;
  const backing = [...layer.byName.values()].find((x) => x.loop?.file && layer.base(x).obj === obj)?.loop;
  if (!backing?.file) return;
  const ino = backing.file.split(':')[3];
  let fst: fs.Stats | undefined;
  try {
    fst = fs.statSync(backing.path);
  } catch {
    return;
  }
  // The kernel keeps the path the loop device was attached with: use it only while it still names that file
  // (by inode: btrfs reports another device number to stat than the kernel's).
  if (fst.ino !== Number(ino)) return;
  if (inside(fs.realpathSync(backing.path)) || linked(fst)) throw refuse(`a loop device backed by ${backing.path}, a file`);
}
