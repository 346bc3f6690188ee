// A busy, mounted btrfs imaged at one point in time through its own generations (filesystems/btrfs/btrfs.ts): pass 1
// reads every used block live, the frozen pass only what a generation after the first one wrote; the
// next snapshot (an incremental) reads in pass 1 only what generations after its parent's wrote. Each
// restored filesystem must pass `btrfs check`, mount without replaying a log, and hold every file state
// the adversarial writer (helpers/writers.ts) made durable before the image's moment.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, isRoot, makeDisk, seededBytes, sh, simulateUpgrade, tmpDir, withMount } from '../../helpers/disks';
import { checkImage, describeCheck, logBaseline, makeBigDir, pythonForMmap, readLog, startWriter, WRITER_KINDS } from '../../helpers/writers';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const skip = !isRoot && 'needs root (loop devices, mount, fsfreeze)';
/** Slack after the pause for a write the freeze caught in flight (as point-in-time.test.ts allows). */
const FREEZE_ENTRY_MS = 500;

test('a busy mounted btrfs: two-pass through its generations, then an incremental reading only later generations; each clean after restore, every durable file state there', { skip }, async () => {
  const work = tmpDir('devsnap-btrfs-run-');
  const disk = path.join(work, 'disk.img');
  const repo = path.join(work, 'repo');
  const log = path.join(work, 'writer.jsonl');
  const [part] = await makeDisk(disk, { table: 'gpt', size: 386 * MiB, partitions: [{ size: 384 * MiB, fs: 'none' }] });
  const at = { offset: part.start, sizeLimit: part.size };
  const dev = attachLoop(disk, at);
  let snaps: { at: number; snap: ReturnType<typeof devsnap> }[];
  let planHow: string[];
  try {
    sh('mkfs.btrfs', ['-q', '-f', dev]);
    snaps = await withMount(dev, 'btrfs', {}, async (mnt) => {
      // Content: files (some compressible), a subvolume with a snapshot, a NODATACOW file, a big directory.
      for (let i = 0; i < 600; i++) {
        const p = path.join(mnt, `filler/d${i % 20}/f${i}`);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, i % 3 ? seededBytes(i, 4096 + ((i * 7919) % (160 * 1024))) : Buffer.alloc(20_000, `line ${i}\n`));
      }
      sh('btrfs', ['subvolume', 'create', path.join(mnt, 'home')]);
      fs.writeFileSync(path.join(mnt, 'home/notes.txt'), 'in a subvolume\n');
      sh('btrfs', ['subvolume', 'snapshot', path.join(mnt, 'home'), path.join(mnt, 'home-before')]);
      fs.writeFileSync(path.join(mnt, 'vm.img'), '');
      sh('chattr', ['+C', path.join(mnt, 'vm.img')]);
      fs.writeFileSync(path.join(mnt, 'vm.img'), crypto.randomBytes(8 * MiB));
      makeBigDir(path.join(mnt, 'big'), 3000);
      logBaseline(mnt, log);

      const plan = devsnap(['snapshot', disk, '--repo', repo, '--plan', '--json']);
      assert.equal(plan.status, 0, plan.stderr);
      planHow = plan.json.mounts.map((m: { how: string }) => m.how);

      const busy = async (seed: number) => {
        const writer = await startWriter({ dir: mnt, log, seed, kinds: [...WRITER_KINDS], bigDir: 'big' });
        try {
          await new Promise((r) => setTimeout(r, 300)); // some writes before the snapshot starts
          const at = Date.now();
          return { at, snap: devsnap(['snapshot', disk, '--repo', repo, '--json']) };
        } finally {
          await writer.stop();
        }
      };
      const first = await busy(11);
      // Between the two: files changed in place, appended to, removed and added (then logged, durable).
      simulateUpgrade(path.join(mnt, 'filler'), 0.1, 7);
      logBaseline(mnt, log);
      return [first, await busy(12)];
    });
  } finally {
    detachLoop(dev);
  }
  assert.deepEqual(planHow!, ['two-pass'], 'the plan says btrfs is two-pass');
  for (const [n, { at: started, snap }] of snaps!.entries()) {
    assert.equal(snap.status, 0, snap.stderr);
    const s = snap.json.snapshot;
    assert.equal(s.consistency, 'frozen-two-pass');
    assert.deepEqual(
      s.pointInTime.methods.map((m: { how: string }) => m.how),
      ['two-pass'],
    );
    assert.equal(s.partitions[0].fs, 'btrfs');
    assert.ok(s.pointInTime.rereadBytes < s.partitions[0].usedBytes / 2, `the frozen pass re-read ${s.pointInTime.rereadBytes} of ${s.partitions[0].usedBytes} used bytes`);
    if (n === 1) {
      // The incremental: pass 1 read what changed since the first snapshot, not every used block.
      assert.equal(s.readMode, 'changes', snap.stderr);
      assert.ok(s.stats.bytesRead < s.partitions[0].usedBytes / 2, `the incremental read ${s.stats.bytesRead} of ${s.partitions[0].usedBytes} used bytes`);
    }
    console.log(
      `  btrfs ${n ? 'incremental' : 'full'}: paused ${s.pointInTime.pauseSeconds.toFixed(2)} s, re-read ${(s.pointInTime.rereadBytes / MiB).toFixed(1)} MiB; read ${(s.stats.bytesRead / MiB).toFixed(1)} MiB of ${(s.partitions[0].usedBytes / MiB).toFixed(1)} MiB used`,
    );

    const out = path.join(work, `restored-${n}.img`);
    const r = devsnap(['restore', snap.json.id, out, '--repo', repo, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const rdev = attachLoop(out, { ...at, readOnly: true });
    try {
      const check = sh('btrfs', ['check', '--readonly', rdev], { allowFail: true });
      assert.equal(check.status, 0, `btrfs check --readonly:\n${check.stdout}${check.stderr}`);
      // No log replay: what the image holds is all the kernel may use.
      await withMount(rdev, 'btrfs', { options: 'ro,rescue=nologreplay' }, (mnt) => {
        const T = Date.parse(s.pointInTime.at);
        const res = checkImage(mnt, log, T, { until: T + s.pointInTime.pauseSeconds * 1000 + FREEZE_ENTRY_MS, since: started });
        console.log(`  ${describeCheck(res, T)}`);
        assert.equal(res.failures.length, 0, describeCheck(res, T));
        assert.ok(res.checked > 600 && res.checkedSince > 0, describeCheck(res, T));
        assert.equal(fs.readFileSync(path.join(mnt, 'home/notes.txt'), 'utf8'), 'in a subvolume\n');
        assert.ok(fs.existsSync(path.join(mnt, 'home-before/notes.txt')), 'the snapshot subvolume is there');
      });
    } finally {
      detachLoop(rdev);
    }
    fs.rmSync(out, { force: true });
  }
  if (!pythonForMmap()) console.log('  (python3 with mmap is missing: the writer ran without its mmap writes)');
  assert.ok(readLog(log).length > 600);
});
