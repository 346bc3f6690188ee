// Unit tests of the extension's engine runner (extension/engine.ts): progress-line parsing,
// result interpretation, and CliEngine against a small fake CLI (spawned with node), including
// cancel by SIGINT.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliEngine, EngineError, forgetArgs, interpretResult, LineSplitter, parseProgressLine, quoteArg, retentionEnabled } from '../../extension/engine';
import { Token } from '../helpers/token';
import type { ProgressEvent } from '../../imaging/protocol';

describe('extension engine: parsing', () => {
  it('parses progress lines and ignores diagnostics', () => {
    const ev = parseProgressLine('{"type":"progress","phase":"image","bytesDone":5,"bytesTotal":10,"rate":3.5,"etaSeconds":2,"message":"partition 1"}');
    assert.deepEqual(ev, { type: 'progress', phase: 'image', bytesDone: 5, bytesTotal: 10, rate: 3.5, etaSeconds: 2, message: 'partition 1' });
    assert.equal(parseProgressLine('  {"type":"progress","phase":"scan","bytesDone":1}  ')?.etaSeconds, null);
    assert.equal(parseProgressLine('{"type":"progress","phase":"scan","bytesDone":"x"}')?.bytesDone, 0);
    assert.equal(parseProgressLine('stopping at a safe point…'), null);
    assert.equal(parseProgressLine('{"type":"other"}'), null);
    assert.equal(parseProgressLine('{not json}'), null);
    assert.equal(parseProgressLine('{"type":"progress"}'), null);
    assert.equal(parseProgressLine(''), null);
  });

  it('splits chunks into lines', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('a\nb');
    s.push('c\r\n\nd');
    s.flush();
    assert.deepEqual(lines, ['a', 'bc', 'd']);
  });

  it('interprets results, errors, cancellation and missing output', () => {
    assert.deepEqual(interpretResult('{"disks":[]}\n', 0, []), { disks: [] });
    assert.deepEqual(interpretResult('warning: x\n{"a":1}', 0, []), { a: 1 });
    assert.throws(() => interpretResult('{"error":{"code":"NOT_FOUND","message":"No such snapshot x.","hint":"List them."}}', 5, []), (e: unknown) => {
      assert.ok(e instanceof EngineError);
      assert.equal(e.code, 'NOT_FOUND');
      assert.equal(e.exitCode, 5);
      assert.equal(e.toUserMessage(), 'No such snapshot x. List them.');
      return true;
    });
    assert.throws(() => interpretResult('{"error":{"code":"WEIRD","message":"m"}}', 1, []), (e: unknown) => e instanceof EngineError && e.code === 'INTERNAL');
    assert.throws(() => interpretResult('', 130, []), (e: unknown) => e instanceof EngineError && e.cancelled);
    assert.throws(() => interpretResult('', 1, ['boom']), (e: unknown) => e instanceof EngineError && e.code === 'INTERNAL' && /boom/.test(e.hint ?? ''));
    assert.throws(() => interpretResult('{"ok":false}', 8, []), EngineError);
    assert.deepEqual(interpretResult('{"ok":false}', 8, [], [0, 8]), { ok: false });
    assert.throws(() => interpretResult('', null, []), (e: unknown) => e instanceof EngineError && e.code === 'INTERNAL');
  });

  it('builds forget arguments', () => {
    assert.deepEqual(forgetArgs({ repo: '/r', ids: ['a', 'b'] }), ['forget', 'a', 'b', '--repo', '/r']);
    assert.deepEqual(forgetArgs({ repo: '/r', policy: { keepLast: 3, keepDaily: 0, keepMonthly: 2.7 } }), ['forget', '--keep-last', '3', '--keep-monthly', '2', '--repo', '/r']);
    assert.equal(retentionEnabled({ keepLast: 0, keepDaily: 0 }), false);
    assert.equal(retentionEnabled({ keepWeekly: 1 }), true);
  });

  it('quotes log arguments', () => {
    assert.equal(quoteArg('/dev/sda'), '/dev/sda');
    assert.equal(quoteArg('before upgrade'), "'before upgrade'");
    assert.equal(quoteArg("it's"), "'it'\\''s'");
  });
});

