// Fixture builders for tests, the demo and the benchmark: real filesystems and partition tables made by
// the real tools (mke2fs, mkfs.vfat + mtools, mkntfs + ntfs-3g, sfdisk), loop devices, and tree digests
// that compare a restored filesystem with its source.
//
// Loop devices and mounts this process creates are tracked and released in `finally` blocks, and again
// by an 'exit' handler as a safety net; devices this process did not create are never touched.
// Helpers that need no loop device (mke2fs -d, mtools, sfdisk) work without root.

import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ByteReader } from '../../imaging/filesystems/types';
import type { PartitionInfo } from '../../imaging/protocol';

// ---------------------------------------------------------------------------------------------
// Processes, temp dirs, cleanup

export interface ShOptions {
  input?: string | Buffer;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Return instead of throwing on a non-zero exit. */
  allowFail?: boolean;
}

export interface ShResult {
  stdout: string;
  stderr: string;
  status: number;
}

/** Runs a command synchronously; throws with its stderr when it fails (unless allowFail). */
export function sh(cmd: string, args: string[], opts: ShOptions = {}): ShResult {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  const res = { stdout: r.stdout, stderr: r.stderr, status: r.status ?? 128 };
  if (res.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status}):\n${(res.stderr || res.stdout).trim()}`);
  }
  return res;
}

export const isRoot = process.getuid?.() === 0;
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

const tmpDirs = new Set<string>();
const cleanups: (() => void)[] = [];
const loops = new Set<string>();
const mounts = new Set<string>();

/** A new empty directory under the OS temp dir, removed by cleanup() or at exit. */
export function tmpDir(prefix = 'devsnap-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return dir;
}

/** Registers extra work for cleanup() (run in reverse order). */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

/** Unmounts, detaches and removes everything this process created. Safe to call more than once. */
export function cleanup(): void {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch {
      /* keep cleaning */
    }
  }
  for (const m of [...mounts]) unmount(m, true);
  for (const d of [...loops]) {
    try {
      detachLoop(d);
    } catch {
      /* reported by losetup already */
    }
  }
  for (const dir of [...tmpDirs]) {
    // Never recurse into a mount we failed to release: that would delete the mounted filesystem's files.
    if ([...mounts].some((m) => m === dir || m.startsWith(dir + path.sep))) continue;
    if (!process.env.DEVSNAP_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
    tmpDirs.delete(dir);
  }
}
process.on('exit', cleanup);

// ---------------------------------------------------------------------------------------------
// Loop devices and mounts (root)

export interface LoopOptions {
  offset?: number;
  sizeLimit?: number;
  readOnly?: boolean;
}

/** Attaches an image (or a byte range of it) to a free loop device and returns /dev/loopN. */
export function attachLoop(file: string, opts: LoopOptions = {}): string {
  const args = ['-f', '--show'];
  if (opts.offset) args.push('-o', String(opts.offset));
  if (opts.sizeLimit) args.push('--sizelimit', String(opts.sizeLimit));
  if (opts.readOnly) args.push('-r');
  const dev = sh('losetup', [...args, file]).stdout.trim();
  loops.add(dev);
  return dev;
}

/** Detaches a loop device this process attached (refuses others). */
export function detachLoop(dev: string): void {
  if (!loops.has(dev)) throw new Error(`${dev} was not attached by this process; not detaching it`);
  loops.delete(dev);
  sh('losetup', ['-d', dev]);
}

export async function withLoop<T>(file: string, opts: LoopOptions, fn: (dev: string) => T | Promise<T>): Promise<T> {
  const dev = attachLoop(file, opts);
  try {
    return await fn(dev);
  } finally {
    detachLoop(dev);
  }
}

function unmount(dir: string, lazyFallback = false): void {
  const r = sh('umount', [dir], { allowFail: true });
  if (r.status !== 0 && lazyFallback) sh('umount', ['-l', dir], { allowFail: true });
  if (r.status === 0 || lazyFallback) mounts.delete(dir);
  if (r.status !== 0 && !lazyFallback) throw new Error(`umount ${dir} failed: ${r.stderr.trim()}`);
}

/**
 * Mounts `dev` (ntfs through ntfs-3g) on a new temp dir for the duration of fn; `options` replaces
 * the default ro/rw mount options. A filesystem a failed test left frozen is thawed first.
 */
export async function withMount<T>(dev: string, kind: 'ext' | 'ntfs' | 'btrfs', opts: { readOnly?: boolean; options?: string }, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = tmpDir('devsnap-mnt-');
  const options = opts.options ?? (opts.readOnly ? 'ro' : 'rw');
  if (kind === 'ntfs') sh('ntfs-3g', ['-o', options, dev, dir]);
  else sh('mount', [...(kind === 'btrfs' ? ['-t', 'btrfs'] : []), '-o', options, dev, dir]);
  mounts.add(dir);
  try {
    return await fn(dir);
  } finally {
    if (kind !== 'ntfs') sh('fsfreeze', ['--unfreeze', dir], { allowFail: true });
    unmount(dir);
    fs.rmdirSync(dir);
    tmpDirs.delete(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Byte access

/** Writes `data` at byte `pos` of a file or device, in place. */
export function writeAt(file: string, pos: number, data: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, pos);
  } finally {
    fs.closeSync(fd);
  }
}

/** A ByteReader over a buffer (zero-filled past its end): a damaged image edited in memory. */
export function memReader(buf: Buffer): ByteReader {
  return {
    size: buf.length,
    async read(pos: number, len: number): Promise<Buffer> {
      const out = Buffer.alloc(len);
      if (pos < buf.length) buf.copy(out, 0, pos, Math.min(buf.length, pos + len));
      return out;
    },
  };
}

/** A ByteReader over [offset, offset+size) of a file or device (zero-filled past its end). */
export function fileReader(file: string, offset = 0, size?: number): ByteReader & { close(): void } {
  const fd = fs.openSync(file, 'r');
  const total = size ?? fs.fstatSync(fd).size - offset;
  return {
    size: total,
    async read(position: number, length: number): Promise<Buffer> {
      const buf = Buffer.alloc(length);
      const n = Math.max(0, Math.min(length, total - position));
      for (let done = 0; done < n;) {
        const got = fs.readSync(fd, buf, done, n - done, offset + position + done);
        if (got === 0) break;
        done += got;
      }
      return buf;
    },
    close: () => fs.closeSync(fd),
  };
}

/** Read/write access to a file for relocateGptBackup. */
export function fileDevice(file: string): { read(pos: number, len: number): Promise<Buffer>; write(buf: Buffer, pos: number): Promise<void>; close(): void } {
  const fd = fs.openSync(file, 'r+');
  return {
    async read(pos, len) {
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, pos);
      return buf;
    },
    async write(buf, pos) {
      fs.writeSync(fd, buf, 0, buf.length, pos);
    },
    close: () => fs.closeSync(fd),
  };
}

// ---------------------------------------------------------------------------------------------
// Filesystem images

export type FsKind = 'ext2' | 'ext3' | 'ext4' | 'vfat' | 'ntfs' | 'none';

export interface FsImageOptions {
  fs: FsKind;
  size: number;
  /** ext block size, FAT sector-multiple cluster size or NTFS cluster size, in bytes. */
  blockSize?: number;
  label?: string;
  /** Copy this directory's contents in (ntfs needs root: it mounts through ntfs-3g on a loop device). */
  fromDir?: string;
  /** FAT12/16/32 (mkfs.vfat -F). */
  fatBits?: 12 | 16 | 32;
  /** Extra arguments for the mkfs tool (e.g. ['-O', '^flex_bg']). */
  mkfsArgs?: string[];
}

/** Creates a filesystem image file of exactly `size` bytes. */
export async function makeFsImage(file: string, o: FsImageOptions): Promise<void> {
  fs.rmSync(file, { force: true });
  if (o.fs === 'none') {
    writeStream(file, 0, o.size, 0xdecaf);
    return;
  }
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, o.size);
  switch (o.fs) {
    case 'ext2':
    case 'ext3':
    case 'ext4': {
      const args = ['-q', '-F', '-t', o.fs];
      if (o.blockSize) args.push('-b', String(o.blockSize));
      if (o.label) args.push('-L', o.label);
      if (o.fromDir) args.push('-d', o.fromDir);
      sh('mke2fs', [...args, ...(o.mkfsArgs ?? []), file]);
      return;
    }
    case 'vfat': {
      const args: string[] = [];
      if (o.fatBits) args.push('-F', String(o.fatBits));
      if (o.blockSize) args.push('-s', String(o.blockSize / 512));
      if (o.label) args.push('-n', o.label);
      sh('mkfs.vfat', [...args, ...(o.mkfsArgs ?? []), file]);
      if (o.fromDir) {
        const entries = fs.readdirSync(o.fromDir).map((e) => path.join(o.fromDir!, e));
        if (entries.length) sh('mcopy', ['-s', '-p', '-m', '-D', 'o', '-i', file, ...entries, '::/'], { env: MTOOLS_ENV });
      }
      return;
    }
    case 'ntfs': {
      const args = ['-F', '-Q'];
      if (o.blockSize) args.push('-c', String(o.blockSize));
      if (o.label) args.push('-L', o.label);
      sh('mkntfs', [...args, ...(o.mkfsArgs ?? []), file]);
      if (o.fromDir) {
        const src = o.fromDir;
        await withLoop(file, {}, (dev) =>
          withMount(dev, 'ntfs', {}, (dir) => {
            sh('cp', ['-rd', '--preserve=timestamps,links', `${src}/.`, dir]);
          }),
        );
      }
      return;
    }
  }
}

export type PartitionKind = 'efi' | 'linux' | 'ntfs' | 'bios' | 'swap';

export interface PartitionSpec extends Omit<FsImageOptions, 'size'> {
  /** Bytes (a multiple of 512); omitted = the rest of the disk. */
  size?: number;
  /** A kind, a GPT type GUID, or an MBR type as '0x83'. Default from the filesystem. */
  type?: PartitionKind | string;
  /** GPT partition name. */
  name?: string;
}

export interface DiskOptions {
  table: 'gpt' | 'mbr';
  size: number;
  partitions: PartitionSpec[];
}

const GPT_KIND: Record<PartitionKind, string> = {
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  ntfs: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  bios: '21686148-6449-6E6F-744E-656564454649',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
};
const MBR_KIND: Partial<Record<PartitionKind, string>> = { efi: 'ef', linux: '83', ntfs: '7', swap: '82' };

/** Where makeDisk puts its bootloader-like bytes between the table and the first partition. */
export function postMbrGap(table: 'gpt' | 'mbr'): { offset: number; length: number } {
  return table === 'gpt' ? { offset: 40 * 512, length: 64 * 512 } : { offset: 512, length: 64 * 512 };
}

/** Writes a partition table with sfdisk and each partition's filesystem into its slot; returns the layout. */
export async function makeDisk(file: string, o: DiskOptions): Promise<PartitionInfo[]> {
  if (o.table === 'mbr' && o.partitions.length > 4) throw new Error('makeDisk: MBR supports 4 primary partitions');
  fs.rmSync(file, { force: true });
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, o.size);
  const lines = [`label: ${o.table === 'gpt' ? 'gpt' : 'dos'}`];
  for (const p of o.partitions) {
    const fields: string[] = [];
    if (p.size !== undefined) {
      if (p.size % 512) throw new Error('makeDisk: partition sizes must be multiples of 512');
      fields.push(`size=${p.size / 512}`);
    }
    fields.push(`type=${sfdiskType(o.table, p)}`);
    if (p.name !== undefined) {
      if (o.table !== 'gpt') throw new Error('makeDisk: partition names need a GPT');
      fields.push(`name="${p.name}"`);
    }
    lines.push(fields.join(', '));
  }
  sh('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', file], { input: lines.join('\n') + '\n' });

  const gap = postMbrGap(o.table);
  writeStream(file, gap.offset, gap.length, 0x6b00);

  const layout = readLayout(file);
  const scratch = tmpDir('devsnap-part-');
  try {
    for (let i = 0; i < o.partitions.length; i++) {
      const spec = o.partitions[i];
      const info = layout[i];
      if (spec.fs !== 'none') {
        info.fs = spec.fs;
        if (spec.label) info.label = spec.label;
      }
      const img = path.join(scratch, `p${info.index}.img`);
      await makeFsImage(img, { ...spec, size: info.size });
      copySparse(img, file, info.start);
      fs.rmSync(img);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    tmpDirs.delete(scratch);
  }
  return layout;
}

function sfdiskType(table: 'gpt' | 'mbr', p: PartitionSpec): string {
  const kind = (p.type ?? (p.fs === 'vfat' ? 'efi' : p.fs === 'ntfs' ? 'ntfs' : 'linux')) as string;
  if (table === 'gpt') {
    if (kind in GPT_KIND) return GPT_KIND[kind as PartitionKind];
    if (/^[0-9a-f]{8}-/i.test(kind)) return kind;
  } else {
    if (MBR_KIND[kind as PartitionKind]) return MBR_KIND[kind as PartitionKind]!;
    if (/^0x[0-9a-f]{1,2}$/i.test(kind)) return kind.slice(2);
  }
  throw new Error(`makeDisk: partition type ${kind} is not valid in a ${table} table`);
}

/** The partitions as sfdisk reads them back. */
export function readLayout(file: string): PartitionInfo[] {
  const t = JSON.parse(sh('sfdisk', ['-J', file]).stdout).partitiontable;
  const sector = t.sectorsize ?? 512;
  return (t.partitions ?? []).map((p: { node: string; start: number; size: number; type: string; uuid?: string; name?: string }) => {
    const info: PartitionInfo = {
      index: Number(/(\d+)$/.exec(p.node)![1]),
      start: p.start * sector,
      size: p.size * sector,
      type: t.label === 'gpt' ? p.type.toLowerCase() : '0x' + p.type.padStart(2, '0'),
    };
    if (p.uuid) info.uuid = p.uuid.toLowerCase();
    if (p.name) info.name = p.name;
    return info;
  });
}

/** Copies `src` into `dst` at `offset`, skipping all-zero MiBs so both stay sparse. */
export function copySparse(src: string, dst: string, offset: number): void {
  const buf = Buffer.alloc(1 << 20);
  const zero = Buffer.alloc(buf.length);
  const from = fs.openSync(src, 'r');
  const to = fs.openSync(dst, 'r+');
  try {
    for (let pos = 0; ; pos += buf.length) {
      const n = fs.readSync(from, buf, 0, buf.length, pos);
      if (n === 0) break;
      if (buf.compare(zero, 0, n, 0, n) !== 0) fs.writeSync(to, buf, 0, n, offset + pos);
      if (n < buf.length) break;
    }
  } finally {
    fs.closeSync(from);
    fs.closeSync(to);
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic content

/** A seeded PRNG (mulberry32): the same seed builds the same tree, so dedup results are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` incompressible bytes derived from `seed` (AES-CTR keystream: fast and reproducible). */
export function seededBytes(seed: number, length: number): Buffer {
  const key = crypto.createHash('sha256').update(`devsnap-${seed}`).digest();
  const c = crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(length));
}

