// Small byte-buffer helpers shared by imaging, export and file restore.

const ZEROS = Buffer.alloc(1 << 20);

/** True when every byte of `b` is zero (compared a MiB at a time with memcmp). */
export function isZero(b: Uint8Array): boolean {
  for (let o = 0; o < b.length; o += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - o);
    if (!Buffer.from(b.buffer, b.byteOffset + o, n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}
