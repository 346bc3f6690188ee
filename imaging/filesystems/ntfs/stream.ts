// One attribute of a file (its data, a named stream, a directory's index allocation) as a byte stream:
// a resident value, or the runs of every extent of a non-resident attribute (the extents may lie in
// several records, through the attribute list), with sparse runs read as zeros, bytes past the
// initialized size as zeros and LZNT1-compressed units decompressed. Every extent is checked to
// continue the one before it and every run to lie inside the volume (filesystems/ntfs/mft.ts attrRuns).
import { Implausible, residentValue, type Attr } from './used-blocks';
import { attrRuns, type Geometry } from './mft';
import { lznt1Decompress } from './lznt1';

/** The attribute flags (attribute header +0x0C). */
const FLAG_COMPRESSED = 0x00ff;
const FLAG_ENCRYPTED = 0x4000;
/** Windows' own limit for a file's size (256 TiB); anything larger is damage, and would lose precision. */
const MAX_SIZE = 2 ** 48;
/** Compressed attributes use units of 2^4 clusters, and only with clusters of at most 4 KiB. */
const CU_SHIFT = 4;
const MAX_COMPRESSED_CLUSTER = 4096;

export interface Run {
  vcn: number;
  /** null: a sparse run. */
  lcn: number | null;
  length: number;
}

export interface AttrStream {
  /** What it is, for messages: "MFT record 70's data". */
  what: string;
  size: number;
  initialized: number;
  /** A resident value. */
  value?: Buffer;
  /** A non-resident attribute's runs, in VCN order, contiguous from VCN 0 (they may end before the size). */
  runs: Run[];
  compressed: boolean;
  /** EFS-encrypted (non-resident): its clusters hold ciphertext. */
  encrypted: boolean;
  /** The last decompressed unit, for reads smaller than a unit. */
  unit?: { index: number; data: Buffer };
}

/** The name of an attribute ('' when unnamed). */
export function attrName(a: Attr, n: number): string {
  const len = a.body[9];
  if (!len) return '';
  const off = a.body.readUInt16LE(10);
  if (off + 2 * len > a.body.length) throw new Implausible(`MFT record ${n} has an attribute whose name lies outside it`);
  return a.body.toString('utf16le', off, off + 2 * len);
}

function size64(b: Buffer, off: number, what: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(MAX_SIZE)) throw new Implausible(`${what} claims ${v} bytes`);
  return Number(v);
}

/** The stream of attribute `type` named `name` among a file's attributes, or null when it has none. */
export function collectStream(g: Geometry, attrs: { n: number; a: Attr }[], type: number, name: string, what: string): AttrStream | null {
  const parts = attrs.filter(({ n, a }) => a.type === type && attrName(a, n) === name);
  if (!parts.length) return null;
  const resident = parts.filter(({ a }) => !a.nonResident);
  if (resident.length) {
    if (parts.length > 1) throw new Implausible(`${what} is stored twice`);
    const value = residentValue(resident[0].a);
    return { what, size: value.length, initialized: value.length, value, runs: [], compressed: false, encrypted: false };
  }
  const lowest = ({ a }: { a: Attr }) => Number(a.body.readBigUInt64LE(0x10));
  parts.sort((x, y) => lowest(x) - lowest(y));
  const first = parts[0].a.body;
  if (lowest(parts[0]) !== 0) throw new Implausible(`${what} has no extent starting at its first cluster`);
  const flags = first.readUInt16LE(0x0c);
  const size = size64(first, 0x30, what);
  const initialized = Math.min(size, size64(first, 0x38, what));
  const compressed = (flags & FLAG_COMPRESSED) !== 0;
  if (compressed && (first[0x22] !== CU_SHIFT || g.clusterSize > MAX_COMPRESSED_CLUSTER)) {
    throw new Implausible(`${what} is compressed in units of 2^${first[0x22]} ${g.clusterSize}-byte clusters, which NTFS does not write`);
  }
  const runs: Run[] = [];
  let vcn = 0;
  for (const { n, a } of parts) {
    if (lowest({ a }) !== vcn) throw new Implausible(`${what}'s extents overlap or leave a hole at cluster ${vcn}`);
    for (const e of attrRuns(g, a, n)) {
      runs.push(e);
      vcn = e.vcn + e.length;
    }
    vcn = Math.max(vcn, Number(a.body.readBigInt64LE(0x18)) + 1);
  }
  return { what, size, initialized, runs, compressed, encrypted: (flags & FLAG_ENCRYPTED) !== 0 };
}

