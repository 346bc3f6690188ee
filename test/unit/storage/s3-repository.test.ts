// A repository in a bucket on a real Ceph radosgw (issue 13), through the CLI as a user runs it:
// `--repo s3:http://host:port/bucket/prefix`, credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
// The first snapshot of the demo disk creates the bucket; the snapshot restores byte-identically,
// verifies and checks; an incremental, forget and prune work there as in a folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, sh, tmpDir, writeAt } from '../../helpers/disks';
import { CLI_ARGS, CLI_ENV, devsnap, devsnapChild } from '../../helpers/cli';
import { Ceph, cephSkip, startCeph } from '../../helpers/ceph';
import { S3Storage } from '../../../imaging/storage/s3';

after(cleanup);
const ROOT = path.join(__dirname, '..', '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { makeDemoDisk } = require(path.join(ROOT, 'test', 'host', 'fixture.js'));

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A disk image of `mib` MiB of random bytes (incompressible: a snapshot long enough to be interrupted). */
function randomDisk(file: string, mib: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let i = 0; i < mib; i += 16) fs.writeSync(fd, crypto.randomBytes(16 << 20), 0, 16 << 20, i << 20);
  } finally {
    fs.closeSync(fd);
  }
}

/** The CLI as it runs on workstation `host` (a UTS namespace with that host name); resolves with its exit and output. */
function onHost(host: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn('unshare', ['--uts', 'sh', '-c', `hostname ${host} && exec "$0" "$@"`, process.execPath, ...CLI_ARGS, ...args], {
    env: { ...process.env, ...CLI_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Waits until the child has been running `ms`, or ended. */
const runFor = (exited: Promise<unknown>, ms: number) => Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);

describe('a repository in a bucket on Ceph radosgw', { skip: cephSkip }, () => {
  let ceph: Ceph;
  let dir = '';
  let disk = '';
  before(
    async () => {
      // 4 OSDs, 3 copies (2 needed for I/O), so that one can be killed and the others carry on.
      ceph = await startCeph(4);
      dir = tmpDir('devsnap-s3repo-');
      disk = await makeDemoDisk(path.join(dir, 'disk.img'));
    },
    { timeout: 700_000 },
  );
  after(() => ceph?.stop());

  const cli = (args: string[], env: Record<string, string> = {}) => devsnap(args, { ...ceph.env, ...env }, 600_000);

  test('the demo disk into a new bucket: restored byte-identically, verified, checked; an incremental, forget and prune', { timeout: 900_000 }, async () => {
    const repo = `s3:${ceph.endpoint}/team-snapshots/workstations`;
    const first = cli(['snapshot', disk, '--repo', repo, '--label', 'before', '--json']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /Created the bucket/);

    const l = cli(['list', '--repo', repo, '--json']);
    assert.equal(l.status, 0, l.stderr);
    assert.deepEqual(
      l.json.snapshots.map((s: { label: string }) => s.label),
      ['before'],
    );
    assert.ok(l.json.snapshots[0].host, 'the snapshot names its host');

    const target = path.join(dir, 'restored.img');
    fs.writeFileSync(target, '');
    fs.truncateSync(target, fs.statSync(disk).size);
    const r = cli(['restore', 'latest', target, '--repo', repo, '--yes']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha256(target), sha256(disk), 'the restored disk is byte-identical');
    const v = cli(['verify', 'latest', '--repo', repo]);
    assert.equal(v.status, 0, v.stderr);

    // What a team's bucket holds: no temporary names, the same object names as in a folder.
    const s3 = new S3Storage(repo, { credentials: ceph.credentials });
    try {
      const names: string[] = [];
      for await (const o of s3.list('')) names.push(o.name);
      assert.ok(names.includes('config.json'));
      assert.ok(names.some((n) => /^data\/[0-9a-f]{2}\/[0-9a-f]{32}\.pack$/.test(n)));
      assert.ok(names.some((n) => /^index\/[0-9a-f]{32}\.idx$/.test(n)));
      assert.ok(names.some((n) => /^snapshots\/[0-9a-f]{16}\.json$/.test(n)));
      assert.ok(names.some((n) => /^snapshots\/[0-9a-f]{16}\.summary$/.test(n)));
      assert.ok(!names.some((n) => n.startsWith('locks/')), `no lock is left: ${names.filter((n) => n.startsWith('locks/'))}`);
    } finally {
      s3.close();
    }

    // An incremental after a change in the root filesystem's data area, then forget and prune.
    writeAt(disk, 200 << 20, crypto.randomBytes(1 << 20));
    const second = cli(['snapshot', disk, '--repo', repo, '--label', 'after', '--json']);
    assert.equal(second.status, 0, second.stderr);
    const c = cli(['check', '--repo', repo, '--json']);
    assert.equal(c.status, 0, JSON.stringify(c.json));
    assert.equal(c.json.snapshots, 2);
    assert.equal(cli(['forget', 'label:before', '--repo', repo]).status, 0);
    const p = cli(['prune', '--repo', repo]);
    assert.equal(p.status, 0, p.stderr);
    const c2 = cli(['check', '--repo', repo, '--json']);
    assert.equal(c2.status, 0, JSON.stringify(c2.json));
    assert.equal(c2.json.snapshots, 1);
    const target2 = path.join(dir, 'restored2.img');
    fs.writeFileSync(target2, '');
    fs.truncateSync(target2, fs.statSync(disk).size);
    assert.equal(cli(['restore', 'latest', target2, '--repo', repo, '--yes']).status, 0);
    assert.equal(sha256(target2), sha256(disk), 'after prune, the newer snapshot still restores byte-identically');
  });

  test('an encrypted repository in a bucket; wrong keys are refused by name, with what to check', { timeout: 300_000 }, async () => {
    const repo = `s3:${ceph.endpoint}/team-snapshots/encrypted`;
    const pw = { DEVSNAP_PASSWORD: 'correct horse battery staple' };
    const init = cli(['init', '--repo', repo, '--encrypt'], pw);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(cli(['snapshot', disk, '--repo', repo], pw).status, 0);
    const wrongPw = cli(['list', '--repo', repo], { DEVSNAP_PASSWORD: 'wrong' });
    assert.equal(wrongPw.status, 3, wrongPw.stderr);
    const denied = cli(['list', '--repo', repo], { ...pw, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    assert.equal(denied.status, 6, denied.stderr);
    assert.match(denied.stderr, /AWS_ACCESS_KEY_ID/);
    assert.doesNotMatch(denied.stderr, /not-the-secret/, 'a secret never appears in messages');
    const v = cli(['verify', 'latest', '--repo', repo], pw);
    assert.equal(v.status, 0, v.stderr);
  });

  test('an OSD killed during a snapshot and during a restore: each completes or fails cleanly; nothing is lost; verify passes', { timeout: 900_000 }, async (t) => {
    const repo = `s3:${ceph.endpoint}/faults/repo`;
    Object.assign(process.env, ceph.env); // for devsnapChild
    const big = path.join(dir, 'big.img');
    randomDisk(big, 512);
    assert.equal(cli(['snapshot', big, '--repo', repo, '--label', 'before']).status, 0);
    const before = sha256(big);
    writeAt(big, 64 << 20, crypto.randomBytes(256 << 20));
    const after = sha256(big);

    const cephCmd = (...args: string[]) => sh('ceph', ['-c', ceph.conf, '--connect-timeout', '30', ...args]).stdout;
    const killOsd = (id: number) => {
      const pid = Number(fs.readFileSync(path.join(ceph.dir, 'run', `osd.${id}.pid`), 'utf8'));
      process.kill(pid, 'SIGKILL');
      // Down and out at once, instead of after the heartbeat grace: its copies are made again elsewhere.
      for (const what of ['down', 'out']) cephCmd('osd', what, String(id));
      t.diagnostic(`osd.${id} (pid ${pid}) killed`);
    };
    /** An interrupted operation ends with success or a clean, named failure (no crash, no stack trace). */
    const cleanEnd = (r: { code: number | null; signal: string | null; stderr: string }, what: string) => {
      t.diagnostic(`${what}: exit ${r.code}${r.code ? `: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` : ''}`);
      assert.equal(r.signal, null, `${what} was killed by ${r.signal}`);
      assert.ok(r.code === 0 || (r.code !== null && r.code > 1), `${what} crashed (exit ${r.code}): ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at |Unexpected error/, `${what}: ${r.stderr}`);
    };

    // A snapshot with an OSD killed 2 s in.
    const snap = devsnapChild(['snapshot', big, '--repo', repo, '--label', 'during-fault']);
    await runFor(snap.exited, 2000);
    killOsd(3);
    const s1 = await snap.exited;
    cleanEnd(s1, 'the snapshot');
    const c = cli(['check', '--repo', repo, '--json']);
    assert.equal(c.status, 0, JSON.stringify(c.json));
    const v = cli(['verify', '--repo', repo]);
    assert.equal(v.status, 0, v.stderr);
    const labels = cli(['list', '--repo', repo, '--json']).json.snapshots.map((x: { label: string }) => x.label);
    assert.deepEqual(labels, s1.code === 0 ? ['before', 'during-fault'] : ['before'], 'a failed snapshot leaves no snapshot; the earlier one is intact');
    const expected = s1.code === 0 ? after : before;

    // The killed OSD started again (its memstore reloaded, stale: it catches up by itself), then
    // killed again 2 s into a restore: the copies on the others are those the snapshot phase used.
    // (This cluster has no manager daemon to report placement-group health, so the test waits for
    // nothing but the OSD map.)
    sh('ceph-osd', ['-c', ceph.conf, '-i', '3']);
    cephCmd('osd', 'in', '3');
    for (let i = 0; i < 120 && !JSON.parse(cephCmd('osd', 'dump', '--format', 'json')).osds.some((o: { osd: number; up: number }) => o.osd === 3 && o.up === 1); i++) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    const target = path.join(dir, 'fault-restored.img');
    fs.writeFileSync(target, '');
    fs.truncateSync(target, fs.statSync(big).size);
    const rest = devsnapChild(['restore', 'latest', target, '--repo', repo, '--yes']);
    await runFor(rest.exited, 2000);
    killOsd(3);
    const r1 = await rest.exited;
    cleanEnd(r1, 'the restore');
    if (r1.code !== 0) assert.equal(cli(['restore', 'latest', target, '--repo', repo, '--yes']).status, 0, 'the restore run again completes');
    assert.equal(sha256(target), expected, 'the restored disk equals the snapshot');
    assert.equal(cli(['verify', '--repo', repo]).status, 0);
  });

  test('two workstations snapshot into one bucket at once, a prune waits for them; check passes, each restores its own disk', { timeout: 900_000 }, async () => {
    const repo = `s3:${ceph.endpoint}/team-snapshots/two-hosts`;
    // Two disks that share half their bytes at the same places (an OS installed from one image).
    const [a, b] = [path.join(dir, 'ws-a.img'), path.join(dir, 'ws-b.img')];
    randomDisk(a, 192);
    fs.copyFileSync(a, b);
    writeAt(b, 96 << 20, crypto.randomBytes(96 << 20));
    const times = (r: { stdout: string }) => {
      const m = JSON.parse(r.stdout).snapshot;
      const start = Date.parse(m.created);
      return { start, end: start + m.stats.durationSeconds * 1000 };
    };
    const [ra, rb] = await Promise.all([onHost('ws-a', ['snapshot', a, '--repo', repo, '--json'], ceph.env), onHost('ws-b', ['snapshot', b, '--repo', repo, '--json'], ceph.env)]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    const [ta, tb] = [times(ra), times(rb)];
    assert.ok(ta.start < tb.end && tb.start < ta.end, `the two snapshots ran at the same time (shared lock): ${JSON.stringify({ ta, tb })}`);

    // A second snapshot on ws-a while ws-b forgets all but its newest and prunes (exclusive: it waits).
    writeAt(a, 0, crypto.randomBytes(8 << 20));
    const second = onHost('ws-a', ['snapshot', a, '--repo', repo, '--json'], ceph.env);
    await new Promise((r) => setTimeout(r, 1000));
    const prune = onHost('ws-b', ['forget', '--keep-last', '1', '--prune', '--repo', repo, '--lock-wait', '600'], ceph.env);
    const [r2, rp] = await Promise.all([second, prune]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(rp.code, 0, rp.stderr);
    const c = cli(['check', '--repo', repo, '--json']);
    assert.equal(c.status, 0, JSON.stringify(c.json));
    assert.equal(cli(['verify', '--repo', repo]).status, 0);
    const listed = cli(['list', '--repo', repo, '--json'])
      .json.snapshots.map((x: { host: string }) => x.host)
      .sort();
    assert.deepEqual(listed, ['ws-a', 'ws-b'], 'retention per host: each keeps its newest');
    for (const [host, disk] of [
      ['ws-a', a],
      ['ws-b', b],
    ]) {
      const list = cli(['list', '--repo', repo, '--json']).json.snapshots;
      const id = list.find((x: { host: string }) => x.host === host).id;
      const target = path.join(dir, `${host}-restored.img`);
      fs.writeFileSync(target, '');
      fs.truncateSync(target, fs.statSync(disk).size);
      assert.equal(cli(['restore', id, target, '--repo', repo, '--yes']).status, 0);
      assert.equal(sha256(target), sha256(disk), `${host}'s disk restores byte-identically`);
    }
  });
});
