// New identities for a restored copy that will live beside the original (`restore --new-ids`): two
// disks with the same GUIDs and UUIDs in one machine make mount-by-UUID and boot loaders pick either.
// The disk's GUID (or MBR signature) and every GPT partition GUID are drawn anew in the table; each
// filesystem gets a new UUID from its own tool (tune2fs after e2fsck, ntfslabel, swaplabel) or, for
// FAT, in its boot sectors; then every old UUID and PARTUUID named in the restored system's boot
// files (/etc/fstab, crypttab, GRUB's grub.cfg, kernel command lines, systemd-boot entries, and the
// EFI partition's grub.cfg) is replaced by the new one. Runs as root (loop devices, mount).
import { randomBytes, randomUUID } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { handleDevice, rewriteGptIds, type SectorDevice } from '../disk/partitions';
import { runTool } from '../disk/tools';
import type { Logger } from '../repo/repository';

const SECTOR = 512;
const PKG: Record<string, string> = { tune2fs: 'e2fsprogs', e2fsck: 'e2fsprogs', ntfslabel: 'ntfs-3g', mdir: 'mtools', mcopy: 'mtools' };

async function tool(file: string, args: string[], ok: number[] = [0], env: Record<string, string> = {}): Promise<string> {
  return (await runTool(file, args, { neededFor: 'for --new-ids', pkg: PKG[file] ?? 'util-linux', ok, env })).stdout;
}

export interface IdChange {
  partition: number | null;
  what: 'disk' | 'partition' | 'filesystem';
  kind?: string;
  from: string;
  to: string;
}

export interface NewIdsResult {
  changed: IdChange[];
  /** Files of the restored system whose ids were updated ("partition 2: /etc/fstab"). */
  filesUpdated: string[];
  warnings: string[];
}

interface Part {
  index: number;
  start: number;
  size: number;
}

/** The files of a restored Linux root that name filesystems and partitions by id. */
const ROOT_FILES = ['etc/fstab', 'etc/crypttab', 'etc/default/grub', 'etc/kernel/cmdline', 'boot/grub/grub.cfg', 'boot/grub2/grub.cfg', 'etc/initramfs-tools/conf.d/resume'];
const ROOT_DIRS = ['boot/loader/entries', 'etc/default/grub.d'];

