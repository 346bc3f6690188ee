// The helper's own checks of everything it is handed: the secret file and the socket it was
// pointed at (owned by the requesting user, in a folder only that user can enter), and every path
// in a request: disks must be real block devices or the user's own regular image files, never
// anything under /proc or /sys; repositories must be folders the user owns (or root's, when the
// request says so). See README.md beside this file for why each check exists.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../errors';

export class HelperRefusal extends DevsnapError {}

const refuse = (code: 'USAGE' | 'PERMISSION' | 'BAD_SOURCE' | 'BAD_TARGET', message: string, hint?: string) => new HelperRefusal(code, message, hint);

const FORBIDDEN_TREES = ['/proc', '/sys'];
/** Owners and mode bits mean nothing on Windows (ACLs do): those checks are POSIX only (README.md, limitations). */
const POSIX = process.platform !== 'win32';
const inTree = (p: string, root: string) => p === root || p.startsWith(root + '/');

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/** A folder only `uid` can enter: a real directory (not a symlink), owned by uid, no group/other bits. */
export function checkPrivateDir(dir: string, uid: number, what: string): fs.Stats {
  const st = lstatOrNull(dir);
  if (!st || !st.isDirectory()) throw refuse('PERMISSION', `Refused: the ${what} folder ${dir} is not a directory (or is a symbolic link).`);
  if (!POSIX) return st;
  if (st.uid !== uid) throw refuse('PERMISSION', `Refused: the ${what} folder ${dir} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}).`);
  if (st.mode & 0o077) throw refuse('PERMISSION', `Refused: the ${what} folder ${dir} can be entered by other users (mode ${(st.mode & 0o777).toString(8)}); it must be 0700.`);
  return st;
}

/**
 * Reads the one-time secret: a regular file (not a symlink) owned by uid, mode 0600 or 0400, in
 * a private folder of uid. Deletes it once read, whatever the outcome of the checks after it.
 * Returns the secret and the file's group (the user's group, for files the helper creates).
 */
