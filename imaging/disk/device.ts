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
import { spawnSync } from 'child_process';
import { childCommand } from './privilege';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';

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

/** Where the kernel's view is read from; tests point it at constructed trees. */
export interface SystemView {
  sys: string;
  mountinfo: string;
  swaps: string;
}

export const LIVE_SYSTEM: SystemView = { sys: '/sys', mountinfo: '/proc/self/mountinfo', swaps: '/proc/swaps' };

const major = (rdev: number) => Math.floor(rdev / 256) & 0xfff; // glibc's gnu_dev_major, low bits
const minor = (rdev: number) => (rdev & 0xff) | ((Math.floor(rdev / 4096)) & ~0xff);

/** "major:minor" of a device number, as /proc/self/mountinfo and /sys/dev/block name devices. */
export const devnoString = (dev: number): string => `${major(dev)}:${minor(dev)}`;

function readSys(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Undoes mountinfo's and /proc/swaps' octal escapes (\040 for a space, \134 for a backslash…). */
const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

interface MountEntry {
  /** The st_dev of the filesystem (btrfs and overlayfs give an anonymous 0:N here). */
  devno: string;
  mountpoint: string;
  readOnly: boolean;
  /** The mount source ("/dev/sda2", "overlay", …). */
  source: string;
  fstype: string;
}

export function readMounts(file = LIVE_SYSTEM.mountinfo): MountEntry[] {
  const text = readSys(file) ?? '';
  return text.split('\n').filter(Boolean).map((line) => {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    return { devno: f[2], mountpoint: unescapeOctal(f[4]), readOnly: f[5].split(',').includes('ro'), source: dash > 0 ? unescapeOctal(f[dash + 2] ?? '') : '', fstype: dash > 0 ? f[dash + 1] ?? '' : '' };
  });
}

/** The block devices a mount is on: its st_dev, and its source's device number when that is a device node (btrfs). */
function mountDevnos(m: MountEntry): string[] {
  const out = [m.devno];
  if (m.source.startsWith('/')) {
    try {
      const st = fs.statSync(m.source);
      if (st.isBlockDevice()) out.push(devnoString(st.rdev));
    } catch {
      /* not a node on this machine */
    }
  }
  return out;
}

interface BlockDev {
  name: string;
  devno: string;
  size: number;
  /** The whole disk of a partition, and the partition's first byte on it. */
  parent?: string;
  start: number;
  holders: string[];
  slaves: string[];
  /** A loop device's backing: a block device ("maj:min") or a regular file ("file:maj:min:ino", and its path). */
  loop?: { device?: string; file?: string; path: string; offset: number };
}

/** The kernel's identity of loop backing files (losetup asks the kernel; sysfs has the path only). */
function losetupBacking(): Map<string, { dev: string; ino: number }> {
  const out = new Map<string, { dev: string; ino: number }>();
  const c = childCommand('losetup', ['--json', '--list', '--output', 'NAME,BACK-INO,BACK-MAJ:MIN']);
  const r = spawnSync(c.file, c.args, { encoding: 'utf8', env: c.env });
  if (r.status !== 0 || !r.stdout) return out;
  try {
    for (const l of JSON.parse(r.stdout).loopdevices ?? []) {
      const ino = Number(l['back-ino']);
      const dev = String(l['back-maj:min'] ?? '').trim();
      if (typeof l.name === 'string' && Number.isSafeInteger(ino) && ino > 0 && /^\d+:\d+$/.test(dev)) out.set(path.basename(l.name), { dev, ino });
    }
  } catch {
    /* an older losetup: sysfs and stat below */
  }
  return out;
}

/** The block layer as sysfs shows it: every device, with partitions, holders, slaves and loop backings. */
export class BlockLayer {
  readonly byName = new Map<string, BlockDev>();
  readonly byDevno = new Map<string, BlockDev>();

  constructor(readonly view: SystemView = LIVE_SYSTEM) {
    const root = path.join(view.sys, 'class', 'block');
    const kernel = view.sys === LIVE_SYSTEM.sys ? losetupBacking() : new Map<string, { dev: string; ino: number }>();
    for (const name of list(root)) {
      const dir = path.join(root, name);
      const devno = readSys(path.join(dir, 'dev'));
      if (!devno) continue;
      const d: BlockDev = {
        name, devno, size: Number(readSys(path.join(dir, 'size')) ?? 0) * 512, start: 0,
        holders: list(path.join(dir, 'holders')), slaves: list(path.join(dir, 'slaves')),
      };
      if (readSys(path.join(dir, 'partition')) !== undefined) {
        try {
          d.parent = path.basename(path.dirname(fs.realpathSync(dir)));
        } catch {
          /* no parent: treated as a disk */
        }
        d.start = Number(readSys(path.join(dir, 'start')) ?? 0) * 512;
      }
      const backing = readSys(path.join(dir, 'loop', 'backing_file'));
      if (backing) d.loop = { ...this.backingOf(backing.replace(/ \(deleted\)$/, ''), kernel.get(name)), offset: Number(readSys(path.join(dir, 'loop', 'offset')) ?? 0) };
      this.byName.set(name, d);
      this.byDevno.set(devno, d);
    }
  }

  private backingOf(p: string, kernel?: { dev: string; ino: number }): { device?: string; file?: string; path: string } {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch {
      /* gone, or deleted while attached */
    }
    if (st?.isBlockDevice()) return { device: devnoString(st.rdev), path: p };
    if (kernel) return { file: `file:${kernel.dev}:${kernel.ino}`, path: p };
    return st ? { file: fileKey(st), path: p } : { path: p };
  }

  /**
   * The object a device's bytes finally live on, and where: a partition on its disk, a loop device
   * on its backing file (or on the device it is attached to), everything else on itself.
   */
  base(d: BlockDev, depth = 0): { obj: string; start: number; size: number } {
    const parent = d.parent ? this.byName.get(d.parent) : undefined;
    const lower = d.loop?.device ? this.byDevno.get(d.loop.device) : undefined;
    if (depth < 16 && parent) {
      const b = this.base(parent, depth + 1);
      return { obj: b.obj, start: b.start + d.start, size: d.size };
    }
    if (depth < 16 && lower) {
      const b = this.base(lower, depth + 1);
      return { obj: b.obj, start: b.start + (d.loop?.offset ?? 0), size: d.size };
    }
    if (d.loop?.file) return { obj: d.loop.file, start: d.loop.offset, size: d.size };
    return { obj: `dev:${d.devno}`, start: 0, size: d.size };
  }

  /** Every device whose bytes overlap [start, start+size) of `obj` (partitions, the disk itself, loops over it). */
  private overlapping(obj: string, start: number, size: number, paths: string[] = []): BlockDev[] {
    return [...this.byName.values()].filter((d) => {
      const b = this.base(d);
      const same = b.obj === obj || (d.loop && !d.loop.device && paths.includes(d.loop.path));
      return same && b.start < start + size && start < b.start + b.size;
    });
  }

  /**
   * Everything that sees a target's bytes: the devices over the same bytes (its disk, partitions,
   * overlapping loop devices, at any depth), and what is built on any of them (holders: LVM, LUKS,
   * RAID), and so on up. `target` is a device, or an image file (all of it: a restore rewrites it).
   */
  stackedOn(target: { devno: string } | { file: string; paths: string[] }): BlockDev[] {
    const found = new Map<string, BlockDev>();
    const add = (ds: BlockDev[]) => {
      for (const d of ds) {
        if (found.has(d.name)) continue;
        found.set(d.name, d);
        for (const h of d.holders) {
          const hd = this.byName.get(h);
          if (hd) add([hd, ...this.overlapping(`dev:${hd.devno}`, 0, Infinity)]);
        }
      }
    };
    if ('devno' in target) {
      // A device sysfs does not list (no /sys): at least its own mounts are found.
      const d = this.byDevno.get(target.devno) ?? { name: target.devno, devno: target.devno, size: 0, start: 0, holders: [], slaves: [] };
      const b = this.base(d);
      add([d, ...this.overlapping(b.obj, b.start, b.size)]);
    } else {
      add(this.overlapping(target.file, 0, Infinity, target.paths));
    }
    return [...found.values()];
  }

  /**
   * The devices the running system's root filesystem lives on, down to the disks: a partition's
   * disk, a holder's slaves (LVM on LUKS on a partition…), a loop device's backing device or the
   * device of the filesystem holding its backing file.
   */
  systemDevices(): Set<string> {
    const mounts = readMounts(this.view.mountinfo);
    const root = mounts.filter((m) => m.mountpoint === '/').pop();
    const out = new Set<string>();
    const down = (devno: string, depth: number): void => {
      if (out.has(devno) || depth > 32) return;
      out.add(devno);
      const d = this.byDevno.get(devno);
      if (!d) return;
      if (d.parent) {
        const p = this.byName.get(d.parent);
        if (p) down(p.devno, depth + 1);
      }
      for (const s of d.slaves) {
        const sd = this.byName.get(s);
        if (sd) down(sd.devno, depth + 1);
      }
      if (d.loop?.device) down(d.loop.device, depth + 1);
      else if (d.loop?.file) {
        // The backing file's filesystem, through its mount (btrfs: the mount's source device).
        const fsDev = d.loop.file.split(':').slice(1, 3).join(':');
        for (const m of mounts.filter((x) => x.devno === fsDev)) for (const n of mountDevnos(m)) down(n, depth + 1);
        down(fsDev, depth + 1);
      }
    };
    if (root) for (const n of mountDevnos(root)) down(n, 0);
    return out;
  }

  /** Whether a whole disk (or any device) holds the running system's root filesystem. */
  isSystemDevice(devno: string, system = this.systemDevices()): boolean {
    return system.has(devno);
  }
}

/** The identity of a regular file as BlockLayer.base names a loop device's backing file. */
export const fileKey = (st: fs.Stats) => `file:${devnoString(st.dev)}:${st.ino}`;

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
    throw new DevsnapError('BAD_TARGET', `${target} is in use by ${info.holders.join(', ')} (a device-mapper or RAID device built on it: an LVM volume, a LUKS mapping or an md array); restoring would destroy what they hold.`,
      'Deactivate them first (vgchange -an, cryptsetup close, mdadm --stop), then try again.');
  }
}

/**
 * Refuses a restore onto the repository itself: a file inside the repository folder (found by the
 * folder's device and inode among the target's real ancestors, so symlinks and bind mounts do not
 * hide it), a hard link to one of its files, or a device whose bytes live on such a file (a loop
 * device over a pack, at any depth).
 */
export function assertNotInRepository(target: string, repoDir: string, view: SystemView = LIVE_SYSTEM,
  consequence = 'restoring onto it would destroy the repository (and the snapshot being restored)'): void {
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
    const walk = (d: string, depth: number): boolean => list(d).some((n) => {
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
