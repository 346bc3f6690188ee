// Pausing writers of a mounted filesystem, for as short a time as the snapshot needs:
//  - syncfs: flush what is written so far (no pause), before a pass reads the disk;
//  - fsfreeze: block writers and make the filesystem consistent on disk (ext4 also empties its
//    journal), for the final pass of a two-pass snapshot, or for the whole read of a filesystem
//    devsnap cannot track (xfs, btrfs);
//  - remount read-only: for filesystems the kernel cannot freeze (vfat, as the EFI partition is,
//    NTFS); writers then get EROFS instead of waiting, so this is used only for the last pass of a
//    two-pass (NTFS) or the short read of such a (small) partition.
// Every step runs as root (disk/privilege.ts) and is undone in `finally` and on process exit.
import { spawn, spawnSync } from 'child_process';
import { DevsnapError } from '../core/errors';
import { asRootSync, childCommand } from '../disk/privilege';

function run(file: string, args: string[]): { ok: boolean; message: string } {
  // The command is built inside the root step: built outside, it would drop to the requesting user.
  const r = asRootSync(() => {
    const c = childCommand(file, args);
    return spawnSync(c.file, c.args, { encoding: 'utf8', env: c.env });
  });
  return { ok: r.status === 0, message: (r.stderr || r.error?.message || '').trim() };
}

/** Filesystems the kernel can freeze (FIFREEZE): the rest are remounted read-only instead. */
const FREEZABLE = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'f2fs', 'jfs', 'reiserfs', 'nilfs2', 'gfs2', 'ocfs2']);
export const canFreeze = (fstype: string | undefined): boolean => FREEZABLE.has(fstype ?? '');

/** Writes everything the filesystem holds in memory to disk (syncfs(2) through `sync -f`). */
export function syncFilesystem(mountpoint: string): void {
  const r = run('sync', ['-f', mountpoint]);
  if (!r.ok) throw new DevsnapError('BAD_SOURCE', `Could not flush ${mountpoint} to disk: ${r.message}.`, 'Is the filesystem still mounted? Try again.');
}

/**
 * Writes a block device's cached writes to the disk (fsync(2) of the device, through `sync DEVICE`).
 * A filesystem in user space (ntfs-3g) writes through its partition's device, whose cache syncfs does
 * not reach, and which the source's own device does not see until it is written.
 */
export function flushDevice(device: string): void {
  // MountUse names a device by its kernel name ("sda2", "loop3").
  if (!device.startsWith('/') && !/^[A-Za-z0-9][A-Za-z0-9._!-]*$/.test(device)) throw new DevsnapError('BAD_SOURCE', `${device} is not a device name.`);
  const r = run('sync', [device.startsWith('/') ? device : `/dev/${device.replace(/!/g, '/')}`]);
  if (!r.ok) throw new DevsnapError('BAD_SOURCE', `Could not flush ${device} to disk: ${r.message}.`, 'Is the device still attached? Try again.');
}

/**
 * Drops what the kernel caches of the source (posix_fadvise DONTNEED, through `dd iflag=nocache
 * count=0`). A whole disk and its partitions are separate block devices with separate caches: the
 * filesystem writes through the partition, so what devsnap read earlier through the disk would be
 * served again, stale, to the next pass. Called before every state capture and re-read.
 */
