#!/usr/bin/env node
// The compare panel's latency, as the extension sees it (issue 9): the extension's own client
// (out/extension/engineClient.js, ServedEngine) drives the engine service on the demo repository
// (`npm start`'s: a disk before and after a simulated upgrade), after the service has started, and
// beside it the way the extension worked before: one CLI process per call (dist/devsnap.js, started
// as the extension started it). Targets: sidebar refresh, the panel's first content and a text diff
// each under 300 ms. It prints a table (median, min–max of --runs) and PASS/MISS, and writes
// bench/.work/panel.json. Needs `npm run build`.
//   node bench/panel.js [--runs N] [--demo DIR]
//   node bench/panel.js --repo DIR [--a ID --b ID]   any repository (default: its first two snapshots),
//                                                     e.g. bench/run.js --keep's, for a large comparison
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const argv = process.argv.slice(2);
const opt = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const RUNS = Number(opt('--runs', 7));
const DEMO = path.resolve(opt('--demo', path.join(__dirname, '.work', 'panel-demo')));
const CLI = path.join(ROOT, 'dist', 'devsnap.js');
const FIRST_PAGE = 5000; // extension/panel/comparePanel.ts
const TARGET_MS = 300;

const { EngineClient } = require(path.join(ROOT, 'out', 'extension', 'engineClient.js'));
const { ServedEngine } = require(path.join(ROOT, 'out', 'extension', 'servedEngine.js'));
const { ENGINE_ENV, ENGINE_NODE_ARGS } = require(path.join(ROOT, 'out', 'imaging', 'runtime.js'));
const { prepareDemo, makeUpgradePair } = require(path.join(ROOT, 'test', 'host', 'fixture.js'));

const log = (m) => process.stderr.write(`[panel ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One CLI process, as the extension's CliEngine ran it: resolves with its stdout. */
function cli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...ENGINE_NODE_ARGS, CLI, ...args], { env: { ...process.env, ...ENGINE_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`devsnap ${args.join(' ')}: exit ${code}: ${err.slice(-500)}`))));
  });
}

async function time(fn) {
  const t = now();
  await fn();
  return now() - t;
}

async function main() {
  for (const f of [CLI, path.join(ROOT, 'out', 'extension', 'engineClient.js')]) if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run npm run build first`);
  let repo = opt('--repo');
  if (repo) repo = path.resolve(repo);
  else {
    const demo = await prepareDemo(DEMO, { reuse: true });
    if (!fs.existsSync(path.join(demo.repo, 'snapshots'))) {
      log('taking the demo snapshots (before and after a simulated upgrade)...');
      makeUpgradePair(demo);
    }
    repo = demo.repo;
  }
  const snaps = JSON.parse(await cli(['list', '--repo', repo, '--json'])).snapshots;
  const [a, b] = opt('--repo') ? [opt('--a', snaps[0].id), opt('--b', snaps[1].id)] : snaps.slice(-2).map((s) => s.id);
  const changes = JSON.parse(await cli(['changes', a, b, '--repo', repo, '--limit', '100000', '--json']));
  const file = changes.files.changes.find((c) => c.change === 'modified' && c.type === 'file' && (c.sizeAfter ?? 0) < 64 * 1024)?.path;
  if (!file) throw new Error('the demo pair has no modified text file to diff');
  log(`demo: ${snaps.length} snapshots, comparing ${a.slice(0, 8)} → ${b.slice(0, 8)} (${changes.files.total} changes); text diff of ${file}`);

  const served = { start: [], refresh: [], firstContent: [], reopen: [], textDiff: [] };
  const perCall = { refresh: [], firstContent: [], textDiff: [] };
  for (let i = 0; i < RUNS; i++) {
    // A new service each run: the first open of a pair walks both snapshots' trees.
    const client = new EngineClient({ cliPath: CLI });
    const engine = new ServedEngine(client);
    try {
      served.start.push(await time(() => client.call('listDisks', {})));
      served.refresh.push(await time(() => engine.listRepository(repo)));
      const open = () => Promise.all([engine.listRepository(repo), engine.changes({ repo, a, b, limit: FIRST_PAGE })]);
      served.firstContent.push(await time(open));
      served.reopen.push(await time(open));
      served.textDiff.push(await time(() => Promise.all([engine.readFile(repo, a, file), engine.readFile(repo, b, file)])));
    } finally {
      client.dispose();
    }
    perCall.refresh.push(await time(() => cli(['list', '--repo', repo, '--json'])));
    perCall.firstContent.push(await time(() => Promise.all([cli(['list', '--repo', repo, '--json']), cli(['changes', a, b, '--repo', repo, '--limit', String(FIRST_PAGE), '--json'])])));
    perCall.textDiff.push(await time(() => Promise.all([cli(['cat', a, file, '--repo', repo]), cli(['cat', b, file, '--repo', repo])])));
    log(`run ${i + 1}/${RUNS} done`);
  }

  const fmt = (xs) => (xs ? `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})` : '–');
  const rows = [
    ['engine start (first call)', served.start, null, false],
    ['sidebar refresh (list)', served.refresh, perCall.refresh, true],
    ['compare panel, first content (list + first page of changes)', served.firstContent, perCall.firstContent, true],
    ['compare panel, reopened (pages from the kept walk)', served.reopen, null, false],
    ['text diff (both sides of a file)', served.textDiff, perCall.textDiff, true],
  ];
  console.log(`\nCompare panel latency, ms: median (min–max) of ${RUNS} runs, on ${path.relative(ROOT, repo) || repo}`);
  console.log('| operation | engine service | one CLI process per call (before) | target |');
  console.log('| --- | ---: | ---: | --- |');
  const targets = {};
  for (const [name, s, c, judged] of rows) {
    const verdict = judged ? (median(s) <= TARGET_MS ? `PASS ≤ ${TARGET_MS}` : `MISS > ${TARGET_MS}`) : '';
    if (judged) targets[name] = { ms: median(s), pass: median(s) <= TARGET_MS };
    console.log(`| ${name} | ${fmt(s)} | ${fmt(c)} | ${verdict} |`);
  }
  fs.mkdirSync(path.join(__dirname, '.work'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '.work', 'panel.json'), JSON.stringify({ when: new Date().toISOString(), runs: RUNS, served, perCall, targets }, null, 2));
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
