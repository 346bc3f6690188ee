// The $MFT as a readable array of records, and a file's non-resident attributes, for filesystems/ntfs/state.ts.
// Every record is read through its fixups (filesystems/ntfs/used-blocks.ts parseRecord); every run is checked to lie inside
// the volume; attribute lists are followed one hop only (a base record's list names extension records,
// whose own lists are never followed), so a cyclic or self-referencing list cannot loop. Also the
// record fingerprint's hash and the index-root walk that finds the access-time copies it leaves out.

import { ATTR_DATA, ATTR_LIST, Implausible, decodeRuns, parseRecord, residentValue, type Attr } from './used-blocks';
import type { ByteReader } from '../types';

export const ATTR_STANDARD_INFORMATION = 0x10;
export const ATTR_FILE_NAME = 0x30;
export const ATTR_INDEX_ROOT = 0x90;
/** Records per file followed through an attribute list (NTFS's own limit is far lower in practice). */
const MAX_EXTENSIONS = 4096;
/** An attribute list is at most 256 KiB on NTFS. */
const MAX_ATTR_LIST = 256 << 10;
/** $MFT extents held in extension records (a very fragmented MFT has a few dozen). */
const MAX_MFT_EXTENSIONS = 1024;
/** Virtual bytes of the MFT per read. */
const CHUNK = 4 << 20;

export type ClusterRuns = Array<[number, number]>;

export interface Geometry {
  p: ByteReader;
  clusterSize: number;
  clusterCount: number;
  mftOffset: number;
  recordSize: number;
}

/** An extent of a non-resident attribute's runs: vcn → lcn (null = sparse). */
interface Extent {
  vcn: number;
  lcn: number | null;
  length: number;
}

/** 48-bit record number of a file reference. */
export function refRecord(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt16LE(off + 4) * 2 ** 32;
}

/** The runs of one non-resident attribute extent, each checked to lie inside the volume. */
export function attrRuns(g: Geometry, a: Attr, n: number): Extent[] {
  const b = a.body;
  let vcn = Number(b.readBigUInt64LE(0x10));
  const lastVcn = Number(b.readBigInt64LE(0x18)); // -1 for an empty attribute
  const what = `MFT record ${n}'s attribute 0x${a.type.toString(16)}`;
  if (vcn > lastVcn + 1 || lastVcn < -1 || lastVcn >= 2 ** 52) throw new Implausible(`${what} covers clusters ${vcn}–${lastVcn}`);
  const out: Extent[] = [];
  for (const r of decodeRuns(b.subarray(b.readUInt16LE(0x20)), what)) {
    if (r.lcn !== null && (r.lcn < 0 || r.lcn + r.length > g.clusterCount)) throw new Implausible(`${what} has a run at cluster ${r.lcn} (+${r.length}) outside the ${g.clusterCount}-cluster volume`);
    out.push({ vcn, lcn: r.lcn, length: r.length });
    vcn += r.length;
    if (vcn > lastVcn + 1) throw new Implausible(`${what}'s runs go past its last VCN ${lastVcn}`);
  }
  return out;
}

/** The MFT's data: its extents (vcn order, no holes) and its size in records. */
export class Mft {
  private constructor(
    readonly g: Geometry,
    readonly extents: Extent[],
    readonly records: number,
  ) {}

