#!/usr/bin/env node
// A writer on the mounted root while devsnap snapshots it: what an editor saving files or a service
// writing its log does. Run by bench/writers.js, one process per mode:
//
//   node bench/writer.js --mode files  --root MNT --path REL_DIR  --log FILE [--interval MS]
//     every ~MS ms creates a small file of random content (unique name) in MNT/REL_DIR, fsyncs it
//     and the directory, and logs {name, sha256, bytes, doneWall, doneMs, ms}
//   node bench/writer.js --mode append --root MNT --path REL_FILE --log FILE [--interval MS]
//     every ~MS ms appends one line to MNT/REL_FILE (kept open, like a logger) and fsyncs it, and
//     logs {seq, line, doneWall, doneMs, ms}
//
// `ms` is the latency of the write and its fsyncs: a freeze blocks them, so the longest one is the
// longest pause this writer saw. The log FILE must be outside the mounted root (it is not part of
// what is snapshotted). Prints "ready" after the first write; on SIGTERM prints one JSON line
// {mode, count, errors, maxMs, maxAt, p50Ms, p99Ms, firstError} and exits.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

function args(argv) {
  const o = { mode: '', root: '', path: '', log: '', interval: 20 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) throw new Error(`unknown option ${argv[i]}`);
    o[k] = k === 'interval' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!['files', 'append'].includes(o.mode) || !o.root || !o.path || !o.log) throw new Error('usage: writer.js --mode files|append --root DIR --path REL --log FILE [--interval MS]');
  return o;
}

const o = args(process.argv.slice(2));
const logFd = fs.openSync(o.log, 'w');
const latencies = [];
let errors = 0;
let firstError = null;
let maxMs = 0;
let maxAt = null;
let seq = 0;
let ready = false;

function fsyncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** mkdir -p whose new directories are durable: each one and its parent fsync'd. */
function makeDirDurable(dir) {
  if (fs.existsSync(dir)) return;
  makeDirDurable(path.dirname(dir));
  fs.mkdirSync(dir);
  fsyncDir(dir);
  fsyncDir(path.dirname(dir));
}

const target = path.join(o.root, o.path);
let appendFd = null;

function writeOneFile() {
  const name = `f-${String(seq).padStart(6, '0')}-${crypto.randomBytes(3).toString('hex')}.bin`;
  const data = crypto.randomBytes(512 + crypto.randomInt(16 * 1024));
  const fd = fs.openSync(path.join(target, name), 'wx');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDir(target);
  return { name: path.join(o.path, name), sha256: crypto.createHash('sha256').update(data).digest('hex'), bytes: data.length };
}

function appendOneLine() {
  if (appendFd === null) {
    makeDirDurable(path.dirname(target));
    appendFd = fs.openSync(target, 'a');
    fsyncDir(path.dirname(target));
  }
  const line = `${seq} ${new Date().toISOString()} ${crypto.randomBytes(16).toString('hex')}\n`;
  fs.writeSync(appendFd, line);
  fs.fsyncSync(appendFd);
  return { seq, line };
}

function tick() {
  const t0 = process.hrtime.bigint();
  const startWall = new Date().toISOString();
  try {
    if (o.mode === 'files' && seq === 0) makeDirDurable(target);
    const entry = o.mode === 'files' ? writeOneFile() : appendOneLine();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const doneMs = Date.now();
    fs.writeSync(logFd, JSON.stringify({ ...entry, doneWall: new Date(doneMs).toISOString(), doneMs, ms }) + '\n');
    latencies.push(ms);
    if (ms > maxMs) {
      maxMs = ms;
      maxAt = startWall;
    }
    seq++;
    if (!ready) {
      ready = true;
      process.stdout.write('ready\n');
    }
  } catch (err) {
    // A failed write (say, a full filesystem) is counted and reported, not fatal: the bench decides.
    errors++;
    firstError = firstError ?? `${err.code || ''} ${err.message}`.trim();
    if (!ready && errors >= 5) {
      process.stderr.write(`writer ${o.mode}: ${firstError}\n`);
      process.exit(2);
    }
  }
  setTimeout(tick, o.interval);
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
}

process.on('SIGTERM', () => {
  if (appendFd !== null) fs.closeSync(appendFd);
  fs.closeSync(logFd);
  const sorted = [...latencies].sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ mode: o.mode, count: latencies.length, errors, maxMs, maxAt, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), firstError }) + '\n');
  process.exit(0);
});

tick();
