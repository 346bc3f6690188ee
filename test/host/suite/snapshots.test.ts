// Snapshots through the extension, against the demo disk image and a real repository.
import * as assert from 'assert';
import * as fs from 'fs';
import * as crypto from 'crypto';
import * as path from 'path';
import type { ProgressEvent, SnapshotSummary } from '../../../imaging/protocol';
import type { CancellationLike, Engine, ProgressListener, SnapshotOptions, VerifyResult } from '../../../extension/engine';
import type { SnapshotTreeNode } from '../../../extension/snapshotTree';
import { before, describe, hostContext, it } from './context';
import { api, cli, listFiles, runCommand } from './util';

describe('snapshots', function () {
  this.timeout(120000);
  let seed: SnapshotSummary;

  before(function () {
    const c = hostContext();
    assert.ok(fs.existsSync(c.cli), `${c.cli} is missing: run npm run build`);
    // A first snapshot made by the engine itself (this also creates the repository).
    const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', c.disk, '--repo', c.repo, '--label', 'seed']);
    assert.strictEqual(r.status, 0, `devsnap snapshot failed: ${JSON.stringify(r.json)} ${r.stderr}`);
    seed = r.json.snapshot;
  });

  it("the tree provider returns the repository's snapshots", async () => {
    const a = await api();
    const shown = await a.refresh();
    assert.ok(
      shown.some((s) => s.id === seed.id),
      `seed ${seed.id} not among ${shown.map((s) => s.id).join(', ')}`,
    );
    // Walk the tree as VS Code does: disk groups, then snapshots.
    const p = a.treeProvider;
    const labels: string[] = [];
    const walk = async (node?: SnapshotTreeNode, depth = 0): Promise<void> => {
      for (const child of (await p.getChildren(node)) || []) {
        const item = await p.getTreeItem(child);
        labels.push(typeof item.label === 'string' ? item.label : (item.label?.label ?? ''));
        if (depth < 1) await walk(child, depth + 1);
      }
    };
    await walk();
    assert.ok(
      labels.some((l) => l.includes('seed')),
      `no tree item labelled "seed" in ${JSON.stringify(labels)}`,
    );
  });

  it('devsnap.takeSnapshot with arguments creates a snapshot the engine verifies', async () => {
    const c = hostContext();
    const { result: snap, messages } = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: c.disk, label: 'x' });
    assert.ok(snap && snap.id, `no snapshot returned; messages: ${JSON.stringify(messages)}`);
    assert.strictEqual(snap.label, 'x');
    const v = cli<VerifyResult>(['verify', snap.id, '--repo', c.repo]);
    assert.strictEqual(v.status, 0, `devsnap verify failed: ${JSON.stringify(v.json)}`);
    assert.strictEqual(v.json.ok, true);
    const listed = cli<{ snapshots: SnapshotSummary[] }>(['list', '--repo', c.repo]).json.snapshots.map((s) => s.id);
    assert.ok(listed.includes(snap.id));
    assert.ok(
      (await api()).treeProvider.snapshots.some((s) => s.id === snap.id),
      'the tree was not refreshed',
    );
  });

  it('devsnap.verifySnapshot verifies a snapshot', async () => {
    const { result, messages } = await runCommand<VerifyResult>('devsnap.verifySnapshot', { id: seed.id });
    assert.ok(result, `no result; messages: ${JSON.stringify(messages)}`);
    assert.strictEqual(result.ok, true);
    assert.ok(
      messages.some((m) => m.level === 'info' && /verified/i.test(m.text)),
      JSON.stringify(messages),
    );
  });

  it('cancelling a snapshot leaves the repository as it was', async () => {
    const c = hostContext();
    const a = await api();
    const before = listFiles(c.repo).filter((f) => !/lock/i.test(f));
    const real = a.engine;
    // The engine the command uses, cancelling (as the notification's Cancel button does) once the
    // snapshot has started reading.
    const cancelling: Engine = Object.create(real);
    let cancelledAt: number | undefined;
    cancelling.snapshot = (opts: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike) => {
      const fired: ((e: unknown) => unknown)[] = [];
      let requested = false;
      const cancel = () => {
        if (!requested) {
          requested = true;
          cancelledAt = Date.now();
          fired.forEach((f) => f(undefined));
        }
      };
      const ourToken = {
        get isCancellationRequested() {
          return requested || !!token?.isCancellationRequested;
        },
        onCancellationRequested(l: (e: unknown) => unknown) {
          fired.push(l);
          const d = token?.onCancellationRequested(l);
          return {
            dispose() {
              d?.dispose();
            },
          };
        },
      };
      return real.snapshot.call(
        real,
        opts,
        (ev: ProgressEvent) => {
          onProgress?.(ev);
          if (ev.bytesDone > 0) cancel();
        },
        ourToken,
      );
    };
    // A source big enough that the snapshot is still running when Cancel arrives (the demo disk
    // images in well under a second): 768 MiB of distinct random chunks, which neither dedup nor
    // compress away.
    const big = path.join(c.scratch, 'big-random.img');
    if (!fs.existsSync(big)) {
      const fd = fs.openSync(big, 'w');
      for (let i = 0; i < 768; i++) fs.writeSync(fd, crypto.randomBytes(1 << 20));
      fs.closeSync(fd);
    }
    a.setEngine(cancelling);
    try {
      const { result, messages } = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: big, label: 'cancelled' });
      assert.ok(cancelledAt, `the snapshot finished before it could be cancelled (no progress reported?); result: ${JSON.stringify(result)}; messages: ${JSON.stringify(messages)}`);
      assert.strictEqual(result, undefined, 'the command returned a snapshot although it was cancelled');
      assert.ok(!messages.some((m) => m.level === 'error'), `an error was shown: ${JSON.stringify(messages)}`);
    } finally {
      a.setEngine(undefined);
    }
    const labels = cli<{ snapshots: SnapshotSummary[] }>(['list', '--repo', c.repo]).json.snapshots.map((s) => s.label);
    assert.ok(!labels.includes('cancelled'), 'the cancelled snapshot is listed');
    assert.deepStrictEqual(
      listFiles(c.repo).filter((f) => !/lock/i.test(f)),
      before,
      'files were added to or removed from the repository',
    );
  });
});
