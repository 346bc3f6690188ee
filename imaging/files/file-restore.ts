// Restores selected files and folders of a snapshot (read through ImageFs) onto a running system or
// into another folder, preserving owners (as root), modes (setuid/setgid/sticky too), times, xattrs
// (POSIX ACLs included, through the `setfattr` tool of the attr package, batched), symlinks and hard
// links within the restored set.
//
// Safety: a file or symlink is written under a temporary name in its destination directory, fsync'd,
// given its metadata and only then renamed over the old one, so an interrupted restore leaves every
// path either as it was or fully restored, never half-written. Files that are not in the snapshot are
// left alone (a restore adds and replaces, it does not delete). A directory in the way of a file (or a
// file in the way of a directory) is a conflict that is reported, not removed.
import { spawn } from 'child_process';
import { childCommand } from '../disk/privilege';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { normalizePath } from '../filesystems/image-fs/base';
import type { ImageFileType, ImageFs, ImageStat } from '../filesystems/image-fs/types';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { isZero } from '../core/bytes';
import { writeFully } from '../core/fsutil';
import type { RestoreAction, RestoreEntry, RestoreFilesResult } from '../protocol';

export type { RestoreAction, RestoreEntry, RestoreFilesResult } from '../protocol';

export interface RestoreFilesOptions {
  dryRun?: boolean;
  /**
   * true: each path goes to targetRoot + its full path (targetRoot '/' puts it back in its original
   * place); false: into targetRoot under its base name. Default: true when targetRoot is '/'.
   */
  inPlace?: boolean;
  /** Compare contents (not only size and mtime) to decide that an existing file is unchanged. */
  deep?: boolean;
  /** fsync each file before renaming it into place (default true). */
  fsync?: boolean;
  /**
   * Running as root: give everything written to this owner instead of the snapshot's owners, and
   * leave out the trusted.* and security.* xattrs (file capabilities among them), as if that user
   * had restored the files (the elevated helper restoring into a user's folder).
   */
  owner?: { uid: number; gid: number };
  /** Called with the plan (dry run or not) before anything is written; throw to refuse it. */
  checkPlan?: (entries: RestoreEntry[]) => void | Promise<void>;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log?: (msg: string) => void;
}

interface Planned extends RestoreEntry {
  stat: ImageStat;
  existing: fs.Stats | null;
  /** For the second and later names of a hard-linked file: the first name's destination. */
  linkTo?: string;
}

const BLOCK = 1 << 20;
const XATTR_BATCH = 256;
const SPARSE_PIECE = 64 << 10;
const isRoot = process.getuid?.() === 0;

function sameTime(ms: number, st: fs.Stats): boolean {
  return Math.abs(st.mtimeMs - ms) < 1;
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

function fsType(st: fs.Stats): ImageFileType {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
}

/** A path as setfattr --restore reads it: bytes outside a safe set as \ooo octal escapes. */
export function escapeForSetfattr(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9/._+,:@-]/.test(c) ? c : '\\' + b.toString(8).padStart(3, '0');
  }
  return out;
}

/** Sets xattrs on many paths with one `setfattr -h --restore` run; returns its complaints. */
async function setXattrs(items: { path: string; xattrs: Record<string, Buffer> }[]): Promise<string[]> {
  const todo = items.filter((i) => Object.keys(i.xattrs).length);
  if (!todo.length) return [];
  const dump = todo.map((i) => [`# file: ${escapeForSetfattr(i.path)}`, ...Object.entries(i.xattrs).map(([k, v]) => `${k}=${v.length ? '0x' + v.toString('hex') : '""'}`), ''].join('\n')).join('\n');
  const file = path.join(os.tmpdir(), `devsnap-xattrs-${process.pid}-${crypto.randomBytes(4).toString('hex')}.txt`);
  await fs.promises.writeFile(file, dump + '\n', { mode: 0o600 });
  try {
    return await new Promise<string[]>((resolve) => {
      const c = childCommand('setfattr', ['-h', `--restore=${file}`]);
      const child = spawn(c.file, c.args, { stdio: ['ignore', 'ignore', 'pipe'], env: c.env });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('error', (e) => resolve([`xattrs not restored: setfattr could not run (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'install the attr package' : e.message})`]));
      child.on('close', () =>
        resolve(
          err
            .split('\n')
            .filter(Boolean)
            .map((l) => `setfattr: ${l}`),
        ),
      );
    });
  } finally {
    await fs.promises.rm(file, { force: true });
  }
}

