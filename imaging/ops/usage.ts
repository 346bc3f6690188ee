// `usage` (devsnap stats): what each snapshot's data costs the repository. One pass over the
// manifests, one at a time (a manifest of a 1 TB disk is tens of MB: never all in memory), with one
// small number per chunk the repository holds: the last snapshot that referenced it, whether another
// did before, and whether a snapshot outside `forget` did. A chunk referenced by exactly one snapshot
// is that snapshot's unique data: deleting it (forget + prune) frees its stored bytes. And `init`:
// a new repository, encrypted when a password is given.
import { DevsnapError } from '../core/errors';
import { chunkIdBytes, Manifest } from '../repo/manifest';
import { resolveName } from '../repo/catalog';
import { Repository } from '../repo/repository';
import type { InitRequest, InitResult, SnapshotUsage, UsageRequest, UsageResult } from '../protocol';
import { OpContext, withRepository } from './operations';

const SHARED = 1; // referenced by two snapshots or more
const OUTSIDE = 2; // referenced by a snapshot not named in `forget`
const SHIFT = 4; // the rest: 1 + the index of the last snapshot that referenced it

export async function usageOp(req: UsageRequest, ctx: OpContext): Promise<UsageResult> {
  return withRepository(req, ctx, false, 'usage', async (repo) => {
    const cat = await repo.listSnapshots();
    const forget = new Set(req.forget ? req.forget.map((n) => resolveName(cat, n, repo.dir)) : []);
    const ids = cat.snapshots.map((s) => s.id);
    const damaged = cat.damaged.map((d) => ({ id: d.id, message: d.message }));
    // By the index's entry number: one number per chunk the repository holds, 0 while no snapshot referenced it.
    const state = new Uint32Array(repo.index.entryCount);
    const rows: SnapshotUsage[] = [];
    let missingChunks = 0;
    for (const id of ids) {
      let m: Manifest;
      try {
        m = await repo.readManifest(id);
      } catch (err) {
        if (!(err instanceof DevsnapError) || err.code !== 'DAMAGED') throw err;
        damaged.push({ id, message: err.message });
        continue;
      }
      ctx.signal?.throwIfAborted();
      const i = rows.length;
      const row: SnapshotUsage = { id: m.id, label: m.label, created: m.created, uniqueBytes: 0, uniqueChunks: 0, referencedBytes: 0, referencedChunks: 0 };
      rows.push(row);
      const outside = forget.has(id) ? 0 : OUTSIDE;
      const mark = (i + 1) * SHIFT;
      for (const [ids, at] of chunkIdBytes(m)) {
        const n = repo.index.findBytes(ids, at);
        if (n < 0) {
          missingChunks++;
          continue;
        }
        const s = state[n];
        if (s === 0) state[n] = mark | outside;
        else if (Math.floor(s / SHIFT) === i + 1)
          continue; // this snapshot again
        else state[n] = mark | SHARED | (s & OUTSIDE) | outside;
        row.referencedBytes += repo.index.storedLength(n);
        row.referencedChunks++;
      }
    }
    let storedBytes = 0;
    let referencedBytes = 0;
    let sharedBytes = 0;
    let freedBytes = 0;
    let freedChunks = 0;
    let chunks = 0;
    for (let n = 0; n < state.length; n++) {
      const loc = repo.index.location(n);
      if (!loc) continue; // a deleted entry
      chunks++;
      storedBytes += loc.length;
      const s = state[n];
      if (s === 0) continue;
      referencedBytes += loc.length;
      if (s & SHARED) sharedBytes += loc.length;
      else {
        const row = rows[Math.floor(s / SHIFT) - 1];
        row.uniqueBytes += loc.length;
        row.uniqueChunks++;
      }
      if (!(s & OUTSIDE)) {
        freedBytes += loc.length;
        freedChunks++;
      }
    }
    rows.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
    return {
      snapshots: rows,
      total: { storedBytes, chunks, referencedBytes, unreferencedBytes: storedBytes - referencedBytes, sharedBytes },
      ...(req.forget ? { forget: { ids: [...forget], freedBytes, chunks: freedChunks } } : {}),
      missingChunks,
      damaged,
    };
  });
}

/** Creates a repository (encrypted with `password`); an existing one is opened instead, with its password checked. */
export async function initOp(req: InitRequest, ctx: OpContext): Promise<InitResult> {
  try {
    const repo = await Repository.init(req.repo, { password: req.password || undefined, s3Credentials: req.s3Credentials }, ctx.log);
    return { repository: repo.dir, encrypted: repo.cipher.encrypted };
  } catch (err) {
    if (!(err instanceof DevsnapError) || err.code !== 'REPO_EXISTS') throw err;
    const repo = await Repository.open(req.repo, { password: req.password || undefined, s3Credentials: req.s3Credentials }, ctx.log);
    return { repository: repo.dir, encrypted: repo.cipher.encrypted };
  }
}
