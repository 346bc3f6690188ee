// An area's extent map held compactly. A 1 TB disk's manifest lists ~1 million extents; as JSON
// arrays of numbers and hex strings they took ~130 bytes each in the JS heap (a 44 MB manifest
// parsed into ~100 MB of objects), here 21 bytes and the 32 bytes of each chunk id, outside the heap.
// Extents are read as the tuples of FORMAT.md (`[offset, length, ref]`, `[offset, length, patch,
// base]`), made when asked for; JSON.stringify writes them as those tuples.

/** A chunk id (hex), 'z' for an all-zero range (stored as a marker), 'f' for free space (not imaged). */
export type ExtentRef = string;
export const ZERO = 'z';
export const FREE = 'f';

/**
 * [offset relative to the area's start, length, ref], or [offset, length, patch, base]: the bytes of
 * chunk `base` with the filesystem blocks that changed since it was stored replaced by those in chunk
 * `patch` (repo/patch.ts). A patch always names a stored base (never another patch): one level only.
 * Zero and free runs are merged.
 */
export type Extent = [number, number, ExtentRef] | [number, number, string, string];

/** What an extent holds: free space (not imaged), zeros, one chunk, or a patch over a base chunk. */
export const Kind = { Free: 0, Zero: 1, Chunk: 2, Patch: 3 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** Bytes of a chunk id. */
export const ID_BYTES = 32;

export class Extents implements Iterable<Extent> {
  /** Use ExtentsBuilder or Extents.from. */
  constructor(
    private readonly offs: Float64Array,
    private readonly lens: Float64Array,
    private readonly kinds: Uint8Array,
    /** Per extent, the index of its first id in `ids` (a patch has two: the patch, then its base). */
    private readonly refs: Uint32Array,
    private readonly ids: Buffer,
    readonly length: number,
  ) {}

  /** From well-formed tuples (the manifest checks tuples read as plain JSON first); throws on one that is not. */
  static from(list: Iterable<Extent>): Extents {
    const b = new ExtentsBuilder();
    for (const e of list) if (!b.pushTuple(e)) throw new Error(`not an extent: ${JSON.stringify(e)}`);
    return b.finish();
  }

  offset(i: number): number {
    return this.offs[i];
  }

  size(i: number): number {
    return this.lens[i];
  }

  kind(i: number): Kind {
    return this.kinds[i] as Kind;
  }

  /** The chunk id of a chunk extent, or the patch's of a patch. */
  id(i: number): string {
    return this.hex(this.refs[i]);
  }

  /** The base chunk id of a patch. */
  base(i: number): string {
    return this.hex(this.refs[i] + 1);
  }

  /**
   * The ids as bytes, 32 each: a chunk extent's (or a patch's) at idAt(i), a patch's base at
   * baseAt(i). For lookups by the million (check, stats) without making hex strings.
   */
  get idBytes(): Buffer {
    return this.ids;
  }

  idAt(i: number): number {
    return this.refs[i] * ID_BYTES;
  }

  baseAt(i: number): number {
    return (this.refs[i] + 1) * ID_BYTES;
  }

  /** Where extent i's ids are in idBytes: none (free, zero), its chunk's, or a patch's and its base's. */
  idsAt(i: number): number[] {
    const k = this.kinds[i];
    if (k === Kind.Chunk) return [this.idAt(i)];
    return k === Kind.Patch ? [this.idAt(i), this.baseAt(i)] : [];
  }

  at(i: number): Extent {
    const k = this.kinds[i];
    const off = this.offs[i];
    const len = this.lens[i];
    if (k === Kind.Free) return [off, len, 'f'];
    if (k === Kind.Zero) return [off, len, 'z'];
    if (k === Kind.Chunk) return [off, len, this.id(i)];
    return [off, len, this.id(i), this.base(i)];
  }

  *[Symbol.iterator](): Iterator<Extent> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }

  /** Bytes of the extents not of the given kinds (e.g. all but free space). */
  bytesExcept(...kinds: Kind[]): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) if (!kinds.includes(this.kinds[i] as Kind)) n += this.lens[i];
    return n;
  }

  filter(keep: (e: Extent) => boolean): Extents {
    const b = new ExtentsBuilder();
    for (const e of this) if (keep(e)) b.pushTuple(e);
    return b.finish();
  }

  /** As JSON.stringify writes extents: the tuples. */
  toJSON(): Extent[] {
    return [...this];
  }

  /** The length of jsonBytes(). */
  jsonLength(): number {
    let size = 2 + Math.max(0, this.length - 1); // [ ] and the commas between extents
    for (let i = 0; i < this.length; i++) {
      const k = this.kinds[i];
      size += 4 + digits(this.offs[i]) + digits(this.lens[i]); // [ , , ] and the numbers
      size += k === Kind.Free || k === Kind.Zero ? 3 : k === Kind.Chunk ? 66 : 133;
    }
    return size;
  }

  /**
   * Exactly the bytes of JSON.stringify(this.toJSON()), written without making the tuples: into
   * `out` at `at` (room for jsonLength() bytes), or into a new buffer.
   */
  jsonBytes(out?: Buffer, at = 0): Buffer {
    const size = this.jsonLength();
    if (!out) out = Buffer.allocUnsafe(size);
    let p = at;
    out[p++] = 0x5b;
    for (let i = 0; i < this.length; i++) {
      if (i) out[p++] = 0x2c;
      out[p++] = 0x5b;
      p = writeNumber(out, p, this.offs[i]);
      out[p++] = 0x2c;
      p = writeNumber(out, p, this.lens[i]);
      out[p++] = 0x2c;
      const k = this.kinds[i];
      if (k === Kind.Free || k === Kind.Zero) {
        out[p++] = 0x22;
        out[p++] = k === Kind.Free ? 0x66 : 0x7a;
        out[p++] = 0x22;
      } else {
        p = this.writeHex(out, p, this.refs[i]);
        if (k === Kind.Patch) {
          out[p++] = 0x2c;
          p = this.writeHex(out, p, this.refs[i] + 1);
        }
      }
      out[p++] = 0x5d;
    }
    out[p++] = 0x5d;
    if (p - at !== size) throw new Error(`extents JSON: wrote ${p - at} bytes of ${size}`);
    return out;
  }

  private hex(ref: number): string {
    return this.ids.toString('hex', ref * ID_BYTES, (ref + 1) * ID_BYTES);
  }

  private writeHex(out: Buffer, p: number, ref: number): number {
    out[p++] = 0x22;
    for (let k = ref * ID_BYTES, end = k + ID_BYTES; k < end; k++) {
      out[p++] = HEX_DIGITS[this.ids[k] >> 4];
      out[p++] = HEX_DIGITS[this.ids[k] & 15];
    }
    out[p++] = 0x22;
    return p;
  }
}

