// The NTFS change scan (filesystems/ntfs/state.ts) on volumes made by mkntfs and changed through ntfs-3g. The key
// oracle: image A, its state; the original changed every way we can think of → image B, its state. Every
// cluster in use in B (readNtfs) whose bytes differ from A must lie in ntfsChangesSince(B, S_A, S_B).runs,
// A patched with those runs must pass ntfsfix -n and show B's files and streams, and the runs must stay
// selective. Then a live capture on a mounted device with a writer running, atime-only reads, and hostile
// volumes (boot sector, fixups, runs past the volume, cyclic attribute lists, a fuzz loop).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../../../imaging/core/errors';
import { readNtfs } from '../../../imaging/filesystems/ntfs/used-blocks';
import { ntfsChangedRecords, ntfsChangesSince, ntfsIncomparable, readNtfsState, type NtfsChanges, type NtfsState } from '../../../imaging/filesystems/ntfs/state';
import type { ByteReader, UsedBlocks } from '../../../imaging/filesystems/types';
import { attachLoop, cleanup, detachLoop, fileReader, isRoot, memReader, makeFsImage, ntfsTreeDigest, onCleanup, prng, seededBytes, sh, tmpDir, writeAt } from '../../helpers/disks';

const work = tmpDir('devsnap-ntfs-state-');
after(cleanup);
const MiB = 1 << 20;
const CLUSTER = 4096;
const needsRoot = { skip: isRoot ? false : 'needs root: loop devices and ntfs-3g' };

async function withReader<T>(file: string, fn: (r: ByteReader) => Promise<T>, size?: number): Promise<T> {
  const r = fileReader(file, 0, size);
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}

async function mustState(file: string, opts: { live?: boolean; size?: number } = {}): Promise<NtfsState> {
  const s = await withReader(file, (r) => readNtfsState(r, { live: opts.live }), opts.size);
  assert.ok(s, `readNtfsState(${path.basename(file)}) is null`);
  return s;
}

/** Mounts an image (through a loop device) or a device with ntfs-3g for fn; unmounts and detaches even when fn fails. */
async function mounted<T>(img: string, options: string[], fn: (dir: string, dev: string) => T | Promise<T>): Promise<T> {
  const dev = attachLoop(img);
  const dir = tmpDir('ntfs-state-mnt-');
  let isMounted = false;
  onCleanup(() => {
    if (isMounted) sh('umount', ['-l', dir], { allowFail: true });
  });
  try {
    sh('ntfs-3g', [...(options.length ? ['-o', options.join(',')] : []), dev, dir]);
    isMounted = true;
    const out = await fn(dir, dev);
    sh('umount', [dir]);
    isMounted = false;
    sh('blockdev', ['--flushbufs', dev], { allowFail: true });
    return out;
  } finally {
    if (isMounted) sh('umount', ['-l', dir], { allowFail: true });
    isMounted = false;
    detachLoop(dev);
  }
}

const copy = (a: string, b: string): void => {
  sh('cp', ['--sparse=always', a, b]);
};

function inRunsMap(runs: Array<[number, number]>, clusters: number): Uint8Array {
  const m = new Uint8Array(clusters);
  for (const [s, c] of runs) m.fill(1, Math.min(s, clusters), Math.min(s + c, clusters));
  return m;
}

const isSet = (u: UsedBlocks, i: number): boolean => (u.bitmap[i >> 3] & (1 << (i & 7))) !== 0;

/** Clusters in use in `b` (per readNtfs on b) whose bytes differ between the two images and that no run covers. */
async function escapes(a: string, b: string, runs: Array<[number, number]>, sizeB?: number): Promise<{ escaped: number[]; differing: number; used: UsedBlocks }> {
  return withReader(a, (ra) =>
    withReader(
      b,
      async (rb) => {
        const used = await readNtfs(rb);
        assert.ok(used && !used.full, 'readNtfs cannot map B');
        const clusters = Math.ceil(rb.size / CLUSTER);
        const covered = inRunsMap(runs, clusters);
        const escaped: number[] = [];
        let differing = 0;
        const step = 256;
        for (let c = 0; c < clusters; c += step) {
          const n = Math.min(step, clusters - c);
          const [x, y] = await Promise.all([ra.read(c * CLUSTER, n * CLUSTER), rb.read(c * CLUSTER, n * CLUSTER)]);
          for (let i = 0; i < n; i++) {
            if (!isSet(used, c + i)) continue;
            if (x.compare(y, i * CLUSTER, (i + 1) * CLUSTER, i * CLUSTER, (i + 1) * CLUSTER) === 0) continue;
            differing++;
            if (!covered[c + i]) escaped.push(c + i);
          }
        }
        return { escaped, differing, used };
      },
      sizeB,
    ),
  );
}

