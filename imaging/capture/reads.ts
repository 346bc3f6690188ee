// Reading the source: whole cells (every used block of each), or given filesystem-block runs grouped
// by cell. Reads run ahead of the consumer, so the disk keeps reading while earlier cells are hashed
// and compressed; runs closer than 64 KiB are joined into one read.
import { DevsnapError } from '../core/errors';
import type { UsedBlocks } from '../filesystems/types';
import type { PlannedArea } from './cells';
import type { SourceRead } from '../disk/source';
import { chunkBuffers } from '../core/memory';

const JOIN_GAP = 64 * 1024;

/** Byte runs [from, to) of `[cellStart, cellEnd)` that the bitmap marks used. */
export function usedRuns(used: UsedBlocks, cellStart: number, cellEnd: number): [number, number][] {
  const bs = used.blockSize;
  const runs: [number, number][] = [];
  const lastBlock = Math.ceil(cellEnd / bs);
  for (let b = Math.floor(cellStart / bs); b < lastBlock; b++) {
    const byte = used.bitmap[b >> 3];
    if (byte === 0 && (b & 7) === 0) {
      b += 7; // a whole byte of free blocks
      continue;
    }
    if (!(byte & (1 << (b & 7)))) continue;
    const from = Math.max(cellStart, b * bs);
    const to = Math.min(cellEnd, (b + 1) * bs);
    const last = runs[runs.length - 1];
    if (last && last[1] === from) last[1] = to;
    else runs.push([from, to]);
  }
  return runs;
}

/**
 * Reads byte runs (ascending, inside one cell at `off`) of an area into `buf` (the cell's bytes). With
 * `zeroGaps`, every byte of `buf` not read is zeroed (a reused buffer holds an earlier cell's bytes).
 */
async function readRuns(fh: SourceRead, a: PlannedArea, off: number, runs: [number, number][], buf: Buffer, source: string, zeroGaps = false): Promise<number> {
  let bytesRead = 0;
  let done = 0; // buf is read or zeroed up to here
  for (let i = 0; i < runs.length;) {
    let j = i;
    while (j + 1 < runs.length && runs[j + 1][0] - runs[j][1] < JOIN_GAP) j++;
    const [from, to] = [runs[i][0], runs[j][1]];
    if (zeroGaps) buf.fill(0, done, from - off);
    const { bytesRead: n } = await fh.read(buf, from - off, to - from, a.start + from);
    if (n < to - from) throw new DevsnapError('BAD_SOURCE', `${source} ended early at byte ${a.start + from + n}.`, 'Was the drive removed? Check it and try again.');
    for (let k = i; k <= j; k++) bytesRead += runs[k][1] - runs[k][0];
    done = to - off;
    i = j + 1;
  }
  if (zeroGaps) buf.fill(0, done);
  return bytesRead;
}

export interface FullCell {
  area: PlannedArea;
  index: number;
  buf: Buffer | null; // null: no used block, nothing read
  bytesRead: number;
}

/** Reads one cell: its used blocks; free gaps are zero. */
async function readCell(fh: SourceRead, a: PlannedArea, index: number, chunkSize: number, source: string): Promise<FullCell> {
  const off = index * chunkSize;
  const len = Math.min(chunkSize, a.size - off);
  const runs = a.used ? usedRuns(a.used, off, off + len) : [[off, off + len] as [number, number]];
  if (!runs.length) return { area: a, index, buf: null, bytesRead: 0 };
  // A pool buffer (core/memory.ts) rather than a new one per cell: its unread bytes are zeroed.
  const buf = chunkBuffers.take(len);
  return { area: a, index, buf, bytesRead: await readRuns(fh, a, off, runs, buf, source, true) };
}

/** Runs `ahead` promises in flight over an iterator of tasks, yielding results in order. */
async function* inOrder<T, R>(tasks: Iterator<T>, start: (t: T) => Promise<R>, ahead: number): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  const refill = () => {
    while (queue.length < ahead) {
      const n = tasks.next();
      if (n.done) return;
      const p = start(n.value);
      p.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
      queue.push(p);
    }
  };
  refill();
  while (queue.length) {
    const r = await queue.shift()!;
    refill();
    yield r;
  }
}

/** Every cell of the given cells (default: all) of an area, read in full (its used blocks). */
export function readCells(fh: SourceRead, a: PlannedArea, chunkSize: number, source: string, only?: Iterable<number>, ahead = 4): AsyncGenerator<FullCell> {
  function* all() {
    for (let i = 0; i * chunkSize < a.size; i++) yield i;
  }
  const it = (only ?? all())[Symbol.iterator]();
  return inOrder(it, (i: number) => readCell(fh, a, i, chunkSize, source), ahead);
}

/** Filesystem-block runs [first, count] → per cell, the byte runs [from, to) of the area inside it. */
export function runsByCell(runs: Iterable<[number, number]>, blockSize: number, chunkSize: number, areaSize: number): Map<number, [number, number][]> {
  const out = new Map<number, [number, number][]>();
  for (const [first, count] of runs) {
    let from = first * blockSize;
    const end = Math.min((first + count) * blockSize, areaSize);
    while (from < end) {
      const cell = Math.floor(from / chunkSize);
      const to = Math.min(end, (cell + 1) * chunkSize);
      let list = out.get(cell);
      if (!list) out.set(cell, (list = []));
      const last = list[list.length - 1];
      if (last && last[1] >= from) last[1] = Math.max(last[1], to);
      else list.push([from, to]);
      from = to;
    }
  }
  for (const list of out.values()) {
    list.sort((x, y) => x[0] - y[0]);
    // Merge overlaps left by unsorted input.
    for (let i = 1; i < list.length;) {
      if (list[i][0] <= list[i - 1][1]) {
        list[i - 1][1] = Math.max(list[i - 1][1], list[i][1]);
        list.splice(i, 1);
      } else i++;
    }
  }
  return out;
}

export interface PartCell {
  index: number;
  /** [offset in the cell, bytes] for each requested run. */
  blocks: [number, Buffer][];
  bytesRead: number;
}

/** Reads the given byte runs of each cell (ascending cell order), each run as its own buffer. */
export function readParts(fh: SourceRead, a: PlannedArea, chunkSize: number, cells: Map<number, [number, number][]>, source: string, ahead = 4): AsyncGenerator<PartCell> {
  const order = [...cells.keys()].sort((x, y) => x - y);
  return inOrder(
    order[Symbol.iterator](),
    async (index: number) => {
      const off = index * chunkSize;
      const runs = cells.get(index)!;
      const blocks: [number, Buffer][] = [];
      // Every run is read at its place in one cell-sized pool buffer (core/memory.ts; CellStore.overlay
      // gives it back), runs closer than JOIN_GAP in one read: a buffer allocated per read of a small
      // file had left tens of MB for the collector to find.
      const buf = chunkBuffers.take(Math.min(chunkSize, a.size - off));
      const bytesRead = await readRuns(fh, a, off, runs, buf, source);
      for (const [from, to] of runs) blocks.push([from - off, buf.subarray(from - off, to - off)]);
      return { index, blocks, bytesRead };
    },
    ahead,
  );
}
