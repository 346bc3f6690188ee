// The engine under test: `--engine head` builds the last commit apart from the working tree, and
// `--cpu-prof` profiles are summarized per thread.
'use strict';

const fs = require('fs');
const path = require('path');
const { ROOT, WORK, sh, q, log } = require('./lib');

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
    const top = [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([name, us]) => ({ name, pct: (100 * us) / Math.max(1, total) }));
    threads.push({ thread: t === 0 ? 'main thread' : `worker ${t}`, seconds: total / 1e6, top });
  });
  return threads;
}

module.exports = { buildHead, summarizeProfiles };