const HEX_DIGITS = Buffer.from('0123456789abcdef');

/**
 * Numbers as JSON.stringify writes them. Extents hold whole numbers (safe integers print in full,
 * digit by digit here); anything else (NaN, a fraction: never in a valid manifest) goes through String.
 */
function digits(n: number): number {
  if (!Number.isSafeInteger(n)) return String(n).length;
  let d = n < 0 ? 2 : 1;
  for (let a = Math.abs(n); a >= 10; a = Math.floor(a / 10)) d++;
  return d;
}

function writeNumber(out: Buffer, p: number, n: number): number {
  if (!Number.isSafeInteger(n)) return p + out.write(String(n), p, 'latin1');
  if (n < 0) {
    out[p++] = 0x2d;
    n = -n;
  }
  const end = p + digits(n);
  for (let q = end - 1; q >= p; q--) {
    out[q] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

const CHUNK_ID = /^[0-9a-f]{64}$/;
/** A chunk id as manifests name it: 64 lowercase hex digits. */
export const isChunkId = (x: unknown): x is string => typeof x === 'string' && CHUNK_ID.test(x);

/**
 * Chunk ids, 32 bytes each, appended to a buffer that grows as needed and numbered in order: the
 * ids of an ExtentsBuilder, and the new ids of an incremental's cells.
 */
export class IdStore {
  private buf: Buffer;
  private n = 0;

  constructor(capacity = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(4, capacity) * ID_BYTES);
  }

  get count(): number {
    return this.n;
  }

  /** The buffer the ids are in (id k at k * 32); replaced as the store grows. */
  get bytes(): Buffer {
    return this.buf;
  }

  /** Adds a lowercase hex id; its number. */
  add(hex: string): number {
    if (!isChunkId(hex)) throw new Error(`not a chunk id: ${hex}`);
    const k = this.slot();
    this.buf.write(hex, k * ID_BYTES, ID_BYTES, 'hex');
    return k;
  }

  /** Adds the id that is the 32 bytes at src[at…]; its number. */
  addBytes(src: Buffer, at: number): number {
    const k = this.slot();
    src.copy(this.buf, k * ID_BYTES, at, at + ID_BYTES);
    return k;
  }

  /** Adds the id whose 64 lowercase hex digits are at src[at…]; false (nothing added) when they are not. */
  addHexDigits(src: Uint8Array, at: number): boolean {
    for (let c = 0; c < 2 * ID_BYTES; c++) if (HEX[src[at + c]] > 15) return false;
    const to = this.slot() * ID_BYTES;
    for (let k = 0; k < ID_BYTES; k++) this.buf[to + k] = (HEX[src[at + 2 * k]] << 4) | HEX[src[at + 2 * k + 1]];
    return true;
  }

  /** A copy of just the ids (for a finished map that keeps them). */
  trimmed(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.n * ID_BYTES));
  }

  private slot(): number {
    if ((this.n + 1) * ID_BYTES > this.buf.length) {
      const grown = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(grown);
      this.buf = grown;
    }
    return this.n++;
  }
}

