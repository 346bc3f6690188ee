// Writing new blocks over a stored cell, as a worker does it (compress-worker.ts): the cell's base
// chunk is decompressed there and compared with the new blocks there, so only the result — usually
// a small patch — crosses back to the main thread, not the whole cell.
import { encodePatch } from './patch';
import { DIGEST_BLOCK } from './digests';

export interface OverlayInput {
  base: Buffer; // the base chunk's raw bytes
  patch: Map<number, Buffer>; // blocks an earlier patch of this cell changed (verified by the caller)
  blocks: [number, Buffer][]; // new bytes: [offset in the cell, bytes]
  blockSize: number;
  baseId: string;
}

/**
 * 'same': nothing changed; 'base': the cell is its base again; 'patch': the raw patch (under a quarter
 * of the cell); 'cell': the whole new cell (its base then has to be verified by the caller before the
 * cell is stored under a new id, since its bytes come from the base).
 */
export type OverlayResult = { kind: 'same' } | { kind: 'base' } | { kind: 'patch'; data: Buffer } | { kind: 'cell'; data: Buffer };

/**
 * What a cell became once new blocks were written over it (`patch`: every block now differing from the
 * base), short of a whole new cell: null when the patch would be over a quarter of the cell, which
 * then becomes a chunk of its own, so that later patches of it start small again.
 */
function outcome(changed: boolean, patch: Map<number, Buffer>, len: number, blockSize: number, baseId: string): OverlayResult | null {
  if (!changed) return { kind: 'same' };
  if (!patch.size) return { kind: 'base' };
  let bytes = 0;
  for (const b of patch.values()) bytes += b.length;
  return bytes * 4 <= len ? { kind: 'patch', data: encodePatch({ base: baseId, cellLength: len, blockSize, blocks: patch }) } : null;
}

export function overlayCell(o: OverlayInput): OverlayResult {
  const { base, patch, blockSize } = o;
  const len = base.length;
  let changed = false;
  for (const [off, b] of o.blocks) {
    for (let k = Math.floor(off / blockSize); k * blockSize < off + b.length; k++) {
      const from = k * blockSize;
      const to = Math.min(from + blockSize, len);
      const lo = Math.max(off, from);
      const hi = Math.min(off + b.length, to);
      const current = patch.get(k) ?? base.subarray(from, to);
      if (current.compare(b, lo - off, hi - off, lo - from, hi - from) === 0) continue;
      const block = Buffer.from(current);
      b.copy(block, lo - from, lo - off, hi - off);
      changed = true;
      // A block back to its base bytes leaves the patch.
      if (base.compare(block, 0, block.length, from, to) === 0) patch.delete(k);
      else patch.set(k, block);
    }
  }
  const r = outcome(changed, patch, len, blockSize, o.baseId);
  if (r) return r;
  const cell = Buffer.from(base);
  for (const [k, b] of patch) b.copy(cell, k * blockSize);
  return { kind: 'cell', data: cell };
}

/** The pieces of a worker message back as [offset, bytes]. */
export function unpackBlocks(data: Buffer, offs: number[], lens: number[]): [number, Buffer][] {
  let pos = 0;
  return offs.map((o, i) => [o, data.subarray(pos, (pos += lens[i]))]);
}

/**
 * The same as overlayCell, but against the base chunk's block digests (repo/digests.ts) instead of its
 * bytes, so the base is neither read nor decompressed: a new block whose digest is the base block's is
 * the base's. Null when that cannot decide: blocks not whole DIGEST_BLOCKs, or a result over a quarter
 * of the cell (a whole cell is built from the base's bytes: overlayCell).
 */
export function overlayByDigests(o: {
  digests: Buffer;
  hash: (b: Uint8Array) => bigint;
  patch: Map<number, Buffer>;
  blocks: [number, Buffer][];
  cellLength: number;
  blockSize: number;
  baseId: string;
}): OverlayResult | null {
  const { digests, patch, cellLength: len } = o;
  const bs = DIGEST_BLOCK;
  if (o.blockSize !== bs || digests.length !== 8 * Math.ceil(len / bs)) return null;
  const whole = ([off, b]: [number, Buffer]) => off % bs === 0 && (b.length % bs === 0 || off + b.length === len) && off + b.length <= len;
  if (!o.blocks.every(whole)) return null;
  let changed = false;
  for (const [off, b] of o.blocks) {
    for (let p = 0; p < b.length; p += bs) {
      const k = (off + p) / bs;
      const block = b.subarray(p, p + bs);
      const before = patch.get(k);
      if (before?.equals(block)) continue;
      const asBase = o.hash(block) === digests.readBigUInt64LE(8 * k);
      if (!before && asBase) continue;
      changed = true;
      if (asBase)
        patch.delete(k); // back to its base bytes
      else patch.set(k, block);
    }
  }
  return outcome(changed, patch, len, o.blockSize, o.baseId);
}
