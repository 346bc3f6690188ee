// Snapshot summaries (snapshots/<id>.summary, see imaging/FORMAT.md): what listing, naming and the
// sidebar need of each snapshot, so that listing 1,000 snapshots reads 1,000 small files instead of
// 1,000 manifests of up to ~50 MB each.
//
// The manifest stays the single source of truth. A summary records the size and version of the
// manifest object it describes (in a folder the file's mtime, which a rename keeps, so it is written
// before the manifest is renamed into place; in a bucket the ETag, written just after the PUT) and
// the sha256 of the manifest's JSON. Listing trusts a summary only while the manifest still has that
// size and version; anything else (a crash between the two writes, a
// manifest replaced, truncated or copied by hand, a summary missing, damaged or of another id) makes
// it read the manifest itself, list it or report it damaged, and write a fresh summary when it can.
// Every full read of a manifest (show, verify, check, restore…) heals a summary whose digest differs.
import * as crypto from 'crypto';
import { DevsnapError } from '../core/errors';
import { JobQueue } from '../core/job-queue';
import type { Storage } from '../storage/storage';
import type { DamagedSnapshot, ListedSnapshot, SnapshotSummary } from '../protocol';
import { Manifest, summarize } from './manifest';

/** What the catalog needs of a repository (repository.ts passes itself; no import back, no cycle). */
export interface CatalogRepo {
  readonly dir: string;
  readonly storage: Storage;
  log(message: string): void;
  sealFile(plain: Buffer): Buffer;
  openSealedFile(bytes: Buffer): Buffer;
  listManifests(): Promise<Map<string, ObjectStamp | null>>;
  readManifest(id: string): Promise<Manifest>;
}

/**
 * The manifest object a summary describes: its size and version (the field keeps its first name:
 * a file's mtime in nanoseconds; in a bucket, the object's ETag).
 */
export interface ObjectStamp {
  size: number;
  mtimeNs: string;
}

/** The stamp, and the sha256 of the manifest's JSON. */
export interface ManifestStamp extends ObjectStamp {
  sha256: string;
}

interface SummaryFile {
  format: 'devsnap-summary';
  version: 1;
  id: string;
  manifest: ManifestStamp;
  snapshot: SnapshotSummary;
  warningCount: number;
  digest: string; // sha256 of the rest: a summary damaged into other valid JSON is not trusted
}

export interface Catalog {
  /** Readable snapshots, oldest first. */
  snapshots: ListedSnapshot[];
  /** Snapshots whose manifest cannot be used, by file id. */
  damaged: DamagedSnapshot[];
}

export function summaryName(id: string): string {
  return `snapshots/${id}.summary`;
}

/** Equal stamps mean "the same manifest" for listing. */
const sameFile = (a: ObjectStamp, b: ObjectStamp) => a.size === b.size && a.mtimeNs === b.mtimeNs;

const sha256 = (data: Buffer | string) => crypto.createHash('sha256').update(data).digest('hex');

function summaryDigest(s: Omit<SummaryFile, 'digest'>): string {
  return sha256(JSON.stringify({ ...s, digest: undefined }));
}

/** Makes the summary of manifest `m` stored as `plain` (its JSON) in a file of `file` size and mtime. */
function makeSummary(id: string, m: Manifest, plain: Buffer, file: ObjectStamp): SummaryFile {
  const s: Omit<SummaryFile, 'digest'> = {
    format: 'devsnap-summary',
    version: 1,
    id,
    manifest: { ...file, sha256: sha256(plain) },
    snapshot: summarize(m),
    warningCount: Array.isArray(m.warnings) ? m.warnings.length : 0,
  };
  return { ...s, digest: summaryDigest(s) };
}

export async function writeSummary(repo: CatalogRepo, id: string, m: Manifest, plain: Buffer, file: ObjectStamp): Promise<void> {
  await repo.storage.put(summaryName(id), repo.sealFile(Buffer.from(JSON.stringify(makeSummary(id, m, plain, file)))));
}

/** The summary stored for `id`, or null when it is missing, unreadable, damaged or not of `id`. */
async function readSummary(repo: CatalogRepo, id: string): Promise<SummaryFile | null> {
  let s: SummaryFile;
  try {
    // One request (a bucket answers each in milliseconds, and listing makes one per snapshot);
    // a summary of over 1 MiB is none devsnap wrote.
    const bytes = await repo.storage.getRange(summaryName(id), 0, (1 << 20) + 1);
    if (bytes.length > 1 << 20) return null;
    const plain = repo.openSealedFile(bytes);
    s = JSON.parse(plain.toString('utf8'));
  } catch {
    return null; // missing or damaged: the manifest says it all
  }
  if (s?.format !== 'devsnap-summary' || s.version !== 1 || s.id !== id || s.digest !== summaryDigest(s) || s.snapshot?.id !== id) return null;
  return s;
}

/** What the last good summary said of a snapshot whose manifest is now damaged (for messages). */
export async function lastKnown(repo: CatalogRepo, id: string): Promise<{ label?: string; created?: string }> {
  const s = await readSummary(repo, id);
  return s ? { label: s.snapshot.label, created: s.snapshot.created } : {};
}

