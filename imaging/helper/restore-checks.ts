// The helper's checks of a file restore: the folder restored into and every destination in its plan,
// so that root's writes go only where the requesting user cannot redirect them (README.md beside this file).
import * as fs from 'fs';
import * as path from 'path';
import { POSIX, changeableBy, inTree, lstatOrNull, refuse } from './check-common';

/** Folders a file restore never writes into, even in place: kernel interfaces and device nodes. */
const NO_FILES_TREES = ['/proc', '/sys', '/dev'];
const within = (p: string, root: string) => root === '/' || inTree(p, root);

export interface ResolvedFilesTarget {
  /** The real path of the folder restored into. */
  path: string;
  /** 'user': the requesting user's own folder; 'root': a root-owned folder, only in place (e.g. '/'). */
  owner: 'user' | 'root';
  /** The requesting user. */
  uid: number;
}

/**
 * The folder of a file restore (restoreFiles): resolved, an existing directory, not a kernel
 * interface or device folder, and either owned by the requesting user (no flag needed), or owned
 * by root for an in-place restore (putting files back where they were: '/', or a mounted
 * partition's folder) that the user confirmed (`confirmed`; a dry run writes nothing and needs
 * no confirmation). Folders of other users are refused.
 */
export function resolveFilesTarget(p: string, uid: number, o: { inPlace: boolean; confirmed: boolean; dryRun: boolean }): ResolvedFilesTarget {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    throw refuse('BAD_TARGET', `Refused: the folder ${p} to restore files into does not exist.`);
  }
  const forbidden = NO_FILES_TREES.find((t) => inTree(real, t));
  if (forbidden) throw refuse('BAD_TARGET', `Refused: ${p}${real !== p ? ` (${real})` : ''} is under ${forbidden}, which holds kernel interfaces or device nodes, not files to restore.`);
  const st = fs.statSync(real);
  if (!st.isDirectory()) throw refuse('BAD_TARGET', `Refused: ${real} is not a folder; files are restored into a folder.`);
  if (!POSIX || st.uid === uid) return { path: real, owner: 'user', uid };
  if (st.uid !== 0) {
    throw refuse(
      'PERMISSION',
      `Refused: the folder ${real} belongs to uid ${st.uid}, not to the requesting user (uid ${uid}); the helper restores files only into your own folders or, in place, into the system's.`,
      'Choose a folder of your own.',
    );
  }
  if (!o.inPlace) {
    throw refuse(
      'PERMISSION',
      `Refused: the folder ${real} belongs to root; the helper restores files into a root-owned folder only in place (back to their original place).`,
      'Choose a folder of your own, or restore the files to their original place.',
    );
  }
  if (!o.dryRun && !o.confirmed) {
    throw refuse(
      'USAGE',
      `Refused: restoring files in place under ${real} replaces system files, and the request does not say the user confirmed it.`,
      'Ask the user, then send the request with confirmed: true.',
    );
  }
  return { path: real, owner: 'root', uid };
}

/**
 * The destinations of a file restore's plan, before anything is written: each must lie below the
 * target, and every existing folder on the way that is a symbolic link must stay inside a user's
 * target folder (so a link the user planted cannot lead root's writes elsewhere) or, in a
 * root-owned target, be root's own (the system's links, such as /lib → usr/lib on merged-/usr
 * systems). Nothing may end up under /proc, /sys or /dev.
 *
 * In a root-owned target the helper writes as root, so every existing folder on the way (the
 * target and its parents included, after resolving links) must be one the requesting user cannot
 * change (checkWayTo's rule, checks.ts): then nothing the check saw can be swapped before the writes. In a
 * user's folder the helper writes with the user's rights, so a swap there reaches only what the
 * user could write anyway; the check is an early, clear refusal.
 */
export function checkFileDestinations(dests: Iterable<string>, t: ResolvedFilesTarget): void {
  const unchangeable = new Set<string>();
  /** In a root-owned target: `dir` (resolved) and every folder above it must be out of the user's reach. */
  const checkRootWay = (dir: string, dest: string): void => {
    if (t.owner !== 'root' || !POSIX) return;
    for (let d = fs.realpathSync(dir); !unchangeable.has(d); d = path.dirname(d)) {
      const why = changeableBy(fs.statSync(d), t.uid, true);
      if (why) {
        throw refuse(
          'PERMISSION',
          `Refused: ${d} ${why}; restoring ${dest} in place, the helper writes as root only through folders that the requesting user (uid ${t.uid}) cannot change.`,
          'Restore the files under it separately, as yourself (without the helper).',
        );
      }
      unchangeable.add(d);
      if (d === path.dirname(d)) break;
    }
  };
  const checked = new Set<string>();
  const resolvedDirs = new Map<string, string>();
  /** Where `dir` really is: the real path of its nearest existing ancestor plus the rest. */
  const resolveDir = (dir: string): string => {
    const have = resolvedDirs.get(dir);
    if (have !== undefined) return have;
    let r: string;
    try {
      r = fs.realpathSync(dir);
    } catch {
      const up = path.dirname(dir);
      r = up === dir ? dir : path.join(resolveDir(up), path.basename(dir));
    }
    resolvedDirs.set(dir, r);
    return r;
  };
  for (const dest of dests) {
    const rel = path.relative(t.path, dest);
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) throw refuse('BAD_TARGET', `Refused: ${dest} is not inside ${t.path}.`);
    const parts = rel ? rel.split('/') : [];
    let cur = t.path;
    checkRootWay(cur, dest);
    for (const part of parts.slice(0, -1)) {
      cur = path.join(cur, part);
      if (checked.has(cur)) continue;
      const st = lstatOrNull(cur);
      if (!st) break; // created by the restore from here on
      if (st.isSymbolicLink()) {
        let real: string;
        try {
          real = fs.realpathSync(cur);
        } catch {
          throw refuse('BAD_TARGET', `Refused: ${cur} is a dangling symbolic link on the way to ${dest}.`);
        }
        if (t.owner === 'user' && !within(real, t.path)) {
          throw refuse(
            'PERMISSION',
            `Refused: ${cur} is a symbolic link to ${real}, outside ${t.path}; the helper does not follow it to restore ${dest}.`,
            'Remove or rename the link, or restore into another folder.',
          );
        }
        if (t.owner === 'root' && POSIX && st.uid !== 0) {
          throw refuse(
            'PERMISSION',
            `Refused: ${cur} is a symbolic link of uid ${st.uid} (to ${real}); restoring in place, the helper follows only root's links.`,
            'Restore the files behind it separately, as yourself.',
          );
        }
      }
      checkRootWay(cur, dest);
      checked.add(cur);
    }
    const where = path.join(resolveDir(path.dirname(dest)), path.basename(dest));
    const forbidden = NO_FILES_TREES.find((f) => inTree(where, f));
    if (forbidden)
      throw refuse(
        'BAD_TARGET',
        `Refused: ${dest}${where !== dest ? ` (${where})` : ''} is under ${forbidden}; the helper does not restore files into kernel interfaces or device folders.`,
        'Leave it out of the selection.',
      );
  }
}
