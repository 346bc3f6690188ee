// Block digests (repo/digests.ts): stored after each chunk's zstd frame, read instead of the chunk by an
// incremental that compares re-read blocks with its parent. Checked against the reference tools (`zstd
// -dc` skips them, `xxhsum -H1` computes them), against the byte comparison they replace, and through
// verify, which must call digests that do not match their chunk damage.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Repository } from '../../../imaging/repo/repository';
import { WorkerPool } from '../../../imaging/repo/worker-pool';
import { ChunkSaver } from '../../../imaging/repo/chunk-saver';
import { ChunkReader } from '../../../imaging/repo/chunk-reader';
import { AreaCells, CellStore, type PlannedArea } from '../../../imaging/capture/cells';
import { overlayByDigests, overlayCell } from '../../../imaging/repo/overlay';
import { blockDigests, digestFrame, digestFrameLength, digestsOf, loadDigests, DIGEST_BLOCK } from '../../../imaging/repo/digests';
import { decodePatch } from '../../../imaging/repo/patch';
import type { Extent } from '../../../imaging/repo/manifest';
import { Extents } from '../../../imaging/repo/extents';
import type { UsedBlocks } from '../../../imaging/filesystems/types';
import { cleanup, prng, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const BS = DIGEST_BLOCK;
const quiet = () => undefined;

test('a chunk is stored with its block digests: zstd -dc reads the chunk, xxhsum -H1 gives each digest, a damaged or misplaced digest frame is never used', async () => {
  const dir = tmpDir('devsnap-digests-');
  const pool = new WorkerPool(1);
  try {
    // 15.5 blocks: the last digest covers a short block.
    const raw = seededBytes(7, 15 * BS + BS / 2);
    const id = crypto.createHash('sha256').update(raw).digest('hex');
    const stored = await pool.compress(raw, 3, { digestsFor: id });
    const file = path.join(dir, 'chunk.zst');
    fs.writeFileSync(file, stored);
    assert.equal(sh('zstd', ['-d', '-q', '-f', file, '-o', `${file}.raw`]).status, 0);
    assert.ok(fs.readFileSync(`${file}.raw`).equals(raw), 'zstd -d skips the digest frame');

    const d = digestsOf(stored, id, raw.length);
    assert.ok(Buffer.isBuffer(d), `digests found: ${d}`);
    const names: string[] = [];
    for (let k = 0; k * BS < raw.length; k++) {
      names.push(path.join(dir, `b${String(k).padStart(2, '0')}`));
      fs.writeFileSync(names[k], raw.subarray(k * BS, (k + 1) * BS));
    }
    const ref = sh('xxhsum', ['-H1', ...names])
      .stdout.trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]);
    assert.deepEqual(
      [...Array(names.length).keys()].map((k) =>
        d
          .readBigUInt64LE(8 * k)
          .toString(16)
          .padStart(16, '0'),
      ),
      ref,
    );
    // The digests are exactly the frame's last digestFrameLength bytes (what an incremental reads).
    assert.ok(Buffer.isBuffer(digestsOf(stored.subarray(stored.length - digestFrameLength(raw.length)), id, raw.length)));

    // Another chunk's id, a flipped digest, a frame without digests.
    assert.equal(digestsOf(stored, crypto.randomBytes(32).toString('hex'), raw.length), 'damaged');
    const flipped = Buffer.from(stored);
    flipped[stored.length - 20] ^= 1;
    assert.equal(digestsOf(flipped, id, raw.length), 'damaged');
    assert.equal(digestsOf(await pool.compress(raw, 3), id, raw.length), 'none');
    assert.equal(digestsOf(stored.subarray(0, 10), id, raw.length), 'none');
  } finally {
    await pool.close();
  }
});

