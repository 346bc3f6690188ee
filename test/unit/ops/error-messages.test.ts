// Bad paths on the command line get devsnap's own messages, never Node internals ("Unexpected
// error: …", "ENOTDIR: not a directory, open …", ERR_… codes) nor exit code 1 (INTERNAL): a target
// or repository reached through a file, a folder given as an archive or password file, a loop of
// symbolic links, a path too long for the system.
import { test, after } from 'node:test';
import { spawn, spawnSync } from 'child_process';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, makeDisk, tmpDir } from '../../helpers/disks';
import { CLI_ARGS, CLI_ENV, devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;

test('bad paths: devsnap messages, documented exit codes', async () => {
  const dir = tmpDir('devsnap-messages-');
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, { table: 'gpt', size: 4 * MiB, partitions: [{ fs: 'none' }] });
  const repo = path.join(dir, 'repo');
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  const id = snap.json.id as string;
  const loop = path.join(dir, 'loop');
  fs.symlinkSync(loop, loop);
  const cases: [string[], number, RegExp][] = [
    [['restore', id, path.join(disk, 'x.img'), '--repo', repo], 5, /a part of its path is a file, not a folder/],
    [['list', '--repo', path.join(disk, 'repo')], 5, /a part of its path is a file, not a folder/],
    [['import', dir, '--repo', repo], 7, /is a folder, not an archive/],
    [['import', loop, '--repo', repo], 2, /symbolic link .* or a loop of links/],
    [['list', '--repo', repo, '--password-file', dir], 2, /the password file .* is a folder, not a file/],
    [['import', path.join(dir, 'x'.repeat(300)), '--repo', repo], 2, /is too long/],
    // Under /proc, Node's recursive mkdir never returns: refused before it is tried.
    [['snapshot', disk, '--repo', '/proc/devsnap-repo'], 2, /Cannot create a repository in \/proc\/devsnap-repo: \/proc holds kernel interfaces/],
  ];
  for (const [args, status, expected] of cases) {
    const r = devsnap([...args, '--json']);
    const what = args.join(' ');
    assert.equal(r.status, status, `${what}: ${r.stderr}`);
    const e = r.json?.error;
    assert.ok(e, `${what}: a JSON error: ${r.stdout}`);
    assert.match(e.message, expected, what);
    assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /Unexpected error|ERR_[A-Z_]+|\bE[A-Z]{3,}: |\bat .*\.js:\d+/, `${what}: no Node internals`);
    assert.ok(!r.stderr.includes('    at '), `${what}: no stack trace`);
  }
});

test('labels with terminal escape sequences are shown escaped, never sent raw to the terminal', async () => {
  const dir = tmpDir('devsnap-messages-');
  // A path and a label that would fake a table row and reverse what the terminal shows.
  const disk = path.join(dir, 'disk\nFAKE-PATH\u202egmi.img');
  fs.writeFileSync(disk, Buffer.alloc(MiB, 1));
  const repo = path.join(dir, 'repo');
  const evil = 'evil\u001b[2J\u001b]0;owned\u0007\nFAKE-ROW\tx\u2066y\u200f';
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--label', evil]);
  assert.equal(snap.status, 0, snap.stderr);
  // eslint-disable-next-line no-control-regex -- the test looks for the terminal control characters the label smuggled in
  const noRaw = /[\u001b\u0007\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|^FAKE-|\t/m;
  assert.doesNotMatch(snap.stdout + snap.stderr, noRaw, "snapshot prints no control characters or new lines of the label's");
  for (const args of [['list'], ['show', 'latest'], ['show', 'nothing-like-this']]) {
    const r = devsnap([...args, '--repo', repo]);
    assert.doesNotMatch(r.stdout + r.stderr, noRaw, `${args.join(' ')} prints no control characters or new lines of the label's`);
  }
  const list = devsnap(['list', '--repo', repo]).stdout;
  assert.equal(list.trimEnd().split('\n').length, 2, `one header, one row: ${list}`);
  assert.match(list, /evil\\x1b\[2J\\x1b\]0;owned\\x07\\x0aFAKE-ROW\\x09x\\u2066y\\u200f/);
  assert.match(list, /disk\\x0aFAKE-PATH\\u202egmi\.img/);
  assert.equal(devsnap(['list', '--repo', repo, '--json']).json.snapshots[0].label, evil, 'JSON keeps the label as it is');
});

test('a refused repository folder is named as such, not as the source', { skip: process.geteuid?.() === 0 ? false : 'needs root (runs devsnap as nobody)' }, async () => {
  const dir = tmpDir('devsnap-messages-');
  fs.chmodSync(dir, 0o755);
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(MiB, 1), { mode: 0o644 });
  fs.mkdirSync(path.join(dir, 'r'));
  fs.chownSync(path.join(dir, 'r'), 65534, 65534);
  const repo = path.join(dir, 'r', 'repo');
  const asNobody = (args: string[]) => spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, ...CLI_ARGS, ...args, '--json'], { encoding: 'utf8', env: { ...process.env, ...CLI_ENV } });
  assert.equal(asNobody(['init', '--repo', repo]).status, 0);
  fs.chmodSync(path.join(repo, 'snapshots'), 0); // the owner (nobody) may no longer read it
  const r = asNobody(['snapshot', disk, '--repo', repo]);
  assert.equal(r.status, 6, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.message, `No permission to list snapshots in the folder ${repo} (EACCES): check the folder's owner and mode.`);
});

test('a reader that stops early (devsnap --help | head -1) ends devsnap quietly, without a stack trace', async () => {
  for (const args of [['--help'], ['list', '--repo', '/nonexistent/devsnap-repo']]) {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...CLI_ENV } });
    // The reading end is closed before the CLI has even started: each write to it fails with EPIPE.
    child.stdout.destroy();
    if (args[0] !== '--help') child.stderr.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 141, `${args.join(' ')}: ${stderr}`);
    assert.equal(stderr, '', args.join(' '));
  }
});
