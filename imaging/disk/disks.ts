// `devsnap disks`: the disks and partitions of this machine, from util-linux's lsblk (JSON output),
// and the same description for a raw disk image file.
//
// lsblk takes filesystem types, labels and partition tables from udev, or probes them itself when
// it may. Where it cannot (no udev, no partition scanning on loop devices, as in containers and
// recovery shells), the gaps are filled by reading the device with the engine's own partition-table
// and filesystem readers — the same ones a snapshot uses — when the device is readable.
import { execFile } from 'child_process';
import { childCommand } from './privilege';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { BlockLayer, inspectPath } from './device';
import { describePartitionType, layoutProblems, readPartitionTable } from './partitions';
import { detectFilesystem } from '../filesystems/detect';
import type { ByteReader, UsedBlocks } from '../filesystems/types';
import { fileReader, sliceReader } from './source';
import type { DiskInfo, PartitionInfo, VirtualKind } from '../protocol';

/** A listed disk; loop devices also name the image file they are attached to. */
export type ListedDisk = DiskInfo & { backingFile?: string };
export type ListedPartition = DiskInfo['partitions'][number];

/** One lsblk device (the columns of `--output-all` that we use; older util-linux lacks some). */
interface LsblkDevice {
  name: string;
  kname?: string;
  path?: string;
  type: string;
  size: number | string | null;
  model?: string | null;
  pttype?: string | null;
  ro?: boolean | string | null;
  mountpoint?: string | null;
  mountpoints?: (string | null)[];
  fstype?: string | null;
  label?: string | null;
  uuid?: string | null;
  parttype?: string | null;
  parttypename?: string | null;
  partlabel?: string | null;
  partuuid?: string | null;
  partn?: number | string | null;
  start?: number | string | null;
  fsused?: number | string | null;
  'back-file'?: string | null;
  'maj:min'?: string;
  children?: LsblkDevice[];
}

export interface ListDisksOptions {
  /** Fill what lsblk could not tell by reading the devices (default true; needs read access). */
  probe?: boolean;
}

function runLsblk(): Promise<{ blockdevices: LsblkDevice[] }> {
  return new Promise((resolve, reject) => {
    const c = childCommand('lsblk', ['--json', '--bytes', '--output-all']);
    execFile(c.file, c.args, { maxBuffer: 64 << 20, env: c.env }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT') {
          reject(new DevsnapError('INTERNAL', 'lsblk is not installed, so the disks cannot be listed.', 'Install util-linux (e.g. `apt install util-linux`), or give the device path directly.'));
        } else {
          reject(new DevsnapError('INTERNAL', `lsblk failed: ${(stderr || e.message).trim()}`, 'Check that /sys and /dev are available.'));
        }
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new DevsnapError('INTERNAL', 'lsblk printed output devsnap cannot read.', 'Update util-linux (lsblk 2.33 or later is needed for --json).'));
      }
    });
  });
}

