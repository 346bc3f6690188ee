// The `undo` operation: puts back what an upgrade changed between two snapshots (imaging/files/undo.ts)
// on the filesystem mounted at the target. Leaves alone what users and services keep writing (the
// defaults), what the request excludes, and the repository itself when it is on that filesystem.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { undoChanges, UndoOutcome } from '../files/undo';
import { openSnapshotFs } from '../files/open';
import { WorkerPool } from '../repo/worker-pool';
import { ChunkCache } from '../repo/snapshot-disk';
import { UNDO_DEFAULT_EXCLUDES, type UndoRequest, type UndoResult } from '../protocol';
import { OpContext, withRepository } from './operations';

export interface UndoContext extends OpContext {
  /** Called with the plan of a real undo (as a dry run's result) before anything is changed; throw to stop. */
  confirmUndo?: (plan: UndoResult) => Promise<void>;
}

/** The repository's folder as a path inside the filesystem mounted at `target`, when it is there. */
async function repositoryInside(repo: string, target: string): Promise<string | null> {
  const [r, t] = await Promise.all([fs.promises.realpath(repo), fs.promises.realpath(target)]).catch(() => [null, null]);
  if (!r || !t) return null;
  const rel = path.relative(t, r);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? '/' + rel.split(path.sep).join('/') : null;
}

export async function undoOp(req: UndoRequest, ctx: UndoContext): Promise<UndoResult> {
  return withRepository(req, ctx, false, `undo on ${req.target}`, async (repo) => {
    const [mb, ma] = await Promise.all([repo.readManifest(await repo.resolveId(req.before)), repo.readManifest(await repo.resolveId(req.after))]);
    if (mb.id === ma.id) throw new DevsnapError('USAGE', `BEFORE and AFTER are the same snapshot (${mb.id}).`, 'Give the snapshot taken before the upgrade, then the one taken after it.');
    if (Date.parse(mb.created) > Date.parse(ma.created))
      throw new DevsnapError(
        'USAGE',
        `Snapshot ${mb.id} (BEFORE, taken ${mb.created}) is newer than ${ma.id} (AFTER, taken ${ma.created}).`,
        'Give the older snapshot first: devsnap undo BEFORE AFTER.',
      );
    const inside = await repositoryInside(req.repo, req.target);
    const excluded = [...new Set([...(req.everything ? [] : UNDO_DEFAULT_EXCLUDES), ...(req.exclude ?? []), ...(inside ? [inside] : [])])];
    const pool = new WorkerPool(2);
    try {
      const cache = new ChunkCache(64); // both snapshots' chunks: most are the same
      const fb = await openSnapshotFs(repo, mb, req.partition, { pool, cache });
      const fa = await openSnapshotFs(repo, ma, req.partition ?? fb.partition, { pool, cache });
      const full = (o: UndoOutcome): UndoResult => ({ before: mb.id, after: ma.id, partition: fb.partition, excluded, ...o });
      const run = () =>
        undoChanges(fb.fs, fa.fs, {
          target: req.target,
          names: { before: mb.id, after: ma.id },
          exclude: excluded,
          dryRun: req.dryRun,
          force: req.force,
          deep: req.deep,
          confirm: ctx.confirmUndo && ((plan) => ctx.confirmUndo!(full(plan))),
          checkPlan: ctx.checkRestoreFiles,
          signal: ctx.signal,
          onProgress: ctx.onProgress,
          log: ctx.log,
        });
      // The elevated helper works with the user's rights and writes with root's (as for restoreFiles).
      const out = await (ctx.asRoot ? ctx.asRoot(run) : run());
      if (inside) out.warnings.push(`The repository is on this filesystem (${inside}): it is left as it is.`);
      return full(out);
    } finally {
      await pool.close();
    }
  });
}
