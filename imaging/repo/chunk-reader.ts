// Reads chunks back from the repository: stored bytes -> (decrypt) -> decompress in a worker ->
// check the content address. Every byte devsnap restores, exports or verifies passes through here.
import { DevsnapError } from '../core/errors';
import { PackWriter, Repository } from './repository';
import { Area, Extent, Manifest } from './manifest';
import { applyPatch, decodePatch } from './patch';
import { WorkerPool } from './worker-pool';
import { chunkBuffers } from '../core/memory';
import { digestFrameLength, digestsOf } from './digests';

export class ChunkDamage extends DevsnapError {
  constructor(
    readonly chunkId: string,
    detail: string,
  ) {
    super('DAMAGED', `Chunk ${chunkId.slice(0, 12)}… is damaged: ${detail}.`, 'Run `devsnap verify` to see which snapshots and byte ranges are affected; restore from another snapshot.');
  }
}

/** Fails before a byte is written when a chunk the areas need is missing from the repository altogether. */
export function assertChunksStored(repo: Repository, m: Manifest, areas: Area[], action: 'restore' | 'export'): void {
  for (const a of areas) {
    const ex = a.extents;
    for (let i = 0; i < ex.length; i++)
      for (const at of ex.idsAt(i)) {
        if (repo.index.findBytes(ex.idBytes, at) < 0) {
          const [off, len] = [a.start + ex.offset(i), ex.size(i)];
          throw new DevsnapError(
            'DAMAGED',
            `Snapshot ${m.id} needs chunk ${ex.idBytes.toString('hex', at, at + 6)}… (${a.kind === 'partition' ? `partition ${a.partition}` : 'raw area'}, bytes ${off}-${off + len}), which is missing from the repository. Nothing was written.`,
            `Run \`devsnap check\`; ${action} another snapshot.`,
          );
        }
      }
  }
}

export class ChunkReader {
  /** `writer`: a run that also reads back what it stored itself (a snapshot patching its own cells). */
  constructor(
    private readonly repo: Repository,
    private readonly pool: WorkerPool,
    private readonly writer?: PackWriter,
  ) {}

  /**
   * The bytes of a data extent (a chunk, or a patch applied to its base), checked against its length.
   * `verify: false` skips the content-address check, for a snapshot that only diffs against these
   * bytes: what it stores still names the same chunks, which every restore and verify checks.
   */
  async readExtent(e: Extent, opts: { verify?: boolean } = {}): Promise<Buffer> {
    let raw: Buffer;
    if (e.length === 4) {
      const [patch, base] = await Promise.all([this.read(e[2]), this.read(e[3], opts)]);
      // Into the base itself (read here, no one else holds it): a copy per patched cell was garbage
      // for the collector to find, ~25 MB of a restore's peak.
      raw = applyPatch(base, decodePatch(patch, e[2]), e[2], e[3], { inPlace: true });
      chunkBuffers.give(patch);
    } else raw = await this.read(e[2], opts);
    if (raw.length !== e[1]) throw new ChunkDamage(e.length === 4 ? e[3] : e[2], `it holds ${raw.length} bytes where the manifest expects ${e[1]}`);
    return raw;
  }

  /**
   * Writes `blocks` over the cell whose base is chunk `baseId` (with `patch`'s blocks, verified by the
   * caller), in a worker: see repo/overlay.ts. A whole cell built from the base is returned only
   * once the base is verified, so damage in it is never stored again under a new, valid id.
   */
  async overlay(baseId: string, patch: Map<number, Buffer>, blocks: [number, Buffer][], blockSize: number): Promise<{ kind: 'same' | 'base' | 'patch' | 'cell'; data?: Buffer }> {
    const { frame, loc } = await this.stored(baseId);
    const r = await this.pool.overlay(frame, loc.rawLength, baseId, patch, blocks, blockSize).catch(() => {
      throw new ChunkDamage(baseId, 'its compressed data is corrupt');
    });
    if (r.kind === 'cell' && (this.repo.cipher.encrypted ? (await this.read(baseId), false) : r.hash !== baseId)) throw new ChunkDamage(baseId, 'its content does not match its hash');
    return r;
  }

  /**
   * The block digests stored with chunk `id` (repo/digests.ts), read without the chunk's data where
   * the repository is unencrypted; null when it has none, or they are damaged or unreadable (the
   * caller then compares bytes, and meets any damage of the chunk itself there).
   */
  async digests(id: string): Promise<Buffer | null> {
    try {
      const loc = this.repo.index.get(id);
      if (loc && !this.repo.cipher.encrypted) {
        const tail = await this.repo.readStoredTail(id, digestFrameLength(loc.rawLength));
        const d = tail && digestsOf(tail, id, loc.rawLength);
        return d && typeof d !== 'string' ? d : null;
      }
      const { frame, loc: l } = await this.stored(id);
      const d = digestsOf(frame, id, l.rawLength);
      const out = typeof d === 'string' ? null : Buffer.from(d); // a copy: the frame may be a pool buffer
      chunkBuffers.give(frame);
      return out;
    } catch {
      return null;
    }
  }

  /**
   * A chunk's stored frame: from the index, or from the pack this run's writer still has open. An
   * unencrypted frame is read into a pool buffer (core/memory.ts), which moves to a worker and back.
   */
  private async stored(id: string): Promise<{ frame: Buffer; loc: { rawLength: number } }> {
    try {
      return (!this.repo.index.has(id) && (await this.writer?.readOpen(id))) || (await this.repo.readStored(id, this.repo.cipher.encrypted ? undefined : (n) => chunkBuffers.scratch(n)));
    } catch (err) {
      if (err instanceof DevsnapError && err.code === 'DAMAGED') throw new ChunkDamage(id, err.message.replace(/\.$/, ''));
      throw err;
    }
  }

  /**
   * The raw bytes of chunk `id`, often in a pool buffer: hand them to chunkBuffers.give() once used, if
   * nothing keeps them. `digests: true` (verify) also checks the block digests stored with the chunk:
   * an incremental trusts them in place of the bytes, so digests that do not match are damage too.
   */
  async read(id: string, opts: { verify?: boolean; digests?: boolean } = {}): Promise<Buffer> {
    const verify = opts.verify ?? true;
    const { frame, loc } = await this.stored(id);
    const rawLength = loc.rawLength;
    let raw: Buffer;
    let hash: string;
    let digests: string | undefined;
    try {
      ({ raw, hash, digests } = await this.pool.decompress(frame, rawLength, verify && !this.repo.cipher.encrypted, opts.digests ? id : undefined));
    } catch {
      throw new ChunkDamage(id, 'its compressed data is corrupt');
    }
    if (digests === 'damaged' || digests === 'wrong') {
      chunkBuffers.give(raw);
      throw new ChunkDamage(
        id,
        `its block digests ${digests === 'damaged' ? 'are damaged' : 'do not match its bytes'} (its data itself reads back; snapshots taken after it could be wrong where they relied on them)`,
      );
    }
    if (!verify) {
      if (raw.length !== rawLength) throw new ChunkDamage(id, `it decompresses to ${raw.length} bytes, not ${rawLength}`);
      return raw;
    }
    const actual = this.repo.cipher.encrypted ? this.repo.cipher.chunkId(raw) : hash;
    if (actual !== id) throw new ChunkDamage(id, 'its content does not match its hash');
    return raw;
  }
}
