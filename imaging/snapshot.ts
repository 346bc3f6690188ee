// Takes a snapshot: images a disk's partition table, raw areas and partitions (used blocks only
// where the filesystem is understood) into the repository, then commits the manifest.
//
// Chunking: fixed-size chunks aligned to the start of each area. A disk does not shift its bytes
// the way a file stream does, so fixed chunks aligned to the partition (and thus to filesystem
// blocks) find every unchanged block of an upgraded filesystem without content-defined chunking's
// cost; see bench/ for the chunk size figures.
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from './errors';
import { inspectPath } from './device';
import { openDisk } from './privilege';
import { layoutProblems, readPartitionTable, PartitionTable } from './partitions';
import { detectFilesystem } from './fs/detect';
import type { ByteReader, UsedBlocks } from './fs/types';
import { bootModeFromPartitions, collectInventory, type Inventory } from './inventory';
import { openImageFs } from './image-fs';
import { fileReader, sliceReader } from './source';
import { Area, Extent, FREE, Manifest, ZERO } from './repo/manifest';
import { Logger, Repository } from './repo/repository';
import { WorkerPool } from './worker-pool';
import { ProgressMeter, ProgressSink } from './progress';
import { freezeMounts, Frozen } from './freeze';
import { ChunkSaver } from './chunk-saver';
import { isZero } from './bytes';
import type { PartitionInfo } from './protocol';

export interface SnapshotOptions {
  source: string;
  label?: string;
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log: Logger;
  /** Freeze the source's read-write mounted filesystems (fsfreeze) while imaging. */
  freeze?: boolean;
}

interface PlannedArea {
  kind: Area['kind'];
  partition?: number;
  start: number;
  size: number;
  used: UsedBlocks | null;
}

/** Adds an extent, merging runs of zero or free space. */
export function pushExtent(list: Extent[], offset: number, length: number, ref: string): void {
  const last = list[list.length - 1];
  if (last && (ref === ZERO || ref === FREE) && last[2] === ref && last[0] + last[1] === offset) last[1] += length;
  else list.push([offset, length, ref]);
}

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

interface Cell {
  area: PlannedArea;
  off: number;
  len: number;
  buf: Buffer | null; // null: free space, nothing read
  bytesRead: number;
}

/** Reads one chunk-sized cell: only its used blocks (runs closer than 64 KiB joined into one read); free gaps are zero. */
async function readCell(fh: fs.promises.FileHandle, a: PlannedArea, off: number, len: number, source: string): Promise<Cell> {
  const runs: [number, number][] = a.used ? usedRuns(a.used, off, off + len) : [[off, off + len]];
  if (!runs.length) return { area: a, off, len, buf: null, bytesRead: 0 };
  const buf = Buffer.allocUnsafe(len);
  let bytesRead = 0;
  let filled = off; // bytes of the cell before this position are set
  for (let i = 0; i < runs.length; ) {
    let j = i;
    while (j + 1 < runs.length && runs[j + 1][0] - runs[j][1] < 64 * 1024) j++;
    const [from, to] = [runs[i][0], runs[j][1]];
    buf.fill(0, filled - off, from - off);
    const { bytesRead: n } = await fh.read(buf, from - off, to - from, a.start + from);
    if (n < to - from) throw new DevsnapError('BAD_SOURCE', `${source} ended early at byte ${a.start + from + n}.`, 'Was the drive removed? Check it and try again.');
    for (let k = i; k < j; k++) buf.fill(0, runs[k][1] - off, runs[k + 1][0] - off);
    for (let k = i; k <= j; k++) bytesRead += runs[k][1] - runs[k][0];
    filled = to;
    i = j + 1;
  }
  buf.fill(0, filled - off, len);
  return { area: a, off, len, buf, bytesRead };
}

/**
 * The cells of every area in disk order, with `ahead` reads in flight: the disk keeps reading while
 * the previous chunks are hashed and compressed (a sequential await per chunk left it idle).
 */
async function* readCells(fh: fs.promises.FileHandle, areas: PlannedArea[], chunkSize: number, source: string, ahead = 8): AsyncGenerator<Cell> {
  function* plan() {
    for (const a of areas) for (let off = 0; off < a.size; off += chunkSize) yield { a, off, len: Math.min(chunkSize, a.size - off) };
  }
  const cells = plan();
  const queue: Promise<Cell>[] = [];
  const refill = () => {
    while (queue.length < ahead) {
      const n = cells.next();
      if (n.done) return;
      const p = readCell(fh, n.value.a, n.value.off, n.value.len, source);
      p.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
      queue.push(p);
    }
  };
  refill();
  while (queue.length) {
    const cell = await queue.shift()!;
    refill();
    yield cell;
  }
}