/** Who owns a cluster, per ntfscluster (for the failure message). */
function owner(img: string, c: number): string {
  const r = sh('ntfscluster', ['-f', '-c', String(c), img], { allowFail: true });
  return `cluster ${c}: ${
    (r.stdout + r.stderr)
      .trim()
      .split('\n')
      .filter((l) => /Inode|\//.test(l))
      .slice(0, 3)
      .join(' | ') || '(no owner found)'
  }`;
}

async function changesOf(img: string, before: NtfsState, afterState: NtfsState): Promise<NtfsChanges> {
  return withReader(img, (r) => ntfsChangesSince(r, before, afterState));
}

/** Copies the runs from `from` into `to` (same size). */
async function patch(to: string, from: string, runs: Array<[number, number]>): Promise<void> {
  await withReader(from, async (r) => {
    for (const [s, c] of runs) {
      for (let k = 0; k < c; k += 256) {
        const n = Math.min(256, c - k);
        writeAt(to, (s + k) * CLUSTER, await r.read((s + k) * CLUSTER, n * CLUSTER));
      }
    }
  });
}

const bytesOf = (runs: Array<[number, number]>): number => runs.reduce((n, [, c]) => n + c * CLUSTER, 0);
const mib = (n: number): string => `${(n / MiB).toFixed(2)} MiB`;

async function oracle(label: string, a: string, b: string, sa: NtfsState, sb: NtfsState): Promise<{ ch: NtfsChanges; used: UsedBlocks }> {
  assert.equal(ntfsIncomparable(sa, sb), null);
  const ch = await changesOf(b, sa, sb);
  const { escaped, differing, used } = await escapes(a, b, ch.runs);
  console.log(
    `${label}: ${differing} used clusters differ; runs ${mib(bytesOf(ch.runs))} (always ${mib(ch.alwaysBytes)}, changed files ${mib(ch.changedBytes)}, ${ch.changedRecords} records) of ${mib(used.usedBytes)} used`,
  );
  assert.deepEqual(
    escaped.slice(0, 5).map((c) => owner(b, c)),
    [],
    `${escaped.length} changed clusters escape the runs`,
  );
  return { ch, used };
}

/** Content chunks of a file written with seededBytes: clusters of B that hold them must stay out of the runs if the file did not change. */
function chunkHashes(data: Buffer): Set<string> {
  const out = new Set<string>();
  for (let o = 0; o + CLUSTER <= data.length; o += CLUSTER)
    out.add(
      crypto
        .createHash('sha1')
        .update(data.subarray(o, o + CLUSTER))
        .digest('hex'),
    );
  return out;
}

async function clustersHolding(img: string, hashes: Set<string>): Promise<number[]> {
  return withReader(img, async (r) => {
    const out: number[] = [];
    for (let c = 0; c * CLUSTER < r.size; c += 256) {
      const buf = await r.read(c * CLUSTER, 256 * CLUSTER);
      for (let i = 0; i < 256; i++)
        if (
          hashes.has(
            crypto
              .createHash('sha1')
              .update(buf.subarray(i * CLUSTER, (i + 1) * CLUSTER))
              .digest('hex'),
          )
        )
          out.push(c + i);
    }
    return out;
  });
}

const STREAMS = 'streams_interface=windows';
const largeSize = (i: number) => 2 * MiB + i * 317 * 1024;

