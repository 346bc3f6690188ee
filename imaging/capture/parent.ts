// The parent snapshot an incremental starts from, and what of a followed partition (ext, btrfs, NTFS)
// to read against it: only the blocks of what changed since, when the parent's image of that
// filesystem is comparable (capture/ext-tracking.ts, filesystems/btrfs/btrfs.ts, filesystems/ntfs/state.ts), else everything.
import * as os from 'os';
import { SnapshotDisk } from '../repo/snapshot-disk';
import { readExt } from '../filesystems/ext/used-blocks';
import type { ChunkReader } from '../repo/chunk-reader';
import type { Manifest } from '../repo/manifest';
import { Kind } from '../repo/extents';
import type { Logger, Repository } from '../repo/repository';
import type { UsedBlocks } from '../filesystems/types';
import { changesSince, incomparable, journalRuns, mergeRuns, readExtState, type BlockRuns, type ExtState } from './ext-tracking';
import type { BtrfsTracked, ExtTracked, NtfsTracked, Tracked } from './point-in-time';
import { detectFilesystem } from '../filesystems/detect';
import { btrfsChangedSince, btrfsIncomparable, readBtrfsState, type BtrfsState } from '../filesystems/btrfs/btrfs';
import { ntfsChangesSince, ntfsIncomparable, readNtfsState, type NtfsState } from '../filesystems/ntfs/state';
import { blockRuns } from '../filesystems/runs';

/**
 * The latest readable snapshot of the same disk taken on this host, the parent whose cells an
 * incremental starts from (another workstation's /dev/sda is another disk, even with the same GUID
 * when it was cloned from the same image).
 */
export async function findParent(repo: Repository, source: string, diskId: string | undefined, warn: (m: string) => void, host = os.hostname()): Promise<Manifest | null> {
  const same = (await repo.listSnapshots()).snapshots.filter((m) => m.host === host && ((diskId && m.source.diskId === diskId) || m.source.path === source));
  const last = same[same.length - 1];
  if (!last) return null;
  try {
    return await repo.readManifest(last.id);
  } catch (err) {
    warn(`The previous snapshot ${last.id} cannot be read (${(err as Error).message}); everything is read and stored anew.`);
    return null;
  }
}

/**
 * The parent image's view of one followed partition: the state of its filesystem as that snapshot
 * holds it, and its used blocks (null where unreadable: then everything is read).
 */
export type ParentFs = { used: UsedBlocks | null } & ({ kind: 'ext'; state: ExtState | null } | { kind: 'btrfs'; state: BtrfsState | null } | { kind: 'ntfs'; state: NtfsState | null });

/** The kind of followed filesystem a manifest's partition held, if any. */
export function followedKind(fs: string | undefined): ParentFs['kind'] | null {
  return fs?.startsWith('ext') ? 'ext' : fs === 'btrfs' || fs === 'ntfs' ? fs : null;
}

/**
 * Reads the parent image's state and used blocks of `partition` (holding a `kind` filesystem). Started
 * early (snapshot/take.ts), so it overlaps the live state's read and the wait before pass 1; errors come
 * out as nulls.
 */
export async function readParentFs(parent: Manifest, partition: number, kind: ParentFs['kind'], chunks: ChunkReader): Promise<ParentFs> {
  const pdisk = new SnapshotDisk(chunks, parent, partition, { cacheChunks: 4 }); // read in order: a few chunks suffice
  const usedOf = async (read: () => Promise<UsedBlocks | null>) => {
    const used = await read().catch(() => null);
    return used && !used.full ? used : null;
  };
  if (kind === 'ext') {
    const state = await readExtState(pdisk).catch(() => null);
    return { kind, state, used: state ? await usedOf(() => readExt(pdisk)) : null };
  }
  if (kind === 'btrfs') {
    const state = await readBtrfsState(pdisk).catch(() => null);
    return { kind, state, used: state ? await usedOf(() => detectFilesystem(pdisk)) : null };
  }
  const state = await readNtfsState(pdisk).catch(() => null);
  return { kind, state, used: state ? await usedOf(() => detectFilesystem(pdisk)) : null };
}

