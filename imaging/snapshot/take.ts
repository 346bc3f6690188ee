// Takes a snapshot: images a disk's partition table, raw areas and partitions (used blocks only
// where the filesystem is understood) into the repository, then commits the manifest.
//
// A mounted read-write source is imaged at one point in time (two-pass, capture/point-in-time.ts);
// with a parent snapshot of the same disk, ext, btrfs and NTFS filesystems are read only where they
// changed (capture/parent.ts), and every changed cell is stored as a patch of what changed, found
// through the parent chunk's block digests (capture/cells.ts). See imaging/FORMAT.md.
//
// Chunking: fixed-size chunks aligned to the start of each area. A disk does not shift its bytes
// the way a file stream does, so fixed chunks aligned to the partition (and thus to filesystem
// blocks) find every unchanged block of an upgraded filesystem without content-defined chunking's
// cost; see bench/ for the chunk size figures.
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { devnoString, inspectPath, writableMounts, type MountUse } from '../disk/device';
import { openDisk } from '../disk/privilege';
import { layoutProblems, readPartitionTable, PartitionTable } from '../disk/partitions';
import { detectFilesystem } from '../filesystems/detect';
import type { ByteReader, UsedBlocks } from '../filesystems/types';
import { bootModeFromPartitions, collectInventory, type Inventory } from '../inventory/inventory';
import { openImageFs } from '../filesystems/image-fs/index';
import { fileReader, sliceReader, type SourceRead } from '../disk/source';
import { Area, Manifest } from '../repo/manifest';
import { Logger, Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { freezeMounts, Frozen } from '../capture/freeze';
import { ChunkSaver } from '../repo/chunk-saver';
import { ChunkReader } from '../repo/chunk-reader';
import { AreaCells, CellStore, type PlannedArea } from '../capture/cells';
import { readCells } from '../capture/reads';
import { canFreeze, dropCache, freeze, remountReadOnly, type Thaw } from '../capture/pause';
import { readExtState, withoutBlocks, type ExtState } from '../capture/ext-tracking';
import { applyRuns, catchUp, clockOffset, frozenPass, holdIntoNextSecond, sleep, zeroDeadJournal, type Tracked } from '../capture/point-in-time';
import { captureStates } from '../capture/states';
import { liveZfsPools, zfsProblem } from '../capture/zfs';
import { changedSinceParent, findParent, followedKind, readParentFs, trackedPass, type ParentFs } from '../capture/parent';
import { pauseProblem } from '../capture/plan';
import { lvmDecisions, openLvmSession, type LvmSession, type LvmTarget } from '../capture/lvm-source';
import type { PartitionInfo, PointInTime } from '../protocol';

export interface SnapshotOptions {
  source: string;
  label?: string;
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log: Logger;
  /** Pause writers of the source's read-write filesystems (fsfreeze) for the whole snapshot. */
  freeze?: boolean;
  /** Read a mounted read-write source live, without a point in time (the image may need repair). */
  fuzzy?: boolean;
  /** Read every used block, not only what changed since the parent snapshot. */
  fullRead?: boolean;
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
    if (end > start) areas.push({ kind: 'partition', partition: p.index, start, size: end - start, used: start === p.start ? (fsOf.get(p.index) ?? null) : null });
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

/**
 * Each partition's filesystem and its used-block map: a map only where it may be trusted (a damaged
 * or misplaced partition is imaged in full, mode "full"), with the reasons as warnings.
 */
async function detectPartitions(table: PartitionTable, disk: ByteReader, sizeOf: (p: { start: number; size: number }) => number, diskSize: number, warn: (m: string) => void, live: Set<number>) {
  const fsOf = new Map<number, UsedBlocks | null>();
  const partitions: PartitionInfo[] = [];
  const misplaced = layoutProblems(table.partitions, diskSize);
  for (const p of table.partitions) {
    const name = table.type === 'none' ? 'The whole-device filesystem' : `Partition ${p.index}`;
    const bad = misplaced.get(p.index);
    if (bad) warn(`${name} ${bad}: it is imaged in full (every byte of it on the disk), not through its filesystem's free-block map.`);
    let used: UsedBlocks | null = null;
    try {
      used = await detectFilesystem(sliceReader(disk, p.start, sizeOf(p)), { flushed: live.has(p.index) });
    } catch (err) {
      warn(`${name}: its filesystem could not be read (${(err as Error).message}); imaging it in full.`);
    }
    // A filesystem read live says what is in flight (bitmaps newer in its journal): its frozen pass says what holds.
    if (!live.has(p.index)) for (const w of used?.warnings ?? []) warn(`${name}: ${w}`);
    fsOf.set(p.index, used && !used.full && !bad ? used : null);
    partitions.push({ ...p, ...(used ? { fs: used.fs, label: used.label, fsUuid: used.uuid, ...(used.full ? {} : { usedBytes: used.usedBytes }) } : {}) });
  }
  return { fsOf, partitions };
}

/** How the image reaches one point in time (FORMAT.md): chosen per snapshot from the source's mounts and the options. */
type Mode = 'offline' | 'frozen-two-pass' | 'frozen' | 'fuzzy';

/** A first pass shorter than this leaves too little written meanwhile for a catch-up round to shorten the pause. */
const CATCH_UP_AFTER_MS = 5000;

/** The wall clock was set back by `seconds` while a two-pass snapshot ran. */
class ClockStepped extends DevsnapError {
  constructor(readonly seconds: number) {
    super(
      'BAD_SOURCE',
      `The system clock was set back by ${seconds.toFixed(1)} s while the snapshot ran, so changes made meanwhile cannot be told apart by their times.`,
      'Take the snapshot again once the clock is settled.',
    );
  }
}

export async function takeSnapshot(repo: Repository, options: SnapshotOptions): Promise<Manifest> {
  try {
    return await takeOnce(repo, options);
  } catch (err) {
    // Once the clock is past where it was before the step, no new ctime can repeat an old one: start over.
    if (!(err instanceof ClockStepped) || err.seconds > 10) throw err;
    options.log(`The system clock was set back by ${err.seconds.toFixed(1)} s during the snapshot; taking it again in ${Math.ceil(err.seconds + 1)} s.`);
    await sleep((err.seconds + 1) * 1000);
    return takeOnce(repo, options);
  }
}

async function takeOnce(repo: Repository, options: SnapshotOptions): Promise<Manifest> {
  const started = performance.now(); // monotonic: a clock set back meanwhile must not make the duration negative
  const opts = { ...options, source: path.resolve(options.source) }; // manifests name sources absolutely
  const info = await inspectPath(opts.source, 'source');
  if (info.size === 0) throw new DevsnapError('BAD_SOURCE', `${opts.source} is empty (0 bytes): there is nothing to image.`, 'Choose a disk or a disk image file.');
  let fh: fs.promises.FileHandle;
  try {
    fh = await openDisk(opts.source, 'r'); // as root only in the helper (disk/privilege.ts)
  } catch (err) {
    throw toDevsnapError(err, `the source ${opts.source}`);
  }
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.log(`warning: ${m}`);
  };
  const cancelled = () => new DevsnapError('CANCELLED', 'Snapshot cancelled; the repository is unchanged.');
  const repoSubject = `the repository ${repo.dir}`;
  const pool = new WorkerPool();
  const writer = repo.newPackWriter();
  let commitId: string | undefined; // set once the manifest's commit starts
  const saver = new ChunkSaver(writer, pool, options.level ?? repo.config.compression.level, repo.dir);
  const chunks = new ChunkReader(repo, pool, writer);
  const store = new CellStore(repo, saver, chunks, pool.size * 2, { compareBytes: !!options.fullRead });
  let frozen: Frozen | null = null;
  const resumes: Thaw[] = [];
  let lvm: LvmSession | null = null;
  try {
    const rw = writableMounts(info.mounts);
    const mode: Mode = !rw.length ? 'offline' : opts.fuzzy ? 'fuzzy' : opts.freeze ? 'frozen' : 'frozen-two-pass';
    // Two-pass: read-write LVM volumes on this disk are read from LVM snapshots (capture/lvm-source.ts).
    const lvmChoices =
      mode === 'frozen-two-pass'
        ? lvmDecisions(
            rw.filter((m) => m.offset === undefined),
            info,
          )
        : [];
    const problem = mode === 'frozen-two-pass' ? pauseProblem(rw, repo.dir, devnoString(fs.statSync(repo.dir).dev), lvmChoices) : null;
    if (problem) throw new DevsnapError(problem.code, problem.message, problem.hint);
    const frozenAt = Date.now();
    if (mode === 'frozen') {
      frozen = freezeMounts(rw, repo.dir);
      dropCache(opts.source);
      opts.log(`Froze ${frozen.mountpoints.join(', ')} while imaging.`);
    }
    if (mode === 'fuzzy')
      warn(
        `${opts.source} is mounted read-write (${rw.map((m) => m.mountpoint).join(', ')}) and was read live (--fuzzy): the image is not one point in time, and its filesystems may need repair after a restore.`,
      );
    let disk = fileReader(fh, info.size);
    const table = await readPartitionTable(disk, warn);
    if (table.type === 'none') {
      // A filesystem on the whole device (a partition device such as /dev/sda2, or a bare filesystem image).
      table.partitions = [{ index: 1, start: 0, size: info.size, type: 'none', typeName: 'whole device' }];
    }
    // A ZFS pool imported here changes under any snapshot, whatever is mounted (capture/zfs.ts).
    const zfs = await liveZfsPools(disk, table.partitions);
    const zfsRefusal = zfsProblem(zfs);
    if (zfsRefusal && !opts.fuzzy) throw new DevsnapError(zfsRefusal.code, zfsRefusal.message, zfsRefusal.hint);
    if (zfsRefusal) warn(`${zfsRefusal.message.replace(/: devsnap cannot.*$/, '')}: read live (--fuzzy), not one point in time.`);
    // From here on the disk is read as of the LVM snapshots (their volumes' extents and metadata areas).
    const lvmTargets = lvmChoices.filter((d): d is LvmTarget & { ok: true } => d.ok);
    const viaLvm = (m: MountUse) => lvmTargets.some((t) => t.mount === m);
    const native = lvmTargets.length > 0 && rw.every(viaLvm); // every read-write mount from an LVM snapshot
    if (lvmTargets.length) {
      lvm = await openLvmSession(lvmTargets, { source: opts.source, fh, size: info.size, partitions: table.partitions, log: opts.log });
      disk = lvm.reader;
    }
    const src: SourceRead = lvm ?? fh;
    const sizeOf = (p: { start: number; size: number }) => Math.max(0, Math.min(p.size, info.size - p.start));
    const mountOf = (p: { start: number }) => rw.find((m) => m.offset === p.start);
    const parent = await findParent(repo, opts.source, table.diskId, warn);
    // The parent's view of each followed partition, read from the repository while the source is read
    // below: every ext one (ext is followed mounted or not), btrfs and NTFS once their state is captured
    // (followed only while mounted read-write: an unmounted Windows partition's MFT is not read back).
    const parentFs = new Map<number, Promise<ParentFs>>();
    const kindInParent = (index: number) => followedKind(parent?.partitions.find((p) => p.index === index)?.fs);
    const readParent = (index: number) => {
      const kind = kindInParent(index);
      if (!parent || opts.fullRead || !kind || parentFs.has(index)) return;
      parentFs.set(
        index,
        readParentFs(parent, index, kind, chunks).catch((): ParentFs => ({ kind, state: null, used: null })),
      );
    };
    for (const p of parent?.partitions ?? []) if (kindInParent(p.index) === 'ext') readParent(p.index);

    // Two-pass: each followed read-write filesystem's state is captured before anything of it is read.
    const clock0 = clockOffset();
    const captured = mode === 'frozen-two-pass' ? await captureStates(table.partitions, mountOf, disk, opts.source) : null;
    const states = captured?.ext ?? new Map<number, ExtState>();
    const followedLive = new Set([...(captured?.btrfs.keys() ?? []), ...(captured?.ntfs.keys() ?? [])]);
    for (const i of followedLive) readParent(i);

    const { fsOf, partitions } = await detectPartitions(table, disk, sizeOf, info.size, warn, new Set([...states.keys(), ...followedLive]));
    // Read alongside pass 1, whose cost is compression in the workers. (A read-write source is read
    // live for it either way: the inventory is what the files said while the snapshot ran.)
    const inventoryP = takeInventory(info.isSystem, disk, partitions, warn);
    const areas = planAreas(table, info.size, fsOf);
    const chunkSize = repo.config.chunkSize;
    const sameGeometry = parent && parent.chunkSize === chunkSize && parent.source.size === info.size;
    const cellsOf = new Map<PlannedArea, AreaCells>();
    for (const a of areas) {
      const pa = sameGeometry ? parent.areas.find((x) => x.kind === a.kind && x.partition === a.partition && x.start === a.start && x.size === a.size) : undefined;
      cellsOf.set(a, new AreaCells(a, chunkSize, pa?.extents));
    }

    // Pass 1, area by area in disk order.
    const toRead = areas.reduce((n, a) => n + (a.used ? a.used.usedBytes : a.size), 0);
    const meter = new ProgressMeter('image', toRead, opts.onProgress);
    const stats = { bytesRead: 0 };
    const tracked: Tracked[] = [];
    let readChanges = false;
    for (const a of areas) {
      const cells = cellsOf.get(a)!;
      meter.setMessage(a.kind === 'partition' ? `partition ${a.partition}${a.used ? ` (${a.used.fs})` : ''}` : 'partition table and boot areas');
      const p = a.kind === 'partition' ? table.partitions.find((x) => x.index === a.partition) : undefined;
      const mountedRw = p && mountOf(p);
      const m = mode === 'frozen-two-pass' ? mountedRw : undefined;
      const reader = sliceReader(disk, a.start, a.size);
      let t: Tracked | null = null;
      // Tracked: a two-pass mount whose state was captured, or a filesystem nobody writes to meanwhile.
      if (a.used?.fs.startsWith('ext') && (states.has(a.partition!) || !mountedRw || mode === 'frozen')) {
        const state = states.get(a.partition!) ?? (await readExtState(reader));
        if (state) t = { kind: 'ext', cells, reader, blockSize: a.used.blockSize, state, deadJournal: [], ...(m ? { mountpoint: m.mountpoint } : {}) };
      }
      // btrfs and NTFS are followed only while written (two-pass); with a comparable parent, pass 1 reads what changed since it.
      const bstate = a.used?.fs === 'btrfs' && m ? captured?.btrfs.get(a.partition!) : undefined;
      if (bstate) t = { kind: 'btrfs', cells, reader, blockSize: a.used!.blockSize, state: bstate, mountpoint: m!.mountpoint };
      const nstate = a.used?.fs === 'ntfs' && m ? captured?.ntfs.get(a.partition!) : undefined;
      if (nstate) t = { kind: 'ntfs', cells, reader, blockSize: a.used!.blockSize, state: nstate, mountpoint: m!.mountpoint, device: m!.device };
      if (t?.kind === 'btrfs' || t?.kind === 'ntfs') {
        tracked.push(t);
        const pfs = cells.inherited ? parentFs.get(a.partition!) : undefined;
        const runs = pfs ? await changedSinceParent(t, { id: parent!.id, fs: await pfs }, opts.log) : null;
        if (runs) {
          readChanges = true;
          t.covered = { map: t.cells.parentUsed!, runs };
          await applyRuns(src, t, runs, store, opts.source, stats, opts.signal);
          meter.add(a.used!.usedBytes);
          continue;
        }
      } else if (t) {
        tracked.push(t);
        const pfs = cells.inherited ? parentFs.get(a.partition!) : undefined;
        const how = await trackedPass(t, pfs ? { id: parent!.id, fs: await pfs } : null, opts.log);
        if (how.runs) {
          readChanges = true;
          // What the image holds as read: the parent's blocks, and what is read now.
          if (t.cells.parentUsed) t.covered = { map: t.cells.parentUsed, runs: how.runs };
          await applyRuns(src, t, how.runs, store, opts.source, stats, opts.signal);
          meter.add(a.used!.usedBytes);
          continue;
        }
        // Read in full, without the log of a journal that will be empty (ext4 empties it when frozen).
        if (t.mountpoint || t.state.journalClean) a.used = withoutBlocks(a.used!, how.journalLog, t.blockSize);
        t.deadJournal = how.journalLog;
      }
      if (t && a.used) t.covered = { map: a.used }; // what pass 1 reads
      if (m && !t) {
        resumes.push(pauseFor(m, opts.log)); // a read-write filesystem devsnap cannot track: paused while it is read
        dropCache(opts.source);
      }
      for await (const cell of readCells(src, a, chunkSize, opts.source)) {
        if (opts.signal?.aborted) throw cancelled();
        saver.check();
        stats.bytesRead += cell.bytesRead;
        meter.add(cell.bytesRead);
        await store.putFull(cells, cell.index, cell.buf, a.used?.blockSize ?? 4096);
      }
      const paused = resumes.pop();
      if (paused) {
        paused();
        if (paused.timedOut)
          throw new DevsnapError(
            'BAD_SOURCE',
            `${m!.mountpoint} stayed paused so long that the safety timer resumed writes before devsnap was done: its image would not be one point in time.`,
            'Take the snapshot again, or unmount that filesystem first.',
          );
      }
    }
    await store.drain();
    if (opts.signal?.aborted) throw cancelled();

    // Two-pass: catch up live, then the final pass with writes paused.
    let pointInTime: PointInTime | undefined;
    const live = tracked.filter((t) => t.mountpoint);
    if (mode === 'frozen-two-pass') {
      // Catch-up rounds pay off after a long first pass; after a short one the frozen pass reads little anyway.
      const liveExt = live.filter((t) => t.kind === 'ext');
      const rounds = liveExt.length && performance.now() - started > CATCH_UP_AFTER_MS ? await catchUp(src, liveExt, store, opts.source, stats, opts.signal) : 0;
      await store.drain(); // nothing may be written to the repository while frozen
      let fin = { at: new Date().toISOString(), pauseSeconds: 0, rereadBytes: 0, uncoveredBlocks: 0, used: new Map<Tracked, UsedBlocks | null>() };
      if (live.length) {
        opts.log(`Pausing writes to ${live.map((t) => t.mountpoint).join(', ')} for the last pass…`);
        fin = await frozenPass(src, live, store, opts.source, stats, repo.dir);
        opts.log(`Writes resumed after ${fin.pauseSeconds.toFixed(2)} s.`);
        // Should not happen (FORMAT.md): said, so that it is seen where it does.
        if (fin.uncoveredBlocks) opts.log(`${fin.uncoveredBlocks} blocks in use were in neither the first pass's block map nor the changes: read again while writes were paused.`);
        if (clockOffset() < clock0 - 20) throw new ClockStepped((clock0 - clockOffset()) / 1000);
      }
      for (const [t, used] of fin.used) {
        for (const w of used?.warnings ?? []) warn(`Partition ${t.cells.area.partition}: ${w}`);
        if (!used || used.full)
          throw new DevsnapError(
            'BAD_SOURCE',
            `The filesystem at ${t.mountpoint} does not hold while writes are paused${used?.warnings?.length ? ` (${used.warnings.join('; ')})` : ''}.`,
            `Run ${t.kind === 'ext' ? 'e2fsck' : '`btrfs check --readonly`'} on it from a recovery environment; meanwhile use --freeze for a consistent snapshot.`,
          );
        t.cells.area.used = used;
      }
      const methods = [
        ...live.map((t) => ({ mountpoint: t.mountpoint!, partition: t.cells.area.partition, how: t.kind === 'ntfs' ? 'two-pass-ro' : 'two-pass' })),
        ...(lvm?.methods ?? []),
        ...rw
          .filter((m) => !viaLvm(m) && !live.some((t) => t.mountpoint === m.mountpoint))
          .map((m) => ({ mountpoint: m.mountpoint, ...partitionAt(table, m.offset), how: canFreeze(m.fstype) ? 'frozen' : 'remount-ro' })),
      ];
      // Every mount from an LVM snapshot: the image shows the instant the (first) snapshot was made.
      pointInTime = { at: native && lvm ? lvm.at : fin.at, pauseSeconds: fin.pauseSeconds, rounds, rereadBytes: fin.rereadBytes, methods };
    }
    if (frozen) await holdIntoNextSecond(tracked, frozenAt);
    await store.drain(); // what the overlays below read back is appended
    for (const t of tracked) {
      store.freeUnused(t.cells);
      if (t.kind === 'ext') await zeroDeadJournal(t, store);
    }
    await store.drain();
    if (opts.signal?.aborted) throw cancelled();
    await writer.finish().catch((err) => Promise.reject(toDevsnapError(err, repoSubject)));
    meter.finish();

    const resultAreas: Area[] = areas.map((a) => ({
      kind: a.kind,
      ...(a.partition !== undefined ? { partition: a.partition } : {}),
      start: a.start,
      size: a.size,
      mode: a.kind === 'raw' ? 'raw' : a.used ? 'used-blocks' : 'full',
      extents: cellsOf.get(a)!.extents(),
    }));
    const inventory = await inventoryP;
    if (lvm) {
      lvm.assertValid(); // a snapshot whose COW area filled no longer holds what was read from it
      // Every read is done: remove the snapshots now; one left behind is said, the image is good.
      const done = lvm;
      lvm = null;
      await done.close().catch((err: DevsnapError) => warn(`${err.message}${err.hint ? ` ${err.hint}` : ''}`));
    }
    const created = new Date().toISOString();
    const manifest: Manifest = {
      format: 'devsnap-snapshot',
      version: 2,
      id: crypto.randomBytes(8).toString('hex'),
      label: opts.label?.trim() || `snapshot ${created.slice(0, 16).replace('T', ' ')}`,
      created,
      host: os.hostname(),
      source: { path: opts.source, size: info.size, table: table.type, ...(table.diskId ? { diskId: table.diskId } : {}) },
      consistency: native ? 'native-snapshot' : mode,
      ...(pointInTime ? { pointInTime } : {}),
      readMode: readChanges ? 'changes' : 'all',
      ...(parent ? { parent: parent.id } : {}),
      pinned: false,
      state: 'not-verified',
      stats: {
        bytesRead: stats.bytesRead,
        bytesUsed: [...cellsOf.values()].reduce((n, c) => n + c.dataBytes(), 0),
        chunksNew: saver.stats.chunksNew,
        chunksReused: saver.stats.chunksReused + [...cellsOf.values()].reduce((n, c) => n + c.keptFromParent(), 0),
        bytesLogical: info.size,
        bytesAdded: writer.bytesWritten,
        durationSeconds: (performance.now() - started) / 1000,
      },
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
    for (const r of resumes.splice(0)) r();
    await store.settle(); // the saver's jobs too
    await writer.abandonUnlessCommitted(commitId).catch(() => undefined);
    // Name what was refused: a path of the repository's (its snapshots/ folder, say) is not the source.
    const errPath = (err as NodeJS.ErrnoException)?.path;
    throw toDevsnapError(err, errPath && path.resolve(errPath) !== opts.source ? undefined : `the source ${opts.source}`);
  } finally {
    frozen?.thaw();
    await lvm?.close().catch((err: DevsnapError) => opts.log(`warning: ${err.message}${err.hint ? ` ${err.hint}` : ''}`));
    await pool.close();
    await fh.close();
  }
}

const partitionAt = (table: PartitionTable, offset: number | undefined) => {
  const p = table.partitions.find((x) => x.start === offset);
  return p ? { partition: p.index } : {};
};

/** Pauses a read-write filesystem devsnap cannot track for the time its partition is read. */
function pauseFor(m: MountUse, log: Logger): Thaw {
  log(canFreeze(m.fstype) ? `Pausing writes to ${m.mountpoint} while it is read…` : `Making ${m.mountpoint} read-only while it is read (${m.fstype ?? 'this filesystem'} cannot be frozen)…`);
  // Paused for the whole read of its partition: the guard allows an hour (a long read, not a hang).
  return canFreeze(m.fstype) ? freeze([m.mountpoint], 3600) : remountReadOnly(m.mountpoint, 3600);
}
