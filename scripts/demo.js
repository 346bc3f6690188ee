#!/usr/bin/env node
// `npm start`: devsnap in a browser-hosted VS Code (code-server) against a built-in demo.
//   1. npm run build, when a source is newer than dist/ and out/ (skip with --no-build)
//   2. scripts/host-setup.js: Debian packages, Node 24, code-server (cached in .cache/host/)
//   3. the demo under .cache/demo/: disk.img (GPT: EFI vfat + ext4 root with a workstation tree),
//      repo/ with two snapshots (before and after a simulated upgrade of the disk) and workspace/
//      whose settings point devsnap at both;
//      reused when present (--fresh makes a new one)
//   4. code-server with the extension installed (this checkout, linked into a fresh extensions
//      folder; --vsix uses the packaged devsnap-<version>.vsix instead), printing the URL
//   5. runs until Ctrl-C, then stops code-server (its whole process group)
// Options: --port N (default: a free port), --host ADDR (default 127.0.0.1), --no-build, --fresh, --vsix
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const DEMO_DIR = path.join(ROOT, '.cache', 'demo');
const BUILD_STAMP = path.join(ROOT, '.cache', 'demo-build.stamp');
const argv = process.argv.slice(2);
const has = (f) => argv.includes(f);
const opt = (f) => (has(f) ? argv[argv.indexOf(f) + 1] : undefined);
const say = (m) => console.log(`demo: ${m}`);

function fail(msg) {
  console.error(`demo: ${msg}`);
  process.exit(1);
}

/** Why the build must run (a reason), or '' when dist/ and out/ are newer than every source file. */
function buildIsStale() {
  const outputs = ['dist/extension.js', 'dist/devsnap.js', 'dist/webview.js', 'out/test/helpers/disks.js'].map((f) => path.join(ROOT, f));
  const missing = outputs.find((f) => !fs.existsSync(f));
  if (missing) return `${path.relative(ROOT, missing)} is missing`;
  // webpack does not rewrite an unchanged bundle, so the outputs' times say little: the demo's own stamp, written after each build it ran, says when.
  if (!fs.existsSync(BUILD_STAMP)) return 'no build by npm start yet';
  const built = fs.statSync(BUILD_STAMP).mtimeMs;
  const newer = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() ? newer(p) : /\.(ts|js|json|css)$/.test(e.name) && fs.statSync(p).mtimeMs > built) return p;
    }
    return null;
  };
  const sources = ['extension', 'imaging', 'webview-ui', 'test/helpers'].map((d) => path.join(ROOT, d));
  for (const f of ['package.json', 'webpack.config.js', 'tsconfig.json']) if (fs.statSync(path.join(ROOT, f)).mtimeMs > built) return `${f} changed`;
  for (const d of sources) {
    const changed = newer(d);
    if (changed) return `${path.relative(ROOT, changed)} changed`;
  }
  return '';
}

async function main() {
  if (!has('--no-build')) {
    const stale = buildIsStale();
    if (stale) {
      say(`building (npm run build: ${stale})...`);
      const t0 = Date.now();
      const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
      if (r.status !== 0) fail('the build failed (see above)');
      fs.mkdirSync(path.dirname(BUILD_STAMP), { recursive: true });
      fs.writeFileSync(BUILD_STAMP, new Date(t0).toISOString() + '\n');
      fs.utimesSync(BUILD_STAMP, new Date(t0), new Date(t0)); // a source saved during the build makes the next start build again
      say(`built in ${Math.round((Date.now() - t0) / 1000)} s`);
    } else say('the build is up to date (dist/ and out/ are newer than every source file)');
  }
  for (const f of ['dist/extension.js', 'dist/devsnap.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) fail(`${f} is missing: the build did not produce it`);
  }

  const { setup, SetupError } = require('./host-setup');
  try {
    setup();
  } catch (e) {
    fail(e instanceof SetupError ? e.message : e.stack);
  }

  const { prepareDemo, makeUpgradePair } = require('../test/host/fixture');
  if (has('--fresh')) fs.rmSync(DEMO_DIR, { recursive: true, force: true });
  const reused = fs.existsSync(path.join(DEMO_DIR, 'disk.img'));
  const demo = await prepareDemo(DEMO_DIR, { reuse: true, recoveryKit: true });
  say(`${reused ? 'reusing' : 'made'} the demo disk ${path.relative(ROOT, demo.disk)}; repository ${path.relative(ROOT, demo.repo)}`);
  if (!fs.existsSync(path.join(demo.repo, 'snapshots'))) {
    // Something to compare from the first minute: a snapshot, a simulated OS upgrade of the demo
    // disk, and a second snapshot.
    say('taking two demo snapshots, before and after a simulated upgrade...');
    makeUpgradePair(demo);
  }

  let install = {};
  if (has('--vsix')) {
    const { version, name } = require('../package.json');
    const vsix = path.join(ROOT, `${name}-${version}.vsix`);
    if (!fs.existsSync(vsix)) fail(`${path.basename(vsix)} is missing: run \`npm run package\` first`);
    install = { installExtensions: [vsix] };
  } else {
    install = { linkExtensions: [ROOT] };
  }

  const { startServer } = require('../test/host/server');
  const port = opt('--port') ? Number(opt('--port')) : Number(process.env.PORT) || undefined;
  const server = await startServer({
    workspace: demo.workspace,
    host: opt('--host') || '127.0.0.1',
    port,
    smokeTestDriver: false,
    userSettings: { 'workbench.startupEditor': 'none' },
    ...install,
  });
  const url = `${server.url}/?folder=${encodeURIComponent(demo.workspace)}`;
  const line = '─'.repeat(Math.max(40, url.length + 4));
  console.log(
    `\n${line}\n  devsnap demo is running. Open in a browser:\n\n  ${url}\n\n  The Snapshots view (activity bar) holds two snapshots of the demo disk, before and after a\n  simulated upgrade: right-click one and "Compare with Previous", or F1 "devsnap: Take Snapshot…".\n  Ctrl-C stops it. (code-server pid ${server.pid}, log ${server.logFile})\n${line}\n`,
  );
  // server.js stops the server on SIGINT/SIGTERM/SIGHUP and on exit; also notice if it dies.
  const timer = setInterval(() => {
    try {
      process.kill(server.pid, 0);
    } catch {
      clearInterval(timer);
      fail('code-server exited unexpectedly');
    }
  }, 2000);
}

main().catch((e) => fail(e.stack || e.message));
