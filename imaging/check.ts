// check: the repository's structure without reading chunk data (verify does that): config,
// manifests, index files, packs, and what is missing, unreferenced or left over by an
// interrupted write.
import * as fs from 'fs';
import * as path from 'path';
import { chunkRefs, Manifest } from './repo/manifest';
import { Repository } from './repo/repository';
import { readPackTrailer } from './repo/pack';

export interface CheckReport {
  ok: boolean;                 // no errors (warnings allowed)
  snapshots: number;
  packs: number;
  chunks: number;
  errors: string[];            // damage: something a snapshot needs is missing or corrupt
  warnings: string[];          // harmless leftovers that `prune` cleans up
  unreferencedChunks: number;
  unreferencedBytes: number;
}

export async function checkRepository(repo: Repository): Promise<CheckReport> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const manifests: Manifest[] = await repo.readAllManifests((id, err) => errors.push(`snapshot ${id}: ${err.message}`));
  const packs = new Set(await repo.listPacks());

  // Index entries must point into existing packs, within their size.
  const packSizes = new Map<string, number>();
  for (const p of packs) packSizes.set(p, (await fs.promises.stat(repo.packPath(p))).size);
  const missingPacks = new Set<string>();
  for (const [id, loc] of repo.index) {
    const size = packSizes.get(loc.pack);
    if (size === undefined) missingPacks.add(loc.pack);
    else if (loc.offset + loc.length > size) errors.push(`chunk ${id.slice(0, 12)}…: index points past the end of pack ${loc.pack} (truncated pack).`);
  }
  for (const p of missingPacks) errors.push(`pack ${p} is listed in the index but missing from data/.`);

  for (const p of packs) {
    if (repo.indexedPacks.has(p)) continue;
    const trailer = await readPackTrailer(repo.packPath(p)).catch(() => null);
    warnings.push(trailer ? `pack ${p} is not in any index (left by an interrupted snapshot); its chunks will be reused or removed by prune.` : `pack ${p} has no chunk list (torn write); prune removes it.`);
  }
  for (const t of await repo.listTempFiles()) warnings.push(`leftover temporary file ${path.relative(repo.dir, t)} (interrupted write); prune removes it.`);

  const referenced = new Set<string>();
  for (const m of manifests) {
    let missing = 0;
    for (const id of chunkRefs(m)) {
      referenced.add(id);
      if (!repo.index.has(id)) missing++;
    }
    if (missing) errors.push(`snapshot ${m.id} (${m.label}): ${missing} chunk(s) are missing from the repository.`);
  }
  let unreferencedChunks = 0;
  let unreferencedBytes = 0;
  for (const [id, loc] of repo.index) {
    if (!referenced.has(id)) {
      unreferencedChunks++;
      unreferencedBytes += loc.length;
    }
  }
  if (unreferencedChunks) warnings.push(`${unreferencedChunks} chunk(s) (${unreferencedBytes} bytes) are not used by any snapshot; \`devsnap prune\` reclaims them.`);
  return { ok: errors.length === 0, snapshots: manifests.length, packs: packs.size, chunks: repo.index.size, errors, warnings, unreferencedChunks, unreferencedBytes };
}
