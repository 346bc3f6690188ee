// Shared plumbing of the benchmark: running and timing processes, sizes, loop devices and mounts,
// formatting. No knowledge of what is measured.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const WORK = path.join(__dirname, '.work');
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

module.exports = { ROOT, WORK, MiB, GiB, sh, q, log, dropCaches, canDropCaches: () => canDropCaches, timed, duBytes, fileBytes, ext4Used, Devices, fmtBytes, table };