const num = (v: number | string | null | undefined): number | undefined => {
  if (v === null || v === undefined || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
};
const str = (v: string | null | undefined): string | undefined => (v === null || v === undefined || v === '' ? undefined : v);
const bool = (v: boolean | string | null | undefined): boolean => v === true || v === '1' || v === 'true';

function readSys(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function mountpointsOf(d: LsblkDevice): string[] {
  const list = d.mountpoints ?? (d.mountpoint !== undefined ? [d.mountpoint] : []);
  return list.filter((m): m is string => typeof m === 'string' && m !== '');
}

/** Mount points of the device and everything below it (partitions, LVM volumes, LUKS mappings). */
function allMountpoints(d: LsblkDevice): string[] {
  return [...new Set([...mountpointsOf(d), ...(d.children ?? []).flatMap(allMountpoints)])];
}

function partIndex(p: LsblkDevice): number | undefined {
  const n = num(p.partn);
  if (n !== undefined) return n;
  const sys = num(readSys(`/sys/class/block/${p.kname ?? p.name}/partition`));
  if (sys !== undefined) return sys;
  const m = /(\d+)$/.exec(p.name);
  return m ? Number(m[1]) : undefined;
}

function partStart(p: LsblkDevice): number | undefined {
  const sectors = num(p.start) ?? num(readSys(`/sys/class/block/${p.kname ?? p.name}/start`));
  return sectors === undefined ? undefined : sectors * 512;
}

function tableType(pttype: string | null | undefined): DiskInfo['table'] | undefined {
  if (!pttype) return undefined;
  if (pttype === 'gpt') return 'gpt';
  if (pttype === 'dos') return 'mbr';
  return undefined; // bsd, sun, atari…: not tables devsnap reads
}

function fromLsblk(d: LsblkDevice): ListedDisk {
  const devPath = d.path ?? `/dev/${d.name}`;
  const disk: ListedDisk = {
    path: devPath,
    kind: d.type === 'loop' ? 'loop' : 'disk',
    size: num(d.size) ?? 0,
    isSystem: false,
    mountpoints: allMountpoints(d),
    partitions: [],
  };
  const model = str(d.model)?.trim();
  if (model) disk.model = model;
  const table = tableType(d.pttype);
  if (table) disk.table = table;
  if (d.ro !== undefined && d.ro !== null) disk.readOnly = bool(d.ro);
  const virtual = virtualKind(d);
  if (virtual) {
    disk.virtual = { kind: virtual };
    const backing = virtual === 'loop' ? loopBacking(d) : undefined;
    if (backing) disk.backingFile = disk.virtual.backingFile = backing;
    if (str(d.fstype) && !d.children?.length) disk.virtual.fs = d.fstype!;
  }
  for (const c of d.children ?? []) {
    if (c.type !== 'part') continue;
    const index = partIndex(c);
    const start = partStart(c);
    if (index === undefined || start === undefined) continue;
    const p: ListedPartition = { index, start, size: num(c.size) ?? 0, type: str(c.parttype) ?? '', path: c.path ?? `/dev/${c.name}`, mountpoints: allMountpoints(c) };
    const typeName = str(c.parttypename) ?? (p.type ? describePartitionType(p.type) : undefined);
    if (typeName) p.typeName = typeName;
    if (str(c.partlabel)) p.name = c.partlabel!;
    if (str(c.partuuid)) p.uuid = c.partuuid!;
    if (str(c.fstype)) p.fs = c.fstype!;
    if (str(c.label)) p.label = c.label!;
    if (str(c.uuid)) p.fsUuid = c.uuid!;
    const used = num(c.fsused);
    if (used !== undefined && mountpointsOf(c).length) p.usedBytes = used;
    disk.partitions.push(p);
  }
  disk.partitions.sort((x, y) => x.index - y.index);
  return disk;
}

/** Virtual devices by their kernel names (lsblk gives ram, zram and nbd the type "disk"). */
function virtualKind(d: LsblkDevice): VirtualKind | undefined {
  const kname = d.kname ?? d.name;
  if (d.type === 'loop' || /^loop\d+$/.test(kname)) return 'loop';
  if (/^zram\d+$/.test(kname)) return 'zram';
  if (/^ram\d+$/.test(kname)) return 'ram';
  // nbd: a network disk while a client serves it (its pid file exists); nothing behind it otherwise.
  if (/^nbd\d+$/.test(kname) && readSys(`/sys/block/${kname}/pid`) === undefined) return 'nbd';
  return undefined;
}

function loopBacking(d: LsblkDevice): string | undefined {
  const backing = str(d['back-file']) ?? readSys(`/sys/block/${d.kname ?? d.name}/loop/backing_file`);
  return backing?.replace(/ \(deleted\)$/, '');
}

function isListed(d: LsblkDevice): boolean {
  if (d.type !== 'disk' && d.type !== 'loop') return false;
  if (!(num(d.size) ?? 0)) return false; // empty loop, zram and nbd devices, card readers without a card
  if (d.type === 'loop' && !loopBacking(d)) return false;
  return true;
}

/**
 * The filesystem on partition `p` of `disk`, or null. A filesystem that cannot be read or trusted adds
 * a note instead of failing: one hostile or damaged disk must never break the listing.
 */
async function probeFilesystem(disk: ByteReader, p: PartitionInfo, notes: string[]): Promise<UsedBlocks | null> {
  const used = await detectFilesystem(sliceReader(disk, p.start, Math.max(0, Math.min(p.size, disk.size - p.start)))).catch((err: Error) => {
    notes.push(`partition ${p.index}: its filesystem could not be read (${whyUnreadable(err)})`);
    return null;
  });
  for (const w of used?.warnings ?? []) notes.push(`partition ${p.index}: ${w}`);
  return used;
}

/** What a readable disk's own bytes say: partition table and filesystems (used space included). */
async function describeBytes(disk: ByteReader): Promise<{ table: DiskInfo['table']; partitions: PartitionInfo[]; notes: string[] }> {
  const notes: string[] = [];
  const table = await readPartitionTable(disk, (m) => notes.push(m));
  notes.push(...[...layoutProblems(table.partitions, disk.size)].map(([i, why]) => `partition ${i} ${why}`));
  const partitions: PartitionInfo[] = [];
  for (const p of table.partitions) {
    const info: PartitionInfo = { ...p };
    const used = await probeFilesystem(disk, p, notes);
    if (used) {
      info.fs = used.fs;
      if (used.label) info.label = used.label;
      if (used.uuid) info.fsUuid = used.uuid;
      if (!used.full) info.usedBytes = used.usedBytes;
    }
    partitions.push(info);
  }
  return { table: table.type, partitions, notes };
}

/** Why a device could not be read, in devsnap's words (never a raw "EIO: i/o error, read"). */
const whyUnreadable = (err: unknown): string => toDevsnapError(err, 'the device').message.replace(/\.$/, '');

const noteOn = (disk: DiskInfo, notes: string[]): void => {
  if (notes.length) disk.notes = [...(disk.notes ?? []), ...notes];
};

/** Completes a disk lsblk described partly, by reading it (errors — no permission, a failing drive — leave it as it is). */
async function probe(disk: ListedDisk): Promise<void> {
  const needsTable = !disk.table;
  const needsFs = disk.partitions.some((p) => !p.fs || (p.usedBytes === undefined && !p.mountpoints?.length));
  if (!needsTable && !needsFs) return;
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(disk.path, 'r');
  } catch (err) {
    // As a user, unreadable devices are the rule; as root, the kernel refusing one is worth a note.
    if (process.getuid?.() === 0) noteOn(disk, [`it could not be read (${whyUnreadable(err)})`]);
    return;
  }
  try {
    const reader = fileReader(fh, disk.size);
    if (!disk.partitions.length) {
      const found = await describeBytes(reader);
      disk.table = found.table;
      noteOn(disk, found.notes);
      // Partitions the kernel did not scan (a loop device without -P): no /dev node of their own.
      disk.partitions = found.partitions.map((p) => ({ ...p, mountpoints: [] }));
      return;
    }
    if (needsTable) disk.table = (await readPartitionTable(reader)).type;
    const notes: string[] = [];
    for (const p of disk.partitions) {
      if (p.fs && (p.usedBytes !== undefined || p.mountpoints?.length)) continue;
      const used = await probeFilesystem(reader, p, notes);
      if (!used) continue;
      p.fs ??= used.fs;
      if (!p.label && used.label) p.label = used.label;
      if (!p.fsUuid && used.uuid) p.fsUuid = used.uuid;
      if (!p.mountpoints?.length && !used.full) p.usedBytes = used.usedBytes;
    }
    noteOn(disk, notes);
  } catch (err) {
    // A table devsnap cannot read: keep what lsblk said, and say why.
    noteOn(disk, [`its partition table could not be read (${whyUnreadable(err)})`]);
  } finally {
    await fh.close();
  }
}

/**
 * The machine's whole disks and attached loop devices (not empty ones), each with its partitions.
 * Virtual devices (loop, ram, zram, an unconnected nbd) are listed too, marked with `virtual`, so a
 * caller can leave them out. The disk holding the running system's root filesystem is marked and
 * listed first.
 */
export async function listDisks(opts: ListDisksOptions = {}): Promise<ListedDisk[]> {
  const { blockdevices } = await runLsblk();
  // The disks the running system's root lives on, traced down through LVM, LUKS, md RAID and loop devices.
  const system = new BlockLayer().systemDevices();
  const out: ListedDisk[] = [];
  for (const d of blockdevices ?? []) {
    if (!isListed(d)) continue;
    const disk = fromLsblk(d);
    disk.isSystem = allMountpoints(d).includes('/') || (d['maj:min'] !== undefined && system.has(d['maj:min'].trim()));
    if (opts.probe !== false && disk.virtual?.kind !== 'zram') await probe(disk); // zram holds swap or a tmpfs-like cache: nothing to describe
    out.push(disk);
  }
  // Stable: the system disk first, the rest in lsblk's order.
  return out
    .map((d, i) => [d, i] as const)
    .sort((x, y) => Number(y[0].isSystem) - Number(x[0].isSystem) || x[1] - y[1])
    .map(([d]) => d);
}

/** The DiskInfo of a raw disk image file: its partition table and each partition's filesystem. */
export async function describeImageFile(file: string): Promise<DiskInfo> {
  const info = await inspectPath(file, 'source');
  if (info.kind !== 'file') throw new DevsnapError('BAD_SOURCE', `${file} is a device, not an image file.`, 'Use `devsnap disks` to describe devices.');
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (err) {
    throw toDevsnapError(err, `the image file ${file}`);
  }
  try {
    const { table, partitions, notes } = await describeBytes(fileReader(fh, info.size));
    return {
      path: path.resolve(file),
      kind: 'file',
      size: info.size,
      table,
      isSystem: false,
      mountpoints: info.mounts.map((m) => m.mountpoint),
      partitions,
      ...(notes.length ? { notes } : {}),
    };
  } finally {
    await fh.close();
  }
}
