// Extent maps held compactly (imaging/repo/extents.ts) and read and written straight from a
// manifest's bytes (imaging/repo/manifest-json.ts), checked against what JSON.parse and
// JSON.stringify make of the same documents: the compact form must never read or write a manifest
// differently, whatever its layout, and a damaged one must fail the same way.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { Extents } from '../../../imaging/repo/extents';
import { parseManifestJson, stringifyBytes } from '../../../imaging/repo/manifest-json';
import { parseManifest, serializeManifest, type Extent, type Manifest } from '../../../imaging/repo/manifest';
import { syntheticManifest, hexId } from '../../helpers/manifests';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, cleanup } from '../../helpers/disks';
import { Repository } from '../../../imaging/repo/repository';
import { assertChunksStored } from '../../../imaging/repo/chunk-reader';
import { takeSnapshot } from '../../../imaging/snapshot/take';
import { DevsnapError } from '../../../imaging/core/errors';

after(cleanup);

/** A deterministic generator (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const id = (r: () => number) => crypto.createHash('sha256').update(String(r())).digest('hex');

/** n extents of every kind, at offsets up to 2^52 (whole numbers JSON prints in full). */
function randomTuples(r: () => number, n: number): Extent[] {
  const out: Extent[] = [];
  let off = Math.floor(r() * 2 ** 52);
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(r() * 2 ** 24);
    const k = Math.floor(r() * 4);
    out.push(k === 0 ? [off, len, 'f'] : k === 1 ? [off, len, 'z'] : k === 2 ? [off, len, id(r)] : [off, len, id(r), id(r)]);
    off += len;
  }
  return out;
}

