#!/usr/bin/env node
// devsnap benchmark: builds a realistic workstation disk (GPT, 256 MiB EFI vfat, ext4 root filled with
// real system files and developer content), then measures devsnap side by side with peer tools on the
// same disk in the same run: full image (vs partclone + zstd), incremental after an "upgrade" that
// changes ~5% of the files (vs restic and borg), restore (vs their restores), and peak RSS of each run.
//
// A benchmark, not a test: it prints a table and PASS/MISS per target of issue 2, writes
// bench/.work/results.json and exits 0 unless something crashed. Needs root (loop devices, mount).
// Run after `npm run build` (or `npx tsc -p .`):   npm run bench -- [--quick] [--scale GB]
//
// Options:
//   --quick          ~300 MB of data on a 1 GiB root partition (a smoke run of a few minutes)
//   --scale GB       GB of file data on the root partition (default 3)
//   --part GiB       size of the root partition (default: 8 for 3 GB, scaled with --scale)
//   --rebuild        rebuild the cached file tree and base disk image
//   --keep           keep the repositories and restored images under bench/.work afterwards
//   --no-drop-caches do not drop the page cache between runs
//   --cpu-prof       also run devsnap with node --cpu-prof and print the hottest functions
//   --engine head    benchmark the last commit (built into bench/.work/engine-SHA) instead of out/:
//                    results stay stable while others edit and rebuild the working tree
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const WORK = path.join(__dirname, '.work');
let CLI = path.join(ROOT, 'out/imaging/cli.js');
let HELPERS = path.join(ROOT, 'out/test/helpers/disks.js');
const MiB = 1 << 20;
const GiB = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = { engine: 'out', quick: false, scale: null, part: null, rebuild: false, keep: false, dropCaches: true, cpuProf: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--scale') o.scale = Number(argv[++i]);
    else if (a === '--part') o.part = Number(argv[++i]);
    else if (a === '--rebuild') o.rebuild = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--no-drop-caches') o.dropCaches = false;
    else if (a === '--cpu-prof') o.cpuProf = true;
    else if (a === '--engine') o.engine = argv[++i];
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see --help)`);
  }
  if (!['out', 'head'].includes(o.engine)) throw new Error('--engine is out or head');
  if (o.scale === null) o.scale = o.quick ? 0.3 : 3;
  if (!(o.scale > 0)) throw new Error('--scale needs a positive number of GB');
  if (o.part === null) o.part = Math.max(1, Math.ceil((o.scale * 8) / 3));
  if (o.part * GiB < o.scale * 1e9 * 1.25) throw new Error(`--part ${o.part} GiB is too small for ${o.scale} GB of data`);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Processes

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${(r.stderr || r.stdout || '').trim().slice(-2000)}`);
  return r;
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

let canDropCaches = null;
function dropCaches(enabled) {
  sh('sync', []);
  if (!enabled) return false;
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    canDropCaches = canDropCaches ?? true;
    return true;
  } catch {
    canDropCaches = false;
    return false;
  }
}

/** Peak RSS in bytes from a `/usr/bin/time -v -o FILE` report. */
function rssOf(file) {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(fs.readFileSync(file, 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * Runs a bash pipeline whose stages are each wrapped in `/usr/bin/time -v -o STAGEFILE`, then `sync`.
 * Returns the wall time (including the final sync), peak RSS (max over stages) and stdout.
 */
function timed(stages, { env, cwd, stdoutTo, stdinFrom, allowFail = false } = {}) {
  const files = stages.map((_, i) => path.join(WORK, `time-${process.pid}-${i}.txt`));
  let script = 'set -o pipefail; ' + stages.map((argv, i) => `/usr/bin/time -v -o ${q(files[i])} ${argv.map(q).join(' ')}`).join(' | ');
  if (stdinFrom) script += ` < ${q(stdinFrom)}`;
  if (stdoutTo) script += ` > ${q(stdoutTo)}`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 28, cwd, env: { ...process.env, ...env } });
  spawnSync('sync', []);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && !allowFail) {
    for (const f of files) fs.rmSync(f, { force: true });
    throw new Error(`${stages.map((s) => s.join(' ')).join(' | ')} failed (exit ${r.status}):\n${(r.stderr || '').trim().slice(-3000)}`);
  }
  const rss = Math.max(...files.map((f) => (fs.existsSync(f) ? rssOf(f) ?? 0 : 0)));
  const rssPerStage = files.map((f) => (fs.existsSync(f) ? rssOf(f) : null));
  for (const f of files) fs.rmSync(f, { force: true });
  return { seconds, rss, rssPerStage, stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function duBytes(dir) {
  if (!fs.existsSync(dir)) return 0;
  return Number(sh('du', ['-sb', dir]).stdout.split('\t')[0]);
}

function fileBytes(f) {
  return fs.existsSync(f) ? fs.statSync(f).size : 0;
}

// ---------------------------------------------------------------------------------------------
// Building the disk

/** Regular files and symlinks under `roots`, with sizes, in name order (no file over `maxFile`). */
function listReal(roots, maxFile) {
  const out = [];
  const walk = (d) => {
    let names;
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(d, name);
      let st;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) out.push({ p, size: 0 });
      else if (st.isFile() && st.size <= maxFile) out.push({ p, size: st.size });
    }
  };
  for (const r of roots) walk(r);
  return out;
}

