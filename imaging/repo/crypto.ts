// Optional repository encryption. A random master key (encryption key + chunk-id key) is stored in
// config.json wrapped with a key derived from the password by scrypt (memory-hard), twice: each
// copy carries a SHA-256 checksum of its own (public) material, so a damaged copy is told apart
// from a wrong password and the other copy is used. Chunks and manifests are sealed with
// AES-256-GCM (authenticated); chunk ids become HMAC-SHA256 of the raw bytes so that ids reveal
// nothing about content. config.json's settings are sealed under a key derived from the master key
// (Repository.open compares them), so they cannot be changed unnoticed.
import * as crypto from 'crypto';
import { DevsnapError } from '../core/errors';

/** One wrapped copy of the master key, with the scrypt parameters that unwrap it. */
export interface WrappedKey {
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string; // base64
  wrappedKey: string; // base64(nonce | ciphertext | tag) of the master key (and its format byte)
  /** sha256 (hex) of keyMaterial(): absent in repositories of devsnap before key copies. */
  checksum?: string;
}

/** config.json's `encryption`: the first key copy, and the second one in `copy`. */
export interface EncryptionConfig extends WrappedKey {
  copy?: WrappedKey;
}

const NONCE = 12;
const TAG = 16;
const MASTER = 64;
/**
 * Appended to the master key before wrapping: a key wrapped with it belongs to a repository whose
 * settings are sealed, so stripping the seal from config.json (to pass as an older repository)
 * is detected. Keys of older repositories are the bare 64 bytes.
 */
const KEY_FORMAT_SEALED = 2;

/**
 * Bounds on scrypt's parameters, checked before scrypt runs: config.json is not trusted until the
 * key opens, and raised parameters would otherwise hang every command or exhaust memory. `init`
 * uses N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s); the bounds allow 32 times that work.
 */
export const KDF_LIMITS = { minN: 1 << 10, maxN: 1 << 20, maxR: 32, maxP: 16, maxMemory: 256 << 20, maxWork: 1 << 23 };

