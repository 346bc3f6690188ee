#!/usr/bin/env node
// The cost of `devsnap stats` (the `usage` operation: per snapshot the data only it uses) with many
// snapshots of a large disk. Synthetic but valid manifests written by the real Repository
// (test/helpers/manifests.ts): --snapshots N (default 100) snapshots of a 1 TB disk with --chunks K
// (default 400,000) used 1 MiB chunks each (400 GB of data), each snapshot changing --change P
// percent (default 1) of them; an index that lists every chunk (their packs are empty files:
// usage reads no pack). Measures `devsnap stats --json` as a process: wall time and peak RSS; and the
// same for `devsnap check --json` and `devsnap prune --dry-run --json`, which also go through every
// manifest (the packs hold a byte per chunk and a true chunk list, so that check finds them sound);
// then `show` and `label` of one snapshot: one manifest read, and read and written again.
// Run after `npx tsc -p .`:   node bench/usage-scale.js [--snapshots N] [--chunks K] [--change P] [--keep]
'use strict';

const { numberArg, peakMiB, OUT, CLI } = require('./lib');

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const arg = numberArg;
const N = arg('--snapshots', 100);
const K = arg('--chunks', 400000);
const P = arg('--change', 1);
const keep = process.argv.includes('--keep');

async function build(dir) {
  const { Repository } = require(path.join(OUT, 'imaging/repo/repository.js'));
  const { syntheticManifest, chunkRef, hexId } = require(path.join(OUT, 'test/helpers/manifests.js'));
  const { Extents } = require(path.join(OUT, 'imaging/repo/extents.js'));
  const repo = await Repository.init(dir, {}, () => undefined);
  const base = syntheticManifest({ id: hexId(0), chunks: K, diskSize: 1e12, seed: 'disk' });
  const all = new Set();
  const every = Math.max(1, Math.round(100 / P));
  for (let s = 0; s < N; s++) {
    // Snapshot s: the base, with chunks i ≡ s (mod every) written anew.
    const areas = base.areas.map((a) => ({
      ...a,
      extents: Extents.from([...a.extents].map((e, j) => (a.kind === 'partition' && e[2] !== 'f' && (j / 2) % every === s % every ? [e[0], e[1], chunkRef(`s${s}`, j)] : e))),
    }));
    for (const a of areas) for (const e of a.extents) if (e[2] !== 'f' && e[2] !== 'z') all.add(e[2]);
    const created = new Date(Date.UTC(2026, 0, 1) + s * 86400e3).toISOString();
    await repo.writeManifest({ ...base, areas, id: hexId(s + 1), label: `nightly ${s + 1}`, created });
  }
  // An index of every chunk, 30 per pack; a pack holds one stored byte per chunk and its chunk list.
  const { packTrailer } = require(path.join(OUT, 'imaging/repo/pack.js'));
  const packs = new Map();
  const ids = [...all];
  for (let i = 0; i < ids.length; i += 30) {
    const pack = crypto.randomBytes(16).toString('hex');
    const entries = ids.slice(i, i + 30).map((id, k) => ({ id, offset: k, length: 1, rawLength: 1 << 20 }));
    packs.set(pack, entries);
    fs.mkdirSync(path.join(dir, 'data', pack.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dir, repo.packName(pack)), Buffer.concat([Buffer.alloc(entries.length), packTrailer(entries)]));
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
    const run = (args) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, ...args, '--repo', dir, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`devsnap ${args.join(' ')} exited ${r.status}: ${r.stdout.slice(0, 2000)} ${r.stderr.slice(-2000)}`);
      return { seconds: ms / 1000, rssMiB: peakMiB(r.stderr), out: JSON.parse(r.stdout) };
    };
    const fmt = (f) => `${f.seconds.toFixed(1)} s, peak RSS ${f.rssMiB.toFixed(0)} MiB`;
    const stats = run(['stats']);
    console.log(`devsnap stats: ${fmt(stats)}; ${stats.out.snapshots.length} snapshots, unique chunks of the second: ${stats.out.snapshots[1]?.uniqueChunks}`);
    const check = run(['check']);
    if (!check.out.ok || check.out.snapshots !== N) throw new Error(`check: ${JSON.stringify(check.out).slice(0, 2000)}`);
    console.log(`devsnap check: ${fmt(check)}; ${check.out.snapshots} snapshots, ${check.out.chunks} chunks, no errors`);
    const prune = run(['prune', '--dry-run']);
    console.log(`devsnap prune --dry-run: ${fmt(prune)}; would remove ${prune.out.packsRemoved} packs`);
    // One manifest read (show), and read and written again (label): what restore, show and an
    // incremental's parent cost on top of the rest.
    const first = stats.out.snapshots[0].id;
    const bytes = fs.statSync(path.join(dir, 'snapshots', `${first}.json`)).size;
    const show = run(['show', first]);
    console.log(`devsnap show (one manifest of ${(bytes / 1e6).toFixed(1)} MB): ${fmt(show)}`);
    const label = run(['label', first, 'renamed']);
    console.log(`devsnap label (that manifest read and written again): ${fmt(label)}`);
    const figures = (f) => ({ seconds: f.seconds, rssMiB: f.rssMiB });
    fs.mkdirSync(path.join(__dirname, '.work'), { recursive: true });
    fs.writeFileSync(
      path.join(__dirname, '.work', 'usage-scale.json'),
      JSON.stringify(
        { snapshots: N, chunks: K, change: P, distinct: chunks, stats: figures(stats), check: figures(check), prune: figures(prune), show: figures(show), label: figures(label), manifestBytes: bytes },
        null,
        2,
      ) + '\n',
    );
  } finally {
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
