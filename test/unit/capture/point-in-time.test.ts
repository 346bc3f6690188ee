// A snapshot of a busy, mounted ext4 must be one moment of it: an adversarial writer (mmap, O_DIRECT,
// in-place overwrites, truncate/extend, fallocate, rename-over, hard links, freed-and-reused blocks,
// appends, a directory of tens of thousands of entries) runs while `devsnap snapshot` images the disk;
// the restored filesystem must be clean without a journal replay and hold every file state that was
// durable before the snapshot's moment (pointInTime.at) and not being changed at it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, isRoot, makeDisk, onCleanup, prng, readLayout, seededBytes, sh, tmpDir, withMount } from '../../helpers/disks';
import { devsnap, devsnapChild } from '../../helpers/cli';
import { checkImage, describeCheck, pythonForMmap, logBaseline, makeBigDir, monoNow, readLog, startWriter, type CheckOptions, type CheckResult, type WriterKind } from '../../helpers/writers';

after(cleanup);
const MiB = 1 << 20;
const BIG_DIR = 'big';
const skip = !isRoot && 'needs root (loop devices, mount, fsfreeze, date -s)';
// Time after `at` in which the engine may still be entering the freeze: writes begun then may be in the image.
const FREEZE_ENTRY_MS = 500;

interface Part {
  start: number;
  size: number;
}

interface Template {
  disk: string;
  log: string;
  part: Part;
}

/**
 * A GPT disk with one 512 MiB ext4 (a few thousand files, ~300 MiB) and a directory of 30000 entries
 * made through the kernel so it has an htree; built once per inode size, copied for every run.
 */
const templates = new Map<number, Promise<Template>>();
function template(inodeSize: 128 | 256): Promise<Template> {
  if (!templates.has(inodeSize)) templates.set(inodeSize, buildTemplate(inodeSize));
  return templates.get(inodeSize)!;
}

async function buildTemplate(inodeSize: number): Promise<Template> {
  const dir = tmpDir('devsnap-pit-tpl-');
  const tree = path.join(dir, 'tree');
  const rand = prng(inodeSize);
  for (let i = 0; i < 3000; i++) {
    const p = path.join(tree, `filler/d${i % 40}/f${i}`);
    const size = 4096 + Math.floor(rand() * 192 * 1024);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, i % 3 ? seededBytes(inodeSize * 10_000 + i, size) : Buffer.alloc(size, `line ${i} of a compressible file\n`));
  }
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, {
    table: 'gpt',
    size: 514 * MiB,
    partitions: [{ size: 512 * MiB, fs: 'ext4', blockSize: 4096, fromDir: tree, mkfsArgs: ['-I', String(inodeSize), '-N', '48000'] }],
  });
  fs.rmSync(tree, { recursive: true });
  const part = readLayout(disk)[0];
  const log = path.join(dir, 'baseline.jsonl');
  const dev = attachLoop(disk, { offset: part.start, sizeLimit: part.size });
  try {
    await withMount(dev, 'ext', {}, (mnt) => {
      makeBigDir(path.join(mnt, BIG_DIR), 30000);
      logBaseline(mnt, log);
    });
  } finally {
    detachLoop(dev);
  }
  return { disk, log, part: { start: part.start, size: part.size } };
}

/** Mounts read-only without the journal (noload): what is on the image is all the kernel may use. */
function mountNoload(dev: string): { dir: string; release(): void } | { error: string } {
  const dir = tmpDir('devsnap-pit-ro-');
  const r = sh('mount', ['-t', 'ext4', '-o', 'ro,noload', dev, dir], { allowFail: true });
  if (r.status !== 0) return { error: r.stderr.trim() };
  let mounted = true;
  const release = () => {
    if (!mounted) return;
    sh('umount', [dir]);
    mounted = false;
    fs.rmdirSync(dir);
  };
  onCleanup(release);
  return { dir, release };
}

interface Run {
  work: string;
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  stderr: string;
  /** Around the snapshot process, on both clocks. */
  start: { wall: number; mono: number };
  end: { wall: number; mono: number };
  ops: Record<string, number>;
  logFile: string;
  restored?: string;
  part: Part;
}

interface RunOptions {
  inodeSize: 128 | 256;
  seed: number;
  flags?: string[];
  kinds?: WriterKind[];
  /** Take a snapshot first (the writer running too), so the checked one reads only what changed since. */
  previous?: boolean;
  /** Runs once the snapshot has started imaging (its first progress event); its result runs after it ends. */
  whileImaging?: () => () => void;
}