function fill(dir: string): void {
  fs.mkdirSync(path.join(dir, 'small'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'small', `f${i}.txt`), seededBytes(i, 10 + ((i * 97) % 3000)));
  fs.mkdirSync(path.join(dir, 'large'));
  for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(dir, 'large', `L${i}.bin`), seededBytes(1000 + i, largeSize(i)));
  fs.mkdirSync(path.join(dir, 'big'));
  for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(dir, 'big', `an-entry-with-a-rather-long-name-${i}.txt`), `${i}`);
  fs.writeFileSync(path.join(dir, 'large', 'L0.bin:meta'), seededBytes(7, 20000));
  fs.writeFileSync(path.join(dir, 'small', 'f1.txt:tag'), 'a resident stream');
  const fd = fs.openSync(path.join(dir, 'sparse.bin'), 'w');
  fs.ftruncateSync(fd, 64 * MiB);
  fs.writeSync(fd, seededBytes(8, 64 * 1024), 0, 64 * 1024, 10 * MiB);
  fs.writeSync(fd, seededBytes(9, MiB), 0, MiB, 40 * MiB);
  fs.closeSync(fd);
  fs.mkdirSync(path.join(dir, 'links'));
  fs.linkSync(path.join(dir, 'large', 'L1.bin'), path.join(dir, 'links', 'L1-link'));
  fs.linkSync(path.join(dir, 'small', 'f2.txt'), path.join(dir, 'links', 'f2-link'));
  // A file fragmented by interleaved fillers, so far that its runlist needs an attribute list.
  fs.mkdirSync(path.join(dir, 'filler'));
  for (let i = 0; i < 700; i++) {
    fs.appendFileSync(path.join(dir, 'frag.bin'), seededBytes(5000 + i, CLUSTER));
    fs.writeFileSync(path.join(dir, 'filler', `x${i}`), seededBytes(9000 + i, CLUSTER));
  }
  for (let i = 0; i < 700; i += 2) fs.unlinkSync(path.join(dir, 'filler', `x${i}`));
}

function change(dir: string): void {
  const rnd = prng(42);
  const fd = fs.openSync(path.join(dir, 'large', 'L2.bin'), 'r+'); // in place, as dd conv=notrunc does
  fs.writeSync(fd, seededBytes(77, 10 * CLUSTER), 0, 10 * CLUSTER, 100 * CLUSTER);
  fs.closeSync(fd);
  sh('dd', ['if=/dev/urandom', `of=${path.join(dir, 'large', 'L7.bin')}`, 'bs=4096', 'seek=3', 'count=2', 'conv=notrunc', 'status=none']);
  fs.appendFileSync(path.join(dir, 'large', 'L3.bin'), seededBytes(78, 300_000));
  fs.truncateSync(path.join(dir, 'large', 'L4.bin'), 100_000);
  fs.writeFileSync(path.join(dir, 'large', 'L5.tmp'), seededBytes(79, 700_000));
  fs.renameSync(path.join(dir, 'large', 'L5.tmp'), path.join(dir, 'large', 'L5.bin'));
  for (let i = 10; i < 60; i++) fs.unlinkSync(path.join(dir, 'small', `f${i}.txt`));
  fs.mkdirSync(path.join(dir, 'new'));
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, 'new', `n${i}.dat`), seededBytes(3000 + i, Math.floor(rnd() * 60_000)));
  for (let i = 1500; i < 4500; i++) fs.writeFileSync(path.join(dir, 'big', `an-entry-with-a-rather-long-name-${i}.txt`), '');
  fs.writeFileSync(path.join(dir, 'small', 'f3.txt:newstream'), seededBytes(80, 30_000));
  const ads = fs.openSync(path.join(dir, 'large', 'L0.bin:meta'), 'r+');
  fs.writeSync(ads, Buffer.from('rewritten stream bytes'), 0, 22, 5000);
  fs.closeSync(ads);
  const punched = sh('fallocate', ['-p', '-o', String(10 * MiB), '-l', String(64 * 1024), path.join(dir, 'sparse.bin')], { allowFail: true });
  if (punched.status !== 0) console.log(`fallocate -p on ntfs-3g: ${punched.stderr.trim()}`);
  fs.truncateSync(path.join(dir, 'sparse.bin'), 96 * MiB);
  const sp = fs.openSync(path.join(dir, 'sparse.bin'), 'r+');
  fs.writeSync(sp, seededBytes(81, 200_000), 0, 200_000, 80 * MiB);
  fs.closeSync(sp);
  fs.appendFileSync(path.join(dir, 'frag.bin'), seededBytes(82, 5 * CLUSTER));
  // Same size, mtime put back: the MFT-change time still moves.
  const f5 = path.join(dir, 'small', 'f5.txt');
  const st = fs.statSync(f5);
  const b = fs.readFileSync(f5);
  b[0] ^= 0xff;
  fs.writeFileSync(f5, b);
  fs.utimesSync(f5, st.atime, st.mtime);
  fs.unlinkSync(path.join(dir, 'links', 'f2-link'));
  fs.linkSync(path.join(dir, 'small', 'f4.txt'), path.join(dir, 'links', 'f4-link'));
  for (let i = 1; i < 700; i += 4) fs.unlinkSync(path.join(dir, 'filler', `x${i}`));
}