/**
 * Cuts the disk into areas: raw gaps and one area per partition, clipped to the disk. Areas never
 * overlap (no byte is imaged twice): a partition that starts inside an earlier one gets an area for
 * its remaining bytes only. fsOf holds a used-block map only for partitions it may be trusted on
 * (snapshot leaves out overlapping ones: another partition's filesystem could call their data free).
 */
function planAreas(table: PartitionTable, diskSize: number, fsOf: Map<number, UsedBlocks | null>): PlannedArea[] {
  const areas: PlannedArea[] = [];
  let pos = 0;
  for (const p of [...table.partitions].sort((a, b) => a.start - b.start)) {
    if (p.start >= diskSize) continue;
    if (p.start > pos) areas.push({ kind: 'raw', start: pos, size: p.start - pos, used: null });
    const start = Math.max(p.start, pos);
    const end = Math.min(p.start + p.size, diskSize);
    if (end > start) areas.push({ kind: 'partition', partition: p.index, start, size: end - start, used: start === p.start ? fsOf.get(p.index) ?? null : null });
    pos = Math.max(pos, end);
  }
  if (pos < diskSize) areas.push({ kind: 'raw', start: pos, size: diskSize - pos, used: null });
  return areas;
}

/**
 * The environment inventory (OS, packages, toolchains, VS Code extensions) stored with the snapshot:
 * of the running system when it is the source, else read from the source's root filesystem.
 */
async function takeInventory(isSystem: boolean, disk: ByteReader, partitions: PartitionInfo[], warn: (m: string) => void): Promise<Inventory | null> {
  try {
    let inv: Inventory | null = null;
    if (isSystem) inv = await collectInventory('live');
    else {
      const root = partitions.filter((p) => p.fs?.startsWith('ext')).sort((a, b) => b.size - a.size)[0];
      const ifs = root && (await openImageFs(sliceReader(disk, root.start, root.size)));
      if (ifs) inv = await collectInventory(ifs);
    }
    if (inv) inv.bootMode ??= bootModeFromPartitions(partitions);
    return inv;
  } catch (err) {
    warn(`The environment inventory could not be read (${(err as Error).message}); compare shows files and partitions only.`);
    return null;
  }
}

