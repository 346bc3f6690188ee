// Writing new blocks over a stored cell, as a worker does it (compress-worker.ts): the cell's base
// chunk is decompressed there and compared with the new blocks there, so only the result — usually
// a small patch — crosses back to the main thread, not the whole cell.
import { encodePatch } from '../repo/patch';

export interface OverlayInput {
  base: Buffer;                      // the base chunk's raw bytes
  patch: Map<number, Buffer>;        // blocks an earlier patch of this cell changed (verified by the caller)
  blocks: [number, Buffer][];        // new bytes: [offset in the cell, bytes]
  blockSize: number;
  baseId: string;
}

/**
 * 'same': nothing changed; 'base': the cell is its base again; 'patch': the raw patch (under a quarter
 * of the cell); 'cell': the whole new cell (its base then has to be verified by the caller before the
 * cell is stored under a new id, since its bytes come from the base).
 */
export type OverlayResult = { kind: 'same' } | { kind: 'base' } | { kind: 'patch'; data: Buffer } | { kind: 'cell'; data: Buffer };

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
  if (!changed) return { kind: 'same' };
  if (!patch.size) return { kind: 'base' };
  let bytes = 0;
  for (const b of patch.values()) bytes += b.length;
  // Over a quarter of the cell: a chunk of its own, so later patches of it start small again.
  if (bytes * 4 <= len) return { kind: 'patch', data: encodePatch({ base: o.baseId, cellLength: len, blockSize, blocks: patch }) };
  const cell = Buffer.from(base);
  for (const [k, b] of patch) b.copy(cell, k * blockSize);
  return { kind: 'cell', data: cell };
}

/** The pieces of a worker message back as [offset, bytes]. */
export function unpackBlocks(data: Buffer, offs: number[], lens: number[]): [number, Buffer][] {
  let pos = 0;
  return offs.map((o, i) => [o, data.subarray(pos, (pos += lens[i]))]);
}
