// NTFS used-block reader: boot sector → MFT record 6 ($Bitmap) → its $DATA, the cluster bitmap.
// Label from MFT record 3 ($Volume, $VOLUME_NAME). Anything unexpected marks the whole volume used.

import { BlockBitmap, cString } from './bitmap';
import type { ByteReader, UsedBlocks } from './types';

const MFT_BITMAP = 6;
const MFT_VOLUME = 3;
const ATTR_LIST = 0x20;
const ATTR_VOLUME_NAME = 0x60;
const ATTR_DATA = 0x80;
const ATTR_END = 0xffffffff;
const FIXUP_STRIDE = 512; // update sequence arrays always protect 512-byte strides

interface Volume {
  p: ByteReader;
  clusterSize: number;
  clusterCount: number;
  mftOffset: number;
  recordSize: number;
}

interface Attr {
  type: number;
  nonResident: boolean;
  named: boolean;
  body: Buffer;
}

export async function readNtfs(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < 512) return null;
  const bs = await p.read(0, 512);
  if (bs.toString('latin1', 3, 11) !== 'NTFS    ') return null;
  const bps = bs.readUInt16LE(0x0b);
  const spcRaw = bs[0x0d];
  // Values above 0x80 encode 2^(256 - v) sectors per cluster (clusters larger than 64 KiB).
  const spc = spcRaw > 0x80 ? 2 ** (256 - spcRaw) : spcRaw;
  if (![512, 1024, 2048, 4096].includes(bps) || spc === 0) return null;
  const clusterSize = bps * spc;
  const totalSectors = Number(bs.readBigUInt64LE(0x28));
  const mftLcn = Number(bs.readBigUInt64LE(0x30));
  const rs = bs.readInt8(0x40);
  const recordSize = rs < 0 ? 2 ** -rs : rs * clusterSize;
  const uuid = bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  const v: Volume = { p, clusterSize, clusterCount: Math.floor(totalSectors / spc), mftOffset: mftLcn * clusterSize, recordSize };

  const bm = new BlockBitmap(clusterSize, p.size);
  // Past the last cluster: the backup boot sector (last sector) and any slack up to the partition end.
  bm.setRange(v.clusterCount, bm.blocks);

  const label = await readLabel(v).catch(() => undefined);
  const bitmap = await readClusterBitmap(v).catch(() => null);
  if (bitmap) bm.orBits(bitmap, 0, v.clusterCount);
  else bm.setRange(0, bm.blocks); // could not follow $Bitmap: image everything rather than lose data
  return bm.result('ntfs', label, uuid);
}

async function readClusterBitmap(v: Volume): Promise<Uint8Array | null> {
  const attrs = await readRecord(v, MFT_BITMAP);
  const data = attrs.find((a) => a.type === ATTR_DATA && !a.named);
  if (!data) return null;
  const need = Math.ceil(v.clusterCount / 8);
  if (!data.nonResident) {
    const value = residentValue(data);
    return value.length >= need ? value : null;
  }
  const b = data.body;
  const startVcn = Number(b.readBigUInt64LE(0x10));
  const lastVcn = Number(b.readBigUInt64LE(0x18));
  const initialized = Number(b.readBigUInt64LE(0x38));
  // Only this record's extent is followed; a $Bitmap split across an attribute list is not.
  if (startVcn !== 0 || (lastVcn + 1) * v.clusterSize < need || attrs.some((a) => a.type === ATTR_LIST)) return null;
  const out = Buffer.alloc(need);
  let vcn = 0;
  for (const run of decodeRuns(b.subarray(b.readUInt16LE(0x20)))) {
    const from = vcn * v.clusterSize;
    const len = Math.min(run.length * v.clusterSize, need - from, initialized - from);
    if (len <= 0) break;
    if (run.lcn !== null) (await v.p.read(run.lcn * v.clusterSize, len)).copy(out, from);
    vcn += run.length;
  }
  return out;
}

async function readLabel(v: Volume): Promise<string | undefined> {
  const name = (await readRecord(v, MFT_VOLUME)).find((a) => a.type === ATTR_VOLUME_NAME && !a.nonResident);
  return name ? cString(residentValue(name), 'utf16le') : undefined;
}

/** Reads one MFT record (from the MFT's first extent, which always holds the system files) and lists its attributes. */
async function readRecord(v: Volume, n: number): Promise<Attr[]> {
  const rec = await v.p.read(v.mftOffset + n * v.recordSize, v.recordSize);
  if (rec.toString('latin1', 0, 4) !== 'FILE') throw new Error(`MFT record ${n} has no FILE signature`);
  applyFixups(rec);
  const attrs: Attr[] = [];
  for (let off = rec.readUInt16LE(0x14); off + 8 <= rec.length; ) {
    const type = rec.readUInt32LE(off);
    const len = rec.readUInt32LE(off + 4);
    if (type === ATTR_END || len < 16 || off + len > rec.length) break;
    attrs.push({ type, nonResident: rec[off + 8] !== 0, named: rec[off + 9] !== 0, body: rec.subarray(off, off + len) });
    off += len;
  }
  return attrs;
}

function applyFixups(rec: Buffer): void {
  const usaOff = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  const usn = rec.readUInt16LE(usaOff);
  for (let i = 1; i < usaCount && i * FIXUP_STRIDE <= rec.length; i++) {
    const pos = i * FIXUP_STRIDE - 2;
    if (rec.readUInt16LE(pos) !== usn) throw new Error('MFT record is torn (update sequence mismatch)');
    rec.writeUInt16LE(rec.readUInt16LE(usaOff + 2 * i), pos);
  }
}

function residentValue(a: Attr): Buffer {
  const off = a.body.readUInt16LE(0x14);
  return a.body.subarray(off, off + a.body.readUInt32LE(0x10));
}

/** Decodes a mapping-pairs run list: lengths in clusters, LCN deltas signed; a missing offset is a sparse run. */
function decodeRuns(list: Buffer): { lcn: number | null; length: number }[] {
  const runs: { lcn: number | null; length: number }[] = [];
  let lcn = 0;
  for (let i = 0; i < list.length && list[i] !== 0; ) {
    const lenSize = list[i] & 0x0f;
    const offSize = list[i] >> 4;
    i++;
    if (lenSize === 0 || lenSize > 8 || offSize > 8 || i + lenSize + offSize > list.length) throw new Error('bad run list');
    const length = leInt(list, i, lenSize, false);
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
function leInt(b: Buffer, off: number, size: number, signed: boolean): number {
  let v = 0n;
  for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[off + k]);
  if (signed && b[off + size - 1] & 0x80) v -= 1n << BigInt(size * 8);
  return Number(v);
}
