// A repository's objects as files in a folder (a local drive, a USB disk, a mounted share): the name
// "data/ab/x.pack" is the file <dir>/data/ab/x.pack. Writes go to a temporary file beside the target,
// are fsync'd and renamed into place (then the folder fsync'd), so readers and crashes see the old
// object or the new one, never a part; create() does the same with a file written piece by piece. A
// crash between the two leaves the temporary file, which strays() reports.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { DIR_MODE, FILE_MODE, fsyncDir, writeFully } from '../core/fsutil';
import { checkName, checkPrefix, checkRange, isValidName, ObjectInfo, ObjectWriter, PutOptions, Storage, StorageError, Stray } from './storage';

const code = (err: unknown) => (err as NodeJS.ErrnoException)?.code;

// '~' is never in an object name (checkName), so list() can never mistake a temporary file for an object.
const tempOf = (target: string) => `${target}.${process.pid}.${crypto.randomBytes(4).toString('hex')}~tmp`;

// The last segment of a temporary file of an interrupted write: tempOf's "<name>.<pid>.<8 hex>~tmp", or
// core/fsutil.ts tempName's "<name>.<pid>.<8 hex>.tmp" (what repositories were written with before
// imaging/storage/; those names are valid object names, so list() skips them by this pattern).
const LEFTOVER = /^.+\.\d+\.[0-9a-f]{8}[~.]tmp$/;
const isLeftover = (name: string) => LEFTOVER.test(name.slice(name.lastIndexOf('/') + 1));

// A stray's name as strays() gives it: segments of object names, or a temporary file's (with '~').
const STRAY_NAME = /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/;

/** The version is the mtime in ns: a rename or link keeps it (same inode), so the temporary file's is the object's. */
const infoOf = (name: string, st: fs.BigIntStats): ObjectInfo => ({ name, size: Number(st.size), modified: Number(st.mtimeNs / 1000n) / 1000, version: st.mtimeNs.toString() });

type EntryType = Pick<fs.Dirent, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isBlockDevice' | 'isCharacterDevice'>;

/** What strays() reports an entry as (by its name and type, never by opening it); null when it is an object or nothing of a repository's. */
function strayOf(name: string, e: EntryType): Pick<Stray, 'kind' | 'what'> | null {
  if (e.isFile()) return isLeftover(name) ? { kind: 'leftover', what: 'a temporary file of an interrupted write' } : null;
  if (!isValidName(name)) return null;
  // A folder is a stray only when it is named like a file devsnap writes ("snapshots/<id>.json" or
  // "locks/<id>.lock" made a folder): the folders of a repository ("data/ab", "snapshots") have no '.'.
  if (e.isDirectory()) return name.slice(name.lastIndexOf('/') + 1).includes('.') ? { kind: 'not-an-object', what: 'a folder' } : null;
  const what = e.isSymbolicLink() ? 'a symbolic link' : e.isFIFO() ? 'a fifo' : e.isSocket() ? 'a socket' : e.isBlockDevice() || e.isCharacterDevice() ? 'a device' : null;
  return what ? { kind: 'not-an-object', what } : null;
}

// Filesystems without hard links (FAT, exFAT, some network shares) answer link() with these.
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

export class LocalStorage implements Storage {
  readonly location: string;
  private readonly root: string;

  constructor(dir: string) {
    this.root = path.resolve(dir);
    this.location = `folder ${this.root}`;
  }

  private file(name: string): string {
    return path.join(this.root, ...checkName(name).split('/'));
  }

  /** ENOENT and friends become 'not-found', permission errors 'denied'; other I/O errors pass on. (FolderWriter's too.) */
  fail(err: unknown, what: string, name: string): never {
    const c = code(err);
    if (c === 'ENOENT' || c === 'ENOTDIR' || c === 'ELOOP') throw new StorageError('not-found', `${this.location}: there is no object ${name} to ${what}.`);
    if (c === 'EACCES' || c === 'EPERM') throw new StorageError('denied', `No permission to ${what} ${name} in the ${this.location} (${c}): check the folder's owner and mode.`);
    throw err;
  }

