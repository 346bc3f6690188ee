// Mocha runner inside the VS Code extension host (the module named by `extensionTestsPath`).
// VS Code calls run(); resolving passes, rejecting fails (the host reports it via codeAutomationExit).
// Mocha is not a project dependency: it lives in the host tools folder (scripts/host-setup.js), which
// the extension host's require paths don't include, so it is loaded by absolute path.
// Environment (set by test/host/run.js on the code-server process, inherited by the extension host):
//   DEVSNAP_HOST_TOOLS    the tools' node_modules (default: <repo>/.cache/host/tools/node_modules)
//   DEVSNAP_HOST_RESULTS  a JSON file to write { passed, failed, tests: [...] } to
//   DEVSNAP_HOST_GREP     run only tests whose full title matches
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from './context';

interface TestResult {
  title: string;
  state: 'passed' | 'failed' | 'skipped';
  durationMs?: number;
  error?: string;
}

// The part of Mocha's API this runner uses (no @types/mocha: mocha is not a project dependency).
interface MochaTest {
  fullTitle(): string;
  duration?: number;
}
interface MochaRunner {
  on(event: 'pass' | 'pending', fn: (t: MochaTest) => void): MochaRunner;
  on(event: 'fail', fn: (t: MochaTest, err: Error) => void): MochaRunner;
}
interface MochaInstance {
  grep(pattern: string): unknown;
  addFile(file: string): unknown;
  run(done: (failures: number) => void): MochaRunner;
}
type MochaClass = new (opts: { ui: string; timeout: number; color: boolean; reporter: string }) => MochaInstance;

function loadMocha(): MochaClass {
  const tools = process.env.DEVSNAP_HOST_TOOLS || path.join(process.env.DEVSNAP_HOST_CACHE || path.join(repoRoot(), '.cache', 'host'), 'tools', 'node_modules');
  const file = path.join(tools, 'mocha');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded synchronously from a path known only at run time (the tools folder)
    return require(file);
  } catch (e) {
    throw new Error(`mocha not found at ${file} (run node scripts/host-setup.js): ${(e as Error).message}`);
  }
}

export function run(): Promise<void> {
  const Mocha = loadMocha();
  const mocha = new Mocha({ ui: 'bdd', timeout: 60000, color: false, reporter: 'spec' });
  if (process.env.DEVSNAP_HOST_GREP) mocha.grep(process.env.DEVSNAP_HOST_GREP);
  for (const f of fs
    .readdirSync(__dirname)
    .filter((n) => n.endsWith('.test.js'))
    .sort())
    mocha.addFile(path.join(__dirname, f));

  const results: TestResult[] = [];
  return new Promise((resolve, reject) => {
    let runner: MochaRunner;
    try {
      runner = mocha.run((failures: number) => {
        const passed = results.filter((r) => r.state === 'passed').length;
        const failed = results.filter((r) => r.state === 'failed').length;
        if (process.env.DEVSNAP_HOST_RESULTS) {
          fs.writeFileSync(process.env.DEVSNAP_HOST_RESULTS, JSON.stringify({ passed, failed, tests: results }, null, 2));
        }
        console.log(`${passed} passed, ${failed} failed`);
        if (failures > 0 || failed > 0) reject(new Error(`${failed || failures} in-host test(s) failed`));
        else resolve();
      });
    } catch (e) {
      // A test file that throws while loading.
      results.push({ title: 'loading the in-host test files', state: 'failed', error: String((e as Error).stack || e) });
      if (process.env.DEVSNAP_HOST_RESULTS) {
        fs.writeFileSync(process.env.DEVSNAP_HOST_RESULTS, JSON.stringify({ passed: 0, failed: 1, tests: results }, null, 2));
      }
      console.log('0 passed, 1 failed');
      reject(e);
      return;
    }
    runner.on('pass', (t) => results.push({ title: t.fullTitle(), state: 'passed', durationMs: t.duration }));
    runner.on('pending', (t) => results.push({ title: t.fullTitle(), state: 'skipped' }));
    runner.on('fail', (t, err) => results.push({ title: t.fullTitle(), state: 'failed', error: String((err && (err.stack || err.message)) || err) }));
  });
}
