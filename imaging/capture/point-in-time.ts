// Bringing tracked ext filesystems (fs/ext-state.ts) of an image up to date, live or with writes
// paused: the catch-up rounds and the final frozen pass of a two-pass snapshot, and the one pass of an
// incremental of an unmounted filesystem. See imaging/FORMAT.md, "Point in time and incrementals".
import type * as fs from 'fs';
import { DevsnapError } from '../errors';
import { detectFilesystem } from '../fs/detect';
import type { ByteReader, UsedBlocks } from '../fs/types';
import type { AreaCells, CellStore } from './cells';
import { changesSince, incomparable, readExtState, settleMs, type BlockRuns, type ExtState } from './ext-tracking';
import { dropCache, freeze, syncFilesystem } from './pause';
import { readParts, runsByCell, type PartCell } from './reads';

/** A partition whose image is kept up to date through its filesystem's records. */
export interface Tracked {
  cells: AreaCells;
  reader: ByteReader;        // the live partition
  blockSize: number;         // the filesystem's block size
  mountpoint?: string;       // mounted read-write: the last pass runs frozen
  state: ExtState;           // the image shows at least everything up to this state
  deadJournal: BlockRuns;    // journal log blocks stored as zeros (an empty journal's log)
}

export interface PassStats {
  bytesRead: number;
}

/** Wall clock minus the monotonic clock: it drops when someone steps the clock back. */
export const clockOffset = (): number => Date.now() - performance.now();

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the given block runs of a tracked partition and writes them over its cells. */
export async function applyRuns(fh: fs.promises.FileHandle, t: Tracked, runs: BlockRuns, store: CellStore, source: string, stats: PassStats, signal?: AbortSignal): Promise<void> {
  const a = t.cells.area;
  for await (const part of readParts(fh, a, t.cells.chunkSize, runsByCell(runs, t.blockSize, t.cells.chunkSize, a.size), source)) {
    if (signal?.aborted) throw new DevsnapError('CANCELLED', 'Snapshot cancelled; the repository is unchanged.');
    stats.bytesRead += part.bytesRead;
    await store.overlay(t.cells, part.index, part.blocks, t.blockSize);
  }
}

/** Stores the dead journal's blocks as zeros: whole cells as zero markers, partial ones as a patch. */
export async function zeroDeadJournal(t: Tracked, store: CellStore): Promise<void> {
  const cells = runsByCell(t.deadJournal, t.blockSize, t.cells.chunkSize, t.cells.area.size);
  for (const [i, runs] of cells) {
    const len = t.cells.cellLength(i);
    if (runs.length === 1 && runs[0][0] === i * t.cells.chunkSize && runs[0][1] - runs[0][0] === len) t.cells.cells[i] = { t: 'z' };
    else if (t.cells.cells[i].t !== 'f' && t.cells.cells[i].t !== 'z') await store.overlay(t.cells, i, runs.map(([f, to]) => [f - i * t.cells.chunkSize, Buffer.alloc(to - f)]), t.blockSize);
  }
}

/** Flushes each tracked mount after waiting long enough that later writes change ctime (ext-tracking.settleMs). */
export async function settleAndSync(list: { mountpoint?: string; state: ExtState }[], source: string): Promise<void> {
  const mounted = list.filter((t) => t.mountpoint);
  if (!mounted.length) return;
  await sleep(Math.max(...mounted.map((t) => settleMs(t.state))));
  for (const t of mounted) syncFilesystem(t.mountpoint!);
  dropCache(source);
}

/** Catch-up rounds stop once a round would re-read less than this; the frozen pass then reads little. */
const ROUND_BYTES = 32 << 20;
const MAX_ROUNDS = 3;

/**
 * Live rounds: each captures the filesystems' state, waits, flushes, and re-reads what changed since
 * the previous state, until little changes between rounds. Returns the number of rounds.
 */
