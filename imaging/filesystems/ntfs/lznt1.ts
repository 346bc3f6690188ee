// LZNT1, the compression of NTFS compressed files: a compression unit (16 clusters) is stored as a
// series of chunks, each the compressed (or stored) form of 4 KiB of data behind a 2-byte header.
// Reference: [MS-XCA] 2.5 "LZNT1 Algorithm Details". Every length and back-reference is checked: a
// damaged unit throws Implausible, it never reads or writes outside its buffers.
import { Implausible } from './used-blocks';

const CHUNK = 4096;

/**
 * Decompresses `src` (a compression unit's allocated clusters) into `out` (the unit's size, zero-filled
 * by the caller). A chunk shorter than 4 KiB is followed by zeros, as ntfs-3g and Windows read it; a
 * zero header ends the data.
 */
export function lznt1Decompress(src: Buffer, out: Buffer, what: string): void {
  const bad = (why: string) => new Implausible(`${what}: compressed data ${why}`);
  let s = 0;
  for (let chunkStart = 0; chunkStart < out.length && s + 2 <= src.length; chunkStart += CHUNK) {
    const h = src.readUInt16LE(s);
    if (h === 0) return;
    const end = s + (h & 0x0fff) + 3;
    if (end > src.length) throw bad(`has a chunk running past the unit at byte ${s}`);
    s += 2;
    const chunkEnd = Math.min(chunkStart + CHUNK, out.length);
    if (!(h & 0x8000)) {
      // A stored chunk: the data as it is.
      src.copy(out, chunkStart, s, s + Math.min(end - s, chunkEnd - chunkStart));
      s = end;
      continue;
    }
    let d = chunkStart;
    while (s < end && d < chunkEnd) {
      const flags = src[s++];
      for (let bit = 0; bit < 8 && s < end && d < chunkEnd; bit++) {
        if (!(flags & (1 << bit))) {
          out[d++] = src[s++];
          continue;
        }
        if (s + 2 > end) throw bad(`has a back-reference cut at the end of a chunk (byte ${s})`);
        const token = src.readUInt16LE(s);
        s += 2;
        // The split between offset and length bits moves with the position in the chunk: offsets
        // need more bits further on (4 bits at first, 12 at most).
        const pos = d - chunkStart;
        let lengthBits = 12;
        for (let i = pos - 1; i >= 0x10; i >>= 1) lengthBits--;
        const offset = (token >>> lengthBits) + 1;
        const length = (token & ((1 << lengthBits) - 1)) + 3;
        if (offset > pos) throw bad(`refers back before the start of its chunk (byte ${s - 2})`);
        if (d + length > chunkEnd) throw bad(`copies past the end of its chunk (byte ${s - 2})`);
        // Byte by byte: a reference may overlap what it writes (a run of one repeated pattern).
        for (let k = 0; k < length; k++, d++) out[d] = out[d - offset];
      }
    }
    s = end;
  }
}
