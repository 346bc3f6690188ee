// What a source or target path is: a block device (its size from sysfs, its mounts from
// /proc/self/mountinfo) or a regular image file. Used to refuse dangerous targets and to warn
// about sources that are mounted read-write.
import * as fs from 'fs';
import { DevsnapError, toDevsnapError } from './errors';

export interface DeviceInfo {
  path: string;
  kind: 'block' | 'file';
  size: number;
  /** "major:minor" of a block device. */
  devno?: string;
  /** Mount points of the device or any of its partitions, with their options. */
  mounts: { mountpoint: string; readOnly: boolean; devno: string }[];
  /** The device (or one of its partitions) holds the running system's root filesystem. */
  isSystem: boolean;
}

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

interface MountEntry { devno: string; mountpoint: string; readOnly: boolean }

export function readMounts(): MountEntry[] {
  const text = readSys('/proc/self/mountinfo') ?? '';
  return text.split('\n').filter(Boolean).map((line) => {
    const f = line.split(' ');
    return { devno: f[2], mountpoint: f[4].replace(/\\040/g, ' '), readOnly: f[5].split(',').includes('ro') };
  });
}

/** "maj:min" of this device and of every partition sysfs lists under it (loop partitions included). */
function familyDevnos(devno: string): string[] {
  const base = `/sys/dev/block/${devno}`;
  const out = [devno];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(base);
  } catch {
    return out;
  }
  for (const e of entries) {
    const dev = readSys(`${base}/${e}/dev`);
    if (dev && readSys(`${base}/${e}/partition`)) out.push(dev);
  }
  // A loop device attached with an offset onto the same backing file is not a sysfs child; the
  // image-file case is handled by comparing backing files in mountsOfFile.
  return out;
}

/** Loop devices whose backing file is `file` (a disk image that is also attached and maybe mounted). */
function loopsBackedBy(file: string): string[] {
  const out: string[] = [];
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return out;
  }
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => n.startsWith('loop'));
  } catch {
    return out;
  }
  for (const n of names) {
    const backing = readSys(`/sys/block/${n}/loop/backing_file`);
    if (backing && backing.replace(/ \(deleted\)$/, '') === real) {
      const dev = readSys(`/sys/block/${n}/dev`);
      if (dev) out.push(dev);
    }
  }
  return out;
}

export async function inspectPath(p: string, what: 'source' | 'target'): Promise<DeviceInfo> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(p);
  } catch (err) {
    throw toDevsnapError(err, `The ${what} ${p}`);
  }
  const mounts = readMounts();
  const rootDevno = mounts.find((m) => m.mountpoint === '/')?.devno;
  if (st.isBlockDevice()) {
    const devno = devnoString(st.rdev);
    const sectors = Number(readSys(`/sys/dev/block/${devno}/size`) ?? 'NaN');
    if (!Number.isFinite(sectors)) throw new DevsnapError('BAD_SOURCE', `Cannot tell the size of ${p}.`, 'Is the device still attached?');
    // A partition's parent disk: the system check looks at the whole disk.
    const parentDevno = readSys(`/sys/dev/block/${devno}/partition`) ? readSys(`/sys/dev/block/${devno}/../dev`) : undefined;
    const family = familyDevnos(parentDevno ?? devno);
    const own = parentDevno ? familyDevnos(devno) : family;
    return {
      path: p,
      kind: 'block',
      size: sectors * 512,
      devno,
      mounts: mounts.filter((m) => own.includes(m.devno)),
      isSystem: rootDevno !== undefined && family.includes(rootDevno),
    };
  }
  if (st.isFile()) {
    const loops = loopsBackedBy(p).flatMap(familyDevnos);
    return { path: p, kind: 'file', size: st.size, mounts: mounts.filter((m) => loops.includes(m.devno)), isSystem: false };
  }
  throw new DevsnapError(what === 'source' ? 'BAD_SOURCE' : 'BAD_TARGET', `${p} is neither a block device nor a disk image file.`, 'Give a device such as /dev/sdb or a raw disk image file.');
}
