// verifyEveryDays: `auto run` (the timer's run) verifies the snapshot it took when the last periodic
// verify is older than that, records it in the state file, and fails when the verify finds damage,
// so that systemd shows the run as failed. A real repository; the clock is the run's `now`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runAutomatic, readState } from '../../../imaging/automation/run';
import { runOp } from '../../../imaging/ops/registry';
import type { AutoConfig } from '../../../imaging/protocol';
import { makeFsImage, sh, tmpDir } from '../../helpers/disks';

const DAY = 86400_000;

test('verifyEveryDays: verified once and recorded, not again within the days, and a damaged pack makes the run fail', async () => {
  const dir = tmpDir('devsnap-auto-verify-');
  const source = path.join(dir, 'disk.img');
  await makeFsImage(source, { fs: 'ext4', size: 8 << 20 });
  const cfg: AutoConfig = { repository: path.join(dir, 'repo'), source, verifyEveryDays: 7 };
  const stateFile = path.join(dir, 'auto-state.json');
  const t0 = new Date('2030-01-01T03:00:00Z');
  const run = (at: Date) => runAutomatic(cfg, { trigger: 'scheduled', label: 'scheduled: daily', runOp, stateFile, log: () => undefined, now: () => at });

  const first = await run(t0);
  assert.equal(first.outcome, 'taken');
  assert.equal(first.verified?.id, first.snapshot!.id);
  assert.ok(first.verified!.chunksChecked > 0);
  assert.deepEqual(readState(stateFile).lastVerify, { at: t0.toISOString(), id: first.snapshot!.id, ok: true });

  // A day later: a snapshot, no verify.
  const second = await run(new Date(t0.getTime() + DAY));
  assert.equal(second.outcome, 'taken');
  assert.equal(second.verified, undefined);
  assert.equal(readState(stateFile).lastVerify?.at, t0.toISOString());

  // The packs damaged in the middle; eight days after the verify it is due, finds it, and the run fails.
  const packs = sh('find', [path.join(cfg.repository, 'data'), '-name', '*.pack'])
    .stdout.trim()
    .split('\n')
    .filter(Boolean);
  assert.ok(packs.length > 0);
  for (const p of packs) {
    const fd = fs.openSync(p, 'r+');
    const pos = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(64);
    fs.readSync(fd, b, 0, b.length, pos);
    for (let i = 0; i < b.length; i++) b[i] ^= 0x5a;
    fs.writeSync(fd, b, 0, b.length, pos);
    fs.closeSync(fd);
  }
  const t8 = new Date(t0.getTime() + 8 * DAY);
  await assert.rejects(run(t8), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'DAMAGED');
    assert.match(err.message, /The periodic verify of [0-9a-f]+ (found damage|failed)/);
    return true;
  });
  const st = readState(stateFile);
  assert.equal(st.lastVerify?.ok, false);
  assert.equal(st.lastVerify?.at, t8.toISOString());
  assert.equal(st.lastRun?.outcome, 'failed');
});
