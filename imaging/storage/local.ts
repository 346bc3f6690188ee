// A repository's objects as files in a folder (a local drive, a USB disk, a mounted share): the name
// "data/ab/x.pack" is the file <dir>/data/ab/x.pack. Writes go to a temporary file beside the target,
// are fsync'd and renamed into place (then the folder fsync'd), so readers and crashes see the old
// object or the new one, never a part.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { DIR_MODE, FILE_MODE, fsyncDir } from '../core/fsutil';
import { checkName, checkPrefix, checkRange, isValidName, ObjectInfo, PutOptions, Storage, StorageError } from './storage';

const code = (err: unknown) => (err as NodeJS.ErrnoException)?.code;

// '~' is never in an object name (checkName), so list() can never mistake a temporary file for an object.
const tempOf = (target: string) => `${target}.${process.pid}.${crypto.randomBytes(4).toString('hex')}~tmp`;

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

  /** ENOENT and friends become 'not-found', permission errors 'denied'; other I/O errors pass on. */
  private fail(err: unknown, what: string, name: string): never {
    const c = code(err);
    if (c === 'ENOENT' || c === 'ENOTDIR' || c === 'ELOOP') throw new StorageError('not-found', `${this.location}: there is no object ${name} to ${what}.`);
    if (c === 'EACCES' || c === 'EPERM') throw new StorageError('denied', `${this.location}: no permission to ${what} ${name} (${c}); check the folder's owner and mode.`);
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

  private static async readAt(fh: fs.promises.FileHandle, position: number, length: number): Promise<Buffer> {
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

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const target = this.file(name);
    const dir = path.dirname(target);
    try {
      await this.makeDirs(dir);
      const tmp = tempOf(target);
      const fh = await fs.promises.open(tmp, 'wx', FILE_MODE);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } catch (err) {
        await fh.close().catch(() => undefined);
        await fs.promises.rm(tmp, { force: true });
        throw err;
      }
      await fh.close();
      if (!opts.ifAbsent) await fs.promises.rename(tmp, target);
      else {
        try {
          // link() fails with EEXIST when the name is taken, atomically, and puts the whole file there or nothing.
          await fs.promises.link(tmp, target);
        } catch (err) {
          if (!NO_LINKS.has(code(err) ?? '')) throw err;
          await this.putExclusive(target, data);
        } finally {
          await fs.promises.rm(tmp, { force: true });
        }
      }
      await fsyncDir(dir);
    } catch (err) {
      if (code(err) === 'EEXIST' && opts.ifAbsent) throw new StorageError('exists', `${this.location}: ${name} exists already (it was written with ifAbsent).`);
      return this.fail(err, 'write', name);
    }
  }

  /**
   * ifAbsent on a filesystem without hard links: O_EXCL claims the name atomically, but the data is
   * written in place, so a reader may see a short file until the write ends (only small objects —
   * locks, the config — are written with ifAbsent).
   */
  private async putExclusive(target: string, data: Buffer): Promise<void> {
    const fh = await fs.promises.open(target, 'wx', FILE_MODE);
    try {
      await fh.writeFile(data);
      await fh.sync();
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
      const st = await fs.promises.lstat(file);
      return st.isFile() ? { name, size: st.size, modified: st.mtimeMs } : null;
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return null;
      return this.fail(err, 'look at', name);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    // Only the folder the prefix's last '/' names can hold matches; below it, only subfolders that can.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const found: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(rel ? path.join(this.root, ...rel.split('/')) : this.root, { withFileTypes: true });
      } catch (err) {
        if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
        return this.fail(err, 'list', rel || '(the folder)');
      }
      for (const e of entries) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (name.startsWith(prefix) || prefix.startsWith(`${name}/`)) await walk(name);
        } else if (e.isFile() && name.startsWith(prefix) && isValidName(name)) {
          const st = await fs.promises.lstat(path.join(this.root, ...name.split('/'))).catch(() => null); // deleted meanwhile: not listed
          if (st?.isFile()) found.push({ name, size: st.size, modified: st.mtimeMs });
        }
      }
    };
    await walk(base);
    // Name order as S3 gives it (byte order): "a-b" < "a/b" < "a0", which no folder-by-folder walk gives.
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    yield* found;
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
