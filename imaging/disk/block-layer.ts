// The block layer as sysfs shows it (BlockLayer): every device with its partitions, holders, slaves and
// loop backings; what stands on a device's bytes, and what the running system lives on.
import { spawnSync } from 'child_process';
import { childCommand } from './privilege';
import * as fs from 'fs';
import * as path from 'path';
import { devnoString, list, LIVE_SYSTEM, mountDevnos, readMounts, readSys, type SystemView } from './sysfs';

export interface BlockDev {
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
        name,
        devno,
        size: Number(readSys(path.join(dir, 'size')) ?? 0) * 512,
        start: 0,
        holders: list(path.join(dir, 'holders')),
        slaves: list(path.join(dir, 'slaves')),
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
