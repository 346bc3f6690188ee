// The compact chunk index (imaging/repo/chunk-index.ts) against a Map doing the same: random adds,
// replacements and deletions across page boundaries and table growth, entries added as index files
// encode them, ids that are not chunk ids, and ids crafted to share their first bytes (one run of slots).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { ChunkIndex } from '../../../imaging/repo/chunk-index';
import type { ChunkLocation } from '../../../imaging/repo/index-file';
import { encodeEntries } from '../../../imaging/repo/pack';

const PACKS = Array.from({ length: 7 }, () => crypto.randomBytes(16).toString('hex'));

function randomLoc(rand: () => number): ChunkLocation {
  // Offsets past 4 GiB: a pack can be up to 16 GiB (config.ts), so offsets need more than 32 bits.
  return { pack: PACKS[Math.floor(rand() * PACKS.length)], offset: Math.floor(rand() * 2 ** 34), length: 1 + Math.floor(rand() * 2 ** 21), rawLength: Math.floor(rand() * 2 ** 20) };
}

/** A small deterministic generator (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function assertSame(index: ChunkIndex, want: Map<string, ChunkLocation>) {
  assert.equal(index.size, want.size);
  assert.deepEqual([...index], [...want], 'iteration: every entry, in the order first added');
  assert.deepEqual([...index.keys()], [...want.keys()]);
  assert.deepEqual([...index.values()], [...want.values()]);
}

test('the index answers as a Map would through 200,000 random adds, replacements and deletions', () => {
  const rand = prng(8);
  const index = new ChunkIndex();
  const want = new Map<string, ChunkLocation>();
  const ids: string[] = [];
  for (let step = 0; step < 200_000; step++) {
    const r = rand();
    if (r < 0.7 || !ids.length) {
      const id = crypto.randomBytes(32).toString('hex');
      const loc = randomLoc(rand);
      ids.push(id);
      index.set(id, loc);
      want.set(id, loc);
    } else if (r < 0.85) {
      const id = ids[Math.floor(rand() * ids.length)];
      const loc = randomLoc(rand);
      index.set(id, loc); // replaces in place: keeps its place in the iteration order
      want.set(id, loc);
    } else {
      const id = ids[Math.floor(rand() * ids.length)];
      assert.equal(index.delete(id), want.delete(id));
    }
    if (step % 20_000 === 0) assertSame(index, want);
  }
  for (const id of ids) {
    assert.equal(index.has(id), want.has(id));
    assert.deepEqual(index.get(id), want.get(id));
    const n = index.find(id);
    assert.equal(n >= 0, want.has(id));
    if (n >= 0) assert.equal(index.idOf(n), id);
  }
  assertSame(index, want);
  assert.ok(index.entryCount > 65536 * 2, 'the test crosses page boundaries');
  // A deleted chunk added again is a new entry, last in the order.
  const again = ids.find((id) => !want.has(id))!;
  const loc = randomLoc(rand);
  index.set(again, loc);
  want.set(again, loc);
  assertSame(index, want);
  index.clear();
  assert.equal(index.size, 0);
  assert.deepEqual([...index], []);
  assert.equal(index.get(again), undefined);
});

test('entries added as index files encode them equal entries added one by one; a later add replaces', () => {
  const rand = prng(3);
  const entries = Array.from({ length: 5000 }, () => ({ id: crypto.randomBytes(32).toString('hex'), ...randomLoc(rand) }));
  const a = new ChunkIndex();
  const b = new ChunkIndex();
  a.addEncoded(PACKS[0], encodeEntries(entries));
  for (const e of entries) b.set(e.id, { pack: PACKS[0], offset: e.offset, length: e.length, rawLength: e.rawLength });
  assert.deepEqual([...a], [...b]);
  // The same chunks in another pack (a prune's rewrite): the new location wins.
  a.addEncoded(PACKS[1], encodeEntries(entries.slice(0, 10).map((e) => ({ ...e, offset: 7 }))));
  assert.equal(a.size, 5000);
  assert.deepEqual(a.get(entries[3].id), { pack: PACKS[1], offset: 7, length: entries[3].length, rawLength: entries[3].rawLength });
});

test('ids that are not chunk ids are not found, and are refused when added', () => {
  const index = new ChunkIndex();
  const id = crypto.randomBytes(32).toString('hex');
  index.set(id, { pack: PACKS[0], offset: 0, length: 1, rawLength: 1 });
  for (const bad of ['', 'z'.repeat(64), id.slice(0, 62), id + '00', id.slice(0, 60) + 'zzzz', 'ZZ' + id.slice(2), id.toUpperCase()]) {
    assert.equal(index.has(bad), false, bad);
    assert.equal(index.get(bad), undefined, bad);
    assert.equal(index.delete(bad), false, bad);
    assert.throws(() => index.set(bad, { pack: PACKS[0], offset: 0, length: 1, rawLength: 1 }), /not a chunk id/);
  }
  assert.equal(index.size, 1);
});

test('ids crafted to share their first eight bytes still all resolve (one long run of slots)', () => {
  const index = new ChunkIndex();
  const prefix = crypto.randomBytes(8);
  const ids = Array.from({ length: 3000 }, () => Buffer.concat([prefix, crypto.randomBytes(24)]).toString('hex'));
  ids.forEach((id, i) => index.set(id, { pack: PACKS[i % 7], offset: i, length: 1, rawLength: 1 }));
  ids.forEach((id, i) => assert.equal(index.get(id)?.offset, i));
  for (const id of ids.filter((_, i) => i % 2)) assert.ok(index.delete(id));
  ids.forEach((id, i) => assert.equal(index.get(id)?.offset, i % 2 ? undefined : i));
  assert.equal(index.size, 1500);
});