/** Writes `length` seeded incompressible bytes into `file` at `offset`, in 4 MiB pieces. */
function writeStream(file: string, offset: number, length: number, seed: number): void {
  const fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w');
  try {
    for (let done = 0, k = 0; done < length; k++) {
      const n = Math.min(4 << 20, length - done);
      fs.writeSync(fd, seededBytes(seed * 7919 + k, n), 0, n, offset + done);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

const WORDS = (
  'const let function return import export interface async await if else for while class extends ' +
  'buffer offset length partition block chunk snapshot restore manifest config value error result ' +
  'the a of to in and is that for it with as was on be by this are from or have not'
).split(' ');

function text(rand: () => number, bytes: number, lineWords = 10): string {
  const out: string[] = [];
  let n = 0;
  while (n < bytes) {
    const words: string[] = [];
    const count = 1 + Math.floor(rand() * lineWords);
    for (let i = 0; i < count; i++) words.push(WORDS[Math.floor(rand() * WORDS.length)]);
    const line = '  '.repeat(Math.floor(rand() * 4)) + words.join(' ') + (rand() < 0.5 ? ';' : '') + '\n';
    out.push(line);
    n += line.length;
  }
  return out.join('').slice(0, bytes);
}

function dpkgStatus(rand: () => number, packages: number): string {
  const entries: string[] = [];
  for (let i = 0; i < packages; i++) {
    const v = `${1 + Math.floor(rand() * 9)}.${Math.floor(rand() * 30)}.${Math.floor(rand() * 10)}-${1 + Math.floor(rand() * 5)}`;
    entries.push(
      `Package: pkg-${i.toString(36)}\nStatus: install ok installed\nPriority: optional\nSection: utils\n` +
        `Installed-Size: ${Math.floor(rand() * 5000)}\nMaintainer: Debian Developers <debian@example.org>\n` +
        `Architecture: amd64\nVersion: ${v}\nDescription: ${text(rand, 60, 8).replace(/\n/g, ' ').trim()}\n`,
    );
  }
  return entries.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Workstation trees

export interface TreeOptions {
  /** Approximate total bytes of file data. */
  scale: number;
  seed?: number;
}

/**
 * Builds a developer workstation's root tree under `dir`: /etc, real binaries and libraries copied from
 * this machine, a dpkg status file, a home with a git-like project, compressible and incompressible
 * files, symlinks, hard links, a sparse file, modes 0600/0755/4755, non-root owners (as root) and
 * user.* xattrs. Returns the file count and bytes written.
 */
export function makeWorkstationTree(dir: string, o: TreeOptions): { files: number; bytes: number } {
  const rand = prng(o.seed ?? 1);
  let files = 0;
  let bytes = 0;
  const put = (rel: string, data: string | Buffer, mode = 0o644): string => {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data, { mode });
    fs.chmodSync(p, mode);
    files++;
    bytes += Buffer.byteLength(data);
    return p;
  };

  // /etc: small text files, one secret
  put('etc/hostname', 'devbox\n');
  put('etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  put('etc/fstab', 'UUID=0a1b2c3d / ext4 errors=remount-ro 0 1\nUUID=7A3B-1C2D /boot/efi vfat umask=0077 0 1\n');
  put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\ndev:x:1000:1000:Dev:/home/dev:/bin/bash\n');
  put('etc/shadow', 'root:*:19000:0:99999:7:::\ndev:$y$j9T$abc:19000:0:99999:7:::\n', 0o600);
  put('etc/apt/sources.list', 'deb http://deb.debian.org/debian bookworm main\n');
  const confs = Math.max(10, Math.min(400, Math.floor(o.scale / 100_000)));
  for (let i = 0; i < confs; i++) put(`etc/conf.d/service-${i}.conf`, text(rand, 200 + Math.floor(rand() * 3000)));

  // /var/lib/dpkg/status
  put('var/lib/dpkg/status', dpkgStatus(rand, Math.max(50, Math.min(5000, Math.floor(o.scale / 20_000)))));

  // /usr: real binaries and libraries (30% of the budget)
  let binBudget = o.scale * 0.3;
  for (const src of realFiles(['/usr/bin', '/usr/lib/x86_64-linux-gnu', '/usr/lib'], o.scale * 0.3)) {
    if (binBudget <= 0) break;
    const data = fs.readFileSync(src);
    const rel = path.join('usr', src.startsWith('/usr/bin') ? 'bin' : 'lib', path.basename(src));
    if (fs.existsSync(path.join(dir, rel))) continue;
    put(rel, data, src.startsWith('/usr/bin') ? 0o755 : 0o644);
    binBudget -= data.length;
  }
  put('usr/bin/devsnap-suid', '#!/bin/sh\necho setuid helper\n', 0o4755);
  put('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  fs.linkSync(path.join(dir, 'usr/bin/tool'), path.join(dir, 'usr/bin/tool-2.1')); // hard link pair
  fs.symlinkSync('tool', path.join(dir, 'usr/bin/tool-link'));
  fs.symlinkSync('/usr/bin/tool', path.join(dir, 'usr/bin/tool-abs'));
  fs.symlinkSync('../missing/target', path.join(dir, 'usr/bin/dangling'));

  // home: a project with sources (15%) and a git-like object store (10%)
  const home = 'home/dev';
  const srcBudget = o.scale * 0.15;
  for (let i = 0, n = 0; n < srcBudget; i++) {
    const s = text(rand, 500 + Math.floor(rand() * 8000));
    put(`${home}/project/src/mod${Math.floor(i / 50)}/file${i}.ts`, s);
    n += s.length;
  }
  put(`${home}/project/README.md`, '# project\n\nA sample project.\n');
  put(`${home}/project/name with spaces ü.txt`, 'unicode and spaces\n');
  for (let i = 0, n = 0; n < o.scale * 0.1; i++) {
    const blob = seededBytes((o.seed ?? 1) * 1000 + i, 200 + Math.floor(rand() * 20000));
    const id = crypto.createHash('sha1').update(blob).digest('hex');
    put(`${home}/project/.git/objects/${id.slice(0, 2)}/${id.slice(2)}`, blob, 0o444);
    n += blob.length;
  }
  put(`${home}/.ssh/id_ed25519`, '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', 0o600);

  // large compressible (a log, 20%) and incompressible (an archive, 20%) files
  put('var/log/syslog', text(rand, Math.floor(o.scale * 0.2), 14));
  put(`${home}/Downloads/archive.tar.zst`, seededBytes((o.seed ?? 1) * 31 + 7, Math.floor(o.scale * 0.2)));

  // a sparse file: a VM disk with a little data in a large hole
  const sparse = path.join(dir, home, 'vm/disk.raw');
  fs.mkdirSync(path.dirname(sparse), { recursive: true });
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, Math.max(8 << 20, Math.floor(o.scale / 2)));
  const fd = fs.openSync(sparse, 'r+');
  fs.writeSync(fd, seededBytes(99, 65536), 0, 65536, 1 << 20);
  fs.writeSync(fd, Buffer.from('end of disk\n'), 0, 12, (4 << 20) + 3);
  fs.closeSync(fd);
  files++;

  // xattrs and owners
  sh('setfattr', ['-n', 'user.comment', '-v', 'important file', path.join(dir, home, 'project/README.md')]);
  sh('setfattr', ['-n', 'user.origin', '-v', '0x00ff10', path.join(dir, 'usr/bin/tool')]);
  if (isRoot) {
    sh('chown', ['-R', '-h', '1000:1000', path.join(dir, home)]);
    fs.chownSync(path.join(dir, 'etc/shadow'), 0, 42);
    fs.chownSync(path.join(dir, 'var/log/syslog'), 0, 4);
  }
  return { files, bytes };
}

/** Regular files under `roots` (depth-first, name order) up to about `budget` bytes, none over 8 MiB. */
function realFiles(roots: string[], budget: number): string[] {
  const out: string[] = [];
  let total = 0;
  const walk = (d: string, depth: number): void => {
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (total >= budget) return;
      const p = path.join(d, name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (st.isFile() && st.size > 0 && st.size <= 8 << 20) {
        try {
          fs.accessSync(p, fs.constants.R_OK);
        } catch {
          continue;
        }
        out.push(p);
        total += st.size;
      }
    }
  };
  for (const r of roots) walk(r, 0);
  return out;
}

/**
 * Simulates a system upgrade: rewrites part of ~fraction of the regular files, removes ~fraction/5,
 * adds as many new ones and bumps package versions in /var/lib/dpkg/status.
 */
export function simulateUpgrade(dir: string, fraction: number, seed = 2): { modified: number; added: number; removed: number } {
  const rand = prng(seed);
  const all = listFiles(dir).filter((f) => !f.endsWith('var/lib/dpkg/status'));
  let modified = 0;
  let removed = 0;
  let added = 0;
  for (const f of all) {
    const r = rand();
    if (r < fraction / 5) {
      fs.rmSync(f);
      removed++;
    } else if (r < fraction) {
      const st = fs.statSync(f);
      fs.chmodSync(f, st.mode | 0o200);
      const fd = fs.openSync(f, 'r+');
      const patch = seededBytes(seed * 100_003 + modified, Math.min(4096, Math.max(16, st.size >> 3)));
      fs.writeSync(fd, patch, 0, patch.length, Math.floor(rand() * Math.max(1, st.size - patch.length)));
      fs.closeSync(fd);
      fs.chmodSync(f, st.mode);
      modified++;
    }
  }
  const toAdd = Math.max(1, Math.round((all.length * fraction) / 5));
  for (; added < toAdd; added++) {
    const p = path.join(dir, `usr/lib/upgrade-${seed}/new-${added}.so`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, rand() < 0.5 ? seededBytes(seed * 7 + added, 1000 + Math.floor(rand() * 50_000)) : text(rand, 4000));
  }
  const status = path.join(dir, 'var/lib/dpkg/status');
  if (fs.existsSync(status)) {
    const bumped = fs.readFileSync(status, 'utf8').replace(/^Version: (.*)-(\d+)$/gm, (m, v: string, r: string) => (rand() < fraction ? `Version: ${v}-${Number(r) + 1}` : m));
    fs.writeFileSync(status, bumped);
  }
  return { modified, added, removed };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checking and comparing

export type FsCheckKind = 'ext2' | 'ext3' | 'ext4' | 'vfat' | 'ntfs';

/** Read-only consistency check of an image file or device: e2fsck -fn, fsck.vfat -n, ntfsfix -n. */
export function fsck(kind: FsCheckKind, target: string): { ok: boolean; output: string } {
  const [cmd, args] = kind === 'vfat' ? ['fsck.vfat', ['-n', target]] : kind === 'ntfs' ? ['ntfsfix', ['-n', target]] : ['e2fsck', ['-fn', target]];
  const r = sh(cmd as string, args as string[], { allowFail: true });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

export type DigestField = 'mode' | 'owner' | 'mtime' | 'xattrs' | 'links' | 'dirs';

export interface DigestOptions {
  /** What to compare besides path, type, size and content; default all. */
  fields?: DigestField[];
  /** Top-level names to leave out; default ['lost+found']. */
  ignore?: string[];
}

const ALL_FIELDS: DigestField[] = ['mode', 'owner', 'mtime', 'xattrs', 'links', 'dirs'];

/**
 * A sorted listing of every path under `dir` (not `dir` itself), one line each: type, mode, owner,
 * size, mtime (s), symlink target or content sha256, hard-link group and xattrs. Two trees are equal
 * when their digests are equal; use diffDigests() for a readable mismatch.
 */
export function treeDigest(dir: string, opts: DigestOptions = {}): string {
  const f = new Set(opts.fields ?? ALL_FIELDS);
  const ignore = new Set(opts.ignore ?? ['lost+found']);
  const xattrs = f.has('xattrs') ? readXattrs(dir) : new Map<string, string>();
  const linkGroup = new Map<string, string>();
  const lines: string[] = [];
  const walk = (rel: string): void => {
    const names = fs.readdirSync(path.join(dir, rel)).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      if (!rel && ignore.has(name)) continue;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      const cols = [r, type];
      if (f.has('mode')) cols.push((st.mode & 0o7777).toString(8));
      if (f.has('owner')) cols.push(`${st.uid}:${st.gid}`);
      if (type === 'f') cols.push(String(st.size), sha256File(p));
      if (type === 'l') cols.push(`-> ${fs.readlinkSync(p)}`);
      if (f.has('mtime') && (type !== 'd' || f.has('dirs'))) cols.push(`t=${Math.floor(st.mtimeMs / 1000)}`);
      if (f.has('links') && type === 'f' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (!linkGroup.has(key)) linkGroup.set(key, r);
        cols.push(`hl=${linkGroup.get(key)}`);
      }
      const xa = xattrs.get(p);
      if (xa) cols.push(`x{${xa}}`);
      lines.push(cols.join('\t'));
      if (type === 'd') walk(r);
    }
  };
  walk('');
  return lines.join('\n') + '\n';
}

/** The first few lines that differ between two digests (empty when equal). */
export function diffDigests(a: string, b: string, max = 10): string {
  const la = new Set(a.split('\n'));
  const lb = new Set(b.split('\n'));
  const onlyA = [...la]
    .filter((l) => !lb.has(l))
    .slice(0, max)
    .map((l) => `- ${l}`);
  const onlyB = [...lb]
    .filter((l) => !la.has(l))
    .slice(0, max)
    .map((l) => `+ ${l}`);
  return [...onlyA, ...onlyB].join('\n');
}

function sha256File(p: string): string {
  const h = crypto.createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  const fd = fs.openSync(p, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Every xattr under `dir` (one getfattr run), keyed by absolute path: 'name=0xhex;...'. */
function readXattrs(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const r = sh('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path.resolve(dir)], { allowFail: true });
  let file = '';
  let attrs: string[] = [];
  const flush = (): void => {
    if (file && attrs.length) out.set(file, attrs.sort().join(';'));
    attrs = [];
  };
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      flush();
      file = unescapeGetfattr(line.slice(8));
    } else if (line && !line.startsWith('system.ntfs')) {
      attrs.push(line);
    }
  }
  flush();
  return out;
}

/** getfattr prints unusual bytes in file names as \ooo octal escapes and '\' as '\\'. */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length;) {
    if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 2;
    } else if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 4;
    } else {
      bytes.push(...Buffer.from(s[i]));
      i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Digest of the ext2/3/4 filesystem in an image file (attached read-only) or on a device (root). */
export async function ext4TreeDigest(imageOrDev: string, opts: DigestOptions = {}): Promise<string> {
  const digest = (dev: string): Promise<string> => withMount(dev, 'ext', { readOnly: true }, (dir) => treeDigest(dir, opts));
  return fs.statSync(imageOrDev).isBlockDevice() ? digest(imageOrDev) : withLoop(imageOrDev, { readOnly: true }, digest);
}

/** Digest of an NTFS image or device, read through ntfs-3g (root). */
export async function ntfsTreeDigest(imageOrDev: string, opts: DigestOptions = {}): Promise<string> {
  const digest = (dev: string): Promise<string> => withMount(dev, 'ntfs', { readOnly: true }, (dir) => treeDigest(dir, opts));
  return fs.statSync(imageOrDev).isBlockDevice() ? digest(imageOrDev) : withLoop(imageOrDev, { readOnly: true }, digest);
}

/** Digest of a FAT image or device, copied out with mtools (no root). Default fields: mtime only (FAT has no owners/modes). */
export function vfatTreeDigest(imageOrDev: string, opts: DigestOptions = { fields: ['mtime'] }): string {
  const out = tmpDir('devsnap-vfat-');
  try {
    const listing = sh('mdir', ['-b', '-i', imageOrDev, '::/'], { env: MTOOLS_ENV, allowFail: true }).stdout.trim();
    if (listing) sh('mcopy', ['-s', '-p', '-m', '-n', '-i', imageOrDev, '::/*', out], { env: MTOOLS_ENV });
    return treeDigest(out, opts);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    tmpDirs.delete(out);
  }
}