/** Builds Extents one extent at a time (its arrays grow as needed). */
export class ExtentsBuilder {
  private offs: Float64Array;
  private lens: Float64Array;
  private kinds: Uint8Array;
  private refs: Uint32Array;
  private readonly ids: IdStore;
  private n = 0;

  constructor(capacity = 64) {
    const c = Math.max(4, capacity);
    this.offs = new Float64Array(c);
    this.lens = new Float64Array(c);
    this.kinds = new Uint8Array(c);
    this.refs = new Uint32Array(c);
    this.ids = new IdStore(c);
  }

  /** Adds an extent; a free or zero run right after one of its kind is merged into it. */
  pushMerged(off: number, len: number, kind: typeof Kind.Free | typeof Kind.Zero): void {
    const last = this.n - 1;
    if (last >= 0 && this.kinds[last] === kind && this.offs[last] + this.lens[last] === off) this.lens[last] += len;
    else this.push(off, len, kind);
  }

  /** Adds a free or zero run, or a chunk (`id`) or patch (`id` over `base`) given as hex ids. */
  push(off: number, len: number, kind: Kind, id?: string, base?: string): void {
    const i = this.slot(off, len, kind);
    if (kind === Kind.Chunk || kind === Kind.Patch) {
      this.refs[i] = this.ids.add(id!);
      if (kind === Kind.Patch) this.ids.add(base!);
    }
  }

  /** Adds a tuple; false when its ref is not "f", "z" or a chunk id. */
  pushTuple(e: Extent): boolean {
    if (e.length === 4) this.push(e[0], e[1], Kind.Patch, e[2], e[3]);
    else if (e[2] === 'f') this.push(e[0], e[1], Kind.Free);
    else if (e[2] === 'z') this.push(e[0], e[1], Kind.Zero);
    else if (isChunkId(e[2])) this.push(e[0], e[1], Kind.Chunk, e[2]);
    else return false;
    return true;
  }

  /**
   * Adds an extent whose ids are the hex digits at `src[at...]` (64 each; a patch's base follows at
   * `baseAt`), as a parser finds them. False when one is not 64 lowercase hex digits.
   */
  pushHexFrom(off: number, len: number, kind: Kind, src: Uint8Array, at: number, baseAt = -1): boolean {
    const i = this.slot(off, len, kind);
    if (kind !== Kind.Chunk && kind !== Kind.Patch) return true;
    this.refs[i] = this.ids.count;
    return this.ids.addHexDigits(src, at) && (kind === Kind.Chunk || this.ids.addHexDigits(src, baseAt));
  }

  /** Adds a chunk or patch whose ids are the 32 bytes at src[at…] (and a patch's base at baseSrc[baseAt…]). */
  pushIds(off: number, len: number, kind: Kind, src: Buffer, at: number, baseSrc: Buffer, baseAt: number): void {
    const i = this.slot(off, len, kind);
    if (kind !== Kind.Chunk && kind !== Kind.Patch) return;
    this.refs[i] = this.ids.addBytes(src, at);
    if (kind === Kind.Patch) this.ids.addBytes(baseSrc, baseAt);
  }

  finish(): Extents {
    // Trimmed copies: a builder sized for growth would keep up to twice the memory for the snapshot's life.
    const n = this.n;
    return new Extents(this.offs.slice(0, n), this.lens.slice(0, n), this.kinds.slice(0, n), this.refs.slice(0, n), this.ids.trimmed(), n);
  }

  private slot(off: number, len: number, kind: Kind): number {
    if (this.n === this.offs.length) this.grow();
    const i = this.n++;
    this.offs[i] = off;
    this.lens[i] = len;
    this.kinds[i] = kind;
    return i;
  }

  private grow(): void {
    const c = this.offs.length * 2;
    const offs = new Float64Array(c);
    offs.set(this.offs);
    const lens = new Float64Array(c);
    lens.set(this.lens);
    const kinds = new Uint8Array(c);
    kinds.set(this.kinds);
    const refs = new Uint32Array(c);
    refs.set(this.refs);
    [this.offs, this.lens, this.kinds, this.refs] = [offs, lens, kinds, refs];
  }
}

/** Lowercase hex digit values by character code; 255 for anything else. */
const HEX = new Uint8Array(256).fill(255);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x61 + c] = 10 + c;