  private async open(name: string, what: string): Promise<{ fh: fs.promises.FileHandle; size: number }> {
    let fh: fs.promises.FileHandle;
    try {
      // Objects are regular files: a fifo someone put in the folder must not hang the read (O_NONBLOCK),
      // and a symlink is no object (O_NOFOLLOW; list() skips them too).
      fh = await fs.promises.open(this.file(name), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
    } catch (err) {
      return this.fail(err, what, name);
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new StorageError('not-found', `${this.location}: ${name} is not a file (a folder or a device), so there is no such object.`);
    }
    return { fh, size: st.size };
  }

  static async readAt(fh: fs.promises.FileHandle, position: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0) break; // truncated under us by someone else (a put never changes an open file: it renames a new one)
      done += bytesRead;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  async get(name: string): Promise<Buffer> {
    const { fh, size } = await this.open(name, 'read');
    try {
      return await LocalStorage.readAt(fh, 0, size);
    } finally {
      await fh.close();
    }
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    checkRange(offset, length);
    const { fh, size } = await this.open(name, 'read');
    try {
      return await LocalStorage.readAt(fh, offset, Math.max(0, Math.min(length, size - offset)));
    } finally {
      await fh.close();
    }
  }

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<{ size: number; version: string }> {
    const target = this.file(name);
    const dir = path.dirname(target);
    let tmp: string | undefined;
    let inHook = false;
    try {
      await this.makeDirs(dir);
      tmp = tempOf(target);
      const fh = await fs.promises.open(tmp, 'wx', FILE_MODE);
      let version: string;
      try {
        await fh.writeFile(data);
        await fh.sync();
        version = (await fh.stat({ bigint: true })).mtimeNs.toString();
      } finally {
        await fh.close();
      }
      // Before the rename: a throw here leaves the old object (the catch removes the temporary file).
      inHook = true;
      await opts.onVersion?.({ size: data.length, version });
      inHook = false;
      if (!opts.ifAbsent) await fs.promises.rename(tmp, target);
      else {
        try {
          // link() fails with EEXIST when the name is taken, atomically, and puts the whole file there or nothing.
          await fs.promises.link(tmp, target);
        } catch (err) {
          if (!NO_LINKS.has(code(err) ?? '')) throw err;
          // A new file, so another mtime than onVersion saw: only locks and the config go this way, and nothing records their versions.
          version = await this.putExclusive(target, data);
        } finally {
          await fs.promises.rm(tmp, { force: true });
        }
      }
      await fsyncDir(dir);
      return { size: data.length, version };
    } catch (err) {
      if (tmp) await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      if (inHook) throw err; // the caller's own error, as it threw it
      if (code(err) === 'EEXIST' && opts.ifAbsent) throw new StorageError('exists', `${this.location}: ${name} exists already (it was written with ifAbsent).`);
      return this.fail(err, 'write', name);
    }
  }

  /**
   * ifAbsent on a filesystem without hard links: O_EXCL claims the name atomically, but the data is
   * written in place, so a reader may see a short file until the write ends (only small objects —
   * locks, the config — are written with ifAbsent).
   */
  private async putExclusive(target: string, data: Buffer): Promise<string> {
    const fh = await fs.promises.open(target, 'wx', FILE_MODE);
    try {
      await fh.writeFile(data);
      await fh.sync();
      return (await fh.stat({ bigint: true })).mtimeNs.toString();
    } finally {
      await fh.close();
    }
  }

  /** mkdir -p with mode 0700, fsyncing each new folder's parent so the new entries survive a crash. */
  private async makeDirs(dir: string): Promise<void> {
    const first = await fs.promises.mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (!first) return;
    for (let d = first; ; d = path.join(d, path.relative(d, dir).split(path.sep)[0])) {
      await fsyncDir(path.dirname(d));
      if (d === dir) break;
    }
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const file = this.file(name);
    try {
      const st = await fs.promises.lstat(file, { bigint: true });
      return st.isFile() ? infoOf(name, st) : null;
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return null;
      return this.fail(err, 'look at', name);
    }
  }

  /**
   * The entries (folders too) whose names start with `prefix`, in byte order of names: the order S3
   * gives ("a-b" < "a/b" < "a0"), which no folder-by-folder walk gives by itself. Only the folder the
   * prefix's last '/' names can hold matches; below it, only subfolders that can. Links are not followed.
   */
  private async entries(prefix: string): Promise<{ name: string; entry: fs.Dirent }[]> {
    checkPrefix(prefix);
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const found: { name: string; entry: fs.Dirent }[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(rel ? path.join(this.root, ...rel.split('/')) : this.root, { withFileTypes: true });
      } catch (err) {
        if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
        return this.fail(err, 'list', rel || '(the folder)');
      }
      for (const entry of entries) {
        const name = rel ? `${rel}/${entry.name}` : entry.name;
        if (name.startsWith(prefix)) found.push({ name, entry });
        if (entry.isDirectory() && (name.startsWith(prefix) || prefix.startsWith(`${name}/`))) await walk(name);
      }
    };
    await walk(base);
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return found;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const { name, entry } of await this.entries(prefix)) {
      if (!entry.isFile() || !isValidName(name) || isLeftover(name)) continue;
      const st = await fs.promises.lstat(this.file(name), { bigint: true }).catch(() => null); // deleted meanwhile: not listed
      if (st?.isFile()) yield infoOf(name, st);
    }
  }

  /**
   * A write in progress (a put, an open writer, of this process or another) has a temporary file too,
   * reported like one of an interrupted write: remove strays only while no one writes, or by age.
   */
  async *strays(prefix: string): AsyncIterable<Stray> {
    for (const { name, entry } of await this.entries(prefix)) {
      const stray = strayOf(name, entry);
      if (!stray) continue;
      // lstat only: a fifo or a link to /dev/zero is never opened.
      const st = await fs.promises.lstat(path.join(this.root, ...name.split('/'))).catch(() => null); // removed meanwhile: not reported
      if (st) yield { name, ...stray, modified: st.mtimeMs };
    }
  }

  /** Removes what strays() reports, after checking that it still is that: never an object, nor a folder of the repository. */
  async removeStray(stray: Stray): Promise<void> {
    const { name } = stray;
    if (name.length > 600 || !STRAY_NAME.test(name) || name.split('/').some((p) => p === '.' || p === '..')) {
      throw new StorageError('invalid', `${this.location}: "${name}" is not the name of anything strays() lists.`);
    }
    const file = path.join(this.root, ...name.split('/'));
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(file);
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
      return this.fail(err, 'look at', name);
    }
    const now = strayOf(name, st);
    if (now?.kind !== stray.kind) {
      const is = now?.what ?? (st.isFile() ? 'a file that is no temporary file (an object, or one no repository writes)' : 'a folder of the repository');
      throw new StorageError(
        'invalid',
        `${this.location}: ${name} is ${is}, not ${stray.kind === 'leftover' ? 'a leftover of an interrupted write' : 'an entry that is no object'}; it was left in place.`,
      );
    }
    try {
      // rm() removes a link itself, never what it points to; a folder goes with what is in it.
      await fs.promises.rm(file, { recursive: st.isDirectory(), force: true });
      await fsyncDir(path.dirname(file));
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
      return this.fail(err, 'remove', name);
    }
  }

  async create(name: string): Promise<ObjectWriter> {
    const target = this.file(name);
    const tmp = tempOf(target);
    try {
      await this.makeDirs(path.dirname(target));
      return new FolderWriter(this, name, target, tmp, await fs.promises.open(tmp, 'wx+', FILE_MODE));
    } catch (err) {
      return this.fail(err, 'write', name);
    }
  }

  async delete(name: string): Promise<void> {
    const file = this.file(name);
    try {
      await fs.promises.unlink(file);
      await fsyncDir(path.dirname(file));
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
      return this.fail(err, 'delete', name);
    }
  }
}

