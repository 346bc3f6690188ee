// The last pass's safety net (capture/point-in-time.ts `uncovered`): every block in use while writes
// are paused that the image does not hold as read is read again, whatever pass 1's map said, except
// the dead journal log (stored as zeros).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uncovered } from '../../../imaging/capture/point-in-time';
import { subtractRuns } from '../../../imaging/filesystems/runs';
import type { UsedBlocks } from '../../../imaging/filesystems/types';

const map = (blocks: number, used: number[], blockSize = 4096): UsedBlocks => {
  const bitmap = new Uint8Array(Math.ceil(blocks / 8));
  for (const b of used) bitmap[b >> 3] |= 1 << (b & 7);
  return { fs: 'ext4', blockSize, usedBytes: used.length * blockSize, bitmap };
};

test('blocks used now but not read by pass 1 are read again, as runs; the dead journal log is not', () => {
  const pass1 = map(64, [0, 1, 2, 10, 11, 40]);
  const now = map(64, [0, 1, 2, 3, 4, 10, 11, 12, 20, 21, 22, 23, 40, 63]);
  assert.deepEqual(uncovered(now, { map: pass1 }, [], 4096), [
    [3, 2],
    [12, 1],
    [20, 4],
    [63, 1],
  ]);
  assert.deepEqual(uncovered(now, { map: pass1 }, [[20, 4]], 4096), [
    [3, 2],
    [12, 1],
    [63, 1],
  ]);
  assert.deepEqual(uncovered(pass1, { map: pass1 }, [], 4096), [], 'nothing new');
  assert.deepEqual(
    uncovered(now, { map: pass1, runs: [[3, 1]] }, [[22, 10]], 4096),
    [
      [4, 1],
      [12, 1],
      [20, 2],
      [63, 1],
    ],
    'what was read over the map, and what is read anyway, are left out',
  );
  assert.deepEqual(uncovered(map(64, [], 4096), { map: now }, [], 4096), [], 'blocks freed since are not read');
  assert.deepEqual(uncovered(now, { map: map(64, [], 1024) }, [], 4096), [], 'maps of another granularity are not compared');
});

test('runs minus runs: what the changes or an incremental read already covers is left out', () => {
  assert.deepEqual(
    subtractRuns(
      [
        [3, 2],
        [12, 1],
        [20, 4],
        [63, 1],
      ],
      [
        [0, 4],
        [21, 2],
        [60, 10],
      ],
    ),
    [
      [4, 1],
      [12, 1],
      [20, 1],
      [23, 1],
    ],
  );
  assert.deepEqual(subtractRuns([[0, 10]], []), [[0, 10]]);
  assert.deepEqual(subtractRuns([[0, 10]], [[0, 10]]), []);
  assert.deepEqual(
    subtractRuns(
      [
        [0, 10],
        [20, 10],
      ],
      [[5, 20]],
    ),
    [
      [0, 5],
      [25, 5],
    ],
  );
});
