// Repository locks: writers (snapshot, forget, prune, import) take an exclusive lock, readers
// (list, verify, restore, export, diff) a shared one. A lock is a small file in locks/; a lock left
// by a process of this host that is no longer running is stale: it is reported and removed
// (the process start time guards against a reused PID); locks of other hosts need `devsnap unlock`.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { DevsnapError } from '../errors';
import { FILE_MODE, mkdirPrivate } from '../fsutil';

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

function isStale(l: LockInfo): boolean {
  if (l.host !== os.hostname()) return false;
  const start = processStartTime(l.pid);
  return start === undefined || (l.startTime !== undefined && start !== l.startTime);
}

async function readLocks(dir: string): Promise<{ file: string; info: LockInfo | null }[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const out: { file: string; info: LockInfo | null }[] = [];
  for (const n of names.filter((n) => n.endsWith('.lock'))) {
    const file = path.join(dir, n);
    try {
      out.push({ file, info: JSON.parse(await fs.promises.readFile(file, 'utf8')) });
    } catch {
      out.push({ file, info: null }); // being written right now, or garbage: treat as a live lock
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
  for (;;) {
    try {
      return await tryLock(repoDir, exclusive, purpose, warn);
    } catch (err) {
      if (!(err instanceof DevsnapError) || err.code !== 'LOCKED' || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function tryLock(repoDir: string, exclusive: boolean, purpose: string, warn: (msg: string) => void): Promise<Lock> {
  const dir = path.join(repoDir, 'locks');
  await mkdirPrivate(dir);
  const info: LockInfo = { pid: process.pid, host: os.hostname(), exclusive, purpose, created: new Date().toISOString(), startTime: processStartTime(process.pid) };
  const own = path.join(dir, `${process.pid}-${crypto.randomBytes(4).toString('hex')}.lock`);
  await fs.promises.writeFile(own, JSON.stringify(info), { mode: FILE_MODE, flag: 'wx' });
  const release = () => fs.promises.rm(own, { force: true });
  for (const other of await readLocks(dir)) {
    if (other.file === own) continue;
    const o = other.info;
    if (o && isStale(o)) {
      warn(`Removed a stale lock of process ${o.pid} (${o.purpose}, started ${o.created}), which is no longer running.`);
      await fs.promises.rm(other.file, { force: true });
      continue;
    }
    if (exclusive || !o || o.exclusive) {
      await release();
      const who = o ? `process ${o.pid} on ${o.host} (${o.purpose}, since ${o.created})` : 'another process';
      throw new DevsnapError('LOCKED', `The repository is locked by ${who}.`, o && o.host !== os.hostname()
        ? 'Wait for it to finish (or give --lock-wait SECONDS). If that process is gone, run `devsnap unlock --all` to break the lock.'
        : 'Wait for it to finish and try again, or give --lock-wait SECONDS to wait longer.');
    }
  }
  return { release };
}

/** Removes locks: stale ones only, or all of them with `all` (after the user made sure nothing runs). */
export async function breakLocks(repoDir: string, all: boolean): Promise<number> {
  let removed = 0;
  for (const l of await readLocks(path.join(repoDir, 'locks'))) {
    if (all || !l.info || isStale(l.info)) {
      await fs.promises.rm(l.file, { force: true });
      removed++;
    }
  }
  return removed;
}