test('oracle: every changed cluster in use is re-read, the patched image equals the changed one, the runs stay selective', needsRoot, async () => {
  const orig = path.join(work, 'orig.img');
  const A = path.join(work, 'A.img');
  await makeFsImage(orig, { fs: 'ntfs', size: 160 * MiB, blockSize: CLUSTER, label: 'state' });
  await mounted(orig, [STREAMS], (dir) => fill(dir));
  const info = sh('ntfsinfo', ['-v', '-F', '/frag.bin', orig], { allowFail: true }).stdout;
  console.log(`frag.bin has an attribute list: ${/ATTRIBUTE_LIST/i.test(info)}`);
  copy(orig, A);
  const sA = await mustState(A);

  await mounted(orig, [STREAMS], (dir) => change(dir));
  const B = orig;
  const sB = await mustState(B);
  const { changed, gone } = ntfsChangedRecords(sA, sB);
  assert.ok(changed.length > 100 && gone.length > 0, `changed ${changed.length}, gone ${gone.length}`);
  const { ch, used } = await oracle('full change', A, B, sA, sB);

  // Selective: the unchanged large files' clusters (L1 has a hard link, L6 nothing) are not read again.
  const cov = inRunsMap(ch.runs, Math.ceil(fs.statSync(B).size / CLUSTER));
  for (const i of [1, 6]) {
    const untouched = await clustersHolding(B, chunkHashes(seededBytes(1000 + i, largeSize(i))));
    assert.ok(untouched.length >= largeSize(i) / CLUSTER - 1, `found ${untouched.length} clusters of L${i}`);
    assert.equal(untouched.filter((c) => cov[c]).length, 0, `clusters of the unchanged L${i}.bin are in the runs`);
  }
  assert.ok(bytesOf(ch.runs) < used.usedBytes * 0.85, 'runs not selective');

  // A patched with the runs is B.
  const C = path.join(work, 'C.img');
  copy(A, C);
  await patch(C, B, ch.runs);
  const fix = sh('ntfsfix', ['-n', C], { allowFail: true });
  assert.equal(fix.status, 0, `ntfsfix -n on the patched image: ${fix.stdout}${fix.stderr}`);
  const [dB, dC] = [await ntfsTreeDigest(B), await ntfsTreeDigest(C)];
  assert.equal(dC, dB);
  assert.ok(dB.includes('user.meta'), 'the digest does not show the alternate data streams (as user.* xattrs)');
  // Streams, read through ntfs-3g's windows interface on both.
  for (const img of [B, C]) {
    await mounted(img, ['ro', STREAMS], (dir) => {
      const s1 = fs.readFileSync(path.join(dir, 'large', 'L0.bin:meta'));
      const s2 = fs.readFileSync(path.join(dir, 'small', 'f3.txt:newstream'));
      assert.equal(s1.toString('latin1', 5000, 5022), 'rewritten stream bytes');
      assert.deepEqual(s2, seededBytes(80, 30_000));
    });
  }

  // Little change: one small file rewritten in place. Then reads with atime on.
  const B1 = path.join(work, 'B1.img');
  copy(B, B1);
  await mounted(B, [], (dir) => {
    const fd = fs.openSync(path.join(dir, 'small', 'f100.txt'), 'r+');
    fs.writeSync(fd, Buffer.from('a little change'), 0, 15, 3);
    fs.closeSync(fd);
  });
  const sB2 = await mustState(B);
  const little = await oracle('little change', B1, B, sB, sB2);
  assert.ok(little.ch.changedBytes <= 2 * MiB, `changed bytes ${little.ch.changedBytes}`);
  assert.ok(bytesOf(little.ch.runs) < little.used.usedBytes / 4, 'little change: runs not much smaller than the used bytes');

  const B2 = path.join(work, 'B2.img');
  copy(B, B2);
  const atimesBefore = await mounted(B, ['atime'], (dir) => {
    const before = fs.statSync(path.join(dir, 'large', 'L6.bin')).atimeMs;
    for (const sub of ['small', 'large']) for (const f of fs.readdirSync(path.join(dir, sub))) fs.readFileSync(path.join(dir, sub, f));
    return before;
  });
  const sB3 = await mustState(B);
  const atimeAfter = await mounted(B, ['ro'], (dir) => fs.statSync(path.join(dir, 'large', 'L6.bin')).atimeMs);
  const rec = ntfsChangedRecords(sB2, sB3);
  const user = rec.changed.filter((r) => r >= 24 && !sB3.system.includes(r));
  console.log(
    `atime-only reads: ntfs-3g ${atimeAfter !== atimesBefore ? 'updated' : 'did not update'} atime; ${rec.touched.length} records touched, ${rec.changed.length} changed (${user.length} user records: ${user.slice(0, 10).join(',')})`,
  );
  if (atimeAfter !== atimesBefore) assert.ok(rec.touched.length > 100, 'atime updates were not seen as touched records');
  assert.deepEqual(user, [], 'atime-only updates marked user records changed');
  await oracle('atime-only reads', B2, B, sB2, sB3);
});