/** Copies a deterministic sample of this machine's real files (about `budget` bytes) into `dir`, keeping their paths. */
function copyRealFiles(dir, budget, rand) {
  const groups = [
    // system: libraries, data, binaries, headers (most of a root filesystem)
    { share: 0.8, roots: ['/usr/lib', '/usr/share', '/usr/bin', '/usr/sbin', '/usr/include', '/usr/libexec', '/usr/local', '/etc'] },
    // developer caches: Python wheels and downloaded packages (mostly already-compressed archives)
    { share: 0.2, roots: ['/opt/wheels', '/opt/pypi', '/opt/tf-plugins'] },
  ];
  let files = 0;
  for (const g of groups) {
    const all = listReal(g.roots, 64 * MiB);
    const total = all.reduce((n, f) => n + f.size, 0);
    const want = budget * g.share;
    const p = Math.min(1, want / Math.max(1, total));
    const pick = all.filter(() => rand() < p).map((f) => f.p.slice(1));
    if (!pick.length) continue;
    const listFile = path.join(WORK, 'real-files.txt');
    fs.writeFileSync(listFile, pick.join('\n') + '\n');
    // tar keeps modes, owners, symlinks and hard links; unreadable files are skipped with a warning.
    sh('bash', ['-c', `tar -C / --no-recursion --ignore-failed-read -cf - -T ${q(listFile)} 2>/dev/null | tar -C ${q(dir)} -xpf -`]);
    fs.rmSync(listFile);
    files += pick.length;
  }
  return { files, bytes: duBytes(dir) };
}

async function buildBaseDisk(o, H) {
  const tag = `s${o.scale}-p${o.part}`;
  const base = path.join(WORK, `base-${tag}.img`);
  const stamp = base + '.json';
  if (!o.rebuild && fs.existsSync(base) && fs.existsSync(stamp)) {
    log(`reusing the base disk ${path.relative(ROOT, base)} (--rebuild to make it anew)`);
    return { base, info: JSON.parse(fs.readFileSync(stamp, 'utf8')) };
  }
  const tree = path.join(WORK, `tree-${tag}`);
  const efi = path.join(WORK, `efi-${tag}`);
  fs.rmSync(tree, { recursive: true, force: true });
  fs.rmSync(efi, { recursive: true, force: true });
  fs.mkdirSync(tree, { recursive: true });
  const budget = o.scale * 1e9;
  const rand = H.prng(20240601);
  log(`building a workstation tree of ~${o.scale} GB in ${path.relative(ROOT, tree)}: real files from /usr, /etc, /opt...`);
  const real = copyRealFiles(tree, budget * 0.65, rand);
  log(`  real system files: ${real.files} files, ${(real.bytes / 1e6).toFixed(0)} MB; now developer content (makeWorkstationTree)`);
  const dev = H.makeWorkstationTree(tree, { scale: Math.max(20e6, budget - real.bytes), seed: 7 });
  const treeBytes = duBytes(tree);
  log(`  developer content: ${dev.files} files; tree total ${(treeBytes / 1e6).toFixed(0)} MB`);

  // EFI system partition: a bootloader-like layout with real binaries as stand-ins for .efi files and a kernel
  fs.mkdirSync(path.join(efi, 'EFI/debian'), { recursive: true });
  fs.mkdirSync(path.join(efi, 'EFI/BOOT'), { recursive: true });
  const bins = ['/usr/bin/bash', '/usr/bin/perl', '/usr/bin/tar', '/usr/bin/gzip'].filter((f) => fs.existsSync(f));
  bins.forEach((b, i) => fs.copyFileSync(b, path.join(efi, 'EFI/debian', ['shimx64.efi', 'grubx64.efi', 'mmx64.efi', 'fbx64.efi'][i])));
  fs.copyFileSync(bins[0], path.join(efi, 'EFI/BOOT/BOOTX64.EFI'));
  fs.writeFileSync(path.join(efi, 'EFI/debian/grub.cfg'), "search.fs_uuid 0a1b2c3d root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n");

  const diskSize = MiB + 256 * MiB + o.part * GiB + MiB;
  log(`making the disk: GPT, 256 MiB EFI (vfat), ${o.part} GiB ext4 root (mke2fs -d; takes a while)`);
  const tmp = base + '.tmp';
  const layout = await H.makeDisk(tmp, {
    table: 'gpt',
    size: diskSize,
    partitions: [
      { size: 256 * MiB, fs: 'vfat', type: 'efi', fromDir: efi, label: 'EFI', name: 'EFI system partition' },
      { fs: 'ext4', fromDir: tree, label: 'root', name: 'root' },
    ],
  });
  fs.renameSync(tmp, base);
  const info = { diskSize, layout, treeBytes, treeFiles: real.files + dev.files, built: new Date().toISOString() };
  fs.writeFileSync(stamp, JSON.stringify(info, null, 2));
  fs.rmSync(efi, { recursive: true, force: true });
  // The tree is not needed any more: the disk holds it.
  fs.rmSync(tree, { recursive: true, force: true });
  return { base, info };
}

