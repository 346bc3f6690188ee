// What a raw ext inode's bytes say, for the change scan (inodes.ts): its fingerprint, its xattr block
// and whether its checksum holds.

import { hash64 } from '../runs';
import { crc32cRaw } from '../checksums';
import { INCOMPAT_64BIT } from './superblock';
import type { ExtFs } from './geometry';

// ---- fingerprints

const scratch = new Uint32Array(1024); // a raw inode is at most 4 KiB

/**
 * 64-bit fingerprint of a raw inode (inodeSize/4 little-endian words from `w0` of `u`) into out[2i],
 * out[2i+1], leaving out i_atime, i_checksum_lo, i_checksum_hi and i_atime_extra (the last two only when
 * i_extra_isize covers them).
 */
export function fingerprint(u: Uint32Array, w0: number, words: number, out: Uint32Array, i: number): void {
  const limit = words > 32 ? 128 + (u[w0 + 32] & 0xffff) : 128;
  scratch.set(u.subarray(w0, w0 + words));
  scratch[2] = 0; // i_atime
  scratch[31] &= 0xffff0000; // i_checksum_lo (l_i_reserved stays)
  if (limit >= 0x84) scratch[32] &= 0xffff; // i_checksum_hi (i_extra_isize stays)
  if (limit >= 0x90) scratch[35] = 0; // i_atime_extra
  hash64(scratch, 0, words, out, i);
}

/** A Uint32Array over `buf` (copied when its offset is not 4-aligned). Little-endian hosts only (checked by the caller). */
export function words(buf: Buffer): Uint32Array {
  const b = buf.byteOffset % 4 ? Buffer.from(buf) : buf;
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

/** i_file_acl: the xattr block (high 16 bits only with the 64bit feature, as the kernel reads it). */
export function fileAcl(fs: ExtFs, raw: Buffer): number {
  return raw.readUInt32LE(0x68) + (fs.s.incompat & INCOMPAT_64BIT ? raw.readUInt16LE(0x76) * 2 ** 32 : 0);
}

/** ext4_inode_csum_verify, or true without metadata_csum. */
export function inodeChecksumOk(fs: ExtFs, ino: number, raw: Buffer): boolean {
  if (!fs.metadataCsum) return true;
  const zero = Buffer.alloc(2);
  let c = crc32cRaw(inodeSeed(fs, ino, raw), raw.subarray(0, 0x7c));
  c = crc32cRaw(c, zero);
  c = crc32cRaw(c, raw.subarray(0x7e, 128));
  let stored = raw.readUInt16LE(0x7c);
  let mask = 0xffff;
  if (fs.s.inodeSize > 128) {
    c = crc32cRaw(c, raw.subarray(128, 0x82));
    if (128 + raw.readUInt16LE(0x80) >= 0x84) {
      c = crc32cRaw(crc32cRaw(c, zero), raw.subarray(0x84, fs.s.inodeSize));
      stored += raw.readUInt16LE(0x82) * 0x10000;
      mask = 0xffffffff;
    } else c = crc32cRaw(c, raw.subarray(0x82, fs.s.inodeSize));
  }
  return (c & mask) >>> 0 === stored;
}

/** The per-inode checksum seed: crc32c of the inode number and generation, from the filesystem's seed. */
export function inodeSeed(fs: ExtFs, ino: number, raw: Buffer): number {
  const le = Buffer.alloc(8);
  le.writeUInt32LE(ino, 0);
  le.writeUInt32LE(raw.readUInt32LE(0x64), 4);
  return crc32cRaw(crc32cRaw(fs.s.csumSeed, le.subarray(0, 4)), le.subarray(4));
}
