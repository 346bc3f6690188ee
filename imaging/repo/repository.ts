// A devsnap repository on disk (see imaging/FORMAT.md):
//   config.json            format, version, chunk size, compression, encryption
//   data/XX/<pack>.pack    packs of compressed chunks, each closed by its own chunk list
//   index/<run>.idx        chunk -> pack, offset, length for the packs a run wrote
//   snapshots/<id>.json    manifests (committed last, by atomic rename)
//   locks/                 lock files
import * as fs from 'fs';
import * as path from 'path';
import { isS3Location } from '../storage/location';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { readRegularFile, exists, fsyncDir, writeFileAtomic } from '../core/fsutil';
import type { RepoCipher } from './crypto';
import { acquireLock, Lock } from './lock';
import { checkManifest, Manifest, parseManifest, serializeManifest } from './manifest';
import { Catalog, fileStamp, healSummary, listCatalog, resolveName, summaryPath, writeSummary } from './catalog';
import { PackEntry, readPackTrailer } from './pack';
import { ENCRYPTED_MAGIC, initConfig, openConfig, rewriteConfigFile, type InitOptions, type Logger, type RepoConfig } from './config';
import { encodeIndexFile, MAX_INDEX_BYTES, parseIndexFile, type ChunkLocation } from './index-file';
import { PackFiles } from './pack-files';
import { PackWriter } from './pack-writer';

// What moved to the modules above stays importable from here.
export { DEFAULT_CHUNK_SIZE, type InitOptions, type Logger, type RepoConfig } from './config';
export { parseIndexFile, type ChunkLocation } from './index-file';
export { PackWriter } from './pack-writer';

/**
 * The repository's folder, resolved. An S3 location ("s3:https://host/bucket") is refused by name: the
 * repository does not work through imaging/storage/ yet, and taken as a path it would quietly become
 * a local folder called "s3:https:".
 */
function folderOnly(dir: string): string {
  if (isS3Location(dir))
    throw new DevsnapError(
      'USAGE',
      `Repositories on S3 (${dir}) are not supported yet: only a folder can hold a repository for now.`,
      'Give a folder, for example on a USB drive or a mounted network share.',
    );
  return path.resolve(dir);
}

export class Repository {
  /** Every chunk the repository holds: from index files, plus packs no index lists yet (an interrupted run). */
  readonly index = new Map<string, ChunkLocation>();
  /** Packs listed by index files, and the index files themselves. */
  readonly indexedPacks = new Set<string>();
  readonly indexFiles: string[] = [];
  /** Index files that failed their checksum (their packs were read through their own chunk lists). */
  readonly damagedIndexFiles: string[] = [];
  /** Packs no index lists but whose own chunk list was read (left by an interrupted run). */
  readonly listedPacks = new Set<string>();
  /** Packs an index lists that are not in data/: their chunks are left out of `index` (see loadIndex). */
  readonly missingPacks = new Set<string>();
  /** Open pack files (pack-files.ts). */
  private readonly packFiles = new PackFiles((pack) => this.packPath(pack));

  /** config.json to be rewritten under the next exclusive lock: an older format to upgrade, or a damaged key copy to repair. */
  private configRewrite: 'upgrade' | 'repair' | null = null;

  private constructor(
    readonly dir: string,
    readonly config: RepoConfig,
    readonly cipher: RepoCipher,
    readonly log: Logger,
  ) {}

  static async init(dir: string, opts: InitOptions, log: Logger): Promise<Repository> {
    dir = folderOnly(dir);
    const { config, cipher } = await initConfig(dir, opts);
    return new Repository(dir, config, cipher, log);
  }

  static async open(dir: string, opts: { password?: string }, log: Logger): Promise<Repository> {
    dir = folderOnly(dir);
    const { config, cipher, rewrite } = await openConfig(dir, opts, log);
    const repo = new Repository(dir, config, cipher, log);
    repo.configRewrite = rewrite;
    return repo;
  }

