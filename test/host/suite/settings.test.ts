// Bad settings and sources give a clear message naming the problem, never an exception.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { after, before, describe, hostContext, it } from './context';
import { api, runCommand, setSetting } from './util';

describe('bad settings', function () {
  this.timeout(60000);
  let repoSetting: unknown;

  before(async () => {
    repoSetting = hostContext().repo;
  });
  after(async () => {
    await setSetting('repository', repoSetting);
  });

  const shows = (messages: { level: string; text: string }[], level: string, re: RegExp) =>
    assert.ok(
      messages.some((m) => m.level === level && re.test(m.text)),
      `expected a ${level} message matching ${re}; got ${JSON.stringify(messages)}`,
    );

  it('no repository configured: Take Snapshot asks to choose one', async () => {
    await setSetting('repository', undefined);
    const { result, messages } = await runCommand('devsnap.takeSnapshot', { source: hostContext().disk, label: 'no repo' });
    assert.strictEqual(result, undefined);
    shows(messages, 'warning', /repository/i);
    await setSetting('repository', repoSetting);
  });

  it('a repository folder that does not exist: Verify names it', async () => {
    const missing = path.join(hostContext().scratch, 'no-such-repository');
    await setSetting('repository', missing);
    const { result, messages } = await runCommand('devsnap.verifySnapshot', { all: true });
    assert.strictEqual(result, undefined);
    shows(messages, 'error', new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await setSetting('repository', repoSetting);
  });

  it('a folder that is not a repository: the view says so in its welcome content, whose buttons no message hides', async () => {
    const folder = path.join(hostContext().scratch, 'not-a-repository');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'something else\n');
    await setSetting('repository', folder);
    const a = await api();
    await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'error');
    assert.strictEqual(a.treeView.message, undefined, 'a TreeView.message would hide the welcome buttons');
    assert.deepStrictEqual(a.treeProvider.getChildren(), [], 'nothing in the tree: the welcome content shows');
    await setSetting('repository', repoSetting);
  });

  it('a disk image path that does not exist: Take Snapshot names it', async () => {
    const missing = path.join(hostContext().scratch, 'no-such-disk.img');
    const { result, messages } = await runCommand('devsnap.takeSnapshot', { source: missing, label: 'missing' });
    assert.strictEqual(result, undefined);
    shows(messages, 'error', /no-such-disk\.img/);
  });

  it('a source that is not a disk (a folder, an empty file) gives an error', async () => {
    const dir = path.join(hostContext().scratch, 'a-folder');
    const empty = path.join(hostContext().scratch, 'empty.img');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(empty, '');
    for (const source of [dir, empty]) {
      const { result, messages } = await runCommand('devsnap.takeSnapshot', { source, label: 'bad source' });
      assert.strictEqual(result, undefined, source);
      shows(messages, 'error', new RegExp(path.basename(source).replace('.', '\\.')));
    }
  });

  it('an unreadable disk image gives a permission error', async function () {
    if (process.getuid?.() === 0) this.skip(); // root reads everything
    const f = path.join(hostContext().scratch, 'unreadable.img');
    fs.copyFileSync(hostContext().disk, f);
    fs.chmodSync(f, 0);
    const { result, messages } = await runCommand('devsnap.takeSnapshot', { source: f, label: 'unreadable' });
    assert.strictEqual(result, undefined);
    shows(messages, 'error', /permission/i);
  });
});
