// The engine service (`devsnap serve --stdio`) through the extension's client (EngineClient,
// ServedEngine) on real snapshots of real ext4/vfat disk images: every operation answers what the
// CLI answers for the same request (the CLI is the reference), results fit their schemas, errors
// keep their codes, progress and cancellation work, pages of a file comparison come from one walk,
// and a service that dies is started again on the next call.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, makeWorkstationTree, simulateUpgrade, tmpDir } from '../../helpers/disks';
import { CLI, devsnap } from '../../helpers/cli';
import { EngineClient } from '../../../extension/engineClient';
import { ServedEngine } from '../../../extension/servedEngine';
import { EngineError, EngineFacade } from '../../../extension/engine';
import { HelperEngine } from '../../../extension/helperClient';
import { check, OPS, ProgressEvent } from '../../../imaging/protocol';

after(cleanup);
const MiB = 1 << 20;
const work = tmpDir('devsnap-service-');
const repo = path.join(work, 'repo');
const logs: string[] = [];
const client = new EngineClient({ cliPath: CLI, log: (l) => logs.push(l) });
const engine = new ServedEngine(client);
let a = '';
let b = '';
const disk = path.join(work, 'b.img');

/** The CLI's --json answer (exit 0 or the codes that still carry a result). */
function cli(args: string[], ok = [0]) {
  const r = devsnap([...args, '--repo', repo, '--json']);
  assert.ok(ok.includes(r.status), `devsnap ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.json;
}

before(async () => {
  const tree = path.join(work, 'tree');
  makeWorkstationTree(tree, { scale: 2 * MiB });
  await makeDisk(path.join(work, 'a.img'), {
    table: 'gpt',
    size: 40 * MiB,
    partitions: [
      { size: 4 * MiB, fs: 'vfat' },
      { fs: 'ext4', fromDir: tree },
    ],
  });
  simulateUpgrade(tree, 0.2);
  await makeDisk(disk, {
    table: 'gpt',
    size: 40 * MiB,
    partitions: [
      { size: 4 * MiB, fs: 'vfat' },
      { fs: 'ext4', fromDir: tree },
    ],
  });
  a = cli(['snapshot', path.join(work, 'a.img'), '--label', 'before']).id;
  b = cli(['snapshot', disk, '--label', 'after']).id;
});
after(() => client.dispose());

describe('engine service (devsnap serve --stdio) against the CLI', () => {
  it('answers every read-only operation as the CLI does, each result fitting its schema', async () => {
    const same = (op: keyof typeof OPS, served: unknown, fromCli: unknown) => {
      const r = check(OPS[op].result, fromCli);
      assert.ok(r.ok, `the CLI's ${op} result fits the schema: ${!r.ok && r.problem}`);
      assert.deepEqual(served, r.ok && r.value, op);
    };
    same('listSnapshots', await engine.listRepository(repo), cli(['list']));
    same('show', { snapshot: await engine.showSnapshot(repo, b), warnings: [] }, { ...cli(['show', b]), warnings: [] });
    same('diff', await engine.diff(repo, a, b), cli(['diff', a, b]));
    same('inventory', await engine.inventory(repo, b), cli(['inventory', b]));
    same('listDir', await engine.listDir(repo, b, '/etc'), cli(['ls', b, '/etc']));
    same('changes', await engine.changes({ repo, a, b, limit: 50 }), cli(['changes', a, b, '--limit', '50']));
    same('verify', await engine.verify({ repo, id: b }), cli(['verify', b]));
    same('planSnapshot', await engine.planSnapshot(repo, disk), cli(['snapshot', disk, '--plan']));
    same('restore', await engine.restore({ repo, id: b, target: path.join(work, 'dry.img'), dryRun: true }), cli(['restore', b, path.join(work, 'dry.img'), '--dry-run']));
    const out = path.join(work, 'files-dry');
    fs.mkdirSync(out);
    same('restoreFiles', await engine.restoreFiles({ repo, id: b, paths: ['/etc'], to: out, dryRun: true }), cli(['restore-files', b, '/etc', '--to', out, '--dry-run']));
    const hostname = devsnap(['cat', b, '/etc/hostname', '--repo', repo]);
    assert.equal(hostname.status, 0, hostname.stderr);
    assert.equal((await engine.readFile(repo, b, '/etc/hostname')).toString(), hostname.stdout);
  });

  it('changes: later pages are slices of the first walk (they are served with the packs gone)', async () => {
    const whole = cli(['changes', a, b, '--limit', '100000']);
    assert.ok(whole.files.total > 10, `enough changes to page (${whole.files.total})`);
    const first = await engine.changes({ repo, a, b, offset: 0, limit: 7 });
    const data = path.join(repo, 'data');
    const away = path.join(work, 'packs-away');
    fs.renameSync(data, away);
    fs.mkdirSync(data);
    try {
      const rest = await engine.changes({ repo, a, b, offset: 7, limit: 100000 });
      assert.deepEqual([...first.files.changes, ...rest.files.changes], whole.files.changes);
      assert.deepEqual(rest.directories, whole.directories);
      assert.equal(rest.files.total, whole.files.total);
    } finally {
      fs.rmdirSync(data);
      fs.renameSync(away, data);
    }
  });

  it('keeps the engine error codes and names the field of a refused request', async () => {
    await assert.rejects(engine.showSnapshot(repo, 'ffffffffffff'), (e: unknown) => e instanceof EngineError && e.code === 'NOT_FOUND');
    await assert.rejects(client.call('show', { repo, snapshot: '../x' }), (e: unknown) => e instanceof EngineError && e.code === 'USAGE' && /"snapshot" must be a snapshot id/.test(e.message));
    await assert.rejects(client.call('show', { repo, snapshot: b, extra: 1 } as never), (e: unknown) => e instanceof EngineError && /unknown field "extra"/.test(e.message));
    await assert.rejects(engine.readFile(repo, b, '/etc/hostname', { maxBytes: 2 }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_SOURCE');
  });

  it('reports progress, and a cancelled snapshot leaves the repository as it was', async () => {
    const before = (await engine.listSnapshots(repo)).map((s) => s.id);
    const events: ProgressEvent[] = [];
    const done = await engine.snapshot({ repo, source: disk, label: 'through the service' }, (e) => events.push(e));
    assert.ok(events.length > 0 && events.every((e) => e.type === 'progress'), 'progress events arrived');
    assert.equal(done.snapshot.label, 'through the service');
    const listeners: ((e: unknown) => unknown)[] = [];
    let cancelled = false;
    const token = {
      get isCancellationRequested() {
        return cancelled;
      },
      onCancellationRequested: (f: (e: unknown) => unknown) => (listeners.push(f), { dispose() {} }),
    };
    const run = engine.snapshot(
      { repo, source: disk, label: 'cancelled', fullRead: true },
      () => {
        if (cancelled) return;
        cancelled = true;
        listeners.forEach((f) => f(undefined));
      },
      token,
    );
    await assert.rejects(run, (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED');
    assert.deepEqual((await engine.listSnapshots(repo)).map((s) => s.id).sort(), [...before, done.id].sort());
    assert.equal(cli(['check']).ok, true);
  });

  it('a client that goes away mid-snapshot: the service stops it at a safe point and exits; the repository is as it was', async () => {
    const before = (await engine.listSnapshots(repo)).map((x) => x.id).sort();
    const other = new EngineClient({ cliPath: CLI });
    let pid = 0;
    const run = new ServedEngine(other).snapshot({ repo, source: disk, label: 'abandoned', fullRead: true }, () => {
      if (pid) return;
      pid = other.pid!;
      other.dispose(); // the extension host went away: the service's stdin closes
    });
    await assert.rejects(run, EngineError);
    assert.ok(pid > 0, 'the snapshot had started');
    for (let i = 0; i < 600 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(pid), false, 'the service exited');
    assert.deepEqual((await engine.listSnapshots(repo)).map((x) => x.id).sort(), before);
    assert.equal(cli(['check']).ok, true);
  });

  it('a service that dies fails its calls clearly and is started again by the next call', async () => {
    await engine.listSnapshots(repo);
    const pid = client.pid!;
    const pending = engine.changes({ repo, a, b, deep: true } as never);
    process.kill(pid, 'SIGKILL');
    await assert.rejects(pending, (e: unknown) => e instanceof EngineError && e.code === 'INTERNAL' && /stopped/.test(e.message));
    assert.equal((await engine.listSnapshots(repo)).length, 3);
    assert.notEqual(client.pid, pid);
    assert.ok(
      logs.some((l) => /exited \(SIGKILL\)/.test(l)),
      'the exit is logged',
    );
  });
});

// The two servers of the same registry: the user's engine service and the elevated helper (started
// here the 'direct' way, as root for root) answer the same requests alike.
describe('engine servers: the service and the helper answer alike', { skip: !isRoot && 'needs root (the helper runs as root)' }, () => {
  const helper = new HelperEngine({ cliPath: CLI, nodePath: process.execPath, method: 'direct', idleTimeoutSeconds: 60 });
  after(() => helper.dispose());

  it('lists, shows, diffs, verifies, checks, plans and dry-runs restores with the same results', async () => {
    const out = path.join(work, 'files-both');
    fs.mkdirSync(out, { recursive: true });
    const asks: [string, (e: EngineFacade) => Promise<unknown>][] = [
      ['listSnapshots', (e) => e.listRepository(repo)],
      ['show', (e) => e.showSnapshot(repo, b)],
      ['diff', (e) => e.diff(repo, a, b)],
      ['verify', (e) => e.verify({ repo, id: a })],
      ['planSnapshot', (e) => e.planSnapshot(repo, disk)],
      ['restore', (e) => e.restore({ repo, id: b, target: path.join(work, 'both-dry.img'), dryRun: true })],
      ['restoreFiles', (e) => e.restoreFiles({ repo, id: b, paths: ['/etc'], to: out, dryRun: true })],
    ];
    for (const [op, ask] of asks) {
      const [byService, byHelper] = [await ask(engine), await ask(helper)];
      // The state and time of the last verification move on with each verify: compared apart.
      assert.deepEqual(strip(byHelper), strip(byService), op);
    }
    await assert.rejects(helper.call('inventory', { repo, snapshot: b }), (e: unknown) => e instanceof EngineError && /does not serve "inventory"/.test(e.message));
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function strip(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (k, v) => (k === 'verifiedAt' ? undefined : v)));
}
