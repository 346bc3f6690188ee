// Repository locks: writers (snapshot, forget, prune, import) take an exclusive lock, readers
// (list, verify, restore, export, diff) a shared one. A lock is a small file in locks/; a lock left
// by a process of this host that is no longer running is stale: it is reported and removed
// (the process start time guards against a reused PID); locks of other hosts need `devsnap unlock`.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { FILE_MODE, isReadOnlyError, mkdirPrivate, readRegularFile } from '../core/fsutil';

interface LockInfo {
  pid: number;
  host: string;
  exclusive: boolean;
  purpose: string;
  created: string;
  startTime?: string;
}

export interface Lock {
  release(): Promise<void>;
}

function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** A lock file's content, or null when it is not one (empty, garbage, wrong types). */
function parseLockInfo(text: string): LockInfo | null {
  try {
    const o = JSON.parse(text);
    const ok = o && Number.isSafeInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.exclusive === 'boolean' && typeof o.purpose === 'string' && typeof o.created === 'string';
    return ok ? (o as LockInfo) : null;
  } catch {
    return null;
  }
}

function isStale(l: LockInfo): boolean {
  if (l.host !== os.hostname()) return false;
  const start = processStartTime(l.pid);
  return start === undefined || (l.startTime !== undefined && start !== l.startTime);
}

interface LockFile {
  file: string;
  info: LockInfo | 'garbage' | 'unreadable';
  code?: string;
}

async function readLocks(dir: string): Promise<LockFile[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const out: LockFile[] = [];
  for (const n of names.filter((n) => n.endsWith('.lock'))) {
    const file = path.join(dir, n);
    try {
      // Content that does not parse is garbage: lock files are renamed into place whole.
      out.push({ file, info: parseLockInfo((await readRegularFile(file, 64 << 10)).toString('utf8')) ?? 'garbage' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Not a lock file at all (a folder, a device, a huge file): garbage, never a lock that blocks.
      if (code === 'ENOTREG' || code === 'EFBIG' || code === 'EISDIR' || code === 'ELOOP') out.push({ file, info: 'garbage' });
      else if (code !== 'ENOENT') out.push({ file, info: 'unreadable', code }); // e.g. the helper's lock, owned by root: live
    }
  }
  return out;
}

/** Default time to wait for another process's lock (a sidebar refresh, a verify) before giving up. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;

/**
 * Takes the lock, waiting up to `waitMs` while other live processes hold conflicting locks (most are
 * short: a `list` behind a sidebar refresh); then fails with LOCKED naming the holder.
 */
export async function acquireLock(repoDir: string, exclusive: boolean, purpose: string, warn: (msg: string) => void, waitMs = DEFAULT_LOCK_WAIT_MS): Promise<Lock> {
  const deadline = Date.now() + waitMs;
  const said = new Set<string>(); // while waiting, each notice once
  const once = (msg: string) => {
    if (!said.has(msg)) warn(msg);
    said.add(msg);
  };
  for (;;) {
    try {
      return await tryLock(repoDir, exclusive, purpose, once);
    } catch (err) {
      if (!(err instanceof DevsnapError) || err.code !== 'LOCKED' || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function tryLock(repoDir: string, exclusive: boolean, purpose: string, warn: (msg: string) => void): Promise<Lock> {
  const dir = path.join(repoDir, 'locks');
  const info: LockInfo = { pid: process.pid, host: os.hostname(), exclusive, purpose, created: new Date().toISOString(), startTime: processStartTime(process.pid) };
  const own = path.join(dir, `${process.pid}-${crypto.randomBytes(4).toString('hex')}.lock`);
  let release = async () => {
    await fs.promises.rm(own, { force: true });
  };
  try {
    await mkdirPrivate(dir);
    // Written under a temporary name and renamed, so a lock file is never seen half-written: one
    // that does not parse is damage (a crash or a full disk in an older devsnap), never a live lock.
    const tmp = `${own}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(info), { mode: FILE_MODE, flag: 'wx' });
    await fs.promises.rename(tmp, own).catch(async (err) => {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (exclusive && code === 'EROFS') {
      throw new DevsnapError(
        'PERMISSION',
        `The repository ${repoDir} is on a read-only filesystem here, and ${purpose} writes to it.`,
        'Remount the drive read-write (or remove its write protection) and try again. Commands that only read (list, show, verify, check, restore, export) work as it is.',
      );
    }
    if (exclusive || !isReadOnlyError(err)) throw toDevsnapError(err, `the repository's lock folder ${dir}`);
    // A reader on read-only media (a write-protected backup disk, the backup drive mounted read-only
    // in a recovery system) cannot leave a lock, and nothing here can write either: read without one.
    warn(`The repository ${repoDir} is read-only here (${code}); reading it without a lock.`);
    release = async () => undefined;
  }
  for (const other of await readLocks(dir)) {
    if (other.file === own) continue;
    const o = other.info;
    if (o === 'unreadable') {
      if (!exclusive) continue; // someone we cannot see into: wait only when we write
      await release();
      throw new DevsnapError(
        'LOCKED',
        `The repository is locked by another user's process (its lock file locks/${path.basename(other.file)} cannot be read: ${other.code}).`,
        'Wait for it to finish (the elevated helper, for example, holds such locks while it works) and try again.',
      );
    }
    if (o === 'garbage' || isStale(o)) {
      const what =
        o !== 'garbage'
          ? `a stale lock of process ${o.pid} (${o.purpose}, started ${o.created}), which is no longer running`
          : `an unreadable lock file locks/${path.basename(other.file)} (empty or garbage, left by a crash or a full disk)`;
      try {
        await fs.promises.rm(other.file, { force: true, recursive: true });
        warn(`Removed ${what}.`);
      } catch {
        warn(`Ignored ${what}; it could not be removed (read-only repository).`);
      }
      continue;
    }
    if (exclusive || o.exclusive) {
      await release();
      const who = `process ${o.pid} on ${o.host} (${o.purpose}, since ${o.created})`;
      throw new DevsnapError(
        'LOCKED',
        `The repository is locked by ${who}.`,
        o.host !== os.hostname()
          ? 'Wait for it to finish (or give --lock-wait SECONDS). If that process is gone, run `devsnap unlock --all` to break the lock.'
          : 'Wait for it to finish and try again, or give --lock-wait SECONDS to wait longer.',
      );
    }
  }
  return { release };
}

/** Removes locks: stale ones only, or all of them with `all` (after the user made sure nothing runs). */
export async function breakLocks(repoDir: string, all: boolean): Promise<number> {
  let removed = 0;
  for (const l of await readLocks(path.join(repoDir, 'locks'))) {
    if (all || l.info === 'garbage' || (l.info !== 'unreadable' && isStale(l.info))) {
      await fs.promises.rm(l.file, { force: true, recursive: true });
      removed++;
    }
  }
  return removed;
}
