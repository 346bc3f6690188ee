#!/usr/bin/env node
// The VS Code host tests: the extension inside a real (browser-hosted) VS Code, code-server.
//   1. scripts/host-setup.js: Debian packages, Node 24, code-server, playwright-core, mocha (cached)
//   2. a demo disk image + snapshot repository + workspace configuring devsnap (test/host/fixture.js)
//   3. one code-server on a free loopback port (test/host/server.js)
//   4. in-host Mocha suite (out/test/host/suite/*.test.js, the real `vscode` API), run through the
//      workbench's `payload` URL parameter in headless Chromium
//   5. UI end-to-end tests (test/host/e2e/*.e2e.js) with Playwright, against a fresh workspace
//   6. stop code-server (its whole process group) and the browser, also on failure or Ctrl-C
// Artifacts (screenshots, server log on failure, results) go to .test-artifacts/host/.
// The last line printed is `N passed, N failed`; the exit code is non-zero on any failure.
//
// Usage: node test/host/run.js [--only inhost|e2e] [--grep TEXT] [--keep]
//   --keep   keep the temp folder (demo disk, repositories, code-server log) and print where it is
// Needs `npm run build` first (out/ for the suite, dist/ for the extension and the engine CLI).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { setup, paths: hostPaths, SetupError } = require('../../scripts/host-setup');

const ROOT = path.join(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, '.test-artifacts', 'host');
const SUITE = path.join(ROOT, 'out', 'test', 'host', 'suite', 'index.js');
const E2E_DIR = path.join(__dirname, 'e2e');

const argv = process.argv.slice(2);
const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const only = opt('--only');
const grep = opt('--grep');
const keep = argv.includes('--keep');

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[host ${elapsed()}] ${msg}`);
const results = []; // { phase, title, ok, error?, ms? }
// Workbench chatter forwarded through codeAutomationLog that says nothing about the tests.
const NOISE = [/Ignoring fetching additional builtin extensions from gallery/];

function record(phase, title, ok, error, ms) {
  results.push({ phase, title, ok, error, ms });
  const time = ms !== undefined ? ` (${ms} ms)` : '';
  console.log(`  ${ok ? '✓' : '✗'} [${phase}] ${title}${time}`);
  if (!ok && error)
    console.log(
      String(error)
        .split('\n')
        .map((l) => `      ${l}`)
        .join('\n'),
    );
}

function slug(s) {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
}

/** A screenshot of the page, or of `clip` ({ x, y, width, height }) only. */
async function shot(page, name, clip) {
  const file = path.join(ARTIFACTS, `${slug(name)}.png`);
  try {
    await page.screenshot({ path: file, ...(clip ? { clip } : {}) });
    return file;
  } catch {
    return null;
  }
}

/**
 * An in-host test's request to type into the input box on screen (test/host/suite/util.ts typeInInputBox):
 * the extension host cannot type, the browser can. The request names a file holding the text (so a
 * secret typed into a password box is in no log line); it is removed, and FILE.done (or FILE.failed,
 * with the error) says when Enter was pressed in the box.
 */
const TYPE_REQUEST = '[devsnap-host] type-into-input-box ';
async function typeForSuite(page, file) {
  try {
    const value = fs.readFileSync(file, 'utf8');
    fs.rmSync(file);
    // The box is empty, and another may follow at once: the suite waits for the extension to move on.
    await require('./e2e/ui').inputBox(page, value, 20000, { empty: true, next: true });
    fs.writeFileSync(`${file}.done`, '');
  } catch (e) {
    fs.writeFileSync(`${file}.failed`, String(e?.stack || e));
  }
}

/** Phase 4: Mocha inside the extension host. */
async function runInHost({ server, browserApi, demo, scratch }) {
  const { launchBrowser, workbenchUrl, runInHostTests } = browserApi;
  if (!fs.existsSync(SUITE)) {
    record('in-host', 'suite is built', false, `${path.relative(ROOT, SUITE)} is missing: run \`npm run build\` first`);
    return;
  }
  const resultsFile = path.join(scratch, 'inhost-results.json'); // DEVSNAP_HOST_RESULTS
  const browser = await launchBrowser();
  try {
    const url = workbenchUrl(server, { folder: demo.workspace, extensionDevelopmentPath: ROOT, extensionTestsPath: SUITE });
    log('in-host Mocha suite: starting the extension host');
    const r = await runInHostTests(browser.page, url, {
      timeoutMs: 480000,
      onLog: (line) => {
        if (line.startsWith(TYPE_REQUEST)) return void typeForSuite(browser.page, line.slice(TYPE_REQUEST.length).trim());
        if (!NOISE.some((re) => re.test(line)))
          console.log(
            line
              .split('\n')
              .map((l) => `    | ${l}`)
              .join('\n'),
          );
      },
    });
    let report = null;
    try {
      report = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
    } catch {
      /* not written */
    }
    if (report) {
      for (const t of report.tests) {
        if (t.state === 'skipped') console.log(`  - [in-host] ${t.title} (skipped)`);
        else record('in-host', t.title, t.state === 'passed', t.error, t.durationMs);
      }
    }
    if (r.timedOut) record('in-host', 'suite finishes in time', false, 'timed out waiting for the extension host to exit');
    else if (!report) record('in-host', 'suite reports its results', false, `the extension host exited with ${r.exitCode} without writing results`);
    else if (r.exitCode !== 0 && report.failed === 0) record('in-host', 'extension host exits cleanly', false, `exit code ${r.exitCode}`);
    if (r.timedOut || !report || report.failed > 0 || r.exitCode !== 0) {
      const f = await shot(browser.page, 'in-host-failure');
      if (f) log(`screenshot: ${path.relative(ROOT, f)}`);
    }
  } finally {
    await browser.close();
  }
}

