// The helper's effective identity: root, or the requesting user for the repository side of a request
// (README.md, "Whose rights"). seteuid/setegid/setgroups change the effective ids only (the saved
// set-user-id stays 0, so the helper can become root again); glibc applies them to every thread of
// the process (libuv's file I/O threads and the worker threads included), so a file opened while
// the user's identity is in effect is opened with exactly the user's rights: the kernel refuses
// whatever the user could not do, and what is created belongs to the user.
export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

const posix = typeof process.seteuid === 'function';

/** Root's identity as the helper started (its groups included), to return to. */
export const ROOT: Identity = posix ? { uid: 0, gid: process.getegid!(), groups: process.getgroups!() } : { uid: 0, gid: 0, groups: [] };

/** Whether this process can take on another user's identity (it runs as root on a POSIX system). */
export const canSwitch = posix && process.geteuid!() === 0;

function current(): Identity {
  return { uid: process.geteuid!(), gid: process.getegid!(), groups: process.getgroups!() };
}

function become(id: Identity): void {
  // Back to root first: only root may change its groups and group id.
  if (process.geteuid!() !== 0) process.seteuid!(0);
  process.setgroups!(id.groups);
  process.setegid!(id.gid);
  if (id.uid !== 0) process.seteuid!(id.uid);
}

const same = (a: Identity, b: Identity) => a.uid === b.uid && a.gid === b.gid && a.groups.join() === b.groups.join();

/**
 * The requesting user's identity: their uid, the group of the files they create (`gid`) and their
 * supplementary groups as the system's user database lists them (initgroups, so a repository the
 * user reaches through a group of theirs works as it does for them); just `gid` when the user is
 * not in the database.
 */
export function userIdentity(uid: number, gid: number): Identity {
  let groups = [gid];
  if (canSwitch) {
    // Node's getgroups() adds the effective gid to the list: make it the user's first.
    process.setegid!(gid);
    try {
      (process as unknown as { initgroups(user: number, extraGroup: number): void }).initgroups(uid, gid);
      groups = process.getgroups!();
    } catch {
      /* no passwd entry for uid */
    } finally {
      process.setgroups!(ROOT.groups);
      process.setegid!(ROOT.gid);
    }
  }
  return { uid, gid, groups };
}

/** Runs `fn` with `id`'s rights, then returns to the identity before (also when fn throws). */
export function withIdentitySync<T>(id: Identity, fn: () => T): T {
  if (!canSwitch) return fn();
  const before = current();
  if (same(before, id)) return fn();
  become(id);
  try {
    return fn();
  } finally {
    become(before);
  }
}

/**
 * The asynchronous form: the identity holds until `fn` settles. The helper serves one request at a
 * time, so nothing else of the process runs meanwhile but `fn`'s own work.
 */
export async function withIdentity<T>(id: Identity, fn: () => Promise<T>): Promise<T> {
  if (!canSwitch) return fn();
  const before = current();
  if (same(before, id)) return fn();
  become(id);
  try {
    return await fn();
  } finally {
    become(before);
  }
}
