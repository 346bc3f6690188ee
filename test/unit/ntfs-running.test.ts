// A busy NTFS mounted read-write through ntfs-3g (which the kernel cannot freeze) imaged at one point in
// time through its MFT records (fs/ntfs-state.ts): pass 1 reads every used cluster live, then the volume
// is read-only for the last pass only, which re-reads what changed. The restored volume must pass
// `ntfsfix -n` and hold every file state the adversarial writer (helpers/writers.ts) made durable
// before the image's moment; the writer meets the read-only moment as EROFS and carries on.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, fsck, isRoot, makeDisk, seededBytes, tmpDir, withMount } from '../helpers/disks';
import { checkImage, describeCheck, logBaseline, makeBigDir, pythonForMmap, startWriter, type WriterKind } from '../helpers/writers';
import { devsnap } from '../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const skip = !isRoot && 'needs root (loop devices, ntfs-3g, mount)';
/** Slack after the pause for a write the remount caught in flight (as point-in-time.test.ts allows). */
const FREEZE_ENTRY_MS = 500;
// ntfs-3g refuses O_DIRECT and keep-size fallocate (punch-hole): those kinds are left out.
const KINDS: WriterKind[] = ['overwrite', 'truncate', 'rename', 'hardlink', 'reuse', 'append', 'bigdir', ...(pythonForMmap() ? ['mmap' as const] : [])];

test('a busy NTFS through ntfs-3g: two-pass, read-only for the last pass only, clean after restore, every durable file state there', { skip }, async () => {
  const work = tmpDir('devsnap-ntfs-run-');
  const disk = path.join(work, 'disk.img');
  const repo = path.join(work, 'repo');
  const log = path.join(work, 'writer.jsonl');
  const [part] = await makeDisk(disk, { table: 'gpt', size: 258 * MiB, partitions: [{ size: 256 * MiB, fs: 'ntfs' }] });
  const at = { offset: part.start, sizeLimit: part.size };
  const dev = attachLoop(disk, at);
  let snap: ReturnType<typeof devsnap>;
  let plan: ReturnType<typeof devsnap>;
  let started = 0;
  let ops: Record<string, number> = {};
  try {
    snap = await withMount(dev, 'ntfs', {}, async (mnt) => {
      for (let i = 0; i < 400; i++) {
        const p = path.join(mnt, `filler/d${i % 16}/f${i}`);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, i % 3 ? seededBytes(i, 4096 + ((i * 7919) % (96 * 1024))) : Buffer.alloc(20_000, `line ${i}\n`));
      }
      makeBigDir(path.join(mnt, 'big'), 2000);
      logBaseline(mnt, log);
      plan = devsnap(['snapshot', disk, '--repo', repo, '--plan', '--json']);
      const writer = await startWriter({ dir: mnt, log, seed: 5, kinds: KINDS, bigDir: 'big' });
      try {
        await new Promise((r) => setTimeout(r, 300));
        started = Date.now();
        return devsnap(['snapshot', disk, '--repo', repo, '--json']);
      } finally {
        ops = await writer.stop();
      }
    });
  } finally {
    detachLoop(dev);
  }
  assert.equal(plan!.status, 0, plan!.stderr);
  assert.deepEqual(plan!.json.mounts.map((m: { how: string }) => m.how), ['two-pass-ro']);
  assert.equal(snap.status, 0, snap.stderr);
  const s = snap.json.snapshot;
  assert.equal(s.consistency, 'frozen-two-pass');
  assert.deepEqual(s.pointInTime.methods.map((m: { how: string }) => m.how), ['two-pass-ro']);
  assert.ok(s.pointInTime.rereadBytes < s.partitions[0].usedBytes, `the last pass re-read ${s.pointInTime.rereadBytes} of ${s.partitions[0].usedBytes} used bytes`);
  console.log(`  NTFS two-pass: read-only ${s.pointInTime.pauseSeconds.toFixed(2)} s, re-read ${(s.pointInTime.rereadBytes / MiB).toFixed(1)} MiB of ${(s.partitions[0].usedBytes / MiB).toFixed(1)} MiB used; writer ${JSON.stringify(ops)}`);

  const out = path.join(work, 'restored.img');
  const r = devsnap(['restore', snap.json.id, out, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const rdev = attachLoop(out, { ...at, readOnly: true });
  try {
    const check = fsck('ntfs', rdev);
    assert.ok(check.ok, check.output);
    await withMount(rdev, 'ntfs', { readOnly: true }, (mnt) => {
      const T = Date.parse(s.pointInTime.at);
      const res = checkImage(mnt, log, T, { until: T + s.pointInTime.pauseSeconds * 1000 + FREEZE_ENTRY_MS, since: started });
      console.log(`  ${describeCheck(res, T)}`);
      assert.equal(res.failures.length, 0, describeCheck(res, T));
      assert.ok(res.checked > 400 && res.checkedSince > 0, describeCheck(res, T));
    });
  } finally {
    detachLoop(rdev);
  }
});
