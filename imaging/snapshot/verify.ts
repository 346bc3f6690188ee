// verify: reads back every chunk that snapshots use, checks it against its hash, and reports
// damage by snapshot, partition and disk byte range. Each chunk is read once, however many
// snapshots share it.
import { ChunkDamage, ChunkReader } from '../repo/chunk-reader';
import { DevsnapError } from '../core/errors';
import { FREE, Kind, Manifest, ZERO } from '../repo/manifest';
import { decodePatch } from '../repo/patch';
import { Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { JobQueue } from '../core/job-queue';
import { chunkBuffers } from '../core/memory';
import { isReadOnlyError } from '../core/fsutil';

export interface Damage {
  partition: number | null; // null: the partition table / raw areas
  offset: number; // disk byte offset
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

/** The snapshots to verify, read anew for each pass (verify goes over them twice, holding one manifest at a time). */
export type ManifestSource = () => AsyncIterable<Manifest>;

/** Manifests already in memory (one named snapshot) as a source. */
export function manifestsOf(ms: Manifest[]): ManifestSource {
  return async function* () {
    yield* ms;
  };
}

export type SnapshotVerdict = VerifyResult['snapshots'][number];

/**
 * Reads every chunk the snapshots use once and reports damage by snapshot; `onSnapshot` is called
 * with each manifest and its verdict while the manifest is in memory (verify records the outcome).
 */
export async function verifySnapshots(
  repo: Repository,
  source: ManifestSource,
  opts: { onProgress?: ProgressSink; signal?: AbortSignal; onSnapshot?: (m: Manifest, verdict: SnapshotVerdict) => Promise<void> },
): Promise<VerifyResult> {
  // The chunks to read, by index entry (a 1 TB disk's ~half a million ids are not held as strings):
  // the bytes each stands for (-1: not used); ids the index lacks by hex (they are damage). A patch
  // also records its base and cell length, checked once it is read.
  const standsFor = new Int32Array(repo.index.entryCount).fill(-1);
  const unindexed = new Map<string, number>();
  const patches = new Map<string, { base: string; length: number }>();
  const note = (ids: Buffer, at: number, bytes: number, onlyIfNew: boolean) => {
    const n = repo.index.findBytes(ids, at);
    if (n >= 0) {
      if (!onlyIfNew || standsFor[n] < 0) standsFor[n] = bytes;
    } else {
      const id = ids.toString('hex', at, at + 32);
      if (!onlyIfNew || !unindexed.has(id)) unindexed.set(id, bytes);
    }
  };
  for await (const m of source())
    for (const a of m.areas) {
      const ex = a.extents;
      for (let i = 0; i < ex.length; i++) {
        const kind = ex.kind(i);
        if (kind === Kind.Patch) {
          note(ex.idBytes, ex.baseAt(i), ex.size(i), false);
          note(ex.idBytes, ex.idAt(i), 0, true);
          patches.set(ex.id(i), { base: ex.base(i), length: ex.size(i) });
        } else if (kind === Kind.Chunk) note(ex.idBytes, ex.idAt(i), ex.size(i), false);
      }
    }
  /** Every chunk to read with the bytes it stands for: in index order (that of the packs), then those the index lacks. */
  function* toRead(): Generator<[string, number]> {
    for (let n = 0; n < standsFor.length; n++) if (standsFor[n] >= 0) yield [repo.index.idOf(n), standsFor[n]];
    yield* unindexed;
  }
  let total = 0;
  let count = unindexed.size;
  for (const len of standsFor) if (len >= 0) [total, count] = [total + len, count + 1];
  for (const len of unindexed.values()) total += len;
  const meter = new ProgressMeter('verify', total, opts.onProgress);
  const bad = new Map<string, string>();
  const pool = new WorkerPool();
  const reader = new ChunkReader(repo, pool);
  const jobs = new JobQueue(pool.size * 3);
  let bytesChecked = 0;
  try {
    for (const [id, len] of toRead()) {
      if (opts.signal?.aborted) throw new DevsnapError('CANCELLED', 'Verify cancelled.');
      await jobs.add(async () => {
        try {
          const raw = await reader.read(id, { digests: true });
          const p = patches.get(id);
          if (p) {
            const patch = decodePatch(raw, id);
            if (patch.base !== p.base || patch.cellLength !== p.length)
              throw new ChunkDamage(id, `it patches chunk ${patch.base.slice(0, 12)}… (${patch.cellLength} bytes), not ${p.base.slice(0, 12)}… (${p.length} bytes) as the manifest says`);
          }
          chunkBuffers.give(raw); // checked: reused for a later chunk (core/memory.ts)
        } catch (thrown) {
          const err = thrown instanceof DevsnapError && thrown.code === 'DAMAGED' && !(thrown instanceof ChunkDamage) ? new ChunkDamage(id, thrown.message) : thrown;
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
  const snapshots: SnapshotVerdict[] = [];
  for await (const m of source()) {
    const damage: Damage[] = [];
    for (const a of m.areas)
      for (const e of a.extents) {
        const [off, len] = e;
        const ref = e.length === 4 ? e[3] : e[2]; // the chunk holding the cell
        const raw = ref === ZERO || ref === FREE ? len : repo.index.get(ref)?.rawLength;
        // A chunk that checks out but is shorter or longer than its extent cannot restore it.
        const msg =
          (e.length === 4 ? bad.get(e[2]) : undefined) ?? bad.get(ref) ?? (raw !== undefined && raw !== len ? `the extent is ${len} bytes but its chunk holds ${raw} (damaged manifest)` : undefined);
        if (msg) damage.push({ partition: a.partition ?? null, offset: a.start + off, length: len, chunk: ref, message: msg });
      }
    const verdict = { id: m.id, label: m.label, ok: damage.length === 0, damage };
    snapshots.push(verdict);
    await opts.onSnapshot?.(m, verdict);
  }
  return { ok: snapshots.every((s) => s.ok), chunksChecked: count, bytesChecked, snapshots };
}

/**
 * Records each outcome in its manifest (state + verifiedAt), so the sidebar can show it: a function
 * for verifySnapshots' onSnapshot.
 */
export function verificationRecorder(repo: Repository): (m: Manifest, verdict: SnapshotVerdict) => Promise<void> {
  const now = new Date().toISOString();
  let readOnly = false;
  return async (m, verdict) => {
    if (readOnly) return;
    try {
      await repo.writeManifest({ ...m, state: verdict.ok ? 'verified' : 'damaged', verifiedAt: now });
    } catch (err) {
      // Verifying a repository on read-only media is a read: its outcome stands, it is just not kept.
      if (!isReadOnlyError(err)) throw err;
      repo.log(`The repository is read-only (${(err as NodeJS.ErrnoException).code}): the outcome was not recorded in the snapshots.`);
      readOnly = true;
    }
  };
}
