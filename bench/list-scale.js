#!/usr/bin/env node
// Listing at scale (issue 10, item 14): how long `devsnap list` takes and how much memory it needs
// with many snapshots of large disks, from the summaries (snapshots/<id>.summary) against reading
// every manifest (what listing did before, and what it still does once for a snapshot whose summary
// is missing or stale).
//
// Builds synthetic but valid manifests with the real Repository.writeManifest (test/helpers/manifests.ts):
//   set A: --snapshots N (default 200) snapshots of a 2 TB disk with --chunks K (default 100,000) used
//          chunks each (~12 MB per manifest, ~2.4 GB in all);
//   set B: --many M (default 1,000) snapshots of a 2 TB disk with small manifests (listing reads
//          summaries only, so the manifests' size does not matter to it).
// Each measurement runs in a fresh node process; it prints wall time and peak RSS.
// Run after `npx tsc -p .`:   node bench/list-scale.js [--snapshots N] [--chunks K] [--many M] [--old O] [--keep]
// (--old: how many manifests the "read every manifest" comparison reads, default 20)
//   --s3 s3:http://host:port/bucket   set B only, in a repository in that bucket (keys from AWS_ACCESS_KEY_ID /
//                                     AWS_SECRET_ACCESS_KEY; `scripts/ceph.sh up DIR` starts a server)
'use strict';

const { numberArg, peakMiB, OUT, CLI } = require('./lib');

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const arg = numberArg;
const N = arg('--snapshots', 200);
const K = arg('--chunks', 100000);
const M = arg('--many', 1000);
const OLD = Math.min(N, arg('--old', 20));
const keep = process.argv.includes('--keep');
const s3 = process.argv.includes('--s3') ? process.argv[process.argv.indexOf('--s3') + 1] : null;

async function build(dir, count, chunks) {
  const { Repository } = require(path.join(OUT, 'imaging/repo/repository.js'));
  const { syntheticManifest, hexId } = require(path.join(OUT, 'test/helpers/manifests.js'));
  const repo = await Repository.init(dir, {}, () => undefined);
  // One disk, many snapshots: the extent maps are alike (shared chunks), ids, labels and times differ.
  const base = syntheticManifest({ id: hexId(0), chunks, seed: 'disk' });
  for (let i = 0; i < count; i++) {
    const created = new Date(Date.UTC(2026, 0, 1) + i * 3600e3).toISOString();
    await repo.writeManifest({ ...base, id: hexId(i + 1), label: `nightly ${i + 1}`, created });
  }
}

/** Runs `body` (JS using `repo` and `out`) in a fresh process; returns its figures. */
function measure(dir, body) {
  const script = `
    const { Repository } = require(${JSON.stringify(path.join(OUT, 'imaging/repo/repository.js'))});
    (async () => {
      const repo = await Repository.open(${JSON.stringify(dir)}, {}, () => undefined);
      const t0 = process.hrtime.bigint();
      const out = await (async () => { ${body} })();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      process.stdout.write(JSON.stringify({ ms, rssMiB: process.resourceUsage().maxRSS / 1024, ...out }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function cliList(dir) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, 'list', '--repo', dir, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rss = peakMiB(r.stderr);
  if (r.status !== 0) throw new Error(`devsnap list exited ${r.status}: ${r.stderr}`);
  return { ms, rssMiB: rss, status: r.status, snapshots: JSON.parse(r.stdout).snapshots.length };
}

const fmt = (f) => `${(f.ms / 1000).toFixed(3)} s, peak RSS ${f.rssMiB.toFixed(0)} MiB`;
const du = (dir) => spawnSync('du', ['-sh', path.join(dir, 'snapshots')], { encoding: 'utf8' }).stdout.split('\t')[0];

(async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-list-scale-'));
  const results = {};
  try {
    const a = path.join(work, 'a');
    let t = Date.now();
    if (s3) return await setB(`${s3}/list-scale-${Date.now()}`, results);
    await build(a, N, K);
    console.log(`set A: ${N} snapshots of a 2 TB disk, ${K} used chunks each: snapshots/ holds ${du(a)} (built in ${((Date.now() - t) / 1000).toFixed(0)} s)`);
    const manifestMiB = fs.statSync(path.join(a, 'snapshots', `${'1'.padStart(16, '0')}.json`)).size / 2 ** 20;
    console.log(`  one manifest: ${manifestMiB.toFixed(1)} MiB; one summary: ${fs.statSync(path.join(a, 'snapshots', `${'1'.padStart(16, '0')}.summary`)).size} bytes`);
    results.A = {
      snapshots: N,
      chunks: K,
      manifestMiB,
      fromSummaries: measure(a, 'const c = await repo.listSnapshots(); return { listed: c.snapshots.length };'),
      cli: cliList(a),
      // As listing did before (every manifest read and kept); on the first OLD of them only: all of
      // them would take minutes and more memory than the machine may have.
      everyManifest: measure(a, `const ms = []; for (const id of (await repo.listSnapshotIds()).sort().slice(0, ${OLD})) ms.push(await repo.readManifest(id)); return { listed: ms.length };`),
    };
    console.log(`  list from summaries:            ${fmt(results.A.fromSummaries)}`);
    console.log(`  devsnap list --json (process):  ${fmt(results.A.cli)}`);
    const e = results.A.everyManifest;
    console.log(`  reading the manifests instead (before), ${e.listed} of them: ${fmt(e)}; all ${N}: ~${(((e.ms / e.listed) * N) / 1000).toFixed(0)} s`);
    for (const n of fs.readdirSync(path.join(a, 'snapshots'))) if (n.endsWith('.summary')) fs.rmSync(path.join(a, 'snapshots', n));
    results.A.rebuild = measure(a, 'const c = await repo.listSnapshots(); return { listed: c.snapshots.length };');
    results.A.afterRebuild = measure(a, 'const c = await repo.listSnapshots(); return { listed: c.snapshots.length };');
    console.log(`  every summary deleted: first list rebuilds them ${fmt(results.A.rebuild)}; the next ${fmt(results.A.afterRebuild)}`);
    fs.rmSync(a, { recursive: true, force: true });

    await setB(path.join(work, 'b'), results);
  } finally {
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

async function setB(b, results) {
  {
    const t = Date.now();
    await build(b, M, 100);
    console.log(`set B: ${M} snapshots of a 2 TB disk (small manifests), built in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    results.B = {
      snapshots: M,
      fromSummaries: measure(b, 'const c = await repo.listSnapshots(); return { listed: c.snapshots.length };'),
      cli: cliList(b),
      resolveLabel: measure(b, `return { id: await repo.resolveId('nightly ${Math.ceil(M / 2)}') };`),
    };
    console.log(`  list from summaries:            ${fmt(results.B.fromSummaries)}`);
    console.log(`  devsnap list --json (process):  ${fmt(results.B.cli)}`);
    console.log(`  naming one by label:            ${fmt(results.B.resolveLabel)}`);
    fs.mkdirSync(path.join(__dirname, '.work'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, '.work', 'list-scale.json'), JSON.stringify(results, null, 2) + '\n');
  }
}
