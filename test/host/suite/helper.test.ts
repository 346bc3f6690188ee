// The elevated helper inside the real extension host. CI runs as root, so `auto` elevation starts
// the helper directly (no prompt): Take Snapshot of a loop device is routed to it by the
// extension's default engine, Verify is sent through it explicitly, Restore onto a loop device is
// routed to it again; progress events arrive for each, and one helper serves all three.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { ProgressEvent, SnapshotSummary } from '../../../imaging/protocol';
import type { CancellationLike, Engine, RestoreResult, VerifyResult } from '../../../extension/engine';
import { after, before, describe, hostContext, it } from './context';
import { api, runCommand } from './util';

/** The engine, with the progress events of snapshot / verify / restore recorded. */
function recording(real: Engine, events: ProgressEvent[]): Engine {
  type Tracked = (opts: unknown, onProgress?: (e: ProgressEvent) => void, token?: CancellationLike) => Promise<unknown>;
  const wrap = (name: 'snapshot' | 'verify' | 'restore') => (opts: unknown, onProgress?: (e: ProgressEvent) => void, token?: CancellationLike) =>
    (real[name] as Tracked).call(
      real,
      opts,
      (e: ProgressEvent) => {
        events.push(e);
        onProgress?.(e);
      },
      token,
    );
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'snapshot' || prop === 'verify' || prop === 'restore') return wrap(prop);
      const v = (target as unknown as Record<PropertyKey, unknown>)[prop];
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('elevated helper', function () {
  this.timeout(180000);
  let src: string;
  let dst: string;
  let srcDev = '';
  let dstDev = '';
  let snap: SnapshotSummary | undefined;

  before(function () {
    if (process.getuid?.() !== 0) this.skip(); // loop devices and the prompt-free helper need root (as in CI)
    const c = hostContext();
    fs.mkdirSync(c.scratch, { recursive: true });
    src = path.join(c.scratch, 'helper-source.img');
    dst = path.join(c.scratch, 'helper-target.img');
    fs.copyFileSync(c.disk, src);
    fs.writeFileSync(dst, '');
    fs.truncateSync(dst, fs.statSync(src).size);
    srcDev = execFileSync('losetup', ['--find', '--show', src], { encoding: 'utf8' }).trim();
    dstDev = execFileSync('losetup', ['--find', '--show', dst], { encoding: 'utf8' }).trim();
  });

  after(async () => {
    for (const dev of [srcDev, dstDev]) if (dev) execFileSync('losetup', ['-d', dev]);
    for (const f of [src, dst]) if (f) fs.rmSync(f, { force: true });
  });

  it('Take Snapshot of a loop device runs in the helper, with progress', async () => {
    const a = await api();
    assert.ok(a.helper, 'no helper engine: is devsnap.elevation "none"?');
    const events: ProgressEvent[] = [];
    a.setEngine(recording(a.engine, events));
    try {
      const { result, messages } = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: srcDev, label: 'through the helper' });
      assert.ok(result && result.id, `no snapshot; messages: ${JSON.stringify(messages)}`);
      snap = result;
      assert.strictEqual(snap.source.path, srcDev);
      assert.ok(a.helper.helperPid, 'the helper is not running');
      assert.strictEqual(a.helper.starts, 1);
      assert.ok(
        events.some((e) => e.phase === 'image' && e.bytesDone > 0),
        `no image progress: ${JSON.stringify(events)}`,
      );
    } finally {
      a.setEngine(undefined);
    }
    assert.ok(
      a.treeProvider.snapshots.some((s) => s.id === snap!.id),
      'the tree does not show the new snapshot',
    );
  });

  it('Verify runs in the helper, with progress', async () => {
    assert.ok(snap, 'no snapshot from the previous test');
    const a = await api();
    const events: ProgressEvent[] = [];
    a.setEngine(recording(a.helper!, events));
    try {
      const { result, messages } = await runCommand<VerifyResult>('devsnap.verifySnapshot', { id: snap.id });
      assert.ok(result, `no result; messages: ${JSON.stringify(messages)}`);
      assert.strictEqual(result.ok, true);
      assert.ok(
        events.some((e) => e.phase === 'verify'),
        `no verify progress: ${JSON.stringify(events)}`,
      );
      assert.strictEqual(a.helper!.starts, 1, 'the helper was not reused');
    } finally {
      a.setEngine(undefined);
    }
  });

  it('Restore onto a loop device runs in the helper, with progress, and writes the snapshot', async () => {
    assert.ok(snap, 'no snapshot from the previous test');
    const a = await api();
    const events: ProgressEvent[] = [];
    a.setEngine(recording(a.engine, events));
    try {
      const { result, messages } = await runCommand<RestoreResult>('devsnap.restoreSnapshot', { id: snap.id, target: dstDev, confirm: true });
      assert.ok(result, `no result; messages: ${JSON.stringify(messages)}`);
      assert.ok(result.bytesWritten > 0);
      assert.ok(
        events.some((e) => e.phase === 'restore' && e.bytesDone > 0),
        `no restore progress: ${JSON.stringify(events)}`,
      );
      assert.strictEqual(a.helper!.starts, 1, 'the helper was not reused');
      assert.ok(
        messages.some((m) => m.level === 'info' && /Restored/.test(m.text)),
        JSON.stringify(messages),
      );
    } finally {
      a.setEngine(undefined);
    }
    assert.ok(fs.readFileSync(src).equals(fs.readFileSync(dst)), 'the restored disk differs from the source');
    assert.ok(a.output, 'output channel');
  });
});