// ---------------------------------------------------------------------------------------------
// Results

const results = [];
function record(r) {
  results.push(r);
  const mbps = r.mbps ? `${r.mbps.toFixed(0)} MB/s` : '';
  log(`  ${r.op} / ${r.tool}: ${r.seconds.toFixed(1)} s ${mbps}, ${r.bytes != null ? (r.bytes / 1e6).toFixed(1) + ' MB' : ''}, peak RSS ${r.rss ? (r.rss / MiB).toFixed(0) + ' MiB' : '?'}`);
  return r;
}

function fmtBytes(b) {
  if (b == null) return '-';
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  return `${(b / 1e6).toFixed(1)} MB`;
}

function table(rows, header) {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid() !== 0) throw new Error('the benchmark needs root (loop devices and mounts)');
  fs.mkdirSync(WORK, { recursive: true });
  let engine = 'working tree (out/)';
  if (o.engine === 'head') {
    const sha = sh('git', ['-C', ROOT, 'rev-parse', 'HEAD']).stdout.trim();
    engine = `commit ${sha.slice(0, 12)}`;
    const dir = buildHead(sha);
    CLI = path.join(dir, 'out/imaging/cli.js');
    HELPERS = path.join(dir, 'out/test/helpers/disks.js');
  }
  if (!fs.existsSync(CLI) || !fs.existsSync(HELPERS)) throw new Error('build first: npm run build (or npx tsc -p .)');
  log(`engine: ${engine}`);

  // 1. peers
  log('checking peer tools (scripts/install-deps.sh --bench)');
  sh('bash', [path.join(ROOT, 'scripts/install-deps.sh'), '--bench'], { stdio: 'inherit' });
  if (!fs.existsSync('/usr/bin/time')) {
    log('installing GNU time (for peak RSS)');
    sh('bash', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null)']);
  }
  const versions = {
    node: process.version,
    partclone: (sh('partclone.ext4', ['-v'], { allowFail: true }).stdout + '').split('\n').find((l) => /partclone/i.test(l))?.trim() ?? '?',
    zstd: sh('zstd', ['--version']).stdout.trim(),
    restic: sh('restic', ['version']).stdout.trim(),
    borg: sh('borg', ['--version']).stdout.trim(),
  };

  const H = require(HELPERS);
  const loops = new Set();
  const mounts = new Set();
  const attach = (file, { offset, size, ro } = {}) => {
    const args = ['-f', '--show'];
    if (offset) args.push('-o', String(offset));
    if (size) args.push('--sizelimit', String(size));
    if (ro) args.push('-r');
    const dev = sh('losetup', [...args, file]).stdout.trim();
    loops.add(dev);
    return dev;
  };
  const detach = (dev) => {
    if (!loops.has(dev)) return;
    sh('losetup', ['-d', dev], { allowFail: true });
    loops.delete(dev);
  };
  const cleanupAll = () => {
    for (const m of [...mounts]) {
      if (sh('umount', [m], { allowFail: true }).status !== 0) sh('umount', ['-l', m], { allowFail: true });
      mounts.delete(m);
    }
    for (const d of [...loops]) detach(d);
  };
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanupAll(); process.exit(130); });

  const started = Date.now();
  const repos = path.join(WORK, 'repos');
  const outs = path.join(WORK, 'out');
  try {
    // 2. the disk
    const { base, info } = await buildBaseDisk(o, H);
    const [efiP, rootP] = info.layout;
    fs.rmSync(repos, { recursive: true, force: true });
    fs.rmSync(outs, { recursive: true, force: true });
    fs.mkdirSync(repos, { recursive: true });
    fs.mkdirSync(outs, { recursive: true });
    const disk = path.join(WORK, 'disk.img');
    log('copying the base disk to bench/.work/disk.img (sparse)');
    fs.rmSync(disk, { force: true });
    sh('cp', ['--sparse=always', base, disk]);

    const usedOf = (devPath) => {
      const out = sh('dumpe2fs', ['-h', devPath], { allowFail: true }).stdout;
      const g = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(out)?.[1] ?? 0);
      return (g('Block count') - g('Free blocks')) * g('Block size');
    };

    const env = {
      RESTIC_PASSWORD: 'devsnap-bench',
      RESTIC_CACHE_DIR: path.join(WORK, 'restic-cache'),
      BORG_BASE_DIR: path.join(WORK, 'borg-base'),
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      BORG_PASSPHRASE: '',
    };
    fs.rmSync(env.RESTIC_CACHE_DIR, { recursive: true, force: true });
    fs.rmSync(env.BORG_BASE_DIR, { recursive: true, force: true });
    const R = { devsnap: path.join(repos, 'devsnap'), restic: path.join(repos, 'restic'), borg: path.join(repos, 'borg') };
    sh('restic', ['init', '--repo', R.restic], { env: { ...process.env, ...env } });
    sh('borg', ['init', '-e', 'none', R.borg], { env: { ...process.env, ...env } });
    const devsnapArgs = (extra) => ['node', ...(extra.prof ? ['--cpu-prof', '--cpu-prof-dir', extra.prof] : []), CLI, ...extra.args];
    const devLink = path.join(WORK, 'dev');
    fs.mkdirSync(devLink, { recursive: true });
    const rootLink = path.join(devLink, 'root'); // stable path for borg, whatever loop device backs it
    const drop = () => dropCaches(o.dropCaches);

    // ---- phase A: the disk as installed ----
    let L = { disk: attach(disk, { ro: true }), efi: attach(disk, { offset: efiP.start, size: efiP.size, ro: true }), root: attach(disk, { offset: rootP.start, size: rootP.size, ro: true }) };
    fs.rmSync(rootLink, { force: true });
    fs.symlinkSync(L.root, rootLink);
    const rootUsed = usedOf(L.root);
    const efiUsed = (() => {
      const r = sh('fsck.vfat', ['-n', L.efi], { allowFail: true }).stdout;
      const m = /(\d+)\/(\d+) clusters/.exec(r);
      return m ? Number(m[1]) * 4096 : 0; // approximate (cluster size 4 KiB or less)
    })();
    log(`disk: ${fmtBytes(info.diskSize)}; root ext4 ${fmtBytes(rootP.size)} with ${fmtBytes(rootUsed)} used; ${info.treeFiles} files`);
    const dataBytes = rootUsed;
    const mbps = (s) => dataBytes / 1e6 / s;

    // (a) full image
    log('(a) full image');
    drop();
    let t = timed([devsnapArgs({ args: ['snapshot', L.disk, '--repo', R.devsnap, '--json', '--progress', 'none', '--label', 'installed'] })]);
    const snap1 = JSON.parse(t.stdout);
    const fullDevsnap = record({ op: 'full', tool: 'devsnap', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.devsnap), rss: t.rss, detail: { id: snap1.id, stats: snap1.snapshot?.stats ?? snap1.stats } });

    drop();
    const pcEfi = path.join(outs, 'efi.pcl.zst');
    const pcRoot = path.join(outs, 'root.pcl.zst');
    const t1 = timed([['partclone.vfat', '-c', '-q', '-s', L.efi, '-o', '-'], ['zstd', '-3', '-T0', '-q', '-c']], { stdoutTo: pcEfi });
    const t2 = timed([['partclone.ext4', '-c', '-q', '-s', L.root, '-o', '-'], ['zstd', '-3', '-T0', '-q', '-c']], { stdoutTo: pcRoot });
    const fullPartclone = record({
      op: 'full', tool: 'partclone+zstd -3 -T0', seconds: t1.seconds + t2.seconds, mbps: mbps(t1.seconds + t2.seconds),
      bytes: fileBytes(pcEfi) + fileBytes(pcRoot), rss: Math.max(t1.rss, t2.rss),
      detail: { efi: { seconds: t1.seconds, bytes: fileBytes(pcEfi), rss: t1.rssPerStage }, root: { seconds: t2.seconds, bytes: fileBytes(pcRoot), rss: t2.rssPerStage } },
    });

    // first runs of restic and borg (their "full"; the incremental is what the targets compare)
    drop();
    let before = duBytes(R.restic);
    t = timed([['restic', '--repo', R.restic, 'backup', '--quiet', '--stdin', '--stdin-filename', 'root.img']], { env, stdinFrom: L.root });
    record({ op: 'first backup', tool: 'restic --stdin', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.restic) - before, rss: t.rss });
    drop();
    before = duBytes(R.borg);
    t = timed([['borg', 'create', '--read-special', '--compression', 'zstd,3', `${R.borg}::installed`, 'dev/root']], { env, cwd: WORK });
    record({ op: 'first backup', tool: 'borg --read-special', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.borg) - before, rss: t.rss });
    for (const k of Object.keys(L)) detach(L[k]);

    // ---- the upgrade ----
    log('upgrade: simulateUpgrade(…, 0.05) on the mounted root');
    const rw = attach(disk, { offset: rootP.start, size: rootP.size });
    const mnt = path.join(WORK, 'mnt');
    fs.mkdirSync(mnt, { recursive: true });
    sh('mount', [rw, mnt]);
    mounts.add(mnt);
    const up = H.simulateUpgrade(mnt, 0.05);
    sh('umount', [mnt]);
    mounts.delete(mnt);
    detach(rw);
    log(`  modified ${up.modified}, added ${up.added}, removed ${up.removed} files`);

    // ---- phase B: after the upgrade ----
    L = { disk: attach(disk, { ro: true }), efi: attach(disk, { offset: efiP.start, size: efiP.size, ro: true }), root: attach(disk, { offset: rootP.start, size: rootP.size, ro: true }) };
    fs.rmSync(rootLink, { force: true });
    fs.symlinkSync(L.root, rootLink);

    // (b) incremental
    log('(b) incremental after the upgrade');
    drop();
    before = duBytes(R.devsnap);
    t = timed([devsnapArgs({ args: ['snapshot', L.disk, '--repo', R.devsnap, '--json', '--progress', 'none', '--label', 'upgraded'] })]);
    const snap2 = JSON.parse(t.stdout);
    const incDevsnap = record({ op: 'incremental', tool: 'devsnap', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.devsnap) - before, rss: t.rss, detail: { id: snap2.id, stats: snap2.snapshot?.stats ?? snap2.stats } });
    drop();
    before = duBytes(R.restic);
    t = timed([['restic', '--repo', R.restic, 'backup', '--quiet', '--stdin', '--stdin-filename', 'root.img']], { env, stdinFrom: L.root });
    const incRestic = record({ op: 'incremental', tool: 'restic --stdin', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.restic) - before, rss: t.rss });
    drop();
    before = duBytes(R.borg);
    t = timed([['borg', 'create', '--read-special', '--compression', 'zstd,3', `${R.borg}::upgraded`, 'dev/root']], { env, cwd: WORK });
    const incBorg = record({ op: 'incremental', tool: 'borg --read-special', seconds: t.seconds, mbps: mbps(t.seconds), bytes: duBytes(R.borg) - before, rss: t.rss });
    for (const k of Object.keys(L)) detach(L[k]);

    // (c) restore: each tool onto a fresh blank disk of the same size, through a loop device
    log('(c) restore onto blank loop devices');
    const blank = (name) => {
      const f = path.join(outs, name);
      fs.rmSync(f, { force: true });
      fs.closeSync(fs.openSync(f, 'w'));
      fs.truncateSync(f, info.diskSize);
      return f;
    };
    // devsnap: the latest snapshot (shares most chunks with the first), whole disk
    let target = blank('restore-devsnap.img');
    let tl = attach(target);
    drop();
    t = timed([devsnapArgs({ args: ['restore', snap2.id, tl, '--repo', R.devsnap, '--yes', '--progress', 'none', '--json'] })]);
    const resDevsnap = record({ op: 'restore', tool: 'devsnap', seconds: t.seconds, mbps: mbps(t.seconds), bytes: null, rss: t.rss });
    detach(tl);
    const chk = attach(target, { offset: rootP.start, size: rootP.size, ro: true });
    const fsckOk = sh('e2fsck', ['-fn', chk], { allowFail: true }).status === 0;
    detach(chk);
    resDevsnap.detail = { e2fsck: fsckOk ? 'clean' : 'ERRORS' };
    log(`  e2fsck -fn of devsnap's restored root: ${resDevsnap.detail.e2fsck}`);
    fs.rmSync(target, { force: true });

    // partclone: the table (sgdisk/sfdisk dump is trivial; not timed) + both partitions
    target = blank('restore-partclone.img');
    sh('bash', ['-c', `sfdisk -d ${q(disk)} | sfdisk -q --no-reread --no-tell-kernel ${q(target)}`]);
    const te = attach(target, { offset: efiP.start, size: efiP.size });
    const tr = attach(target, { offset: rootP.start, size: rootP.size });
    drop();
    const r1 = timed([['zstd', '-dc', '-q', pcEfi], ['partclone.vfat', '-r', '-q', '-s', '-', '-o', te]]);
    const r2 = timed([['zstd', '-dc', '-q', pcRoot], ['partclone.ext4', '-r', '-q', '-s', '-', '-o', tr]]);
    const resPartclone = record({ op: 'restore', tool: 'zstd -dc | partclone -r', seconds: r1.seconds + r2.seconds, mbps: mbps(r1.seconds + r2.seconds), bytes: null, rss: Math.max(r1.rss, r2.rss) });
    detach(te);
    detach(tr);
    fs.rmSync(target, { force: true });

    // restic: dump the partition (it wrote every byte of it, free space included) onto the root partition's slot
    target = blank('restore-restic.img');
    tl = attach(target, { offset: rootP.start, size: rootP.size });
    drop();
    t = timed([['restic', '--repo', R.restic, 'dump', '--quiet', 'latest', '/root.img']], { env, stdoutTo: tl });
    record({ op: 'restore', tool: 'restic dump', seconds: t.seconds, mbps: mbps(t.seconds), bytes: null, rss: t.rss });
    detach(tl);
    fs.rmSync(target, { force: true });

    // borg: extract --stdout of the partition
    target = blank('restore-borg.img');
    tl = attach(target, { offset: rootP.start, size: rootP.size });
    drop();
    t = timed([['borg', 'extract', '--stdout', `${R.borg}::upgraded`, 'dev/root']], { env, cwd: WORK, stdoutTo: tl });
    record({ op: 'restore', tool: 'borg extract --stdout', seconds: t.seconds, mbps: mbps(t.seconds), bytes: null, rss: t.rss });
    detach(tl);
    fs.rmSync(target, { force: true });

    // verify (informative: devsnap reads back every chunk of every snapshot)
    drop();
    t = timed([devsnapArgs({ args: ['verify', '--repo', R.devsnap, '--progress', 'none', '--json'] })], { allowFail: true });
    record({ op: 'verify (all)', tool: 'devsnap', seconds: t.seconds, mbps: null, bytes: null, rss: t.rss, detail: { exit: t.status } });

    // optional CPU profile of a devsnap full snapshot (into a new repository) from a warm cache
    let profile = null;
    if (o.cpuProf) {
      log('profiling a full devsnap snapshot (node --cpu-prof, warm cache)');
      const profDir = path.join(WORK, 'cpu-prof');
      fs.rmSync(profDir, { recursive: true, force: true });
      const pl = attach(disk, { ro: true });
      try {
        timed([devsnapArgs({ prof: profDir, args: ['snapshot', pl, '--repo', path.join(repos, 'devsnap-prof'), '--json', '--progress', 'none'] })]);
      } finally {
        detach(pl);
      }
      profile = summarizeProfiles(profDir);
      fs.rmSync(path.join(repos, 'devsnap-prof'), { recursive: true, force: true });
    }

    // ---- report ----
    const byTool = (op, tool) => results.find((r) => r.op === op && r.tool === tool);
    const ratioTo = (r) => {
      const d = byTool(r.op, 'devsnap');
      if (!d || r.tool === 'devsnap') return '';
      return `${(d.seconds / r.seconds).toFixed(2)}x t` + (r.bytes && d.bytes ? `, ${(d.bytes / r.bytes).toFixed(2)}x B` : '');
    };
    const rows = results.map((r) => [r.op, r.tool, r.seconds.toFixed(1), r.mbps ? r.mbps.toFixed(0) : '-', fmtBytes(r.bytes), r.rss ? `${(r.rss / MiB).toFixed(0)} MiB` : '-', ratioTo(r)]);
    const RSS_LIMIT = 300e6;
    const devsnapRuns = results.filter((r) => r.tool === 'devsnap');
    const targets = [
      { name: 'full: devsnap time <= partclone+zstd time', pass: fullDevsnap.seconds <= fullPartclone.seconds, value: `${fullDevsnap.seconds.toFixed(1)} s vs ${fullPartclone.seconds.toFixed(1)} s (${(fullDevsnap.seconds / fullPartclone.seconds).toFixed(2)}x)` },
      { name: 'full: devsnap size <= partclone+zstd size', pass: fullDevsnap.bytes <= fullPartclone.bytes, value: `${fmtBytes(fullDevsnap.bytes)} vs ${fmtBytes(fullPartclone.bytes)} (${(fullDevsnap.bytes / fullPartclone.bytes).toFixed(2)}x)` },
      { name: 'incremental >= 3x faster than devsnap full', pass: incDevsnap.seconds * 3 <= fullDevsnap.seconds, value: `${incDevsnap.seconds.toFixed(1)} s vs ${fullDevsnap.seconds.toFixed(1)} s (${(fullDevsnap.seconds / incDevsnap.seconds).toFixed(2)}x faster)` },
      { name: 'incremental faster than restic', pass: incDevsnap.seconds < incRestic.seconds, value: `${incDevsnap.seconds.toFixed(1)} s vs ${incRestic.seconds.toFixed(1)} s` },
      { name: 'incremental faster than borg', pass: incDevsnap.seconds < incBorg.seconds, value: `${incDevsnap.seconds.toFixed(1)} s vs ${incBorg.seconds.toFixed(1)} s` },
      { name: 'restore <= partclone restore time', pass: resDevsnap.seconds <= resPartclone.seconds, value: `${resDevsnap.seconds.toFixed(1)} s vs ${resPartclone.seconds.toFixed(1)} s (${(resDevsnap.seconds / resPartclone.seconds).toFixed(2)}x)` },
      { name: 'peak RSS < 300 MB (every devsnap run)', pass: devsnapRuns.every((r) => r.rss && r.rss < RSS_LIMIT), value: devsnapRuns.map((r) => `${r.op} ${(r.rss / 1e6).toFixed(0)} MB`).join(', ') },
    ];
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model?.trim()}), ${(os.totalmem() / GiB).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}`;
    const caches = !o.dropCaches ? 'not dropped (--no-drop-caches)' : canDropCaches ? 'dropped before every run (sync; echo 3 > /proc/sys/vm/drop_caches)' : 'could NOT be dropped (no permission): reads may come from the page cache';
    const out = [];
    out.push('');
    out.push(`devsnap benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
    out.push(`engine: ${engine}`);
    out.push(`disk: GPT ${fmtBytes(info.diskSize)}, EFI vfat 256 MiB (~${fmtBytes(efiUsed)} used), ext4 root ${fmtBytes(rootP.size)} with ${fmtBytes(rootUsed)} used (${info.treeFiles} files); upgrade: ${up.modified} modified, ${up.added} added, ${up.removed} removed`);
    out.push(`page cache: ${caches}. Times are wall clock and include a final sync. MB/s = root used bytes (${fmtBytes(dataBytes)}) / seconds.`);
    out.push(`devsnap zstd level 3 (Node ${process.version}: ${typeof require('zlib').zstdCompressSync === 'function' ? 'node:zlib native zstd' : 'zstd-codec WASM, no native zstd in this Node'}); repo unencrypted. restic: repository password set (restic always encrypts), compression auto; borg: init -e none, --compression zstd,3. restic/borg back up the root partition device (every byte, free space included); devsnap and partclone the used blocks (devsnap: whole disk, partclone: EFI + root).`);
    out.push('');
    out.push(table(rows, ['operation', 'tool', 'seconds', 'MB/s', 'bytes', 'peak RSS', 'devsnap/peer']));
    out.push('');
    out.push('targets (issue 2):');
    for (const tg of targets) out.push(`  ${tg.pass ? 'PASS' : 'MISS'}  ${tg.name}: ${tg.value}`);
    if (profile) {
      out.push('');
      out.push('CPU profile of a full devsnap snapshot (node --cpu-prof, warm page cache): self time per thread');
      for (const th of profile) {
        out.push(`  ${th.thread} (${th.seconds.toFixed(1)} s):`);
        for (const p of th.top) out.push(`    ${p.pct.toFixed(1).padStart(5)}%  ${p.name}`);
      }
    }
    out.push('');
    out.push(`total bench time ${((Date.now() - started) / 60000).toFixed(1)} min; results in ${path.relative(ROOT, path.join(WORK, 'results.json'))}`);
    console.log(out.join('\n'));
    const json = JSON.stringify({ date: new Date().toISOString(), machine, engine, options: o, versions, pageCache: caches, disk: { ...info, rootUsed, efiUsed }, upgrade: up, results, targets, profile }, null, 2);
    fs.writeFileSync(path.join(WORK, 'results.json'), json);
    fs.writeFileSync(path.join(WORK, `results-s${o.scale}.json`), json); // the latest run of each scale, kept side by side
  } finally {
    cleanupAll();
    if (!o.keep) {
      fs.rmSync(repos, { recursive: true, force: true });
      fs.rmSync(outs, { recursive: true, force: true });
      fs.rmSync(path.join(WORK, 'disk.img'), { force: true });
    }
  }
}

