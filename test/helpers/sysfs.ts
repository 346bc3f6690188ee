// Constructed sysfs trees, as the kernel lays them out, for the tests of what device.ts and the LVM
// decision read from /sys (device-mapper, md RAID and LVM cannot run on the test machines).
import * as fs from 'fs';
import * as path from 'path';

export interface SysDev {
  name: string;
  devno: string;
  sectors: number;
  /** The disk a partition is part of (listed before it). */
  parent?: string;
  /** A partition's start, in sectors. */
  start?: number;
  /** Devices this one is built on (its slaves; they get it as a holder). */
  slaves?: string[];
  /** Under devices/virtual/block (dm, md, loop), not a PCI path. */
  virtual?: boolean;
  /** A device-mapper device's dm/uuid and dm/name. */
  dm?: { uuid: string; name: string };
}

/**
 * Writes `root`/sys with the devices (dev, size, partition, start, holders/, slaves/, dm/), linked from
 * class/block and dev/block, and from block/ for whole devices when `blockLinks`. Returns the sys path.
 */
export function makeSysfs(root: string, devs: SysDev[], opts: { blockLinks?: boolean } = {}): string {
  const sys = path.join(root, 'sys');
  const dirOf = new Map<string, string>();
  for (const d of devs) {
    const dir = d.parent ? path.join(dirOf.get(d.parent)!, d.name) : d.virtual || d.dm ? path.join(sys, 'devices/virtual/block', d.name) : path.join(sys, 'devices/pci0000:00/0000:00:04.0', d.name);
    dirOf.set(d.name, dir);
    fs.mkdirSync(path.join(dir, 'holders'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'slaves'));
    fs.writeFileSync(path.join(dir, 'dev'), `${d.devno}\n`);
    fs.writeFileSync(path.join(dir, 'size'), `${d.sectors}\n`);
    if (d.parent) {
      fs.writeFileSync(path.join(dir, 'partition'), `${d.name.match(/(\d+)$/)![1]}\n`);
      fs.writeFileSync(path.join(dir, 'start'), `${d.start}\n`);
    }
    if (d.dm) {
      fs.mkdirSync(path.join(dir, 'dm'));
      fs.writeFileSync(path.join(dir, 'dm', 'uuid'), `${d.dm.uuid}\n`);
      fs.writeFileSync(path.join(dir, 'dm', 'name'), `${d.dm.name}\n`);
    }
    const links = [path.join(sys, 'class/block', d.name), path.join(sys, 'dev/block', d.devno), ...(opts.blockLinks && !d.parent ? [path.join(sys, 'block', d.name)] : [])];
    for (const link of links) {
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.relative(path.dirname(link), dir), link);
    }
  }
  for (const d of devs) {
    for (const s of d.slaves ?? []) {
      fs.symlinkSync(path.relative(path.join(dirOf.get(d.name)!, 'slaves'), dirOf.get(s)!), path.join(dirOf.get(d.name)!, 'slaves', s));
      fs.symlinkSync(path.relative(path.join(dirOf.get(s)!, 'holders'), dirOf.get(d.name)!), path.join(dirOf.get(s)!, 'holders', d.name));
    }
  }
  return sys;
}
