// The few places where the engine needs root, marked so that the elevated helper can do everything
// else with the requesting user's rights (helper/README.md, "Whose rights"). Outside the helper
// (the CLI, the extension) no policy is installed and these are plain calls.
//
// The helper serves one request at a time and installs a policy for it; `openDisk` and `asRootSync`
// are called only at points of an operation where it has no other file I/O in flight (a credential
// change applies to every thread of the process), so nothing but the marked step runs as root.
import * as fs from 'fs';

export interface PrivilegePolicy {
  /** Opens a source or target disk: a block device (with root's rights) or an image file (with the user's). */
  openDisk(p: string, flags: 'r' | 'r+' | 'wx', mode?: number): Promise<fs.promises.FileHandle>;
  /** Runs a step that needs root and no file of the user's (fsfreeze). Synchronous: nothing else runs meanwhile. */
  asRootSync<T>(fn: () => T): T;
}

let policy: PrivilegePolicy | null = null;

/** Installs (or, with null, removes) the policy of the request being served. */
export function setPrivilegePolicy(p: PrivilegePolicy | null): void {
  policy = p;
}

export function openDisk(p: string, flags: 'r' | 'r+' | 'wx', mode?: number): Promise<fs.promises.FileHandle> {
  return policy ? policy.openDisk(p, flags, mode) : fs.promises.open(p, flags, mode);
}

export function asRootSync<T>(fn: () => T): T {
  return policy ? policy.asRootSync(fn) : fn();
}
