// A devsnap repository on disk (see imaging/FORMAT.md):
//   config.json            format, version, chunk size, compression, encryption
//   data/XX/<pack>.pack    packs of compressed chunks, each closed by its own chunk list
//   index/<run>.idx        chunk -> pack, offset, length for the packs a run wrote
//   snapshots/<id>.json    manifests (committed last, by atomic rename)
//   locks/                 lock files
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { readRegularFile, FILE_MODE, exists, fsyncDir, mkdirPrivate, readFully, tempName, writeFileAtomic, writeFully } from '../core/fsutil';
import { EncryptionConfig, RepoCipher } from './crypto';
import { acquireLock, Lock } from './lock';
import { checkManifest, Manifest, MAX_CHUNK_SIZE, parseManifest, serializeManifest } from './manifest';
import { Catalog, fileStamp, healSummary, listCatalog, resolveName, summaryPath, writeSummary } from './catalog';
import { PackEntry, decodeEntries, encodeEntries, packTrailer, readPackTrailer, ENTRY_SIZE } from './pack';

export interface RepoConfig {
  format: 'devsnap-repo';
  /** 1: unencrypted, or encrypted by a devsnap before sealed settings; 2: encrypted with sealed settings. */
  version: 1 | 2;
  id: string;
  created: string;
  chunkSize: number;
  packSize: number;
  compression: { algorithm: 'zstd'; level: number };
  chunkHash: 'sha256' | 'hmac-sha256';
  encryption: EncryptionConfig | null;
  /** Encrypted repositories: every other setting (see sealedSettings), sealed under the repository key. */
  sealed?: string;
}

export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
}

export interface InitOptions {
  chunkSize?: number;
  packSize?: number;
  level?: number;
  password?: string;
}

export type Logger = (message: string) => void;

const INDEX_MAGIC = Buffer.from('DSIDX1\0\0');
/** An index file larger than this is not one devsnap wrote (48 bytes a chunk: 40 million chunks). */
const MAX_INDEX_BYTES = 2 ** 31 - 1;
const ENCRYPTED_MAGIC = Buffer.from('DSENC1\n');
export const DEFAULT_CHUNK_SIZE = 1 << 20;
const CONFIG_HINT = 'Put back config.json from another copy of this repository (a second backup drive, a sync); if you did not change it, someone or something with write access to the repository did. Do not write to the repository until then.';

/** Why a config's plain settings are implausible (named by field), or null. Checked on init and on every open. */
function settingsProblem(c: RepoConfig): string | null {
  const int = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (typeof c.id !== 'string' || !/^[0-9a-f]{32}$/.test(c.id)) return `id is ${JSON.stringify(c.id)} (expected 32 hex digits)`;
  if (!int(c.chunkSize, 512, MAX_CHUNK_SIZE)) return `chunkSize is ${JSON.stringify(c.chunkSize)} (expected 512 bytes to ${MAX_CHUNK_SIZE >> 20} MiB)`;
  if (!int(c.packSize, 4 << 10, 2 ** 34)) return `packSize is ${JSON.stringify(c.packSize)} (expected 4 KiB to 16 GiB)`;
  if (!c.compression || c.compression.algorithm !== 'zstd' || !int(c.compression.level, -7, 22)) return `compression is ${JSON.stringify(c.compression)} (expected zstd, level -7 to 22)`;
  if (c.chunkHash !== (c.encryption ? 'hmac-sha256' : 'sha256')) return `chunkHash is ${JSON.stringify(c.chunkHash)}, but the repository is ${c.encryption ? '' : 'not '}encrypted`;
  return null;
}

/** JSON with object keys sorted: one text for one value, whatever order a writer used. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * What `sealed` authenticates: every setting except the seal itself and the key copies, which
 * their own checksums and AES-GCM tags protect (a damaged key copy is then repaired, not "tampered").
 */
function sealedSettings(c: RepoConfig): Record<string, unknown> {
  const { sealed: _sealed, encryption, ...rest } = c;
  return { ...rest, encryption: encryption ? { kdf: encryption.kdf } : null };
}

