// The engine's operations on repositories and disks as functions: a typed request in (protocol/),
// a typed result out. registry.ts names them; the CLI, `devsnap serve` and the elevated helper all
// run them from there, so they cannot drift apart.
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { Repository } from '../repo/repository';
import { Manifest, summarize } from '../repo/manifest';
import { lastKnown, resolveName } from '../repo/catalog';
import { takeSnapshot } from '../snapshot/take';
import { planSnapshot } from '../capture/plan';
import { planRestore, restoreSnapshot, RestorePlan } from '../snapshot/restore';
import { describeDamage, manifestsOf, verificationRecorder, verifySnapshots } from '../snapshot/verify';
import { compareWithDisk } from '../snapshot/verify-disk';
import { inspectRepository } from '../repo/check';
import { applyPolicy, prune } from '../snapshot/retention';
import { listDisks } from '../disk/disks';
import { diffSnapshots } from '../snapshot/diff';
import { restoreFiles } from '../files/file-restore';
import { openSnapshotFs } from '../files/open';
import type { ProgressSink } from '../core/progress';
import type {
  CheckOpResult,
  CheckRequest,
  DiffOpResult,
  DiffRequest,
  DisksResult,
  ForgetOpResult,
  ForgetRequest,
  LabelRequest,
  ListResult,
  PinRequest,
  PruneOpResult,
  PruneRequest,
  RepoRequest,
  RestoreEntry,
  RestoreFilesRequest,
  RestoreFilesResult,
  RestoreOpResult,
  RestoreRequest,
  PlanSnapshotRequest,
  ShowRequest,
  ShowResult,
  SnapshotOpResult,
  SnapshotPlan,
  SnapshotRefResult,
  SnapshotRequest,
  VerifyOpResult,
  VerifyRequest,
} from '../protocol';
import { checkSnapshotPath } from '../protocol';

export interface OpContext {
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log: (message: string) => void;
  /** Called with the plan of a real (not dry-run) restore before anything is written; throw to stop. */
  confirmRestore?: (plan: RestorePlan, snapshotId: string) => Promise<void>;
  /** restoreFiles: called with the plan (dry run or not) before anything is written; throw to refuse it. */
  checkRestoreFiles?: (entries: RestoreEntry[]) => void | Promise<void>;
  /** restoreFiles as root: give what is written to this owner instead of the snapshot's owners (see RestoreFilesOptions.owner). */
  restoreFilesOwner?: { uid: number; gid: number };
  /** restoreFiles: runs the restoring itself (the writes) with root's rights (the helper, which otherwise works with the user's; helper/README.md). */
  asRoot?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** How long to wait for another process's conflicting lock (default: DEFAULT_LOCK_WAIT_MS). */
  lockWaitMs?: number;
}

/**
 * Opens the repository, takes its lock, loads the index (unless `index` is false: listing, naming
 * and labelling need none, and a large repository's index is tens of MB), runs `fn`, and always releases.
 */
export async function withRepository<T>(
  req: RepoRequest,
  ctx: OpContext,
  exclusive: boolean | 'adds-only',
  purpose: string,
  fn: (repo: Repository) => Promise<T>,
  create = false,
  index = true,
): Promise<T> {
  if (!req.repo) throw new DevsnapError('USAGE', 'No repository given.', 'Pass --repo DIR or set DEVSNAP_REPO.');
  const access = { password: req.password, s3Credentials: req.s3Credentials };
  const repo = create ? await Repository.openOrInit(req.repo, access, ctx.log) : await Repository.open(req.repo, access, ctx.log);
  try {
    // A writer that only adds objects under new names (a snapshot) shares the lock in a bucket, so that
    // a team's workstations snapshot at once (FORMAT.md "Many writers"); in a folder it stays exclusive.
    const lock = await repo.lock(exclusive === 'adds-only' ? repo.folder !== null : exclusive, purpose, ctx.lockWaitMs);
    try {
      if (index) await repo.loadIndex();
      return await fn(repo);
    } finally {
      await repo.close();
      await lock.release();
    }
  } finally {
    await repo.dispose(); // the storage's connections too (the long-lived engine service opens a repository per request)
  }
}

/** Resolves several names against one listing. */
async function resolveMany(repo: Repository, names: string[]): Promise<Manifest[]> {
  const cat = await repo.listSnapshots();
  return Promise.all(names.map((n) => repo.readManifest(resolveName(cat, n, repo.dir))));
}