export function dropCache(source: string): void {
  const r = run('dd', [`if=${source}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (!r.ok) throw new DevsnapError('BAD_SOURCE', `Could not drop the cached bytes of ${source}: ${r.message}.`, 'devsnap must read what is on the disk now; check that the source is still attached.');
}

/** Undoes a pause; safe to call twice. */
export interface Resume {
  (): void;
}

const pending = new Set<Resume>();
process.once('exit', () => {
  for (const r of pending) r(); // never leave a filesystem frozen or read-only, whatever ends the process
});

function track(undo: () => void): Resume {
  let done = false;
  const resume: Resume = () => {
    if (done) return;
    done = true;
    pending.delete(resume);
    undo();
  };
  pending.add(resume);
  return resume;
}

/**
 * A process of its own (its own session, so it outlives devsnap) that thaws the mountpoints after
 * `seconds` unless stopped first. Without it, devsnap killed while they are frozen (kill -9, the OOM
 * killer) would leave them frozen for good, and a frozen root filesystem stops the whole system.
 */
function thawGuard(mountpoints: string[], seconds: number, undo = 'fsfreeze --unfreeze "$m"'): { stop(): boolean } {
  const child = asRootSync(() => {
    const c = childCommand('sh', ['-c', `sleep "$1"; shift; for m do ${undo}; done`, 'devsnap-thaw-guard', String(seconds), ...mountpoints]);
    return spawn(c.file, c.args, { env: c.env, detached: true, stdio: 'ignore' });
  });
  child.unref();
  child.on('error', () => undefined);
  const started = performance.now();
  return {
    /**
     * Stops the guard; false when it may have fired (writes resumed before devsnap was done). Judged
     * by the clock, with a margin, not by its exit, which this process may not have noticed yet.
     */
    stop() {
      if (performance.now() - started > (seconds - 5) * 1000 || child.exitCode !== null || child.signalCode !== null) return false;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone just now */
      }
      return true;
    },
  };
}

export interface Thaw extends Resume {
  /** Whether the safety timer resumed writes before devsnap did. */
  readonly timedOut: boolean;
}

/**
 * Freezes each mountpoint (all or none); returns the thaw. A guard process thaws them after
 * `guardSeconds` whatever happens to devsnap.
 */
export function freeze(mountpoints: string[], guardSeconds = 60): Thaw {
  const frozen: string[] = [];
  let guard: { stop(): boolean } | null = null;
  let timedOut = false;
  const resume = track(() => {
    if (guard && !guard.stop()) timedOut = true;
    for (const mp of frozen.splice(0).reverse()) run('fsfreeze', ['--unfreeze', mp]);
  });
  const thaw = Object.defineProperty(() => resume(), 'timedOut', { get: () => timedOut }) as Thaw;
  guard = thawGuard(mountpoints, guardSeconds);
  for (const mp of mountpoints) {
    const r = run('fsfreeze', ['--freeze', mp]);
    if (!r.ok) {
      thaw();
      throw new DevsnapError(
        'BAD_SOURCE',
        `Could not pause writes to ${mp} (fsfreeze): ${r.message}.`,
        'Snapshot from a recovery environment, unmount the filesystem, or use --fuzzy to accept an image that is not one point in time.',
      );
    }
    frozen.push(mp);
  }
  return thaw;
}

/**
 * Remounts a filesystem read-only until the returned function remounts it read-write (a guard does
 * that after `guardSeconds` should devsnap be killed meanwhile; the caller checks `timedOut`).
 */
export function remountReadOnly(mountpoint: string, guardSeconds = 3600): Thaw {
  const r = run('mount', ['-o', 'remount,ro', mountpoint]);
  if (!r.ok) {
    throw new DevsnapError(
      'BAD_SOURCE',
      `Could not make ${mountpoint} read-only while it is imaged (it cannot be frozen): ${r.message}.`,
      `A program has a file open for writing there. Close it (or unmount ${mountpoint}) and try again, or use --fuzzy to accept an image of it that is not one point in time.`,
    );
  }
  const guard = thawGuard([mountpoint], guardSeconds, 'mount -o remount,rw "$m"');
  let timedOut = false;
  const resume = track(() => {
    if (!guard.stop()) timedOut = true;
    const back = run('mount', ['-o', 'remount,rw', mountpoint]);
    if (!back.ok) process.stderr.write(`devsnap: warning: could not make ${mountpoint} writable again (${back.message}); run: mount -o remount,rw ${mountpoint}\n`);
  });
  return Object.defineProperty(() => resume(), 'timedOut', { get: () => timedOut }) as Thaw;
}

/**
 * remountReadOnly, tried for up to about a second: a program that has a file open for writing for a
 * moment (write, fsync, close) does not make the snapshot fail; one that keeps it open does.
 */
export async function remountReadOnlySoon(mountpoint: string, guardSeconds: number, tries = 20): Promise<Thaw> {
  for (let n = 1; ; n++) {
    try {
      return remountReadOnly(mountpoint, guardSeconds);
    } catch (err) {
      if (n >= tries) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
