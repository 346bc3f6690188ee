// A busy NTFS mounted read-write through ntfs-3g (which the kernel cannot freeze) imaged at one point in
// time through its MFT records (filesystems/ntfs/state.ts): pass 1 reads every used cluster live (in the next
// snapshot, an incremental, only what changed since the first), then the volume is read-only for the
// last pass only, which re-reads what changed. Each restored volume must pass
// `ntfsfix -n` and hold every file state the adversarial writer (helpers/writers.ts) made durable
// before the image's moment; the writer meets the read-only moment as EROFS and carries on.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, fsck, isRoot, makeDisk, seededBytes, simulateUpgrade, tmpDir, withMount } from '../../helpers/disks';
import { checkImage, describeCheck, logBaseline, makeBigDir, pythonForMmap, startWriter, type WriterKind } from '../../helpers/writers';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const skip = !isRoot && 'needs root (loop devices, ntfs-3g, mount)';
/** Slack after the pause for a write the remount caught in flight (as point-in-time.test.ts allows). */
const FREEZE_ENTRY_MS = 500;
// ntfs-3g refuses O_DIRECT and keep-size fallocate (punch-hole): those kinds are left out.
const KINDS: WriterKind[] = ['overwrite', 'truncate', 'rename', 'hardlink', 'reuse', 'append', 'bigdir', ...(pythonForMmap() ? ['mmap' as const] : [])];

test(
  'a busy NTFS through ntfs-3g: two-pass, read-only for the last pass only, then an incremental reading only changed files; each clean after restore, every durable file state there',
  { skip },
  async () => {
    const work = tmpDir('devsnap-ntfs-run-');
    const disk = path.join(work, 'disk.img');
    const repo = path.join(work, 'repo');
    const log = path.join(work, 'writer.jsonl');
    const [part] = await makeDisk(disk, { table: 'gpt', size: 258 * MiB, partitions: [{ size: 256 * MiB, fs: 'ntfs' }] });
    const at = { offset: part.start, sizeLimit: part.size };
    const dev = attachLoop(disk, at);
    let snaps: { at: number; snap: ReturnType<typeof devsnap>; ops: Record<string, number> }[];
    let plan: ReturnType<typeof devsnap>;
    try {
      snaps = await withMount(dev, 'ntfs', {}, async (mnt) => {
        for (let i = 0; i < 400; i++) {
          const p = path.join(mnt, `filler/d${i % 16}/f${i}`);
          fs.mkdirSync(path.dirname(p), { recursive: true });
          fs.writeFileSync(p, i % 3 ? seededBytes(i, 4096 + ((i * 7919) % (96 * 1024))) : Buffer.alloc(20_000, `line ${i}\n`));
        }
        makeBigDir(path.join(mnt, 'big'), 2000);
        fs.writeFileSync(path.join(mnt, 'untouched.bin'), seededBytes(99, 32 * MiB)); // what an incremental does not read again
        logBaseline(mnt, log);
        plan = devsnap(['snapshot', disk, '--repo', repo, '--plan', '--json']);
        const busy = async (seed: number) => {
          const writer = await startWriter({ dir: mnt, log, seed, kinds: KINDS, bigDir: 'big' });
          let ops: Record<string, number> = {};
          try {
            await new Promise((r) => setTimeout(r, 300));
            const at = Date.now();
            const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
            return {
              at,
              snap,
              get ops() {
                return ops;
              },
            };
          } finally {
            ops = await writer.stop();
          }
        };
        const first = await busy(5);
        // Between the two: files changed in place, removed and added (then logged, durable).
        simulateUpgrade(path.join(mnt, 'filler'), 0.1, 7);
        logBaseline(mnt, log);
        return [first, await busy(6)];
      });
    } finally {
      detachLoop(dev);
    }
    assert.equal(plan!.status, 0, plan!.stderr);
    assert.deepEqual(
      plan!.json.mounts.map((m: { how: string }) => m.how),
      ['two-pass-ro'],
    );
    for (const [n, { at: started, snap, ops }] of snaps!.entries()) {
      assert.equal(snap.status, 0, snap.stderr);
      const s = snap.json.snapshot;
      assert.equal(s.consistency, 'frozen-two-pass');
      assert.deepEqual(
        s.pointInTime.methods.map((m: { how: string }) => m.how),
        ['two-pass-ro'],
      );
      assert.ok(s.pointInTime.rereadBytes < s.partitions[0].usedBytes, `the last pass re-read ${s.pointInTime.rereadBytes} of ${s.partitions[0].usedBytes} used bytes`);
      if (n === 1) {
        // The incremental: pass 1 read what changed since the first snapshot, not every used cluster.
        assert.equal(s.readMode, 'changes', snap.stderr);
        assert.ok(s.stats.bytesRead < s.partitions[0].usedBytes / 2, `the incremental read ${s.stats.bytesRead} of ${s.partitions[0].usedBytes} used bytes`);
      }
      console.log(
        `  NTFS ${n ? 'incremental' : 'full'}: read-only ${s.pointInTime.pauseSeconds.toFixed(2)} s, re-read ${(s.pointInTime.rereadBytes / MiB).toFixed(1)} MiB; read ${(s.stats.bytesRead / MiB).toFixed(1)} MiB of ${(s.partitions[0].usedBytes / MiB).toFixed(1)} MiB used; writer ${JSON.stringify(ops)}`,
      );

      const out = path.join(work, `restored-${n}.img`);
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
      fs.rmSync(out, { force: true });
    }
  },
);
