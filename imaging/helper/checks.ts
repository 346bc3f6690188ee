// The helper's own checks of everything it is handed: the secret file and the socket it was
// pointed at (owned by the requesting user, in a folder only that user can enter), and every path
// in a request: disks must be real block devices or the user's own regular image files, never
// anything under /proc or /sys; repositories must be folders the user owns (used with the user's
// rights) or root's, when the request says so, where the user cannot change them; in-place file
// restores write as root only through folders the user cannot change. See README.md beside this
// file for why each check exists.
import * as fs from 'fs';
import * as path from 'path';
import { FORBIDDEN_TREES, POSIX, changeableBy, inTree, lstatOrNull, refuse } from './check-common';
import { parseS3Location } from '../storage/location';

// The refusal, and the file-restore checks (restore-checks.ts), for the importers of this module.
export { HelperRefusal } from './check-common';
export { checkFileDestinations, resolveFilesTarget, type ResolvedFilesTarget } from './restore-checks';

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
  path: string; // the real path to use (symlinks resolved)
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
    throw refuse(
      code,
      `Refused: the ${role} ${p} resolves to ${real}, a kernel interface under ${FORBIDDEN_TREES.find((t) => inTree(real, t))}, not a disk.`,
      'Give a block device such as /dev/sdb or a disk image file.',
    );
  }
  if (!exists) {
    const dst = fs.statSync(path.dirname(real));
    if (!dst.isDirectory()) throw refuse(code, `Refused: ${path.dirname(real)} is not a folder.`);
    if (dst.uid !== uid)
      throw refuse(
        'PERMISSION',
        `Refused: a new image file ${real} would be created in ${path.dirname(real)}, which the requesting user (uid ${uid}) does not own.`,
        'Choose a folder of your own for the new image file.',
      );
    return { path: real, kind: 'new-file' };
  }
  const st = fs.statSync(real);
  if (st.isBlockDevice()) return { path: real, kind: 'block' };
  if (st.isFile()) {
    if (st.uid !== uid) {
      throw refuse(
        'PERMISSION',
        `Refused: the image file ${real} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}); the helper reads and writes only your own image files (and block devices).`,
        `Make the file yours (chown) or use it without elevation.`,
      );
    }
    return { path: real, kind: 'file' };
  }
  throw refuse(
    code,
    `Refused: the ${role} ${p}${real !== p ? ` (${real})` : ''} is ${st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : 'not a block device or regular file'}.`,
    'Give a block device such as /dev/sdb or a disk image file.',
  );
}

export interface ResolvedRepo {
  path: string;
  exists: boolean;
  /**
   * The owner of the repository: the requesting user (the helper works in it with the user's
   * rights), or root (a root-owned repository nobody else can change: the helper works in it as root).
   */
  uid: number;
}

/**
 * Refuses `dir` when the requesting user could change the way to it: a folder on the way that
 * belongs to the user or that others may write to. A sticky folder (/tmp) is fine on the way: in
 * it, nobody but their owner (here root, or the system) can rename or remove entries.
 */
function checkWayTo(dir: string, uid: number, fail: (p: string, why: string) => Error): void {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const st = fs.lstatSync(d);
    const why = changeableBy(st, uid, true);
    if (why) throw fail(d, why);
    if (d === path.dirname(d)) return;
  }
}

/**
 * A root-owned repository is used as root only where the requesting user cannot change it: the way
 * to it (checkWayTo), the repository folder and the folders in it (data, data/00 … ff, index,
 * snapshots, locks) must be root's, writable by root only, and not symbolic links. Files in them
 * then cannot be replaced by anyone but root either.
 */
function checkRootOnlyRepository(real: string, exists: boolean, uid: number): void {
  const fail = (p: string, why: string) =>
    refuse(
      'PERMISSION',
      `Refused: ${p} ${why}, so the requesting user (uid ${uid}) could change the root-owned repository ${real}; the helper works as root only in a repository that nobody but root can change.`,
      `Make the repository yours (sudo chown -R ${uid} ${exists ? real : path.dirname(real)}): the helper then works in it with your rights. Or make ${p} root's and writable by root only.`,
    );
  checkWayTo(real, uid, fail);
  if (!exists) {
    // The new repository's own parent: nobody else may create the name before root does.
    const st = fs.statSync(path.dirname(real));
    const why = st.uid !== 0 ? `belongs to uid ${st.uid}` : changeableBy(st, uid, false);
    if (why) throw fail(path.dirname(real), why);
    return;
  }
  const dirs = [real, ...['data', 'index', 'snapshots', 'locks'].map((e) => path.join(real, e))];
  const data = path.join(real, 'data');
  try {
    dirs.push(...fs.readdirSync(data).map((n) => path.join(data, n)));
  } catch {
    /* no data folder yet */
  }
  for (const d of dirs) {
    const st = lstatOrNull(d);
    if (!st) continue; // created by root when needed
    if (!st.isDirectory()) throw fail(d, st.isSymbolicLink() ? 'is a symbolic link' : 'is not a folder');
    const why = st.uid !== 0 ? `belongs to uid ${st.uid}` : changeableBy(st, uid, false);
    if (why) throw fail(d, why);
  }
}

/**
 * A repository folder: resolved; an existing one must be a directory owned by the requesting
 * user, or by root when the request says allowRootRepository (and then only where nobody but root
 * can change it). A new one (snapshot only) is created in a folder the user owns (by the user), or
 * in root's with allowRootRepository (by root).
 */
/**
 * A repository in a bucket: only with the request's own keys. Root's (its environment, /root/.aws)
 * are never used for a user: they could let the user read or fill a bucket that is root's.
 */
export function bucketRepository(location: string, credentials: unknown, uid: number): ResolvedRepo {
  try {
    parseS3Location(location);
  } catch (err) {
    throw refuse('USAGE', `Refused: ${(err as Error).message}`);
  }
  if (!credentials)
    throw refuse(
      'USAGE',
      `Refused: the repository ${location} is a bucket, and the request carries no keys for it. The helper never uses root's keys (its environment or /root/.aws) on a user's behalf.`,
      'Give the keys with the request (the extension sends those of devsnap: Set S3 Credentials…).',
    );
  return { path: location, exists: true, uid };
}

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
      throw refuse(
        'PERMISSION',
        `Refused: the new repository ${p} would be created in ${parent}, which belongs to uid ${st.uid}, not to ${ownerText}.`,
        allowRoot ? undefined : 'Create the repository folder yourself first, or choose a folder of your own.',
      );
    }
    const owner = POSIX && st.uid !== uid ? 0 : uid;
    if (owner === 0 && uid !== 0) checkRootOnlyRepository(real2, false, uid);
    return { path: real2, exists: false, uid: owner };
  }
  if (FORBIDDEN_TREES.some((t) => inTree(real, t))) throw refuse('USAGE', `Refused: the repository ${p} resolves to ${real}, under a kernel interface folder.`);
  const st = fs.statSync(real);
  if (!st.isDirectory()) throw refuse('USAGE', `Refused: the repository ${p} is not a folder.`);
  if (!POSIX) return { path: real, exists: true, uid };
  if (!okOwner(st.uid)) {
    throw refuse(
      'PERMISSION',
      `Refused: the repository ${real} belongs to uid ${st.uid}, not to ${ownerText}.`,
      st.uid === 0 ? 'A repository owned by root must be named explicitly (allowRootRepository).' : undefined,
    );
  }
  if (st.uid === 0 && uid !== 0) checkRootOnlyRepository(real, true, uid);
  return { path: real, exists: true, uid: st.uid };
}
