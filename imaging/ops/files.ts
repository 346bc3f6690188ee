// Looking inside snapshots: the environment (inventory), directory listings, file contents, and which
// files changed between two snapshots. Read-only, as the user who asks: no operation here needs root.
import { DevsnapError } from '../core/errors';
import { collectInventory, bootModeFromPartitions, diffInventory } from '../inventory/inventory';
import { diffPage, FileChange, summarizeByDirectory } from '../files/file-diff';
import { openSnapshotFs, OpenedSnapshotFs } from '../files/open';
import { WorkerPool } from '../repo/worker-pool';
import { ChunkCache } from '../repo/snapshot-disk';
import type { ImageStat } from '../filesystems/image-fs/types';
import type { Manifest } from '../repo/manifest';
import type { Repository } from '../repo/repository';
import type { ChangesRequest, ChangesResult, DiffPage, DirectorySummary, Inventory, InventoryRequest, ListDirRequest, ListDirResult, ReadFileRequest, ReadFileResult, WireStat } from '../protocol';
import { OpContext, withRepository } from './operations';

export async function withSnapshotFs<T>(repo: Repository, id: string, partition: number | undefined, fn: (o: OpenedSnapshotFs, m: Manifest) => Promise<T>): Promise<T> {
  const m = await repo.readManifest(await repo.resolveId(id));
  const o = await openSnapshotFs(repo, m, partition);
  try {
    return await fn(o, m);
  } finally {
    await o.close();
  }
}

export function wireStat(st: ImageStat): WireStat {
  return { ...st, xattrs: Object.fromEntries(Object.entries(st.xattrs).map(([k, v]) => [k, v.toString('base64')])) };
}

/** The inventory of a snapshot: the one recorded in its manifest, else read from its root filesystem. */
export async function snapshotInventory(o: OpenedSnapshotFs, m: Manifest): Promise<Inventory> {
  if (m.inventory && typeof m.inventory === 'object') return m.inventory as Inventory;
  const inv = await collectInventory(o.fs);
  inv.bootMode ??= bootModeFromPartitions(m.partitions);
  return inv;
}

export function inventoryOp(req: InventoryRequest, ctx: OpContext): Promise<Inventory> {
  return withRepository(req, ctx, false, 'inventory', (repo) => withSnapshotFs(repo, req.snapshot, req.partition, snapshotInventory));
}

export function listDirOp(req: ListDirRequest, ctx: OpContext): Promise<ListDirResult> {
  const dir = req.path ?? '/';
  return withRepository(req, ctx, false, 'ls', (repo) =>
    withSnapshotFs(repo, req.snapshot, req.partition, async (s) => {
      const st = await s.fs.stat(dir);
      const entries = st.type === 'dir' ? await s.fs.list(dir) : [st];
      return { partition: s.partition, fs: s.fs.fs, path: st.path, entries: entries.map(wireStat) };
    }),
  );
}

export const DEFAULT_MAX_FILE = 64 << 20;

/** A file's whole content (at most maxBytes: larger files are refused, not cut). */
export function readFileOp(req: ReadFileRequest, ctx: OpContext): Promise<ReadFileResult> {
  const max = req.maxBytes ?? DEFAULT_MAX_FILE;
  return withRepository(req, ctx, false, 'cat', (repo) =>
    withSnapshotFs(repo, req.snapshot, req.partition, async (s) => {
      const st = await s.fs.stat(req.path);
      if (st.size > max) throw new DevsnapError('BAD_SOURCE', `${req.path} is larger than ${Math.round(max / (1 << 20))} MiB.`, 'Restore it instead (Restore Files).');
      const data = await s.fs.readFile(req.path);
      return { size: data.length, base64: data.toString('base64') };
    }),
  );
}

/** Every change of one comparison, kept so that later pages are slices of the same walk. */
interface Walk {
  a: string;
  b: string;
  partition: number;
  inventory: ChangesResult['inventory'];
  all: FileChange[];
  totals: DiffPage['totals'];
  /** Per-directory totals by depth, computed once for all the walk's pages. */
  directories: Map<number, DirectorySummary[]>;
}

/**
 * Walks kept by a long-lived engine process (`devsnap serve`): the last few comparisons, by their
 * parameters (snapshots never change, so a kept walk stays true). Bounded: a comparison of more than
 * `maxChanges` changes (~25 MB of them) is not kept, and its pages each walk again, as the CLI does.
 */