export function readSecretFile(file: string, uid: number): { secret: string; gid: number } {
  if (!path.isAbsolute(file)) throw refuse('USAGE', `Refused: the secret file ${file} is not an absolute path.`);
  checkPrivateDir(path.dirname(file), uid, 'secret file');
  const st = lstatOrNull(file);
  if (!st || !st.isFile()) throw refuse('PERMISSION', `Refused: the secret file ${file} is missing, not a regular file, or a symbolic link.`);
  if (POSIX && st.uid !== uid) throw refuse('PERMISSION', `Refused: the secret file ${file} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}).`);
  if (POSIX && st.mode & 0o177) throw refuse('PERMISSION', `Refused: the secret file ${file} has mode ${(st.mode & 0o777).toString(8)}; it must be readable by its owner only (0600).`);
  if (st.nlink !== 1) throw refuse('PERMISSION', `Refused: the secret file ${file} has other hard links.`);
  let secret: string;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  try {
    const fst = fs.fstatSync(fd);
    if (fst.ino !== st.ino || fst.dev !== st.dev) throw refuse('PERMISSION', `Refused: the secret file ${file} was replaced while being read.`);
    if (fst.size > 4096) throw refuse('USAGE', `Refused: the secret file ${file} is too large to be a secret.`);
    secret = fs.readFileSync(fd, 'utf8').trim();
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  if (!/^[0-9a-f]{64}$/.test(secret)) throw refuse('USAGE', `Refused: the secret file ${file} does not hold a devsnap secret.`);
  return { secret, gid: st.gid };
}

/**
 * The socket the helper connects to: a socket file owned by uid in a private folder of uid. Node
 * cannot ask the kernel who listens on it (no SO_PEERCRED): ownership of the file and its folder
 * is what tells us that the requesting user created it; the handshake then proves the listener
 * knows the secret.
 */
export function checkSocketPath(socket: string, uid: number): void {
  if (!POSIX) {
    // A named pipe (\\.\pipe\...): only its name can be checked here.
    if (!/^\\\\[.?]\\pipe\\devsnap-helper-[\w-]+$/.test(socket)) throw refuse('USAGE', `Refused: ${socket} is not a devsnap helper pipe.`);
    return;
  }
  if (!path.isAbsolute(socket)) throw refuse('USAGE', `Refused: the socket path ${socket} is not absolute.`);
  checkPrivateDir(path.dirname(socket), uid, 'socket');
  const st = lstatOrNull(socket);
  if (!st || !st.isSocket()) throw refuse('PERMISSION', `Refused: ${socket} is not a socket.`);
  if (st.uid !== uid) throw refuse('PERMISSION', `Refused: the socket ${socket} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}).`);
}

export interface ResolvedDisk {
  path: string;                 // the real path to use (symlinks resolved)
  kind: 'block' | 'file' | 'new-file';
}

/**
 * A source or target of imaging: after resolving every symlink it must be a block device, or a
 * regular file owned by the requesting user, or (targets only) a new file in a folder the user
 * owns. Never a path under /proc or /sys (whose "regular files" are kernel interfaces such as
 * /proc/self/mem or /proc/kcore).
 */
export function resolveDiskPath(p: string, role: 'source' | 'target', uid: number): ResolvedDisk {
  const code = role === 'source' ? 'BAD_SOURCE' : 'BAD_TARGET';
  let real: string;
  let exists = true;
  try {
    real = fs.realpathSync(p);
  } catch {
    exists = false;
    if (role === 'source') throw refuse(code, `Refused: the source ${p} does not exist.`);
    let dir: string;
    try {
      dir = fs.realpathSync(path.dirname(p));
    } catch {
      throw refuse(code, `Refused: the folder of the target ${p} does not exist.`);
    }
    const base = path.basename(p);
    if (!base || base === '.' || base === '..') throw refuse(code, `Refused: ${p} is not a file name.`);
    real = path.join(dir, base);
  }
  if (FORBIDDEN_TREES.some((t) => inTree(real, t))) {
    throw refuse(code, `Refused: the ${role} ${p} resolves to ${real}, a kernel interface under ${FORBIDDEN_TREES.find((t) => inTree(real, t))}, not a disk.`, 'Give a block device such as /dev/sdb or a disk image file.');
  }
  if (!exists) {
    const dst = fs.statSync(path.dirname(real));
    if (!dst.isDirectory()) throw refuse(code, `Refused: ${path.dirname(real)} is not a folder.`);
    if (dst.uid !== uid) throw refuse('PERMISSION', `Refused: a new image file ${real} would be created in ${path.dirname(real)}, which the requesting user (uid ${uid}) does not own.`, 'Choose a folder of your own for the new image file.');
    return { path: real, kind: 'new-file' };
  }
  const st = fs.statSync(real);
  if (st.isBlockDevice()) return { path: real, kind: 'block' };
  if (st.isFile()) {
    if (st.uid !== uid) {
      throw refuse('PERMISSION', `Refused: the image file ${real} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}); the helper reads and writes only your own image files (and block devices).`, `Make the file yours (chown) or use it without elevation.`);
    }
    return { path: real, kind: 'file' };
  }
  throw refuse(code, `Refused: the ${role} ${p}${real !== p ? ` (${real})` : ''} is ${st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : 'not a block device or regular file'}.`, 'Give a block device such as /dev/sdb or a disk image file.');
}

export interface ResolvedRepo {
  path: string;
  exists: boolean;
  /** The owner of the repository (and of the files the helper writes into it). */
  uid: number;
}

/**
 * A repository folder: resolved; an existing one must be a directory owned by the requesting
 * user, or by root when the request says allowRootRepository; its top-level entries must not be
 * symbolic links (root must not be led to write elsewhere). A new one (snapshot only) is created
 * in a folder the user owns (or root's, with allowRootRepository) and handed to the user.
 */
export function resolveRepository(p: string, uid: number, allowRoot: boolean, mayCreate: boolean): ResolvedRepo {
  const okOwner = (o: number) => o === uid || (allowRoot && o === 0);
  const ownerText = `the requesting user (uid ${uid})${allowRoot ? ' or root' : ''}`;
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    if (!mayCreate) throw refuse('USAGE', `Refused: the repository ${p} does not exist.`);
    let parent: string;
    try {
      parent = fs.realpathSync(path.dirname(p));
    } catch {
      throw refuse('USAGE', `Refused: the folder ${path.dirname(p)} for the new repository ${p} does not exist.`);
    }
    const real2 = path.join(parent, path.basename(p));
    if (FORBIDDEN_TREES.some((t) => inTree(real2, t))) throw refuse('USAGE', `Refused: ${real2} is under a kernel interface folder.`);
    const st = fs.statSync(parent);
    if (!st.isDirectory() || !okOwner(st.uid)) {
      throw refuse('PERMISSION', `Refused: the new repository ${p} would be created in ${parent}, which belongs to uid ${st.uid}, not to ${ownerText}.`, allowRoot ? undefined : 'Create the repository folder yourself first, or choose a folder of your own.');
    }
    return { path: real2, exists: false, uid }; // created for, and handed to, the requesting user
  }
  if (FORBIDDEN_TREES.some((t) => inTree(real, t))) throw refuse('USAGE', `Refused: the repository ${p} resolves to ${real}, under a kernel interface folder.`);
  const st = fs.statSync(real);
  if (!st.isDirectory()) throw refuse('USAGE', `Refused: the repository ${p} is not a folder.`);
  if (!okOwner(st.uid)) {
    throw refuse('PERMISSION', `Refused: the repository ${real} belongs to uid ${st.uid}, not to ${ownerText}.`, st.uid === 0 ? 'A repository owned by root must be named explicitly (allowRootRepository).' : undefined);
  }
  for (const e of ['config.json', 'data', 'index', 'snapshots', 'locks']) {
    const est = lstatOrNull(path.join(real, e));
    if (est?.isSymbolicLink()) throw refuse('PERMISSION', `Refused: ${path.join(real, e)} in the repository is a symbolic link.`);
  }
  return { path: real, exists: true, uid: st.uid };
}

