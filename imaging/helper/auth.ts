// Mutual challenge-response over the one-time secret: each side proves it knows the secret by an
// HMAC over both nonces with a label naming its role, so a MAC can't be replayed or reflected and
// the secret itself never crosses the channel.
import * as crypto from 'crypto';

export const newNonce = (): string => crypto.randomBytes(32).toString('hex');
export const newSecret = (): string => crypto.randomBytes(32).toString('hex');

export function macFor(role: 'extension' | 'helper', secret: string, first: string, second: string): string {
  return crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(`devsnap-${role}\0${first}\0${second}`).digest('hex');
}

/** Constant-time comparison of two hex MACs (false for anything not a 64-digit hex string). */
export function macEquals(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || !/^[0-9a-f]{64}$/.test(a)) return false;
  return crypto.timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
