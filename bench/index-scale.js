#!/usr/bin/env node
// The chunk index at scale: how much memory and time loading it takes when the repository holds
// many chunks (a 2 TB disk at 1 MiB chunks is up to 2 million; a team's shared repository tens of
// millions). Every snapshot, restore, verify and prune loads the whole index (repo/chunk-index.ts).
//
// Builds a folder repository with --chunks N synthetic index entries (random ids in --packs P empty
// pack files: loading reads only the index files and the pack listing), then in fresh processes:
//   load:     Repository.open + loadIndex, wall time and peak RSS;
//   snapshot: `devsnap snapshot` of an 8 MiB image into that repository (the whole command: its
//             peak RSS is the index plus what any snapshot needs), against the same into an empty one.
// Run after `npx tsc -p .`:   node bench/index-scale.js [--chunks N] [--packs P] [--keep]
'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { ensureGnuTime, numberArg, peakMiB, OUT, CLI } = require('./lib');

const arg = numberArg;
const N = arg('--chunks', 2000000);
const P = arg('--packs', Math.max(1, Math.ceil(N / 64)));
const keep = process.argv.includes('--keep');

async function build(dir, chunks, packs) {
  const { Repository } = require(path.join(OUT, 'imaging/repo/repository.js'));
  const repo = await Repository.init(dir, {}, () => undefined);
  const perPack = Math.ceil(chunks / packs);
  let left = chunks;
  // Index files of ~64k chunks each, as a run of that many new chunks would write.
  let batch = new Map();
  let inBatch = 0;
  for (let p = 0; p < packs && left > 0; p++) {
    const id = crypto.randomBytes(16).toString('hex');
    fs.mkdirSync(path.join(dir, 'data', id.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dir, repo.packName(id)), '');
    const n = Math.min(perPack, left);
    const ids = crypto.randomBytes(32 * n);
    const entries = [];
    for (let k = 0, off = 0; k < n; k++, off += 500000) entries.push({ id: ids.toString('hex', 32 * k, 32 * k + 32), offset: off, length: 500000, rawLength: 1048576 });
    batch.set(id, entries);
    left -= n;
    inBatch += n;
    if (inBatch >= 65536 || left === 0) {
      await repo.writeIndex(batch);
      batch = new Map();
      inBatch = 0;
    }
  }
  await repo.dispose();
}

// Peak RSS through /usr/bin/time: a child forked from this process (which built the repository)
// would report this process's size as its own (ru_maxrss survives exec).
function loadIndex(dir) {
  const script = path.join(path.dirname(dir), 'load.js');
  fs.writeFileSync(
    script,
    `const { Repository } = require(${JSON.stringify(path.join(OUT, 'imaging/repo/repository.js'))});
    (async () => {
      const repo = await Repository.open(${JSON.stringify(dir)}, {}, () => undefined);
      const t0 = process.hrtime.bigint();
      await repo.loadIndex();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      process.stdout.write(JSON.stringify({ ms, chunks: repo.index.size }));
    })().catch((e) => { console.error(e); process.exit(1); });`,
  );
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { ...JSON.parse(r.stdout), rssMiB: peakMiB(r.stderr) };
}

function snapshot(dir, image) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, 'snapshot', image, '--repo', dir, '--json'], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`devsnap snapshot exited ${r.status}: ${r.stderr}`);
  return { ms, rssMiB: peakMiB(r.stderr) };
}

(async () => {
  ensureGnuTime();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-index-scale-'));
  try {
    const image = path.join(work, 'disk.img');
    fs.writeFileSync(image, crypto.randomBytes(8 << 20));
    const empty = path.join(work, 'empty');
    const full = path.join(work, 'full');
    const t = Date.now();
    await build(full, N, P);
    await build(empty, 0, 1);
    console.log(`a repository of ${N.toLocaleString('en')} chunks in ${P.toLocaleString('en')} packs (built in ${((Date.now() - t) / 1000).toFixed(0)} s)`);
    const base = loadIndex(empty);
    const big = loadIndex(full);
    if (big.chunks !== N) throw new Error(`loaded ${big.chunks} chunks, not ${N}`);
    const perChunk = (a, b) => (N ? (((a - b) * 2 ** 20) / N).toFixed(0) : '-');
    console.log(
      `  load the index:     ${(big.ms / 1000).toFixed(2)} s, peak RSS ${big.rssMiB.toFixed(0)} MiB (empty repository ${base.rssMiB.toFixed(0)} MiB): ${perChunk(big.rssMiB, base.rssMiB)} bytes per chunk`,
    );
    const s0 = snapshot(empty, image);
    const s1 = snapshot(full, image);
    console.log(
      `  devsnap snapshot:   ${(s1.ms / 1000).toFixed(2)} s, peak RSS ${s1.rssMiB.toFixed(0)} MiB (into an empty repository ${(s0.ms / 1000).toFixed(2)} s, ${s0.rssMiB.toFixed(0)} MiB): ${perChunk(s1.rssMiB, s0.rssMiB)} bytes per chunk`,
    );
    const results = { chunks: N, packs: P, load: big, loadEmpty: base, snapshot: s1, snapshotEmpty: s0 };
    fs.mkdirSync(path.join(__dirname, '.work'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, '.work', 'index-scale.json'), JSON.stringify(results, null, 2) + '\n');
  } finally {
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