const listed = (s: SummaryFile): ListedSnapshot => ({ ...s.snapshot, warningCount: s.warningCount });

/**
 * After a full read of a manifest: writes its summary when the stored one is missing, stale or
 * says something else. Best effort: a read-only repository still lists (more slowly).
 */
export async function healSummary(repo: CatalogRepo, id: string, m: Manifest, plain: Buffer, file: ObjectStamp | null): Promise<void> {
  if (!file) return; // the manifest changed while it was read: the next reader will see it
  const s = await readSummary(repo, id);
  if (s && sameFile(s.manifest, file) && s.manifest.sha256 === sha256(plain)) return;
  await writeSummary(repo, id, m, plain, file).catch((err) =>
    repo.log(`Could not update the summary of snapshot ${id} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); listing will read its manifest until it can.`),
  );
}

/**
 * Every snapshot of the repository from its summaries, reading a manifest only where its summary
 * does not match it (one at a time: a manifest can be tens of MB). Damaged manifests are listed
 * as damaged entries, never left out.
 */
export async function listCatalog(repo: CatalogRepo): Promise<Catalog> {
  const manifests = await repo.listManifests();
  const snapshots: ListedSnapshot[] = [];
  const stale: string[] = [];
  const jobs = new JobQueue(64);
  for (const [id, st] of manifests) {
    await jobs.add(async () => {
      const s = st && (await readSummary(repo, id));
      if (s && st && sameFile(s.manifest, st)) snapshots.push(listed(s));
      else stale.push(id);
    });
  }
  await jobs.drain();
  const damaged: DamagedSnapshot[] = [];
  for (const id of stale.sort()) {
    try {
      const m = await repo.readManifest(id); // heals the summary
      snapshots.push({ ...summarize(m), warningCount: Array.isArray(m.warnings) ? m.warnings.length : 0 });
    } catch (err) {
      if (err instanceof DevsnapError && err.code === 'NOT_FOUND') continue; // forgotten meanwhile
      if (!(err instanceof DevsnapError) || err.code !== 'DAMAGED') throw err;
      damaged.push({ id, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(await lastKnown(repo, id)) });
    }
  }
  snapshots.sort(oldestFirst);
  return { snapshots, damaged };
}

export const oldestFirst = (a: { created: string; id: string }, b: { created: string; id: string }) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id);

/**
 * Resolves a snapshot name against a listing: a full id or a prefix of one, a label, or "latest";
 * `id:PREFIX` and `label:TEXT` name only by id or only by label. A name that fits more than one
 * snapshot (an id prefix and a label, two ids, two snapshots with one label) is refused with the
 * candidates, never guessed: `forget 84` must not remove the snapshot whose id starts with 84 when
 * the user meant the one labelled "84". Damaged snapshots are named by id only.
 */
export function resolveName(cat: Catalog, name: string, repoDir: string): string {
  const how = 'Name it exactly: by its full id, as id:PREFIX (ids only) or as label:TEXT (labels only); `devsnap list` shows them.';
  let byId = true;
  let byLabel = true;
  let text = name;
  if (name.startsWith('id:')) [byLabel, text] = [false, name.slice(3)];
  else if (name.startsWith('label:')) [byId, text] = [false, name.slice(6)];
  if (!text) throw new DevsnapError('USAGE', `"${name}" names no snapshot: nothing follows the colon.`, how);

  // id -> why it matches, in listing order
  const hits = new Map<string, string>();
  const ids = [...cat.snapshots.map((s) => s.id), ...cat.damaged.map((d) => d.id)];
  if (byId && /^[0-9a-f]+$/i.test(text)) {
    const p = text.toLowerCase();
    for (const id of ids) if (id.startsWith(p)) hits.set(id, id === p ? 'its id' : `its id starts with ${p}`);
  }
  if (byLabel) for (const s of cat.snapshots) if (s.label === text) hits.set(s.id, hits.has(s.id) ? `${hits.get(s.id)} and it is labelled "${text}"` : `it is labelled "${text}"`);
  if (name === 'latest' && cat.snapshots.length) {
    const newest = cat.snapshots[cat.snapshots.length - 1].id;
    hits.set(newest, hits.has(newest) ? `${hits.get(newest)}, and it is the newest` : 'it is the newest');
  }

  if (hits.size === 1) return [...hits.keys()][0];
  if (hits.size > 1) {
    const describe = (id: string) => {
      const s = cat.snapshots.find((x) => x.id === id);
      return `  ${id}${s ? ` "${s.label}" of ${s.created.slice(0, 16).replace('T', ' ')}` : ' (damaged manifest)'}: ${hits.get(id)}`;
    };
    throw new DevsnapError('USAGE', `"${name}" could name ${hits.size} snapshots; devsnap does not guess:\n${[...hits.keys()].map(describe).join('\n')}`, how);
  }
  if (name === 'latest') throw new DevsnapError('NOT_FOUND', `The repository ${repoDir} has no snapshots${cat.damaged.length ? ' with a readable manifest' : ''} yet.`);
  throw new DevsnapError('NOT_FOUND', `No snapshot ${name} in ${repoDir}.`, 'Give an id, a prefix of one, a label (or id:PREFIX, label:TEXT), or "latest"; `devsnap list` shows them.');
}
