// Shared plumbing of the benchmark: running and timing processes, sizes, loop devices and mounts,
// formatting. No knowledge of what is measured.
'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const WORK = path.join(__dirname, '.work');
/** tsc's output, and the CLI in it (the scale benches run them; bench/run.js can run a built engine instead). */
const OUT = path.join(ROOT, 'out');
const CLI = path.join(OUT, 'imaging/cli.js');
const MiB = 1 << 20;
const GiB = 1 << 30;

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
/** sync, then drops the page cache if `enabled` and permitted; says whether it was dropped. */
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
  const rss = Math.max(...files.map((f) => (fs.existsSync(f) ? (rssOf(f) ?? 0) : 0)));
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

/** ext4 used bytes from the superblock (dumpe2fs -h). */
function ext4Used(devPath) {
  const out = sh('dumpe2fs', ['-h', devPath], { allowFail: true }).stdout;
  const g = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(out)?.[1] ?? 0);
  return (g('Block count') - g('Free blocks')) * g('Block size');
}

/**
 * Loop devices and mounts the bench made, so that every exit path (finally, SIGINT, SIGTERM) releases
 * them. Partitions go through `losetup -o/--sizelimit`: partition scanning does not work here.
 */
class Devices {
  constructor() {
    this.loops = new Set();
    this.mounts = new Set();
  }

  attach(file, { offset, size, ro } = {}) {
    const args = ['-f', '--show'];
    if (offset) args.push('-o', String(offset));
    if (size) args.push('--sizelimit', String(size));
    if (ro) args.push('-r');
    const dev = sh('losetup', [...args, file]).stdout.trim();
    this.loops.add(dev);
    return dev;
  }

  detach(dev) {
    if (!this.loops.has(dev)) return;
    sh('losetup', ['-d', dev], { allowFail: true });
    this.loops.delete(dev);
  }

  mount(dev, dir, options) {
    fs.mkdirSync(dir, { recursive: true });
    sh('mount', [...(options ? ['-o', options] : []), dev, dir]);
    this.mounts.add(dir);
  }

  umount(dir) {
    if (!this.mounts.has(dir)) return;
    sh('umount', [dir]);
    this.mounts.delete(dir);
  }

  cleanupAll() {
    for (const m of [...this.mounts]) {
      if (sh('umount', [m], { allowFail: true }).status !== 0) sh('umount', ['-l', m], { allowFail: true });
      this.mounts.delete(m);
    }
    for (const d of [...this.loops]) this.detach(d);
  }
}

/** The root partition mounted read-write (`noatime`) at `mnt`, and a read-only loop device of the whole disk for devsnap, which finds the mount through the shared backing file. */
function mountRoot(devices, disk, rootP, mnt) {
  // noatime: the image's atimes are older than 24 h, so with relatime the peers' reads of every file
  // would rewrite every inode between devsnap's runs, which a real root did long ago.
  const rw = devices.attach(disk, { offset: rootP.start, size: rootP.size });
  devices.mount(rw, mnt, 'noatime');
  const whole = devices.attach(disk, { ro: true }); // devsnap images the whole disk; it finds the mount itself
  return { rw, whole };
}

/** An ext4 device's state: `needs_recovery` (dumpe2fs -h) and `e2fsck -fn`'s exit (with its last lines when not 0). */
function ext4Health(dev) {
  const features = /^Filesystem features:\s*(.*)$/m.exec(sh('dumpe2fs', ['-h', dev], { allowFail: true }).stdout)?.[1] ?? '';
  const needsRecovery = /\bneeds_recovery\b/.test(features);
  const fsck = sh('e2fsck', ['-fn', dev], { allowFail: true });
  return { needsRecovery, e2fsckExit: fsck.status, e2fsckTail: fsck.status === 0 ? '' : (fsck.stdout + fsck.stderr).trim().split('\n').slice(-6).join('\n') };
}

/**
 * Every entry below `dir` as one line (path, type, mode, owner, and for files size, mtime in ns and
 * sha256, for symlinks the target), sorted: two trees are equal when their lists are. Directory
 * times and link counts are left out (restoring tools set them differently).
 */
