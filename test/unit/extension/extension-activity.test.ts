// Unit tests of the activity tracker (extension/activity.ts): a snapshot through the tracked engine
// is seen from start to result, the caller's progress listener gets every event plus "finishing"
// at 100%, other methods pass through unchanged, and a failure leaves nothing running.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { ProgressEvent } from '../../../imaging/protocol';
import { ActivityTracker } from '../../../extension/activity';
import type { Engine, ProgressListener, SnapshotOptions } from '../../../extension/engineTypes';

const ev = (done: number, total: number, phase = 'image'): ProgressEvent => ({ type: 'progress', phase, bytesDone: done, bytesTotal: total, rate: 1e6, etaSeconds: 1, message: undefined });

/** An engine whose snapshot reports progress when told, and resolves or fails when told. */
function fakeEngine() {
  let emit: ProgressListener = () => {};
  let finish: (ok: boolean) => void = () => {};
  const engine = {
    name: 'fake',
    snapshot(_o: SnapshotOptions, onProgress?: ProgressListener) {
      emit = onProgress ?? (() => {});
      return new Promise((resolve, reject) => (finish = (ok) => (ok ? resolve({ id: 'x' }) : reject(new Error('boom')))));
    },
    listDisks() {
      return Promise.resolve([{ path: this === engine ? 'this is the engine' : 'wrong this' }]);
    },
    call(op: string) {
      return Promise.resolve({ op });
    },
  };
  return { engine: engine as unknown as Engine & { name: string }, emit: (e: ProgressEvent) => emit(e), finish: (ok: boolean) => finish(ok) };
}

describe('extension activity', () => {
  it('tracks a snapshot from start through finishing to its result', async () => {
    const t = new ActivityTracker();
    const f = fakeEngine();
    const seen: ProgressEvent[] = [];
    let changes = 0;
    t.onDidChange(() => changes++);
    const tracked = t.track(f.engine);
    assert.equal(t.track(f.engine), tracked, 'one wrapper per engine');
    const p = tracked.snapshot({ repo: '/r', source: '/dev/sdb', label: 'l' }, (e) => seen.push(e));
    assert.equal(t.current?.kind, 'snapshot');
    assert.equal(t.current?.subject, '/dev/sdb');
    assert.equal(t.current?.percent, undefined);
    f.emit(ev(42, 100));
    assert.equal(t.current?.percent, 42);
    assert.equal(t.current?.finishing, false);
    f.emit(ev(100, 100));
    assert.equal(t.current?.finishing, true);
    assert.deepEqual(
      seen.map((e) => e.phase),
      ['image', 'image', 'finishing'],
      'the caller hears "finishing" right after 100%',
    );
    assert.match(seen[2].message ?? '', /saving the index/);
    f.finish(true);
    assert.deepEqual(await p, { id: 'x' });
    assert.equal(t.current?.done, true, 'done, shown until the result is on screen');
    t.settle();
    assert.equal(t.current, undefined);
    assert.ok(changes >= 5, `only ${changes} change events`);
  });

  it('forgets a failed snapshot at once and rethrows', async () => {
    const t = new ActivityTracker();
    const f = fakeEngine();
    const p = t.track(f.engine).snapshot({ repo: '/r', source: 'a.img', label: 'l' });
    f.finish(false);
    await assert.rejects(p, /boom/);
    assert.equal(t.activities.length, 0);
  });

  it('passes other methods and properties through, bound to the engine', async () => {
    const t = new ActivityTracker();
    const f = fakeEngine();
    const tracked = t.track(f.engine);
    assert.equal(tracked.name, 'fake');
    assert.deepEqual(await tracked.listDisks(), [{ path: 'this is the engine' }]);
    assert.deepEqual(await tracked.call('listSnapshots', { repo: '/r' }), { op: 'listSnapshots' });
    assert.equal(t.activities.length, 0, 'listing is not an activity');
  });

  it('tracks call("verify") too', async () => {
    const t = new ActivityTracker();
    let listener: ProgressListener | undefined;
    let finish: () => void = () => {};
    const engine = {
      call: (_op: string, _p: unknown, o?: { progress?: ProgressListener }) => {
        listener = o?.progress;
        return new Promise<void>((r) => (finish = r));
      },
    } as unknown as Engine;
    const p = t.track(engine).call('verify', { repo: '/r' });
    assert.equal(t.current?.kind, 'verify');
    assert.equal(t.current?.subject, 'all snapshots');
    listener?.(ev(5, 10, 'verify'));
    assert.equal(t.current?.percent, 50);
    finish();
    await p;
    t.settle();
    assert.equal(t.current, undefined);
  });
});
