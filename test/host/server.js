// Starts one code-server (browser-hosted VS Code with a Node extension host) for tests and the demo.
//
//   const { startServer } = require('./server');
//   const server = await startServer({ workspace, userSettings, env });
//   server.url  // http://127.0.0.1:<port>   server.pid, server.port, server.dir, server.logFile
//   await server.stop();
//
// Each server gets a free loopback port (asked from the OS), fresh user-data / extensions / XDG
// folders in a temp dir, and runs detached in its own process group; stop() kills exactly that group
// (code-server, its extension hosts, pty host, watchers) and removes the temp dir. Servers still
// running when this process exits, or gets SIGINT/SIGTERM/SIGHUP, are killed too.
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { paths: hostPaths } = require('../../scripts/host-setup');

/** User settings: no start page, trust prompt, telemetry, update checks, tips or AI features. */
const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
  'files.watcherExclude': { '**': true },
};

const live = new Set();

/** Asks the OS for a free loopback TCP port (listen on 0, read it, close). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function get(url, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

let handlersInstalled = false;
function installExitHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort, synchronous: whatever is still running dies with us.
  process.on('exit', () => {
    for (const s of live) killGroup(s.pid, 'SIGKILL');
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]) {
    process.on(sig, () => {
      const all = [...live];
      Promise.all(all.map((s) => s.stop())).finally(() => process.exit(code));
    });
  }
}

/**
 * @param {object} [opts]
 * @param {string} [opts.workspace]        folder opened by default (also passed as ?folder= by clients)
 * @param {object} [opts.userSettings]     merged over QUIET_SETTINGS into the user settings.json
 * @param {Record<string,string>} [opts.env] extra environment (inherited by the extension host)
 * @param {boolean} [opts.smokeTestDriver] pass `--vscode-option enable-smoke-test-driver` (needed for
 *   the `payload` URL parameter: extensionDevelopmentPath / extensionTestsPath); default true
 * @param {string[]} [opts.args]           extra code-server arguments
 * @param {string[]} [opts.installExtensions] VSIX files to install before starting
 * @param {string[]} [opts.linkExtensions] extension folders (with a package.json) to symlink into the
 *   extensions dir as installed extensions: loaded like a VSIX install, without the smoke-test
 *   driver (so notification toasts show) and reflecting rebuilds after a window reload
 * @param {number} [opts.port]             fixed port instead of a free one
 * @param {string} [opts.host]             bind address, default 127.0.0.1
 * @param {boolean} [opts.keepDir]         keep the temp dir (logs) after stop()
 * @param {number} [opts.timeoutMs]        how long to wait for /healthz, default 60 s
 */
async function startServer(opts = {}) {
  const tools = hostPaths();
  for (const f of [tools.node, tools.codeServerEntry]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`node scripts/host-setup.js\` first`);
  }
  installExitHandlers();
  const host = opts.host || '127.0.0.1';
  const port = opts.port || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-host-'));
  const userDir = path.join(dir, 'user');
  const extDir = path.join(dir, 'extensions');
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(path.join(userDir, 'User'), { recursive: true });
  fs.mkdirSync(extDir, { recursive: true });
  fs.mkdirSync(xdg, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...(opts.userSettings || {}) }, null, 2));
  const logFile = path.join(dir, 'code-server.log');

  const env = {
    ...process.env,
    EXTENSIONS_GALLERY: '{}',
    XDG_CONFIG_HOME: xdg,
    XDG_DATA_HOME: xdg,
    XDG_CACHE_HOME: path.join(xdg, 'cache'),
    ...(opts.env || {}),
  };
  // Never let a password or a parent's code-server session leak in.
  delete env.PASSWORD;
  delete env.HASHED_PASSWORD;
  delete env.VSCODE_IPC_HOOK_CLI;
  delete env.NODE_OPTIONS;

  const common = ['--user-data-dir', userDir, '--extensions-dir', extDir];
  for (const folder of opts.linkExtensions || []) {
    const m = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'));
    fs.symlinkSync(path.resolve(folder), path.join(extDir, `${m.publisher}.${m.name}-${m.version}`), 'dir');
  }
  for (const vsix of opts.installExtensions || []) {
    const r = spawnSync(tools.node, [tools.codeServerEntry, ...common, '--install-extension', vsix, '--force'], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`installing ${vsix} into code-server failed:\n${r.stdout}${r.stderr}`);
  }

  const args = [
    tools.codeServerEntry,
    '--bind-addr',
    `${host}:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    ...common,
    ...(opts.smokeTestDriver === false ? [] : ['--vscode-option', 'enable-smoke-test-driver']),
    ...(opts.args || []),
    ...(opts.workspace ? [opts.workspace] : []),
  ];
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn(tools.node, args, { detached: true, stdio: ['ignore', logFd, logFd], env, cwd: dir });
  fs.closeSync(logFd);
  const pid = child.pid;
  let exited = null;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  child.on('error', () => {});

  let stopping = null;
  const server = {
    url: `http://${host}:${port}`,
    host,
    port,
    pid,
    dir,
    logFile,
    /** Kills the process group (SIGTERM, then SIGKILL after 5 s) and removes the temp dir. */
    stop() {
      if (stopping) return stopping;
      stopping = (async () => {
        if (pid) {
          killGroup(pid, 'SIGTERM');
          const deadline = Date.now() + 5000;
          while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
          await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 2000))]);
        }
        live.delete(server);
        if (!opts.keepDir) fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  if (!pid) {
    await server.stop();
    throw new Error(`could not start ${tools.node}`);
  }
  live.add(server);

  const deadline = Date.now() + (opts.timeoutMs || 60000);
  for (;;) {
    if (exited) {
      const log = tail(logFile);
      await server.stop();
      throw new Error(`code-server exited during startup (${JSON.stringify(exited)}). Log:\n${log}`);
    }
    if ((await get(`${server.url}/healthz`, 1000)) === 200) break;
    if (Date.now() > deadline) {
      const log = tail(logFile);
      await server.stop();
      throw new Error(`code-server did not answer ${server.url}/healthz within ${(opts.timeoutMs || 60000) / 1000}s. Log:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return server;
}

module.exports = { startServer, freePort, QUIET_SETTINGS };