  /** Writes config.json anew: fresh key copies with checksums, and the settings sealed (format version 2). */
  private async rewriteConfig(): Promise<void> {
    if (await rewriteConfigFile(this.dir, this.config, this.cipher, this.configRewrite, this.log)) this.configRewrite = null;
  }

  static async openOrInit(dir: string, opts: InitOptions, log: Logger): Promise<Repository> {
    if (await exists(path.join(dir, 'config.json'))) return Repository.open(dir, opts, log);
    const repo = await Repository.init(dir, opts, log);
    log(`Created a new repository in ${repo.dir}.`);
    return repo;
  }

  async lock(exclusive: boolean, purpose: string, waitMs?: number): Promise<Lock> {
    const lock = await acquireLock(this.dir, exclusive, purpose, this.log, waitMs);
    if (exclusive && this.configRewrite) await this.rewriteConfig(); // only a writer may rewrite config.json
    return lock;
  }

  // ---- paths

  packPath(pack: string): string {
    return path.join(this.dir, 'data', pack.slice(0, 2), `${pack}.pack`);
  }

  manifestPath(id: string): string {
    return path.join(this.dir, 'snapshots', `${id}.json`);
  }

  // ---- index

  async loadIndex(): Promise<void> {
    this.index.clear();
    this.indexedPacks.clear();
    this.indexFiles.length = 0;
    this.damagedIndexFiles.length = 0;
    this.missingPacks.clear();
    this.listedPacks.clear();
    const present = new Set(await this.listPacks());
    const indexDir = path.join(this.dir, 'index');
    for (const name of (await fs.promises.readdir(indexDir)).filter((n) => n.endsWith('.idx')).sort()) {
      const file = path.join(indexDir, name);
      const packs = await readRegularFile(file, MAX_INDEX_BYTES).then(parseIndexFile, () => null);
      if (!packs) {
        this.log(`Index file index/${name} is damaged; using the packs' own chunk lists instead. Run \`devsnap check\`.`);
        this.damagedIndexFiles.push(file);
        continue;
      }
      this.indexFiles.push(file);
      for (const [pack, entries] of packs) {
        // An index that outlived its packs (a failed commit whose clean-up failed too) must not make
        // a later snapshot dedup against chunks that are gone: such entries are not chunks we hold.
        if (present.has(pack)) this.addPack(pack, entries);
        else this.missingPacks.add(pack);
      }
    }
    for (const pack of present) {
      if (this.indexedPacks.has(pack)) continue;
      const entries = await readPackTrailer(this.packPath(pack)).catch(() => null);
      if (!entries) continue;
      this.listedPacks.add(pack);
      for (const e of entries) if (!this.index.has(e.id)) this.index.set(e.id, { pack, ...e });
    }
  }

  private addPack(pack: string, entries: PackEntry[]): void {
    this.indexedPacks.add(pack);
    for (const e of entries) this.index.set(e.id, { pack, offset: e.offset, length: e.length, rawLength: e.rawLength });
  }

  /** Every finished pack file's id (temporary files of an interrupted write are not listed). */
  async listPacks(): Promise<string[]> {
    return (await this.scanPacks()).placed;
  }