export async function disksOp(): Promise<DisksResult> {
  return { disks: await listDisks() };
}

export async function snapshotOp(req: SnapshotRequest, ctx: OpContext): Promise<SnapshotOpResult> {
  const m = await withRepository(
    req,
    ctx,
    'adds-only',
    `snapshot of ${req.source}`,
    (repo) =>
      takeSnapshot(repo, {
        source: req.source,
        label: req.label,
        level: req.compressionLevel,
        freeze: req.freeze,
        fuzzy: req.fuzzy,
        fullRead: req.fullRead,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
        log: ctx.log,
      }),
    true,
  );
  return { id: m.id, snapshot: summarize(m), warnings: m.warnings };
}

/** What a snapshot would do (no repository lock: nothing is written). */
export async function planSnapshotOp(req: PlanSnapshotRequest): Promise<SnapshotPlan> {
  return planSnapshot(req.repo, path.resolve(req.source));
}

/** Every snapshot from its summary; damaged manifests as `damaged` entries (the CLI then exits non-zero). */
export async function listOp(req: RepoRequest, ctx: OpContext): Promise<ListResult> {
  return withRepository(req, ctx, false, 'list', (repo) => repo.listSnapshots(), false, false);
}

export async function showOp(req: ShowRequest, ctx: OpContext): Promise<ShowResult> {
  const m = await withRepository(req, ctx, false, 'show', async (repo) => repo.readManifest(await repo.resolveId(req.snapshot)), false, false);
  return { snapshot: summarize(m), warnings: m.warnings };
}

export async function restoreOp(req: RestoreRequest, ctx: OpContext): Promise<RestoreOpResult> {
  return withRepository(req, ctx, false, `restore to ${req.target}`, async (repo) => {
    const full = await repo.resolveId(req.snapshot);
    if (!req.dryRun && ctx.confirmRestore) {
      const { plan } = await planRestore(await repo.readManifest(full), req.target, req.partition, repo.dir);
      await ctx.confirmRestore(plan, full);
    }
    return restoreSnapshot(repo, { id: full, target: req.target, partition: req.partition, dryRun: req.dryRun, newIds: req.newIds, signal: ctx.signal, onProgress: ctx.onProgress, log: ctx.log });
  });
}

export async function restoreFilesOp(req: RestoreFilesRequest, ctx: OpContext): Promise<RestoreFilesResult> {
  for (const p of req.paths) {
    const problem = checkSnapshotPath(p);
    if (problem) throw new DevsnapError('USAGE', `Cannot restore ${problem}.`);
  }
  return withRepository(req, ctx, false, `restore-files to ${req.target}`, async (repo) => {
    const m = await repo.readManifest(await repo.resolveId(req.snapshot));
    const o = await openSnapshotFs(repo, m, req.partition);
    try {
      const run = () =>
        restoreFiles(o.fs, req.paths, req.target, {
          dryRun: !!req.dryRun,
          inPlace: req.inPlace,
          deep: !!req.deep,
          owner: ctx.restoreFilesOwner,
          checkPlan: ctx.checkRestoreFiles,
          signal: ctx.signal,
          onProgress: ctx.onProgress,
          log: ctx.log,
        });
      return await (ctx.asRoot ? ctx.asRoot(run) : run());
    } finally {
      await o.close();
    }
  });
}

export async function verifyOp(req: VerifyRequest, ctx: OpContext): Promise<VerifyOpResult> {
  return withRepository(req, ctx, false, 'verify', async (repo) => {
    const broken: { id: string; error: string }[] = [];
    const named = req.snapshot ? await resolveMany(repo, [req.snapshot]) : null;
    if (req.against && named?.length !== 1) throw new DevsnapError('USAGE', 'Comparing with a disk needs one snapshot.', 'Name it: devsnap verify ID --against DISK.');
    // Every snapshot: read one at a time in each of verify's passes; damaged manifests noted once.
    let pass = 0;
    const source = named
      ? manifestsOf(named)
      : () => {
          const first = pass++ === 0;
          return repo.eachManifest((id, err) => first && broken.push({ id, error: err.message }));
        };
    const result: VerifyOpResult = await verifySnapshots(repo, source, { onProgress: ctx.onProgress, signal: ctx.signal, onSnapshot: verificationRecorder(repo) });
    if (req.against) result.disk = await compareWithDisk(repo, named![0], path.resolve(req.against), { onProgress: ctx.onProgress, signal: ctx.signal });
    if (!broken.length) return result;
    // A manifest that cannot be read is damage too: named, and verify fails.
    const unreadable = await Promise.all(broken.map(async (b) => ({ id: b.id, label: (await lastKnown(repo, b.id)).label ?? '', ok: false, damage: [], error: b.error })));
    return { ...result, ok: false, snapshots: [...result.snapshots, ...unreadable] };
  });
}

