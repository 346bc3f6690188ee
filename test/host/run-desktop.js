#!/usr/bin/env node
// The same in-host suite as test/host/run.js, in VS Code desktop through @vscode/test-electron
// (`npm run test:desktop`), for developers whose machine can download VS Code. CI uses run.js
// (code-server), because this machine cannot download VS Code or Electron.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { runTests } = require('@vscode/test-electron');
const { setup, paths: hostPaths } = require('../../scripts/host-setup');
const { prepareDemo } = require('./fixture');

const ROOT = path.join(__dirname, '..', '..');

async function main() {
  setup(); // mocha lives in the host tools folder, as for run.js
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-desktoptest-'));
  try {
    const demo = await prepareDemo(path.join(scratch, 'inhost'));
    const contextFile = path.join(scratch, 'context.json');
    fs.writeFileSync(
      contextFile,
      JSON.stringify({
        root: ROOT,
        workspace: demo.workspace,
        repo: demo.repo,
        disk: demo.disk,
        cli: path.join(ROOT, 'dist', 'devsnap.js'),
        node: process.execPath,
        scratch: path.join(scratch, 'inhost'),
        artifacts: path.join(ROOT, '.test-artifacts', 'desktop'),
      }),
    );
    await runTests({
      extensionDevelopmentPath: ROOT,
      extensionTestsPath: path.join(ROOT, 'out', 'test', 'host', 'suite', 'index.js'),
      launchArgs: [demo.workspace, '--disable-extensions', '--disable-workspace-trust'],
      extensionTestsEnv: { DEVSNAP_HOST_CONTEXT: contextFile, DEVSNAP_HOST_TOOLS: hostPaths().toolsModules },
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`test:desktop failed: ${e.message || e}`);
  process.exit(1);
});
