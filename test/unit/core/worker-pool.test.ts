// imaging/repo/worker-pool.ts starts its workers as the work needs them: one for an incremental's few small
// jobs (each worker costs ~30 MiB), all of them once jobs wait for a busy worker (a full snapshot).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool } from '../../../imaging/repo/worker-pool';
import { seededBytes } from '../../helpers/disks';

test('one worker while jobs come one at a time; a second once jobs wait for a busy one', async () => {
  const pool = new WorkerPool(2);
  try {
    assert.equal(pool.started, 1);
    const small = seededBytes(1, 64 << 10);
    for (let i = 0; i < 20; i++) await pool.compress(small, 3);
    assert.equal(pool.started, 1, 'jobs that never waited start no second worker');
    // Four 1 MiB chunks in flight at a time for a second, as a snapshot's saver keeps them: a backlog
    // for longer than the pool waits before it grows.
    const chunk = seededBytes(2, 1 << 20);
    const until = performance.now() + 1000;
    const lane = async () => {
      while (performance.now() < until) await pool.compress(chunk, 3);
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
    assert.equal(pool.started, 2, 'a backlog starts the second worker');
  } finally {
    await pool.close();
  }
});

test('limit() stops the workers beyond it (idle ones at once, busy ones when done); the rest go on', async () => {
  const pool = new WorkerPool(2);
  try {
    const chunk = seededBytes(3, 1 << 20);
    // Four chunks in flight at a time for a second: a backlog that starts the second worker.
    const backlog = async () => {
      const until = performance.now() + 1000;
      const lane = async () => {
        while (performance.now() < until) await pool.compress(chunk, 3);
      };
      await Promise.all([lane(), lane(), lane(), lane()]);
    };
    await backlog();
    assert.equal(pool.started, 2);
    // A job in flight while the limit drops: its worker may be the one to go once it replies.
    const inFlight = [pool.compress(chunk, 3), pool.compress(chunk, 3)];
    pool.limit(1);
    for (const f of inFlight) assert.ok((await f).length > 0);
    assert.equal(pool.started, 1, 'one worker left');
    await backlog();
    assert.equal(pool.started, 1, 'a backlog no longer starts a second one; the stopped worker was no failure');
  } finally {
    await pool.close();
  }
});