/** Gives every entry under `dir` (and dir) that is not owned by uid to uid:gid, without following symlinks. */
export function chownTree(dir: string, uid: number, gid: number): number {
  let changed = 0;
  const walk = (p: string): void => {
    const st = lstatOrNull(p);
    if (!st) return;
    if (st.uid !== uid) {
      try {
        fs.lchownSync(p, uid, gid);
        changed++;
      } catch {
        /* vanished or not ours to change: left as it is */
      }
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(p);
      } catch {
        return;
      }
      for (const n of names) walk(path.join(p, n));
    }
  };
  walk(dir);
  return changed;
}

/** Folders a file restore never writes into, even in place: kernel interfaces and device nodes. */
const NO_FILES_TREES = ['/proc', '/sys', '/dev'];
const within = (p: string, root: string) => root === '/' || inTree(p, root);

export interface ResolvedFilesTarget {
  /** The real path of the folder restored into. */
  path: string;
  /** 'user': the requesting user's own folder; 'root': a root-owned folder, only in place (e.g. '/'). */
  owner: 'user' | 'root';
}

/**
 * The folder of a file restore (restoreFiles): resolved, an existing directory, not a kernel
 * interface or device folder, and either owned by the requesting user (no flag needed), or owned
 * by root for an in-place restore (putting files back where they were: '/', or a mounted
 * partition's folder) that the user confirmed (`confirmed`; a dry run writes nothing and needs
 * no confirmation). Folders of other users are refused.
 */
