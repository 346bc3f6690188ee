// Bringing tracked filesystems of an image up to date, live or with writes paused: the catch-up rounds
// and the final frozen pass of a two-pass snapshot, and the one pass of an incremental of an unmounted
// filesystem. ext is followed through its inodes (filesystems/ext/state.ts), btrfs through its generations
// (filesystems/btrfs/btrfs.ts), NTFS through its MFT records (filesystems/ntfs/state.ts). See imaging/FORMAT.md, "Point in time and incrementals".
import * as fs from 'fs';
import * as path from 'path';
import { FILE_MODE, readFully, tempName, writeFully } from '../core/fsutil';
import { DevsnapError } from '../core/errors';
import { chunkBuffers, memMark } from '../core/memory';
import { detectFilesystem } from '../filesystems/detect';
import type { ByteReader, UsedBlocks } from '../filesystems/types';
import type { AreaCells, CellStore } from './cells';
import { changesSince, incomparable, mergeRuns, readExtState, settleMs, type BlockRuns, type ExtState } from './ext-tracking';
import { blockRuns, subtractRuns } from '../filesystems/runs';
import { btrfsChangedSince, btrfsIncomparable, type BtrfsState } from '../filesystems/btrfs/btrfs';
import { dropCache, flushDevice, freeze, remountReadOnlySoon, syncFilesystem, type Thaw } from './pause';
import { ntfsChangesSince, ntfsIncomparable, readNtfsState, type NtfsState } from '../filesystems/ntfs/state';
import { readParts, runsByCell, type PartCell } from './reads';
import type { SourceRead } from '../disk/source';
import { Kind } from '../repo/extents';

/** A partition whose image is kept up to date through its filesystem's records. */
export type Tracked = ExtTracked | BtrfsTracked | NtfsTracked;

interface TrackedArea {
  cells: AreaCells;
  reader: ByteReader; // the live partition
  blockSize: number; // the filesystem's block size (btrfs: its sector size)
  mountpoint?: string; // mounted read-write: the last pass runs frozen
  /** The blocks the image holds as read (pass 1's map; or the parent's, and the runs read over it): the last pass reads any other block then in use. */
  covered?: { map: UsedBlocks; runs?: BlockRuns };
}

export interface ExtTracked extends TrackedArea {
  kind: 'ext';
  state: ExtState; // the image shows at least everything up to this state
  deadJournal: BlockRuns; // journal log blocks stored as zeros (an empty journal's log)
}

/** NTFS through ntfs-3g: it cannot be frozen, so its last pass makes it read-only instead. */
export interface NtfsTracked extends TrackedArea {
  kind: 'ntfs';
  state: NtfsState; // the image shows at least everything up to this state
  device: string; // the device it is mounted from (flushed: ntfs-3g writes through its cache)
}

export interface BtrfsTracked extends TrackedArea {
  kind: 'btrfs';
  state: BtrfsState; // the image shows at least everything committed up to this generation
}

export interface PassStats {
  bytesRead: number;
}

/** Wall clock minus the monotonic clock: it drops when someone steps the clock back. */
export const clockOffset = (): number => Date.now() - performance.now();

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * With whole-second timestamps (128-byte inodes), a write after the thaw in the second the state was
 * taken would leave ctime as the state holds it, and the next incremental would miss it: a pause
 * begun at `pausedAtMs` (wall clock) lasts until the next second has begun. (Finer timestamps move on
 * within the pause itself.)
 */
export async function holdIntoNextSecond(list: Tracked[], pausedAtMs: number): Promise<void> {
  if (!list.some((t) => t.kind === 'ext' && !t.state.fineTimestamps)) return;
  const next = (Math.floor(pausedAtMs / 1000) + 1) * 1000 + 20;
  if (Date.now() < next) await sleep(next - Date.now());
}

/** Reads the given block runs of a tracked partition and writes them over its cells. */
export async function applyRuns(fh: SourceRead, t: Tracked, runs: BlockRuns, store: CellStore, source: string, stats: PassStats, signal?: AbortSignal): Promise<void> {
  const a = t.cells.area;
  for await (const part of readParts(fh, a, t.cells.chunkSize, runsByCell(runs, t.blockSize, t.cells.chunkSize, a.size), source)) {
    if (signal?.aborted) throw new DevsnapError('CANCELLED', 'Snapshot cancelled; the repository is unchanged.');
    stats.bytesRead += part.bytesRead;
    await store.overlay(t.cells, part.index, part.blocks, t.blockSize);
  }
}

