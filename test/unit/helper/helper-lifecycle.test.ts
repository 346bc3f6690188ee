// Lifecycle of the elevated helper through the extension's real client (HelperEngine, launched
// 'direct' since the tests run as root): snapshot / verify / restore on loop devices with progress,
// the client killed mid-snapshot (the helper exits, the repository stays consistent), the helper
// killed mid-snapshot (a clear error with its last words, then a new helper works), cancel, idle exit.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EngineError } from '../../../extension/engine';
import { Token } from '../../helpers/token';
import { HelperEngine, HelperEngineOptions } from '../../../extension/helperClient';
import type { ProgressEvent, SnapshotSummary } from '../../../imaging/protocol';
import type { CliResult } from '../../helpers/cli';
import { cleanup, isRoot, makeDisk, tmpDir, withLoop } from '../../helpers/disks';
import { CLI } from './helper-harness';

after(cleanup);
const skip = isRoot ? false : 'needs root (loop devices, the helper runs as root)';
const MiB = 1 << 20;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function devsnapJson(args: string[]): { status: number | null; json: CliResult['json']; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8', env: { ...process.env, DEVSNAP_TUNED: '1' } }); // no relaunch: settings do not matter here
  return { status: r.status, json: JSON.parse(r.stdout), stderr: r.stderr };
}

