#!/usr/bin/env node
// The cost of `devsnap stats` (the `usage` operation: per snapshot the data only it uses) with many
// snapshots of a large disk. Synthetic but valid manifests written by the real Repository
// (test/helpers/manifests.ts): --snapshots N (default 100) snapshots of a 1 TB disk with --chunks K
// (default 400,000) used 1 MiB chunks each (400 GB of data), each snapshot changing --change P
// percent (default 1) of them; an index that lists every chunk (their packs are empty files:
// usage reads no pack). Measures `devsnap stats --json` as a process: wall time and peak RSS.
// Run after `npx tsc -p .`:   node bench/usage-scale.js [--snapshots N] [--chunks K] [--change P] [--keep]
'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const OUT = path.join(path.resolve(__dirname, '..'), 'out');
const CLI = path.join(OUT, 'imaging/cli.js');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('--snapshots', 100);
const K = arg('--chunks', 400000);
const P = arg('--change', 1);
const keep = process.argv.includes('--keep');

async function build(dir) {
  const { Repository } = require(path.join(OUT, 'imaging/repo/repository.js'));
  const { syntheticManifest, chunkRef, hexId } = require(path.join(OUT, 'test/helpers/manifests.js'));
  const repo = await Repository.init(dir, {}, () => undefined);
  const base = syntheticManifest({ id: hexId(0), chunks: K, diskSize: 1e12, seed: 'disk' });
  const all = new Set();
  const every = Math.max(1, Math.round(100 / P));
  for (let s = 0; s < N; s++) {
    // Snapshot s: the base, with chunks i ≡ s (mod every) written anew.
    const areas = base.areas.map((a) => ({
      ...a,
      extents: a.extents.map((e, j) => (a.kind === 'partition' && e[2] !== 'f' && (j / 2) % every === s % every ? [e[0], e[1], chunkRef(`s${s}`, j)] : e)),
    }));
    for (const a of areas) for (const e of a.extents) if (e[2] !== 'f' && e[2] !== 'z') all.add(e[2]);
    const created = new Date(Date.UTC(2026, 0, 1) + s * 86400e3).toISOString();
    await repo.writeManifest({ ...base, areas, id: hexId(s + 1), label: `nightly ${s + 1}`, created });
  }
  // An index of every chunk, ~30 per pack (~600 KB stored each); the packs are empty files.
  const packs = new Map();
  let pack;
  let n = 0;
  for (const id of all) {
    if (n++ % 30 === 0) {
      pack = crypto.randomBytes(16).toString('hex');
      packs.set(pack, []);
      fs.mkdirSync(path.join(dir, 'data', pack.slice(0, 2)), { recursive: true });
      fs.writeFileSync(path.join(dir, 'data', pack.slice(0, 2), `${pack}.pack`), '');
    }
    packs.get(pack).push({ id, offset: (n % 30) * 600000, length: 600000, rawLength: 1 << 20 });
  }
  await repo.writeIndex(packs);
  return all.size;
}

(async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-usage-scale-'));
  try {
    const dir = path.join(work, 'repo');
    const t = Date.now();
    const chunks = await build(dir);
    const du = spawnSync('du', ['-sh', path.join(dir, 'snapshots')], { encoding: 'utf8' }).stdout.split('\t')[0];
    console.log(
      `${N} snapshots of a 1 TB disk, ${K} used chunks each (${P}% new per snapshot): ${chunks} distinct chunks, snapshots/ holds ${du} (built in ${((Date.now() - t) / 1000).toFixed(0)} s)`,
    );
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, 'stats', '--repo', dir, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`devsnap stats exited ${r.status}: ${r.stderr}`);
    const rss = Number(r.stderr.trim().split('\n').pop()) / 1024;
    const u = JSON.parse(r.stdout);
    console.log(`devsnap stats: ${(ms / 1000).toFixed(1)} s, peak RSS ${rss.toFixed(0)} MiB; ${u.snapshots.length} snapshots, unique chunks of the second: ${u.snapshots[1]?.uniqueChunks}`);
    fs.mkdirSync(path.join(__dirname, '.work'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, '.work', 'usage-scale.json'), JSON.stringify({ snapshots: N, chunks: K, change: P, distinct: chunks, seconds: ms / 1000, rssMiB: rss }, null, 2) + '\n');
  } finally {
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
