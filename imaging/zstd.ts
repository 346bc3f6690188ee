// One zstd codec for the whole engine: node:zlib's native zstd where the runtime has it (Node >= 22.15),
// else the portable WASM build from `zstd-codec`. Both produce and read standard, independent zstd
// frames (RFC 8878) that the `zstd` CLI decompresses, so repositories do not depend on which was used.
import * as zlib from 'zlib';
import { DevsnapError } from './errors';

export interface ZstdCodec {
  readonly name: string;
  compress(raw: Uint8Array, level: number): Buffer;
  /** Throws DevsnapError DAMAGED for a frame that does not decompress (to `rawLength` bytes, with the WASM codec). */
  decompress(frame: Uint8Array, rawLength: number): Buffer;
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
    compress: (raw, level) => z.zstdCompressSync!(raw, { params: { [levelKey]: level } }),
    decompress: (frame) => {
      try {
        return z.zstdDecompressSync!(frame);
      } catch {
        throw corrupt();
      }
    },
  };
}

let wasm: Promise<ZstdCodec> | null = null;
function wasmCodec(): Promise<ZstdCodec> {
  wasm ??= new Promise((resolve) => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { ZstdCodec } = require('zstd-codec');
    ZstdCodec.run((z: { Simple: new () => { compress(d: Uint8Array, l: number): Uint8Array | null; decompress(d: Uint8Array): Uint8Array | null } }) => {
      const simple = new z.Simple();
      resolve({
        name: 'zstd-codec (wasm)',
        compress(raw, level) {
          const out = simple.compress(raw, level);
          if (!out) throw new Error('zstd compression failed');
          return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        },
        decompress(frame, rawLength) {
          let out: Uint8Array | null;
          try {
            out = simple.decompress(frame);
          } catch {
            throw corrupt();
          }
          if (!out || out.byteLength !== rawLength) throw corrupt(out ? `it decompresses to ${out.byteLength} bytes, not ${rawLength}` : undefined);
          return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        },
      });
    });
  });
  return wasm;
}

export async function loadZstd(preferWasm = process.env.DEVSNAP_ZSTD === 'wasm'): Promise<ZstdCodec> {
  return (!preferWasm && nativeCodec()) || wasmCodec();
}
