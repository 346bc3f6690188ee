// Unit tests of the extension's side of the engine (extension/engine.ts, engineClient.ts): line
// splitting, how the Engine's methods become operations (EngineFacade), the log line of a call, and
// a missing engine bundle. The engine service itself is tested in engine-service.test.ts.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EngineCall, EngineError, EngineFacade, LineSplitter, retentionEnabled } from '../../../extension/engine';
import { EngineClient } from '../../../extension/engineClient';
import { describeCall } from '../../../extension/engineRpc';
import { check, OPS, OpName } from '../../../imaging/protocol';

/** An EngineFacade whose operations are recorded, each checked against its parameter schema. */
class Recorder extends EngineFacade {
  calls: [string, unknown][] = [];
  call = (async (op: OpName, params: unknown) => {
    const r = check(OPS[op].params, params);
    assert.ok(r.ok, `${op}: ${!r.ok && r.problem}`);
    this.calls.push([op, params]);
    return {};
  }) as EngineCall;
}

describe('extension engine', () => {
  it('splits chunks into lines', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('a\nb');
    s.push('c\r\n\nd');
    s.flush();
    assert.deepEqual(lines, ['a', 'bc', 'd']);
  });

  it('turns the Engine methods into operations whose parameters fit their schemas', async () => {
    const e = new Recorder();
    await e.forget({ repo: '/r', ids: ['a', 'b'] });
    await e.forget({ repo: '/r', policy: { keepLast: 3, keepDaily: 0, keepMonthly: 2.7 } });
    await e.snapshot({ repo: '/r', source: '/dev/sdb', label: 'before upgrade', fullRead: true });
    await e.restore({ repo: '/r', id: 'abc', target: '/dev/sdc', partition: 2 });
    await e.restoreFiles({ repo: '/r', id: 'abc', paths: ['/etc'], to: '/', inPlace: true, dryRun: true });
    await e.changes({ repo: '/r', a: 'x', b: 'y', offset: 10, limit: 5 });
    assert.deepEqual(e.calls, [
      ['forget', { repo: '/r', ids: ['a', 'b'] }],
      ['forget', { repo: '/r', policy: { keepLast: 3, keepMonthly: 2 } }],
      ['snapshot', { repo: '/r', source: '/dev/sdb', label: 'before upgrade', fullRead: true }],
      ['restore', { repo: '/r', snapshot: 'abc', target: '/dev/sdc', partition: 2 }],
      ['restoreFiles', { repo: '/r', snapshot: 'abc', paths: ['/etc'], target: '/', inPlace: true, dryRun: true }],
      ['changes', { repo: '/r', a: 'x', b: 'y', offset: 10, limit: 5 }],
    ]);
    assert.equal(retentionEnabled({ keepLast: 0, keepDaily: 0 }), false);
    assert.equal(retentionEnabled({ keepWeekly: 1 }), true);
  });

  it('logs a call as flags, quoted, without the password', () => {
    assert.equal(
      describeCall('snapshot', { repo: '/r', source: '/dev/sda', label: 'before upgrade', fullRead: true, fuzzy: false }),
      "snapshot --repo /r --source /dev/sda --label 'before upgrade' --full-read",
    );
    assert.equal(describeCall('label', { repo: '/r', label: "it's", password: 'secret' }), "label --repo /r --label 'it'\\''s'");
    assert.equal(describeCall('forget', { repo: '/r', ids: ['a', 'b'] }), `forget --repo /r --ids '["a","b"]'`);
  });

  it('says what to do about an error, and reports a missing engine bundle', async () => {
    assert.equal(new EngineError('NOT_FOUND', 'No such snapshot x.', 'List them.').toUserMessage(), 'No such snapshot x. List them.');
    const missing = new EngineClient({ cliPath: path.join(__dirname, 'nope.js') });
    await assert.rejects(missing.call('listDisks', {}), (e: unknown) => e instanceof EngineError && /nope\.js does not exist/.test(e.message));
  });
});
