// verify: reads back every chunk that snapshots use, checks it against its hash, and reports
// damage by snapshot, partition and disk byte range. Each chunk is read once, however many
// snapshots share it.
import { ChunkDamage, ChunkReader } from './chunk-reader';
import { DevsnapError } from './errors';
import { FREE, Manifest, ZERO } from './repo/manifest';
import { Repository } from './repo/repository';
import { WorkerPool } from './worker-pool';
import { ProgressMeter, ProgressSink } from './progress';
import { JobQueue } from './job-queue';
import { isReadOnlyError } from './fsutil';

export interface Damage {
  partition: number | null;   // null: the partition table / raw areas
  offset: number;             // disk byte offset
  length: number;
  chunk: string;
  message: string;
}

/** "partition 2, bytes 1048576-2097152: <what is wrong>": where damage is, for people. */
export function describeDamage(d: Damage): string {
  return `${d.partition === null ? 'raw area' : `partition ${d.partition}`}, bytes ${d.offset}-${d.offset + d.length}: ${d.message}`;
}

export interface VerifyResult {
  ok: boolean;
  chunksChecked: number;
  bytesChecked: number;
  snapshots: { id: string; label: string; ok: boolean; damage: Damage[] }[];
}

export async function verifySnapshots(repo: Repository, manifests: Manifest[], opts: { onProgress?: ProgressSink; signal?: AbortSignal }): Promise<VerifyResult> {
  const unique = new Map<string, number>();
  for (const m of manifests) for (const a of m.areas) for (const e of a.extents) if (e[2] !== ZERO && e[2] !== FREE) unique.set(e[2], e[1]);
  const meter = new ProgressMeter('verify', [...unique.values()].reduce((n, l) => n + l, 0), opts.onProgress);
  const bad = new Map<string, string>();
  const pool = new WorkerPool();
  const reader = new ChunkReader(repo, pool);
  const jobs = new JobQueue(pool.size * 3);
  let bytesChecked = 0;
  try {
    for (const [id, len] of unique) {
      if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'Verify cancelled.');
      await jobs.add(async () => {
        try {
          await reader.read(id);
        } catch (err) {
          if (!(err instanceof ChunkDamage)) throw err; // damage is a finding; anything else stops verify
          bad.set(id, err.message);
        }
        bytesChecked += len;
        meter.add(len);
      });
    }
    await jobs.drain();
  } finally {
    await jobs.settle();
    await pool.close();
  }
  meter.finish();
  const snapshots = manifests.map((m) => {
    const damage: Damage[] = [];
    for (const a of m.areas) for (const [off, len, ref] of a.extents) {
      const raw = ref === ZERO || ref === FREE ? len : repo.index.get(ref)?.rawLength;
      // A chunk that checks out but is shorter or longer than its extent cannot restore it.
      const msg = bad.get(ref) ?? (raw !== undefined && raw !== len ? `the extent is ${len} bytes but its chunk holds ${raw} (damaged manifest)` : undefined);
      if (msg) damage.push({ partition: a.partition ?? null, offset: a.start + off, length: len, chunk: ref, message: msg });
    }
    return { id: m.id, label: m.label, ok: damage.length === 0, damage };
  });
  return { ok: snapshots.every((s) => s.ok), chunksChecked: unique.size, bytesChecked, snapshots };
}

/** Records the outcome in each manifest (state + verifiedAt), so the sidebar can show it. */
export async function recordVerification(repo: Repository, manifests: Manifest[], result: VerifyResult): Promise<void> {
  const now = new Date().toISOString();
  for (const m of manifests) {
    const r = result.snapshots.find((s) => s.id === m.id);
    if (!r) continue;
    try {
      await repo.writeManifest({ ...m, state: r.ok ? 'verified' : 'damaged', verifiedAt: now });
    } catch (err) {
      // Verifying a repository on read-only media is a read: its outcome stands, it is just not kept.
      if (!isReadOnlyError(err)) throw err;
      repo.log(`The repository is read-only (${(err as NodeJS.ErrnoException).code}): the outcome was not recorded in the snapshots.`);
      return;
    }
  }
}