export async function takeSnapshot(repo: Repository, options: SnapshotOptions): Promise<Manifest> {
  const started = Date.now();
  const opts = { ...options, source: path.resolve(options.source) }; // manifests name sources absolutely
  const info = await inspectPath(opts.source, 'source');
  if (info.size === 0) throw new DevsnapError('BAD_SOURCE', `${opts.source} is empty (0 bytes): there is nothing to image.`, 'Choose a disk or a disk image file.');
  let fh: fs.promises.FileHandle;
  try {
    fh = await openDisk(opts.source, 'r'); // as root only in the helper (privilege.ts)
  } catch (err) {
    throw toDevsnapError(err, `the source ${opts.source}`);
  }
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.log(`warning: ${m}`);
  };
  const repoSubject = `the repository ${repo.dir}`;
  const pool = new WorkerPool();
  const writer = repo.newPackWriter();
  let commitId: string | undefined; // set once the manifest's commit starts
  const saver = new ChunkSaver(writer, pool, options.level ?? repo.config.compression.level, repo.dir);
  let frozen: Frozen | null = null;
  try {
    const rw = info.mounts.filter((m) => !m.readOnly);
    let consistency: Manifest['consistency'] = rw.length ? 'crash-consistent' : 'offline';
    if (rw.length && opts.freeze) {
      frozen = freezeMounts(rw, repo.dir);
      consistency = 'frozen';
      opts.log(`Froze ${frozen.mountpoints.join(', ')} while imaging.`);
    } else if (rw.length) {
      warn(`${opts.source} is mounted read-write (${rw.map((m) => m.mountpoint).join(', ')}): the image is only crash-consistent. For a consistent image, use --freeze, snapshot from a recovery environment, or unmount the filesystems first.`);
    }
    // Read the table and the filesystems' bitmaps only now: after a freeze they are consistent.
    const disk = fileReader(fh, info.size);
    const table = await readPartitionTable(disk, warn);
    if (table.type === 'none') {
      // A filesystem on the whole device (a partition device such as /dev/sda2, or a bare filesystem image).
      table.partitions = [{ index: 1, start: 0, size: info.size, type: 'none', typeName: 'whole device' }];
    }
    const fsOf = new Map<number, UsedBlocks | null>();
    const partitions: PartitionInfo[] = [];
    const misplaced = layoutProblems(table.partitions, info.size);
    for (const p of table.partitions) {
      const name = table.type === 'none' ? 'The whole-device filesystem' : `Partition ${p.index}`;
      const bad = misplaced.get(p.index);
      if (bad) warn(`${name} ${bad}: it is imaged in full (every byte of it on the disk), not through its filesystem's free-block map.`);
      let used: UsedBlocks | null = null;
      try {
        used = await detectFilesystem(sliceReader(disk, p.start, Math.max(0, Math.min(p.size, info.size - p.start))));
      } catch (err) {
        warn(`${name}: its filesystem could not be read (${(err as Error).message}); imaging it in full.`);
      }
      for (const w of used?.warnings ?? []) warn(`${name}: ${w}`);
      // A map of everything (damaged or unfollowed metadata) or a misplaced partition: mode "full".
      fsOf.set(p.index, used && !used.full && !bad ? used : null);
      partitions.push({ ...p, ...(used ? { fs: used.fs, label: used.label, fsUuid: used.uuid, ...(used.full ? {} : { usedBytes: used.usedBytes }) } : {}) });
    }
    const areas = planAreas(table, info.size, fsOf);
    const chunkSize = repo.config.chunkSize;
    const toRead = areas.reduce((n, a) => n + (a.used ? a.used.usedBytes : a.size), 0);
    const meter = new ProgressMeter('image', toRead, opts.onProgress);
    const stats = { bytesRead: 0, bytesUsed: 0 };
    const resultAreas: Area[] = [];

    const extentsOf = new Map<PlannedArea, Extent[]>(areas.map((a) => [a, []]));
    let currentArea: PlannedArea | null = null;
    for await (const cell of readCells(fh, areas, chunkSize, opts.source)) {
      if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'Snapshot cancelled; the repository is unchanged.');
      saver.check();
      const { area: a, off, len, buf } = cell;
      if (a !== currentArea) {
        currentArea = a;
        meter.setMessage(a.kind === 'partition' ? `partition ${a.partition}${a.used ? ` (${a.used.fs})` : ''}` : 'partition table and boot areas');
      }
      const extents = extentsOf.get(a)!;
      stats.bytesRead += cell.bytesRead;
      meter.add(cell.bytesRead);
      if (!buf) {
        pushExtent(extents, off, len, FREE);
        continue;
      }
      if (isZero(buf)) {
        pushExtent(extents, off, len, ZERO);
        continue;
      }
      stats.bytesUsed += len;
      const id = repo.cipher.chunkId(buf);
      pushExtent(extents, off, len, id);
      await saver.save(id, buf, true); // buf is not used after this
    }
    for (const a of areas) {
      resultAreas.push({ kind: a.kind, ...(a.partition !== undefined ? { partition: a.partition } : {}), start: a.start, size: a.size, mode: a.kind === 'raw' ? 'raw' : a.used ? 'used-blocks' : 'full', extents: extentsOf.get(a)! });
    }
    await saver.drain();
    if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'Snapshot cancelled; the repository is unchanged.');
    await writer.finish().catch((err) => Promise.reject(toDevsnapError(err, repoSubject)));
    meter.finish();

    const inventory = await takeInventory(info.isSystem, disk, partitions, warn);
    const previous = (await repo.listSnapshots()).snapshots.filter((m) => (table.diskId && m.source.diskId === table.diskId) || m.source.path === opts.source);
    const created = new Date().toISOString();
    const manifest: Manifest = {
      format: 'devsnap-snapshot',
      version: 1,
      id: crypto.randomBytes(8).toString('hex'),
      label: opts.label?.trim() || `snapshot ${created.slice(0, 16).replace('T', ' ')}`,
      created,
      host: os.hostname(),
      source: { path: opts.source, size: info.size, table: table.type, ...(table.diskId ? { diskId: table.diskId } : {}) },
      consistency,
      ...(previous.length ? { parent: previous[previous.length - 1].id } : {}),
      pinned: false,
      state: 'not-verified',
      stats: { ...stats, ...saver.stats, bytesLogical: info.size, bytesAdded: writer.bytesWritten, durationSeconds: (Date.now() - started) / 1000 },
      partitions,
      chunkSize,
      table,
      areas: resultAreas,
      inventory,
      warnings,
    };
    commitId = manifest.id;
    await repo.commitManifest(manifest).catch((err) => Promise.reject(toDevsnapError(err, repoSubject)));
    return manifest;
  } catch (err) {
    await saver.settle();
    await writer.abandonUnlessCommitted(commitId).catch(() => undefined);
    // Name what was refused: a path of the repository's (its snapshots/ folder, say) is not the source.
    const errPath = (err as NodeJS.ErrnoException)?.path;
    throw toDevsnapError(err, errPath && path.resolve(errPath) !== opts.source ? undefined : `the source ${opts.source}`);
  } finally {
    frozen?.thaw();
    await pool.close();
    await fh.close();
  }
}