// A stand-in for dist/devsnap.js that follows the CLI contract.
const FAKE_CLI = String.raw`
const args = process.argv.slice(2);
const cmd = args[0];
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const progress = (phase, done, total) => process.stderr.write(JSON.stringify({ type: 'progress', phase, bytesDone: done, bytesTotal: total, rate: 1e6, etaSeconds: 1 }) + '\n');
if (cmd === 'disks') { process.stderr.write('lsblk: note\n'); out({ disks: [{ path: '/dev/x', kind: 'disk', size: 10, isSystem: true, mountpoints: [], partitions: [] }] }); }
else if (cmd === 'list') out({ snapshots: [], args });
else if (cmd === 'echo') out({ args });
else if (cmd === 'verify') { progress('verify', 1, 1); out({ ok: false, snapshots: [{ id: 'a', ok: false, damage: [{ partition: 1, offset: 0, length: 4, message: 'hash mismatch' }] }] }); process.exit(8); }
else if (cmd === 'snapshot') {
  progress('scan', 0, 0);
  progress('image', 5, 10);
  let stopped = false;
  process.on('SIGINT', () => { stopped = true; });
  const t = setInterval(() => {
    if (stopped) { clearInterval(t); out({ error: { code: 'CANCELLED', message: 'Snapshot cancelled.' } }); process.exit(130); }
    if (args.includes('--fast')) { clearInterval(t); progress('image', 10, 10); out({ id: 'abc', snapshot: { id: 'abc', label: args[args.indexOf('--label') + 1] } }); process.exit(0); }
  }, 20);
}
else if (cmd === 'crash') { process.stderr.write('TypeError: boom\n'); process.exit(1); }
else { out({ error: { code: 'NOT_FOUND', message: 'No snapshot ' + args[1] + '.', hint: 'Run list.' } }); process.exit(5); }
`;


describe('extension engine: CliEngine with a fake CLI', () => {
  let dir: string;
  let engine: CliEngine;
  const log: string[] = [];
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-ext-engine-'));
    fs.writeFileSync(path.join(dir, 'cli.js'), FAKE_CLI);
    engine = new CliEngine({ cliPath: path.join(dir, 'cli.js'), nodePath: process.execPath, log: (l) => log.push(l) });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists disks, logs the invocation and stderr diagnostics', async () => {
    const disks = await engine.listDisks();
    assert.equal(disks[0].path, '/dev/x');
    assert.ok(log.some((l) => l.includes('$ devsnap disks --json')));
    assert.ok(log.some((l) => l.includes('lsblk: note')));
  });

  it('passes --repo and --json', async () => {
    const r = await engine.run<{ args: string[] }>(['echo', 'a b', '--repo', '/r']);
    assert.deepEqual(r.args, ['echo', 'a b', '--repo', '/r', '--json']);
  });

  it('streams progress and returns the snapshot', async () => {
    const events: ProgressEvent[] = [];
    const r = await engine.run<{ id: string; snapshot: { label: string } }>(['snapshot', '/img', '--repo', '/r', '--label', 'my label', '--fast'], { progress: (e) => events.push(e) });
    assert.equal(r.id, 'abc');
    assert.equal(r.snapshot.label, 'my label');
    assert.deepEqual(events.map((e) => `${e.phase}:${e.bytesDone}`), ['scan:0', 'image:5', 'image:10']);
  });

  it('cancels with SIGINT and reports CANCELLED', async () => {
    const token = new Token();
    const events: ProgressEvent[] = [];
    const p = engine.snapshot({ repo: '/r', source: '/img', label: 'x' }, (e) => {
      events.push(e);
      if (e.phase === 'image') token.cancel();
    }, token);
    await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.cancelled);
    assert.ok(log.some((l) => l.includes('sending SIGINT')));
  });

  it('rejects at once when already cancelled', async () => {
    const token = new Token();
    token.cancel();
    await assert.rejects(engine.listDisks(token), (e: unknown) => e instanceof EngineError && e.cancelled);
  });

  it('returns verify results with exit code 8', async () => {
    const r = await engine.verify({ repo: '/r' });
    assert.equal(r.ok, false);
    assert.equal(r.snapshots[0].damage[0].message, 'hash mismatch');
  });

  it('turns ErrorInfo into an EngineError', async () => {
    await assert.rejects(engine.showSnapshot('/r', 'zz'), (e: unknown) => e instanceof EngineError && e.code === 'NOT_FOUND' && e.message === 'No snapshot zz.' && e.hint === 'Run list.');
  });

  it('reports a crash with the stderr tail', async () => {
    await assert.rejects(engine.run(['crash']), (e: unknown) => e instanceof EngineError && e.code === 'INTERNAL' && /boom/.test(e.hint ?? ''));
  });

  it('reports a missing engine bundle', async () => {
    const missing = new CliEngine({ cliPath: path.join(dir, 'nope.js') });
    await assert.rejects(missing.listDisks(), (e: unknown) => e instanceof EngineError && /nope\.js does not exist/.test(e.message));
  });
});
