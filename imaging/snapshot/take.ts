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
import * as os from 'os';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { devnoString, inspectPath, writableMounts, type MountUse } from '../disk/device';
import { openDisk } from '../disk/privilege';
import { readPartitionTable } from '../disk/partitions';
import { fileReader, sliceReader, type SourceRead } from '../disk/source';
import { Manifest } from '../repo/manifest';
import { Logger, Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { freezeMounts, Frozen } from '../capture/freeze';
import { ChunkSaver } from '../repo/chunk-saver';
import { memMark } from '../core/memory';
import { ChunkReader } from '../repo/chunk-reader';
import { AreaCells, CellStore, type PlannedArea } from '../capture/cells';
import { readCells } from '../capture/reads';
import { canFreeze, dropCache, freeze, remountReadOnly, type Thaw } from '../capture/pause';
import { readExtState, withoutBlocks, type ExtState } from '../capture/ext-tracking';
import { applyRuns, clockOffset, holdIntoNextSecond, sleep, zeroDeadJournal, type Tracked } from '../capture/point-in-time';
import { captureStates } from '../capture/states';
import { liveZfsPools, zfsProblem } from '../capture/zfs';
import { changedSinceParent, findParent, followedKind, readParentFs, trackedPass, type ParentFs } from '../capture/parent';
import { pauseProblem } from '../capture/plan';
import { lvmDecisions, openLvmSession, type LvmSession, type LvmTarget } from '../capture/lvm-source';
import { detectPartitions, planAreas, takeInventory } from './take-plan';
import { snapshotManifest } from './take-manifest';
import { ClockStepped, finishTwoPass } from './take-two-pass';

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

/** How the image reaches one point in time (FORMAT.md): chosen per snapshot from the source's mounts and the options. */
type Mode = 'offline' | 'frozen-two-pass' | 'frozen' | 'fuzzy';
/**
 * Where the paused pass may spill what it re-read: the repository's folder (never a frozen
 * filesystem: pauseProblem refuses that), or for a bucket /dev/shm, a tmpfs no freeze can block
 * (os.tmpdir() may be on the very filesystem being frozen).
 */
const spillFolder = (folder: string | null) => folder ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());

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
  memMark('take');
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
  // Cells in flight: in a bucket each changed cell's comparison waits on a request (its parent's
  // block digests), so more of them overlap the round trips; in a folder the CPU bounds them.
  const store = new CellStore(repo, saver, chunks, repo.folder !== null ? pool.size * 2 : 16, { compareBytes: !!options.fullRead });
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
    const problem = mode === 'frozen-two-pass' ? pauseProblem(rw, repo.dir, repo.folder !== null ? devnoString(fs.statSync(repo.folder).dev) : null, lvmChoices) : null;
    if (problem) throw new DevsnapError(problem.code, problem.message, problem.hint);
    const frozenAt = Date.now();
    if (mode === 'frozen') {
      frozen = freezeMounts(rw, repo.folder);
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
    memMark('pass 1');
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
    pool.limit(1); // the bulk is compressed: what is left keeps one worker busy at most

    // Two-pass: catch up live, then the final pass with writes paused.
    memMark('two-pass end');
    const pointInTime =
      mode === 'frozen-two-pass'
        ? await finishTwoPass({
            src,
            source: opts.source,
            repoDir: spillFolder(repo.folder),
            store,
            stats,
            signal: opts.signal,
            log: opts.log,
            warn,
            tracked,
            started,
            clock0,
            table,
            rw,
            viaLvm,
            lvm,
            native,
          })
        : undefined;
    if (frozen) await holdIntoNextSecond(tracked, frozenAt);
    await store.drain(); // what the overlays below read back is appended
    for (const t of tracked) {
      store.freeUnused(t.cells);
      if (t.kind === 'ext') await zeroDeadJournal(t, store);
    }
    await store.drain();
    if (opts.signal?.aborted) throw cancelled();
    memMark('finish');
    await writer.finish().catch((err) => Promise.reject(toDevsnapError(err, repoSubject)));
    meter.finish();

    const inventory = await inventoryP;
    if (lvm) {
      lvm.assertValid(); // a snapshot whose COW area filled no longer holds what was read from it
      // Every read is done: remove the snapshots now; one left behind is said, the image is good.
      const done = lvm;
      lvm = null;
      await done.close().catch((err: DevsnapError) => warn(`${err.message}${err.hint ? ` ${err.hint}` : ''}`));
    }
    const manifest = snapshotManifest({
      source: opts.source,
      label: opts.label,
      size: info.size,
      table,
      consistency: native ? 'native-snapshot' : mode,
      pointInTime,
      readChanges,
      parent,
      areas,
      cellsOf,
      partitions,
      chunkSize,
      inventory,
      warnings,
      bytesRead: stats.bytesRead,
      saver,
      bytesAdded: writer.bytesWritten,
      started,
    });
    memMark('commit');
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

/** Pauses a read-write filesystem devsnap cannot track for the time its partition is read. */
function pauseFor(m: MountUse, log: Logger): Thaw {
  log(canFreeze(m.fstype) ? `Pausing writes to ${m.mountpoint} while it is read…` : `Making ${m.mountpoint} read-only while it is read (${m.fstype ?? 'this filesystem'} cannot be frozen)…`);
  // Paused for the whole read of its partition: the guard allows an hour (a long read, not a hang).
  return canFreeze(m.fstype) ? freeze([m.mountpoint], 3600) : remountReadOnly(m.mountpoint, 3600);
}