/** Every old id in `text` replaced by its new one (GUIDs in any case); the count of replacements. */
export function replaceIds(text: string, ids: readonly IdChange[]): { text: string; count: number } {
  let count = 0;
  for (const id of ids) {
    if (!id.from || id.from === id.to) continue;
    const re = new RegExp(id.from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
    text = text.replace(re, () => {
      count++;
      return id.to;
    });
  }
  return { text, count };
}

/** Gives the restored disk behind `fh` (`target`, `diskSize` bytes) new ids; `parts` are its partitions where they now are. */
export async function giveNewIds(target: string, fh: fs.promises.FileHandle, diskSize: number, table: 'gpt' | 'mbr' | 'none', parts: readonly Part[], log: Logger): Promise<NewIdsResult> {
  const changed: IdChange[] = [];
  const warnings: string[] = [];
  const filesUpdated: string[] = [];
  const dev = handleDevice(fh);

  // 1. The table.
  if (table === 'gpt') {
    const r = await rewriteGptIds(dev, diskSize, randomUUID(), new Map(parts.map((p) => [p.index, randomUUID()])));
    changed.push({ partition: null, what: 'disk', kind: 'gpt', from: r.disk.from, to: r.disk.to });
    for (const [index, c] of r.partitions) changed.push({ partition: index, what: 'partition', from: c.from, to: c.to });
  } else if (table === 'mbr') {
    const mbr = await dev.read(0, SECTOR);
    const old = mbr.readUInt32LE(440);
    let sig = old;
    while (sig === old || sig === 0) sig = randomBytes(4).readUInt32LE(0);
    mbr.writeUInt32LE(sig, 440);
    await dev.write(mbr, 0);
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    changed.push({ partition: null, what: 'disk', kind: 'mbr', from: hex(old), to: hex(sig) });
    for (const p of parts) changed.push({ partition: p.index, what: 'partition', from: `${hex(old)}-${String(p.index).padStart(2, '0')}`, to: `${hex(sig)}-${String(p.index).padStart(2, '0')}` });
  }
  await fh.sync();

  // 2. Each filesystem, through a loop device over its partition.
  const loops = new Map<number, string>();
  try {
    for (const p of parts) loops.set(p.index, (await tool('losetup', ['--find', '--show', '--offset', String(p.start), '--sizelimit', String(p.size), target])).trim());
    const types = new Map<number, { type: string; uuid: string }>();
    for (const p of parts) {
      const loop = loops.get(p.index)!;
      const info = Object.fromEntries(
        (await tool('blkid', ['-p', '-o', 'export', loop], [0, 2]))
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      if (!info.TYPE) continue;
      types.set(p.index, { type: info.TYPE, uuid: info.UUID ?? '' });
      const fresh = await newFsId(info.TYPE, loop, dev, p);
      if (fresh) changed.push({ partition: p.index, what: 'filesystem', kind: info.TYPE, from: info.UUID ?? '', to: fresh });
      else warnings.push(`Partition ${p.index} (${info.TYPE}) keeps its UUID ${info.UUID ?? ''}: devsnap cannot give a ${info.TYPE} filesystem a new one.`);
    }
    await fh.sync(); // FAT's volume ID went through `fh`: written out before mtools reads that partition
    // 3. The boot files of every Linux root and EFI partition.
    for (const p of parts) {
      const t = types.get(p.index)?.type;
      if (t && /^ext[234]$/.test(t)) filesUpdated.push(...(await updateRootFiles(loops.get(p.index)!, p.index, changed)));
      if (t === 'vfat') filesUpdated.push(...(await updateEspFiles(loops.get(p.index)!, p.index, changed, warnings)));
    }
  } finally {
    for (const l of loops.values()) await tool('losetup', ['--detach', l]).catch(() => undefined);
  }
  for (const f of filesUpdated) log(`Updated the ids in ${f}.`);
  return { changed, filesUpdated, warnings };
}

/** A new UUID for the filesystem on `loop`, in the form blkid shows it; null when devsnap cannot change it. */
async function newFsId(type: string, loop: string, dev: SectorDevice, p: Part): Promise<string | null> {
  switch (type) {
    case 'ext2':
    case 'ext3':
    case 'ext4': {
      const u = randomUUID();
      await tool('e2fsck', ['-f', '-y', loop], [0, 1]); // tune2fs changes the UUID of a freshly checked filesystem only
      await tool('tune2fs', ['-U', u, loop]);
      return u;
    }
    case 'ntfs': {
      const serial = randomBytes(8).toString('hex').toUpperCase();
      await tool('ntfslabel', ['--force', '--new-serial=' + serial, loop]); // --force: ntfsresize leaves the volume marked for a check by Windows
      return serial;
    }
    case 'swap': {
      const u = randomUUID();
      await tool('swaplabel', ['-U', u, loop]);
      return u;
    }
    case 'vfat': {
      // The volume ID: at 0x43 in a FAT32 boot sector (and its backup, sector 6 by default), at 0x27 in FAT12/16.
      const bs = await dev.read(p.start, SECTOR);
      const fat32 = bs.readUInt16LE(0x16) === 0;
      const at = fat32 ? 0x43 : 0x27;
      const id = randomBytes(4);
      id.copy(bs, at);
      await dev.write(bs, p.start);
      if (fat32) {
        const backup = bs.readUInt16LE(0x32);
        if (backup > 0 && backup < 32) {
          const b2 = await dev.read(p.start + backup * SECTOR, SECTOR);
          if (b2.readUInt16LE(510) === 0xaa55) {
            id.copy(b2, at);
            await dev.write(b2, p.start + backup * SECTOR);
          }
        }
      }
      const hex = id.readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0');
      return `${hex.slice(0, 4)}-${hex.slice(4)}`;
    }
    default:
      return null;
  }
}

/** Replaces the ids in the boot files of the ext filesystem on `loop` (mounted for the moment it takes). */
async function updateRootFiles(loop: string, index: number, ids: readonly IdChange[]): Promise<string[]> {
  const mnt = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'devsnap-newids-'));
  const done: string[] = [];
  try {
    await tool('mount', ['-t', 'ext4', '-o', 'rw,nosuid,nodev,noexec', loop, mnt]).catch(() => tool('mount', ['-o', 'rw,nosuid,nodev,noexec', loop, mnt]));
    try {
      const files = [...ROOT_FILES];
      for (const d of ROOT_DIRS) {
        const entries = await fs.promises.readdir(path.join(mnt, d)).catch(() => [] as string[]);
        files.push(...entries.map((e) => path.join(d, e)));
      }
      for (const rel of files) {
        const f = path.join(mnt, rel);
        const st = await fs.promises.lstat(f).catch(() => null);
        if (!st?.isFile() || st.size > 4 << 20) continue; // a symlink could point anywhere: only regular files
        const { text, count } = replaceIds(await fs.promises.readFile(f, 'utf8'), ids);
        if (!count) continue;
        await fs.promises.writeFile(f, text); // in place: owner and mode stay
        done.push(`partition ${index}: /${rel}`);
      }
    } finally {
      await tool('umount', [mnt]);
    }
  } finally {
    await fs.promises.rmdir(mnt).catch(() => undefined);
  }
  return done;
}

/** Replaces the ids in the configuration files of an EFI system partition (GRUB's grub.cfg, systemd-boot entries), with mtools. */
async function updateEspFiles(loop: string, index: number, ids: readonly IdChange[], warnings: string[]): Promise<string[]> {
  const mtools = (file: string, args: string[]) => tool(file, args, [0], { MTOOLS_SKIP_CHECK: '1' });
  let listing: string;
  try {
    listing = await mtools('mdir', ['-/', '-b', '-i', loop, '::/']);
  } catch (err) {
    warnings.push(
      `The EFI partition (partition ${index}) was not searched for ids: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'mtools is not installed' : (err as Error).message.split('\n')[0]}.`,
    );
    return [];
  }
  const done: string[] = [];
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'devsnap-esp-'));
  try {
    for (const name of listing
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /\.(cfg|conf)$/i.test(l))) {
      const local = path.join(tmp, 'f');
      await mtools('mcopy', ['-n', '-o', '-i', loop, name, local]);
      const { text, count } = replaceIds(await fs.promises.readFile(local, 'utf8'), ids);
      if (!count) continue;
      await fs.promises.writeFile(local, text);
      await mtools('mcopy', ['-o', '-i', loop, local, name]);
      done.push(`partition ${index} (EFI): ${name.replace(/^::/, '')}`);
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return done;
}