  /**
   * Maps the MFT from record 0 (at the boot sector's MFT cluster), following its attribute list when
   * the MFT is fragmented beyond one record. `live`: the MFT may grow meanwhile; records past the
   * mapped size are simply not seen.
   */
  static async open(g: Geometry): Promise<Mft> {
    const rec0 = await g.p.read(g.mftOffset, g.recordSize);
    const attrs = parseRecord(rec0, 0, g.recordSize);
    const data0 = attrs.filter((a) => a.type === ATTR_DATA && !a.named);
    if (data0.length !== 1 || !data0[0].nonResident) throw new Implausible('$MFT has no non-resident data attribute in record 0');
    const first = data0[0];
    if (Number(first.body.readBigUInt64LE(0x10)) !== 0) throw new Implausible('$MFT record 0 does not hold its first extent');
    const dataSize = Number(first.body.readBigUInt64LE(0x30));
    let extents = attrRuns(g, first, 0);
    let mft = new Mft(g, extents, Math.floor(extentBytes(g, extents) / g.recordSize));
    const list = attrs.find((a) => a.type === ATTR_LIST);
    if (list) {
      // Extension records holding further $DATA extents; they must be mappable with what is known so far.
      const entries = await attrListEntries(g, list, 0);
      const ext = [...new Set(entries.filter((e) => e.type === ATTR_DATA && !e.named && e.record !== 0).map((e) => e.record))].sort((a, b) => a - b);
      if (ext.length > MAX_MFT_EXTENSIONS) throw new Implausible(`$MFT's attribute list names ${ext.length} extension records`);
      for (const r of ext) {
        const rec = await mft.readRecord(r);
        if (!rec) throw new Implausible(`$MFT extension record ${r} is outside the mapped MFT`);
        for (const a of parseRecord(rec, r, g.recordSize)) if (a.type === ATTR_DATA && !a.named && a.nonResident) extents = extents.concat(attrRuns(g, a, r));
        extents.sort((a, b) => a.vcn - b.vcn);
        mft = new Mft(g, extents, Math.floor(extentBytes(g, extents) / g.recordSize));
      }
    }
    let vcn = 0;
    for (const e of extents) {
      if (e.vcn !== vcn) throw new Implausible("$MFT's extents overlap or leave a hole");
      if (e.lcn === null) throw new Implausible('$MFT has a sparse run');
      vcn += e.length;
    }
    if (vcn > g.clusterCount) throw new Implausible(`$MFT's runs cover ${vcn} clusters, more than the volume has`);
    const records = Math.floor(Math.min(dataSize, vcn * g.clusterSize) / g.recordSize);
    if (records < 16) throw new Implausible(`$MFT holds ${records} records`);
    return new Mft(g, extents, records);
  }

  /** Reads virtual MFT bytes [from, from+length) (within the mapped extents). */
  async readVirtual(from: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    const cs = this.g.clusterSize;
    for (const e of this.extents) {
      const eFrom = e.vcn * cs;
      const eTo = eFrom + e.length * cs;
      const a = Math.max(from, eFrom);
      const b = Math.min(from + length, eTo);
      if (a >= b) continue;
      (await this.g.p.read(e.lcn! * cs + (a - eFrom), b - a)).copy(out, a - from);
    }
    return out;
  }

  /** Raw record `n` (fixups not applied), or null past the MFT. */
  async readRecord(n: number): Promise<Buffer | null> {
    if (!(n >= 0 && n < this.records)) return null;
    return this.readVirtual(n * this.g.recordSize, this.g.recordSize);
  }

  /** Calls fn for each record in [from, to) in ascending order, reading the MFT in chunks. */
  async forEach(from: number, to: number, fn: (n: number, raw: Buffer) => void): Promise<void> {
    const rs = this.g.recordSize;
    const per = Math.max(1, Math.floor(CHUNK / rs));
    for (let n = from; n < to; n += per) {
      const k = Math.min(per, to - n);
      const buf = await this.readVirtual(n * rs, k * rs);
      for (let i = 0; i < k; i++) fn(n + i, buf.subarray(i * rs, (i + 1) * rs));
    }
  }