/** Cells the parent left free but that now hold used blocks: read whole, nothing is trusted to be there. */
function freshBlocks(t: Tracked): BlockRuns {
  const extra: BlockRuns = [];
  const used = t.cells.area.used!;
  for (let i = 0; i < t.cells.length; i++) {
    if (t.cells.kind(i) !== Kind.Free) continue;
    const from = Math.floor((i * t.cells.chunkSize) / t.blockSize);
    const to = Math.ceil((i * t.cells.chunkSize + t.cells.cellLength(i)) / t.blockSize);
    for (let b = from; b < to; b++) if (used.bitmap[b >> 3] & (1 << (b & 7))) extra.push([b, 1]);
  }
  return extra;
}

/**
 * The first pass of a btrfs or NTFS partition with a comparable parent: what changed since the
 * parent's image of it (btrfs: everything of a generation after the parent's, as the frozen pass
 * finds what changed after pass 1; NTFS: the files whose MFT records changed since). Null: read
 * everything (said why).
 */
export async function changedSinceParent(t: BtrfsTracked | NtfsTracked, parent: { id: string; fs: ParentFs }, log: Logger): Promise<BlockRuns | null> {
  const area = t.cells.area;
  const full = (why: string) => {
    log(`Partition ${area.partition}: reading everything, not only changes (${why}).`);
    return null;
  };
  const fs = parent.fs;
  if (fs.kind !== t.kind || !fs.state || !fs.used) return full(`the previous snapshot holds no readable ${t.kind === 'ntfs' ? 'NTFS' : 'btrfs'} filesystem there`);
  let runs: BlockRuns;
  try {
    if (t.kind === 'btrfs' && fs.kind === 'btrfs') {
      const why = btrfsIncomparable(fs.state, t.state);
      if (why) return full(why);
      runs = blockRuns((await btrfsChangedSince(t.reader, fs.state.generation)).runs, t.blockSize);
    } else if (t.kind === 'ntfs' && fs.kind === 'ntfs') {
      const why = ntfsIncomparable(fs.state, t.state);
      if (why) return full(why);
      const s = t.state;
      runs = blockRuns(
        (await ntfsChangesSince(t.reader, fs.state, s, { live: true })).runs.map(([c, n]) => [c * s.clusterSize, n * s.clusterSize]),
        t.blockSize,
      );
    } else return full('the previous snapshot holds another filesystem there');
  } catch (err) {
    // A live filesystem caught between two writes (or damage, which the last pass would find).
    return full((err as Error).message);
  }
  t.cells.parentUsed = fs.used;
  log(`Partition ${area.partition}: reading what changed since snapshot ${parent.id}.`);
  return mergeRuns([...runs, ...freshBlocks(t)]);
}

/**
 * How a tracked partition's first pass goes: with a comparable parent, only the blocks that changed
 * since it (`runs`); else in full (runs null), with the journal log to leave out when it is dead.
 */
export async function trackedPass(t: ExtTracked, parent: { id: string; fs: ParentFs } | null, log: Logger): Promise<{ runs: BlockRuns | null; journalLog: BlockRuns }> {
  // A mounted filesystem's journal is emptied when it is frozen for the last pass: its log is dead then.
  const deadLog = !!t.mountpoint || t.state.journalClean;
  const inFull = async () => ({ runs: null, journalLog: deadLog ? await journalRuns(t.reader, t.state) : [] });
  if (!parent) return inFull();
  const area = t.cells.area;
  const before = parent.fs.kind === 'ext' ? parent.fs.state : null;
  const why = before ? incomparable(before, t.state) : 'the previous snapshot holds no readable ext filesystem there';
  if (why) {
    log(`Partition ${area.partition}: reading everything, not only changes (${why}).`);
    return inFull();
  }
  let ch: Awaited<ReturnType<typeof changesSince>>;
  try {
    // A mounted filesystem's metadata is read again, consistent, by the frozen pass: here only file data.
    ch = await changesSince(t.reader, before!, t.state, !!t.mountpoint, { metadata: !t.mountpoint });
  } catch (err) {
    // A mounted filesystem caught between two writes (or damage, which the last pass would find).
    log(`Partition ${area.partition}: reading everything, not only changes (${(err as Error).message}).`);
    return inFull();
  }
  t.deadJournal = deadLog ? ch.journalLog : [];
  if (parent.fs.used) t.cells.parentUsed = parent.fs.used;
  log(`Partition ${area.partition}: ${ch.changedInodes} changed files and directories since snapshot ${parent.id}.`);
  return { runs: mergeRuns([...ch.runs, ...freshBlocks(t)]), journalLog: t.deadJournal };
}