  /**
   * Pack files in data/XX/: `placed` where packPath() finds them, `misplaced` (a valid pack name in
   * another folder: moved by hand or by a sync tool) as paths relative to the repository.
   */
  async scanPacks(): Promise<{ placed: string[]; misplaced: string[] }> {
    const placed: string[] = [];
    const misplaced: string[] = [];
    const dataDir = path.join(this.dir, 'data');
    for (const sub of await fs.promises.readdir(dataDir)) {
      let entries: fs.Dirent[] = [];
      try {
        entries = await fs.promises.readdir(path.join(dataDir, sub), { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const n = e.name;
        if (!/^[0-9a-f]{32}\.pack$/.test(n)) continue;
        // Only regular files are packs: a folder or a link (to /dev/zero, say) in their place is not read.
        if (n.startsWith(sub) && e.isFile()) placed.push(n.slice(0, -5));
        else misplaced.push(path.join('data', sub, n));
      }
    }
    return { placed, misplaced };
  }

  /**
   * Leftovers of interrupted writes: temporary files anywhere in the repository, and summaries whose
   * manifest was never committed (a crash between the two renames).
   */
  async listTempFiles(): Promise<string[]> {
    const snapshots = path.join(this.dir, 'snapshots');
    const names = new Set(await fs.promises.readdir(snapshots));
    const out = [...names].filter((n) => /^[0-9a-f]{16}\.summary$/.test(n) && !names.has(n.replace(/summary$/, 'json'))).map((n) => path.join(snapshots, n));
    const walk = async (d: string) => {
      for (const e of await fs.promises.readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory() && p === path.join(this.dir, 'locks')) continue; // lock files are written by live readers too
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.tmp')) out.push(p);
      }
    };
    await walk(this.dir);
    return out;
  }

  /** Writes an index file for packs (atomically); returns its path. */
  async writeIndex(packs: Map<string, PackEntry[]>): Promise<string> {
    const file = path.join(this.dir, 'index', `${crypto.randomBytes(16).toString('hex')}.idx`);
    await writeFileAtomic(file, encodeIndexFile(packs));
    for (const [pack, entries] of packs) this.addPack(pack, entries);
    this.indexFiles.push(file);
    return file;
  }

  // ---- chunks

  /**
   * The stored bytes of a chunk, opened (decrypted) but still compressed. `buffer(n)` gives the memory
   * to read n stored bytes into (a reused one, core/memory.ts); by default a new buffer.
   */
  async readStored(id: string, buffer?: (n: number) => Buffer): Promise<{ frame: Buffer; loc: ChunkLocation }> {
    const loc = this.index.get(id);
    if (!loc) throw new DevsnapError('DAMAGED', `Chunk ${id.slice(0, 12)}… is missing from the repository.`, 'Run `devsnap check`; snapshots that use this chunk cannot be fully restored.');
    const stored = await this.packFiles.read(loc.pack, loc.offset, loc.length, buffer?.(loc.length));
    try {
      return { frame: this.cipher.open(stored), loc };
    } catch {
      throw new DevsnapError(
        'DAMAGED',
        `Chunk ${id.slice(0, 12)}… in pack ${loc.pack} at offset ${loc.offset} failed authentication (corrupt or tampered).`,
        'Run `devsnap verify` to see which snapshots are affected.',
      );
    }
  }

  /** The last `n` stored bytes of an unencrypted chunk (null when encrypted: only the whole opens). */
  async readStoredTail(id: string, n: number): Promise<Buffer | null> {
    const loc = this.index.get(id);
    if (!loc || this.cipher.encrypted || n > loc.length) return null;
    return this.packFiles.read(loc.pack, loc.offset + loc.length - n, n);
  }

  async close(): Promise<void> {
    await this.packFiles.close();
  }

  // ---- snapshots

  async listSnapshotIds(): Promise<string[]> {
    const names = await fs.promises.readdir(path.join(this.dir, 'snapshots'));
    return names.filter((n) => /^[0-9a-f]{16}\.json$/.test(n)).map((n) => n.slice(0, -5));
  }

  /** Every snapshot from its summary (manifests are read only where a summary does not match): see catalog.ts. */
  listSnapshots(): Promise<Catalog> {
    return listCatalog(this);
  }

  /** Resolves a snapshot name (full id, id prefix, label, "latest", id:PREFIX, label:TEXT); refuses an ambiguous one. */
  async resolveId(name: string): Promise<string> {
    return resolveName(await this.listSnapshots(), name, this.dir);
  }

  async readManifest(id: string): Promise<Manifest> {
    let bytes: Buffer;
    let file: { size: number; mtimeNs: string } | null;
    try {
      const fh = await fs.promises.open(this.manifestPath(id), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile())
          throw new DevsnapError(
            'DAMAGED',
            `snapshots/${id}.json in ${this.dir} is not a regular file (a folder, a device or a link to one).`,
            'Move it out of the repository; the other snapshots are not affected.',
          );
        const before = fileStamp(st);
        bytes = await fh.readFile();
        const after = fileStamp(await fh.stat({ bigint: true }));
        // The summary may describe these bytes only if the file did not change while they were read.
        file = before.size === after.size && before.mtimeNs === after.mtimeNs && after.size === bytes.length ? after : null;
      } finally {
        await fh.close();
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ELOOP' || code === 'ENXIO') {
        throw new DevsnapError('DAMAGED', `snapshots/${id}.json in ${this.dir} is not a regular file (${code}).`, 'Move it out of the repository; the other snapshots are not affected.');
      }
      throw toDevsnapError(err, `snapshot ${id}`);
    }
    let plain: Buffer;
    try {
      plain = this.openSealedFile(bytes);
    } catch {
      throw new DevsnapError('DAMAGED', `The manifest of snapshot ${id} is corrupt or was tampered with.`, 'This snapshot cannot be used; restore from another snapshot and run `devsnap check`.');
    }
    const m = parseManifest(plain, id); // also refuses a manifest copied under another id
    await healSummary(this, id, m, plain, file);
    return m;
  }

