// Which disks and drives the extension offers, and what it says about where a repository is: virtual
// devices left out of the pickers (unless devsnap.showVirtualDisks), the attached drives a repository
// can go on (with their free space), the disk a folder is on (a repository on the disk being
// snapshotted), and a backup drive that is not connected (a configured repository whose drive's mount
// point is missing). Pure logic over what the engine and /proc report: no vscode import.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { DiskInfo } from '../imaging/protocol';
import { formatBytes } from '../imaging/core/format';
import { MountEntry, parseMountinfo as parseEngineMountinfo, unescapeOctal } from '../imaging/disk/sysfs';
import { isS3Repository } from './paths';

/** The disks a picker offers: drives, plus virtual devices (loop, ram, zram) when asked, or when it is the one configured. */
export function offeredDisks(disks: readonly DiskInfo[], showVirtual: boolean, keep: (string | undefined)[] = []): DiskInfo[] {
  return disks.filter((d) => showVirtual || !d.virtual || keep.includes(d.path));
}

/** How many virtual devices a picker leaves out (to say so in its placeholder). */
export const hiddenVirtualCount = (disks: readonly DiskInfo[], offered: readonly DiskInfo[]): number => disks.filter((d) => d.virtual && !offered.includes(d)).length;

/** What a virtual device is, in a picker's words. */
export function virtualText(d: DiskInfo): string | undefined {
  const v = d.virtual;
  if (!v) return undefined;
  const fsText = v.fs ? ` (${v.fs})` : '';
  if (v.kind === 'loop') return `loop device${v.backingFile ? ` over ${v.backingFile}` : ''}${fsText}`;
  if (v.kind === 'zram') return 'compressed RAM (zram)';
  if (v.kind === 'ram') return 'RAM disk';
  return 'nbd device, nothing connected';
}

export type { MountEntry };

/** /proc/self/mountinfo's lines as mounts (the engine's reading), those with a path as mount point. */
export function parseMountinfo(text: string): MountEntry[] {
  return parseEngineMountinfo(text).filter((m) => m.mountpoint.startsWith('/'));
}

/** Mount points /etc/fstab names (not swap, not the root). */
export function parseFstab(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 3 && f[1].startsWith('/') && f[1] !== '/' && f[2] !== 'swap')
    .map((f) => unescapeOctal(f[1]).replace(/\/+$/, ''));
}

const within = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** The deepest mount holding path `p` (mounted over one another: the last one). */
export function mountOf(p: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) if (within(p, m.mountpoint) && (!best || m.mountpoint.length >= best.mountpoint.length)) best = m;
  return best;
}

/** `p` resolved through symbolic links as far as it exists (a repository not created yet is where its nearest folder is). */
export function realPathSoFar(p: string): string {
  let rest = '';
  for (let d = path.resolve(p); ; d = path.dirname(d)) {
    try {
      return path.join(fs.realpathSync(d), rest);
    } catch {
      if (d === path.dirname(d)) return path.resolve(p);
      rest = path.join(path.basename(d), rest);
    }
  }
}

/**
 * The disk (drive or virtual device) whose filesystem holds folder `p`, from the engine's disks and
 * the mounts. A bucket (an s3: repository) is on none: taken as a path, "s3:https://…" would resolve
 * under the current folder, on the system drive.
 */
export function diskOfPath(p: string, disks: readonly DiskInfo[], mounts: readonly MountEntry[]): DiskInfo | undefined {
  if (isS3Repository(p)) return undefined;
  const m = mountOf(realPathSoFar(p), mounts);
  if (!m) return undefined;
  return disks.find((d) => d.path === m.source || d.partitions.some((x) => x.path === m.source)) ?? disks.find((d) => d.mountpoints.includes(m.mountpoint));
}

/** The disk a snapshot is taken of by default: devsnap.defaultSource when it is a device (or one of its partitions), else the system drive. */
export function defaultSourceDisk(disks: readonly DiskInfo[], defaultSource: string | undefined): DiskInfo | undefined {
  if (defaultSource && !defaultSource.startsWith('/dev/')) return undefined; // an image file: its snapshot holds no repository
  if (defaultSource) return disks.find((d) => d.path === defaultSource || d.partitions.some((p) => p.path === defaultSource));
  return disks.find((d) => d.isSystem);
}

export interface DriveChoice {
  mountpoint: string;
  /** The disk it is on (a device path) or the network share. */
  device: string;
  fs?: string;
  label?: string;
  model?: string;
  network: boolean;
  freeBytes?: number;
  totalBytes?: number;
}

const NETWORK_FS = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'fuse.sshfs', '9p']);

