// The few places where the engine needs root, marked so that the elevated helper can do everything
// else with the requesting user's rights (helper/README.md, "Whose rights"). Outside the helper
// (the CLI, the extension) no policy is installed and these are plain calls.
//
// The helper serves one request at a time and installs a policy for it; `openDisk` and `asRootSync`
// are called only at points of an operation where it has no other file I/O in flight (a credential
// change applies to every thread of the process), so nothing but the marked step runs as root.
import * as fs from 'fs';
import * as os from 'os';
import { DevsnapError } from '../core/errors';

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

/** The PATH children get while a privilege policy is active: root's folders only (sudo's secure_path), none of a user's. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let setprivPath: string | null | undefined;

/**
 * How to spawn `file args` so that the child has exactly the rights of this process's effective
 * identity. In the elevated helper's user window (helper/identity.ts) only the effective ids are the
 * user's: the real and saved uid stay 0, so a plain child could become root again (a shell does it
 * by itself). Node's own `uid`/`gid` spawn options cannot help there (setgid/setuid need root's
 * effective rights, so the spawn fails with EPERM), but setresuid/setresgid to the effective ids are
 * allowed to anyone: util-linux's setpriv makes real, effective and saved ids the user's (keeping the
 * user's supplementary groups, already in effect) and then runs the command, which cannot return.
 * While a privilege policy is active (the helper), or in that window, children get a clean minimal
 * environment (`env` added to it) instead of this process's; elsewhere `env` is added to ours.
 * Every child process of imaging/ is spawned through this.
 */
export function childCommand(file: string, args: string[], env: Record<string, string> = {}): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const euid = process.geteuid?.();
  const window = euid !== undefined && euid !== process.getuid!();
  if (!policy && !window) return { file, args, env: { ...process.env, ...env } };
  // HOME of the effective user (the requesting user's in the window: `code` finds their extensions there).
  let home: string | undefined;
  try {
    home = os.userInfo().homedir;
  } catch {
    /* no passwd entry */
  }
  const clean: NodeJS.ProcessEnv = { PATH: SAFE_PATH, LC_ALL: 'C', ...(home ? { HOME: home } : {}), ...env };
  if (!window) return { file, args, env: clean };
  if (setprivPath === undefined)
    setprivPath =
      SAFE_PATH.split(':')
        .map((d) => `${d}/setpriv`)
        .find((p) => fs.existsSync(p)) ?? null;
  if (!setprivPath) {
    throw new DevsnapError('INTERNAL', `Cannot run ${file} with only the requesting user's rights: setpriv (util-linux) is missing.`, 'Install util-linux (it provides setpriv), then try again.');
  }
  return { file: setprivPath, args: [`--reuid=${euid}`, `--regid=${process.getegid!()}`, '--keep-groups', '--', file, ...args], env: clean };
}
