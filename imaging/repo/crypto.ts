// Optional repository encryption. A random master key (encryption key + chunk-id key) is stored in
// config.json wrapped with a key derived from the password by scrypt (memory-hard). Chunks and
// manifests are sealed with AES-256-GCM (authenticated); chunk ids become HMAC-SHA256 of the raw
// bytes so that ids reveal nothing about content.
import * as crypto from 'crypto';
import { DevsnapError } from '../errors';

export interface EncryptionConfig {
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;        // base64
  wrappedKey: string;  // base64(nonce | ciphertext | tag) of the 64-byte master key
}

const NONCE = 12;
const TAG = 16;

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

function deriveKey(password: string, cfg: Pick<EncryptionConfig, 'N' | 'r' | 'p' | 'salt'>): Buffer {
  return crypto.scryptSync(password, Buffer.from(cfg.salt, 'base64'), 32, { N: cfg.N, r: cfg.r, p: cfg.p, maxmem: 256 * cfg.N * cfg.r });
}

/** How the repository turns raw chunks into ids and stored bytes (and back). */
export class RepoCipher {
  private constructor(private readonly encKey: Buffer | null, private readonly idKey: Buffer | null) {}

  static plain(): RepoCipher {
    return new RepoCipher(null, null);
  }

  static create(password: string): { cipher: RepoCipher; config: EncryptionConfig } {
    const master = crypto.randomBytes(64);
    const params = { N: 1 << 15, r: 8, p: 1, salt: crypto.randomBytes(16).toString('base64') };
    const wrappedKey = seal(deriveKey(password, params), master).toString('base64');
    return { cipher: new RepoCipher(master.subarray(0, 32), master.subarray(32)), config: { kdf: 'scrypt', ...params, wrappedKey } };
  }

  static open(config: EncryptionConfig, password: string | undefined): RepoCipher {
    if (!password) throw new DevsnapError('BAD_PASSWORD', 'This repository is encrypted and needs its password.', 'Set DEVSNAP_PASSWORD or use --password-file FILE.');
    let master: Buffer;
    try {
      master = unseal(deriveKey(password, config), Buffer.from(config.wrappedKey, 'base64'));
    } catch {
      throw new DevsnapError('BAD_PASSWORD', 'The password for this repository is wrong.', 'Check DEVSNAP_PASSWORD or the password file.');
    }
    return new RepoCipher(master.subarray(0, 32), master.subarray(32));
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
