// A repository two workstations share: the Snapshots view groups by host and disk, each group naming
// its host, and Filter by Host shows one host's snapshots (this computer's, another's) or all again.
// The other workstation is this one with another host name (a UTS namespace made for its snapshot).
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskGroupNode } from '../../../extension/snapshotTree';
import { after, before, describe, hostContext, it, type MochaContext } from './context';
import { api, cli, runCommand, setSetting } from './util';

const OTHER = 'colleague-laptop';

describe('hosts sharing a repository', function () {
  this.timeout(120000);
  let repo: string;
  let before_: unknown;

  before(async function (this: MochaContext) {
    if (process.getuid?.() !== 0) this.skip(); // a UTS namespace needs root
    const c = hostContext();
    repo = path.join(c.scratch, `hosts-repo-${Date.now()}`);
    before_ = vscode.workspace.getConfiguration('devsnap').get('repository');
    assert.strictEqual(cli(['snapshot', c.disk, '--repo', repo, '--label', 'mine']).status, 0);
    const theirs = spawnSync('unshare', ['--uts', 'sh', '-c', `hostname ${OTHER} && exec "$0" "$@"`, c.node, c.cli, 'snapshot', c.disk, '--repo', repo, '--label', 'theirs', '--json'], {
      encoding: 'utf8',
    });
    assert.strictEqual(theirs.status, 0, theirs.stderr);
    await setSetting('repository', repo);
    await (await api()).refresh();
  });

  after(async () => {
    if (!repo) return;
    await vscode.commands.executeCommand('devsnap.filterByHost', { host: null });
    await setSetting('repository', before_);
    fs.rmSync(repo, { recursive: true, force: true });
  });

  const groups = async () => {
    const a = await api();
    return a.treeProvider
      .getChildren(undefined)
      .filter((n): n is DiskGroupNode => 'group' in n) // the extension's own classes: instanceof would compare another bundle's
      .map((g) => `${g.group.snapshots.map((s) => s.label).join(',')} ${g.group.description}`);
  };

  it('groups by host and disk, each group naming its host', async () => {
    const g = await groups();
    assert.strictEqual(g.length, 2, JSON.stringify(g));
    assert.ok(g.some((x) => x.startsWith(`mine on ${os.hostname()} ·`)) && g.some((x) => x.startsWith(`theirs on ${OTHER} ·`)), JSON.stringify(g));
  });

  it("Filter by Host shows one host's snapshots, then all again", async () => {
    const shown = await runCommand<string>('devsnap.filterByHost', { host: OTHER });
    assert.strictEqual(shown.result, OTHER);
    let g = await groups();
    assert.strictEqual(g.length, 1, JSON.stringify(g));
    assert.ok(g[0].startsWith(`theirs on ${OTHER} ·`), 'the group still names its host');
    const unknown = await runCommand<string>('devsnap.filterByHost', { host: 'nobody' });
    assert.strictEqual(unknown.result, OTHER, 'an unknown host leaves the filter as it was');
    assert.ok(
      unknown.messages.some((m) => /no snapshot of a host called nobody/.test(m.text)),
      JSON.stringify(unknown.messages),
    );
    await runCommand('devsnap.filterByHost', { host: null });
    g = await groups();
    assert.strictEqual(g.length, 2, JSON.stringify(g));
  });
});
