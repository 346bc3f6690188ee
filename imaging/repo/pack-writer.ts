// PackWriter: how a run stores new chunks, appended to packs that become visible only when complete.
import * as crypto from 'crypto';
import type { ObjectWriter, Storage } from '../storage/storage';
import type { RepoCipher } from './crypto';
import type { ChunkIndex } from './chunk-index';
import type { ChunkLocation } from './index-file';
import { ENTRY_SIZE, PackEntry, encodeEntries, packTrailer } from './pack';

/** What a pack writer needs of a repository (repository.ts passes itself; no import back, no cycle). */
export interface PackStore {
  readonly index: ChunkIndex;
  readonly indexFiles: string[];
  readonly cipher: RepoCipher;
  readonly storage: Storage;
  readonly config: { readonly packSize: number };
  packName(pack: string): string;
  hasManifest(id: string): Promise<boolean>;
  writeIndex(packs: Map<string, PackEntry[] | Buffer>): Promise<string>;
}

/**
 * Appends stored chunks to packs. A pack is streamed to the storage (ObjectWriter: a temporary file
 * in a folder, a spool and one PUT or a multipart upload in a bucket), closed with its trailer and
 * committed whole; `finish()` then writes one index file for all packs of the run. Chunks become
 * visible to the repository's index only when their pack is complete.
 */
export class PackWriter {
  private current: { id: string; out: ObjectWriter; size: number; entries: PackEntry[] } | null = null;
  private pendingIds = new Set<string>();
  /** The packs this run completed, with their entries as encoded (48 bytes each: a full snapshot of a large disk writes millions). */
  readonly written = new Map<string, Buffer>();
  /** The index file finish() wrote: abandon() removes it before the packs it lists. */
  private indexFile: string | null = null;
  bytesWritten = 0;

  constructor(private readonly repo: PackStore) {}

  /** True when the chunk is stored already or queued in this run. */
  has(id: string): boolean {
    return this.repo.index.has(id) || this.pendingIds.has(id);
  }

  /**
   * The stored bytes of a chunk this run appended to the pack it still has open (closed packs are in
   * the index already), once every queued append is done; null when it is not there.
   */
  readOpen(id: string): Promise<{ frame: Buffer; loc: ChunkLocation } | null> {
    // In the append queue: no append closes the pack while it is read.
    const run = this.queue.then(async () => {
      const c = this.current;
      const e = c?.entries.find((x) => x.id === id);
      if (!c || !e) return null;
      const stored = await c.out.read(e.offset, e.length);
      return { frame: this.repo.cipher.open(stored), loc: { pack: c.id, offset: e.offset, length: e.length, rawLength: e.rawLength } };
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Marks a chunk as being stored (so a duplicate in the same run is not stored twice). */
  reserve(id: string): void {
    this.pendingIds.add(id);
  }

  private queue: Promise<void> = Promise.resolve();
  private abandoned = false;

  /** Appends a compressed chunk. Calls are serialized, so callers may run compressions concurrently. */
  add(id: string, frame: Buffer, rawLength: number): Promise<void> {
    if (this.abandoned) return Promise.reject(new Error('pack writer was abandoned'));
    const run = this.queue.then(() => this.append(id, frame, rawLength));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async append(id: string, frame: Buffer, rawLength: number): Promise<void> {
    const stored = this.repo.cipher.seal(frame);
    if (!this.current) {
      const packId = crypto.randomBytes(16).toString('hex');
      this.current = { id: packId, out: await this.repo.storage.create(this.repo.packName(packId)), size: 0, entries: [] };
    }
    const c = this.current;
    await c.out.append(stored);
    c.entries.push({ id, offset: c.size, length: stored.length, rawLength });
    c.size += stored.length;
    this.bytesWritten += stored.length;
    if (c.size >= this.repo.config.packSize) await this.closePack();
  }

  private async closePack(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = null;
    try {
      await c.out.append(packTrailer(c.entries));
      await c.out.commit();
    } catch (err) {
      await c.out.abort().catch(() => undefined);
      throw err;
    }
    const encoded = encodeEntries(c.entries);
    this.written.set(c.id, encoded);
    this.repo.index.addEncoded(c.id, encoded);
  }

  /** Completes the last pack and writes the run's index. Call before committing a manifest. */
  async finish(): Promise<void> {
    await this.queue;
    await this.closePack();
    if (this.written.size) this.indexFile = await this.repo.writeIndex(this.written);
    this.pendingIds.clear();
  }

  /**
   * A failed run: abandon() unless the manifest `id` may be stored (its commit failed after the
   * write and could not be taken back, or the storage cannot even tell): then the data it names
   * stays, and `check`/`prune` deal with it as with any interrupted run.
   */
  async abandonUnlessCommitted(id: string | undefined): Promise<void> {
    if (id !== undefined && (await this.repo.hasManifest(id))) return;
    await this.abandon();
  }

  /** Cancel: removes everything this run wrote, leaving the repository as it was. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.queue;
    const c = this.current;
    this.current = null;
    if (c) await c.out.abort();
    // The index first: an index naming deleted packs would let the next run dedup against chunks
    // that are gone. (Should this removal fail too, loadIndex ignores entries of missing packs.)
    if (this.indexFile) {
      await this.repo.storage.delete(this.indexFile);
      const i = this.repo.indexFiles.indexOf(this.indexFile);
      if (i >= 0) this.repo.indexFiles.splice(i, 1);
      this.indexFile = null;
    }
    for (const [pack, entries] of this.written) {
      await this.repo.storage.delete(this.repo.packName(pack));
      for (let o = 0; o < entries.length; o += ENTRY_SIZE) {
        const id = entries.toString('hex', o, o + 32);
        if (this.repo.index.get(id)?.pack === pack) this.repo.index.delete(id);
      }
    }
    this.written.clear();
  }
}