export async function catchUp(fh: fs.promises.FileHandle, list: Tracked[], store: CellStore, source: string, stats: PassStats, signal?: AbortSignal): Promise<number> {
  let rounds = 0;
  while (rounds < MAX_ROUNDS) {
    dropCache(source);
    const next = await Promise.all(list.map(async (t) => ({ t, s: await stateOf(t, true) })));
    let changes: Awaited<ReturnType<typeof changesSince>>[];
    try {
      changes = await Promise.all(next.map(({ t, s }) => changesSince(t.reader, t.state, s, true)));
    } catch {
      return rounds; // a mapping caught between two writes: the frozen pass reads it as it is
    }
    if (changes.reduce((n, c) => n + c.changedBytes, 0) < ROUND_BYTES) return rounds;
    rounds++;
    for (const { t, s } of next) t.state = s;
    await settleAndSync(list, source);
    for (const [k, { t }] of next.entries()) await applyRuns(fh, t, changes[k].runs, store, source, stats, signal);
    await store.drain();
  }
  return rounds;
}

async function stateOf(t: Tracked, live = false): Promise<ExtState> {
  const s = await readExtState(t.reader, { live });
  if (!s) throw new DevsnapError('BAD_SOURCE', `The filesystem at ${t.mountpoint ?? `partition ${t.cells.area.partition}`} can no longer be followed while it is imaged (its metadata does not hold).`, 'Run e2fsck on it from a recovery environment, or snapshot with --fuzzy.');
  const why = incomparable(t.state, s, { sameRun: true });
  if (why) throw new DevsnapError('BAD_SOURCE', `The filesystem at ${t.mountpoint ?? `partition ${t.cells.area.partition}`} changed shape while it was imaged (${why}).`, 'Was it resized or checked meanwhile? Take the snapshot again.');
  return s;
}

export interface FrozenResult {
  at: string;
  pauseSeconds: number;
  rereadBytes: number;
}

/**
 * The final pass: freezes every tracked mount, reads what changed since each one's last state (and
 * the filesystems' used-block maps, now consistent), thaws, then stores it. Nothing is written to the
 * repository or logged while frozen: the repository or the terminal may be on a frozen filesystem.
 */
export async function frozenPass(fh: fs.promises.FileHandle, list: Tracked[], store: CellStore, source: string, stats: PassStats): Promise<FrozenResult & { used: Map<Tracked, UsedBlocks | null> }> {
  const mounted = list.filter((t) => t.mountpoint);
  const collected: { t: Tracked; parts: PartCell[]; dead: BlockRuns; used: UsedBlocks | null }[] = [];
  const atMs = Date.now();
  const at = new Date(atMs).toISOString();
  const t0 = performance.now();
  const thaw = freeze(mounted.map((t) => t.mountpoint!));
  let pauseSeconds: number;
  try {
    dropCache(source);
    for (const t of mounted) {
      const s = await stateOf(t);
      const ch = await changesSince(t.reader, t.state, s, true).catch((err: Error) => {
        throw new DevsnapError('BAD_SOURCE', `The filesystem at ${t.mountpoint} does not hold while writes are paused (${err.message}).`, 'Run e2fsck on it from a recovery environment; meanwhile use --freeze for a consistent snapshot.');
      });
      const used = await detectFilesystem(t.reader);
      const parts: PartCell[] = [];
      for await (const part of readParts(fh, t.cells.area, t.cells.chunkSize, runsByCell(ch.runs, t.blockSize, t.cells.chunkSize, t.cells.area.size), source)) parts.push(part);
      t.state = s;
      collected.push({ t, parts, dead: ch.deadJournal, used });
    }
    // With whole-second timestamps (128-byte inodes), a write after the thaw in the second the state
    // was taken would leave ctime as the state holds it, and the next incremental would miss it: hold
    // the pause until the next second has begun. (Finer timestamps move on within the pause itself.)
    if (mounted.some((t) => !t.state.fineTimestamps)) {
      const next = (Math.floor(atMs / 1000) + 1) * 1000 + 20;
      if (Date.now() < next) await sleep(next - Date.now());
    }
  } finally {
    thaw();
    pauseSeconds = (performance.now() - t0) / 1000;
  }
  let rereadBytes = 0;
  const usedMaps = new Map<Tracked, UsedBlocks | null>();
  for (const { t, parts, dead, used } of collected) {
    for (const part of parts) {
      rereadBytes += part.bytesRead;
      await store.overlay(t.cells, part.index, part.blocks, t.blockSize);
    }
    t.deadJournal = dead;
    usedMaps.set(t, used);
  }
  stats.bytesRead += rereadBytes;
  await store.drain();
  return { at, pauseSeconds, rereadBytes, used: usedMaps };
}