function tempPath(dest: string): string {
  return path.join(path.dirname(dest), `.devsnap-${crypto.randomBytes(6).toString('hex')}.tmp`);
}

export async function restoreFiles(ifs: ImageFs, paths: string[], targetRoot: string, opts: RestoreFilesOptions = {}): Promise<RestoreFilesResult> {
  if (!paths.length) throw new DevsnapError('USAGE', 'No paths to restore were given.');
  const root = path.resolve(targetRoot);
  const inPlace = opts.inPlace ?? root === '/';
  const owner = opts.owner;
  /** Who an entry should belong to: the snapshot's owner, or `opts.owner`. */
  const own = (st: { uid: number; gid: number }) => owner ?? st;
  const keepXattr = (k: string) => !owner || !(k.startsWith('trusted.') || k.startsWith('security.'));
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.log?.(`warning: ${m}`);
  };
  const cancelled = () => {
    if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'File restore cancelled; every path is either as it was or fully restored.');
  };

  // Selected paths, without those inside another selected path.
  const sel = [...new Set(paths.map(normalizePath))].sort();
  const chosen = sel.filter((p) => !sel.some((q) => q !== p && (q === '/' || p.startsWith(q + '/'))));
  const dests = new Map<string, string>();
  for (const p of chosen) {
    const dest = inPlace ? path.join(root, p) : p === '/' ? root : path.join(root, path.posix.basename(p));
    if ([...dests.values()].includes(dest))
      throw new DevsnapError('USAGE', `Two selected paths would both be restored to ${dest}.`, 'Restore them in separate runs or with their full paths (in place).');
    dests.set(p, dest);
  }

  // ---- plan
  const plan: Planned[] = [];
  const firstLink = new Map<number, string>();
  for (const p of chosen) {
    const top = await ifs.stat(p);
    const dest = dests.get(p)!;
    for await (const st of ifs.walk(p)) {
      cancelled();
      const d = st.path === top.path ? dest : path.join(dest, st.path.slice(top.path === '/' ? 0 : top.path.length));
      const existing = await lstatOrNull(d);
      const e: Planned = { path: st.path, dest: d, type: st.type, action: 'create', size: st.type === 'file' ? st.size : 0, stat: st, existing };
      if (st.type === 'other') {
        e.action = 'skip';
        e.reason = `${st.special ?? 'special'} files are not restored`;
      } else if (existing) {
        const et = fsType(existing);
        const metaSame = (existing.mode & 0o7777) === st.mode && (!isRoot || (existing.uid === own(st).uid && existing.gid === own(st).gid));
        if (st.type === 'dir' ? et !== 'dir' : et === 'dir') {
          e.action = 'conflict';
          e.reason = st.type === 'dir' ? `a ${et} is in the way of the directory` : 'a directory is in the way';
        } else if (st.type === 'dir') {
          e.action = metaSame && sameTime(st.mtime, existing) ? 'unchanged' : 'replace';
          if (e.action === 'replace') e.reason = 'metadata';
        } else if (st.type === 'symlink') {
          const same = et === 'symlink' && (await fs.promises.readlink(d)) === st.target && (!isRoot || (existing.uid === own(st).uid && existing.gid === own(st).gid));
          e.action = same ? 'unchanged' : 'replace';
        } else if (et === 'file' && existing.size === st.size && metaSame && sameTime(st.mtime, existing) && (!opts.deep || (await sameContent(ifs, st, d)))) {
          e.action = 'unchanged';
        } else {
          e.action = 'replace';
          e.reason = et !== 'file' ? `replaces a ${et}` : existing.size !== st.size ? 'content' : 'content or metadata';
        }
      }
      if (st.type === 'file' && st.nlink > 1 && e.action !== 'skip' && e.action !== 'conflict') {
        const first = firstLink.get(st.ino);
        if (first) {
          e.linkTo = first;
          if (existing && existing.ino === (await lstatOrNull(first))?.ino) e.action = 'unchanged';
          else if (e.action === 'unchanged') e.action = 'replace';
        } else firstLink.set(st.ino, d);
      }
      plan.push(e);
    }
  }
  const totals: Record<RestoreAction, number> = { create: 0, replace: 0, unchanged: 0, conflict: 0, skip: 0 };
  let bytesToWrite = 0;
  for (const e of plan) {
    totals[e.action]++;
    if ((e.action === 'create' || e.action === 'replace') && e.type === 'file' && !e.linkTo) bytesToWrite += e.size;
  }
  const entries = (): RestoreEntry[] => plan.map(({ stat: _s, existing: _e, linkTo: _l, ...rest }) => rest);
  await opts.checkPlan?.(entries());
  if (opts.dryRun) return { dryRun: true, targetRoot: root, inPlace, entries: entries(), totals, bytesToWrite, bytesWritten: 0, warnings };
  if (!isRoot && !owner && plan.some((e) => e.stat.uid !== process.getuid?.() && e.action !== 'unchanged')) warn('not running as root: owners are not restored (files belong to you)');

  // ---- execute
  const meter = new ProgressMeter('restore-files', bytesToWrite, opts.onProgress);
  let bytesWritten = 0;
  const pending: { tmp: string; dest: string; st: ImageStat; symlink: boolean }[] = [];
  const pendingDests = new Set<string>();
  const dirsToFinish: { dest: string; st: ImageStat }[] = [];

  const flush = async () => {
    if (!pending.length) return;
    for (const w of await setXattrs(pending.map((p) => ({ path: p.tmp, xattrs: owned(p.st.xattrs) })))) warn(w);
    for (const p of pending) {
      const at = p.st.atime / 1000;
      const mt = p.st.mtime / 1000;
      if (p.symlink) await fs.promises.lutimes(p.tmp, at, mt);
      else await fs.promises.utimes(p.tmp, at, mt);
      await fs.promises.rename(p.tmp, p.dest);
    }
    pending.length = 0;
    pendingDests.clear();
  };

  // Parent directories of each destination that do not exist yet: created from the snapshot's metadata in place, else plainly.
  const ensureParents = async (p: string, dest: string) => {
    const missing: { dir: string; image: string }[] = [];
    let d = path.dirname(dest);
    let img = path.posix.dirname(p);
    while (!(await lstatOrNull(d))) {
      missing.unshift({ dir: d, image: img });
      if (d === path.dirname(d)) break;
      d = path.dirname(d);
      img = path.posix.dirname(img);
    }
    for (const m of missing) {
      await fs.promises.mkdir(m.dir);
      const st = inPlace ? await ifs.tryStat(m.image) : null;
      if (st?.type === 'dir') {
        if (isRoot) await fs.promises.chown(m.dir, own(st).uid, own(st).gid);
        await fs.promises.chmod(m.dir, st.mode);
      } else if (isRoot && owner) await fs.promises.chown(m.dir, owner.uid, owner.gid);
    }
  };

  /** The xattrs to set: all of them, or (for `opts.owner`) those a user may set. */
  const owned = (x: Record<string, Buffer>) => (owner ? Object.fromEntries(Object.entries(x).filter(([k]) => keepXattr(k))) : x);

  const tmpFiles = new Set<string>();
  try {
    for (const p of chosen) await ensureParents(p, dests.get(p)!);
    for (const e of plan) {
      cancelled();
      if (e.action === 'skip' || e.action === 'conflict' || e.action === 'unchanged') {
        if (e.action === 'conflict') warn(`${e.dest}: ${e.reason}; not restored`);
        continue;
      }
      const st = e.stat;
      if (st.type === 'dir') {
        if (!e.existing) await fs.promises.mkdir(e.dest, { mode: 0o700 });
        dirsToFinish.push({ dest: e.dest, st });
        continue;
      }
      const tmp = tempPath(e.dest);
      tmpFiles.add(tmp);
      if (e.linkTo) {
        if (pendingDests.has(e.linkTo)) await flush();
        await fs.promises.link(e.linkTo, tmp);
        await fs.promises.rename(tmp, e.dest);
        tmpFiles.delete(tmp);
        continue;
      }
      if (st.type === 'symlink') {
        await fs.promises.symlink(st.target ?? '', tmp);
        if (isRoot) await fs.promises.lchown(tmp, own(st).uid, own(st).gid);
        // Only trusted.* and security.* xattrs can be set on a symlink.
        const xattrs = Object.fromEntries(Object.entries(st.xattrs).filter(([k]) => k.startsWith('trusted.') || k.startsWith('security.')));
        pending.push({ tmp, dest: e.dest, st: { ...st, xattrs }, symlink: true });
      } else {
        const fh = await fs.promises.open(tmp, 'wx', 0o600);
        try {
          for (let pos = 0; pos < st.size; pos += BLOCK) {
            cancelled();
            const n = Math.min(BLOCK, st.size - pos);
            const buf = await ifs.read(st.path, pos, n);
            // Only the non-zero 64 KiB pieces are written, so holes stay holes.
            for (let off = 0; off < n; off += SPARSE_PIECE) {
              const piece = buf.subarray(off, Math.min(n, off + SPARSE_PIECE));
              if (isZero(piece)) continue;
              await writeFully(fh, piece, pos + off);
            }
            bytesWritten += n;
            meter.add(n);
          }
          await fh.truncate(st.size); // sparse: holes stay holes
          if (isRoot) await fh.chown(own(st).uid, own(st).gid);
          await fh.chmod(st.mode); // after chown, which clears setuid/setgid
          if (opts.fsync !== false) await fh.sync();
        } finally {
          await fh.close();
        }
        pending.push({ tmp, dest: e.dest, st, symlink: false });
      }
      pendingDests.add(e.dest);
      if (pending.length >= XATTR_BATCH) await flush();
    }
    await flush();
    tmpFiles.clear();
    // Directories last, deepest first: their times would change while their contents were written.
    for (const d of dirsToFinish) {
      if (isRoot) await fs.promises.chown(d.dest, own(d.st).uid, own(d.st).gid);
      await fs.promises.chmod(d.dest, d.st.mode);
    }
    for (let i = 0; i < dirsToFinish.length; i += XATTR_BATCH)
      for (const w of await setXattrs(dirsToFinish.slice(i, i + XATTR_BATCH).map((d) => ({ path: d.dest, xattrs: owned(d.st.xattrs) })))) warn(w);
    for (const d of [...dirsToFinish].reverse()) await fs.promises.utimes(d.dest, d.st.atime / 1000, d.st.mtime / 1000);
    meter.finish();
  } catch (err) {
    // Leave no temporary files behind; whatever was renamed into place is complete.
    for (const t of [...tmpFiles, ...pending.map((p) => p.tmp)]) await fs.promises.rm(t, { force: true }).catch(() => undefined);
    throw toDevsnapError(err, 'the restore target');
  }
  return { dryRun: false, targetRoot: root, inPlace, entries: entries(), totals, bytesToWrite, bytesWritten, warnings };
}

async function sameContent(ifs: ImageFs, st: ImageStat, file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    for (let pos = 0; pos < st.size; pos += BLOCK) {
      const n = Math.min(BLOCK, st.size - pos);
      const a = await ifs.read(st.path, pos, n);
      const b = Buffer.alloc(n);
      await fh.read(b, 0, n, pos);
      if (!a.equals(b)) return false;
    }
    return true;
  } finally {
    await fh.close();
  }
}