test('live: state read while a writer runs, then remounted read-only; the runs bring a live copy up to date', needsRoot, async () => {
  const img = path.join(work, 'live.img');
  await makeFsImage(img, { fs: 'ntfs', size: 96 * MiB, blockSize: CLUSTER, label: 'live' });
  await mounted(img, [], (dir) => {
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(dir, `seed${i}.bin`), seededBytes(i, 200_000));
  });
  const P = path.join(work, 'pass1.img');
  let figures = '';
  await mounted(img, [], async (dir, dev) => {
    const size = Number(sh('blockdev', ['--getsize64', dev]).stdout.trim());
    const script =
      'i=0; while :; do i=$((i+1)); dd if=/dev/urandom of="$D/w$((i % 40)).bin" bs=16k count=$((i % 9 + 1)) status=none 2>/dev/null; echo "$i" >> "$D/log.txt" 2>/dev/null; ' +
      'if [ $((i % 13)) -eq 0 ]; then rm -f "$D/w$(((i + 7) % 40)).bin" 2>/dev/null; fi; sleep 0.005; done';
    const writer = spawn('sh', ['-c', script], { env: { ...process.env, D: dir }, stdio: 'ignore' });
    const stop = () => {
      try {
        process.kill(writer.pid!);
      } catch {
        /* gone */
      }
    };
    onCleanup(stop);
    try {
      await new Promise((r) => setTimeout(r, 400));
      sh('dd', [`if=${dev}`, 'iflag=nocache', 'count=0', 'status=none']);
      const s0 = await mustState(dev, { live: true, size });
      // Pass 1: every cluster used now, read live.
      fs.closeSync(fs.openSync(P, 'w'));
      fs.truncateSync(P, size);
      await withReader(
        dev,
        async (r) => {
          const u = await readNtfs(r);
          assert.ok(u);
          for (let c = 0; c * CLUSTER < size; c += 64) {
            const buf = await r.read(c * CLUSTER, 64 * CLUSTER);
            for (let i = 0; i < 64; i++) if (isSet(u, c + i)) writeAt(P, (c + i) * CLUSTER, buf.subarray(i * CLUSTER, (i + 1) * CLUSTER));
          }
        },
        size,
      );
      await new Promise((r) => setTimeout(r, 200));
      let ro = false;
      for (let k = 0; k < 200 && !ro; k++) {
        ro = sh('mount', ['-o', 'remount,ro', dir], { allowFail: true }).status === 0;
        if (!ro) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(ro, 'mount -o remount,ro never succeeded');
      try {
        sh('dd', [`if=${dev}`, 'iflag=nocache', 'count=0', 'status=none']);
        const s1 = await mustState(dev, { size });
        const ch = await withReader(dev, (r) => ntfsChangesSince(r, s0, s1), size);
        const cur = path.join(work, 'live-now.img');
        sh('dd', [`if=${dev}`, `of=${cur}`, 'bs=1M', 'status=none']);
        // Before patching: the writer changed used clusters during pass 1, and the runs cover every one.
        const stale = await escapes(P, cur, ch.runs);
        figures = `live: ${ntfsChangedRecords(s0, s1).changed.length} records changed; ${stale.differing} used clusters of the pass-1 copy were stale; runs ${mib(bytesOf(ch.runs))} (always ${mib(ch.alwaysBytes)}, changed files ${mib(ch.changedBytes)}) of ${mib(stale.used.usedBytes)} used`;
        assert.ok(stale.differing > 0, 'the writer changed nothing during pass 1: the test proves nothing');
        assert.equal(
          stale.escaped.length,
          0,
          `${stale.escaped.length} stale clusters escape the runs: ${stale.escaped
            .slice(0, 5)
            .map((c) => owner(cur, c))
            .join('; ')}`,
        );
        await withReader(
          dev,
          async (r) => {
            for (const [s, c] of ch.runs) writeAt(P, s * CLUSTER, await r.read(s * CLUSTER, c * CLUSTER));
          },
          size,
        );
        const patched = await escapes(P, cur, []);
        assert.equal(patched.differing, 0, 'the patched live copy differs from the device');
        const fix = sh('ntfsfix', ['-n', P], { allowFail: true });
        assert.equal(fix.status, 0, `ntfsfix -n on the live copy: ${fix.stdout}${fix.stderr}`);
      } finally {
        sh('mount', ['-o', 'remount,rw', dir], { allowFail: true });
      }
    } finally {
      stop();
      await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r(null) : writer.once('exit', r)));
    }
  });
  console.log(figures);
});

