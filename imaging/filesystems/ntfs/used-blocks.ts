// NTFS used-block reader: boot sector → MFT record 6 ($Bitmap) → its $DATA, the cluster bitmap.
// Label from MFT record 3 ($Volume, $VOLUME_NAME). Every value read from the volume is checked before
// it is used as a size or an offset (a crafted boot sector must not make us allocate gigabytes), and
// MFT records are only read through their update sequence array (fixups). Anything that does not hold
// marks the whole volume used, with a warning saying why.

import { BlockBitmap, cString } from '../bitmap';
import type { ByteReader, UsedBlocks } from '../types';

const MFT_BITMAP = 6;
const MFT_VOLUME = 3;
export const ATTR_LIST = 0x20;
const ATTR_VOLUME_NAME = 0x60;
export const ATTR_DATA = 0x80;
const ATTR_END = 0xffffffff;
export const FIXUP_STRIDE = 512; // update sequence arrays always protect 512-byte strides
const MAX_CLUSTER = 2 << 20; // Windows formats clusters of up to 2 MiB
const MAX_RECORD = 64 << 10;

export interface Volume {
  p: ByteReader;
  clusterSize: number;
  clusterCount: number;
  mftOffset: number;
  recordSize: number;
}

export interface Attr {
  type: number;
  nonResident: boolean;
  named: boolean;
  body: Buffer;
}

/** A value on the volume that is not what NTFS would write: the reader stops trusting the volume. */
export class Implausible extends Error {}
/** A record whose update sequence does not match: torn by a write in progress (or damaged). */
export class TornRecord extends Implausible {}

export async function readNtfs(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < 512) return null;
  const bs = await p.read(0, 512);
  if (bs.toString('latin1', 3, 11) !== 'NTFS    ') return null;
  const uuid = bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  const geometry = parseBootSector(bs, p.size);
  if (typeof geometry === 'string') return whole(new BlockBitmap(512, p.size), `implausible boot sector: ${geometry}`, undefined, uuid);
  const v: Volume = { p, ...geometry };

  const bm = new BlockBitmap(v.clusterSize, p.size);
  // Past the last cluster: the backup boot sector (last sector) and any slack up to the partition end.
  bm.setRange(v.clusterCount, bm.blocks);

  const label = await readLabel(v).catch(() => undefined);
  let bitmap: Buffer;
  try {
    bitmap = await readClusterBitmap(v);
  } catch (err) {
    if (!(err instanceof Implausible)) throw err; // an I/O error: the caller reports it
    return whole(bm, err.message, label, uuid);
  }
  bm.orBits(bitmap, 0, v.clusterCount);
  return bm.result('ntfs', label, uuid);
}

/** Every cluster marked used, with the reason as a warning. */
function whole(bm: BlockBitmap, why: string, label: string | undefined, uuid: string): UsedBlocks {
  bm.setRange(0, bm.blocks);
  return {
    ...bm.result('ntfs', label, uuid),
    full: true,
    warnings: [`ntfs: ${why}. The whole partition is imaged in full. Run chkdsk /f (Windows) or ntfsfix on the source.`],
  };
}

/** The boot sector's geometry, or what is implausible about it. */
export function parseBootSector(bs: Buffer, partitionSize: number): Omit<Volume, 'p'> | string {
  const bps = bs.readUInt16LE(0x0b);
  if (![512, 1024, 2048, 4096].includes(bps)) return `${bps} bytes per sector`;
  const spcRaw = bs[0x0d];
  // Values above 0x80 encode 2^(256 - v) sectors per cluster (clusters larger than 64 KiB).
  const spc = spcRaw > 0x80 ? 2 ** (256 - spcRaw) : spcRaw;
  if (spc === 0 || (spc & (spc - 1)) !== 0 || bps * spc > MAX_CLUSTER) return `sectors-per-cluster byte 0x${spcRaw.toString(16)}`;
  const clusterSize = bps * spc;
  const totalSectors = Number(bs.readBigUInt64LE(0x28));
  if (totalSectors === 0 || totalSectors * bps > partitionSize) return `${totalSectors} sectors, more than the ${partitionSize}-byte partition holds`;
  const clusterCount = Math.floor(totalSectors / spc);
  // Positive: clusters per record; negative: 2^-v bytes. Real volumes use 1024 or 4096.
  const rs = bs.readInt8(0x40);
  const recordSize = rs < 0 ? (rs >= -16 ? 2 ** -rs : 0) : rs * clusterSize;
  if (recordSize < FIXUP_STRIDE || recordSize > MAX_RECORD || (recordSize & (recordSize - 1)) !== 0) {
    return `MFT record size byte 0x${bs[0x40].toString(16)} (${rs < 0 ? `2^${-rs}` : recordSize} bytes)`;
  }
  const mftLcn = Number(bs.readBigUInt64LE(0x30));
  const mftOffset = mftLcn * clusterSize;
  if (mftLcn >= clusterCount || mftOffset + 16 * recordSize > clusterCount * clusterSize) return `the MFT at cluster ${mftLcn}, outside the ${clusterCount}-cluster volume`;
  return { clusterSize, clusterCount, mftOffset, recordSize };
}