/** Stores the dead journal's blocks as zeros: whole cells as zero markers, partial ones as a patch. */
export async function zeroDeadJournal(t: ExtTracked, store: CellStore): Promise<void> {
  const cells = runsByCell(t.deadJournal, t.blockSize, t.cells.chunkSize, t.cells.area.size);
  for (const [i, runs] of cells) {
    const len = t.cells.cellLength(i);
    if (runs.length === 1 && runs[0][0] === i * t.cells.chunkSize && runs[0][1] - runs[0][0] === len) t.cells.set(i, { t: 'z' });
    else if (t.cells.kind(i) !== Kind.Free && t.cells.kind(i) !== Kind.Zero)
      await store.overlay(
        t.cells,
        i,
        runs.map(([f, to]) => [f - i * t.cells.chunkSize, Buffer.alloc(to - f)]),
        t.blockSize,
      );
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
export async function catchUp(fh: SourceRead, list: ExtTracked[], store: CellStore, source: string, stats: PassStats, signal?: AbortSignal): Promise<number> {
  let rounds = 0;
  while (rounds < MAX_ROUNDS) {
    dropCache(source);
    const next = await Promise.all(list.map(async (t) => ({ t, s: await stateOf(t, true) })));
    let changes: Awaited<ReturnType<typeof changesSince>>[];
    try {
      changes = await Promise.all(next.map(({ t, s }) => changesSince(t.reader, t.state, s, true, { metadata: false })));
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

async function stateOf(t: ExtTracked, live = false): Promise<ExtState> {
  const s = await readExtState(t.reader, { live });
  if (!s)
    throw new DevsnapError(
      'BAD_SOURCE',
      `The filesystem at ${t.mountpoint ?? `partition ${t.cells.area.partition}`} can no longer be followed while it is imaged (its metadata does not hold).`,
      'Run e2fsck on it from a recovery environment, or snapshot with --fuzzy.',
    );
  const why = incomparable(t.state, s, { sameRun: true });
  if (why)
    throw new DevsnapError(
      'BAD_SOURCE',
      `The filesystem at ${t.mountpoint ?? `partition ${t.cells.area.partition}`} changed shape while it was imaged (${why}).`,
      'Was it resized or checked meanwhile? Take the snapshot again.',
    );
  return s;
}

/**
 * What the frozen pass read, held until the thaw: in memory up to a budget, the rest in a temporary
 * file in the repository (never on a frozen filesystem: the snapshot refuses that), so memory stays
 * bounded whatever the filesystem's size. The file is removed when done (or, after a crash, by prune).
 */
class Held {
  private readonly inMemory: PartCell[] = [];
  private readonly spilled: { index: number; offs: number[]; lens: number[]; at: number; bytesRead: number }[] = [];
  private memoryBytes = 0;
  private fh: fs.promises.FileHandle | null = null;
  private file: string | null = null;
  private size = 0;

  constructor(
    private readonly dir: string,
    private readonly budget = 8 << 20 /* more goes to the spill file: memory, not speed, bounds it */,
  ) {}

  async add(part: PartCell): Promise<void> {
    // The memory the part holds: its blocks are views of (usually one) cell-sized read buffer.
    const buffers = new Set(part.blocks.map(([, b]) => b.buffer));
    const bytes = [...buffers].reduce((n, ab) => n + ab.byteLength, 0);
    if (this.memoryBytes + bytes <= this.budget) {
      this.inMemory.push(part);
      this.memoryBytes += bytes;
      return;
    }
    if (!this.fh) {
      this.file = tempName(path.join(this.dir, 'frozen-pass'));
      this.fh = await fs.promises.open(this.file, 'wx+', FILE_MODE);
    }
    const at = this.size;
    for (const [, b] of part.blocks) {
      await writeFully(this.fh, b, this.size);
      this.size += b.length;
    }
    for (const ab of buffers) chunkBuffers.give(ab); // written out: the read buffer is free again
    this.spilled.push({ index: part.index, offs: part.blocks.map(([o]) => o), lens: part.blocks.map(([, b]) => b.length), at, bytesRead: part.bytesRead });
  }

  async *parts(): AsyncGenerator<PartCell> {
    yield* this.inMemory.splice(0);
    for (const s of this.spilled) {
      const n = s.lens.reduce((m, l) => m + l, 0);
      const all = await readFully(this.fh!, s.at, n, chunkBuffers.scratch(n)); // given back by CellStore.overlay
      let pos = 0;
      yield { index: s.index, bytesRead: s.bytesRead, blocks: s.offs.map((o, k) => [o, all.subarray(pos, (pos += s.lens[k]))] as [number, Buffer]) };
    }
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    if (this.file) await fs.promises.rm(this.file, { force: true });
  }
}

export interface FrozenResult {
  at: string;
  pauseSeconds: number;
  rereadBytes: number;
  /** Blocks in use that neither pass 1's map nor the changes showed (the safety net's catch: should be 0). */
  uncoveredBlocks: number;
}

/**
 * The final pass: freezes every tracked mount, reads what changed since each one's last state (and
 * the filesystems' used-block maps, now consistent), thaws, then stores it. Nothing is written to the
 * repository or logged while frozen: the repository or the terminal may be on a frozen filesystem.
 */
export async function frozenPass(
  fh: SourceRead,
  list: Tracked[],
  store: CellStore,
  source: string,
  stats: PassStats,
  spillDir: string,
): Promise<FrozenResult & { used: Map<Tracked, UsedBlocks | null> }> {
  const mounted = list.filter((t) => t.mountpoint);
  const collected: Collected[] = [];
  try {
    return await frozenPassHeld(fh, mounted, collected, store, source, stats, spillDir);
  } finally {
    for (const c of collected) await c.parts.close();
  }
}

type Collected = { t: Tracked; parts: Held; dead: BlockRuns; used: UsedBlocks | null };

/**
 * Blocks in use now (`used`, read while paused) that the image does not hold as read (`covered`: a
 * map, and the runs read over it) and that `known` does not list either (the changes, read anyway;
 * the dead journal log, stored as zeros): read again as well. A block allocated after pass 1's map
 * was read belongs to an inode that changed, so it is re-read anyway; this catches what that rule
 * would miss if the map pass 1 read was older than the state it was read with (a bitmap not yet
 * written home, a stale cache).
 */
export function uncovered(used: UsedBlocks, covered: { map: UsedBlocks; runs?: BlockRuns }, known: BlockRuns, blockSize: number): BlockRuns {
  if (used.blockSize !== blockSize || covered.map.blockSize !== blockSize) return [];
  const out: BlockRuns = [];
  const n = Math.min(used.bitmap.length, covered.map.bitmap.length);
  for (let i = 0; i < n; i++) {
    const extra = used.bitmap[i] & ~covered.map.bitmap[i];
    if (!extra) continue;
    for (let k = 0; k < 8; k++) if (extra & (1 << k)) out.push([i * 8 + k, 1]);
  }
  return subtractRuns(mergeRuns(out), mergeRuns([...(covered.runs ?? []), ...known]));
}

/** Byte runs [offset, length) as runs of whole blocks (they are block-aligned; rounding outwards only reads more). */
/**
 * Pauses every mount for the last pass: freezes those the kernel can freeze, makes NTFS read-only
 * (and writes its device's cache out). One thaw undoes all; nothing stays paused when one fails.
 */
async function pauseAll(mounted: Tracked[]): Promise<Thaw> {
  const thaws: Thaw[] = []; // each is safe to call twice
  const thaw = Object.defineProperty(
    () => {
      for (const th of [...thaws].reverse()) th();
    },
    'timedOut',
    { get: () => thaws.some((th) => th.timedOut) },
  ) as Thaw;
  try {
    const freezable = mounted.filter((t) => t.kind !== 'ntfs');
    if (freezable.length) thaws.push(freeze(freezable.map((t) => t.mountpoint!)));
    for (const t of mounted) {
      if (t.kind !== 'ntfs') continue;
      thaws.push(await remountReadOnlySoon(t.mountpoint!, 60));
      flushDevice(t.device);
    }
  } catch (err) {
    thaw();
    throw err;
  }
  return thaw;
}

/** What changed on a frozen filesystem since its last state, as block runs; its state is moved on. */
async function frozenChanges(t: Tracked): Promise<{ runs: BlockRuns; dead: BlockRuns }> {
  const paused = `The filesystem at ${t.mountpoint} does not hold while writes are paused`;
  if (t.kind === 'ntfs') {
    const hint = 'Run `ntfsfix -n` on it (or chkdsk from Windows); meanwhile use --fuzzy for an image that is not one point in time.';
    const s = await readNtfsState(t.reader).catch((err: Error) => {
      throw new DevsnapError('BAD_SOURCE', `${paused} (${err.message}).`, hint);
    });
    if (!s) throw new DevsnapError('BAD_SOURCE', `${paused}: its MFT cannot be read.`, hint);
    const why = ntfsIncomparable(t.state, s);
    if (why) throw new DevsnapError('BAD_SOURCE', `The filesystem at ${t.mountpoint} changed shape while it was imaged (${why}).`, 'Was it resized or reformatted meanwhile? Take the snapshot again.');
    const ch = await ntfsChangesSince(t.reader, t.state, s);
    t.state = s;
    return {
      runs: blockRuns(
        ch.runs.map(([c, n]) => [c * s.clusterSize, n * s.clusterSize]),
        t.blockSize,
      ),
      dead: [],
    };
  }
  if (t.kind === 'btrfs') {
    const ch = await btrfsChangedSince(t.reader, t.state.generation).catch((err: Error) => {
      throw new DevsnapError('BAD_SOURCE', `${paused} (${err.message}).`, 'Run `btrfs check --readonly` on it from a recovery environment; meanwhile use --freeze for a consistent snapshot.');
    });
    const why = btrfsIncomparable(t.state, ch.state);
    if (why) throw new DevsnapError('BAD_SOURCE', `The filesystem at ${t.mountpoint} changed shape while it was imaged (${why}).`, 'Was it resized or changed meanwhile? Take the snapshot again.');
    t.state = ch.state;
    return { runs: blockRuns(ch.runs, t.blockSize), dead: [] };
  }
  const s = await stateOf(t);
  const ch = await changesSince(t.reader, t.state, s, true).catch((err: Error) => {
    throw new DevsnapError('BAD_SOURCE', `${paused} (${err.message}).`, 'Run e2fsck on it from a recovery environment; meanwhile use --freeze for a consistent snapshot.');
  });
  t.state = s;
  return { runs: ch.runs, dead: ch.deadJournal };
}

async function frozenPassHeld(
  fh: SourceRead,
  mounted: Tracked[],
  collected: Collected[],
  store: CellStore,
  source: string,
  stats: PassStats,
  spillDir: string,
): Promise<FrozenResult & { used: Map<Tracked, UsedBlocks | null> }> {
  const atMs = Date.now();
  let uncoveredBlocks = 0;
  const at = new Date(atMs).toISOString();
  const t0 = performance.now();
  memMark('frozen');
  const thaw = await pauseAll(mounted);
  let pauseSeconds: number;
  try {
    dropCache(source);
    for (const t of mounted) {
      const ch = await frozenChanges(t);
      const used = await detectFilesystem(t.reader);
      const parts = new Held(spillDir);
      collected.push({ t, parts, dead: ch.dead, used });
      // The safety net: blocks in use that neither pass 1's map nor the changes cover.
      const extra = used && !used.full && t.covered ? uncovered(used, t.covered, [...ch.runs, ...ch.dead], t.blockSize) : [];
      uncoveredBlocks += extra.reduce((n, [, c]) => n + c, 0);
      const runs = extra.length ? mergeRuns([...ch.runs, ...extra]) : ch.runs;
      for await (const part of readParts(fh, t.cells.area, t.cells.chunkSize, runsByCell(runs, t.blockSize, t.cells.chunkSize, t.cells.area.size), source)) await parts.add(part);
    }
    await holdIntoNextSecond(mounted, atMs);
  } finally {
    thaw();
    pauseSeconds = (performance.now() - t0) / 1000;
  }
  if (thaw.timedOut) {
    throw new DevsnapError(
      'BAD_SOURCE',
      `Writes stayed paused for ${Math.round(pauseSeconds)} s, so the safety timer resumed them before devsnap was done: the image would not be one point in time.`,
      'Take the snapshot again when less is being written, or use --freeze.',
    );
  }
  memMark('thawed');
  let rereadBytes = 0;
  const usedMaps = new Map<Tracked, UsedBlocks | null>();
  for (const { t, parts, dead, used } of collected) {
    for await (const part of parts.parts()) {
      rereadBytes += part.bytesRead;
      await store.overlay(t.cells, part.index, part.blocks, t.blockSize);
    }
    if (t.kind === 'ext') t.deadJournal = dead;
    usedMaps.set(t, used);
  }
  stats.bytesRead += rereadBytes;
  await store.drain();
  return { at, pauseSeconds, rereadBytes, uncoveredBlocks, used: usedMaps };
}