test('compared by digests, a cell changes exactly as compared by bytes (random blocks, earlier patches, blocks back to their base)', async () => {
  const hash = await loadDigests();
  const rand = prng(11);
  const n = 16;
  const len = n * BS;
  for (let iter = 0; iter < 400; iter++) {
    const base = seededBytes(1000 + iter, len);
    const pick = () => Math.floor(rand() * n);
    const block = (k: number, kind: number) => (kind === 0 ? Buffer.from(base.subarray(k * BS, (k + 1) * BS)) : seededBytes(iter * 100 + k * 7 + kind, BS));
    const earlier = new Map<number, Buffer>();
    for (let j = Math.floor(rand() * 4); j > 0; j--) earlier.set(pick(), block(0, 1 + Math.floor(rand() * 3)));
    const blocks: [number, Buffer][] = [];
    const seen = new Set<number>();
    for (let j = 1 + Math.floor(rand() * 6); j > 0; j--) {
      const k = pick();
      if (seen.has(k)) continue;
      seen.add(k);
      const r = rand();
      // the base's bytes, the earlier patch's bytes, or new ones
      blocks.push([k * BS, r < 0.3 ? block(k, 0) : r < 0.5 && earlier.has(k) ? Buffer.from(earlier.get(k)!) : block(k, 1 + Math.floor(rand() * 3))]);
    }
    const byDigests = overlayByDigests({ digests: blockDigests(hash, base), hash, patch: new Map(earlier), blocks, cellLength: len, blockSize: BS, baseId: 'ab'.repeat(32) });
    const byBytes = overlayCell({ base, patch: new Map(earlier), blocks, blockSize: BS, baseId: 'ab'.repeat(32) });
    if (byDigests === null) assert.equal(byBytes.kind, 'cell', `iteration ${iter}: only a cell over a quarter needs the base`);
    else assert.deepEqual(byDigests, byBytes, `iteration ${iter}`);
  }
});

/** A repository at `dir` whose one chunk, `base`, is stored with or without digests, then its zstd frame damaged: reading it fails. */
async function damagedBase(dir: string, base: Buffer, withDigests: boolean): Promise<string> {
  await Repository.init(dir, {}, quiet);
  const id = crypto.createHash('sha256').update(base).digest('hex');
  await withStore(dir, {}, (_s, _r, saver) => saver.save(id, Buffer.from(base), false, withDigests));
  const loc = await withStore(dir, {}, async (_s, repo) => ({ ...repo.index.get(id)!, file: path.join(dir, repo.packName(repo.index.get(id)!.pack)) }));
  const fd = fs.openSync(loc.file, 'r+');
  fs.writeSync(fd, Buffer.alloc(4, 0xee), 0, 4, loc.offset); // its zstd magic
  fs.closeSync(fd);
  return id;
}

/** One run of the engine's storing machinery over the repository at `dir`, as a snapshot sets it up. */
async function withStore<T>(dir: string, opts: { compareBytes?: boolean }, f: (store: CellStore, repo: Repository, saver: ChunkSaver) => Promise<T>): Promise<T> {
  const repo = await Repository.open(dir, {}, quiet);
  await repo.loadIndex();
  const pool = new WorkerPool(1);
  const writer = repo.newPackWriter();
  const saver = new ChunkSaver(writer, pool, 3, dir);
  const store = new CellStore(repo, saver, new ChunkReader(repo, pool, writer), 2, opts);
  try {
    const r = await f(store, repo, saver);
    await store.drain();
    await writer.finish();
    return r;
  } finally {
    await pool.close();
    await repo.close();
  }
}

/** The cell's extent `e` is a patch of exactly blocks 11 and 12, holding `fresh`. */
async function assertPatchOf11And12(dir: string, e: Extent, fresh: Buffer): Promise<void> {
  assert.equal(e.length, 4, `a patch: ${JSON.stringify(e)}`);
  const id = e[2] as string;
  const blocks = await withStore(dir, {}, async (_s, repo) => {
    const pool = new WorkerPool(1);
    try {
      return decodePatch(await new ChunkReader(repo, pool).read(id), id).blocks;
    } finally {
      await pool.close();
    }
  });
  assert.deepEqual([...blocks.keys()], [11, 12]);
  assert.ok(Buffer.concat([blocks.get(11)!, blocks.get(12)!]).equals(fresh));
}