/** A copy of the template, mounted read-write, imaged while the writer runs, then restored to a new image. */
async function busySnapshot(o: RunOptions): Promise<Run> {
  const tpl = await template(o.inodeSize);
  const work = tmpDir('devsnap-pit-');
  const disk = path.join(work, 'disk.img');
  const repo = path.join(work, 'repo');
  const logFile = path.join(work, 'writer.jsonl');
  sh('cp', ['--sparse=always', tpl.disk, disk]);
  fs.copyFileSync(tpl.log, logFile);
  const now = () => ({ wall: Date.now(), mono: monoNow() });
  const dev = attachLoop(disk, { offset: tpl.part.start, sizeLimit: tpl.part.size });
  let run: Omit<Run, 'ops'>;
  let ops: Record<string, number> = {};
  try {
    run = await withMount(dev, 'ext', {}, async (mnt) => {
      const writer = await startWriter({ dir: mnt, log: logFile, seed: o.seed, kinds: o.kinds, bigDir: BIG_DIR });
      try {
        let start = now();
        if (o.previous) {
          const first = devsnap(['snapshot', disk, '--repo', repo, '--json', ...(o.flags ?? [])]);
          if (first.status !== 0) return { work, status: first.status, json: first.json, stderr: `the first snapshot: ${first.stderr}`, start, end: now(), logFile, part: tpl.part };
          start = now();
        }
        const snap = devsnapChild(['snapshot', disk, '--repo', repo, '--json', '--progress', 'json', ...(o.flags ?? [])]);
        let after: (() => void) | undefined;
        try {
          if (o.whileImaging) {
            while (!snap.output().stderr.includes('"type":"progress"') && snap.child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
            if (snap.child.exitCode === null) after = o.whileImaging();
          }
          const done = await snap.exited;
          const end = now();
          return { work, status: done.code ?? 128, json: parseJson(done.stdout), stderr: done.stderr, start, end, logFile, part: tpl.part };
        } finally {
          after?.();
        }
      } finally {
        ops = await writer.stop();
      }
    });
  } finally {
    detachLoop(dev);
  }
  const result: Run = { ...run, ops };
  if (result.status === 0) {
    const out = path.join(work, 'restored.img');
    const r = devsnap(['restore', result.json.snapshot.id, out, '--repo', repo, '--json']);
    assert.equal(r.status, 0, `restore: ${r.stdout} ${r.stderr}`);
    result.restored = out;
    fs.rmSync(repo, { recursive: true });
    fs.rmSync(disk);
  }
  return result;
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

interface Inspection {
  needsRecovery: boolean;
  fsck: { ok: boolean; output: string };
  mountError?: string;
  check?: CheckResult;
  /** Paths the check found intact (to pick one to corrupt). */
  intactSample?: string;
}

/** The restored image's partition as a read-only loop device, for the duration of fn. */
async function restoredPartition<T>(run: Run, fn: (dev: string) => T | Promise<T>): Promise<T> {
  const dev = attachLoop(run.restored!, { offset: run.part.start, sizeLimit: run.part.size, readOnly: true });
  try {
    return await fn(dev);
  } finally {
    detachLoop(dev);
  }
}

/** dumpe2fs, e2fsck -fn and checkImage on the restored image's partition. */
function inspect(run: Run, T: number, opts: CheckOptions): Promise<Inspection> {
  return restoredPartition(run, (dev) => {
    const features = /^Filesystem features:\s*(.*)$/m.exec(sh('dumpe2fs', ['-h', dev], { allowFail: true }).stdout)?.[1] ?? '';
    const e2 = sh('e2fsck', ['-fn', dev], { allowFail: true });
    const res: Inspection = { needsRecovery: /\bneeds_recovery\b/.test(features), fsck: { ok: e2.status === 0, output: (e2.stdout + e2.stderr).trim() } };
    const m = mountNoload(dev);
    if ('error' in m) return { ...res, mountError: m.error };
    try {
      res.check = checkImage(m.dir, run.logFile, T, opts);
      const failed = new Set(res.check.failures.map((f) => f.path));
      res.intactSample = readLog(run.logFile).find((e) => e.path.startsWith('filler/') && !failed.has(e.path))?.path;
    } finally {
      m.release();
    }
    return res;
  });
}

/** What is wrong with a run that must have given a consistent point-in-time image (empty: nothing). */
async function pointInTimeProblems(run: Run, clock: (at: number, pauseMs: number) => { T: number; opts: CheckOptions } = wallClock): Promise<string[]> {
  const problems: string[] = [];
  if (run.status !== 0) return [`snapshot failed (exit ${run.status}): ${run.stderr.trim()}`];
  const s = run.json.snapshot;
  if (s.consistency !== 'frozen-two-pass') problems.push(`consistency is ${JSON.stringify(s.consistency)}, not "frozen-two-pass"`);
  const pit = s.pointInTime;
  const at = Date.parse(pit?.at);
  if (!pit || !/\.\d{3}Z$/.test(pit.at) || Number.isNaN(at)) problems.push(`pointInTime.at missing or not ISO 8601 with ms: ${JSON.stringify(pit)}`);
  for (const k of ['pauseSeconds', 'rounds', 'rereadBytes']) if (typeof pit?.[k] !== 'number') problems.push(`pointInTime.${k} is not a number: ${JSON.stringify(pit)}`);
  const busy = readLog(run.logFile).filter((e) => 'fsyncDoneMono' in e && e.fsyncDoneMono > run.start.mono && e.fsyncDoneMono < run.end.mono).length;
  if (busy < 10) problems.push(`the writer made only ${busy} changes durable while the snapshot ran`);
  // Without a moment (today's engine), hold the image to the whole read: a fuzzy image fails that too.
  const { T, opts } = Number.isNaN(at) ? { T: run.start.wall, opts: { until: run.end.wall } } : clock(at, (pit.pauseSeconds ?? 0) * 1000);
  const ins = await inspect(run, T, { ...opts, since: opts.clock === 'mono' ? run.start.mono : run.start.wall });
  if (ins.needsRecovery) problems.push('the restored superblock has needs_recovery: it needs a journal replay');
  if (!ins.fsck.ok) problems.push(`e2fsck -fn:\n${ins.fsck.output.split('\n').slice(0, 25).join('\n')}`);
  if (ins.mountError) problems.push(`mount -o ro,noload: ${ins.mountError}`);
  if (ins.check) {
    console.log(`  ${describeCheck(ins.check, T)}`);
    if (ins.check.failures.length) problems.push(describeCheck(ins.check, T));
    if (ins.check.checked === 0) problems.push('nothing was checked');
    if (ins.check.checkedSince === 0) problems.push('no file state written while imaging was checked');
  }
  console.log(
    `  snapshot ${s.consistency} in ${((run.end.mono - run.start.mono) / 1000).toFixed(1)} s, ${JSON.stringify(pit ?? null)}; writer: ${busy} changes durable while imaging, ops ${JSON.stringify(run.ops)}`,
  );
  const net = /\d+ blocks in use were in neither[^\n]*/.exec(run.stderr);
  if (net) console.log(`  the last pass's safety net caught: ${net[0]}`); // FORMAT.md: should not happen
  return problems;
}

function wallClock(at: number, pauseMs: number): { T: number; opts: CheckOptions } {
  return { T: at, opts: { until: at + pauseMs + FREEZE_ENTRY_MS } };
}

if (isRoot && !pythonForMmap()) console.log('python3 with mmap is missing: the writer runs without its mmap writes');

/** Busy runs with these seeds; the last one's snapshot follows an earlier one (an incremental read). */
async function busyRuns(inodeSize: 128 | 256, seeds: number[]): Promise<void> {
  const problems: string[] = [];
  for (const seed of seeds) {
    const previous = seed === seeds[seeds.length - 1];
    console.log(`${inodeSize}-byte inodes, seed ${seed}${previous ? ', after a first snapshot' : ''}:`);
    const run = await busySnapshot({ inodeSize, seed, previous });
    problems.push(...(await pointInTimeProblems(run)).map((p) => `seed ${seed}: ${p}`));
    fs.rmSync(run.work, { recursive: true, force: true });
  }
  assert.equal(problems.length, 0, problems.join('\n\n'));
}

test('a busy mounted ext4 is imaged at one moment: clean without a journal replay, every durable file state there (3 runs)', { skip }, async () => {
  await busyRuns(256, [11, 12, 13]);
});

test('the same with 128-byte inodes (timestamps in whole seconds)', { skip }, async () => {
  await busyRuns(128, [21, 22]);
});

test('the clock stepped back 3 s while imaging: still one consistent moment', { skip }, async () => {
  const STEP_MS = 3000;
  let marks: { before: number; offset: number; back: number; forward?: number } | undefined;
  const setClock = (ms: number) => sh('date', ['-s', `@${(ms / 1000).toFixed(3)}`]);
  let restore = () => {};
  const run = await busySnapshot({
    inodeSize: 256,
    seed: 31,
    whileImaging: () => {
      const h0 = process.hrtime.bigint();
      const w0 = Date.now();
      const before = monoNow();
      setClock(w0 - STEP_MS);
      marks = { before, offset: w0 - before, back: monoNow() };
      let done = false;
      restore = () => {
        if (done) return;
        done = true;
        setClock(w0 + Number((process.hrtime.bigint() - h0) / 1_000_000n));
        marks!.forward = monoNow();
      };
      onCleanup(restore); // whatever happens, the clock goes forward again
      return restore;
    },
  });
  restore();
  assert.ok(marks?.forward, 'the clock was stepped back while the snapshot ran');
  const m = marks!;
  // `at` is a wall time: map it to the monotonic clock. It was read either outside the stepped window
  // (wall = mono + offset) or in it (wall = mono + offset - STEP); use every reading that fits.
  const toMono = (at: number, pauseMs: number): { T: number; opts: CheckOptions } => {
    const c = [at - m.offset, at - m.offset + STEP_MS].filter((x, i) => (i === 1) === (x >= m.before && x <= m.forward!) && x >= run.start.mono - 50 && x <= run.end.mono + 50);
    if (!c.length) c.push(at - m.offset, at - m.offset + STEP_MS);
    console.log(`  the moment on the monotonic clock: ${c.map((x) => x - run.start.mono).join(' or ')} ms after the snapshot started; clock back at ${m.back - run.start.mono} ms`);
    return { T: Math.min(...c) - 50, opts: { clock: 'mono', until: Math.max(...c) + pauseMs + FREEZE_ENTRY_MS } };
  };
  const problems = await pointInTimeProblems(run, toMono);
  fs.rmSync(run.work, { recursive: true, force: true });
  assert.equal(problems.length, 0, problems.join('\n\n'));
});

test('control: a --fuzzy read of the same busy directory is caught by the checks', { skip }, async () => {
  const found: string[] = [];
  let last: { run: Run; ins: Inspection } | undefined;
  for (let attempt = 1; attempt <= 3 && !found.length; attempt++) {
    const run = await busySnapshot({ inodeSize: 256, seed: 40 + attempt, flags: ['--fuzzy'], kinds: ['bigdir', 'rename'] });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.json.snapshot.consistency, 'fuzzy');
    // A fuzzy image has no moment: what was durable before the read and untouched during it must be there.
    const ins = await inspect(run, run.start.wall, { until: run.end.wall });
    if (ins.needsRecovery) found.push('needs_recovery is set (needs a journal replay)');
    if (!ins.fsck.ok)
      found.push(
        `e2fsck -fn fails: ${ins.fsck.output
          .split('\n')
          .filter((l) => /^(Entry|Inode|Problem|Free|Block|Directory|Unattached)/.test(l))
          .slice(0, 5)
          .join(' | ')}`,
      );
    if (ins.mountError) found.push(`does not mount: ${ins.mountError}`);
    if (ins.check?.failures.length) found.push(describeCheck(ins.check));
    console.log(`  fuzzy attempt ${attempt}: ${found.length ? found.join('; ') : 'no damage found'}${ins.check ? `; ${describeCheck(ins.check).split('\n')[0]}` : ''}`);
    if (last) fs.rmSync(last.run.work, { recursive: true, force: true });
    last = { run, ins };
  }
  // The checker itself must be able to fail: corrupt one file it found intact and it must say so.
  const { run, ins } = last!;
  let corrupted = false;
  if (ins.intactSample) {
    const file = ins.intactSample;
    const block = await restoredPartition(run, (dev) => Number(sh('debugfs', ['-R', `bmap /${file} 0`, dev]).stdout.trim()));
    assert.ok(block > 0, `debugfs found no first block of ${file}`);
    const fd = fs.openSync(run.restored!, 'r+');
    const buf = Buffer.alloc(4096);
    fs.readSync(fd, buf, 0, buf.length, run.part.start + block * 4096);
    for (let i = 0; i < buf.length; i++) buf[i] ^= 0x5a;
    fs.writeSync(fd, buf, 0, buf.length, run.part.start + block * 4096);
    fs.closeSync(fd);
    const after = await inspect(run, run.start.wall, { until: run.end.wall });
    corrupted = !!after.check?.failures.some((f) => f.path === file);
    assert.ok(corrupted, `the checker did not notice ${file} corrupted (block ${block})`);
  }
  fs.rmSync(run.work, { recursive: true, force: true });
  assert.ok(found.length || corrupted, 'neither a fuzzy image nor a corrupted file was caught');
});