/** The settings that differ from their sealed copy, for the user: `chunkSize is 4096 in config.json but 1048576 sealed`. */
function settingsChanges(c: RepoConfig, cipher: RepoCipher): string[] {
  if (typeof c.sealed !== 'string') return ['its sealed copy of the settings is missing'];
  const plain = cipher.openConfig(c.sealed);
  let sealed: Record<string, unknown>;
  try {
    if (!plain) throw new Error('unauthenticated');
    sealed = JSON.parse(plain.toString('utf8'));
  } catch {
    return ['its sealed copy of the settings does not authenticate'];
  }
  const now = sealedSettings(c) as Record<string, unknown>;
  return [...new Set([...Object.keys(sealed), ...Object.keys(now)])]
    .filter((k) => canonical(sealed[k]) !== canonical(now[k]))
    .map((k) => `${k} is ${now[k] === undefined ? 'missing' : canonical(now[k])} in config.json but ${sealed[k] === undefined ? 'absent' : canonical(sealed[k])} sealed`);
}

/**
 * Signs of an encrypted repository in one whose config.json says it is not: config.json was edited
 * (a downgrade to plaintext by anyone who can write the repository), and writing to it would store
 * the owner's data unencrypted.
 */
async function encryptionMarkers(dir: string, c: RepoConfig): Promise<string[]> {
  const out: string[] = [];
  if (c.version === 2) out.push('its format version 2 is that of encrypted repositories');
  if (c.sealed !== undefined) out.push('it carries sealed settings');
  if (c.chunkHash === 'hmac-sha256') out.push('its chunk ids are keyed (hmac-sha256)');
  let names: string[] = [];
  try {
    names = (await fs.promises.readdir(path.join(dir, 'snapshots'))).filter((n) => /^[0-9a-f]{16}\.json$/.test(n));
  } catch {
    /* no snapshots folder: nothing to look at; later steps report it */
  }
  // Every open of an unencrypted repository does this: synchronous reads of 7 bytes take ~30 ms
  // for 1,000 manifests where promise-based ones take ~10 times as long.
  const head = Buffer.alloc(ENCRYPTED_MAGIC.length);
  for (const n of names) {
    let fd: number;
    try {
      fd = fs.openSync(path.join(dir, 'snapshots', n), 'r');
    } catch {
      continue; // unreadable: listing reports it
    }
    try {
      if (fs.readSync(fd, head, 0, head.length, 0) === head.length && head.equals(ENCRYPTED_MAGIC)) {
        out.push(`snapshot ${n.slice(0, -5)} is sealed (encrypted)`);
        break;
      }
    } catch {
      /* unreadable: listing reports it */
    } finally {
      fs.closeSync(fd);
    }
  }
  return out;
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
  /** Open pack files, most recently used last; `users` counts reads in progress on each. */
  private packHandles = new Map<string, { fh: Promise<fs.promises.FileHandle>; users: number }>();

  /** config.json to be rewritten under the next exclusive lock: an older format to upgrade, or a damaged key copy to repair. */
  private configRewrite: 'upgrade' | 'repair' | null = null;

  private constructor(readonly dir: string, readonly config: RepoConfig, readonly cipher: RepoCipher, readonly log: Logger) {}

  static async init(dir: string, opts: InitOptions, log: Logger): Promise<Repository> {
    dir = path.resolve(dir);
    if (await exists(path.join(dir, 'config.json'))) throw new DevsnapError('REPO_EXISTS', `${dir} already holds a devsnap repository.`);
    if ((await exists(dir)) && (await fs.promises.readdir(dir)).length > 0) {
      throw new DevsnapError('USAGE', `${dir} is not empty and is not a devsnap repository.`, 'Choose an empty or new folder for the repository.');
    }
    const enc = opts.password ? RepoCipher.create(opts.password) : null;
    const config: RepoConfig = {
      format: 'devsnap-repo',
      version: enc ? 2 : 1,
      id: crypto.randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
      packSize: opts.packSize ?? 32 << 20,
      compression: { algorithm: 'zstd', level: opts.level ?? 3 },
      chunkHash: enc ? 'hmac-sha256' : 'sha256',
      encryption: enc?.config ?? null,
    };
    const problem = settingsProblem(config);
    if (problem) throw new DevsnapError('USAGE', `Cannot create a repository: ${problem}.`);
    if (enc) config.sealed = enc.cipher.sealConfig(Buffer.from(canonical(sealedSettings(config))));
    try {
      for (const sub of ['', 'data', 'index', 'snapshots', 'locks']) await mkdirPrivate(path.join(dir, sub));
      await fs.promises.chmod(dir, 0o700);
      await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    } catch (err) {
      throw toDevsnapError(err, `the repository folder ${dir}`);
    }
    return new Repository(dir, config, enc?.cipher ?? RepoCipher.plain(), log);
  }

  static async open(dir: string, opts: { password?: string }, log: Logger): Promise<Repository> {
    dir = path.resolve(dir);
    let text: string;
    try {
      text = await fs.promises.readFile(path.join(dir, 'config.json'), 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        throw new DevsnapError('NO_REPO', `${dir} is not a devsnap repository (no config.json).`, 'Check --repo / DEVSNAP_REPO, or take a first snapshot there to create one.');
      }
      throw toDevsnapError(err, `the repository ${dir}`);
    }
    let config: RepoConfig;
    try {
      config = JSON.parse(text);
    } catch {
      throw new DevsnapError('DAMAGED', `The repository's config.json in ${dir} is corrupt.`, CONFIG_HINT);
    }
    if (!config || typeof config !== 'object' || config.format !== 'devsnap-repo') throw new DevsnapError('NO_REPO', `${dir} is not a devsnap repository.`);
    if (config.version !== 1 && config.version !== 2) throw new DevsnapError('NO_REPO', `Repository format version ${config.version} is not supported by this devsnap.`, 'Update devsnap.');
    const where = path.join(dir, 'config.json');
    const problem = settingsProblem(config);
    if (!config.encryption) {
      // Nothing to authenticate with: refuse what only a downgraded encrypted repository shows, and a
      // password, which says the user expects encryption. Plaintext is never written where it was not.
      const markers = await encryptionMarkers(dir, config);
      if (markers.length) {
        throw new DevsnapError('DAMAGED', `${where} says the repository is not encrypted, but ${markers.join('; ')}: config.json was changed (tampered with or damaged). devsnap will neither read nor write it as unencrypted.`, CONFIG_HINT);
      }
      if (opts.password) { // an empty one is none, as for encrypted repositories
        throw new DevsnapError('USAGE', `The repository ${dir} is not encrypted, but a password was given (DEVSNAP_PASSWORD or --password-file); devsnap refuses rather than store snapshots unencrypted.`,
          'If this repository was created without --encrypt, run without a password. If it was encrypted, someone changed its config.json: do not use it; put back config.json from another copy of the repository.');
      }
      if (problem) throw new DevsnapError('DAMAGED', `${where} is damaged: ${problem}.`, CONFIG_HINT);
      return new Repository(dir, config, RepoCipher.plain(), log);
    }
    const belongs = (c: RepoCipher) => typeof config.sealed === 'string' && c.openConfig(config.sealed) !== null;
    const { cipher, legacy, damaged } = RepoCipher.open(config.encryption, opts.password, where, belongs);
    // A key of the sealed format, or a seal present, means the settings must match it; only a
    // repository of an earlier devsnap (bare key, version 1, no seal) has nothing to compare with.
    const changes = !legacy || config.version !== 1 || config.sealed !== undefined ? settingsChanges(config, cipher) : [];
    if (changes.length) {
      throw new DevsnapError('DAMAGED', `${where} was changed after devsnap wrote it (tampered with or damaged): ${changes.join('; ')}. devsnap will not use the repository with these settings.`,
        'If you did not change it, someone or something with write access to the repository did. Set those values back as sealed (or put back config.json from another copy of the repository), then run `devsnap check`.');
    }
    if (problem) throw new DevsnapError('DAMAGED', `${where} is damaged: ${problem}.`, CONFIG_HINT);
    const repo = new Repository(dir, config, cipher, log);
    if (damaged.length) {
      log(`The repository key in ${where} has a damaged copy (${damaged.join('; ')}); the intact copy was used. The next command that writes to the repository (snapshot, label, pin, forget, prune) repairs it.`);
      repo.configRewrite = 'repair';
    } else if (legacy) {
      log(`${where} is from an earlier devsnap: its settings are not yet authenticated and its key has no second copy. The next command that writes to the repository (snapshot, label, pin, forget, prune) upgrades it.`);
      repo.configRewrite = 'upgrade';
    }
    return repo;
  }

  /** Writes config.json anew: fresh key copies with checksums, and the settings sealed (format version 2). */
  private async rewriteConfig(): Promise<void> {
    const why = this.configRewrite;
    const next: RepoConfig = { ...this.config, version: 2, encryption: this.cipher.wrapKey(), sealed: undefined };
    next.sealed = this.cipher.sealConfig(Buffer.from(canonical(sealedSettings(next))));
    try {
      await writeFileAtomic(path.join(this.dir, 'config.json'), JSON.stringify(next, null, 2) + '\n');
    } catch (err) {
      this.log(`Could not rewrite config.json (${toDevsnapError(err, 'config.json').message}); it keeps working as it is and is rewritten next time.`);
      return;
    }
    Object.assign(this.config, next);
    this.configRewrite = null;
    this.log(why === 'repair' ? 'Repaired the damaged copy of the repository key in config.json.' : 'Upgraded config.json: its settings are now authenticated and its key is stored twice.');
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
    const parts: Buffer[] = [INDEX_MAGIC];
    for (const [pack, entries] of packs) {
      const head = Buffer.alloc(20);
      head.write(pack, 0, 16, 'hex');
      head.writeUInt32LE(entries.length, 16);
      parts.push(head, encodeEntries(entries));
    }
    const body = Buffer.concat(parts);
    const file = path.join(this.dir, 'index', `${crypto.randomBytes(16).toString('hex')}.idx`);
    await writeFileAtomic(file, Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]));
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
    const stored = await this.readPack(loc.pack, loc.offset, loc.length, buffer?.(loc.length));
    try {
      return { frame: this.cipher.open(stored), loc };
    } catch {
      throw new DevsnapError('DAMAGED', `Chunk ${id.slice(0, 12)}… in pack ${loc.pack} at offset ${loc.offset} failed authentication (corrupt or tampered).`, 'Run `devsnap verify` to see which snapshots are affected.');
    }
  }

  /** The last `n` stored bytes of an unencrypted chunk (null when encrypted: only the whole opens). */
  async readStoredTail(id: string, n: number): Promise<Buffer | null> {
    const loc = this.index.get(id);
    if (!loc || this.cipher.encrypted || n > loc.length) return null;
    return this.readPack(loc.pack, loc.offset + loc.length - n, n);
  }

  /**
   * Reads from a pack through a small cache of open files (at most 64 idle ones): a file is closed
   * only when no read uses it, and concurrent readers of one pack share its handle.
   */
  private async readPack(pack: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    let entry = this.packHandles.get(pack);
    if (entry) this.packHandles.delete(pack); // re-inserted below as the most recently used
    else {
      const fh = fs.promises.open(this.packPath(pack), 'r');
      fh.catch(() => undefined); // awaited below
      entry = { fh, users: 0 };
    }
    this.packHandles.set(pack, entry);
    entry.users++;
    try {
      const fh = await entry.fh.catch((err) => {
        if (this.packHandles.get(pack) === entry) this.packHandles.delete(pack); // nothing to cache: try again next time
        throw new DevsnapError('DAMAGED', `Pack ${pack} is missing or unreadable (${(err as NodeJS.ErrnoException).code}).`, 'Run `devsnap check`.');
      });
      return await readFully(fh, offset, length, into);
    } finally {
      entry.users--;
      this.closeIdlePacks();
    }
  }

  private closeIdlePacks(): void {
    for (const [pack, e] of this.packHandles) {
      if (this.packHandles.size <= 64) break;
      if (e.users > 0) continue;
      this.packHandles.delete(pack);
      e.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    for (const e of this.packHandles.values()) await e.fh.then((fh) => fh.close()).catch(() => undefined);
    this.packHandles.clear();
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
        if (!st.isFile()) throw new DevsnapError('DAMAGED', `snapshots/${id}.json in ${this.dir} is not a regular file (a folder, a device or a link to one).`, 'Move it out of the repository; the other snapshots are not affected.');
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

export function parseIndexFile(buf: Buffer): Map<string, PackEntry[]> | null {
  if (buf.length < INDEX_MAGIC.length + 32 || !buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return null;
  const body = buf.subarray(0, buf.length - 32);
  if (!crypto.createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) return null;
  const out = new Map<string, PackEntry[]>();
  let o = INDEX_MAGIC.length;
  while (o + 20 <= body.length) {
    const pack = body.toString('hex', o, o + 16);
    const count = body.readUInt32LE(o + 16);
    o += 20;
    out.set(pack, decodeEntries(body.subarray(o, o + count * ENTRY_SIZE)));
    o += count * ENTRY_SIZE;
  }
  return o === body.length ? out : null;
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

  constructor(private readonly repo: Repository) {}

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
    this.queue = run.then(() => undefined, () => undefined);
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
      const present = await fs.promises.access(this.repo.manifestPath(id)).then(() => true, (err) => (err as NodeJS.ErrnoException).code !== 'ENOENT');
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
