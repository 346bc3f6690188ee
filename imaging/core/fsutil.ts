// Durable file operations: every file the repository commits is written to a temporary name,
// fsync'd, renamed into place and its directory fsync'd, so a crash leaves either the old state or
// the new one, never a torn file.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';

export const FILE_MODE = 0o600; // repository files are readable only by their owner
export const DIR_MODE = 0o700;

/** Errors that mean "this cannot be written here": write-protected media, a read-only mount, a folder not ours. */
export function isReadOnlyError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EROFS' || code === 'EACCES' || code === 'EPERM';
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(target: string): string {
  return `${target}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
}

/**
 * Writes `data` to `target` atomically and durably. `beforeRename` runs on the complete, synced
 * temporary file just before it takes the target's place (the rename keeps its size, mtime and
 * inode); if it throws, nothing is renamed.
 */
export async function writeFileAtomic(target: string, data: Buffer | string, beforeRename?: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  const tmp = tempName(target);
  const fh = await fs.promises.open(tmp, 'wx', FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await beforeRename?.(fh);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await fs.promises.rename(tmp, target);
  await fsyncDir(path.dirname(target));
}

export async function mkdirPrivate(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: DIR_MODE });
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads exactly length bytes at position, zero-filling past end-of-file. */
export async function readFully(fh: fs.promises.FileHandle, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done, length);
      break;
    }
    done += bytesRead;
  }
  return buf;
}

export async function writeFully(fh: fs.promises.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** True while a process with this pid exists on this machine (EPERM: it exists, it is someone else's). */
export function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files tempName(target) made for `target` by processes that no longer run
 * (a restore or export killed with -9 leaves one as large as the disk); returns their paths. Only
 * regular files of exactly that name pattern are touched, and never one of a running process.
 */
export async function removeDeadTemps(target: string): Promise<string[]> {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  const base = path.basename(abs);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(`${base}.`)) continue;
    const m = /^\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(n.slice(base.length));
    if (!m || Number(m[1]) === process.pid || pidRunning(Number(m[1]))) continue;
    const file = path.join(dir, n);
    try {
      if (!(await fs.promises.lstat(file)).isFile()) continue;
      await fs.promises.rm(file);
      removed.push(file);
    } catch {
      // gone already, or not ours to remove: leave it
    }
  }
  return removed;
}

/**
 * Reads a whole file that must be a regular file of at most `maxBytes`: a repository entry someone
 * replaced by a folder, a device or a link to /dev/zero must be damage, not an endless read. Throws
 * an error with code ENOTREG or EFBIG (and `path`) otherwise.
 */
export async function readRegularFile(p: string, maxBytes: number): Promise<Buffer> {
  const fh = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    const refuse = (code: string, what: string) => Object.assign(new Error(`${p} ${what}`), { code, path: p });
    if (!st.isFile()) throw refuse('ENOTREG', 'is not a regular file');
    if (st.size > maxBytes) throw refuse('EFBIG', `is larger than ${maxBytes} bytes`);
    return await readFully(fh, 0, st.size);
  } finally {
    await fh.close();
  }
}

/** The digest of a file's content, read as a stream (a 121 MB binary is never held whole). */
export async function hashFile(file: string, algorithm: 'sha256' | 'sha512'): Promise<Buffer> {
  const h = crypto.createHash(algorithm);
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest();
}