  /** Raw records for a sorted list of numbers, read in batches of nearby records. */
  async readMany(nums: number[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const rs = this.g.recordSize;
    const window = Math.max(1, Math.floor((1 << 20) / rs));
    for (let i = 0; i < nums.length;) {
      let j = i + 1;
      while (j < nums.length && nums[j] - nums[i] < window) j++;
      const lo = nums[i];
      const hi = Math.min(nums[j - 1] + 1, this.records);
      if (lo < this.records) {
        const buf = await this.readVirtual(lo * rs, (hi - lo) * rs);
        for (let k = i; k < j; k++) if (nums[k] < hi) out.set(nums[k], Buffer.from(buf.subarray((nums[k] - lo) * rs, (nums[k] - lo + 1) * rs)));
      }
      i = j;
    }
    return out;
  }
}

function extentBytes(g: Geometry, ex: Extent[]): number {
  return ex.reduce((n, e) => Math.max(n, (e.vcn + e.length) * g.clusterSize), 0);
}

export interface ListEntry {
  type: number;
  named: boolean;
  record: number;
}

/** The entries of an $ATTRIBUTE_LIST (resident, or non-resident of at most 256 KiB). */
export async function attrListEntries(g: Geometry, a: Attr, n: number): Promise<ListEntry[]> {
  let value: Buffer;
  if (!a.nonResident) value = residentValue(a);
  else {
    const size = Number(a.body.readBigUInt64LE(0x30));
    if (size > MAX_ATTR_LIST) throw new Implausible(`MFT record ${n}'s attribute list is ${size} bytes`);
    value = Buffer.alloc(size);
    for (const e of attrRuns(g, a, n)) {
      const at = e.vcn * g.clusterSize;
      if (at >= size) break;
      if (e.lcn === null) continue;
      (await g.p.read(e.lcn * g.clusterSize, Math.min(e.length * g.clusterSize, size - at))).copy(value, at);
    }
  }
  const out: ListEntry[] = [];
  for (let off = 0; off + 0x1a <= value.length;) {
    const len = value.readUInt16LE(off + 4);
    if (len < 0x1a || off + len > value.length) throw new Implausible(`MFT record ${n}'s attribute list has a malformed entry at ${off}`);
    out.push({ type: value.readUInt32LE(off), named: value[off + 6] !== 0, record: refRecord(value, off + 0x10) });
    off += len;
    if (out.length > MAX_ATTR_LIST / 0x1a) break;
  }
  return out;
}

/** Base record number of a (fixed-up) record: itself, or the base it extends. */
export function baseOf(rec: Buffer, n: number): number {
  const base = refRecord(rec, 0x20);
  return base === 0 ? n : base;
}

/** A file's attributes: those of its base record and of every extension record its attribute list names. */
export interface FileAttrs {
  records: number[];
  attrs: { n: number; a: Attr }[];
}

/**
 * Reads file `base`'s records through `load` (fixups applied, null when not in use or unreadable) and
 * collects every attribute. Extension records that claim another base are still included: reading more
 * is always safe.
 */
export async function fileAttrs(g: Geometry, base: number, load: (n: number) => Promise<Attr[] | null>): Promise<FileAttrs | null> {
  const attrs0 = await load(base);
  if (!attrs0) return null;
  const out: FileAttrs = { records: [base], attrs: attrs0.map((a) => ({ n: base, a })) };
  const list = attrs0.find((a) => a.type === ATTR_LIST);
  if (!list) return out;
  const ext = [...new Set((await attrListEntries(g, list, base)).map((e) => e.record))].filter((r) => r !== base);
  if (ext.length > MAX_EXTENSIONS) throw new Implausible(`MFT record ${base}'s attribute list names ${ext.length} records`);
  for (const r of ext) {
    const attrs = await load(r);
    if (!attrs) continue; // a list naming a free record: nothing of it is in use
    out.records.push(r);
    for (const a of attrs) if (a.type !== ATTR_LIST) out.attrs.push({ n: r, a });
  }
  return out;
}

/** Parent directory record numbers named by a file's $FILE_NAME attributes. */
export function parentsOf(f: FileAttrs): number[] {
  const out = new Set<number>();
  for (const { a } of f.attrs) {
    if (a.type !== ATTR_FILE_NAME || a.nonResident) continue;
    const v = residentValue(a);
    if (v.length >= 8) out.add(refRecord(v, 0));
  }
  return [...out];
}

/**
 * The $FILE_NAME keys of a resident directory index root's entries: copies of each child's $FILE_NAME,
 * whose access time ntfs-3g rewrites when the child is read.
 */
export function fileNameKeys(v: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (v.length < 0x20 || v.readUInt32LE(0) !== ATTR_FILE_NAME) return out;
  const node = 0x10;
  const end = Math.min(v.length, node + v.readUInt32LE(node + 4));
  for (let e = node + v.readUInt32LE(node); e + 0x10 <= end && out.length < 4096;) {
    const len = v.readUInt16LE(e + 8);
    const keyLen = v.readUInt16LE(e + 10);
    const flags = v.readUInt16LE(e + 12);
    if (flags & 2 || len < 0x10 || e + len > end) break; // the last entry carries no key
    if (keyLen >= 0x42 && 0x10 + keyLen <= len) out.push(v.subarray(e + 0x10, e + 0x10 + keyLen));
    e += len;
  }
  return out;
}
