// The start of a two-pass snapshot: each read-write filesystem devsnap follows gets its state captured
// before anything of it is read — ext (inode fingerprints, then a wait so later writes get new ctimes),
// btrfs (the generation a sync committed) and NTFS through ntfs-3g (MFT record fingerprints). Each
// flush writes through to the disk, and the source's cache is dropped before a state is read.
import { readExtState, type ExtState } from './ext-tracking';
import { readBtrfsState, type BtrfsState } from '../filesystems/btrfs/btrfs';
import { readNtfsState, type NtfsState } from '../filesystems/ntfs/state';
import { canFreeze, dropCache, flushDevice, remountReadOnlySoon, syncFilesystem } from './pause';
import { settleAndSync } from './point-in-time';
import { sliceReader } from '../disk/source';
import type { ByteReader } from '../filesystems/types';
import type { MountUse } from '../disk/device';

export interface Captured {
  ext: Map<number, ExtState>;
  btrfs: Map<number, BtrfsState>;
  ntfs: Map<number, NtfsState>;
}

interface Part {
  index: number;
  start: number;
  size: number;
}

/**
 * Captures the state of every followed read-write mount of `parts` (partition index → its mount).
 * An NTFS mount is first made read-only and writable again: if a program holds a file open for
 * writing there the snapshot is refused now (remountReadOnly says what to do), not after pass 1.
 */
export async function captureStates(parts: Part[], mountOf: (p: Part) => MountUse | undefined, disk: ByteReader, source: string): Promise<Captured> {
  const out: Captured = { ext: new Map(), btrfs: new Map(), ntfs: new Map() };
  const slice = (p: Part) => sliceReader(disk, p.start, Math.max(0, Math.min(p.size, disk.size - p.start)));
  const kind = (p: Part) => {
    const m = mountOf(p);
    if (!m) return null;
    return m.fstype?.startsWith('ext') ? 'ext' : m.fstype === 'btrfs' ? 'btrfs' : canFreeze(m.fstype) ? null : 'other';
  };
  dropCache(source);
  for (const p of parts.filter((x) => kind(x) === 'ext')) {
    const s = await readExtState(slice(p), { live: true });
    if (s) out.ext.set(p.index, s);
  }
  await settleAndSync(
    [...out.ext.keys()].map((i) => ({ mountpoint: mountOf(parts.find((p) => p.index === i)!)!.mountpoint, state: out.ext.get(i)! })),
    source,
  );

  // btrfs: the generation committed by a sync; whatever is written after it gets a later one.
  const btrfs = parts.filter((x) => kind(x) === 'btrfs');
  for (const p of btrfs) syncFilesystem(mountOf(p)!.mountpoint);
  // NTFS (ntfs-3g writes through the partition's own device): its cache is written out first.
  const other = parts.filter((x) => kind(x) === 'other');
  for (const p of other) flushDevice(mountOf(p)!.device);
  if (btrfs.length || other.length) dropCache(source);
  for (const p of btrfs) {
    const s = await readBtrfsState(slice(p)).catch(() => null);
    if (s) out.btrfs.set(p.index, s);
  }
  for (const p of other) {
    const s = await readNtfsState(slice(p), { live: true }).catch(() => null);
    if (!s) continue;
    (await remountReadOnlySoon(mountOf(p)!.mountpoint, 60))(); // the last pass will need it: refuse now if it cannot be
    out.ntfs.set(p.index, s);
  }
  return out;
}
