// One zstd codec for the whole engine: node:zlib's native zstd where the runtime has it (Node >= 22.15),
// else the portable WASM build from `zstd-codec`. Both produce and read standard, independent zstd
// frames (RFC 8878) that the `zstd` CLI decompresses, so repositories do not depend on which was used.
import * as zlib from 'zlib';
import { DevsnapError } from '../core/errors';

export interface ZstdCodec {
  readonly name: string;
  /** The frame: in `into` (which may be `raw`'s own memory) when it fits there, else in a new buffer. */
  compress(raw: Uint8Array, level: number, into?: Uint8Array): Buffer;
  /**
   * The raw bytes: in `into` when they fit there, else in a new buffer. Throws DevsnapError DAMAGED
   * for a frame that does not decompress (to `rawLength` bytes, with the WASM codec).
   */
  decompress(frame: Uint8Array, rawLength: number, into?: Uint8Array): Buffer;
}

/** `out` copied into `into` when it fits there (the caller's reusable memory), else `out` itself. */
function placed(out: Uint8Array, into?: Uint8Array): Buffer {
  if (!into || out.byteLength > into.byteLength) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  into.set(out);
  return Buffer.from(into.buffer, into.byteOffset, out.byteLength);
}

/** A corrupt frame, whatever the codec threw (the WASM build throws strings such as "abort(OOM)" for hostile sizes). */
function corrupt(detail = 'it does not decompress'): DevsnapError {
  return new DevsnapError('DAMAGED', `A zstd frame is corrupt: ${detail}.`, 'Run `devsnap verify` to see which snapshots are affected.');
}

type NativeZlib = typeof zlib & {
  zstdCompressSync?: (b: Uint8Array, o?: object) => Buffer;
  zstdDecompressSync?: (b: Uint8Array, o?: object) => Buffer;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number; ZSTD_c_checksumFlag?: number };
};

function nativeCodec(): ZstdCodec | null {
  const z = zlib as NativeZlib;
  if (!z.zstdCompressSync || !z.zstdDecompressSync || z.constants.ZSTD_c_compressionLevel === undefined) return null;
  const levelKey = z.constants.ZSTD_c_compressionLevel;
  return {
    name: 'node:zlib',
    compress: (raw, level, into) => placed(z.zstdCompressSync!(raw, { params: { [levelKey]: level } }), into),
    decompress: (frame, _rawLength, into) => {
      let out: Buffer;
      try {
        out = z.zstdDecompressSync!(frame);
      } catch {
        throw corrupt();
      }
      return placed(out, into);
    },
  };
}

// zstd-codec's embind API, used below its `Simple` wrapper: Simple copies every input into a new
// C++ vector and every output into a new JS array, per chunk, which the worker then had to collect.
interface VectorU8 {
  resize(n: number, fill: number): void;
  size(): number;
}
interface Binding {
  ZstdCodec: new () => { compressBound(n: number): number; compress(dst: VectorU8, src: VectorU8, level: number): number; decompress(dst: VectorU8, src: VectorU8): number };
  VectorU8: new () => VectorU8;
  toTypedArrayView(v: VectorU8): Uint8Array;
}

let wasm: Promise<ZstdCodec> | null = null;
function wasmCodec(): Promise<ZstdCodec> {
  wasm ??= new Promise((resolve) => {
    // zstd-codec's loader, without its wrappers (lib/zstd-codec.js); it has no types to import.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { run } = require('zstd-codec/lib/module.js');
    run((b: Binding) => {
      // One input and one output vector for the worker's lifetime, in the module's fixed 16 MiB of
      // WASM memory: bytes are copied in and out through views of them, nothing is allocated per chunk.
      const codec = new b.ZstdCodec();
      const src = new b.VectorU8();
      const dst = new b.VectorU8();
      const load = (bytes: Uint8Array) => {
        src.resize(bytes.byteLength, 0);
        b.toTypedArrayView(src).set(bytes);
      };
      const room = (n: number) => {
        if (dst.size() < n) dst.resize(n, 0); // never shrunk: compress and decompress read its size as the room they have
      };
      const out = (n: number, into?: Uint8Array) => placed(n <= (into?.byteLength ?? -1) ? b.toTypedArrayView(dst).subarray(0, n) : b.toTypedArrayView(dst).slice(0, n), into);
      resolve({
        name: 'zstd-codec (wasm)',
        compress(raw, level, into) {
          load(raw);
          room(codec.compressBound(raw.byteLength));
          const n = codec.compress(dst, src, level);
          if (n < 0) throw new Error('zstd compression failed');
          return out(n, into);
        },
        decompress(frame, rawLength, into) {
          let n: number;
          try {
            load(frame);
            // Room for more than expected (at least a byte): a frame holding more then says how much.
            room(rawLength + 1);
            n = codec.decompress(dst, src);
          } catch {
            throw corrupt(); // the WASM build throws strings such as "abort(OOM)" for hostile sizes
          }
          if (n !== rawLength) throw corrupt(n >= 0 ? `it decompresses to ${n} bytes, not ${rawLength}` : undefined);
          return out(n, into);
        },
      });
    });
  });
  return wasm;
}

export async function loadZstd(preferWasm = process.env.DEVSNAP_ZSTD === 'wasm'): Promise<ZstdCodec> {
  return (!preferWasm && nativeCodec()) || wasmCodec();
}
