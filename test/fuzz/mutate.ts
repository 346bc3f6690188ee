// The mutator: libFuzzer's byte-level mutations (bit flips, interesting values, arithmetic, block
// copy/insert/erase, truncation, splicing, dictionary tokens) plus one structure-aware rule that
// matters for disk images: most mutations land next to a non-zero byte, because on a freshly made
// filesystem the non-zero bytes are the metadata (superblocks, descriptors, boot sectors, MFT records)
// and the zeros are free space that no parser looks at.

/** A seeded PRNG (mulberry32): a run is reproducible from its seed. */
export class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

// Values that sit on the edges parsers get wrong: 0, ±1, powers of two, sign bits, all ones.
const INTERESTING_8 = [0, 1, 2, 0x7f, 0x80, 0x81, 0xe0, 0xf0, 0xff, 0x10, 0x20, 0x40, 9, 12, 16, 32, 64, 100];
const INTERESTING_16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x100, 0x200, 0x400, 0x1000, 512, 1024, 4096, 0xfff8, 0xef53, 0xaa55];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x100000, 0xfffffff, 0x0ffffff8, 65536, 1 << 24];

export interface MutateOptions {
  /** Tokens the target's format uses (magics, keywords), inserted or overwritten in place. */
  dictionary?: Buffer[];
  /** Other inputs of the same target, for splicing. */
  others?: Buffer[];
  /** Inputs never grow past this many bytes. */
  maxLength: number;
}

/** Offsets of non-zero 16-byte cells, sampled (inputs up to a few MiB). */
export function hotOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let o = 0; o < b.length; o += 16) {
    for (let k = o; k < Math.min(o + 16, b.length); k++) {
      if (b[k]) {
        out.push(o);
        break;
      }
    }
  }
  return out;
}

/** One to eight stacked mutations of `input` (which is not modified). */
export function mutate(input: Buffer, rng: Rng, opts: MutateOptions, hot?: number[]): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = 1 + (rng.chance(0.5) ? 0 : rng.int(8));
  for (let r = 0; r < rounds; r++) b = mutateOnce(b, rng, opts, hot);
  return b.length > opts.maxLength ? b.subarray(0, opts.maxLength) : b;
}

function offset(b: Buffer, rng: Rng, width: number, hot?: number[]): number {
  const limit = Math.max(1, b.length - width + 1);
  if (hot && hot.length && rng.chance(0.8)) return Math.min(limit - 1, rng.pick(hot) + rng.int(16));
  return rng.int(limit);
}

