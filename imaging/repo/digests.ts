// Block digests: a 64-bit hash of every 4 KiB block of a chunk, stored after the chunk's zstd frame as
// a zstd skippable frame (zstd and every reader of the frame skip it). An incremental compares the
// blocks it re-reads with these instead of reading the parent's chunk back from the repository and
// decompressing it (a changed cell cost ~0.5 MB of repository reads and 1 MiB of decompression to find a
// 4 KiB change). Chunks without them (older repositories, patches) are compared by their bytes.
//
// Layout (integers little-endian), after the zstd frame of a chunk of L raw bytes:
//   magic 0x184D2A5E u32 | payload length u32 | "DSDG" | block size u32 (4096) | count u32 (ceil(L/4096)) |
//   count × xxh64 (seed 0) of each block (the last one may be shorter) | check: the first 8 bytes of
//   SHA-256(chunk id bytes | every payload byte before it)
// The check ties the digests to their chunk: damaged or misplaced digests are not used (the bytes are
// compared instead) and `verify` reports them.
import * as crypto from 'crypto';
import xxhash from 'xxhash-wasm';

export const DIGEST_BLOCK = 4096;
const SKIPPABLE = 0x184d2a5e; // the pack's own chunk list uses 0x184D2A5D
const TAG = Buffer.from('DSDG');

type H64 = (b: Uint8Array, seed?: bigint) => bigint;
let h64: Promise<H64> | null = null;
/** The hash, loaded once per thread (a small WASM module). */
export function loadDigests(): Promise<H64> {
  h64 ??= xxhash().then((x) => x.h64Raw);
  return h64;
}

/** Bytes of the digest frame of a chunk of `rawLength` bytes. */
export function digestFrameLength(rawLength: number): number {
  return 8 + 12 + 8 * Math.ceil(rawLength / DIGEST_BLOCK) + 8;
}

function check(id: string, payload: Buffer): Buffer {
  return crypto.createHash('sha256').update(Buffer.from(id, 'hex')).update(payload).digest().subarray(0, 8);
}

/** The digest of each DIGEST_BLOCK of `raw`, 8 bytes each. */
export function blockDigests(hash: H64, raw: Uint8Array): Buffer {
  const n = Math.ceil(raw.byteLength / DIGEST_BLOCK);
  const out = Buffer.allocUnsafe(8 * n);
  for (let k = 0; k < n; k++) out.writeBigUInt64LE(hash(raw.subarray(k * DIGEST_BLOCK, (k + 1) * DIGEST_BLOCK)), 8 * k);
  return out;
}

/** The skippable frame carrying `raw`'s digests, for chunk `id`. */
export function digestFrame(hash: H64, id: string, raw: Uint8Array): Buffer {
  const digests = blockDigests(hash, raw);
  const out = Buffer.allocUnsafe(digestFrameLength(raw.byteLength));
  out.writeUInt32LE(SKIPPABLE, 0);
  out.writeUInt32LE(out.length - 8, 4);
  TAG.copy(out, 8);
  out.writeUInt32LE(DIGEST_BLOCK, 12);
  out.writeUInt32LE(digests.length / 8, 16);
  digests.copy(out, 20);
  check(id, out.subarray(8, 20 + digests.length)).copy(out, 20 + digests.length);
  return out;
}

/**
 * The digests at the end of a stored frame (or of just its last digestFrameLength bytes):
 * 'none' when it carries none, 'damaged' when they are there but do not check out.
 */
export function digestsOf(tail: Buffer, id: string, rawLength: number): Buffer | 'none' | 'damaged' {
  const len = digestFrameLength(rawLength);
  if (tail.length < len) return 'none';
  const f = tail.subarray(tail.length - len);
  if (f.readUInt32LE(0) !== SKIPPABLE || f.readUInt32LE(4) !== len - 8 || !f.subarray(8, 12).equals(TAG)) return 'none';
  const n = Math.ceil(rawLength / DIGEST_BLOCK);
  if (f.readUInt32LE(12) !== DIGEST_BLOCK || f.readUInt32LE(16) !== n) return 'damaged';
  if (!check(id, f.subarray(8, 20 + 8 * n)).equals(f.subarray(20 + 8 * n))) return 'damaged';
  return f.subarray(20, 20 + 8 * n);
}

/** The DIGEST_BLOCKs of `cell` whose digest is not the one in `digests` (the blocks that changed). */
export function changedBlocks(hash: H64, digests: Buffer, cell: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let k = 0; k * DIGEST_BLOCK < cell.length; k++) {
    const block = cell.subarray(k * DIGEST_BLOCK, (k + 1) * DIGEST_BLOCK);
    if (hash(block) !== digests.readBigUInt64LE(8 * k)) out.set(k, block);
  }
  return out;
}

/** Whether `digests` are those of `raw` (what verify checks). */
export function digestsMatch(hash: H64, digests: Buffer, raw: Uint8Array): boolean {
  return blockDigests(hash, raw).equals(digests);
}