/** A value as JSON writes it (Extents as their tuples, Infinity as null): what two readings are compared by. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

test('Extents read back the tuples they were made of, and write the bytes JSON.stringify writes', () => {
  const r = prng(1);
  for (const n of [0, 1, 2, 3, 100, 5000]) {
    const tuples = randomTuples(r, n);
    const ex = Extents.from(tuples);
    assert.equal(ex.length, n);
    assert.deepEqual([...ex], tuples);
    assert.deepEqual(ex.toJSON(), tuples);
    for (let i = 0; i < n; i += 97) assert.deepEqual(ex.at(i), tuples[i]);
    assert.equal(ex.jsonBytes().toString(), JSON.stringify(tuples));
    assert.equal(
      ex.bytesExcept(0),
      tuples.reduce((s, e) => s + (e[2] === 'f' ? 0 : e[1]), 0),
    );
  }
  const odd: Extent[] = [
    [-5, 0, 'f'],
    [9, 10, 'z'],
    [2 ** 53 - 1, 2 ** 53 + 2, 'f'],
    [0.5, 1e21, 'z'],
  ]; // as a damaged manifest may say
  assert.equal(Extents.from(odd).jsonBytes().toString(), JSON.stringify(odd));
  assert.throws(() => Extents.from([[0, 1, 'ABC']]), /not an extent/);
  assert.throws(() => Extents.from([[0, 1, 'F'.repeat(64)]]), /not an extent/, 'upper-case hex is not an id the manifest names');
});

test('a manifest is serialized exactly as JSON.stringify of its tuples, and read back equal', () => {
  const m = syntheticManifest({ id: hexId(1), chunks: 3000, diskSize: 1e11, seed: 'x' });
  const r = prng(2);
  m.areas[1].extents = Extents.from([...m.areas[1].extents].map((e, i) => (i % 7 === 3 && e[2] !== 'f' ? [e[0], e[1], id(r), id(r)] : e)) as Extent[]);
  m.version = 2;
  m.label = 'a label with "extents":[[0,1,"f"]] and \u0000 in it';
  const bytes = serializeManifest(m);
  const { digest: _d, ...rest } = m;
  const json = JSON.stringify(rest);
  const digest = crypto.createHash('sha256').update(json).digest('hex');
  assert.equal(bytes.toString(), json.slice(0, -1) + `,"digest":"${digest}"}`);
  assert.equal(stringifyBytes(rest).toString(), json);
  assert.equal(stringifyBytes({}).toString(), '{}');
  const back = parseManifest(bytes, m.id);
  for (const a of back.areas) assert.ok(a.extents instanceof Extents, 'read straight into Extents');
  assert.deepEqual(plain(back), plain({ ...m, digest }));
});

test('any layout JSON.parse reads is read the same, and any document it refuses is refused', () => {
  const m = syntheticManifest({ id: hexId(2), chunks: 40, diskSize: 1e9, seed: 'y' });
  const { digest: _d, ...rest } = m;
  const compact = JSON.stringify(rest);
  const layouts: [string, string][] = [
    ['compact', compact],
    ['indented', JSON.stringify(rest, null, 2)],
    ['tabs and CRLF', JSON.stringify(rest, null, '\t').replace(/\n/g, '\r\n')],
    ['an exponent', compact.replace('[0,1048576,', '[0,1.048576e6,')],
    ['an escaped key', compact.replace('"extents":', '"ext\\u0065nts":')],
    ['a duplicate key, the last kept', compact.replace('"extents":[', '"extents":[[0,5,"z"]],"extents":[')],
    ['a duplicate key, the fast one first', compact.replace(/"mode":"raw","extents":(\[\[[^\]]*\]\])/, '"mode":"raw","extents":$1,"extents":"not a list"')],
    ['upper-case hex', compact.replace(/"([0-9a-f]{64})"/, (_, h: string) => `"${h.toUpperCase()}"`)],
    ['a string where a number goes', compact.replace('[0,1048576,', '["0",1048576,')],
    ['a leading zero', compact.replace('[0,1048576,', '[00,1048576,')],
    ['truncated', compact.slice(0, compact.length - 30)],
    ['an extra bracket', compact.replace(']]', ']]]')],
    ['the areas twice', compact.replace('"areas":[', '"areas":[],"areas":[')],
  ];
  for (const [name, text] of layouts) {
    let expected: unknown;
    try {
      expected = JSON.parse(text);
    } catch {
      assert.throws(() => parseManifestJson(Buffer.from(text)), SyntaxError, `${name}: refused as JSON.parse refuses it`);
      continue;
    }
    assert.deepEqual(plain(parseManifestJson(Buffer.from(text))), plain(expected), `${name}: read as JSON.parse reads it`);
  }
});

test('a manifest with bytes flipped anywhere reads as JSON.parse reads it, or fails as it fails', () => {
  const m = syntheticManifest({ id: hexId(3), chunks: 20, diskSize: 1e9, seed: 'z' });
  const bytes = serializeManifest(m);
  const r = prng(3);
  const alphabet = Buffer.from('[]{},:"\\ 0123456789abcdefzAE.-\u0000');
  let parsed = 0;
  for (let n = 0; n < 3000; n++) {
    const b = Buffer.from(bytes);
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) b[Math.floor(r() * b.length)] = alphabet[Math.floor(r() * alphabet.length)];
    let expected: unknown;
    try {
      expected = JSON.parse(b.toString('utf8'));
    } catch {
      assert.throws(() => parseManifestJson(b), SyntaxError);
      continue;
    }
    parsed++;
    assert.deepEqual(plain(parseManifestJson(b)), plain(expected), `flipped: ${b.toString().slice(0, 200)}`);
  }
  assert.ok(parsed > 300, `enough flips still parse to compare (${parsed})`);
});

test('a manifest read back as plain JSON is checked and converted with the same messages', () => {
  const m: Manifest = syntheticManifest({ id: hexId(4), chunks: 2, diskSize: 1e9, seed: 'w' });
  const text = serializeManifest(m).toString();
  // Laid out otherwise (indented), the extents go through JSON.parse; a bad id is named.
  const { digest: _d, ...rest } = plain(m);
  rest.areas[1].extents[0][2] = 'XYZ';
  const json = JSON.stringify(rest, null, 1);
  const digest = crypto.createHash('sha256').update(JSON.stringify(rest)).digest('hex');
  const bad = Buffer.from(json.slice(0, -1).trimEnd() + `,"digest":"${digest}"}`);
  assert.throws(() => parseManifest(bad, m.id), /areas\[1\]\.extents\[0\] refers to "XYZ", which is not a chunk id/);
  assert.ok(text.length > 0);
});

test('restore and export refuse a snapshot a chunk of which the index lacks, naming the chunk and its bytes', async () => {
  const dir = tmpDir('devsnap-extents-');
  const image = path.join(dir, 'disk.img');
  fs.writeFileSync(image, crypto.randomBytes(3 << 20));
  const repo = await Repository.init(path.join(dir, 'repo'), {}, () => undefined);
  try {
    await repo.loadIndex();
    const m = await takeSnapshot(repo, { source: image, label: 'x', log: () => undefined });
    assert.doesNotThrow(() => assertChunksStored(repo, m, m.areas, 'restore'));
    const a = m.areas[m.areas.length - 1];
    const [off, len, id] = [...a.extents].filter((e) => e[2].length === 64)[1];
    const where = a.kind === 'partition' ? `partition ${a.partition}` : 'raw area';
    repo.index.delete(id);
    assert.throws(
      () => assertChunksStored(repo, m, m.areas, 'export'),
      (err: unknown) =>
        err instanceof DevsnapError &&
        err.code === 'DAMAGED' &&
        err.message.includes(`chunk ${id.slice(0, 12)}… (${where}, bytes ${a.start + off}-${a.start + off + len})`) &&
        /export another/.test(err.hint ?? ''),
    );
  } finally {
    await repo.close();
  }
});