export function resolveFilesTarget(p: string, uid: number, o: { inPlace: boolean; confirmed: boolean; dryRun: boolean }): ResolvedFilesTarget {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    throw refuse('BAD_TARGET', `Refused: the folder ${p} to restore files into does not exist.`);
  }
  const forbidden = NO_FILES_TREES.find((t) => inTree(real, t));
  if (forbidden) throw refuse('BAD_TARGET', `Refused: ${p}${real !== p ? ` (${real})` : ''} is under ${forbidden}, which holds kernel interfaces or device nodes, not files to restore.`);
  const st = fs.statSync(real);
  if (!st.isDirectory()) throw refuse('BAD_TARGET', `Refused: ${real} is not a folder; files are restored into a folder.`);
  if (!POSIX || st.uid === uid) return { path: real, owner: 'user' };
  if (st.uid !== 0) {
    throw refuse('PERMISSION', `Refused: the folder ${real} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}); the helper restores files only into your own folders or, in place, into the system's.`, 'Choose a folder of your own.');
  }
  if (!o.inPlace) {
    throw refuse('PERMISSION', `Refused: the folder ${real} belongs to root; the helper restores files into a root-owned folder only in place (back to their original place).`, 'Choose a folder of your own, or restore the files to their original place.');
  }
  if (!o.dryRun && !o.confirmed) {
    throw refuse('USAGE', `Refused: restoring files in place under ${real} replaces system files, and the request does not say the user confirmed it.`, 'Ask the user, then send the request with confirmed: true.');
  }
  return { path: real, owner: 'root' };
}

/**
 * The destinations of a file restore's plan, before anything is written: each must lie below the
 * target, and every existing folder on the way that is a symbolic link must stay inside a user's
 * target folder (so a link the user planted cannot lead root's writes elsewhere) or, in a
 * root-owned target, be root's own (the system's links, such as /lib → usr/lib on merged-/usr
 * systems). Nothing may end up under /proc, /sys or /dev.
 */
export function checkFileDestinations(dests: Iterable<string>, t: ResolvedFilesTarget): void {
  const checked = new Set<string>();
  const resolvedDirs = new Map<string, string>();
  /** Where `dir` really is: the real path of its nearest existing ancestor plus the rest. */
  const resolveDir = (dir: string): string => {
    const have = resolvedDirs.get(dir);
    if (have !== undefined) return have;
    let r: string;
    try {
      r = fs.realpathSync(dir);
    } catch {
      const up = path.dirname(dir);
      r = up === dir ? dir : path.join(resolveDir(up), path.basename(dir));
    }
    resolvedDirs.set(dir, r);
    return r;
  };
  for (const dest of dests) {
    const rel = path.relative(t.path, dest);
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) throw refuse('BAD_TARGET', `Refused: ${dest} is not inside ${t.path}.`);
    const parts = rel ? rel.split('/') : [];
    let cur = t.path;
    for (const part of parts.slice(0, -1)) {
      cur = path.join(cur, part);
      if (checked.has(cur)) continue;
      const st = lstatOrNull(cur);
      if (!st) break; // created by the restore from here on
      if (st.isSymbolicLink()) {
        let real: string;
        try {
          real = fs.realpathSync(cur);
        } catch {
          throw refuse('BAD_TARGET', `Refused: ${cur} is a dangling symbolic link on the way to ${dest}.`);
        }
        if (t.owner === 'user' && !within(real, t.path)) {
          throw refuse('PERMISSION', `Refused: ${cur} is a symbolic link to ${real}, outside ${t.path}; the helper does not follow it to restore ${dest}.`, 'Remove or rename the link, or restore into another folder.');
        }
        if (t.owner === 'root' && POSIX && st.uid !== 0) {
          throw refuse('PERMISSION', `Refused: ${cur} is a symbolic link of uid ${st.uid} (to ${real}); restoring in place, the helper follows only root's links.`, 'Restore the files behind it separately, as yourself.');
        }
      }
      checked.add(cur);
    }
    const where = path.join(resolveDir(path.dirname(dest)), path.basename(dest));
    const forbidden = NO_FILES_TREES.find((f) => inTree(where, f));
    if (forbidden) throw refuse('BAD_TARGET', `Refused: ${dest}${where !== dest ? ` (${where})` : ''} is under ${forbidden}; the helper does not restore files into kernel interfaces or device folders.`, 'Leave it out of the selection.');
  }
}
