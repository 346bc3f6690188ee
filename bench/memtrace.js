#!/usr/bin/env node
// Summarizes a DEVSNAP_MEMTRACE file (imaging/core/memory.ts): at the main thread's peak RSS, what each
// thread held (V8 heap, external memory, ArrayBuffers), and each thread's own peaks.
// Usage: DEVSNAP_MEMTRACE=/tmp/m.jsonl node out/imaging/cli.js …; node bench/memtrace.js /tmp/m.jsonl
'use strict';
const fs = require('fs');

const MB = (n) => (n == null ? '-' : (n / 2 ** 20).toFixed(1));
const lines = fs
  .readFileSync(process.argv[2], 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
const marks = lines.filter((l) => l.thread === 'mark'); // memMark(): the phase that starts at t
const threads = new Map();
for (const l of lines) {
  if (l.thread === 'mark') continue;
  if (!threads.has(l.thread)) threads.set(l.thread, []);
  threads.get(l.thread).push(l);
}
const main = threads.get('main') ?? [];
const peak = main.reduce((a, b) => (b.rss > a.rss ? b : a), main[0]);
const phase = marks.filter((m) => m.t <= peak.t).pop()?.phase ?? 'start';
console.log(`peak RSS ${MB(peak.rss)} MiB at ${peak.t} ms, in phase "${phase}" (VmHWM ${MB(peak.VmHWM)}; anon ${MB(peak.RssAnon)}, file ${MB(peak.RssFile)})`);
if (peak.created != null) console.log(`pool buffers: ${peak.created} made so far, ${peak.free} free, ${peak.dropped} dropped; ${MB(peak.unpooled)} MiB asked outside the pool`);
if (marks.length) console.log(`phases: ${marks.map((m) => `${m.phase} ${m.t} ms`).join(', ')}`);
console.log('thread   heapTotal heapUsed external arrayBuffers   (MiB, nearest sample to the peak)');
let sum = 0;
for (const [name, ss] of threads) {
  const near = ss.reduce((a, b) => (Math.abs(b.t - peak.t) < Math.abs(a.t - peak.t) ? b : a), ss[0]);
  sum += near.heapTotal + near.external;
  console.log(`${name.padEnd(8)} ${MB(near.heapTotal).padStart(9)} ${MB(near.heapUsed).padStart(8)} ${MB(near.external).padStart(8)} ${MB(near.arrayBuffers).padStart(12)}`);
}
console.log(`sum heapTotal+external ${MB(sum)} MiB; the rest of RSS (code, isolates, WASM, malloc) ${MB(peak.rss - sum)} MiB`);
console.log('own peaks: thread heapTotal external arrayBuffers');
for (const [name, ss] of threads) {
  const max = (k) => Math.max(...ss.map((s) => s[k] ?? 0));
  console.log(`${name.padEnd(8)} ${MB(max('heapTotal')).padStart(9)} ${MB(max('external')).padStart(8)} ${MB(max('arrayBuffers')).padStart(12)}`);
}
