// forget (which snapshots to keep, by policy as restic/borg do) and prune (reclaim the space of
// chunks no snapshot uses). Pinned snapshots are always kept.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import type { SnapshotSummary } from '../protocol';
import { Repository } from '../repo/repository';
import { PackEntry } from '../repo/pack';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { inspectRepository } from '../repo/check';

export interface RetentionPolicy {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
}

const dayKey = (d: Date) => d.toISOString().slice(0, 10);
const monthKey = (d: Date) => d.toISOString().slice(0, 7);
function weekKey(d: Date): string {
  // ISO week: the Thursday of the week decides the year.
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  t.setUTCDate(t.getUTCDate() + 3 - ((t.getUTCDay() + 6) % 7));
  const firstThursday = new Date(Date.UTC(t.getUTCFullYear(), 0, 4));
  const week = 1 + Math.round(((t.getTime() - firstThursday.getTime()) / 86400000 - 3 + ((firstThursday.getUTCDay() + 6) % 7)) / 7);
  return `${t.getUTCFullYear()}-W${week}`;
}

/**
 * Decides per host and source disk which snapshots a policy keeps (from summaries or manifests): in a
 * repository several workstations share, each keeps its own N daily, however many the others take.
 */
export function applyPolicy<T extends SnapshotSummary>(manifests: T[], policy: RetentionPolicy): { keep: T[]; remove: T[] } {
  if (!policy.keepLast && !policy.keepDaily && !policy.keepWeekly && !policy.keepMonthly) {
    throw new DevsnapError('USAGE', 'No retention policy given: nothing would be kept.', 'Give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly.');
  }
  const keep = new Set<string>();
  const bySource = new Map<string, T[]>();
  for (const m of manifests) {
    const key = `${m.host}\0${m.source.diskId ?? m.source.path}`;
    bySource.set(key, [...(bySource.get(key) ?? []), m]);
  }
  for (const group of bySource.values()) {
    const newestFirst = [...group].sort((a, b) => b.created.localeCompare(a.created));
    newestFirst.filter((m) => m.pinned).forEach((m) => keep.add(m.id));
    newestFirst.slice(0, policy.keepLast ?? 0).forEach((m) => keep.add(m.id));
    const buckets: [number | undefined, (d: Date) => string][] = [
      [policy.keepDaily, dayKey],
      [policy.keepWeekly, weekKey],
      [policy.keepMonthly, monthKey],
    ];
    for (const [count, key] of buckets) {
      if (!count) continue;
      const seen = new Set<string>();
      for (const m of newestFirst) {
        const k = key(new Date(m.created));
        if (seen.has(k)) continue;
        seen.add(k);
        keep.add(m.id); // the newest snapshot of each period
        if (seen.size >= count) break;
      }
    }
  }
  return { keep: manifests.filter((m) => keep.has(m.id)), remove: manifests.filter((m) => !keep.has(m.id)) };
}

export interface PruneResult {
  packsRemoved: number;
  packsRewritten: number;
  bytesFreed: number;
  tempFilesRemoved: number;
  dryRun: boolean;
}

/**
 * Reclaims space. Order matters for crash safety: (1) packs that hold some used chunks are
 * rewritten into new packs, and a new index covering every surviving pack is written; (2) only
 * then are the old index files removed; (3) then unused packs. A crash at any point leaves every
 * snapshot restorable; leftovers are cleaned by the next prune.
 */
