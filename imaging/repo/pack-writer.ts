// PackWriter: how a run stores new chunks, appended to packs that become visible only when complete.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { FILE_MODE, fsyncDir, mkdirPrivate, readFully, tempName, writeFully } from '../core/fsutil';
import type { RepoCipher } from './crypto';
import type { ChunkLocation } from './index-file';
import { PackEntry, packTrailer } from './pack';

/** What a pack writer needs of a repository (repository.ts passes itself; no import back, no cycle). */
export interface PackStore {
  readonly index: Map<string, ChunkLocation>;
  readonly indexFiles: string[];
  readonly cipher: RepoCipher;
  readonly config: { readonly packSize: number };
  packPath(pack: string): string;
  manifestPath(id: string): string;
  writeIndex(packs: Map<string, PackEntry[]>): Promise<string>;
}

/**
 * Appends stored chunks to pack files. A pack is written under a temporary name, closed with its
 * trailer, fsync'd and renamed; `finish()` then writes one index file for all packs of the run.
 * Chunks become visible to the repository's index only when their pack is complete.
 */
export class PackWriter {
  private current: { id: string; tmp: string; fh: fs.promises.FileHandle; size: number; entries: PackEntry[] } | null = null;
  private pendingIds = new Set<string>();
  readonly written = new Map<string, PackEntry[]>();
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
      const stored = await readFully(c.fh, e.offset, e.length);
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
      const final = this.repo.packPath(packId);
      await mkdirPrivate(path.dirname(final));
      const tmp = tempName(final);
      this.current = { id: packId, tmp, fh: await fs.promises.open(tmp, 'wx+', FILE_MODE), size: 0, entries: [] };
    }
    const c = this.current;
    await writeFully(c.fh, stored, c.size);
    c.entries.push({ id, offset: c.size, length: stored.length, rawLength });
    c.size += stored.length;
    this.bytesWritten += stored.length;
    if (c.size >= this.repo.config.packSize) await this.closePack();
  }

  private async closePack(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = null;
    await c.fh.write(packTrailer(c.entries), 0, undefined, c.size);
    await c.fh.sync();
    await c.fh.close();
    const final = this.repo.packPath(c.id);
    await fs.promises.rename(c.tmp, final);
    await fsyncDir(path.dirname(final));
    this.written.set(c.id, c.entries);
    for (const e of c.entries) this.repo.index.set(e.id, { pack: c.id, offset: e.offset, length: e.length, rawLength: e.rawLength });
  }

  /** Completes the last pack and writes the run's index. Call before committing a manifest. */
  async finish(): Promise<void> {
    await this.queue;
    await this.closePack();
    if (this.written.size) this.indexFile = await this.repo.writeIndex(this.written);
    this.pendingIds.clear();
  }

  /**
   * A failed run: abandon() unless the manifest `id` may be on disk (its commit failed after the
   * rename and could not be taken back, or the disk cannot even tell): then the data it names stays,
   * and `check`/`prune` deal with it as with any interrupted run.
   */
  async abandonUnlessCommitted(id: string | undefined): Promise<void> {
    if (id !== undefined) {
      const present = await fs.promises.access(this.repo.manifestPath(id)).then(
        () => true,
        (err) => (err as NodeJS.ErrnoException).code !== 'ENOENT',
      );
      if (present) return;
    }
    await this.abandon();
  }

  /** Cancel: removes everything this run wrote, leaving the repository as it was. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.queue;
    const c = this.current;
    this.current = null;
    if (c) {
      await c.fh.close().catch(() => undefined);
      await fs.promises.rm(c.tmp, { force: true });
    }
    // The index first: an index naming deleted packs would let the next run dedup against chunks
    // that are gone. (Should this removal fail too, loadIndex ignores entries of missing packs.)
    if (this.indexFile) {
      await fs.promises.rm(this.indexFile, { force: true });
      const i = this.repo.indexFiles.indexOf(this.indexFile);
      if (i >= 0) this.repo.indexFiles.splice(i, 1);
      this.indexFile = null;
    }
    for (const [pack, entries] of this.written) {
      await fs.promises.rm(this.repo.packPath(pack), { force: true });
      for (const e of entries) if (this.repo.index.get(e.id)?.pack === pack) this.repo.index.delete(e.id);
    }
    this.written.clear();
  }
}
