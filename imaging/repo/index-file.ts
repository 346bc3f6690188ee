// Index files (index/<run>.idx, see imaging/FORMAT.md): for the packs one run wrote, each chunk's
// offset and lengths in its pack, closed by a sha256 of the whole.
import * as crypto from 'crypto';
import { PackEntry, decodeEntries, encodeEntries, ENTRY_SIZE } from './pack';

/** Where a stored chunk is: its pack, offset and stored length, and its length uncompressed. */
export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
}

const INDEX_MAGIC = Buffer.from('DSIDX1\0\0');
/** An index file larger than this is not one devsnap wrote (48 bytes a chunk: 40 million chunks). */
export const MAX_INDEX_BYTES = 2 ** 31 - 1;

/** A checked index file's packs, each with its entries as encoded (48 bytes each, pack.ts); null when it is damaged. */
export function parseIndexFileEncoded(buf: Buffer): { pack: string; entries: Buffer }[] | null {
  if (buf.length < INDEX_MAGIC.length + 32 || !buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return null;
  const body = buf.subarray(0, buf.length - 32);
  if (
    !crypto
      .createHash('sha256')
      .update(body)
      .digest()
      .equals(buf.subarray(buf.length - 32))
  )
    return null;
  const out: { pack: string; entries: Buffer }[] = [];
  let o = INDEX_MAGIC.length;
  while (o + 20 <= body.length) {
    const pack = body.toString('hex', o, o + 16);
    const count = body.readUInt32LE(o + 16);
    o += 20;
    out.push({ pack, entries: body.subarray(o, o + count * ENTRY_SIZE) });
    o += count * ENTRY_SIZE;
  }
  return o === body.length ? out : null;
}

export function parseIndexFile(buf: Buffer): Map<string, PackEntry[]> | null {
  const packs = parseIndexFileEncoded(buf);
  return packs && new Map(packs.map((p) => [p.pack, decodeEntries(p.entries)]));
}

/** The bytes of an index file for `packs` (entries as objects, or encoded as pack.ts encodes them): the inverse of parseIndexFile. */
export function encodeIndexFile(packs: Map<string, PackEntry[] | Buffer>): Buffer {
  const parts: Buffer[] = [INDEX_MAGIC];
  for (const [pack, entries] of packs) {
    const encoded = Buffer.isBuffer(entries) ? entries : encodeEntries(entries);
    const head = Buffer.alloc(20);
    head.write(pack, 0, 16, 'hex');
    head.writeUInt32LE(encoded.length / ENTRY_SIZE, 16);
    parts.push(head, encoded);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]);
}
