// Reads an NTFS volume's state for the change tracking of state.ts (whose header says what a state holds
// and why): the volume's geometry, and a fingerprint of each MFT record.

import { hash64 } from '../runs';
import { Implausible, TornRecord, parseBootSector, parseRecord, residentValue, type Attr } from './used-blocks';
import { ATTR_FILE_NAME, ATTR_INDEX_ROOT, ATTR_STANDARD_INFORMATION, Mft, baseOf, fileNameKeys, refRecord, type Geometry } from './mft';
import type { ByteReader } from '../types';

/** One NTFS volume's state at a moment: geometry, and fingerprints per MFT record. */
export interface NtfsState {
  /** Volume serial number (boot sector 0x48), as blkid shows it. */
  serial: string;
  bytesPerSector: number;
  clusterSize: number;
  clusterCount: number;
  totalSectors: number;
  recordSize: number;
  mftLcn: number;
  /** Records the MFT held (mapped size / record size). */
  records: number;
  /** Per record: 0 free or never used, 1 in use, 2 unknown (torn or malformed while read live). */
  status: Uint8Array;
  /** Fingerprint of each in-use record (fixed-up bytes, update sequence number and access times zeroed): prints[2n], prints[2n+1]. */
  prints: Uint32Array;
  /** Fingerprint of each in-use record's access times alone. */
  atimes: Uint32Array;
  /** System files' records (0–23 in use, and everything under $Extend), ascending. */
  system: Uint32Array;
}

const MAX_RECORDS = 1 << 30;
const FIRST_USER_RECORD = 24;
const EXTEND = 11;

/** Reads the state; null when `p` is not an NTFS volume this module can follow (or it is damaged). Throws only p's I/O errors. */
export async function readNtfsState(p: ByteReader, opts: { live?: boolean } = {}): Promise<NtfsState | null> {
  const live = !!opts.live;
  for (let attempt = 0; ; attempt++) {
    try {
      return await scan(p, live);
    } catch (e) {
      if (!(e instanceof Implausible || e instanceof RangeError)) throw e;
      // A live volume's record 0 (or an MFT extension record) may be caught mid-write: try again.
      if (!(live && e instanceof TornRecord && attempt < 3)) return null;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export interface Opened {
  g: Geometry;
  bs: Buffer;
  bytesPerSector: number;
  totalSectors: number;
}

/** The size of an NTFS volume's MFT (from its boot sector and record 0, nothing else read), or null when `p` holds no NTFS that opens. */
export async function ntfsMftBytes(p: ByteReader): Promise<number | null> {
  try {
    const o = await open(p);
    return o && (await Mft.open(o.g)).records * o.g.recordSize;
  } catch {
    return null;
  }
}

export async function open(p: ByteReader): Promise<Opened | null> {
  if (p.size < 512) return null;
  const bs = await p.read(0, 512);
  if (bs.toString('latin1', 3, 11) !== 'NTFS    ') return null;
  const geo = parseBootSector(bs, p.size);
  if (typeof geo === 'string') return null;
  return { g: { p, ...geo }, bs, bytesPerSector: bs.readUInt16LE(0x0b), totalSectors: Number(bs.readBigUInt64LE(0x28)) };
}

async function scan(p: ByteReader, live: boolean): Promise<NtfsState | null> {
  const o = await open(p);
  if (!o) return null;
  const { g } = o;
  const mft = await Mft.open(g);
  const n = mft.records;
  if (n > MAX_RECORDS) throw new Implausible(`$MFT holds ${n} records`);
  const status = new Uint8Array(n);
  const prints = new Uint32Array(2 * n);
  const atimes = new Uint32Array(n);
  const parent = new Uint32Array(n).fill(0xffffffff);
  const scratch = Buffer.alloc(g.recordSize); // not pooled: 4-byte aligned for the word view
  const words = new Uint32Array(scratch.buffer, scratch.byteOffset, g.recordSize >> 2);
  await mft.forEach(0, n, (r, raw) => {
    raw.copy(scratch);
    const got = fingerprintRecord(scratch, words, r, g.recordSize, prints, atimes);
    if (got === 'free') return;
    if (got === 'bad') {
      status[r] = 2;
      return;
    }
    if (typeof got === 'string') {
      if (live) {
        status[r] = 2;
        return;
      }
      throw new Implausible(got);
    }
    status[r] = 1;
    if (baseOf(scratch, r) === r) {
      const fn = got.find((a) => a.type === ATTR_FILE_NAME && !a.nonResident);
      if (fn) {
        const v = residentValue(fn);
        if (v.length >= 8) {
          const pr = refRecord(v, 0);
          if (pr < n) parent[r] = pr;
        }
      }
    }
  });
  // Everything under $Extend, transitively (a record's parent may have a higher number: repeat).
  const ext = new Uint8Array(n);
  if (EXTEND < n) ext[EXTEND] = 1;
  for (let round = 0, grew = true; grew && round < 64; round++) {
    grew = false;
    for (let r = FIRST_USER_RECORD; r < n; r++)
      if (!ext[r] && parent[r] !== 0xffffffff && ext[parent[r]] && status[r] === 1) {
        ext[r] = 1;
        grew = true;
      }
  }
  const system: number[] = [];
  for (let r = 0; r < n; r++) if ((r < FIRST_USER_RECORD && status[r]) || (r >= FIRST_USER_RECORD && ext[r])) system.push(r);
  return {
    serial: o.bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0'),
    bytesPerSector: o.bytesPerSector,
    clusterSize: g.clusterSize,
    clusterCount: g.clusterCount,
    totalSectors: o.totalSectors,
    recordSize: g.recordSize,
    mftLcn: g.mftOffset / g.clusterSize,
    records: n,
    status,
    prints,
    atimes,
    system: Uint32Array.from(system),
  };
}

/**
 * Fingerprints record `r` (raw bytes in `rec`, fixed up in place) into prints/atimes; returns its
 * attributes, 'free' (no FILE record, or not in use), 'bad' (a BAAD record) or why it is malformed.
 */
export function fingerprintRecord(rec: Buffer, words: Uint32Array, r: number, recordSize: number, prints: Uint32Array, atimes: Uint32Array, slot = r): Attr[] | 'free' | 'bad' | string {
  const sig = rec.toString('latin1', 0, 4);
  if (sig === 'BAAD') return 'bad';
  if (sig !== 'FILE' || !(rec.readUInt16LE(0x16) & 1)) return 'free';
  let attrs: Attr[];
  try {
    attrs = parseRecord(rec, r, recordSize);
  } catch (e) {
    if (e instanceof Implausible) return e.message;
    throw e;
  }
  rec.writeUInt16LE(0, rec.readUInt16LE(4)); // the update sequence number
  let at = 0x811c9dc5;
  const take = (v: Buffer, off: number): void => {
    if (off < 0 || off + 8 > v.length) return;
    for (let k = off; k < off + 8; k++) {
      at = Math.imul(at ^ v[k], 0x01000193);
      v[k] = 0;
    }
  };
  for (const a of attrs) {
    if (a.nonResident) continue;
    if (a.type === ATTR_STANDARD_INFORMATION) take(residentValue(a), 0x18);
    else if (a.type === ATTR_FILE_NAME) take(residentValue(a), 0x20);
    else if (a.type === ATTR_INDEX_ROOT) for (const key of fileNameKeys(residentValue(a))) take(key, 0x20);
  }
  atimes[slot] = at >>> 0;
  hash64(words, 0, words.length, prints, slot);
  return attrs;
}
