// A directory's $I30 index: the B+tree of $FILE_NAME keys in $INDEX_ROOT (resident) and the index
// blocks of $INDEX_ALLOCATION (each "INDX", protected by fixups), those in use marked in $BITMAP.
// Listing reads the root's entries and then every block in use in order, as ntfs-3g's readdir does: no
// child pointer is followed, so a damaged tree cannot make it loop, and each block is read once.
import { Implausible } from './used-blocks';
import { ATTR_FILE_NAME, refRecord, type Geometry } from './mft';
import { FIXUP_STRIDE } from './used-blocks';
import { readStream, type AttrStream } from './stream';

/** An index allocation larger than this is not a directory Windows or ntfs-3g wrote (~40 million names). */
const MAX_INDEX_BYTES = 4 * 2 ** 30;
/** Blocks read at once. */
const BATCH = 1 << 20;

export interface IndexKey {
  record: number;
  /** The sequence number the entry expects the record to have (0: not checked). */
  seq: number;
  name: string;
  /** 0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS. */
  namespace: number;
  /** The file attributes of the key's copy of the child's $FILE_NAME. */
  attributes: number;
}

/** The keys of the index node whose INDEX_HEADER is at `hdr` in `b` (its entries must end before `limit`). */
function nodeKeys(b: Buffer, hdr: number, limit: number, what: string, out: IndexKey[]): void {
  const bad = (why: string) => new Implausible(`${what} ${why}`);
  if (hdr + 16 > limit) throw bad('is truncated');
  const first = hdr + b.readUInt32LE(hdr);
  const end = hdr + b.readUInt32LE(hdr + 4);
  if (first < hdr + 16 || end > limit || first > end) throw bad('has a malformed index header');
  for (let e = first; ;) {
    if (e + 16 > end) throw bad(`has entries running past its end (offset ${e})`);
    const len = b.readUInt16LE(e + 8);
    const keyLen = b.readUInt16LE(e + 10);
    const flags = b.readUInt16LE(e + 12);
    if (len < 16 || len & 7 || e + len > end) throw bad(`has a malformed entry at offset ${e}`);
    if (flags & 2) return; // the last entry carries no key, at most a child pointer
    if (keyLen < 0x42 || 16 + keyLen + (flags & 1 ? 8 : 0) > len) throw bad(`has an entry whose key does not fit it (offset ${e})`);
    const k = e + 16;
    const nameLen = b[k + 0x40];
    if (0x42 + 2 * nameLen > keyLen) throw bad(`has an entry whose name does not fit its key (offset ${e})`);
    out.push({
      record: refRecord(b, e),
      seq: b.readUInt16LE(e + 6),
      name: b.toString('utf16le', k + 0x42, k + 0x42 + 2 * nameLen),
      namespace: b[k + 0x41],
      attributes: b.readUInt32LE(k + 0x38),
    });
    e += len;
  }
}

/** Puts back the last two bytes of each 512-byte stride of an index block (its update sequence array). */
function fixup(b: Buffer, what: string): void {
  const usaOff = b.readUInt16LE(4);
  const usaCount = b.readUInt16LE(6);
  if (usaOff < 0x28 || usaOff & 1 || usaCount !== b.length / FIXUP_STRIDE + 1 || usaOff + 2 * usaCount > b.length) {
    throw new Implausible(`${what} has a malformed update sequence array`);
  }
  const usn = b.readUInt16LE(usaOff);
  for (let i = 1; i < usaCount; i++) {
    const pos = i * FIXUP_STRIDE - 2;
    if (b.readUInt16LE(pos) !== usn) throw new Implausible(`${what} is torn (its update sequence does not match in sector ${i - 1})`);
    b.writeUInt16LE(b.readUInt16LE(usaOff + 2 * i), pos);
  }
}

/**
 * Every key of a directory's index: the root's, then those of each block the bitmap marks in use.
 * `root` is the $INDEX_ROOT value; `alloc` and `bitmap` the $I30 $INDEX_ALLOCATION and $BITMAP streams.
 */
export async function indexKeys(g: Geometry, root: Buffer, alloc: AttrStream | null, bitmap: AttrStream | null, what: string): Promise<IndexKey[]> {
  if (root.length < 0x20) throw new Implausible(`${what}'s index root is truncated`);
  if (root.readUInt32LE(0) !== ATTR_FILE_NAME) throw new Implausible(`${what}'s $I30 index does not index file names`);
  const blockSize = root.readUInt32LE(8);
  if (blockSize < FIXUP_STRIDE || blockSize > 65536 || blockSize & (blockSize - 1)) throw new Implausible(`${what}'s index blocks are ${blockSize} bytes`);
  const out: IndexKey[] = [];
  nodeKeys(root, 0x10, root.length, `${what}'s index root`, out);
  if (!alloc) return out;
  if (alloc.value) throw new Implausible(`${what}'s index allocation is resident`);
  if (alloc.size > MAX_INDEX_BYTES) throw new Implausible(`${what}'s index allocation claims ${alloc.size} bytes`);
  if (!bitmap) throw new Implausible(`${what} has an index allocation but no index bitmap`);
  const blocks = Math.floor(alloc.size / blockSize);
  const bits = await readStream(g, bitmap, 0, Math.ceil(blocks / 8));
  // Block VCNs count clusters, or 512-byte units when blocks are smaller than a cluster.
  const vcnUnit = blockSize >= g.clusterSize ? g.clusterSize : 512;
  const perBatch = Math.max(1, BATCH / blockSize);
  for (let i = 0; i < blocks;) {
    if (!bits[i >> 3]) {
      i = (i | 7) + 1; // a byte with no block in use
      continue;
    }
    if (!(bits[i >> 3] & (1 << (i & 7)))) {
      i++;
      continue;
    }
    // Consecutive blocks in use, read at once.
    let j = i + 1;
    while (j < blocks && j - i < perBatch && bits[j >> 3] & (1 << (j & 7))) j++;
    const buf = await readStream(g, alloc, i * blockSize, (j - i) * blockSize);
    for (let k = i; k < j; k++) {
      const b = buf.subarray((k - i) * blockSize, (k - i + 1) * blockSize);
      const bw = `${what}'s index block ${k}`;
      if (b.length < blockSize || b.toString('latin1', 0, 4) !== 'INDX') throw new Implausible(`${bw} has no INDX signature`);
      fixup(b, bw);
      const vcn = b.readBigInt64LE(0x10);
      if (vcn !== BigInt((k * blockSize) / vcnUnit)) throw new Implausible(`${bw} says it is at VCN ${vcn}`);
      nodeKeys(b, 0x18, blockSize, bw, out);
    }
    i = j;
  }
  return out;
}