async function readClusterBitmap(v: Volume): Promise<Buffer> {
  const attrs = await readRecord(v, MFT_BITMAP);
  if (attrs.some((a) => a.type === ATTR_LIST)) throw new Implausible('$Bitmap is split across an attribute list, which devsnap does not follow');
  const data = attrs.find((a) => a.type === ATTR_DATA && !a.named);
  if (!data) throw new Implausible('$Bitmap (MFT record 6) has no data attribute');
  const need = Math.ceil(v.clusterCount / 8);
  const checkSize = (size: number): void => {
    // NTFS sizes $Bitmap to the cluster count rounded up to 8 bytes; a grown or shrunk volume keeps some slack.
    if (size < need || size > 2 * need + 65536) throw new Implausible(`$Bitmap holds ${size} bytes for ${v.clusterCount} clusters (${need} bytes)`);
  };
  if (!data.nonResident) {
    const value = residentValue(data);
    checkSize(value.length);
    return value.subarray(0, need);
  }
  const b = data.body;
  const startVcn = Number(b.readBigUInt64LE(0x10));
  const lastVcn = Number(b.readBigUInt64LE(0x18));
  const realSize = Number(b.readBigUInt64LE(0x30));
  const initialized = Number(b.readBigUInt64LE(0x38));
  checkSize(realSize);
  if (initialized < need) throw new Implausible(`$Bitmap has only ${initialized} of its ${need} bytes initialized`);
  if (startVcn !== 0 || (lastVcn + 1) * v.clusterSize < need) throw new Implausible(`$Bitmap's extent covers clusters ${startVcn}–${lastVcn}, not all of its ${need} bytes`);
  const out = Buffer.alloc(need);
  let vcn = 0;
  const own: [number, number][] = [];
  for (const run of decodeRuns(b.subarray(b.readUInt16LE(0x20)))) {
    const from = vcn * v.clusterSize;
    if (from >= need) break;
    if (run.lcn === null) throw new Implausible('$Bitmap has a sparse run');
    if (run.lcn < 0 || run.lcn + run.length > v.clusterCount) throw new Implausible(`$Bitmap's run at cluster ${run.lcn} lies outside the volume`);
    const len = Math.min(run.length * v.clusterSize, need - from);
    (await v.p.read(run.lcn * v.clusterSize, len)).copy(out, from);
    own.push([run.lcn, run.length]);
    vcn += run.length;
  }
  if (vcn * v.clusterSize < need) throw new Implausible(`$Bitmap's runs cover ${vcn} clusters, fewer than its ${need} bytes need`);
  // The boot sector, the MFT's start and $Bitmap itself are always allocated: a map saying otherwise is not this volume's.
  const isSet = (c: number) => (out[c >> 3] & (1 << (c & 7))) !== 0;
  const mftLcn = v.mftOffset / v.clusterSize;
  if (!isSet(0) || !isSet(mftLcn) || own.some(([lcn]) => !isSet(lcn))) throw new Implausible('$Bitmap marks the boot sector, the MFT or itself free');
  return out;
}

async function readLabel(v: Volume): Promise<string | undefined> {
  const name = (await readRecord(v, MFT_VOLUME)).find((a) => a.type === ATTR_VOLUME_NAME && !a.nonResident);
  return name ? cString(residentValue(name), 'utf16le') : undefined;
}

/** Reads one MFT record (from the MFT's first extent, which always holds the system files), applies its fixups and lists its attributes. */
async function readRecord(v: Volume, n: number): Promise<Attr[]> {
  return parseRecord(await v.p.read(v.mftOffset + n * v.recordSize, v.recordSize), n, v.recordSize);
}