  /** All readable manifests, oldest first; damaged ones are reported through the logger. */
  async readAllManifests(onDamaged?: (id: string, err: DevsnapError) => void): Promise<Manifest[]> {
    const out: Manifest[] = [];
    for (const id of await this.listSnapshotIds()) {
      try {
        out.push(await this.readManifest(id));
      } catch (err) {
        if (!(err instanceof DevsnapError) || err.code !== 'DAMAGED') throw err;
        (onDamaged ?? ((i, e) => this.log(`Snapshot ${i}: ${e.message}`)))(id, err);
      }
    }
    return out.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  /** Commits a manifest: the last, atomic step of a snapshot (and of label/pin changes). */
  async writeManifest(m: Manifest): Promise<void> {
    checkManifest(m);
    const plain = serializeManifest(m);
    // Its summary first, stamped with the finished temporary file that the rename puts in place:
    // a crash in between leaves a summary that no longer matches, and listing reads the manifest.
    await writeFileAtomic(this.manifestPath(m.id), this.sealFile(plain), async (fh) => writeSummary(this, m.id, m, plain, fileStamp(await fh.stat({ bigint: true }))));
  }

  /** How manifests and summaries are stored: sealed with the repository's key, behind a magic, when it is encrypted. */
  sealFile(plain: Buffer): Buffer {
    return this.cipher.encrypted ? Buffer.concat([ENCRYPTED_MAGIC, this.cipher.seal(plain)]) : plain;
  }

  /**
   * The plain bytes of a sealFile() file; throws when its seal does not open (damaged or tampered
   * with), and in an encrypted repository when it is not sealed at all (planted in plain text).
   */
  openSealedFile(bytes: Buffer): Buffer {
    const sealed = bytes.subarray(0, ENCRYPTED_MAGIC.length).equals(ENCRYPTED_MAGIC);
    if (sealed !== this.cipher.encrypted) throw new Error(sealed ? 'sealed in a repository without encryption' : 'not sealed in an encrypted repository');
    return sealed ? this.cipher.open(bytes.subarray(ENCRYPTED_MAGIC.length)) : bytes;
  }

  /**
   * Commits a new snapshot's manifest. A failure after the rename (the directory's fsync) would leave
   * a manifest the caller is about to abandon the data of: take it back first. Pair with
   * PackWriter.abandonUnlessCommitted, which keeps the data if even that fails.
   */
  async commitManifest(m: Manifest): Promise<void> {
    try {
      await this.writeManifest(m);
    } catch (err) {
      await fs.promises.rm(this.manifestPath(m.id), { force: true }).catch(() => undefined);
      await fs.promises.rm(summaryPath(this, m.id), { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Removes snapshots/<id>.json (by file name: never the id written inside it), then its summary. */
  async deleteManifest(id: string): Promise<void> {
    await fs.promises.rm(this.manifestPath(id), { recursive: true }); // a damaged "manifest" may be a folder
    await fs.promises.rm(summaryPath(this, id), { force: true, recursive: true });
    await fsyncDir(path.dirname(this.manifestPath(id)));
  }

  newPackWriter(): PackWriter {
    return new PackWriter(this);
  }
}