// ---- hostile volumes (no root needed: mkntfs writes image files)

/** Geometry from the boot sector of a sane image. */
function geometry(buf: Buffer): { cs: number; rs: number; mft: number } {
  const cs = buf.readUInt16LE(0x0b) * buf[0x0d];
  const rb = buf.readInt8(0x40);
  return { cs, rs: rb < 0 ? 2 ** -rb : rb * cs, mft: Number(buf.readBigUInt64LE(0x30)) * cs };
}

/** Record n (from the MFT's first extent) with fixups applied; put() writes it back protected. */
function record(buf: Buffer, n: number): { rec: Buffer; put(): void } {
  const { rs, mft } = geometry(buf);
  const at = mft + n * rs;
  const rec = Buffer.from(buf.subarray(at, at + rs));
  const usa = rec.readUInt16LE(4);
  const cnt = rec.readUInt16LE(6);
  for (let i = 1; i < cnt; i++) rec.writeUInt16LE(rec.readUInt16LE(usa + 2 * i), i * 512 - 2);
  return {
    rec,
    put() {
      const usn = rec.readUInt16LE(usa);
      for (let i = 1; i < cnt; i++) {
        rec.writeUInt16LE(rec.readUInt16LE(i * 512 - 2), usa + 2 * i);
        rec.writeUInt16LE(usn, i * 512 - 2);
      }
      rec.copy(buf, at);
    },
  };
}

function findAttr(rec: Buffer, type: number): number {
  for (let off = rec.readUInt16LE(0x14); off < rec.length - 8; off += rec.readUInt32LE(off + 4)) {
    const t = rec.readUInt32LE(off);
    if (t === 0xffffffff || rec.readUInt32LE(off + 4) === 0) break;
    if (t === type) return off;
  }
  return -1;
}