describe('helper lifecycle', { skip }, () => {
  let work: string;
  let repo: string;
  let slowSource: string; // random bytes compressed at level 19: several seconds of work
  const logs: string[] = [];
  const opts = (extra: Partial<HelperEngineOptions> = {}): HelperEngineOptions => ({
    cliPath: CLI,
    nodePath: process.execPath,
    method: 'direct',
    log: (l) => logs.push(l),
    idleTimeoutSeconds: 60,
    ...extra,
  });

  before(() => {
    work = tmpDir('devsnap-helperlife-');
    repo = path.join(work, 'repo');
    slowSource = path.join(work, 'random.img');
    const fd = fs.openSync(slowSource, 'w');
    for (let i = 0; i < 48; i++) fs.writeSync(fd, crypto.randomBytes(MiB));
    fs.closeSync(fd);
  });

  it('takes, verifies and restores a snapshot of a loop device through the helper, with progress events', async () => {
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc/hostname'), 'helper-test\n');
    fs.writeFileSync(path.join(tree, 'data.bin'), crypto.randomBytes(3 * MiB));
    const src = path.join(work, 'src.img');
    await makeDisk(src, {
      table: 'gpt',
      size: 40 * MiB,
      partitions: [
        { size: 8 * MiB, fs: 'vfat', label: 'EFI' },
        { fs: 'ext4', label: 'root', fromDir: tree },
      ],
    });
    const dst = path.join(work, 'dst.img');
    fs.writeFileSync(dst, '');
    fs.truncateSync(dst, 40 * MiB);
    const engine = new HelperEngine(opts());
    try {
      await withLoop(src, {}, (srcDev) =>
        withLoop(dst, {}, async (dstDev) => {
          const snapEvents: ProgressEvent[] = [];
          const snap = await engine.snapshot({ repo, source: srcDev, label: 'via helper' }, (e) => snapEvents.push(e));
          assert.equal(snap.snapshot.label, 'via helper');
          assert.equal(snap.snapshot.source.path, srcDev);
          assert.ok(
            snapEvents.some((e) => e.phase === 'image' && e.bytesDone > 0),
            JSON.stringify(snapEvents),
          );
          const last = snapEvents[snapEvents.length - 1];
          assert.equal(last.bytesDone, last.bytesTotal);

          const verifyEvents: ProgressEvent[] = [];
          const v = await engine.verify({ repo, id: snap.id }, (e) => verifyEvents.push(e));
          assert.equal(v.ok, true);
          assert.ok(verifyEvents.some((e) => e.phase === 'verify'));

          const restoreEvents: ProgressEvent[] = [];
          const r = await engine.restore({ repo, id: snap.id, target: dstDev }, (e) => restoreEvents.push(e));
          assert.equal(r.ok, true);
          assert.ok(r.bytesWritten > 0);
          assert.ok(restoreEvents.some((e) => e.phase === 'restore' && e.bytesDone > 0));
          assert.equal((await engine.listSnapshots(repo)).length, 1);
          assert.equal(engine.starts, 1, 'the helper was not reused');
        }),
      );
      assert.ok(fs.readFileSync(src).equals(fs.readFileSync(dst)), 'the restored disk differs from the source');
    } finally {
      await engine.dispose();
    }
    assert.ok(logs.some((l) => /connected and authenticated/.test(l)));
  });

  it('a killed client: the helper cancels at a safe point and exits; the repository checks clean', async () => {
    const client = path.join(work, 'client.js');
    fs.writeFileSync(
      client,
      `
      const { HelperEngine } = require(${JSON.stringify(path.join(__dirname, '..', '..', '..', 'extension', 'helperClient.js'))});
      const e = new HelperEngine({ cliPath: ${JSON.stringify(CLI)}, nodePath: process.execPath, method: 'direct' });
      let said = false;
      e.snapshot({ repo: ${JSON.stringify(repo)}, source: ${JSON.stringify(slowSource)}, label: 'client killed', compressionLevel: 19 }, (ev) => {
        if (!said && ev.bytesDone > 0) { said = true; console.log(JSON.stringify({ helperPid: e.helperPid })); }
      }).then(() => console.log('DONE'), (err) => console.log('ERR ' + err.message));
    `,
    );
    const child = spawn(process.execPath, [client], { stdio: ['ignore', 'pipe', 'inherit'] });
    const helperPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /\{"helperPid":(\d+)\}/.exec(out);
        if (m) resolve(Number(m[1]));
        else if (/DONE|ERR/.test(out)) reject(new Error(`the client finished before it was killed: ${out}`));
      });
      setTimeout(() => reject(new Error(`no progress from the client: ${out}`)), 30000);
    });
    assert.ok(alive(helperPid));
    child.kill('SIGKILL');
    const t0 = Date.now();
    while (alive(helperPid) && Date.now() - t0 < 10000) await sleep(50);
    assert.equal(alive(helperPid), false, 'the helper outlived its client by 10 s');
    const check = devsnapJson(['check', '--repo', repo]);
    assert.equal(check.status, 0, JSON.stringify(check.json));
    assert.equal(check.json.ok, true);
    assert.ok(!devsnapJson(['list', '--repo', repo]).json.snapshots.some((s: SnapshotSummary) => s.label === 'client killed'));
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), [], 'a lock was left behind');
  });

  it('a killed helper: the request fails with its last words, and the next snapshot starts a new helper', async () => {
    const crashes: EngineError[] = [];
    const engine = new HelperEngine(opts({ onCrash: (e) => crashes.push(e) }));
    try {
      let killedPid = 0;
      const p = engine.snapshot({ repo, source: slowSource, label: 'helper killed', compressionLevel: 19 }, (ev) => {
        if (!killedPid && ev.bytesDone > 0 && engine.helperPid) {
          killedPid = engine.helperPid;
          process.kill(killedPid, 'SIGKILL');
        }
      });
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof EngineError, String(e));
        assert.equal(e.code, 'INTERNAL');
        assert.match(e.message, /helper stopped unexpectedly \(killed by SIGKILL\)/);
        assert.match(e.hint ?? '', /Its last messages: .*request p\d+: snapshot/);
        return true;
      });
      assert.ok(killedPid > 0);
      assert.equal(crashes.length, 1);
      const small = path.join(work, 'small.img');
      fs.writeFileSync(small, crypto.randomBytes(2 * MiB));
      const snap = await engine.snapshot({ repo, source: small, label: 'after the crash' });
      assert.equal(snap.snapshot.label, 'after the crash');
      assert.equal(engine.starts, 2);
      assert.notEqual(engine.helperPid, killedPid);
      const check = devsnapJson(['check', '--repo', repo]);
      assert.equal(check.json.ok, true, JSON.stringify(check.json));
    } finally {
      await engine.dispose();
    }
  });

  it('cancel stops a snapshot at a safe point and leaves the repository as it was', async () => {
    const engine = new HelperEngine(opts());
    try {
      const before = devsnapJson(['list', '--repo', repo]).json.snapshots.length;
      const token = new Token();
      const p = engine.snapshot(
        { repo, source: slowSource, label: 'cancelled', compressionLevel: 19 },
        (ev) => {
          if (ev.bytesDone > 0) token.cancel();
        },
        token,
      );
      await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.cancelled);
      assert.equal(devsnapJson(['list', '--repo', repo]).json.snapshots.length, before);
      // The same helper goes on serving.
      assert.equal((await engine.listSnapshots(repo)).length, before);
      assert.equal(engine.starts, 1);
    } finally {
      await engine.dispose();
    }
  });

  it('exits after its idle time; the next request starts a new helper (no crash reported)', async () => {
    const crashes: EngineError[] = [];
    const engine = new HelperEngine(opts({ idleTimeoutSeconds: 1, onCrash: (e) => crashes.push(e) }));
    try {
      await engine.listSnapshots(repo);
      const pid = engine.helperPid!;
      const t0 = Date.now();
      while (alive(pid) && Date.now() - t0 < 8000) await sleep(100);
      assert.equal(alive(pid), false, 'the idle helper did not exit');
      await sleep(200);
      assert.equal(engine.helperPid, undefined);
      await engine.listSnapshots(repo);
      assert.equal(engine.starts, 2);
      assert.deepEqual(crashes, []);
    } finally {
      await engine.dispose();
    }
  });
});
