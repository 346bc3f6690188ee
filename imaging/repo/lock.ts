// Repository locks, over any Storage (a folder or a bucket): writers (snapshot, forget, prune, import)
// take an exclusive lock, readers (list, verify, restore, export, diff) a shared one. A lock is an
// object locks/<pid>-<random>.lock (put with ifAbsent, so never half-seen or overwritten); a locker
// puts its own, then lists locks/ and judges the others. Stale locks are reported and removed: of this
// host, when their process is no longer running (its start time guards against a reused PID); of
// other hosts, when not refreshed for 30 minutes by the storage's clock (the holder puts its lock
// again every 5 minutes). A writer calls stillHeld() before it commits: its lock may have been broken
// while it worked. `devsnap unlock --all` breaks every lock. FORMAT.md "Locks as objects".
import * as fs from 'fs';
import * as os from 'os';
import * as crypto from 'crypto';
import { performance } from 'perf_hooks';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { ObjectInfo, Storage, StorageError } from '../storage/storage';
import { LocalStorage } from '../storage/local';

interface LockInfo {
  pid: number;
  host: string;
  exclusive: boolean;
  purpose: string;
  created: string;
  startTime?: string;
  /** When the holder last put it again (absent before the first refresh). */
  refreshed?: string;
}

export interface Lock {
  release(): Promise<void>;
  /**
   * Throws DevsnapError LOCKED (with what to do) when this lock's object is gone or was not refreshed
   * in time (someone broke it, or this process was suspended past the stale age): a writer calls it
   * just before committing its manifest.
   */
  stillHeld(): Promise<void>;
}

/** Default time to wait for another process's lock (a sidebar refresh, a verify) before giving up. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** How often a holder puts its lock again. */
export const LOCK_REFRESH_MS = 5 * 60_000;
/** A lock of another host not refreshed for this long (by the storage's clock) is stale. */
export const LOCK_STALE_MS = 30 * 60_000;

const PREFIX = 'locks/';
const LOCK_NAME = /^locks\/[^/]+\.lock$/;
/** A lock object is ~200 bytes: anything much larger is garbage, never read whole. */
const MAX_LOCK_SIZE = 64 << 10;

function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** A lock object's content, or null when it is not one (empty, garbage, wrong types). */
function parseLockInfo(text: string): LockInfo | null {
  try {
    const o = JSON.parse(text);
    const ok = o && Number.isSafeInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.exclusive === 'boolean' && typeof o.purpose === 'string' && typeof o.created === 'string';
    return ok ? (o as LockInfo) : null;
  } catch {
    return null;
  }
}

