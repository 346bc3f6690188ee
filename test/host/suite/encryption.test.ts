// Encrypted repositories and the space per snapshot, in a real VS Code: Choose Repository creates an
// encrypted repository with its password kept in SecretStorage (never in settings, logs or command
// lines); a snapshot is taken and listed with that password; a wrong kept password asks again (and
// Unlock with a wrong password reports BAD_PASSWORD); forgetting it makes the next refresh ask; the
// tooltips and the delete confirmation say what deleting a snapshot frees, as the engine counts it.
// Password boxes are answered by closing them (what a user dismissing them does).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary, UsageResult } from '../../../imaging/protocol';
import type { DevsnapApi } from '../../../extension/extension';
import { formatBytes } from '../../../imaging/core/format';
import { makeDisk, readLayout, seededBytes, writeAt } from '../../helpers/disks';
import { after, before, describe, hostContext, it } from './context';
import { api, cli, runCommand, setSetting } from './util';

const MiB = 1 << 20;
const PASSWORD = 'correct horse battery staple 7';

/** Runs a command while closing every password box it shows; returns the password prompts shown meanwhile. */
async function withPasswordBoxesClosed<T>(a: DevsnapApi, id: string, ...args: unknown[]) {
  const t0 = Date.now();
  const closer = setInterval(() => void vscode.commands.executeCommand('workbench.action.closeQuickOpen'), 500);
  try {
    const run = await runCommand<T>(id, ...args);
    return { ...run, prompts: a.messages.filter((m) => m.level === 'password' && m.at >= t0).map((m) => m.text) };
  } finally {
    clearInterval(closer);
  }
}

/** Every process's command line and environment that holds `secret` (none should). */
function processesHolding(secret: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    for (const f of ['cmdline', 'environ']) {
      try {
        if (fs.readFileSync(`/proc/${pid}/${f}`).includes(secret)) found.push(`${pid}/${f}`);
      } catch {
        /* gone, or not ours to read */
      }
    }
  }
  return found;
}

