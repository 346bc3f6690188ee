// check: the repository's structure without reading chunk data (verify does that): config,
// manifests, index files, packs and their own chunk lists, and what is missing, unreferenced or left
// over by an interrupted write.
import { Kind } from './manifest';
import { Repository } from './repository';
import { PackEntry } from './pack';

export interface CheckReport {
  ok: boolean; // no errors (warnings allowed)
  snapshots: number;
  packs: number;
  chunks: number;
  errors: string[]; // damage: something a snapshot needs (or the index's redundancy) is missing or corrupt
  warnings: string[]; // harmless leftovers that `prune` cleans up
  unreferencedChunks: number;
  unreferencedBytes: number;
}

/** What check found (`report`, as the user sees it), and what prune needs of it (it rewrites the index and packs). */
export interface Inspection {
  report: CheckReport;
  /** By the index's entry number (ChunkIndex.find): 1 where a readable snapshot uses the chunk. */
  used: Uint8Array;
  /** Errors that prune does not repair: while there are any, prune refuses to delete anything. */
  blocking: string[];
  /** Packs whose own chunk list is damaged but whose chunks the index still locates: prune rewrites them. */
  damagedTrailers: Set<string>;
}

const sameEntry = (a: PackEntry, b: PackEntry | undefined) => !!b && a.offset === b.offset && a.length === b.length && a.rawLength === b.rawLength;

/** Checks the repository's structure, reading the manifests one at a time (Repository.eachManifest). */
export async function inspectRepository(repo: Repository): Promise<Inspection> {
  const blocking: string[] = [];
  const repairable: string[] = [];
  const warnings: string[] = [];
  const damagedTrailers = new Set<string>();
  // What the snapshots reference, by entry number: one byte a chunk, however many snapshots.
  const used = new Uint8Array(repo.index.entryCount);
  const unindexed: string[] = [];
  let snapshots = 0;
  for await (const m of repo.eachManifest((id, err) => blocking.push(`snapshot ${id}: ${err.message}`))) {
    snapshots++;
    let missing = 0;
    let wrongLength = 0;
    for (const a of m.areas) {
      const ex = a.extents;
      const ids = ex.idBytes;
      for (let i = 0; i < ex.length; i++) {
        const kind = ex.kind(i);
        if (kind !== Kind.Chunk && kind !== Kind.Patch) continue;
        const n = repo.index.findBytes(ids, ex.idAt(i));
        if (n >= 0) used[n] = 1;
        const base = kind === Kind.Patch ? repo.index.findBytes(ids, ex.baseAt(i)) : n;
        if (base >= 0) used[base] = 1;
        if (n < 0 || base < 0) missing++;
        // The chunk that holds the cell (the base of a patch) has the extent's length.
        else if (repo.index.location(base)!.rawLength !== ex.size(i)) wrongLength++;
      }
    }
    if (missing) unindexed.push(`snapshot ${m.id} (${m.label}): ${missing} chunk(s) are missing from the repository.`);
    if (wrongLength) unindexed.push(`snapshot ${m.id} (${m.label}): ${wrongLength} extent(s) do not have the length of the chunk they name (damaged manifest).`);
  }
  const { placed, misplaced } = await repo.scanPacks();
  const sizes = new Map(placed.map((p) => [p.id, p.size]));
  const packs = new Set(sizes.keys());

  for (const f of repo.damagedIndexFiles) {
    repairable.push(`index file ${f} is damaged (checksum mismatch, or not a regular file); the packs' own chunk lists are used instead. \`devsnap prune\` writes a new index.`);
  }
  for (const p of repo.missingPacks) {
    warnings.push(`pack ${p} is listed in the index but missing from data/; its chunks are not used (a snapshot that needs them is reported below).`);
  }
  for (const m of misplaced) {
    const [, folder, file] = m.split('/');
    warnings.push(
      folder === file.slice(0, 2)
        ? `${m} is not a regular file (a folder or a link); it is not used. Move it out of the repository.`
        : `${m} is not in the folder its name belongs in (data/${file.slice(0, 2)}/); it is not used. Move it there if it came from this repository.`,
    );
  }

  // Each pack's own chunk list: the redundancy that rebuilds a lost index. It must agree with the index.
  // (By entry number: objects for every chunk of a large repository would not fit.)
  const indexed = new Map<string, number[]>();
  for (let n = 0; n < repo.index.entryCount; n++) {
    const loc = repo.index.location(n);
    if (!loc) continue;
    const list = indexed.get(loc.pack) ?? [];
    list.push(n);
    indexed.set(loc.pack, list);
  }
  for (const p of packs) {
    const size = sizes.get(p)!;
    const trailer = await repo.packTrailer(p, size);
    if (!repo.indexedPacks.has(p)) {
      if (trailer) warnings.push(`pack ${p} is not in any index (left by an interrupted snapshot); its chunks will be reused or removed by prune.`);
      else
        warnings.push(
          `pack ${p} has no readable chunk list and no index lists it (a torn write, or damage); devsnap does not use it and prune keeps it. Move it out of the repository once \`devsnap check\` shows no errors.`,
        );
      continue;
    }
    const fromIndex: PackEntry[] = (indexed.get(p) ?? []).map((n) => ({ id: repo.index.idOf(n), ...repo.index.location(n)! })).sort((a, b) => a.offset - b.offset);
    for (const e of fromIndex) {
      if (e.offset + e.length > size) blocking.push(`chunk ${e.id.slice(0, 12)}…: the index points past the end of pack ${p} (truncated pack).`);
    }
    if (!trailer) {
      damagedTrailers.add(p);
      repairable.push(`pack ${p}: its own chunk list is damaged (the index still locates its chunks, but a lost index could not be rebuilt from this pack). \`devsnap prune\` rewrites the pack.`);
    } else {
      // Every chunk the index places in this pack must be listed there identically. (The trailer may
      // list more: a chunk stored twice, which the index locates in another pack.)
      const own = new Map(trailer.map((t) => [t.id, t]));
      if (!fromIndex.every((e) => sameEntry(e, own.get(e.id)))) {
        damagedTrailers.add(p);
        repairable.push(`pack ${p}: its own chunk list disagrees with the index. \`devsnap prune\` rewrites the pack.`);
      }
    }
  }
  for (const t of await repo.leftovers()) warnings.push(`leftover of an interrupted write: ${t.name} (${t.what}); prune removes it.`);

  blocking.push(...unindexed);
  let unreferencedChunks = 0;
  let unreferencedBytes = 0;
  for (let n = 0; n < used.length; n++) {
    const loc = used[n] ? undefined : repo.index.location(n);
    if (loc) {
      unreferencedChunks++;
      unreferencedBytes += loc.length;
    }
  }
  if (unreferencedChunks) warnings.push(`${unreferencedChunks} chunk(s) (${unreferencedBytes} bytes) are not used by any snapshot; \`devsnap prune\` reclaims them.`);
  const errors = [...blocking, ...repairable];
  const report = { ok: errors.length === 0, snapshots, packs: packs.size, chunks: repo.index.size, errors, warnings, unreferencedChunks, unreferencedBytes };
  return { report, used, blocking, damagedTrailers };
}
