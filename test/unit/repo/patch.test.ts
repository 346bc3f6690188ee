// Patches (imaging/repo/patch.ts): a changed cell stored as the blocks that differ from its base.
// Round trips, and hostile patch chunks that must be refused as damage, never applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { applyPatch, decodePatch, diffBlocks, encodePatch } from '../../../imaging/repo/patch';
import { DevsnapError } from '../../../imaging/core/errors';

const MiB = 1 << 20;
const id = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function cells(): { base: Buffer; cell: Buffer } {
  const base = crypto.randomBytes(MiB);
  const cell = Buffer.from(base);
  crypto.randomBytes(4096).copy(cell, 4096 * 7); // block 7 rewritten
  cell[4096 * 200 + 5] ^= 1; // one byte of block 200
  crypto.randomBytes(100).copy(cell, MiB - 100); // the last block's tail
  return { base, cell };
}

test('diffBlocks finds exactly the changed blocks; the patch restores the cell', () => {
  const { base, cell } = cells();
  const blocks = diffBlocks(base, cell, 4096);
  assert.deepEqual(
    [...blocks.keys()].sort((a, b) => a - b),
    [7, 200, 255],
  );
  const raw = encodePatch({ base: id(base), cellLength: MiB, blockSize: 4096, blocks });
  assert.ok(raw.length < 4 * 4096 + 100, `a 3-block patch is ${raw.length} bytes`);
  const p = decodePatch(raw, id(raw));
  assert.ok(applyPatch(base, p, id(raw), id(base)).equals(cell));
  assert.ok(base.equals(base), 'the base is not modified');
});

test('a cell whose length is not a multiple of the block size: the short last block round-trips', () => {
  const base = crypto.randomBytes(10_000);
  const cell = Buffer.from(base);
  cell[9_999] ^= 0xff;
  const blocks = diffBlocks(base, cell, 4096);
  assert.deepEqual([...blocks.keys()], [2]);
  assert.equal(blocks.get(2)!.length, 10_000 - 8192);
  const raw = encodePatch({ base: id(base), cellLength: 10_000, blockSize: 4096, blocks });
  assert.ok(applyPatch(base, decodePatch(raw, 'x'.repeat(64)), 'p', id(base)).equals(cell));
});

test('hostile patches are damage with a clear message, never applied', () => {
  const { base, cell } = cells();
  const good = encodePatch({ base: id(base), cellLength: MiB, blockSize: 4096, blocks: diffBlocks(base, cell, 4096) });
  const damaged = (raw: Buffer, re: RegExp) => {
    assert.throws(
      () => applyPatch(base, decodePatch(raw, 'ab'.repeat(32)), 'ab'.repeat(32), id(base)),
      (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED' && re.test(e.message),
    );
  };
  const set = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  damaged(Buffer.from('not a patch at all, just bytes of something else entirely'), /not a valid patch \(no patch header\)/);
  damaged(
    set((b) => b.writeUInt32LE(3000, 44)),
    /block size 3000/,
  );
  damaged(
    set((b) => b.writeUInt32LE(1000, 48)),
    /1000 blocks/,
  );
  damaged(
    set((b) => b.writeUInt32LE(300, 52)),
    /out of order or past the cell/,
  ); // first index past the 256-block cell
  damaged(
    set((b) => b.writeUInt32LE(7, 52 + 4)),
    /out of order/,
  ); // indexes not ascending (7, 7, 255)
  damaged(good.subarray(0, good.length - 1), /truncated/);
  damaged(Buffer.concat([good, Buffer.alloc(1)]), /trailing bytes/);
  damaged(
    set((b) => b.writeUInt32LE(MiB / 2, 40)),
    /block index 200 out of order or past the cell/,
  ); // a shorter cell than its blocks
  damaged(encodePatch({ base: id(base), cellLength: 10_000, blockSize: 4096, blocks: new Map() }), /cell is 10000 bytes, its base 1048576/);
  // A patch of another base: refused even though the patch itself is well formed.
  assert.throws(() => applyPatch(base, decodePatch(good, 'p'), 'p', 'cd'.repeat(32)), /patches chunk .* but the manifest names cdcdcdcdcdcd/);
});
