// A repository's config.json (see imaging/FORMAT.md): its settings, checked on init and on every open,
// sealed under the repository key when encrypted, and rewritten (upgraded, or a damaged key copy repaired).
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { exists, mkdirPrivate } from '../core/fsutil';
import { JobQueue } from '../core/job-queue';
import { isS3Location } from '../storage/location';
import { Storage, StorageError } from '../storage/storage';
import { EncryptionConfig, RepoCipher } from './crypto';
import { MAX_CHUNK_SIZE } from './manifest';

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

export interface InitOptions {
  chunkSize?: number;
  packSize?: number;
  level?: number;
  password?: string;
}

export type Logger = (message: string) => void;

/** The magic in front of sealed (encrypted) manifests and summaries. */
export const ENCRYPTED_MAGIC = Buffer.from('DSENC1\n');
export const DEFAULT_CHUNK_SIZE = 1 << 20;
const CONFIG_HINT =
  'Put back config.json from another copy of this repository (a second backup drive, a sync); if you did not change it, someone or something with write access to the repository did. Do not write to the repository until then.';

/** The folders init makes before it writes config.json. */
const REPO_FOLDERS = ['data', 'index', 'snapshots', 'locks'];
/** A temporary file of a config.json write that never finished (storage/local.ts tempOf, or fsutil.ts tempName). */
const CONFIG_TEMP = /^config\.json\.\d+\.[0-9a-f]{8}[~.]tmp$/;

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
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
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
async function encryptionMarkers(storage: Storage, c: RepoConfig): Promise<string[]> {
  const out: string[] = [];
  if (c.version === 2) out.push('its format version 2 is that of encrypted repositories');
  if (c.sealed !== undefined) out.push('it carries sealed settings');
  if (c.chunkHash === 'hmac-sha256') out.push('its chunk ids are keyed (hmac-sha256)');
  const names: string[] = [];
  for await (const o of storage.list('snapshots/')) if (/^snapshots\/[0-9a-f]{16}\.json$/.test(o.name)) names.push(o.name);
  // Every open of an unencrypted repository looks at each manifest's first bytes (a planted plain
  // manifest must not hide sealed ones), several at a time: a bucket answers each in milliseconds.
  let sealed: string | null = null;
  const jobs = new JobQueue(64);
  for (const n of names) {
    if (sealed) break;
    await jobs.add(async () => {
      const head = await storage.getRange(n, 0, ENCRYPTED_MAGIC.length).catch(() => null); // unreadable: listing reports it
      if (head?.equals(ENCRYPTED_MAGIC)) sealed ??= n;
    });
  }
  await jobs.drain();
  if (sealed) out.push(`snapshot ${(sealed as string).slice(10, -5)} is sealed (encrypted)`);
  return out;
}

/**
 * Creates config.json of a new repository in `storage` (named `dir` in messages; `folder` when it
 * is a folder, which also gets its subfolders and mode 0700): its settings and cipher.
 */
export async function initConfig(storage: Storage, dir: string, folder: string | null, opts: InitOptions): Promise<{ config: RepoConfig; cipher: RepoCipher }> {
  // Kernel interfaces hold no files to keep (and Node's recursive mkdir loops forever under /proc).
  const kernel = folder !== null && ['/proc', '/sys', '/dev'].find((t) => folder === t || folder.startsWith(t + '/'));
  if (kernel)
    throw new DevsnapError('USAGE', `Cannot create a repository in ${dir}: ${kernel} holds kernel interfaces and device nodes, not files.`, 'Choose a folder on a disk, ideally another drive.');
  if (await storage.stat('config.json')) throw new DevsnapError('REPO_EXISTS', `${dir} already holds a devsnap repository.`);
  const empty = folder !== null ? await isEmptyFolder(folder) : await isEmpty(storage);
  if (!empty) {
    // Not empty because another process created the repository this very moment: open it instead.
    if (await storage.stat('config.json')) throw new DevsnapError('REPO_EXISTS', `${dir} already holds a devsnap repository (created just now by another process).`);
    throw new DevsnapError(
      'USAGE',
      `${dir} is not empty and is not a devsnap repository.`,
      folder !== null ? 'Choose an empty or new folder for the repository.' : 'Choose an empty bucket, or a new folder inside it (s3:https://host/bucket/FOLDER).',
    );
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
    if (folder !== null) {
      for (const sub of ['', ...REPO_FOLDERS]) await mkdirPrivate(path.join(folder, sub));
      await fs.promises.chmod(folder, 0o700);
    }
    // Of two hosts creating one repository at once, one creates it; the other is told it exists.
    await storage.put('config.json', Buffer.from(JSON.stringify(config, null, 2) + '\n'), { ifAbsent: true });
  } catch (err) {
    if (err instanceof StorageError && err.kind === 'exists') throw new DevsnapError('REPO_EXISTS', `${dir} already holds a devsnap repository (created just now by another process).`);
    throw toDevsnapError(err, `the repository folder ${dir}`);
  }
  return { config, cipher: enc?.cipher ?? RepoCipher.plain() };
}

/**
 * Reads and checks the config.json of the repository in `dir` (absolute): its settings, its cipher, and
 * whether config.json is to be rewritten under the next exclusive lock (an older format to upgrade, or
 * a damaged key copy to repair).
 */