/** An errno code (EROFS, EACCES) or, for a StorageError, the code its message names, else its kind. */
function errCode(err: unknown): string {
  if (err instanceof StorageError) return /\((E[A-Z]+)\)/.exec(err.message)?.[1] ?? err.kind;
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

/** "/media/usb/devsnap" for a folder, "s3 https://host/bucket/prefix" for a bucket. */
function where(storage: Storage): string {
  return storage instanceof LocalStorage ? storage.location.replace(/^folder /, '') : storage.location;
}

/** A storage failure while locking, as the error a user reads. */
function lockError(err: unknown, storage: Storage): DevsnapError {
  if (err instanceof DevsnapError) return err;
  const subject = storage instanceof LocalStorage ? `the repository's lock folder ${where(storage)}/locks` : `the locks of the repository ${storage.location}`;
  if (err instanceof StorageError) {
    // A folder's permission errors read as they always did (toDevsnapError's wording for EACCES/EPERM).
    if (err.kind === 'denied' && storage instanceof LocalStorage) return toDevsnapError({ code: errCode(err) === 'EPERM' ? 'EPERM' : 'EACCES' }, subject);
    if (err.kind === 'denied') return new DevsnapError('PERMISSION', `No permission to use ${subject}: ${err.message}`, "Check the access key's permissions on the bucket.");
    if (err.kind === 'not-found') return new DevsnapError('NOT_FOUND', `${subject} cannot be reached: ${err.message}`, 'Check the path and try again.');
    if (err.kind === 'unavailable') return toDevsnapError(err); // UNAVAILABLE (exit 11), as every other request the server did not answer
    return new DevsnapError('INTERNAL', `Unexpected error with ${subject}: ${err.message}`, 'Please report this with the output of the command.');
  }
  return toDevsnapError(err, subject);
}

const isReadOnly = (err: unknown) => (err instanceof StorageError ? err.kind === 'denied' : errCode(err) === 'EROFS');

interface Other {
  name: string;
  modified: number;
  info: LockInfo | 'garbage' | 'unreadable';
  code?: string;
}

async function readLock(storage: Storage, o: ObjectInfo): Promise<Other | null> {
  if (o.size > MAX_LOCK_SIZE) return { name: o.name, modified: o.modified, info: 'garbage' };
  for (let attempt = 0; ; attempt++) {
    let text: string;
    try {
      text = (await storage.get(o.name)).toString('utf8');
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'not-found') return null; // released meanwhile
      // Another user's (the elevated helper's, owned by root), or not answering: live, never removed.
      return { name: o.name, modified: o.modified, info: 'unreadable', code: errCode(err) };
    }
    const info = parseLockInfo(text);
    if (info) return { name: o.name, modified: o.modified, info };
    // Content that does not parse is garbage (a crash or a full disk in an older devsnap)... unless it
    // is being written: on a folder without hard links, a put with ifAbsent writes in place. Look again.
    if (attempt > 0) return { name: o.name, modified: o.modified, info: 'garbage' };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The lock objects in locks/ (without `skip`, one's own), read and parsed. */
async function readLocks(storage: Storage, skip?: string): Promise<{ others: Other[]; own?: ObjectInfo }> {
  const others: Other[] = [];
  let own: ObjectInfo | undefined;
  for await (const o of storage.list(PREFIX)) {
    if (o.name === skip) own = o;
    else if (LOCK_NAME.test(o.name)) {
      const l = await readLock(storage, o);
      if (l) others.push(l);
    }
  }
  return { others, own };
}

/** Why `l` is stale, or null when it is live. `now`: the storage's clock (unknown without an own lock: then other hosts' locks stay live). */
function staleness(l: LockInfo, modified: number, now: number | undefined, staleMs: number): string | null {
  if (l.host === os.hostname()) {
    const start = processStartTime(l.pid);
    const gone = start === undefined || (l.startTime !== undefined && start !== l.startTime);
    return gone ? `a stale lock of process ${l.pid} (${l.purpose}, started ${l.created}), which is no longer running` : null;
  }
  if (now === undefined || now - modified <= staleMs) return null;
  return `a stale lock of process ${l.pid} on ${l.host} (${l.purpose}, started ${l.created}), not refreshed for ${Math.floor((now - modified) / 60_000)} minutes`;
}

/**
 * Entries in locks/ named like a lock that are no objects (a folder, a symbolic link to /dev/zero):
 * list() never shows them, so they never block; they are removed here (and reported). Returns how many.
 */
async function removeNonObjects(storage: Storage, warn: (msg: string) => void): Promise<number> {
  let removed = 0;
  try {
    for await (const s of storage.strays(PREFIX)) {
      if (s.kind !== 'not-an-object' || !LOCK_NAME.test(s.name)) continue;
      const what = `${s.name}, which is no lock but ${s.what}`;
      try {
        await storage.removeStray(s);
        warn(`Removed ${what}.`);
        removed++;
      } catch {
        warn(`Ignored ${what}; it could not be removed (read-only repository).`);
      }
    }
  } catch {
    // Listing strays is a courtesy: list() never returns them, so they cannot block anyone.
  }
  return removed;
}

export interface LockOptions {
  /** How often the holder puts its lock again (LOCK_REFRESH_MS). */
  refreshMs?: number;
  /** Age without refresh after which another host's lock is stale (LOCK_STALE_MS). */
  staleMs?: number;
}

/**
 * Takes the lock, waiting up to `waitMs` while other live processes hold conflicting locks (most are
 * short: a `list` behind a sidebar refresh); then fails with LOCKED naming the holder.
 */
export async function acquireLock(storage: Storage, exclusive: boolean, purpose: string, warn: (msg: string) => void, waitMs = DEFAULT_LOCK_WAIT_MS, opts: LockOptions = {}): Promise<Lock> {
  const o = { refreshMs: opts.refreshMs ?? LOCK_REFRESH_MS, staleMs: opts.staleMs ?? LOCK_STALE_MS };
  const deadline = Date.now() + waitMs;
  const said = new Set<string>(); // while waiting, each notice once
  const once = (msg: string) => {
    if (!said.has(msg)) warn(msg);
    said.add(msg);
  };
  for (;;) {
    try {
      return await tryLock(storage, exclusive, purpose, once, o);
    } catch (err) {
      if (!(err instanceof DevsnapError) || err.code !== 'LOCKED' || Date.now() >= deadline) throw err;
      // 200 ms on average; the jitter keeps two hosts that retry in step from meeting again and again.
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 100));
    }
  }
}

async function tryLock(storage: Storage, exclusive: boolean, purpose: string, warn: (msg: string) => void, o: Required<LockOptions>): Promise<Lock> {
  const info: LockInfo = { pid: process.pid, host: os.hostname(), exclusive, purpose, created: new Date().toISOString(), startTime: processStartTime(process.pid) };
  const name = `${PREFIX}${process.pid}-${crypto.randomBytes(4).toString('hex')}.lock`;
  let held: HeldLock | null = null;
  const started = performance.now();
  try {
    await storage.put(name, Buffer.from(JSON.stringify(info)), { ifAbsent: true });
    held = new HeldLock(storage, name, info, started, o);
  } catch (err) {
    if (exclusive && errCode(err) === 'EROFS') {
      throw new DevsnapError(
        'PERMISSION',
        `The repository ${where(storage)} is on a read-only filesystem here, and ${purpose} writes to it.`,
        'Remount the drive read-write (or remove its write protection) and try again. Commands that only read (list, show, verify, check, restore, export) work as it is.',
      );
    }
    if (exclusive || !isReadOnly(err)) {
      // The put may have landed though its answer was lost (a timeout, a dropped connection): take
      // it back, or it keeps others waiting until it is stale (30 minutes for another host).
      await storage.delete(name).catch(() => undefined);
      throw lockError(err, storage);
    }
    // A reader on read-only media (a write-protected backup disk, the backup drive mounted read-only
    // in a recovery system) cannot leave a lock, and nothing here can write either: read without one.
    warn(`The repository ${where(storage)} is read-only here (${errCode(err)}); reading it without a lock.`);
  }
  const fail = async (err: DevsnapError): Promise<never> => {
    await held?.release().catch(() => undefined);
    throw err;
  };
  await removeNonObjects(storage, warn);
  let others: Other[];
  let now: number | undefined; // the storage's clock: when it wrote our lock
  try {
    const found = await readLocks(storage, name);
    others = found.others;
    now = found.own?.modified ?? (held ? (await storage.stat(name))?.modified : undefined);
  } catch (err) {
    if (held) return fail(lockError(err, storage));
    others = []; // a reader without a lock on media it cannot list either: nothing to wait for
  }
  if (held && now === undefined) {
    return fail(new DevsnapError('LOCKED', 'The lock this process had just written on the repository was removed at once (`devsnap unlock --all` ran meanwhile?).', 'Try again.'));
  }
  for (const other of others) {
    const l = other.info;
    const file = other.name.slice(PREFIX.length);
    if (l === 'unreadable') {
      if (!exclusive) continue; // someone we cannot see into: wait only when we write
      return fail(
        new DevsnapError(
          'LOCKED',
          `The repository is locked by another user's process (its lock file locks/${file} cannot be read: ${other.code}).`,
          'Wait for it to finish (the elevated helper, for example, holds such locks while it works) and try again.',
        ),
      );
    }
    const stale = l === 'garbage' ? `an unreadable lock file locks/${file} (empty or garbage, left by a crash or a full disk)` : staleness(l, other.modified, now, o.staleMs);
    if (stale) {
      try {
        await storage.delete(other.name);
        warn(`Removed ${stale}.`);
      } catch {
        warn(`Ignored ${stale}; it could not be removed (read-only repository).`);
      }
      continue;
    }
    if (l === 'garbage' || !(exclusive || l.exclusive)) continue;
    const who = `process ${l.pid} on ${l.host} (${l.purpose}, since ${l.created})`;
    return fail(
      new DevsnapError(
        'LOCKED',
        `The repository is locked by ${who}.`,
        l.host !== os.hostname()
          ? `Wait for it to finish (or give --lock-wait SECONDS). If that process is gone, run \`devsnap unlock --all\` to break the lock (a lock its host no longer refreshes expires after ${Math.round(o.staleMs / 60_000)} minutes).`
          : 'Wait for it to finish and try again, or give --lock-wait SECONDS to wait longer.',
      ),
    );
  }
  if (!held) return { release: async () => undefined, stillHeld: async () => undefined };
  held.start();
  return held;
}

/** A lock this process holds: put again every refreshMs until released. */
class HeldLock implements Lock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private released = false;
  /** Set when a refresh found the object gone: it is not put again (that would take a broken lock back). */
  private gone = false;
  /** Why the last failed refresh failed. */
  private failure: string | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly name: string,
    private readonly info: LockInfo,
    /** performance.now() when the last successful put began: the object is at most this old. */
    private lastPut: number,
    private readonly o: Required<LockOptions>,
  ) {}

  start(): void {
    if (this.released || this.gone) return;
    this.timer = setTimeout(() => {
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
        this.start();
      });
    }, this.o.refreshMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const began = performance.now();
    try {
      if (!(await this.storage.stat(this.name))) {
        this.gone = true;
        return;
      }
      if (this.released) return;
      await this.storage.put(this.name, Buffer.from(JSON.stringify({ ...this.info, refreshed: new Date().toISOString() })));
      this.lastPut = began;
    } catch (err) {
      this.failure = err instanceof Error ? err.message : String(err);
    }
  }

  async release(): Promise<void> {
    this.released = true;
    clearTimeout(this.timer);
    await this.refreshing; // a refresh in flight must not put the object back after the delete
    try {
      await this.storage.delete(this.name);
    } catch (err) {
      throw lockError(err, this.storage);
    }
  }

  async stillHeld(): Promise<void> {
    await this.refreshing;
    const lost = (what: string) => new DevsnapError('LOCKED', `This process's lock on the repository ${what} while it worked; its data was not committed.`, 'Run it again.');
    let st: ObjectInfo | null;
    try {
      st = this.gone ? null : await this.storage.stat(this.name);
    } catch (err) {
      throw lockError(err, this.storage);
    }
    if (!st) throw lost('was removed (by `devsnap unlock --all` or by another host that judged it stale)');
    // By the monotonic clock (a suspended laptop's stops with it, but others' do not): a minute's
    // margin (at most a tenth of the stale age) for the storage's clock and whole-second times.
    const age = performance.now() - this.lastPut;
    if (age >= this.o.staleMs - Math.min(60_000, this.o.staleMs / 10)) {
      throw lost(`was not refreshed for ${Math.floor(age / 60_000)} minutes (the computer was suspended, or the storage did not answer), so other hosts may have taken it as stale,`);
    }
    if (this.failure !== undefined) throw lost(`could not be refreshed (${this.failure}), so other hosts may have taken it as stale,`);
  }
}

