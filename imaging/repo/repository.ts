// A devsnap repository (see imaging/FORMAT.md), as objects in a Storage (imaging/storage/): a folder
// or an S3-compatible bucket, with the same names in both:
//   config.json            format, version, chunk size, compression, encryption
//   data/XX/<pack>.pack    packs of compressed chunks, each closed by its own chunk list
//   index/<run>.idx        chunk -> pack, offset, length for the packs a run wrote
//   snapshots/<id>.json    manifests (committed last, each written whole)
//   locks/                 lock objects
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { openStorage, type OpenedStorage } from '../storage/open';
import { Storage, StorageError, Stray } from '../storage/storage';
import type { RepoCipher } from './crypto';
import { acquireLock, Lock } from './lock';
import { checkManifest, Manifest, parseManifest, serializeManifest } from './manifest';
import { Catalog, healSummary, listCatalog, resolveName, summaryName, writeSummary, type ObjectStamp } from './catalog';
import { PackEntry, readPackTrailer } from './pack';
import { ENCRYPTED_MAGIC, initConfig, openConfig, rewriteConfigFile, type InitOptions, type Logger, type RepoConfig } from './config';
import { encodeIndexFile, MAX_INDEX_BYTES, parseIndexFileEncoded, type ChunkLocation } from './index-file';
import { ChunkIndex } from './chunk-index';
import { PackFiles } from './pack-files';
import { PackWriter } from './pack-writer';

// What moved to the modules above stays importable from here.
export { DEFAULT_CHUNK_SIZE, type InitOptions, type Logger, type RepoConfig } from './config';
export { parseIndexFile, type ChunkLocation } from './index-file';
export { PackWriter } from './pack-writer';

const PACK = /^data\/([0-9a-f]{2})\/([0-9a-f]{32})\.pack$/;
const MANIFEST = /^snapshots\/([0-9a-f]{16})\.json$/;