export class ChangesCache {
  private readonly walks = new Map<string, Walk>();
  constructor(
    private readonly keep = 3,
    readonly maxChanges = 100_000,
  ) {}
  get(key: string): Walk | undefined {
    const w = this.walks.get(key);
    if (w) {
      this.walks.delete(key); // most recently used last
      this.walks.set(key, w);
    }
    return w;
  }
  set(key: string, w: Walk): void {
    this.walks.set(key, w);
    while (this.walks.size > this.keep) this.walks.delete(this.walks.keys().next().value as string);
  }
}

function page(w: Walk, req: ChangesRequest): ChangesResult {
  const offset = req.offset ?? 0;
  const limit = req.limit ?? 1000;
  const changes = w.all.slice(offset, offset + limit);
  return {
    a: w.a,
    b: w.b,
    partition: w.partition,
    inventory: w.inventory,
    files: { changes, offset, limit, total: w.all.length, totals: w.totals },
    directories: directoriesOf(w, req.depth ?? 2),
  };
}

/** Adds changes to per-directory totals (directories cut to `depth` components). */
function addToDirectories(dirs: Map<string, DirectorySummary>, changes: FileChange[], depth: number): void {
  for (const s of summarizeByDirectory(changes, depth)) {
    const t = dirs.get(s.dir);
    if (!t) dirs.set(s.dir, { ...s });
    else for (const k of ['added', 'removed', 'modified', 'metadata', 'bytesBefore', 'bytesAfter'] as const) t[k] += s[k];
  }
}
const sortedDirectories = (dirs: Map<string, DirectorySummary>) => [...dirs.values()].sort((x, y) => (x.dir < y.dir ? -1 : 1));

function directoriesOf(w: Walk, depth: number): DirectorySummary[] {
  let d = w.directories.get(depth);
  if (!d) w.directories.set(depth, (d = directories(w.all, depth)));
  return d;
}

function directories(changes: FileChange[], depth: number): DirectorySummary[] {
  const dirs = new Map<string, DirectorySummary>();
  addToDirectories(dirs, changes, depth);
  return sortedDirectories(dirs);
}

/**
 * One page of the file changes between two snapshots, with the inventory diff and per-directory
 * totals. With a cache (the engine service), the walk runs once and every page is a slice of it;
 * without one (the CLI), only the page is kept in memory.
 */
export async function changesOp(req: ChangesRequest, ctx: OpContext & { changesCache?: ChangesCache }): Promise<ChangesResult> {
  const cache = ctx.changesCache;
  const r = await withRepository(req, ctx, false, 'changes', async (repo): Promise<ChangesResult | 'too many'> => {
    const [ma, mb] = await Promise.all([repo.readManifest(await repo.resolveId(req.a)), repo.readManifest(await repo.resolveId(req.b))]);
    const key = JSON.stringify([repo.dir, ma.id, mb.id, req.partition ?? null, req.path ?? '/', !!req.deep]);
    const hit = cache?.get(key);
    if (hit) return page(hit, req);
    const pool = new WorkerPool(2);
    try {
      const chunks = new ChunkCache(64); // both snapshots' chunks: most are the same
      const fa = await openSnapshotFs(repo, ma, req.partition, { pool, cache: chunks });
      const fb = await openSnapshotFs(repo, mb, req.partition ?? fa.partition, { pool, cache: chunks });
      const [ia, ib] = await Promise.all([snapshotInventory(fa, ma), snapshotInventory(fb, mb)]);
      let last = 0;
      const dirs = new Map<string, DirectorySummary>();
      const keepAll = !!cache;
      const files = await diffPage(fa.fs, fb.fs, {
        root: req.path,
        deep: req.deep,
        offset: keepAll ? 0 : req.offset,
        limit: keepAll ? cache.maxChanges : req.limit,
        signal: ctx.signal,
        onProgress: (entries) => {
          if (Date.now() - last < 500) return;
          last = Date.now();
          ctx.onProgress?.({ type: 'progress', phase: 'compare', bytesDone: entries, bytesTotal: 0, rate: 0, etaSeconds: null, message: `${entries} entries compared` });
        },
        // Directory totals count every change, not only the page's.
        filter: (c: FileChange) => (keepAll || addToDirectories(dirs, [c], req.depth ?? 2), true),
      });
      const walk: Walk = { a: ma.id, b: mb.id, partition: fa.partition, inventory: diffInventory(ia, ib), all: files.changes, totals: files.totals, directories: new Map() };
      if (!keepAll) return { a: ma.id, b: mb.id, partition: fa.partition, inventory: walk.inventory, files, directories: sortedDirectories(dirs) };
      if (files.total > files.changes.length) return 'too many';
      cache.set(key, walk);
      return page(walk, req);
    } finally {
      await pool.close();
    }
  });
  // More changes than the cache keeps: this page from a walk of its own.
  return r === 'too many' ? changesOp(req, { ...ctx, changesCache: undefined }) : r;
}