/**
 * Removes locks: stale ones (and garbage) only, or all of them with `all` (after the user made sure
 * nothing runs). Returns how many it removed.
 */
export async function breakLocks(storage: Storage, all: boolean, staleMs = LOCK_STALE_MS): Promise<number> {
  let removed = await removeNonObjects(storage, () => undefined);
  try {
    if (all) {
      const names: string[] = [];
      for await (const o of storage.list(PREFIX)) if (LOCK_NAME.test(o.name)) names.push(o.name);
      for (const name of names) {
        await storage.delete(name);
        removed++;
      }
      return removed;
    }
    // Other hosts' locks are judged by the storage's clock: a probe (a shared lock, removed at once) reads it.
    const probe = `${PREFIX}${process.pid}-${crypto.randomBytes(4).toString('hex')}.lock`;
    const info: LockInfo = { pid: process.pid, host: os.hostname(), exclusive: false, purpose: 'unlock', created: new Date().toISOString(), startTime: processStartTime(process.pid) };
    let probed = false;
    try {
      let now: number | undefined;
      try {
        await storage.put(probe, Buffer.from(JSON.stringify(info)), { ifAbsent: true });
        probed = true;
        now = (await storage.stat(probe))?.modified;
      } catch {
        // read-only: other hosts' locks stay (nothing could be removed anyway)
      }
      for (const l of (await readLocks(storage, probe)).others) {
        if (l.info === 'garbage' || (l.info !== 'unreadable' && staleness(l.info, l.modified, now, staleMs))) {
          await storage.delete(l.name);
          removed++;
        }
      }
    } finally {
      if (probed) await storage.delete(probe).catch(() => undefined);
    }
    return removed;
  } catch (err) {
    throw lockError(err, storage);
  }
}
