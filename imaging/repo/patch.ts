// Patches: how an incremental stores a chunk-sized cell of which only some filesystem blocks changed.
// A patch is itself a chunk (hashed, compressed, encrypted like any other) whose raw bytes name the
// base chunk and carry the changed blocks; the manifest extent [offset, length, patch, base] says
// "base with these blocks replaced". A 4 KiB change thus costs about 4 KiB, not a whole 1 MiB chunk.
//
// Raw layout (all integers little-endian):
//   "DSPATCH1" | base id (32 bytes) | cell length u32 | block size u32 | count u32 |
//   count × block index u32 (ascending) | the blocks' bytes, in that order (the last block of the cell
//   may be shorter than the block size).
// Patches never stack: a cell patched again gets a new patch against the same base (every block that
// differs from the base), so reading a cell is at most two chunk reads.
import { DevsnapError } from '../core/errors';

const MAGIC = Buffer.from('DSPATCH1');
const HEAD = 8 + 32 + 12;

export interface Patch {
  base: string; // hex chunk id
  cellLength: number;
  blockSize: number;
  /** Block index within the cell → its bytes. */
  blocks: Map<number, Buffer>;
}

function blockLength(p: { cellLength: number; blockSize: number }, i: number): number {
  return Math.min(p.blockSize, p.cellLength - i * p.blockSize);
}

export function encodePatch(p: Patch): Buffer {
  const idx = [...p.blocks.keys()].sort((a, b) => a - b);
  const dataLen = idx.reduce((n, i) => n + blockLength(p, i), 0);
  const out = Buffer.allocUnsafe(HEAD + idx.length * 4 + dataLen);
  MAGIC.copy(out, 0);
  Buffer.from(p.base, 'hex').copy(out, 8);
  out.writeUInt32LE(p.cellLength, 40);
  out.writeUInt32LE(p.blockSize, 44);
  out.writeUInt32LE(idx.length, 48);
  let pos = HEAD;
  for (const i of idx) pos = out.writeUInt32LE(i, pos);
  for (const i of idx) {
    const b = p.blocks.get(i)!;
    if (b.length !== blockLength(p, i)) throw new Error(`patch block ${i} has ${b.length} bytes, not ${blockLength(p, i)}`);
    pos += b.copy(out, pos);
  }
  return out;
}

function damaged(id: string, why: string): DevsnapError {
  return new DevsnapError(
    'DAMAGED',
    `Chunk ${id.slice(0, 12)}… is damaged: it is not a valid patch (${why}).`,
    'Run `devsnap verify` to see which snapshots are affected; restore from another snapshot.',
  );
}

/** Parses a patch chunk's raw bytes; `id` names it in errors. Every field is checked: a patch is untrusted input. */
export function decodePatch(raw: Buffer, id: string): Patch {
  if (raw.length < HEAD || !raw.subarray(0, 8).equals(MAGIC)) throw damaged(id, 'no patch header');
  const cellLength = raw.readUInt32LE(40);
  const blockSize = raw.readUInt32LE(44);
  const count = raw.readUInt32LE(48);
  if (blockSize < 512 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) throw damaged(id, `block size ${blockSize}`);
  const cellBlocks = Math.ceil(cellLength / blockSize);
  if (cellLength === 0 || count > cellBlocks || raw.length < HEAD + count * 4) throw damaged(id, `${count} blocks in a ${cellLength}-byte cell`);
  const p: Patch = { base: raw.toString('hex', 8, 40), cellLength, blockSize, blocks: new Map() };
  let data = HEAD + count * 4;
  let prev = -1;
  for (let k = 0; k < count; k++) {
    const i = raw.readUInt32LE(HEAD + k * 4);
    if (i <= prev || i >= cellBlocks) throw damaged(id, `block index ${i} out of order or past the cell`);
    prev = i;
    const len = blockLength(p, i);
    if (data + len > raw.length) throw damaged(id, 'truncated');
    p.blocks.set(i, raw.subarray(data, data + len));
    data += len;
  }
  if (data !== raw.length) throw damaged(id, 'trailing bytes');
  return p;
}

/** The cell: `base` (the verified raw bytes of chunk p.base) with the patch's blocks written over it. */
export function applyPatch(base: Buffer, p: Patch, patchId: string, baseId: string, opts: { inPlace?: boolean } = {}): Buffer {
  if (p.base !== baseId) throw damaged(patchId, `it patches chunk ${p.base.slice(0, 12)}…, but the manifest names ${baseId.slice(0, 12)}… as its base`);
  if (base.length !== p.cellLength) throw damaged(patchId, `its cell is ${p.cellLength} bytes, its base ${base.length}`);
  // A copy unless the caller owns the base (it may be cached and shared).
  const out = opts.inPlace ? base : Buffer.from(base);
  for (const [i, b] of p.blocks) b.copy(out, i * p.blockSize);
  return out;
}

/** The blocks of `cell` that differ from `base` (same length), at `blockSize` granularity: a patch over the base. */
export function diffBlocks(base: Buffer, cell: Buffer, blockSize: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  const n = Math.ceil(cell.length / blockSize);
  for (let i = 0; i < n; i++) {
    const from = i * blockSize;
    const to = Math.min(from + blockSize, cell.length);
    if (base.compare(cell, from, to, from, to) !== 0) out.set(i, cell.subarray(from, to));
  }
  return out;
}
