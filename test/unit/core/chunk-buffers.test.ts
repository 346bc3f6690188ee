// Pooled chunk buffers (imaging/core/memory.ts) through the real worker pool and the WASM zstd codec: bytes
// survive round trips in reused memory, and a frame that holds more or less than its index says is
// refused rather than cut to fit.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { BufferPool, chunkBuffers } from '../../../imaging/core/memory';
import { WorkerPool } from '../../../imaging/repo/worker-pool';
import { loadZstd } from '../../../imaging/codec/zstd';
import { seededBytes } from '../../helpers/disks';

const MiB = 1 << 20;

/** A chunk that compresses partly: text-like runs and random bytes. */
function chunk(seed: number, n = MiB): Buffer {
  const b = Buffer.alloc(n, `chunk ${seed} `);
  seededBytes(seed, n / 4).copy(b, n / 2);
  return b;
}

test('chunks round-trip through the workers in pool buffers that are reused, never shared', async () => {
  const pool = new WorkerPool(2);
  try {
    const inputs = Array.from({ length: 24 }, (_, i) => chunk(i));
    const hashes = inputs.map((b) => crypto.createHash('sha256').update(b).digest('hex'));
    for (let round = 0; round < 2; round++) {
      const frames = await Promise.all(
        inputs.map((b) => {
          const raw = chunkBuffers.take(b.length);
          b.copy(raw);
          return pool.compress(raw, 3, { take: true }).then((f) => Buffer.from(f));
        }),
      );
      const raws = await Promise.all(
        frames.map((f, i) => {
          const stored = chunkBuffers.take(f.length);
          f.copy(stored);
          return pool.decompress(stored, inputs[i].length);
        }),
      );
      raws.forEach((r, i) => {
        assert.equal(r.hash, hashes[i], `chunk ${i} in round ${round}`);
        assert.ok(r.raw.equals(inputs[i]));
      });
      // Every raw result is in memory of its own: no two views share a buffer while both are in use.
      assert.equal(new Set(raws.map((r) => r.raw.buffer)).size, raws.length);
      for (const r of raws) chunkBuffers.give(r.raw);
      assert.ok(chunkBuffers.pooled > 0, 'buffers came back to the pool');
    }
  } finally {
    await pool.close();
  }
});

test('a pool buffer is handed out once until given back, and foreign or doubly given buffers are ignored', () => {
  const p = new BufferPool(4);
  const a = p.take(MiB);
  p.give(a);
  p.give(a);
  assert.equal(p.pooled, 1);
  const b = p.take(MiB);
  const c = p.take(MiB);
  assert.equal(b.buffer, a.buffer);
  assert.notEqual(c.buffer, b.buffer);
  p.give(Buffer.alloc(MiB)); // not a pool buffer
  p.give(Buffer.from('small'));
  assert.equal(p.pooled, 0);
  assert.equal(p.take(1000).buffer.byteLength, 1000, 'small requests are not pooled');
});

test('the WASM codec refuses a frame whose content is longer or shorter than expected, with its size', async () => {
  const codec = await loadZstd(true);
  const raw = chunk(7, 256 * 1024);
  const frame = codec.compress(raw, 3);
  assert.ok(codec.decompress(frame, raw.length).equals(raw));
  assert.throws(() => codec.decompress(frame, raw.length - 1), /decompresses to 262144 bytes, not 262143/);
  assert.throws(() => codec.decompress(frame, raw.length + 4096), /decompresses to 262144 bytes, not 266240/);
  // Into memory of the caller's, over the input itself (as the worker compresses).
  const own = Buffer.from(raw);
  const inPlace = codec.compress(own, 3, own);
  assert.equal(inPlace.buffer, own.buffer);
  assert.ok(inPlace.equals(frame));
});