/** Index of the run holding `vcn` (or the last run before it). */
function findRun(runs: Run[], vcn: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (runs[mid].vcn <= vcn) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Bytes [pos, pos+len) of a stream, clipped to its size. */
export async function readStream(g: Geometry, s: AttrStream, pos: number, len: number): Promise<Buffer> {
  const end = Math.min(pos + len, s.size);
  if (!(end > pos)) return Buffer.alloc(0);
  if (s.value) return Buffer.from(s.value.subarray(pos, end));
  const out = Buffer.alloc(end - pos);
  const dataEnd = Math.min(end, s.initialized);
  if (dataEnd > pos) await (s.compressed ? readCompressed : readPlain)(g, s, pos, dataEnd, out);
  return out;
}

/** Clusters [from, to) of a stream's runs as pieces (lcn null: sparse); throws where no run covers them. */
function pieces(s: AttrStream, from: number, to: number): { lcn: number | null; count: number }[] {
  const out: { lcn: number | null; count: number }[] = [];
  for (let v = from, i = findRun(s.runs, from); v < to; i++) {
    const r = s.runs[i];
    if (!r || r.vcn > v || r.vcn + r.length <= v) throw new Implausible(`${s.what}'s runs end before cluster ${v}, inside its ${s.size} bytes`);
    const count = Math.min(r.vcn + r.length, to) - v;
    out.push({ lcn: r.lcn === null ? null : r.lcn + (v - r.vcn), count });
    v += count;
  }
  return out;
}

async function readPlain(g: Geometry, s: AttrStream, from: number, to: number, out: Buffer): Promise<void> {
  const cs = g.clusterSize;
  let at = from;
  for (const pc of pieces(s, Math.floor(from / cs), Math.ceil(to / cs))) {
    const pieceEnd = Math.min(to, (Math.floor(at / cs) + pc.count) * cs);
    if (pc.lcn !== null) (await g.p.read(pc.lcn * cs + (at % cs), pieceEnd - at)).copy(out, at - from);
    at = pieceEnd;
  }
}

async function readCompressed(g: Geometry, s: AttrStream, from: number, to: number, out: Buffer): Promise<void> {
  const unitBytes = g.clusterSize << CU_SHIFT;
  for (let u = Math.floor(from / unitBytes); u * unitBytes < to; u++) {
    const data = await readUnit(g, s, u);
    const a = Math.max(from, u * unitBytes);
    const b = Math.min(to, (u + 1) * unitBytes);
    data.copy(out, a - from, a - u * unitBytes, b - u * unitBytes);
  }
}

/**
 * Compression unit `u`: all sparse reads as zeros; all allocated is stored as it is; allocated clusters
 * followed by sparse ones hold LZNT1 data (the unit compressed into fewer clusters).
 */
async function readUnit(g: Geometry, s: AttrStream, u: number): Promise<Buffer> {
  if (s.unit?.index === u) return s.unit.data;
  const cs = g.clusterSize;
  const n = 1 << CU_SHIFT;
  const ps = pieces(s, u * n, (u + 1) * n);
  const data = Buffer.alloc(n * cs);
  const allocated = ps.filter((pc) => pc.lcn !== null);
  const clusters = allocated.reduce((k, pc) => k + pc.count, 0);
  if (clusters > 0) {
    const firstHole = ps.findIndex((pc) => pc.lcn === null);
    if (firstHole >= 0 && ps.slice(firstHole).some((pc) => pc.lcn !== null)) throw new Implausible(`${s.what}'s compression unit ${u} has data after a hole`);
    const raw = Buffer.concat(await Promise.all(allocated.map((pc) => g.p.read(pc.lcn! * cs, pc.count * cs))));
    if (clusters === n) raw.copy(data);
    else lznt1Decompress(raw, data, `${s.what}, compression unit ${u}`);
  }
  s.unit = { index: u, data };
  return data;
}
