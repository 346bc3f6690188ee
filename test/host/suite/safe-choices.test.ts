// Safe choices in the real extension host: a loop device is not offered as a snapshot source
// unless devsnap.showVirtualDisks; a repository on the disk being snapshotted is warned about
// (modal) and not taken; an unplugged backup drive is said to be one before any picker; the restore
// confirmation puts Cancel first (the button VS Code focuses) and offers a dry run and a snapshot
// of the target. What the user was asked is read from the extension's message log (API `messages`:
// modal questions with their buttons, quick picks with their rows). VS Code refuses modal dialogs
// in its extension tests, so every modal here ends as cancelled: the tests check that nothing
// happened. (test/host/e2e/safe-choices.e2e.js checks in the browser which button has the focus.)
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../../imaging/protocol';
import type { ShownMessage } from '../../../extension/ui';
import { after, before, describe, hostContext, it, type MochaContext } from './context';
import { api, cli, runCommand, setSetting, sleep } from './util';

const isRoot = process.getuid?.() === 0;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Starts a command that shows a quick pick, waits for the pick, closes it; resolves with the pick's record. */
async function pickShownBy(command: string): Promise<ShownMessage> {
  const a = await api();
  let sub: vscode.Disposable | undefined;
  const shown = new Promise<ShownMessage>((resolve) => {
    sub = a.onDidShowMessage((m) => {
      if (m.level === 'pick') resolve(m);
      else setTimeout(() => void vscode.commands.executeCommand('notifications.clearAll'), 50);
    });
  });
  const run = vscode.commands.executeCommand(command);
  try {
    const m = await Promise.race([shown, sleep(60000).then(() => Promise.reject(new Error(`${command} showed no quick pick`)))]);
    await sleep(200); // the quick pick is on screen after the record
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.strictEqual(await run, undefined, 'a dismissed pick ends the command');
    return m;
  } finally {
    sub?.dispose();
  }
}