test('a cell read whole is compared with its base by digests, without reading the base; --full-read compares bytes', async () => {
  const bitmap = new Uint8Array(MiB / BS / 8).fill(0xff);
  const a: PlannedArea = { kind: 'partition', partition: 1, start: 0, size: MiB, used: { fs: 'ext4', blockSize: BS, usedBytes: MiB, bitmap } };
  const base = crypto.randomBytes(MiB);
  const cell = Buffer.from(base);
  const fresh = crypto.randomBytes(2 * BS);
  fresh.copy(cell, 11 * BS);
  for (const compareBytes of [false, true]) {
    const dir = path.join(tmpDir('devsnap-digests-'), 'repo');
    const baseId = await damagedBase(dir, base, true);
    const put = withStore(dir, { compareBytes }, async (store) => {
      const cells = new AreaCells(a, MiB, Extents.from([[0, MiB, baseId]]));
      await store.putFull(cells, 0, Buffer.from(cell), BS);
      await store.drain();
      return cells.extents().at(0);
    });
    if (compareBytes) {
      await assert.rejects(put, /damaged|corrupt/, 'compared by bytes, the base is read');
      continue;
    }
    await assertPatchOf11And12(dir, await put, fresh);
  }
});

test('compared by digests, blocks in use in the parent are compared without reading its chunk; a parent without digests is read', async () => {
  const bitmap = new Uint8Array(MiB / BS / 8).fill(0xff);
  const used: UsedBlocks = { fs: 'ext4', blockSize: BS, usedBytes: MiB, bitmap };
  const a: PlannedArea = { kind: 'partition', partition: 1, start: 0, size: MiB, used };
  const base = crypto.randomBytes(MiB);
  for (const withDigests of [true, false]) {
    const dir = path.join(tmpDir('devsnap-digests-'), 'repo');
    const baseId = await damagedBase(dir, base, withDigests);
    // Block 10 rewritten with the same bytes, 11-12 changed: a patch of 11-12.
    const fresh = crypto.randomBytes(2 * BS);
    const blocks: [number, Buffer][] = [
      [10 * BS, Buffer.from(base.subarray(10 * BS, 11 * BS))],
      [11 * BS, fresh],
    ];
    const parent = Extents.from([[0, MiB, baseId]]);
    const overlay = withStore(dir, {}, async (store) => {
      const cells = new AreaCells(a, MiB, parent);
      cells.parentUsed = used;
      await store.overlay(cells, 0, blocks, BS);
      await store.drain();
      return cells.extents().at(0);
    });
    if (!withDigests) {
      await assert.rejects(overlay, /damaged|corrupt/, 'control: without digests the base is read, and its damage found');
      continue;
    }
    await assertPatchOf11And12(dir, await overlay, fresh);
  }
});

test('verify calls digests that do not match their chunk damage (they would mislead an incremental); damaged ones too', async () => {
  const dir = tmpDir('devsnap-digests-');
  const repo = path.join(dir, 'repo');
  const disk = path.join(dir, 'disk.img');
  assert.equal(devsnap(['init', '--repo', repo, '--chunk-size', String(64 * 1024)]).status, 0);
  fs.writeFileSync(disk, seededBytes(3, 256 * 1024));
  const s = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(s.status, 0, s.stderr);
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0, 'a fresh repository verifies');

  const r = await Repository.open(repo, {}, quiet);
  await r.loadIndex();
  const [id, loc] = [...r.index].find(([, l]) => l.rawLength === 64 * 1024)!;
  await r.close();
  const file = path.join(r.folder!, r.packName(loc.pack));
  const tailAt = loc.offset + loc.length - digestFrameLength(loc.rawLength);
  const original = fs.readFileSync(file);
  // Digests of other bytes, with a valid check: only a comparison with the chunk's bytes finds them.
  const hash = await loadDigests();
  const wrong = digestFrame(hash, id, seededBytes(4, loc.rawLength));
  const forged = Buffer.from(original);
  wrong.copy(forged, tailAt);
  fs.writeFileSync(file, forged);
  let v = devsnap(['verify', '--repo', repo, '--json']);
  assert.equal(v.status, 8, v.stdout);
  assert.match(v.stdout, /block digests do not match its bytes/);

  const flipped = Buffer.from(original);
  flipped[tailAt + 30] ^= 0x40;
  fs.writeFileSync(file, flipped);
  v = devsnap(['verify', '--repo', repo, '--json']);
  assert.equal(v.status, 8, v.stdout);
  assert.match(v.stdout, /block digests are damaged/);

  fs.writeFileSync(file, original);
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
});
