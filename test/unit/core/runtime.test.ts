// The engine's runtime settings (imaging/runtime.ts): started bare (`node cli.js`, a user at a
// terminal), the CLI runs itself again once with them; what the user sees is the same (output, exit
// status), a SIGTERM to it reaches the engine, and the engine stops at a safe point when the process
// that started it is killed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CLI, devsnap } from '../../helpers/cli';
import { cleanup, tmpDir } from '../../helpers/disks';

after(cleanup);
const bare = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DEVSNAP_TUNED: '' } });

test("bare, the CLI relaunches itself with the settings, once; output and exit status are the engine's", () => {
  const dir = tmpDir('devsnap-runtime-');
  const trace = path.join(dir, 'execve.txt');
  const r = spawnSync('strace', ['-f', '-qq', '-s', '1000', '-e', 'trace=execve', '-o', trace, process.execPath, CLI, 'list', '--repo', path.join(dir, 'none'), '--json'], {
    encoding: 'utf8',
    env: { ...process.env, DEVSNAP_TUNED: '' },
  });
  const execs = fs
    .readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => l.includes('execve(') && l.includes(CLI));
  assert.equal(execs.length, 2, execs.join('\n'));
  assert.match(execs[1], /"--max-semi-space-size=1"/);
  const tuned = devsnap(['list', '--repo', path.join(dir, 'none'), '--json']);
  assert.equal(r.status, tuned.status);
  assert.notEqual(r.status, 0);
  assert.deepEqual(JSON.parse(r.stdout), tuned.json);
  assert.equal(bare(['--version']).stdout, devsnap(['--version']).stdout);
});

/** A snapshot that runs for a while: 400 MiB of random bytes (they do not compress). */
function bigSource(dir: string): string {
  const file = path.join(dir, 'src.img');
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < 400; i++) fs.writeSync(fd, crypto.randomBytes(1 << 20));
  fs.closeSync(fd);
  return file;
}

for (const how of ['SIGTERM to it', 'kill -9 of it'] as const) {
  test(`bare, ${how}: the engine stops at a safe point and the repository keeps nothing of the snapshot`, async () => {
    const dir = tmpDir('devsnap-runtime-');
    const repo = path.join(dir, 'repo');
    assert.equal(devsnap(['init', '--repo', repo]).status, 0);
    const src = bigSource(dir);
    const child = spawn(process.execPath, [CLI, 'snapshot', src, '--repo', repo, '--progress', 'json'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEVSNAP_TUNED: '' } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    while (!stderr.includes('"type":"progress"') && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    const engine = Number(spawnSync('pgrep', ['-P', String(child.pid), '-f', 'cli.js'], { encoding: 'utf8' }).stdout.trim());
    assert.ok(engine > 0, 'the relaunched engine runs under the launcher');
    child.kill(how === 'SIGTERM to it' ? 'SIGTERM' : 'SIGKILL');
    // The engine goes away by itself, at a safe point, within a few seconds.
    const t0 = Date.now();
    const alive = () => {
      try {
        process.kill(engine, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive() && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!alive(), 'the engine stopped');
    if (how === 'SIGTERM to it') assert.match(stderr, /stopping at a safe point/);
    assert.equal(devsnap(['list', '--repo', repo, '--json']).json.snapshots.length, 0, 'no snapshot was committed');
    const check = devsnap(['check', '--repo', repo, '--json']);
    assert.equal(check.status, 0, check.stderr);
  });
}