function treeListing(dir) {
  const lines = [];
  const buf = Buffer.allocUnsafe(MiB);
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p, { bigint: true });
      const head = `${r}\t${(Number(st.mode) & 0o177777).toString(8)}\t${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        lines.push(`${head}\tdir`);
        walk(r);
      } else if (st.isSymbolicLink()) lines.push(`${head}\tlink\t${fs.readlinkSync(p)}`);
      else if (st.isFile()) {
        const h = crypto.createHash('sha256');
        const fd = fs.openSync(p, 'r');
        try {
          for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
        } finally {
          fs.closeSync(fd);
        }
        lines.push(`${head}\tfile\t${st.size}\t${st.mtimeNs}\t${h.digest('hex')}`);
      } else lines.push(`${head}\tother\t${st.rdev}`);
    }
  };
  walk('');
  return lines;
}

/** Compares two tree listings: `{ equal, entries, bytes, differences: first few lines only in one of them }`. */
function compareListings(want, got, max = 5) {
  const a = new Set(want);
  const b = new Set(got);
  const differences = [...want.filter((l) => !b.has(l)).map((l) => `missing or different: ${l}`), ...got.filter((l) => !a.has(l)).map((l) => `restored as: ${l}`)];
  const bytes = want.reduce((n, l) => n + (l.split('\t')[3] === 'file' ? Number(l.split('\t')[4]) : 0), 0);
  return { equal: differences.length === 0, entries: want.length, restoredEntries: got.length, bytes, differences: differences.slice(0, max), differing: differences.length };
}

/** Installs GNU time (for peak RSS) when it is missing. */
function ensureGnuTime() {
  if (fs.existsSync('/usr/bin/time')) return;
  log('installing GNU time (for peak RSS)');
  sh('bash', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null)']);
}

/** --scale and --part: the defaults (--quick: 0.3 GB; else 3 GB; the root partition 8/3 × the data, at least 1 GiB) and their checks. */
function diskScale(o) {
  if (o.scale === null) o.scale = o.quick ? 0.3 : 3;
  if (!(o.scale > 0)) throw new Error('--scale needs a positive number of GB');
  if (o.part === null) o.part = Math.max(1, Math.ceil((o.scale * 8) / 3));
  if (o.part * GiB < o.scale * 1e9 * 1.25) throw new Error(`--part ${o.part} GiB is too small for ${o.scale} GB of data`);
  return o;
}

/** Prints a bench script's header comment (the lines starting with //) as its --help, and exits. */
function printHelp(file) {
  console.log(
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('//'))
      .map((l) => l.slice(3))
      .join('\n'),
  );
  process.exit(0);
}

/**
 * The argv of a devsnap run as the extension and the helper start it: `node` with the engine's runtime
 * settings (imaging/runtime.ts), not relaunching itself to get them as a bare `node cli.js` does.
 * Returns `(extra) => argv` for `{ args, prof }`.
 */
function devsnapCommand(cli) {
  const runtimeJs = path.join(path.dirname(cli), 'runtime.js');
  const rt = fs.existsSync(runtimeJs) ? require(runtimeJs) : { ENGINE_NODE_ARGS: [], ENGINE_ENV: {} };
  return (extra) => [
    'env',
    ...Object.entries(rt.ENGINE_ENV).map(([k, v]) => `${k}=${v}`),
    'node',
    ...rt.ENGINE_NODE_ARGS,
    ...(extra.prof ? ['--cpu-prof', '--cpu-prof-dir', extra.prof] : []),
    cli,
    ...extra.args,
  ];
}

/** Runs `cleanup` when the process exits and on SIGINT, SIGTERM and SIGHUP (then exits 130). */
function cleanupOnExit(cleanup) {
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
}

function fmtBytes(b) {
  if (b == null) return '-';
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  return `${(b / 1e6).toFixed(1)} MB`;
}

/** A plain-text table: the first `left` columns left-aligned, the others right-aligned. */
function table(rows, header, left = 2) {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i < left ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The machine, for a report's header: cores, CPU, memory, kernel. */
function machineText() {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model?.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}`;
}

/** Whether the page cache was dropped before each run, for a report's header. */
/** The number after `name` on the command line, or `def` when it is not there. */
function numberArg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/** Peak RSS in MiB from GNU time's `-f %M` line, the last of stderr. */
function peakMiB(stderr) {
  return Number(stderr.trim().split('\n').pop()) / 1024;
}

function cachesText(dropCachesWanted) {
  if (!dropCachesWanted) return 'not dropped (--no-drop-caches)';
  return canDropCaches ? 'dropped before every run (sync; echo 3 > /proc/sys/vm/drop_caches)' : 'could NOT be dropped (no permission): reads may come from the page cache';
}

module.exports = {
  numberArg,
  OUT,
  CLI,
  peakMiB,
  ROOT,
  WORK,
  MiB,
  GiB,
  sh,
  q,
  log,
  dropCaches,
  canDropCaches: () => canDropCaches,
  machineText,
  cachesText,
  timed,
  duBytes,
  fileBytes,
  ext4Used,
  Devices,
  mountRoot,
  ext4Health,
  treeListing,
  compareListings,
  ensureGnuTime,
  diskScale,
  printHelp,
  devsnapCommand,
  cleanupOnExit,
  fmtBytes,
  table,
};