/**
 * The VSIX users install (`npm run package`), made once per run: the "installed" e2e files run
 * against it, so what ships (and only what .vscodeignore lets through) is what is tested.
 */
function packageVsix(scratch) {
  const vsix = path.join(scratch, 'devsnap.vsix');
  if (fs.existsSync(vsix)) return vsix;
  log('packaging the VSIX (npm run package)...');
  const { spawnSync } = require('child_process');
  const r = spawnSync('npm', ['run', '--silent', 'package', '--', '--out', vsix], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run package failed:\n${(r.stdout || '') + (r.stderr || '')}`.slice(0, 4000));
  return vsix;
}

/**
 * Phase 5: UI end to end. Each e2e file exports `tests: { title, run(t) }[]`, run in order in one
 * page (a failing step skips the rest of its file). A file exporting `installed: true` gets a
 * server of its own without the smoke-test driver and with the extension installed from the VSIX
 * rather than loaded through the payload: notification toasts show there, as users see them.
 */
async function runE2e({ server, browserApi, scratch, fixture }) {
  const { launchBrowser, workbenchUrl } = browserApi;
  const { startServer } = require('./server');
  const files = fs.existsSync(E2E_DIR)
    ? fs
        .readdirSync(E2E_DIR)
        .filter((f) => f.endsWith('.e2e.js'))
        .sort()
    : [];
  const ui = require('./e2e/ui');
  for (const file of files) {
    const mod = require(path.join(E2E_DIR, file));
    const tests = (mod.tests || []).filter((t) => !grep || t.title.includes(grep));
    if (!tests.length) continue;
    // A workspace and repository per file, so other tests' snapshots don't show up.
    const demo = await fixture.prepareDemo(path.join(scratch, `e2e-${slug(file)}`));
    let own = null;
    if (mod.installed) own = await startServer({ workspace: demo.workspace, smokeTestDriver: false, installExtensions: [packageVsix(scratch)] });
    const srv = own || server;
    const browser = await launchBrowser();
    const page = browser.page;
    const consoleErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text().slice(0, 300));
    });
    const t = {
      page,
      server: srv,
      demo,
      ui: ui.bind(page),
      log: (m) => log(`  ${m}`),
      shot: (name, clip) => shot(page, name, clip),
      url: own ? workbenchUrl(srv, { folder: demo.workspace }) : workbenchUrl(srv, { folder: demo.workspace, extensionDevelopmentPath: ROOT }),
    };
    log(`e2e ${file}${own ? ` (own code-server ${own.url}, extension installed)` : ''}`);
    let broken = false;
    try {
      for (const test of tests) {
        if (broken) {
          record('e2e', test.title, false, 'skipped: an earlier step of this file failed');
          continue;
        }
        const s = Date.now();
        try {
          await test.run(t);
          record('e2e', test.title, true, undefined, Date.now() - s);
        } catch (e) {
          broken = true;
          const f = await shot(page, `e2e-failure-${test.title}`);
          record('e2e', test.title, false, `${e.message}${f ? `\nscreenshot: ${path.relative(ROOT, f)}` : ''}`, Date.now() - s);
          if (consoleErrors.length)
            log(
              `  browser console errors (last 5):\n${consoleErrors
                .slice(-5)
                .map((l) => `      ${l}`)
                .join('\n')}`,
            );
        }
      }
    } finally {
      await browser.close();
      if (own) {
        if (broken) {
          try {
            fs.copyFileSync(own.logFile, path.join(ARTIFACTS, `code-server-${slug(file)}.log`));
          } catch {
            /* none */
          }
        }
        await own.stop();
      }
    }
  }
}

async function main() {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  try {
    setup();
  } catch (e) {
    record('setup', 'host tools are installed', false, e instanceof SetupError ? e.message : e.stack);
    return;
  }
  log(`tools ready (${hostPaths().dir})`);
  for (const f of ['dist/extension.js', 'dist/devsnap.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) log(`warning: ${f} is missing; run \`npm run build\` first`);
  }

  const fixture = require('./fixture');
  const { startServer } = require('./server');
  const browserApi = require('./browser');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-hosttest-'));
  let server;
  try {
    const demo = await fixture.prepareDemo(path.join(scratch, 'inhost'));
    log(`demo disk ${demo.disk}`);
    // The extension host inherits code-server's environment: tell the in-host suite where things are.
    const contextFile = path.join(scratch, 'context.json');
    const resultsFile = path.join(scratch, 'inhost-results.json');
    fs.writeFileSync(
      contextFile,
      JSON.stringify(
        {
          root: ROOT,
          workspace: demo.workspace,
          repo: demo.repo,
          disk: demo.disk,
          cli: path.join(ROOT, 'dist', 'devsnap.js'),
          node: process.execPath,
          scratch: path.join(scratch, 'inhost'),
          artifacts: ARTIFACTS,
        },
        null,
        2,
      ),
    );
    server = await startServer({
      workspace: demo.workspace,
      keepDir: keep,
      env: {
        DEVSNAP_HOST_CONTEXT: contextFile,
        DEVSNAP_HOST_RESULTS: resultsFile,
        DEVSNAP_HOST_TOOLS: hostPaths().toolsModules,
        ...(grep ? { DEVSNAP_HOST_GREP: grep } : {}),
      },
    });
    log(`code-server ${server.url} (pid ${server.pid}) is up`);

    if (!only || only === 'inhost') await runInHost({ server, browserApi, demo, scratch });
    if (!only || only === 'e2e') await runE2e({ server, browserApi, scratch, fixture });
  } catch (e) {
    record('harness', 'harness runs', false, e.stack || e.message);
  } finally {
    if (server) {
      if (results.some((r) => !r.ok)) {
        try {
          fs.copyFileSync(server.logFile, path.join(ARTIFACTS, 'code-server.log'));
        } catch {
          /* none */
        }
      }
      await server.stop();
      log(`code-server stopped`);
    }
    if (keep) log(`kept ${scratch}${server ? ` and ${server.dir}` : ''}`);
    else fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main()
  .catch((e) => record('harness', 'harness runs', false, e.stack || e.message))
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    fs.writeFileSync(path.join(ARTIFACTS, 'results.json'), JSON.stringify({ passed, failed, seconds: (Date.now() - t0) / 1000, results }, null, 2));
    log(`done; artifacts in ${path.relative(ROOT, ARTIFACTS)}/`);
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