/** Rewrites the first run of record n's $DATA to start at cluster 0x7fffffff (same length). */
function runPastVolume(buf: Buffer, n: number): void {
  const r = record(buf, n);
  const d = findAttr(r.rec, 0x80);
  assert.ok(d > 0 && r.rec[d + 8] === 1, `record ${n} has no non-resident $DATA`);
  const rl = d + r.rec.readUInt16LE(d + 0x20);
  assert.ok(d + r.rec.readUInt32LE(d + 4) - rl >= 8, `record ${n}'s runlist has no room`);
  const h = r.rec[rl];
  let len = 0;
  for (let k = h & 15; k >= 1; k--) len = len * 256 + r.rec[rl + k];
  Buffer.from([0x42, len & 0xff, len >> 8, 0xff, 0xff, 0xff, 0x7f, 0]).copy(r.rec, rl);
  r.put();
}

/** Inserts a resident $ATTRIBUTE_LIST naming `targets` into a record (kept sorted by type). */
function insertAttrList(rec: Buffer, n: number, targets: number[]): void {
  const entries = Buffer.alloc(targets.length * 0x20);
  targets.forEach((t, i) => {
    const e = entries.subarray(i * 0x20);
    e.writeUInt32LE(0x80, 0);
    e.writeUInt16LE(0x20, 4);
    e.writeUInt32LE(t % 2 ** 32, 0x10);
    e.writeUInt16LE(Math.floor(t / 2 ** 32), 0x14);
  });
  const len = 0x18 + entries.length;
  const attr = Buffer.alloc(len);
  attr.writeUInt32LE(0x20, 0);
  attr.writeUInt32LE(len, 4);
  attr.writeUInt32LE(entries.length, 0x10);
  attr.writeUInt16LE(0x18, 0x14);
  entries.copy(attr, 0x18);
  let off = rec.readUInt16LE(0x14);
  while (rec.readUInt32LE(off) !== 0xffffffff && rec.readUInt32LE(off) < 0x20) off += rec.readUInt32LE(off + 4);
  const inUse = rec.readUInt32LE(0x18);
  assert.ok(inUse + len <= rec.length, `record ${n} has no room for an attribute list`);
  rec.copy(rec, off + len, off, inUse);
  attr.copy(rec, off);
  rec.writeUInt32LE(inUse + len, 0x18);
}

const allowed = (e: unknown) => e instanceof DevsnapError;