export async function openConfig(storage: Storage, dir: string, opts: { password?: string }, log: Logger): Promise<{ config: RepoConfig; cipher: RepoCipher; rewrite: 'upgrade' | 'repair' | null }> {
  let text: string;
  try {
    text = (await storage.get('config.json')).toString('utf8');
  } catch (err) {
    // A folder path that runs through a file ("disk.img/repo") is a wrong path, not an empty folder.
    if (!isS3Location(dir)) {
      try {
        fs.statSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw toDevsnapError(e, `the repository ${dir}`);
      }
    }
    if (err instanceof StorageError && err.kind === 'not-found') {
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
  const where = isS3Location(dir) ? `config.json in ${dir}` : path.join(dir, 'config.json');
  const problem = settingsProblem(config);
  if (!config.encryption) {
    // Nothing to authenticate with: refuse what only a downgraded encrypted repository shows, and a
    // password, which says the user expects encryption. Plaintext is never written where it was not.
    const markers = await encryptionMarkers(storage, config);
    if (markers.length) {
      throw new DevsnapError(
        'DAMAGED',
        `${where} says the repository is not encrypted, but ${markers.join('; ')}: config.json was changed (tampered with or damaged). devsnap will neither read nor write it as unencrypted.`,
        CONFIG_HINT,
      );
    }
    if (opts.password) {
      // an empty one is none, as for encrypted repositories
      throw new DevsnapError(
        'USAGE',
        `The repository ${dir} is not encrypted, but a password was given (DEVSNAP_PASSWORD or --password-file); devsnap refuses rather than store snapshots unencrypted.`,
        'If this repository was created without --encrypt, run without a password. If it was encrypted, someone changed its config.json: do not use it; put back config.json from another copy of the repository.',
      );
    }
    if (problem) throw new DevsnapError('DAMAGED', `${where} is damaged: ${problem}.`, CONFIG_HINT);
    return { config, cipher: RepoCipher.plain(), rewrite: null };
  }
  const belongs = (c: RepoCipher) => typeof config.sealed === 'string' && c.openConfig(config.sealed) !== null;
  const { cipher, legacy, damaged } = RepoCipher.open(config.encryption, opts.password, where, belongs);
  // A key of the sealed format, or a seal present, means the settings must match it; only a
  // repository of an earlier devsnap (bare key, version 1, no seal) has nothing to compare with.
  const changes = !legacy || config.version !== 1 || config.sealed !== undefined ? settingsChanges(config, cipher) : [];
  if (changes.length) {
    throw new DevsnapError(
      'DAMAGED',
      `${where} was changed after devsnap wrote it (tampered with or damaged): ${changes.join('; ')}. devsnap will not use the repository with these settings.`,
      'If you did not change it, someone or something with write access to the repository did. Set those values back as sealed (or put back config.json from another copy of the repository), then run `devsnap check`.',
    );
  }
  if (problem) throw new DevsnapError('DAMAGED', `${where} is damaged: ${problem}.`, CONFIG_HINT);
  if (damaged.length) {
    log(
      `The repository key in ${where} has a damaged copy (${damaged.join('; ')}); the intact copy was used. The next command that writes to the repository (snapshot, label, pin, forget, prune) repairs it.`,
    );
    return { config, cipher, rewrite: 'repair' };
  }
  if (legacy) {
    log(
      `${where} is from an earlier devsnap: its settings are not yet authenticated and its key has no second copy. The next command that writes to the repository (snapshot, label, pin, forget, prune) upgrades it.`,
    );
    return { config, cipher, rewrite: 'upgrade' };
  }
  return { config, cipher, rewrite: null };
}

/**
 * Writes config.json anew: fresh key copies with checksums, and the settings sealed (format version 2).
 * Updates `config` in place and returns true when written; false (logged) when it could not be.
 */
export async function rewriteConfigFile(storage: Storage, config: RepoConfig, cipher: RepoCipher, why: 'upgrade' | 'repair' | null, log: Logger): Promise<boolean> {
  const next: RepoConfig = { ...config, version: 2, encryption: cipher.wrapKey(), sealed: undefined };
  next.sealed = cipher.sealConfig(Buffer.from(canonical(sealedSettings(next))));
  try {
    await storage.put('config.json', Buffer.from(JSON.stringify(next, null, 2) + '\n'));
  } catch (err) {
    log(`Could not rewrite config.json (${toDevsnapError(err, 'config.json').message}); it keeps working as it is and is rewritten next time.`);
    return false;
  }
  Object.assign(config, next);
  log(why === 'repair' ? 'Repaired the damaged copy of the repository key in config.json.' : 'Upgraded config.json: its settings are now authenticated and its key is stored twice.');
  return true;
}

/**
 * Whether a folder holds nothing, or nothing but what an init that failed at config.json left (its
 * empty subfolders, a temporary file of config.json): the disk filled, failed or the process was
 * killed there, and the next init or first snapshot must not refuse the folder as someone else's.
 */
async function isEmptyFolder(folder: string): Promise<boolean> {
  if (!(await exists(folder))) return true;
  for (const e of await fs.promises.readdir(folder, { withFileTypes: true })) {
    if (e.isFile() && CONFIG_TEMP.test(e.name)) continue;
    if (!e.isDirectory() || !REPO_FOLDERS.includes(e.name)) return false;
    if ((await fs.promises.readdir(path.join(folder, e.name))).length) return false;
  }
  return true;
}

/** Whether a bucket (under the repository's prefix) holds nothing at all. */
async function isEmpty(storage: Storage): Promise<boolean> {
  for await (const _ of storage.list('')) return false;
  return true;
}
