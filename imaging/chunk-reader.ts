// Reads chunks back from the repository: stored bytes -> (decrypt) -> decompress in a worker ->
// check the content address. Every byte devsnap restores, exports or verifies passes through here.
import { DevsnapError } from './errors';
import { PackWriter, Repository } from './repo/repository';
import { Area, Extent, Manifest, extentChunks } from './repo/manifest';
import { applyPatch, decodePatch } from './repo/patch';
import { WorkerPool } from './worker-pool';

export class ChunkDamage extends DevsnapError {
  constructor(readonly chunkId: string, detail: string) {
    super('DAMAGED', `Chunk ${chunkId.slice(0, 12)}… is damaged: ${detail}.`, 'Run `devsnap verify` to see which snapshots and byte ranges are affected; restore from another snapshot.');
  }
}

/** Fails before a byte is written when a chunk the areas need is missing from the repository altogether. */
export function assertChunksStored(repo: Repository, m: Manifest, areas: Area[], action: 'restore' | 'export'): void {
  for (const a of areas) for (const e of a.extents) for (const id of extentChunks(e)) {
    if (!repo.index.has(id)) {
      throw new DevsnapError('DAMAGED', `Snapshot ${m.id} needs chunk ${id.slice(0, 12)}… (${a.kind === 'partition' ? `partition ${a.partition}` : 'raw area'}, bytes ${a.start + e[0]}-${a.start + e[0] + e[1]}), which is missing from the repository. Nothing was written.`, `Run \`devsnap check\`; ${action} another snapshot.`);
    }
  }
}

export class ChunkReader {
  /** `writer`: a run that also reads back what it stored itself (a snapshot patching its own cells). */
  constructor(private readonly repo: Repository, private readonly pool: WorkerPool, private readonly writer?: PackWriter) {}

  /** The bytes of a data extent (a chunk, or a patch applied to its base), checked against its length. */
  async readExtent(e: Extent): Promise<Buffer> {
    let raw: Buffer;
    if (e.length === 4) {
      const [patch, base] = await Promise.all([this.read(e[2]), this.read(e[3])]);
      raw = applyPatch(base, decodePatch(patch, e[2]), e[2], e[3]);
    } else raw = await this.read(e[2]);
    if (raw.length !== e[1]) throw new ChunkDamage(e.length === 4 ? e[3] : e[2], `it holds ${raw.length} bytes where the manifest expects ${e[1]}`);
    return raw;
  }

  async read(id: string): Promise<Buffer> {
    let frame: Buffer;
    let rawLength: number;
    try {
      const s = (!this.repo.index.has(id) && (await this.writer?.readOpen(id))) || (await this.repo.readStored(id));
      frame = s.frame;
      rawLength = s.loc.rawLength;
    } catch (err) {
      if (err instanceof DevsnapError && err.code === 'DAMAGED') throw new ChunkDamage(id, err.message.replace(/\.$/, ''));
      throw err;
    }
    let raw: Buffer;
    let hash: string;
    try {
      ({ raw, hash } = await this.pool.decompress(frame, rawLength));
    } catch {
      throw new ChunkDamage(id, 'its compressed data is corrupt');
    }
    const actual = this.repo.cipher.encrypted ? this.repo.cipher.chunkId(raw) : hash;
    if (actual !== id) throw new ChunkDamage(id, 'its content does not match its hash');
    return raw;
  }
}
