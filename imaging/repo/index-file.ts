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

export function parseIndexFile(buf: Buffer): Map<string, PackEntry[]> | null {
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
  const out = new Map<string, PackEntry[]>();
  let o = INDEX_MAGIC.length;
  while (o + 20 <= body.length) {
    const pack = body.toString('hex', o, o + 16);
    const count = body.readUInt32LE(o + 16);
    o += 20;
    out.set(pack, decodeEntries(body.subarray(o, o + count * ENTRY_SIZE)));
    o += count * ENTRY_SIZE;
  }
  return o === body.length ? out : null;
}

/** The bytes of an index file for `packs`: the inverse of parseIndexFile. */
export function encodeIndexFile(packs: Map<string, PackEntry[]>): Buffer {
  const parts: Buffer[] = [INDEX_MAGIC];
  for (const [pack, entries] of packs) {
    const head = Buffer.alloc(20);
    head.write(pack, 0, 16, 'hex');
    head.writeUInt32LE(entries.length, 16);
    parts.push(head, encodeEntries(entries));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]);
}