function mutateOnce(b: Buffer, rng: Rng, opts: MutateOptions, hot?: number[]): Buffer {
  if (b.length === 0) return Buffer.from([rng.int(256)]);
  switch (rng.int(13)) {
    case 0: {
      // flip one bit
      const o = offset(b, rng, 1, hot);
      b[o] ^= 1 << rng.int(8);
      return b;
    }
    case 1: {
      // random byte
      b[offset(b, rng, 1, hot)] = rng.int(256);
      return b;
    }
    case 2: {
      // interesting 8-bit value
      b[offset(b, rng, 1, hot)] = rng.pick(INTERESTING_8);
      return b;
    }
    case 3: {
      // interesting 16-bit value, either endianness
      if (b.length < 2) return b;
      const o = offset(b, rng, 2, hot);
      const v = rng.pick(INTERESTING_16);
      if (rng.chance(0.7)) b.writeUInt16LE(v, o);
      else b.writeUInt16BE(v, o);
      return b;
    }
    case 4: {
      // interesting 32-bit value
      if (b.length < 4) return b;
      const o = offset(b, rng, 4, hot);
      const v = rng.pick(INTERESTING_32) >>> 0;
      if (rng.chance(0.7)) b.writeUInt32LE(v, o);
      else b.writeUInt32BE(v, o);
      return b;
    }
    case 5: {
      // huge or negative 64-bit value (sizes and LBAs read with readBigUInt64LE)
      if (b.length < 8) return b;
      const o = offset(b, rng, 8, hot);
      b.writeBigUInt64LE(rng.pick([0xffffffffffffffffn, 0x8000000000000000n, 0x20000000000000n, 0x100000000n, BigInt(rng.int(1 << 30)) << 20n]), o);
      return b;
    }
    case 6: {
      // small arithmetic on an 8/16/32-bit field
      const width = rng.pick([1, 2, 4]);
      if (b.length < width) return b;
      const o = offset(b, rng, width, hot);
      const delta = (rng.int(35) + 1) * (rng.chance(0.5) ? 1 : -1);
      if (width === 1) b[o] = (b[o] + delta) & 0xff;
      else if (width === 2) b.writeUInt16LE((b.readUInt16LE(o) + delta) & 0xffff, o);
      else b.writeUInt32LE((b.readUInt32LE(o) + delta) >>> 0, o);
      return b;
    }
    case 7: {
      // copy a block over another place
      const len = 1 + rng.int(Math.min(64, b.length));
      const from = rng.int(b.length - len + 1);
      const to = offset(b, rng, len, hot);
      b.copy(b, to, from, from + len);
      return b;
    }
    case 8: {
      // insert random or repeated bytes
      if (b.length >= opts.maxLength) return b;
      const len = 1 + rng.int(32);
      const ins = rng.chance(0.5) ? Buffer.alloc(len, rng.int(256)) : Buffer.from(Array.from({ length: len }, () => rng.int(256)));
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 9: {
      // erase a block
      if (b.length < 2) return b;
      const len = 1 + rng.int(Math.min(128, b.length - 1));
      const at = rng.int(b.length - len + 1);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
    }
    case 10: {
      // truncate (cut short writes, torn files)
      return b.subarray(0, rng.int(b.length));
    }
    case 11: {
      // dictionary token, overwritten or inserted
      const dict = opts.dictionary ?? [];
      if (!dict.length) return b;
      const tok = rng.pick(dict);
      if (rng.chance(0.7) && b.length >= tok.length) {
        tok.copy(b, offset(b, rng, tok.length, hot));
        return b;
      }
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), tok, b.subarray(at)]);
    }
    default: {
      // splice with another input of the same target
      const others = opts.others ?? [];
      if (!others.length) return b;
      const o = rng.pick(others);
      if (!o.length) return b;
      const at = rng.int(Math.min(b.length, o.length));
      if (rng.chance(0.5)) return Buffer.concat([b.subarray(0, at), o.subarray(at)]);
      const len = 1 + rng.int(Math.min(256, o.length - at));
      const copy = Buffer.from(b);
      o.copy(copy, Math.min(at, Math.max(0, copy.length - len)), at, at + len);
      return copy;
    }
  }
}

/** Mutates the text of a JSON document at the value level: types swapped, numbers pushed to edges, keys dropped. */
export function mutateJson(value: unknown, rng: Rng, depth = 0): unknown {
  const leaf = (): unknown => rng.pick<unknown>([null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 'x', '', '../../etc/passwd', '"; touch /tmp/pwned; "', [], {}, '0'.repeat(64), 'z', 'f']);
  if (Array.isArray(value)) {
    const arr = value.slice();
    if (!arr.length || rng.chance(0.15)) return rng.chance(0.5) ? leaf() : [...arr, leaf()];
    const i = rng.int(arr.length);
    const op = rng.int(4);
    if (op === 0) arr.splice(i, 1);
    else if (op === 1) arr.splice(i, 0, arr[rng.int(arr.length)]);
    else arr[i] = mutateJson(arr[i], rng, depth + 1);
    if (op === 3) arr.reverse();
    return arr;
  }
  if (value && typeof value === 'object') {
    const o = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(o);
    if (!keys.length || rng.chance(0.05)) return leaf();
    const k = rng.pick(keys);
    const op = rng.int(5);
    if (op === 0) delete o[k];
    else if (op === 1) o[k] = leaf();
    else o[k] = mutateJson(o[k], rng, depth + 1);
    return o;
  }
  if (typeof value === 'number') return rng.pick([0, -value, value + 1, value - 1, value * 2 ** 20, value + 0.5, NaN, 2 ** 53 + 2, -1, value]);
  if (typeof value === 'string') return rng.chance(0.5) ? leaf() : value.slice(0, rng.int(value.length + 1)) + (rng.chance(0.3) ? String.fromCharCode(rng.int(0x3000)) : '');
  return leaf();
}
