// The parent snapshot an incremental starts from, and what of a tracked (ext) partition to read
// against it: only the blocks of what changed since, when the parent's image of that filesystem is
// comparable (capture/ext-tracking.ts), else everything.
import { SnapshotDisk } from '../image-fs/snapshot-disk';
import { readExt } from '../fs/ext';
import type { ChunkReader } from '../chunk-reader';
import type { Manifest } from '../repo/manifest';
import type { Logger, Repository } from '../repo/repository';
import type { UsedBlocks } from '../fs/types';
import { changesSince, incomparable, journalRuns, mergeRuns, readExtState, type BlockRuns, type ExtState } from './ext-tracking';
import type { ExtTracked } from './point-in-time';

/** The latest readable snapshot of the same disk, the parent whose cells an incremental starts from. */
export async function findParent(repo: Repository, source: string, diskId: string | undefined, warn: (m: string) => void): Promise<Manifest | null> {
  const same = (await repo.listSnapshots()).snapshots.filter((m) => (diskId && m.source.diskId === diskId) || m.source.path === source);
  const last = same[same.length - 1];
  if (!last) return null;
  try {
    return await repo.readManifest(last.id);
  } catch (err) {
    warn(`The previous snapshot ${last.id} cannot be read (${(err as Error).message}); everything is read and stored anew.`);
    return null;
  }
}

/** The parent image's view of one ext partition: its state and used blocks (null where unreadable). */
export interface ParentFs {
  state: ExtState | null;
  used: UsedBlocks | null;
}

/**
 * Reads the parent image's ext state and block bitmaps of `partition`. Started early (snapshot.ts), so
 * it overlaps the live state's read and the wait before pass 1; errors come out as nulls.
 */
export async function readParentFs(parent: Manifest, partition: number, chunks: ChunkReader): Promise<ParentFs> {
  const pdisk = new SnapshotDisk(chunks, parent, partition, { cacheChunks: 4 }); // read in order: a few chunks suffice
  const state = await readExtState(pdisk).catch(() => null);
  const used = state ? await readExt(pdisk).catch(() => null) : null;
  return { state, used: used && !used.full ? used : null };
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
  const before = parent.fs.state;
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
  // Cells the parent left free but that now hold used blocks are read whole: nothing is trusted to be there.
  const extra: BlockRuns = [];
  const used = area.used!;
  for (let i = 0; i < t.cells.cells.length; i++) {
    if (t.cells.cells[i].t !== 'f') continue;
    const from = Math.floor((i * t.cells.chunkSize) / t.blockSize);
    const to = Math.ceil((i * t.cells.chunkSize + t.cells.cellLength(i)) / t.blockSize);
    for (let b = from; b < to; b++) if (used.bitmap[b >> 3] & (1 << (b & 7))) extra.push([b, 1]);
  }
  log(`Partition ${area.partition}: ${ch.changedInodes} changed files and directories since snapshot ${parent.id}.`);
  return { runs: mergeRuns([...ch.runs, ...extra]), journalLog: t.deadJournal };
}
