// Shared helpers for the filesystem readers: a used-block bitmap over a whole partition and small
// formatting helpers for labels and ids.

import type { UsedBlocks } from './types';

/** One bit per `blockSize` bytes of a partition (LSB first), as UsedBlocks.bitmap expects. */
export class BlockBitmap {
  readonly blocks: number;
  readonly bits: Uint8Array;

  constructor(
    readonly blockSize: number,
    readonly partitionSize: number,
  ) {
    this.blocks = Math.ceil(partitionSize / blockSize);
    this.bits = new Uint8Array(Math.ceil(this.blocks / 8));
  }

  /** Marks blocks [first, first+count) used, clipped to the partition. */
  setRange(first: number, count: number): void {
    const end = Math.min(first + count, this.blocks);
    let i = Math.max(0, first);
    while (i < end && i & 7) this.bits[i >> 3] |= 1 << (i++ & 7);
    while (i + 8 <= end) {
      this.bits[i >> 3] = 0xff;
      i += 8;
    }
    while (i < end) this.bits[i >> 3] |= 1 << (i++ & 7);
  }

  /** Marks every block touching bytes [start, end) used. */
  setBytes(start: number, end: number): void {
    if (end <= start) return;
    const first = Math.floor(start / this.blockSize);
    this.setRange(first, Math.ceil(end / this.blockSize) - first);
  }

  /** Copies `count` bits from an on-disk LSB-first bitmap into blocks [first, first+count). */
  orBits(src: Uint8Array, first: number, count: number): void {
    const n = Math.min(count, this.blocks - first, src.length * 8);
    if ((first & 7) === 0) {
      const whole = n >> 3;
      for (let k = 0; k < whole; k++) this.bits[(first >> 3) + k] |= src[k];
      for (let k = whole * 8; k < n; k++) if (src[k >> 3] & (1 << (k & 7))) this.set(first + k);
    } else {
      for (let k = 0; k < n; k++) if (src[k >> 3] & (1 << (k & 7))) this.set(first + k);
    }
  }

  set(i: number): void {
    if (i >= 0 && i < this.blocks) this.bits[i >> 3] |= 1 << (i & 7);
  }

  isSet(i: number): boolean {
    return (this.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  count(): number {
    let n = 0;
    for (const b of this.bits) n += POPCOUNT[b];
    return n;
  }

  result(fs: UsedBlocks['fs'], label?: string, uuid?: string): UsedBlocks {
    const out: UsedBlocks = { fs, blockSize: this.blockSize, usedBytes: this.count() * this.blockSize, bitmap: this.bits };
    if (label) out.label = label;
    if (uuid) out.uuid = uuid;
    return out;
  }
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  return n;
});

/** Number of set bits in the first `bitCount` bits of an LSB-first bitmap. */
export function countBits(buf: Uint8Array, bitCount: number): number {
  let n = 0;
  const whole = bitCount >> 3;
  for (let k = 0; k < whole; k++) n += POPCOUNT[buf[k]];
  for (let k = whole * 8; k < bitCount; k++) if (buf[k >> 3] & (1 << (k & 7))) n++;
  return n;
}

/** A NUL/space-padded on-disk string (labels), trimmed; undefined when empty. */
export function cString(buf: Buffer, encoding: BufferEncoding = 'latin1'): string | undefined {
  const nul = encoding === 'utf16le' ? findUtf16Nul(buf) : buf.indexOf(0);
  const s = buf
    .subarray(0, nul < 0 ? buf.length : nul)
    .toString(encoding)
    .trimEnd();
  return s || undefined;
}

function findUtf16Nul(buf: Buffer): number {
  for (let i = 0; i + 1 < buf.length; i += 2) if (buf[i] === 0 && buf[i + 1] === 0) return i;
  return -1;
}

/** A 16-byte GUID in its mixed-endian on-disk form (GPT, NTFS) → lowercase canonical text. */
export function guidString(b: Buffer): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = Buffer.from(b.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/** A 16-byte big-endian UUID (ext's s_uuid) → lowercase canonical text. */
export function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
