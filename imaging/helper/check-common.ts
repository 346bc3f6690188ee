// What the helper's checks (checks.ts, restore-checks.ts) share: the refusal they throw, the
// trees that are never disks, and the ownership and mode tests on paths.
import * as fs from 'fs';
import { DevsnapError } from '../core/errors';

export class HelperRefusal extends DevsnapError {}

export const refuse = (code: 'USAGE' | 'PERMISSION' | 'BAD_SOURCE' | 'BAD_TARGET', message: string, hint?: string) => new HelperRefusal(code, message, hint);

export const FORBIDDEN_TREES = ['/proc', '/sys'];
/** Owners and mode bits mean nothing on Windows (ACLs do): those checks are POSIX only (README.md, limitations). */
export const POSIX = process.platform !== 'win32';
export const inTree = (p: string, root: string) => p === root || p.startsWith(root + '/');

export function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/** How `uid` could change a folder (so that root's later use of a path through it goes elsewhere), or null. */
export function changeableBy(st: fs.Stats, uid: number, stickyHelps: boolean): string | null {
  if (st.uid === uid) return `belongs to uid ${uid}`;
  // Group-writable counts even when uid may not be in the group: the helper does not resolve group membership.
  if (st.mode & 0o022 && !(stickyHelps && st.mode & 0o1000)) return `is writable by its group or others (mode ${(st.mode & 0o7777).toString(8)})`;
  return null;
}