describe('safe choices', function () {
  this.timeout(180000);
  const loops: string[] = [];
  const mounts: string[] = [];
  let dir: string;
  let settings: Record<string, unknown>;

  before(function (this: MochaContext) {
    if (!isRoot) this.skip(); // loop devices and mounts
    const c = hostContext();
    dir = fs.mkdtempSync(path.join(c.scratch, 'safe-'));
    const cfg = vscode.workspace.getConfiguration('devsnap');
    settings = { repository: cfg.get('repository'), defaultSource: cfg.get('defaultSource') };
  });

  after(async () => {
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    for (const l of loops.reverse()) spawnSync('losetup', ['-d', l]);
    await vscode.workspace.getConfiguration('devsnap').update('showVirtualDisks', undefined, vscode.ConfigurationTarget.Global);
    for (const [k, v] of Object.entries(settings ?? {})) await setSetting(k, v);
  });

  const attach = (img: string): string => {
    const dev = sh('losetup', ['-f', '--show', img]);
    loops.push(dev);
    return dev;
  };

  it('a loop device is not offered as a snapshot source, unless devsnap.showVirtualDisks', async () => {
    const img = path.join(dir, 'loop-source.img');
    fs.copyFileSync(hostContext().disk, img);
    const dev = attach(img);
    await setSetting('defaultSource', undefined);

    const hidden = await pickShownBy('devsnap.takeSnapshot');
    assert.ok(hidden.items?.length, JSON.stringify(hidden));
    assert.ok(!hidden.items.some((i) => i.includes(dev)), `${dev} is offered: ${JSON.stringify(hidden.items)}`);
    assert.match(hidden.text, /not shown: see the Show Virtual Disks setting/);

    await vscode.workspace.getConfiguration('devsnap').update('showVirtualDisks', true, vscode.ConfigurationTarget.Global);
    const shown = await pickShownBy('devsnap.takeSnapshot');
    const row = shown.items?.find((i) => i.includes(dev));
    assert.ok(row, `${dev} is offered with the setting: ${JSON.stringify(shown.items)}`);
    assert.ok(row.includes(`loop device over ${fs.realpathSync(img)}`), row);
    await vscode.workspace.getConfiguration('devsnap').update('showVirtualDisks', undefined, vscode.ConfigurationTarget.Global);
  });

  it('a repository on the disk being snapshotted is warned about, and not taken', async () => {
    const img = path.join(dir, 'data.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 32 << 20);
    sh('mkfs.ext4', ['-q', '-F', img]);
    const dev = attach(img);
    const mnt = path.join(dir, 'data');
    fs.mkdirSync(mnt);
    sh('mount', [dev, mnt]);
    mounts.push(mnt);
    await setSetting('defaultSource', dev);
    const before = vscode.workspace.getConfiguration('devsnap').get('repository');
    const folder = path.join(mnt, 'devsnap');

    const { result, messages } = await runCommand<string>('devsnap.selectRepository', { path: folder });
    const warning = messages.find((m) => m.level === 'warning' && m.buttons);
    assert.ok(warning, `a modal warning: ${JSON.stringify(messages)}`);
    assert.ok(warning.text.includes(`The repository ${folder} is on ${dev}`) && /would contain the repository itself/.test(warning.text), warning.text);
    assert.match(warning.text, /another drive/);
    assert.deepEqual(warning.buttons, ['Choose Another Folder', 'Use Anyway', 'Cancel']);
    assert.strictEqual(result, undefined, 'cancelled: the folder is not used');
    assert.strictEqual(vscode.workspace.getConfiguration('devsnap').get('repository'), before);

    // Another folder (not on that disk) is taken without a question.
    const elsewhere = path.join(dir, 'repo-elsewhere');
    const ok = await runCommand<string>('devsnap.selectRepository', { path: elsewhere, target: 'workspace' });
    assert.strictEqual(ok.result, elsewhere, JSON.stringify(ok.messages));
    assert.ok(!ok.messages.some((m) => m.buttons), JSON.stringify(ok.messages));
    await setSetting('repository', before);
  });

  it('an unplugged backup drive is said to be one before any picker, not "a new folder"', async () => {
    const drive = `/media/devsnap-hosttest-${process.pid}-${Date.now()}`;
    assert.ok(!fs.existsSync(drive));
    const repo = `${drive}/devsnap`;
    await setSetting('repository', repo);
    const { result, messages } = await runCommand('devsnap.takeSnapshot');
    assert.strictEqual(result, undefined);
    assert.ok(
      messages.some((m) => m.level === 'error' && m.text.startsWith(`The backup drive for ${repo} is not connected: nothing is mounted at ${drive}.`)),
      JSON.stringify(messages),
    );
    assert.ok(!messages.some((m) => m.level === 'pick'), `no picker was shown: ${JSON.stringify(messages)}`);
    assert.ok(!fs.existsSync(drive), 'nothing was created in its place');
    await setSetting('repository', settings.repository);
  });

  it('the restore confirmation has Cancel first, offers a dry run and a snapshot of the target, and writes nothing when cancelled', async () => {
    const repo = path.join(dir, 'repo');
    const target = path.join(dir, 'target.img');
    fs.copyFileSync(hostContext().disk, target);
    const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', hostContext().disk, '--repo', repo, '--label', 'safe restore']);
    assert.strictEqual(r.status, 0, r.stderr);
    // Something written to the target after the snapshot: a restore would undo it.
    const fd = fs.openSync(target, 'r+');
    fs.writeSync(fd, Buffer.from('written since'), 0, 13, 40 << 20);
    fs.closeSync(fd);
    const before = sha(target);
    await setSetting('repository', repo);
    await (await api()).refresh();

    const { result, messages } = await runCommand('devsnap.restoreSnapshot', { id: r.json.snapshot.id, target });
    const modal = messages.find((m) => m.buttons);
    assert.ok(modal, `a modal confirmation: ${JSON.stringify(messages)}`);
    assert.match(modal.text, /^Restore snapshot .* onto .*target\.img\?/);
    assert.deepEqual(modal.buttons, ['Cancel', 'Dry Run', 'Snapshot Target First', 'Restore'], 'Cancel first: the button VS Code focuses');
    assert.strictEqual(result, undefined);
    assert.strictEqual(sha(target), before, 'the target is unchanged');
    await setSetting('repository', settings.repository);
  });
});