/** Checks MFT record `n`'s header, applies its fixups (in place) and lists its attributes; Implausible when any of it does not hold. */
export function parseRecord(rec: Buffer, n: number, recordSize: number): Attr[] {
  const v = { recordSize };
  const bad = (why: string) => new Implausible(`MFT record ${n} ${why}`);
  if (rec.toString('latin1', 0, 4) !== 'FILE') throw bad('has no FILE signature');
  const usaOff = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  const attrOff = rec.readUInt16LE(0x14);
  const inUse = rec.readUInt32LE(0x18);
  if (usaOff < 0x28 || usaOff & 1 || usaCount !== v.recordSize / FIXUP_STRIDE + 1 || usaOff + 2 * usaCount > attrOff)
    throw bad(`has a malformed update sequence array (offset ${usaOff}, ${usaCount} entries)`);
  if (attrOff & 7 || attrOff >= inUse || inUse > v.recordSize || rec.readUInt32LE(0x1c) !== v.recordSize) throw bad('has a malformed header');
  if (!(rec.readUInt16LE(0x16) & 1)) throw bad('is not in use');
  // NTFS 3.1 headers (update sequence array at 0x30) carry the record's own number.
  if (usaOff >= 0x30 && rec.readUInt32LE(0x2c) !== n) throw bad(`says it is record ${rec.readUInt32LE(0x2c)}`);
  applyFixups(rec, usaOff, usaCount, n);
  const attrs: Attr[] = [];
  for (let off = attrOff; off + 8 <= inUse;) {
    const type = rec.readUInt32LE(off);
    if (type === ATTR_END) break;
    const len = rec.readUInt32LE(off + 4);
    if (len < 24 || len & 7 || off + len > inUse) throw bad(`has a malformed attribute at offset ${off}`);
    const body = rec.subarray(off, off + len);
    const nonResident = body[8] !== 0;
    if (nonResident ? len < 0x40 || body.readUInt16LE(0x20) >= len : body.readUInt16LE(0x14) + body.readUInt32LE(0x10) > len) {
      throw bad(`has an attribute (type 0x${type.toString(16)}) whose value lies outside it`);
    }
    attrs.push({ type, nonResident, named: body[9] !== 0, body });
    off += len;
  }
  return attrs;
}

/** Puts back the last two bytes of every 512-byte stride, which on disk hold the update sequence number (a torn write shows as a mismatch). */
function applyFixups(rec: Buffer, usaOff: number, usaCount: number, n: number): void {
  const usn = rec.readUInt16LE(usaOff);
  for (let i = 1; i < usaCount; i++) {
    const pos = i * FIXUP_STRIDE - 2;
    if (rec.readUInt16LE(pos) !== usn) throw new TornRecord(`MFT record ${n} is torn (its update sequence does not match in sector ${i - 1})`);
    rec.writeUInt16LE(rec.readUInt16LE(usaOff + 2 * i), pos);
  }
}

export function residentValue(a: Attr): Buffer {
  const off = a.body.readUInt16LE(0x14);
  return a.body.subarray(off, off + a.body.readUInt32LE(0x10));
}

/** Decodes a mapping-pairs run list: lengths in clusters, LCN deltas signed; a missing offset is a sparse run. */
export function decodeRuns(list: Buffer, what = '$Bitmap'): { lcn: number | null; length: number }[] {
  const runs: { lcn: number | null; length: number }[] = [];
  let lcn = 0;
  for (let i = 0; i < list.length && list[i] !== 0;) {
    const lenSize = list[i] & 0x0f;
    const offSize = list[i] >> 4;
    i++;
    if (lenSize === 0 || lenSize > 8 || offSize > 8 || i + lenSize + offSize > list.length) throw new Implausible(`${what} has a malformed run list`);
    const length = leInt(list, i, lenSize, false);
    if (length <= 0) throw new Implausible(`${what} has a malformed run list`);
    i += lenSize;
    if (offSize === 0) {
      runs.push({ lcn: null, length });
    } else {
      lcn += leInt(list, i, offSize, true);
      runs.push({ lcn, length });
    }
    i += offSize;
  }
  return runs;
}

/** A 1..8-byte little-endian integer (run lists use any width). */
export function leInt(b: Buffer, off: number, size: number, signed: boolean): number {
  let v = 0n;
  for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[off + k]);
  if (signed && b[off + size - 1] & 0x80) v -= 1n << BigInt(size * 8);
  return Number(v);
}
