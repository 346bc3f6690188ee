// Pack files: chunks as consecutive independent zstd frames (sealed with AES-GCM in encrypted
// repositories), closed by a zstd *skippable* frame that lists the pack's chunks. `zstd -dc PACK`
// therefore decompresses a whole pack of an unencrypted repository, and a lost index can be
// rebuilt from the packs themselves. Entry layout is shared with index files.
export const ENTRY_SIZE = 48; // id (32) | offset u64 | stored length u32 | raw length u32
const TRAILER_MAGIC = Buffer.from('DSPKIDX1');
const SKIPPABLE_MAGIC = 0x184d2a5d;

export interface PackEntry {
  id: string; // hex
  offset: number;
  length: number; // stored bytes
  rawLength: number;
}

export function encodeEntries(entries: PackEntry[]): Buffer {
  const buf = Buffer.alloc(entries.length * ENTRY_SIZE);
  entries.forEach((e, i) => {
    const o = i * ENTRY_SIZE;
    buf.write(e.id, o, 32, 'hex');
    buf.writeBigUInt64LE(BigInt(e.offset), o + 32);
    buf.writeUInt32LE(e.length, o + 40);
    buf.writeUInt32LE(e.rawLength, o + 44);
  });
  return buf;
}

export function decodeEntries(buf: Buffer): PackEntry[] {
  const out: PackEntry[] = [];
  for (let o = 0; o + ENTRY_SIZE <= buf.length; o += ENTRY_SIZE) {
    out.push({ id: buf.toString('hex', o, o + 32), offset: Number(buf.readBigUInt64LE(o + 32)), length: buf.readUInt32LE(o + 40), rawLength: buf.readUInt32LE(o + 44) });
  }
  return out;
}

/** The closing skippable frame: magic, size, entries, count u32, "DSPKIDX1". */
export function packTrailer(entries: PackEntry[]): Buffer {
  const body = Buffer.concat([encodeEntries(entries), Buffer.alloc(4), TRAILER_MAGIC]);
  body.writeUInt32LE(entries.length, body.length - 12);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/**
 * A writer lays chunks end to end from offset 0 up to the trailer: a list that does not (a flipped
 * byte, a trailer of another pack) is damaged, not a list to trust.
 */
function entriesFitPack(entries: PackEntry[], dataEnd: number): boolean {
  let next = 0;
  for (const e of entries) {
    if (e.offset !== next || e.length <= 0) return false;
    next += e.length;
  }
  return next === dataEnd;
}

/**
 * Reads a pack's own list of chunks from its trailer, given the pack's size and a reader of its
 * bytes (null when it has none or it is damaged).
 */
export async function readPackTrailer(size: number, readAt: (offset: number, length: number) => Promise<Buffer>): Promise<PackEntry[] | null> {
  if (size < 20) return null;
  const tail = await readAt(size - 12, 12);
  if (tail.length !== 12 || !tail.subarray(4).equals(TRAILER_MAGIC)) return null;
  const count = tail.readUInt32LE(0);
  const bodyLen = count * ENTRY_SIZE + 12;
  if (bodyLen + 8 > size) return null;
  const body = await readAt(size - bodyLen, count * ENTRY_SIZE);
  if (body.length !== count * ENTRY_SIZE) return null;
  const entries = decodeEntries(body);
  return entriesFitPack(entries, size - bodyLen - 8) ? entries : null;
}