export async function prune(repo: Repository, opts: { dryRun?: boolean; onProgress?: ProgressSink }): Promise<PruneResult> {
  // Prune deletes: it runs only on a repository whose every snapshot finds all its chunks. (What it
  // repairs itself, a damaged index file or pack chunk list, does not stop it.)
  const found = await inspectRepository(repo);
  if (found.blocking.length) {
    const shown = found.blocking.slice(0, 5).join('\n  ');
    const more = found.blocking.length > 5 ? `\n  … and ${found.blocking.length - 5} more` : '';
    throw new DevsnapError(
      'DAMAGED',
      `The repository is damaged, so prune deleted nothing (it could delete data a snapshot still needs):\n  ${shown}${more}`,
      'Run `devsnap check` for the whole list. Restore what you need from undamaged snapshots, remove damaged ones with `devsnap forget ID`, then prune.',
    );
  }
  // By the index's entry number: 1 = a snapshot uses it. A referenced chunk the index lacks stopped
  // prune above (inspectRepository's blocking list).
  const index = repo.index;
  const used = found.used;

  const packs = await repo.listPacks();
  const packEntries = new Map<string, number[]>();
  for (let n = 0; n < index.entryCount; n++) {
    const loc = index.location(n);
    if (!loc) continue;
    const list = packEntries.get(loc.pack) ?? [];
    list.push(n);
    packEntries.set(loc.pack, list);
  }
  const unused: string[] = [];
  const partial: string[] = [];
  const keepWhole: string[] = [];
  for (const p of packs) {
    const entries = packEntries.get(p) ?? [];
    // A finished pack whose contents nothing can list (no index entry, no readable chunk list) is
    // never deleted: it may hold the only copy of chunks a lost index would have named.
    if (!repo.indexedPacks.has(p) && !repo.listedPacks.has(p)) continue;
    const live = entries.filter((n) => used[n]);
    if (!live.length) unused.push(p);
    else if (live.length < entries.length || found.damagedTrailers.has(p))
      partial.push(p); // rewritten with a sound chunk list
    else keepWhole.push(p);
  }
  const temps = await repo.leftovers();
  const sizes = new Map((await repo.scanPacks()).placed.map((p) => [p.id, p.size]));
  const sizeOf = async (p: string) => sizes.get(p) ?? (await repo.storage.stat(repo.packName(p)))?.size ?? 0;
  let bytesFreed = 0;
  for (const p of [...unused, ...partial]) bytesFreed += await sizeOf(p);
  if (opts.dryRun) return { packsRemoved: unused.length, packsRewritten: partial.length, bytesFreed, tempFilesRemoved: temps.length, dryRun: true };

  // (1) copy the live chunks of partly used packs (stored bytes verbatim: no recompression).
  const writer = repo.newPackWriter();
  const meter = new ProgressMeter('prune', partial.length, opts.onProgress);
  for (const p of partial) {
    for (const n of packEntries.get(p)!) {
      if (!used[n]) continue;
      const id = index.idOf(n);
      const { frame, loc } = await repo.readStored(id);
      await writer.add(id, frame, loc.rawLength);
    }
    meter.add(1);
  }
  await writer.finish();
  for (const p of writer.written.keys()) bytesFreed -= await sizeOf(p);
  // A fresh index of every surviving pack, then the old index files go. (The writer's chunks now
  // point at its new packs: the rewritten packs' entries are in no surviving list.)
  const surviving = new Map<string, PackEntry[]>([...keepWhole, ...writer.written.keys()].map((p) => [p, []]));
  for (const [id, l] of index) surviving.get(l.pack)?.push({ id, offset: l.offset, length: l.length, rawLength: l.rawLength });
  const oldIndexFiles = [...repo.indexFiles, ...repo.damagedIndexFiles];
  const fresh = await repo.writeIndex(surviving);
  for (const f of oldIndexFiles) if (f !== fresh) await repo.storage.delete(f);
  // A damaged one may be a folder or a link in a folder.
  for await (const s of repo.storage.strays('index/')) if (s.kind === 'not-an-object' && oldIndexFiles.includes(s.name)) await repo.storage.removeStray(s);
  // (3) the packs nothing needs any more, and leftovers of interrupted writes.
  await repo.close();
  for (const p of [...unused, ...partial]) await repo.storage.delete(repo.packName(p));
  for (const t of temps) await repo.removeLeftover(t);
  if (repo.folder !== null) {
    for (const dir of await fs.promises.readdir(path.join(repo.folder, 'data'))) {
      await fs.promises.rmdir(path.join(repo.folder, 'data', dir)).catch(() => undefined); // only empty ones go
    }
  }
  meter.finish();
  await repo.loadIndex();
  return { packsRemoved: unused.length + partial.length, packsRewritten: partial.length, bytesFreed, tempFilesRemoved: temps.length, dryRun: false };
}