/** What opening a repository takes besides its location. */
export interface Access {
  /** An encrypted repository's password. */
  password?: string;
  /** Keys for a bucket; without them the AWS SDK's chain (environment, ~/.aws). */
  s3Credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** The storage a location names, or one given as it is (a test's fault-injecting wrapper). */
function storageOf(location: string | OpenedStorage, opts: Access): OpenedStorage {
  return typeof location === 'string' ? openStorage(location, opts.s3Credentials && { credentials: opts.s3Credentials }) : location;
}

/** Reads stored bytes of packs: through open file handles in a folder (pack-files.ts), by ranged GETs elsewhere. */
interface PackReader {
  read(pack: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export class Repository {
  /** Every chunk the repository holds: from index files, plus packs no index lists yet (an interrupted run). */
  readonly index = new ChunkIndex();
  /** Packs listed by index files. */
  readonly indexedPacks = new Set<string>();
  /** The index files read (object names, "index/<id>.idx"). */
  readonly indexFiles: string[] = [];
  /** Index files that failed their checksum or are no regular file (their packs were read through their own chunk lists). */
  readonly damagedIndexFiles: string[] = [];
  /** Packs no index lists but whose own chunk list was read (left by an interrupted run). */
  readonly listedPacks = new Set<string>();
  /** Packs an index lists that are not in data/: their chunks are left out of `index` (see loadIndex). */
  readonly missingPacks = new Set<string>();
  private readonly packs: PackReader;

  /** config.json to be rewritten under the next exclusive lock: an older format to upgrade, or a damaged key copy to repair. */
  private configRewrite: 'upgrade' | 'repair' | null = null;

  private constructor(
    /** How messages name the repository: its folder, or its S3 location. */
    readonly dir: string,
    readonly storage: Storage,
    /** The repository's folder when it is one (its filesystem matters to a snapshot of that filesystem); null for a bucket. */
    readonly folder: string | null,
    readonly config: RepoConfig,
    readonly cipher: RepoCipher,
    readonly log: Logger,
  ) {
    const folderPath = folder;
    this.packs =
      folderPath !== null
        ? new PackFiles((pack) => `${folderPath}/${this.packName(pack)}`)
        : { read: (pack, offset, length) => this.readPackRange(pack, offset, length), close: async () => undefined };
  }

  private async readPackRange(pack: string, offset: number, length: number): Promise<Buffer> {
    try {
      const b = await this.storage.getRange(this.packName(pack), offset, length);
      if (b.length !== length) throw new Error('short');
      return b;
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'unavailable') throw err;
      throw new DevsnapError('DAMAGED', `Pack ${pack} is missing or unreadable (${err instanceof StorageError ? err.kind : 'truncated'}).`, 'Run `devsnap check`.');
    }
  }

  static async init(location: string | OpenedStorage, opts: InitOptions & Access, log: Logger): Promise<Repository> {
    const { storage, folder, display } = storageOf(location, opts);
    try {
      if (await storage.ensureContainer?.()) log(`Created the bucket for the repository ${display}.`);
      const { config, cipher } = await initConfig(storage, display, folder, opts);
      return new Repository(display, storage, folder, config, cipher, log);
    } catch (err) {
      throw toDevsnapError(err, `the repository ${display}`);
    }
  }

  static async open(location: string | OpenedStorage, opts: Access, log: Logger): Promise<Repository> {
    const { storage, folder, display } = storageOf(location, opts);
    const { config, cipher, rewrite } = await openConfig(storage, display, opts, log);
    const repo = new Repository(display, storage, folder, config, cipher, log);
    repo.configRewrite = rewrite;
    return repo;
  }

  /** Writes config.json anew: fresh key copies with checksums, and the settings sealed (format version 2). */
  private async rewriteConfig(): Promise<void> {
    if (await rewriteConfigFile(this.storage, this.config, this.cipher, this.configRewrite, this.log)) this.configRewrite = null;
  }

  static async openOrInit(location: string | OpenedStorage, opts: InitOptions & Access, log: Logger): Promise<Repository> {
    const { storage, display } = storageOf(location, opts);
    let present: boolean;
    try {
      present = (await storage.stat('config.json')) !== null;
    } catch (err) {
      // A bucket that does not exist yet holds no repository: the first snapshot creates both.
      if (!(err instanceof StorageError && err.kind === 'not-found')) throw toDevsnapError(err, `the repository ${display}`);
      present = false;
    }
    if (present) return Repository.open(location, opts, log);
    try {
      const repo = await Repository.init(location, opts, log);
      log(`Created a new repository in ${repo.dir}.`);
      return repo;
    } catch (err) {
      // Two workstations' first snapshots into one new bucket: one creates the repository, the other opens it.
      if (err instanceof DevsnapError && err.code === 'REPO_EXISTS') return Repository.open(location, opts, log);
      throw err;
    }
  }

  /** The lock this process holds on the repository (a writer checks it is still held before it commits). */
  private held: Lock | null = null;

  async lock(exclusive: boolean, purpose: string, waitMs?: number): Promise<Lock> {
    const lock = await acquireLock(this.storage, exclusive, purpose, this.log, waitMs);
    this.held = lock;
    if (exclusive && this.configRewrite) await this.rewriteConfig(); // only a writer may rewrite config.json
    return lock;
  }

  // ---- names

  packName(pack: string): string {
    return `data/${pack.slice(0, 2)}/${pack}.pack`;
  }

  manifestName(id: string): string {
    return `snapshots/${id}.json`;
  }

  // ---- index

  async loadIndex(): Promise<void> {
    this.index.clear();
    this.indexedPacks.clear();
    this.indexFiles.length = 0;
    this.damagedIndexFiles.length = 0;
    this.missingPacks.clear();
    this.listedPacks.clear();
    const present = new Map((await this.scanPacks()).placed.map((p) => [p.id, p.size]));
    const names: { name: string; size: number }[] = [];
    for await (const o of this.storage.list('index/')) if (/^index\/[^/]+\.idx$/.test(o.name)) names.push(o);
    // An index "file" that is a folder or a link is damage, as one that fails its checksum.
    for await (const s of this.storage.strays('index/')) if (s.kind === 'not-an-object' && s.name.endsWith('.idx')) this.damagedIndexFiles.push(s.name);
    // Read 8 at a time but used in name order, so that only a few index files are in memory at once.
    type Read = { packs: { pack: string; entries: Buffer }[] | null } | { failed: unknown };
    const readOne = (name: string, size: number): Promise<Read> =>
      size > MAX_INDEX_BYTES
        ? Promise.resolve({ packs: null })
        : this.storage
            .get(name)
            .then(
              (buf) => ({ packs: parseIndexFileEncoded(buf) }),
              (err) => (err instanceof StorageError && err.kind === 'unavailable' ? { failed: err } : { packs: null }),
            )
            // Never a rejection while it waits in the window (it would be unhandled): thrown when used.
            .catch((err: unknown) => ({ failed: err }));
    const window: Promise<Read>[] = [];
    let next = 0;
    const more = () => {
      for (; next < names.length && window.length < 8; next++) window.push(readOne(names[next].name, names[next].size));
    };
    more();
    for (const { name } of names) {
      const r = await window.shift()!;
      more();
      if ('failed' in r) throw r.failed;
      if (!r.packs) {
        this.log(`Index file ${name} is damaged; using the packs' own chunk lists instead. Run \`devsnap check\`.`);
        this.damagedIndexFiles.push(name);
        continue;
      }
      this.indexFiles.push(name);
      for (const { pack, entries } of r.packs) {
        // An index that outlived its packs (a failed commit whose clean-up failed too) must not make
        // a later snapshot dedup against chunks that are gone: such entries are not chunks we hold.
        if (present.has(pack)) this.addPack(pack, entries);
        else this.missingPacks.add(pack);
      }
    }
    for (const [pack, size] of present) {
      if (this.indexedPacks.has(pack)) continue;
      const entries = await this.packTrailer(pack, size);
      if (!entries) continue;
      this.listedPacks.add(pack);
      for (const e of entries) if (!this.index.has(e.id)) this.index.set(e.id, { pack, ...e });
    }
  }

  /** A pack's own chunk list (pack.ts), null when it has none or it is damaged. */
  packTrailer(pack: string, size: number): Promise<PackEntry[] | null> {
    return readPackTrailer(size, (offset, length) => this.storage.getRange(this.packName(pack), offset, length)).catch((err) => {
      if (err instanceof StorageError && err.kind === 'unavailable') throw err;
      return null;
    });
  }

  private addPack(pack: string, entries: PackEntry[] | Buffer): void {
    this.indexedPacks.add(pack);
    if (Buffer.isBuffer(entries)) this.index.addEncoded(pack, entries);
    else for (const e of entries) this.index.set(e.id, { pack, offset: e.offset, length: e.length, rawLength: e.rawLength });
  }

  /** Every finished pack's id (temporary files and unfinished uploads of an interrupted write are not listed). */
  async listPacks(): Promise<string[]> {
    return (await this.scanPacks()).placed.map((p) => p.id);
  }

  /**
   * Packs in data/XX/: `placed` where packName() puts them (with their sizes), `misplaced` (a valid
   * pack name in another folder, moved by hand or by a sync tool; or not a regular file) by name.
   */
  async scanPacks(): Promise<{ placed: { id: string; size: number }[]; misplaced: string[] }> {
    const placed: { id: string; size: number }[] = [];
    const misplaced: string[] = [];
    for await (const o of this.storage.list('data/')) {
      const m = PACK.exec(o.name);
      if (!m) continue;
      if (m[2].startsWith(m[1])) placed.push({ id: m[2], size: o.size });
      else misplaced.push(o.name);
    }
    // Only regular files are packs: a folder or a link (to /dev/zero, say) in their place is not read.
    for await (const s of this.storage.strays('data/')) if (s.kind === 'not-an-object' && PACK.test(s.name)) misplaced.push(s.name);
    return { placed, misplaced };
  }

  /**
   * Leftovers of interrupted writes: temporary files and unfinished uploads anywhere in the
   * repository (but in locks/, which live readers write), and summaries whose manifest was never
   * committed (a crash between the two writes).
   */
  async leftovers(): Promise<Stray[]> {
    const out: Stray[] = [];
    for await (const s of this.storage.strays('')) if (s.kind === 'leftover' && !s.name.startsWith('locks/')) out.push(s);
    const names = new Set<string>();
    for await (const o of this.storage.list('snapshots/')) names.add(o.name);
    for (const n of names)
      if (/^snapshots\/[0-9a-f]{16}\.summary$/.test(n) && !names.has(n.replace(/summary$/, 'json')))
        out.push({ name: n, kind: 'leftover', what: 'the summary of a snapshot that was never committed' });
    return out;
  }

  /** Removes a leftover that leftovers() listed. */
  async removeLeftover(s: Stray): Promise<void> {
    if (s.name.endsWith('.summary')) await this.storage.delete(s.name);
    else await this.storage.removeStray(s);
  }

  /** Writes an index file for packs; returns its name. */
  async writeIndex(packs: Map<string, PackEntry[] | Buffer>): Promise<string> {
    const name = `index/${crypto.randomBytes(16).toString('hex')}.idx`;
    await this.storage.put(name, encodeIndexFile(packs), { ifAbsent: true });
    for (const [pack, entries] of packs) this.addPack(pack, entries);
    this.indexFiles.push(name);
    return name;
  }

  // ---- chunks

  /**
   * The stored bytes of a chunk, opened (decrypted) but still compressed. `buffer(n)` gives the memory
   * to read n stored bytes into (a reused one, core/memory.ts); by default a new buffer.
   */
  async readStored(id: string, buffer?: (n: number) => Buffer): Promise<{ frame: Buffer; loc: ChunkLocation }> {
    const loc = this.index.get(id);
    if (!loc) throw new DevsnapError('DAMAGED', `Chunk ${id.slice(0, 12)}… is missing from the repository.`, 'Run `devsnap check`; snapshots that use this chunk cannot be fully restored.');
    const stored = await this.packs.read(loc.pack, loc.offset, loc.length, buffer?.(loc.length));
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
    return this.packs.read(loc.pack, loc.offset + loc.length - n, n);
  }

  /** Closes the open pack files (the repository can still be used: prune does this before it deletes packs). */
  async close(): Promise<void> {
    await this.packs.close();
  }

  /** Closes everything, the storage's connections too: the repository is not used afterwards. */
  async dispose(): Promise<void> {
    await this.close();
    this.storage.close?.();
  }

  // ---- snapshots

  /** Snapshot ids by their manifests' names; a manifest "file" that is a folder or a link is listed too (reading it says what is wrong). */
  async listSnapshotIds(): Promise<string[]> {
    return [...(await this.listManifests()).keys()];
  }

  /** The manifests' size and version by snapshot id (null: no regular file, which reading reports as damage). */
  async listManifests(): Promise<Map<string, ObjectStamp | null>> {
    const out = new Map<string, ObjectStamp | null>();
    for await (const o of this.storage.list('snapshots/')) {
      const m = MANIFEST.exec(o.name);
      if (m) out.set(m[1], { size: o.size, mtimeNs: o.version });
    }
    for await (const s of this.storage.strays('snapshots/')) {
      const m = MANIFEST.exec(s.name);
      if (m && s.kind === 'not-an-object') out.set(m[1], null);
    }
    return out;
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
    const name = this.manifestName(id);
    const notRegular = () =>
      new DevsnapError('DAMAGED', `${name} in ${this.dir} is not a regular file (a folder, a device or a link to one).`, 'Move it out of the repository; the other snapshots are not affected.');
    let bytes: Buffer;
    let file: ObjectStamp | null;
    try {
      const before = await this.storage.stat(name);
      if (!before) {
        for await (const s of this.storage.strays(name)) if (s.name === name) throw notRegular();
        throw new DevsnapError('NOT_FOUND', `snapshot ${id} does not exist.`, 'Check the path and try again.');
      }
      bytes = await this.storage.get(name);
      const after = await this.storage.stat(name);
      // The summary may describe these bytes only if the object did not change while they were read.
      file = after && before.size === after.size && before.version === after.version && after.size === bytes.length ? { size: after.size, mtimeNs: after.version } : null;
    } catch (err) {
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

  /** Whether snapshot `id`'s manifest is there (or may be: a storage that cannot tell says true). */
  async hasManifest(id: string): Promise<boolean> {
    return this.storage.stat(this.manifestName(id)).then(
      (st) => st !== null,
      () => true,
    );
  }

  /**
   * Every readable manifest, oldest first, read one at a time: a manifest of a large disk is tens of
   * MB as JSON and several times that once parsed, so a pass over all snapshots (check, prune,
   * verify) never holds more than one. Damaged ones go to `onDamaged` instead.
   */
  async *eachManifest(onDamaged?: (id: string, err: DevsnapError) => void): AsyncGenerator<Manifest> {
    const damaged = onDamaged ?? ((i, e) => this.log(`Snapshot ${i}: ${e.message}`));
    const cat = await this.listSnapshots();
    for (const d of cat.damaged) damaged(d.id, new DevsnapError('DAMAGED', d.message, d.hint));
    for (const s of cat.snapshots) {
      let m: Manifest;
      try {
        m = await this.readManifest(s.id);
      } catch (err) {
        if (!(err instanceof DevsnapError) || err.code !== 'DAMAGED') throw err;
        damaged(s.id, err);
        continue;
      }
      yield m;
    }
  }

  /** Commits a manifest: the last step of a snapshot (and of label/pin changes), written whole. */
  async writeManifest(m: Manifest): Promise<void> {
    checkManifest(m);
    const plain = serializeManifest(m);
    // Its summary as soon as the manifest's size and version are known: in a folder before the
    // rename puts it in place (a crash in between leaves a summary that does not match, and listing
    // reads the manifest), in a bucket right after the PUT (a crash in between leaves no summary).
    await this.storage.put(this.manifestName(m.id), this.sealFile(plain), { onVersion: async (v) => writeSummary(this, m.id, m, plain, { size: v.size, mtimeNs: v.version }) });
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
   * Commits a new snapshot's manifest. A failure after it was written (the folder's fsync) would
   * leave a manifest the caller is about to abandon the data of: take it back first. Pair with
   * PackWriter.abandonUnlessCommitted, which keeps the data if even that fails.
   */
  async commitManifest(m: Manifest): Promise<void> {
    // A lock broken meanwhile (`unlock --all`, or judged stale by another host while this one was
    // suspended) may have let a prune delete what this snapshot's chunks rely on: commit nothing.
    await this.held?.stillHeld();
    try {
      await this.writeManifest(m);
    } catch (err) {
      await this.storage.delete(this.manifestName(m.id)).catch(() => undefined);
      await this.storage.delete(summaryName(m.id)).catch(() => undefined);
      throw err;
    }
  }

  /** Removes snapshots/<id>.json (by name: never the id written inside it), then its summary. */
  async deleteManifest(id: string): Promise<void> {
    try {
      for (const name of [this.manifestName(id), summaryName(id)]) {
        // A damaged "manifest" may be a folder or a link (in a folder): forgetting it removes that.
        let stray: Stray | null = null;
        for await (const s of this.storage.strays(name)) if (s.name === name && s.kind === 'not-an-object') stray = s;
        await (stray ? this.storage.removeStray(stray) : this.storage.delete(name));
      }
    } catch (err) {
      throw toDevsnapError(err, `the manifest of snapshot ${id}`);
    }
  }

  newPackWriter(): PackWriter {
    return new PackWriter(this);
  }
}
