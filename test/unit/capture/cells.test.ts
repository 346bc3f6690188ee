// capture/cells.ts against a real repository: how a cell of an incremental is stored when new blocks
// are written over it. Blocks that were free in the parent image are stored as a patch without the base
// chunk being read at all (the base is made unreadable here to prove it); blocks that were in use are
// compared with the base (which then must be read).
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
import { applyPatch, decodePatch } from '../../../imaging/repo/patch';
import type { UsedBlocks } from '../../../imaging/filesystems/types';
import type { Extent } from '../../../imaging/repo/manifest';
import { Extents } from '../../../imaging/repo/extents';
import { cleanup, tmpDir } from '../../helpers/disks';

after(cleanup);
const MiB = 1 << 20;
const BS = 4096;
const quiet = () => undefined;

/** One run of the engine's storing machinery over `repo`, as a snapshot sets it up. */
async function run<T>(dir: string, f: (store: CellStore, repo: Repository) => Promise<T>): Promise<T> {
  const repo = await Repository.open(dir, {}, quiet);
  await repo.loadIndex();
  const pool = new WorkerPool(1);
  const writer = repo.newPackWriter();
  const store = new CellStore(repo, new ChunkSaver(writer, pool, 3, dir), new ChunkReader(repo, pool, writer), 2);
  try {
    const r = await f(store, repo);
    await store.drain();
    await writer.finish();
    return r;
  } finally {
    await pool.close();
  }
}

/** A one-cell partition area whose used map marks blocks [0, usedBlocks). */
function area(usedBlocks: number): PlannedArea {
  const bitmap = new Uint8Array(MiB / BS / 8);
  for (let b = 0; b < usedBlocks; b++) bitmap[b >> 3] |= 1 << (b & 7);
  const used: UsedBlocks = { fs: 'ext4', blockSize: BS, usedBytes: usedBlocks * BS, bitmap };
  return { kind: 'partition', partition: 1, start: 0, size: MiB, used };
}

/** Removes every pack (the index still lists their chunks): any read of the base chunk now fails. */
function removePacks(dir: string): void {
  for (const sub of fs.readdirSync(path.join(dir, 'data'))) fs.rmSync(path.join(dir, 'data', sub), { recursive: true });
}

/** A parent snapshot of one cell holding `base`, its first 64 blocks in use (the rest free, stored as the bytes read): its extents. */
function storeParent(dir: string, parentArea: PlannedArea, base: Buffer): Promise<Extents> {
  return run(dir, async (store) => {
    const cells = new AreaCells(parentArea, MiB);
    await store.putFull(cells, 0, Buffer.from(base), BS); // the store takes the buffer (moved to a worker)
    await store.drain();
    return cells.extents();
  });
}

/** An incremental that writes `blocks` over the parent's cell: the cell's extent as stored. */
function overlayOnParent(dir: string, parentArea: PlannedArea, parent: Extents, blocks: [number, Buffer][]): Promise<Extent> {
  return run(dir, async (store) => {
    const cells = new AreaCells(parentArea, MiB, parent);
    cells.parentUsed = parentArea.used!;
    await store.overlay(cells, 0, blocks, BS);
    await store.drain();
    return cells.extents().at(0);
  });
}

test('new blocks over space the parent had free become a patch without reading the base; blocks in use are compared with it', async () => {
  const dir = path.join(tmpDir('devsnap-cells-'), 'repo');
  await Repository.init(dir, {}, quiet);
  const base = crypto.randomBytes(MiB);
  const parentArea = area(64);
  const extents = await storeParent(dir, parentArea, base);
  const baseId = extents.at(0)[2];
  removePacks(dir);

  // Blocks 100-102: free in the parent (a file written since).
  const fresh = crypto.randomBytes(3 * BS);
  const r = await overlayOnParent(dir, parentArea, extents, [[100 * BS, fresh]]);
  assert.equal(r.length, 4, `a patch: ${JSON.stringify(r)}`);
  assert.equal(r[3], baseId);

  // Control: the same over blocks 10-12, in use in the parent, must compare with the base (now missing).
  await assert.rejects(overlayOnParent(dir, parentArea, extents, [[10 * BS, fresh]]), /missing from the repository/);
});

test('the patch made without the base holds exactly the new blocks, over an earlier patch of the cell', async () => {
  const dir = path.join(tmpDir('devsnap-cells-'), 'repo');
  await Repository.init(dir, {}, quiet);
  const base = crypto.randomBytes(MiB);
  const parentArea = area(64);
  const first = await storeParent(dir, parentArea, base);
  // An incremental changes block 5 (in use: compared with the base, a patch of one block).
  const b5 = crypto.randomBytes(BS);
  const second = await overlayOnParent(dir, parentArea, first, [[5 * BS, b5]]);
  assert.equal(second.length, 4, 'a patch');
  // The next one writes blocks 200-201, free in its parent: merged with the earlier patch, no base read.
  const fresh = crypto.randomBytes(2 * BS);
  const third = await overlayOnParent(dir, parentArea, Extents.from([second]), [[200 * BS, fresh]]);
  assert.equal(third.length, 4, 'a patch');
  const [patchId, baseId] = [third[2] as string, third[3] as string];
  await run(dir, async (_store, repo) => {
    const pool = new WorkerPool(1);
    try {
      const reader = new ChunkReader(repo, pool);
      const patch = decodePatch(await reader.read(patchId), patchId);
      assert.deepEqual(
        [...patch.blocks.keys()].sort((x, y) => x - y),
        [5, 200, 201],
      );
      const expected = Buffer.from(base);
      b5.copy(expected, 5 * BS);
      fresh.copy(expected, 200 * BS);
      assert.ok(applyPatch(await reader.read(baseId), patch, patchId, baseId).equals(expected), 'base + patch is the cell with both changes');
    } finally {
      await pool.close();
    }
  });
});