/** Free and total bytes of the filesystem at `dir` (undefined when it cannot be asked). */
export function spaceOf(dir: string): { free: number; total: number } | undefined {
  try {
    const s = fs.statfsSync(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch {
    return undefined;
  }
}

/**
 * The attached drives a repository can go on: mounted, writable filesystems of disks other than the
 * system drive (virtual devices only when asked), and network shares; most free space first.
 */
export function repositoryDrives(disks: readonly DiskInfo[], mounts: readonly MountEntry[], showVirtual: boolean, space = spaceOf): DriveChoice[] {
  const byMount = new Map(mounts.map((m) => [m.mountpoint, m]));
  const out: DriveChoice[] = [];
  const seen = new Set<string>();
  const add = (c: DriveChoice) => {
    const m = byMount.get(c.mountpoint);
    if (!m || m.readOnly || seen.has(c.mountpoint) || /^\/(boot|efi)(\/|$)/.test(c.mountpoint)) return;
    seen.add(c.mountpoint);
    const s = space(c.mountpoint);
    out.push(s ? { ...c, freeBytes: s.free, totalBytes: s.total } : c);
  };
  for (const d of disks) {
    if (d.isSystem || d.kind === 'file' || (d.virtual && !showVirtual)) continue;
    for (const p of d.partitions) for (const mp of p.mountpoints ?? []) add({ mountpoint: mp, device: p.path ?? d.path, fs: p.fs, label: p.label, model: d.model, network: false });
    if (!d.partitions.some((p) => p.mountpoints?.length)) for (const mp of d.mountpoints) add({ mountpoint: mp, device: d.path, fs: d.virtual?.fs, model: d.model, network: false });
  }
  for (const m of mounts) if (NETWORK_FS.has(m.fstype)) add({ mountpoint: m.mountpoint, device: m.source, fs: m.fstype, network: true });
  return out.sort((a, b) => (b.freeBytes ?? -1) - (a.freeBytes ?? -1));
}

/** A drive in a quick pick's words: "120 GB free of 500 GB · ext4 “backup” · /dev/sdb1 · Samsung T7". */
export function driveDescription(c: DriveChoice): string {
  const space = c.freeBytes !== undefined ? `${formatBytes(c.freeBytes)} free${c.totalBytes ? ` of ${formatBytes(c.totalBytes)}` : ''}` : '';
  return [space, [c.fs, c.label ? `“${c.label}”` : ''].filter(Boolean).join(' '), c.network ? `network share ${c.device}` : c.device, c.model ?? ''].filter(Boolean).join(' · ');
}

/** Where removable drives are mounted: /media/LABEL, /media/USER/LABEL, /run/media/USER/LABEL, /mnt/NAME, /Volumes/NAME. */
const REMOVABLE_ROOTS = ['/run/media', '/media', '/mnt', '/Volumes'];

export interface PlaceView {
  exists(p: string): boolean;
  /** A folder with something in it (a plain folder on the system disk, not an empty mount point). */
  hasEntries(p: string): boolean;
  mountpoints: ReadonlySet<string>;
  fstab: readonly string[];
  user: string;
}

/** What this machine says, for backupDriveMissing. */
export function livePlaces(): PlaceView {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  let user = '';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return {
    exists: (p) => fs.existsSync(p),
    hasEntries: (p) => {
      try {
        return fs.readdirSync(p).length > 0;
      } catch {
        return false;
      }
    },
    mountpoints: new Set(parseMountinfo(read('/proc/self/mountinfo')).map((m) => m.mountpoint)),
    fstab: parseFstab(read('/etc/fstab')),
    user,
  };
}

/**
 * The mount point of the backup drive a missing repository folder is on, when that drive is not
 * connected: the folder is below an /etc/fstab mount point that is not mounted, or below a removable
 * drive's place (/media/…, /mnt/…) where nothing is mounted and no folder of the system disk holds
 * anything. Undefined when the folder exists, or is simply new (the first snapshot creates it).
 */
export function backupDriveMissing(repo: string, view: PlaceView): string | undefined {
  const p = path.resolve(repo);
  if (view.exists(p)) return undefined;
  const mounted = (dir: string) => view.mountpoints.has(dir);
  for (const mp of [...view.fstab].sort((a, b) => b.length - a.length)) {
    if (within(p, mp)) return mounted(mp) ? undefined : mp;
  }
  for (const root of REMOVABLE_ROOTS) {
    if (!p.startsWith(`${root}/`)) continue;
    const parts = p.slice(root.length + 1).split('/');
    // Is anything mounted on the way (the drive, or a folder of it)? Then the folder is just new.
    for (let i = 1; i <= parts.length; i++) if (mounted(`${root}/${parts.slice(0, i).join('/')}`)) return undefined;
    const perUser = (root === '/media' || root === '/run/media') && parts.length >= 2 && (parts[0] === view.user || root === '/run/media');
    const mp = `${root}/${parts.slice(0, perUser ? 2 : 1).join('/')}`;
    // A folder there that holds files is a plain folder of the system disk: a new repository inside it is fine.
    return view.hasEntries(mp) ? undefined : mp;
  }
  return undefined;
}