test('hostile volumes: boot sector, fixups, runs past the volume, cyclic attribute lists: null or a DevsnapError', async () => {
  const img = path.join(work, 'hostile.img');
  await makeFsImage(img, { fs: 'ntfs', size: 24 * MiB, blockSize: CLUSTER });
  const clean = fs.readFileSync(img);
  const good = await readNtfsState(memReader(clean));
  assert.ok(good);
  assert.ok(good.system.length >= 16 && good.system.includes(11), `system records ${good.system.join(',')}`);
  const self = await ntfsChangesSince(memReader(clean), good, good);
  assert.equal(self.changedRecords, 0);
  assert.equal(self.changedBytes, 0);
  const { cs, mft, rs } = geometry(clean);
  assert.ok(inRunsMap(self.runs, clean.length / cs)[mft / cs], 'the MFT is not in the always-read runs');

  const variants: Array<[string, (b: Buffer) => void, 'null' | 'state']> = [
    ['bytes per sector 3', (b) => b.writeUInt16LE(3, 0x0b), 'null'],
    ['not NTFS', (b) => b.write('MSDOS5.0', 3, 'latin1'), 'null'],
    ['MFT past the volume', (b) => b.writeBigUInt64LE(1n << 40n, 0x30), 'null'],
    [
      'record size byte 0xE0',
      (b) => {
        b[0x40] = 0xe0;
      },
      'null',
    ],
    [
      'record 0 torn',
      (b) => {
        b[mft + 510] ^= 0xff;
      },
      'null',
    ],
    ['$MFT run past the volume', (b) => runPastVolume(b, 0), 'null'],
  ];
  for (const [what, mutate, expect] of variants) {
    const b = Buffer.from(clean);
    mutate(b);
    const s = await readNtfsState(memReader(b));
    assert.equal(s === null ? 'null' : 'state', expect, what);
  }

  // Bad fixups in the root directory's record: damage when strict, unknown (changed) when live.
  const torn = Buffer.from(clean);
  torn[mft + 5 * rs + 510] ^= 0x55;
  assert.equal(await readNtfsState(memReader(torn)), null, 'a torn record read strictly');
  const liveTorn = await readNtfsState(memReader(torn), { live: true });
  assert.ok(liveTorn && liveTorn.status[5] === 2);
  const c1 = await ntfsChangesSince(memReader(clean), liveTorn, good);
  assert.deepEqual(ntfsChangedRecords(liveTorn, good).changed, [5]);
  assert.equal(c1.changedRecords, 1);
  await assert.rejects(ntfsChangesSince(memReader(torn), good, liveTorn), allowed, 'changes on a torn later state');

  // A system file's run past the volume: the state reads (fingerprints only), the change scan refuses.
  const past = Buffer.from(clean);
  runPastVolume(past, 2);
  const sPast = await readNtfsState(memReader(past));
  assert.ok(sPast);
  await assert.rejects(ntfsChangesSince(memReader(past), sPast, sPast), allowed);

  // Cyclic attribute lists: $Volume (3) names itself and $AttrDef (4), which names 3 back; and a record far past the MFT.
  const cyc = Buffer.from(clean);
  {
    const r = record(cyc, 3);
    insertAttrList(r.rec, 3, [3, 4, 3, 2 ** 40]);
    r.put();
  }
  {
    const r = record(cyc, 4);
    insertAttrList(r.rec, 4, [3, 4]);
    r.put();
  }
  const sCyc = await readNtfsState(memReader(cyc));
  assert.ok(sCyc, 'records with attribute lists read');
  try {
    const c = await ntfsChangesSince(memReader(cyc), good, sCyc);
    assert.ok(c.changedRecords >= 2);
  } catch (e) {
    assert.ok(allowed(e), String(e));
  }
  // States of other volumes do not compare.
  const other = path.join(work, 'other.img');
  await makeFsImage(other, { fs: 'ntfs', size: 24 * MiB, blockSize: CLUSTER });
  // mkntfs seeds its serial number from the clock: two volumes made in the same second share it.
  writeAt(other, 0x48, Buffer.from('0123456789abcdef', 'hex'));
  const sOther = await mustState(other);
  assert.match(ntfsIncomparable(good, sOther) ?? '', /serial/);
  await assert.rejects(ntfsChangesSince(memReader(clean), good, sOther), allowed);
});

test('fuzz: flipped bytes in MFT records and the boot sector never crash or hang', async () => {
  const img = path.join(work, 'fuzz.img');
  await makeFsImage(img, { fs: 'ntfs', size: 24 * MiB, blockSize: 1024 });
  const clean = fs.readFileSync(img);
  const good = (await readNtfsState(memReader(clean)))!;
  assert.ok(good);
  const { mft, rs } = geometry(clean);
  const rnd = prng(7);
  let states = 0;
  let errors = 0;
  for (let it = 0; it < 400; it++) {
    const b = Buffer.from(clean);
    const flips = 1 + Math.floor(rnd() * 6);
    for (let k = 0; k < flips; k++) {
      const pos = rnd() < 0.1 ? Math.floor(rnd() * 512) : mft + Math.floor(rnd() * 24 * rs);
      b[pos] ^= 1 << Math.floor(rnd() * 8);
    }
    const t0 = Date.now();
    for (const live of [false, true]) {
      const s = await readNtfsState(memReader(b), { live });
      if (!s) continue;
      states++;
      for (const [x, y] of [
        [good, s],
        [s, s],
      ] as const) {
        try {
          await ntfsChangesSince(memReader(b), x, y);
        } catch (e) {
          assert.ok(allowed(e), `iteration ${it}: ${(e as Error).stack}`);
          errors++;
        }
      }
    }
    assert.ok(Date.now() - t0 < 5000, `iteration ${it} took ${Date.now() - t0} ms`);
  }
  console.log(`fuzz: ${states} states read, ${errors} DevsnapErrors`);
});