function seal(key: Buffer, plain: Buffer): Buffer {
  const nonce = crypto.randomBytes(NONCE);
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

function unseal(key: Buffer, sealed: Buffer): Buffer {
  if (sealed.length < NONCE + TAG) throw new Error('too short');
  const d = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  return Buffer.concat([d.update(sealed.subarray(NONCE, sealed.length - TAG)), d.final()]);
}

type KdfParams = Pick<WrappedKey, 'N' | 'r' | 'p' | 'salt'>;

function deriveKey(password: string, cfg: KdfParams): Buffer {
  return crypto.scryptSync(password, Buffer.from(cfg.salt, 'base64'), 32, { N: cfg.N, r: cfg.r, p: cfg.p, maxmem: 2 * 128 * cfg.N * cfg.r });
}

/** What a copy's checksum covers: everything needed to unwrap it except the password. */
function keyMaterial(k: WrappedKey): string {
  return `${k.kdf}:${k.N}:${k.r}:${k.p}:${k.salt}:${k.wrappedKey}`;
}

function keyChecksum(k: WrappedKey): string {
  return crypto.createHash('sha256').update(keyMaterial(k)).digest('hex');
}

/** Whether s is canonical base64 of minBytes to maxBytes bytes. */
function isBase64(s: unknown, minBytes: number, maxBytes: number): boolean {
  if (typeof s !== 'string') return false;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s && b.length >= minBytes && b.length <= maxBytes;
}

/** Why a key copy cannot be used as it stands (named by its field in config.json), or null. */
function copyProblem(k: unknown, where: string): string | null {
  if (!k || typeof k !== 'object') return `${where} is missing or not a key`;
  const c = k as Record<string, unknown>;
  if (c.kdf !== 'scrypt') return `${where}.kdf is ${JSON.stringify(c.kdf)} (expected "scrypt")`;
  const L = KDF_LIMITS;
  const N = c.N as number,
    r = c.r as number,
    p = c.p as number;
  if (!Number.isInteger(N) || N < L.minN || N > L.maxN || (N & (N - 1)) !== 0) return `${where}.N is ${JSON.stringify(c.N)} (expected a power of two from ${L.minN} to ${L.maxN})`;
  if (!Number.isInteger(r) || r < 1 || r > L.maxR) return `${where}.r is ${JSON.stringify(c.r)} (expected 1 to ${L.maxR})`;
  if (!Number.isInteger(p) || p < 1 || p > L.maxP) return `${where}.p is ${JSON.stringify(c.p)} (expected 1 to ${L.maxP})`;
  if (128 * N * r > L.maxMemory) return `${where}.N and .r ask scrypt for ${(128 * N * r) >> 20} MiB of memory (at most ${L.maxMemory >> 20} MiB is plausible)`;
  if (N * r * p > L.maxWork) return `${where}.N, .r and .p ask scrypt for ${(N * r * p) / (1 << 18)} times the work devsnap sets (at most ${L.maxWork / (1 << 18)} is plausible)`;
  if (!isBase64(c.salt, 8, 64)) return `${where}.salt is not a base64 salt of 8 to 64 bytes`;
  if (!isBase64(c.wrappedKey, NONCE + MASTER + TAG, NONCE + MASTER + 1 + TAG)) return `${where}.wrappedKey is not a base64 wrapped key`;
  if (c.checksum !== undefined && (typeof c.checksum !== 'string' || !/^[0-9a-f]{64}$/.test(c.checksum))) return `${where}.checksum is not a SHA-256 checksum`;
  return null;
}

export interface OpenedKey {
  cipher: RepoCipher;
  /** A key of an earlier devsnap: one copy, no checksum, settings not sealed. */
  legacy: boolean;
  /** Copies found damaged (the intact one was used): what is wrong with each. */
  damaged: string[];
}

/** How the repository turns raw chunks into ids and stored bytes (and back). */
export class RepoCipher {
  private constructor(
    private readonly encKey: Buffer | null,
    private readonly idKey: Buffer | null,
    /** The key that wraps the master key, and its parameters: to write fresh key copies without the password. */
    private readonly wrapping: { kek: Buffer; params: KdfParams } | null = null,
  ) {}

  static plain(): RepoCipher {
    return new RepoCipher(null, null);
  }

  static create(password: string): { cipher: RepoCipher; config: EncryptionConfig } {
    const master = crypto.randomBytes(MASTER);
    const params = { N: 1 << 15, r: 8, p: 1, salt: crypto.randomBytes(16).toString('base64') };
    const cipher = new RepoCipher(master.subarray(0, 32), master.subarray(32), { kek: deriveKey(password, params), params });
    return { cipher, config: cipher.wrapKey() };
  }

  /**
   * Unwraps the master key from whichever copy opens (preferring one that `belongs` accepts: the
   * repository's sealed settings authenticate under it). Throws DAMAGED (naming the field) when no
   * copy is plausible or every copy fails its checksum, and BAD_PASSWORD only when an intact copy
   * does not open with the password.
   */
  static open(config: unknown, password: string | undefined, where: string, belongs?: (c: RepoCipher) => boolean): OpenedKey {
    const enc = config as EncryptionConfig;
    const copies = [{ name: 'encryption', k: enc as WrappedKey }, ...(enc && typeof enc === 'object' && enc.copy !== undefined ? [{ name: 'encryption.copy', k: enc.copy }] : [])].map((c) => {
      const problem = copyProblem(c.k, c.name);
      return { ...c, problem, intact: problem ? false : c.k.checksum === undefined ? null : c.k.checksum === keyChecksum(c.k) };
    });
    const usable = copies.filter((c) => !c.problem);
    if (!usable.length) {
      throw new DevsnapError('DAMAGED', `The repository key in ${where} is damaged or was tampered with: ${copies.map((c) => c.problem).join('; ')}.`, KEY_LOST_HINT);
    }
    if (!password) throw new DevsnapError('BAD_PASSWORD', 'This repository is encrypted and needs its password.', 'Set DEVSNAP_PASSWORD or use --password-file FILE.');
    // Intact copies (or a legacy one, which has no checksum) first; a copy failing its checksum may
    // still open when only the checksum itself was hit. Copies share their parameters, so scrypt runs once.
    const order = [...usable.filter((c) => c.intact !== false), ...usable.filter((c) => c.intact === false)];
    const keks = new Map<string, Buffer>();
    const opened: { name: string; plain: Buffer; cipher: RepoCipher }[] = [];
    for (const c of order) {
      const id = `${c.k.N}:${c.k.r}:${c.k.p}:${c.k.salt}`;
      let kek = keks.get(id);
      if (!kek) keks.set(id, (kek = deriveKey(password, c.k)));
      let plain: Buffer;
      try {
        plain = unseal(kek, Buffer.from(c.k.wrappedKey, 'base64'));
      } catch {
        continue;
      }
      // Anything but the two known formats was authenticated by GCM, so it is not damage: a newer devsnap's key.
      if (plain.length !== MASTER && !(plain.length === MASTER + 1 && plain[MASTER] === KEY_FORMAT_SEALED)) continue;
      opened.push({ name: c.name, plain, cipher: new RepoCipher(plain.subarray(0, 32), plain.subarray(32, MASTER), { kek, params: c.k }) });
    }
    const used = opened.find((o) => belongs?.(o.cipher)) ?? opened[0];
    if (!used) {
      if (usable.some((c) => c.intact !== false)) throw new DevsnapError('BAD_PASSWORD', 'The password for this repository is wrong.', 'Check DEVSNAP_PASSWORD or the password file.');
      throw new DevsnapError('DAMAGED', `The repository key in ${where} is damaged: ${copies.map((c) => c.problem ?? `${c.name} fails its checksum`).join('; ')}.`, KEY_LOST_HINT);
    }
    const sealedFormat = used.plain.length === MASTER + 1;
    const damaged: string[] = [];
    for (const c of copies) {
      const o = opened.find((x) => x.name === c.name);
      if (c.problem) damaged.push(c.problem);
      else if (c.intact === false) damaged.push(`${c.name} fails its checksum`);
      else if (!o) damaged.push(`${c.name} does not open with the password that opens ${used.name} (it was changed)`);
      else if (!o.plain.equals(used.plain)) damaged.push(`${c.name} holds another key than ${used.name} (it was replaced)`);
    }
    if (sealedFormat && copies.length < 2) damaged.push('the second key copy (encryption.copy) is missing');
    return { cipher: used.cipher, legacy: !sealedFormat, damaged };
  }

  /** Two fresh copies of the master key (new nonces, same password and parameters), with checksums. */
  wrapKey(): EncryptionConfig {
    if (!this.wrapping || !this.encKey || !this.idKey) throw new Error('wrapKey: not an encrypted repository');
    const plain = Buffer.concat([this.encKey, this.idKey, Buffer.from([KEY_FORMAT_SEALED])]);
    const one = (): WrappedKey => {
      const { N, r, p, salt } = this.wrapping!.params;
      const k: WrappedKey = { kdf: 'scrypt', N, r, p, salt, wrappedKey: seal(this.wrapping!.kek, plain).toString('base64') };
      return { ...k, checksum: keyChecksum(k) };
    };
    return { ...one(), copy: one() };
  }

  /** The key that seals config.json's settings: derived, so it never seals anything else. */
  private configKey(): Buffer {
    if (!this.encKey || !this.idKey) throw new Error('configKey: not an encrypted repository');
    return crypto
      .createHmac('sha256', Buffer.concat([this.encKey, this.idKey]))
      .update('devsnap config.json settings')
      .digest();
  }

  sealConfig(settings: Buffer): string {
    return seal(this.configKey(), settings).toString('base64');
  }

  /** The sealed settings, or null when they do not authenticate. */
  openConfig(sealed: string): Buffer | null {
    try {
      return unseal(this.configKey(), Buffer.from(sealed, 'base64'));
    } catch {
      return null;
    }
  }

  get encrypted(): boolean {
    return this.encKey !== null;
  }

  /** Content address of raw chunk bytes (sha256, or keyed HMAC-SHA256 in encrypted repositories). */
  chunkId(raw: Uint8Array): string {
    return this.idKey ? crypto.createHmac('sha256', this.idKey).update(raw).digest('hex') : crypto.createHash('sha256').update(raw).digest('hex');
  }

  seal(plain: Buffer): Buffer {
    return this.encKey ? seal(this.encKey, plain) : plain;
  }

  /** Throws on tampering (GCM tag mismatch). */
  open(stored: Buffer): Buffer {
    return this.encKey ? unseal(this.encKey, stored) : stored;
  }
}

const KEY_LOST_HINT =
  'Without its key no snapshot in this repository can be read. Put back config.json from another copy of this repository (a second backup drive, a sync) — ' +
  'any copy made after the repository was created holds the same key. Do not write to the repository until then.';
