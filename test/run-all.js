#!/usr/bin/env node
// Runs every test suite in order and prints one `N passed, N failed` line at the end.
// Suites: unit/engine tests (node:test over out/test/unit) and the VS Code host tests (test/host/run.js).
// Usage: node test/run-all.js [--only unit|host]
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
let passed = 0;
let failed = 0;

function runSuite(name, cmd, args, parse) {
  if (only && only !== name) return;
  console.log(`\n=== ${name} tests ===`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
  process.stdout.write(r.stdout || '');
  const counts = parse(r.stdout || '');
  if (!counts) {
    console.log(`${name}: the suite did not report its counts (exit ${r.status}); counting it as one failure`);
    failed += 1;
    return;
  }
  passed += counts.passed;
  failed += counts.failed;
  if (r.status !== 0 && counts.failed === 0) failed += 1; // a crash after the last test still fails the run
}

const deps = spawnSync('bash', [path.join(root, 'scripts/install-deps.sh')], { stdio: 'inherit' });
if (deps.status !== 0) process.exit(1);

const unitDir = path.join(root, 'out/test/unit');
// test/unit/ mirrors the code's layers (test/unit/repo/, test/unit/helper/, ...): every *.test.js below it.
const unitFiles = fs.existsSync(unitDir)
  ? fs
      .readdirSync(unitDir, { recursive: true })
      .filter((f) => f.endsWith('.test.js'))
      .sort()
      .map((f) => path.join(unitDir, f))
  : [];
runSuite('unit', process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...unitFiles], (out) => {
  const p = /^# pass (\d+)/m.exec(out);
  const f = /^# fail (\d+)/m.exec(out);
  return p && f ? { passed: +p[1], failed: +f[1] } : null;
});

if (fs.existsSync(path.join(root, 'test/host/run.js'))) {
  runSuite('host', process.execPath, [path.join(root, 'test/host/run.js')], (out) => {
    const m = /(\d+) passed, (\d+) failed\s*$/.exec(out.trim());
    return m ? { passed: +m[1], failed: +m[2] } : null;
  });
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
