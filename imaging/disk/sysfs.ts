// The kernel's view of devices as device.ts reads it: sysfs files, /proc/self/mountinfo, device numbers,
// and where they are read from (SystemView, which tests point at constructed trees).
import * as fs from 'fs';

/** Where the kernel's view is read from; tests point it at constructed trees. */
export interface SystemView {
  sys: string;
  mountinfo: string;
  swaps: string;
}

export const LIVE_SYSTEM: SystemView = { sys: '/sys', mountinfo: '/proc/self/mountinfo', swaps: '/proc/swaps' };

const major = (rdev: number) => Math.floor(rdev / 256) & 0xfff; // glibc's gnu_dev_major, low bits
const minor = (rdev: number) => (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);

/** "major:minor" of a device number, as /proc/self/mountinfo and /sys/dev/block name devices. */
export const devnoString = (dev: number): string => `${major(dev)}:${minor(dev)}`;

export function readSys(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Undoes mountinfo's and /proc/swaps' octal escapes (\040 for a space, \134 for a backslash…). */
export const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export interface MountEntry {
  /** The st_dev of the filesystem (btrfs and overlayfs give an anonymous 0:N here). */
  devno: string;
  mountpoint: string;
  readOnly: boolean;
  /** The mount source ("/dev/sda2", "overlay", …). */
  source: string;
  fstype: string;
}

export function readMounts(file = LIVE_SYSTEM.mountinfo): MountEntry[] {
  return parseMountinfo(readSys(file) ?? '');
}

/** /proc/self/mountinfo's lines as mounts. */
export function parseMountinfo(text: string): MountEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const dash = f.indexOf('-', 6);
      return {
        devno: f[2] ?? '',
        mountpoint: unescapeOctal(f[4] ?? ''),
        readOnly: (f[5] ?? '').split(',').includes('ro'),
        source: dash > 0 ? unescapeOctal(f[dash + 2] ?? '') : '',
        fstype: dash > 0 ? (f[dash + 1] ?? '') : '',
      };
    });
}

/** The block devices a mount is on: its st_dev, and its source's device number when that is a device node (btrfs). */
export function mountDevnos(m: MountEntry): string[] {
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
