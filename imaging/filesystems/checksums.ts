// The two checksums ext4 protects its metadata with, table-driven. No npm package fits: ext4 chains
// raw CRCs from a seed (no final inversion), which the crc32c packages' one-shot APIs do not expose;
// zlib.crc32 is the other polynomial.

function table(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

const CRC32C = table(0x82f63b78); // Castagnoli, reflected
const CRC16 = table(0xa001); // CRC-16/ARC (0x8005 reflected), the kernel's lib/crc16

/**
 * The kernel's crc32c(seed, data): reflected CRC-32C without the final inversion, so results chain
 * (ext4_chksum). The standard CRC-32C of `data` is `~crc32cRaw(0xffffffff, data) >>> 0`.
 */
export function crc32cRaw(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC32C[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** The kernel's crc16(seed, data) (lib/crc16.c), used by ext4's older GDT_CSUM descriptor checksums. */
export function crc16(seed: number, data: Uint8Array): number {
  let c = seed & 0xffff;
  for (let i = 0; i < data.length; i++) c = (CRC16[(c ^ data[i]) & 0xff] ^ (c >>> 8)) & 0xffff;
  return c;
}
