// The browser side of the harness: Debian's Chromium driven by playwright-core (both from the tools
// folder, see scripts/host-setup.js), workbench URLs with the `payload` parameter, and the in-host
// test runner (VS Code's smoke-test automation hooks codeAutomationLog / codeAutomationExit).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const util = require('util');
const { paths: hostPaths } = require('../../scripts/host-setup');

function playwright() {
  return require(path.join(hostPaths().toolsModules, 'playwright-core'));
}

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/**
 * Launches headless Chromium with a fresh profile. Returns { context, page, close() }.
 * @param {{ viewport?: {width:number,height:number}, headless?: boolean }} [opts]
 */
async function launchBrowser(opts = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-chromium-'));
  let context;
  try {
    context = await playwright().chromium.launchPersistentContext(profile, {
      executablePath: hostPaths().chromium,
      headless: opts.headless !== false,
      viewport: opts.viewport || { width: 1400, height: 900 },
      args: CHROMIUM_ARGS,
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] || (await context.newPage());
  let closed = false;
  return {
    context,
    page,
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * The workbench URL for `server` opening `folder`, with an optional payload:
 * extensionDevelopmentPath loads the extension from source; extensionTestsPath runs a test module
 * (exporting run()) in the extension host instead of a normal session. The authority in the
 * vscode-remote:// URIs must be exactly the host:port the browser uses.
 * @param {{url:string}} server
 * @param {{ folder: string, extensionDevelopmentPath?: string, extensionTestsPath?: string }} opts
 */
function workbenchUrl(server, opts) {
  const authority = new URL(server.url).host;
  const remote = (p) => `vscode-remote://${authority}${path.resolve(p)}`;
  const payload = [];
  if (opts.extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remote(opts.extensionDevelopmentPath)]);
  if (opts.extensionTestsPath) payload.push(['extensionTestsPath', remote(opts.extensionTestsPath)]);
  let url = `${server.url}/?folder=${encodeURIComponent(path.resolve(opts.folder))}`;
  if (payload.length) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return url;
}

/**
 * Opens the workbench with extensionTestsPath set and waits for the extension host to finish
 * running the tests. Resolves { exitCode, output, timedOut }. Output lines are passed to onLog.
 * @param {import('playwright-core').Page} page
 * @param {string} url  from workbenchUrl(..., { extensionTestsPath })
 * @param {{ timeoutMs?: number, onLog?: (line: string) => void }} [opts]
 */
async function runInHostTests(page, url, opts = {}) {
  const lines = [];
  const onLog = opts.onLog || (() => {});
  let finish;
  const exited = new Promise((resolve) => (finish = resolve));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const line = util.format(...(Array.isArray(args) ? args : [args]));
    lines.push(line);
    onLog(line, type);
  });
  await page.exposeFunction('codeAutomationExit', (code) => finish(code));
  await page.goto(url);
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), opts.timeoutMs || 180000)));
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  return { exitCode: result === 'timeout' ? null : result, timedOut: result === 'timeout', output: lines.join('\n') };
}

module.exports = { launchBrowser, workbenchUrl, runInHostTests, playwright, CHROMIUM_ARGS };
