// The repository folder as the file system sees it: is it there, or is the drive that holds it
// unplugged; how much it holds, and how much room its drive has left. The engine's list does not
// report sizes, so they are measured here: fs.statfs for the drive, and a walk summing file sizes
// (a repository is a few folders of packs and index files; the walk stops at MAX_ENTRIES).
// No `vscode` import (unit-tested in test/unit/extension/extension-glance.test.ts).
import * as fs from 'fs';
import * as path from 'path';
import { backupDriveMissing, livePlaces, PlaceView } from './drives';
import { isS3Repository } from './paths';

/** present: the folder is there; new: not yet (the first snapshot creates it); unplugged: the drive that held it is gone. */
export type RepositoryPresence = 'present' | 'new' | 'unplugged';

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isEmptyDir(p: string): boolean {
  try {
    return fs.readdirSync(p).length === 0;
  } catch {
    return false;
  }
}

/**
 * Whether the repository is there. `knownBefore`: this folder held snapshots when devsnap last
 * looked (so a missing or empty folder now means its drive is not connected, as Time Machine and
 * Timeshift say). Without that, the commands' rule decides (drives.ts backupDriveMissing: nothing
 * mounted where its drive goes, under /media, /run/media, /mnt or an /etc/fstab mount point); any
 * other missing folder is new.
 */
export function repositoryPresence(repo: string, knownBefore: boolean, places: PlaceView = livePlaces()): RepositoryPresence {
  if (isS3Repository(repo)) return 'present'; // a bucket: the engine says whether it is there
  if (isDir(repo)) {
    if (knownBefore && isEmptyDir(repo)) return 'unplugged'; // an empty mount point left behind
    return 'present';
  }
  if (knownBefore) return 'unplugged';
  return backupDriveMissing(repo, places) ? 'unplugged' : 'new';
}

export interface RepositoryUsage {
  /** Bytes of the files in the repository folder (apparent sizes). */
  sizeBytes?: number;
  /** The walk stopped early: sizeBytes is a lower bound. */
  sizePartial?: boolean;
  /** Free bytes for an unprivileged user on the repository's drive, and the drive's size. */
  freeBytes?: number;
  totalBytes?: number;
}

export const MAX_ENTRIES = 200_000;

/** The drive's free space and size (statfs), or {} when it cannot be read. */
export async function driveSpace(dir: string): Promise<Pick<RepositoryUsage, 'freeBytes' | 'totalBytes'>> {
  try {
    const s = await fs.promises.statfs(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return {};
  }
}

/** Sums the sizes of the files below `dir` (symbolic links not followed), up to `maxEntries` entries. */
export async function folderSize(dir: string, maxEntries = MAX_ENTRIES): Promise<{ bytes: number; partial: boolean } | undefined> {
  let bytes = 0;
  let seen = 0;
  const queue = [dir];
  try {
    await fs.promises.access(dir);
  } catch {
    return undefined;
  }
  while (queue.length) {
    const d = queue.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(d, { withFileTypes: true });
    } catch {
      continue; // a locks/ entry that went away, a folder we may not read
    }
    for (const e of entries) {
      if (++seen > maxEntries) return { bytes, partial: true };
      const p = path.join(d, e.name);
      if (e.isDirectory()) queue.push(p);
      else if (e.isFile()) {
        try {
          bytes += (await fs.promises.lstat(p)).size;
        } catch {
          /* removed meanwhile */
        }
      }
    }
  }
  return { bytes, partial: false };
}

/** The repository's size and its drive's space; the nearest existing folder's drive when it does not exist yet. */
export async function repositoryUsage(repo: string): Promise<RepositoryUsage> {
  let probe = repo;
  while (!isDir(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  const space = await driveSpace(probe);
  const size = probe === repo ? await folderSize(repo) : undefined;
  return { ...space, ...(size ? { sizeBytes: size.bytes, ...(size.partial ? { sizePartial: true } : {}) } : {}) };
}