export async function checkOp(req: CheckRequest, ctx: OpContext): Promise<CheckOpResult> {
  return withRepository(req, ctx, false, 'check', async (repo) => {
    const { report } = await inspectRepository(repo);
    if (req.readData) {
      // The manifests again, one at a time (check reported the damaged ones already).
      const v = await verifySnapshots(repo, () => repo.eachManifest(() => undefined), { onProgress: ctx.onProgress, signal: ctx.signal });
      for (const s of v.snapshots) for (const d of s.damage) report.errors.push(`snapshot ${s.id}: ${describeDamage(d)}`);
      report.ok = report.errors.length === 0;
    }
    return report;
  });
}

export async function diffOp(req: DiffRequest, ctx: OpContext): Promise<DiffOpResult> {
  return withRepository(req, ctx, false, 'diff', async (repo) => {
    const [ma, mb] = await resolveMany(repo, [req.a, req.b]);
    return diffSnapshots(ma, mb);
  });
}

export async function forgetOp(req: ForgetRequest, ctx: OpContext): Promise<ForgetOpResult> {
  const pruning = !!req.prune && !req.dryRun;
  return withRepository(
    req,
    ctx,
    true,
    'forget',
    async (repo) => {
      // Summaries are enough to choose. Removal goes by file name, so forgetting a manifest copied
      // under another id never removes the snapshot it is a copy of.
      const cat = await repo.listSnapshots();
      let remove: string[];
      if (req.ids?.length) {
        remove = [...new Set(req.ids.map((n) => resolveName(cat, n, repo.dir)))];
        const pinned = cat.snapshots.filter((s) => s.pinned && remove.includes(s.id));
        if (pinned.length) throw new DevsnapError('USAGE', `Snapshot ${pinned.map((s) => s.id).join(', ')} is pinned.`, 'Unpin it first (`devsnap unpin ID`).');
      } else remove = applyPolicy(cat.snapshots, req.policy ?? {}).remove.map((s) => s.id);
      if (!req.dryRun) for (const id of remove) await repo.deleteManifest(id);
      const pruned = pruning ? await prune(repo, { onProgress: ctx.onProgress }) : undefined;
      const damaged = req.ids?.length ? [] : cat.damaged; // a policy cannot judge them: they stay, and are named
      return {
        removed: remove,
        kept: cat.snapshots.filter((s) => !remove.includes(s.id)).map((s) => s.id),
        dryRun: !!req.dryRun,
        ...(damaged.length ? { damaged } : {}),
        ...(pruned ? { prune: pruned } : {}),
      };
    },
    false,
    pruning,
  );
}

export async function pruneOp(req: PruneRequest, ctx: OpContext): Promise<PruneOpResult> {
  return withRepository(req, ctx, true, 'prune', (repo) => prune(repo, { dryRun: req.dryRun, onProgress: ctx.onProgress }));
}

export async function pinOp(req: PinRequest, ctx: OpContext): Promise<SnapshotRefResult> {
  const m = await withRepository(
    req,
    ctx,
    true,
    req.pinned ? 'pin' : 'unpin',
    async (repo) => {
      const m = { ...(await repo.readManifest(await repo.resolveId(req.snapshot))), pinned: req.pinned };
      await repo.writeManifest(m);
      return m;
    },
    false,
    false,
  );
  return { snapshot: summarize(m) };
}

export async function labelOp(req: LabelRequest, ctx: OpContext): Promise<SnapshotRefResult> {
  if (!req.label.trim()) throw new DevsnapError('USAGE', 'The label is empty.');
  const m = await withRepository(
    req,
    ctx,
    true,
    'label',
    async (repo) => {
      const m = { ...(await repo.readManifest(await repo.resolveId(req.snapshot))), label: req.label.trim() };
      await repo.writeManifest(m);
      return m;
    },
    false,
    false,
  );
  return { snapshot: summarize(m) };
}