describe('encrypted repositories and space per snapshot', function () {
  this.timeout(120000);
  let a: DevsnapApi;
  let dir: string;
  let repo: string;
  let disk: string;
  let one: SnapshotSummary;
  let two: SnapshotSummary;

  before(async () => {
    a = await api();
    dir = path.join(hostContext().scratch, 'encryption');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    repo = path.join(dir, 'repo');
    disk = path.join(dir, 'disk.img');
    await makeDisk(disk, { table: 'gpt', size: 12 * MiB, partitions: [{ fs: 'none', size: 8 * MiB }] });
    writeAt(disk, readLayout(disk)[0].start, seededBytes(11, 8 * MiB));
  });

  after(async () => {
    await a.passwords.forget(repo);
    await setSetting('repository', hostContext().repo);
    await a.refresh();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Choose Repository { path, encrypt, password } creates an encrypted repository; the password is in SecretStorage only', async () => {
    const { result, messages } = await runCommand<string>('devsnap.selectRepository', { path: repo, encrypt: true, password: PASSWORD, confirm: true, target: 'workspace' });
    assert.strictEqual(result, repo, JSON.stringify(messages));
    const config = JSON.parse(fs.readFileSync(path.join(repo, 'config.json'), 'utf8'));
    assert.ok(config.encryption, 'config.json has no encryption');
    assert.strictEqual(await a.passwords.get(repo), PASSWORD);
    const settings = path.join(hostContext().workspace, '.vscode', 'settings.json');
    assert.ok(!fs.readFileSync(settings, 'utf8').includes(PASSWORD), 'the password is in the workspace settings');
    const locked = cli(['list', '--repo', repo]);
    assert.strictEqual(locked.status, 3, 'the repository opened without a password');
  });

  it('a snapshot is taken and listed with the password from SecretStorage, which no log or command line holds', async () => {
    const first = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: disk, label: 'secret one' });
    assert.ok(first.result?.id, JSON.stringify(first.messages));
    one = first.result;
    writeAt(disk, readLayout(disk)[0].start + 2 * MiB, seededBytes(12, 2 * MiB));
    const second = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: disk, label: 'secret two' });
    assert.ok(second.result?.id, JSON.stringify(second.messages));
    two = second.result;
    const shown = await a.refresh();
    assert.deepStrictEqual(shown.map((s) => s.id).sort(), [one.id, two.id].sort());
    assert.strictEqual(a.treeProvider.state, 'ok');
    assert.ok(
      a.logLines.some((l) => l.includes('→ listSnapshots')),
      'no engine call was logged',
    );
    assert.deepStrictEqual(
      a.logLines.filter((l) => l.includes(PASSWORD)),
      [],
    );
    assert.deepStrictEqual(processesHolding(PASSWORD), []);
  });

  it('the tooltips and the delete confirmation say what deleting a snapshot frees, as the engine counts it', async () => {
    const stats = cli<UsageResult>(['stats', '--repo', repo, '--password-file', writePasswordFile(dir)]);
    assert.strictEqual(stats.status, 0, JSON.stringify(stats.json));
    const unique = new Map(stats.json.snapshots.map((s) => [s.id, s.uniqueBytes]));
    assert.ok(unique.get(one.id)! > 2 * MiB, JSON.stringify(stats.json));
    await a.refresh();
    await a.storage.settled();
    assert.strictEqual(a.storage.of(one.id)?.uniqueBytes, unique.get(one.id));
    const node = a.treeProvider.nodeFor(one.id);
    assert.ok(node, 'no row for the snapshot');
    const tooltip = (a.treeProvider.getTreeItem(node).tooltip as vscode.MarkdownString).value;
    assert.ok(tooltip.includes(`frees ${formatBytes(unique.get(one.id)!)} of the repository's ${formatBytes(stats.json.total.storedBytes)}`), tooltip);
    // The modal confirmation (VS Code's extension host refuses modals: it ends as cancelled, nothing deleted).
    const del = await runCommand('devsnap.deleteSnapshot', { id: one.id });
    const question = del.messages.find((m) => m.buttons?.includes('Delete'));
    assert.ok(question, JSON.stringify(del.messages));
    assert.ok(question.text.includes(`Deleting it frees ${formatBytes(unique.get(one.id)!)}.`), question.text);
    assert.ok(a.treeProvider.find(one.id), 'the snapshot was deleted');
  });

  it('a wrong kept password asks again; Unlock with a wrong password reports BAD_PASSWORD, with the right one lists again', async () => {
    await a.passwords.set(repo, 'not the password');
    const r = await withPasswordBoxesClosed(a, 'devsnap.refresh');
    assert.ok(
      r.prompts.some((p) => p.includes(`Wrong password for ${repo}`)),
      JSON.stringify(r.prompts),
    );
    assert.strictEqual(a.treeProvider.state, 'error');
    assert.strictEqual((a.treeProvider.lastError as { code?: string }).code, 'BAD_PASSWORD');
    const wrong = await runCommand<boolean>('devsnap.unlockRepository', { password: 'still not it' });
    assert.strictEqual(wrong.result, false);
    assert.ok(
      wrong.messages.some((m) => m.level === 'error' && m.text.includes(`The password for the repository ${repo} is wrong`)),
      JSON.stringify(wrong.messages),
    );
    const right = await runCommand<boolean>('devsnap.unlockRepository', { password: PASSWORD });
    assert.strictEqual(right.result, true, JSON.stringify(right.messages));
    assert.strictEqual(await a.passwords.get(repo), PASSWORD);
    assert.strictEqual(a.treeProvider.state, 'ok');
    assert.strictEqual(a.treeProvider.snapshots.length, 2);
  });

  it('Forget Repository Password: the next refresh asks for it', async () => {
    const f = await runCommand<boolean>('devsnap.forgetRepositoryPassword');
    assert.strictEqual(f.result, true);
    assert.strictEqual(await a.passwords.get(repo), undefined);
    const r = await withPasswordBoxesClosed(a, 'devsnap.refresh');
    assert.ok(
      r.prompts.some((p) => p.includes(`The repository ${repo} is encrypted: enter its password`)),
      JSON.stringify(r.prompts),
    );
    assert.strictEqual((a.treeProvider.lastError as { code?: string }).code, 'BAD_PASSWORD');
    assert.ok(
      r.messages.some((m) => m.level === 'error' && m.text.includes('needs its password') && !m.text.includes('DEVSNAP_PASSWORD')),
      JSON.stringify(r.messages),
    );
  });
});

function writePasswordFile(dir: string): string {
  const file = path.join(dir, 'password');
  fs.writeFileSync(file, PASSWORD, { mode: 0o600 });
  return file;
}