/** Compiles the engine and test helpers of commit `sha` into bench/.work/engine-SHA (once). */
function buildHead(sha) {
  const dir = path.join(WORK, `engine-${sha.slice(0, 12)}`);
  if (fs.existsSync(path.join(dir, 'out/imaging/cli.js'))) return dir;
  log(`building commit ${sha.slice(0, 12)} into ${path.relative(ROOT, dir)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  sh('bash', ['-c', `git -C ${q(ROOT)} archive ${sha} imaging extension test/helpers tsconfig.json package.json | tar -x -C ${q(dir)}`]);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const ts = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.json'), 'utf8'));
  ts.include = ['imaging/**/*.ts', 'test/helpers/**/*.ts'];
  ts.compilerOptions.sourceMap = false;
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(ts, null, 2));
  const r = sh(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', dir], { allowFail: true });
  if (!fs.existsSync(path.join(dir, 'out/imaging/cli.js'))) throw new Error(`could not build commit ${sha}:\n${r.stdout}${r.stderr}`);
  if (r.status !== 0) log(`note: tsc reported errors for commit ${sha.slice(0, 12)} (emitted anyway):\n${r.stdout.slice(0, 1500)}`);
  return dir;
}

/**
 * Self time per thread (.cpuprofile per thread: the main thread, then the compression workers),
 * with zstd-codec's WASM functions grouped as one entry; the top entries of each thread.
 */
function summarizeProfiles(dir) {
  const threads = [];
  const files = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => f.endsWith('.cpuprofile')).sort();
  files.forEach((f, t) => {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map();
    let total = 0;
    p.samples.forEach((id, i) => {
      const cf = byId.get(id).callFrame;
      let name = cf.functionName || '(anonymous)';
      if (/^wasm-function|emscripten|emval|^__emval|GenericJSToWasm/.test(name) || /zstd-codec/.test(cf.url)) name = 'zstd-codec (WASM) compress/decompress';
      else if (cf.url) name = `${name} ${path.basename(cf.url)}:${cf.lineNumber + 1}`;
      const us = p.timeDeltas[i] ?? 0;
      self.set(name, (self.get(name) ?? 0) + us);
      total += us;
    });
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, us]) => ({ name, pct: (100 * us) / Math.max(1, total) }));
    threads.push({ thread: t === 0 ? 'main thread' : `worker ${t}`, seconds: total / 1e6, top });
  });
  return threads;
}

main().catch((err) => {
  console.error(`bench failed: ${err.stack || err}`);
  process.exit(1);
});