/** A pack written piece by piece into a temporary file beside its name, renamed into place by commit() as put() does. */
class FolderWriter implements ObjectWriter {
  private written = 0;
  private fh: fs.promises.FileHandle | null;

  constructor(
    private readonly storage: LocalStorage,
    private readonly name: string,
    private readonly target: string,
    private readonly tmp: string,
    fh: fs.promises.FileHandle,
  ) {
    this.fh = fh;
  }

  get size(): number {
    return this.written;
  }

  private open(what: string): fs.promises.FileHandle {
    if (!this.fh) throw new Error(`${this.storage.location}: cannot ${what} ${this.name}: its writer was committed or aborted already.`);
    return this.fh;
  }

  async append(data: Buffer): Promise<void> {
    const fh = this.open('append to');
    try {
      await writeFully(fh, data, this.written);
    } catch (err) {
      return this.storage.fail(err, 'write', this.name);
    }
    this.written += data.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(offset, length);
    return LocalStorage.readAt(this.open('read'), offset, Math.max(0, Math.min(length, this.written - offset)));
  }

  async commit(): Promise<void> {
    const fh = this.open('commit');
    this.fh = null;
    try {
      await fh.sync();
      await fh.close();
      await fs.promises.rename(this.tmp, this.target);
      await fsyncDir(path.dirname(this.target));
    } catch (err) {
      // A failed commit leaves nothing behind either (abort() afterwards has nothing to do).
      await fh.close().catch(() => undefined);
      await fs.promises.rm(this.tmp, { force: true }).catch(() => undefined);
      return this.storage.fail(err, 'write', this.name);
    }
  }

  async abort(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.fh = null;
    await fh.close().catch(() => undefined);
    await fs.promises.rm(this.tmp, { force: true });
  }
}
