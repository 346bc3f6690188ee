// Automatic snapshots from the extension: Set Up Automatic Snapshots with an arguments object (and a
// temporary root, so the real /etc and /usr/local are never touched) installs the copy of devsnap,
// the units and the config; the status bar's "Next run" comes from autoStatus (systemd does not run
// here: "daily, not scheduled (systemd not running)"); Remove removes them; automatic snapshots are
// marked in the tree; the stale reminder shows once for a stale repository.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../../imaging/protocol';
import type { DevsnapApi } from '../../../extension/extension';
import type { CancellationLike, Engine } from '../../../extension/engine';
import { after, before, describe, hostContext, it } from './context';
import { api, cli, setSetting } from './util';

/** The status bar's tooltip, without Markdown's escapes. */
const tooltip = (a: DevsnapApi) => (a.statusBar.tooltip as vscode.MarkdownString).value.replace(/\\/g, '');

describe('automatic snapshots', function () {
  this.timeout(120000);
  let a: DevsnapApi;
  let root: string;
  let repo: string;

  before(async () => {
    const c = hostContext();
    a = await api();
    root = path.join(c.scratch, 'auto-root');
    repo = path.join(c.scratch, `auto-repo-${Date.now()}`);
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
  });

  after(async () => {
    a.setEngine(undefined);
    await setSetting('repository', hostContext().repo);
    await a.refresh();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(repo, { recursive: true, force: true });
  });

  it('Set Up Automatic Snapshots installs below the root given, Next run comes from its status, Remove removes it', async () => {
    const c = hostContext();
    const st = await vscode.commands.executeCommand<{ engine?: { command: string; outdated: boolean } }>('devsnap.setUpAutomatic', { root, source: c.disk, schedule: 'daily', hooks: [] });
    assert.ok(st, 'installed');
    assert.strictEqual(st.engine?.command, '/usr/local/lib/devsnap/devsnap');
    assert.strictEqual(st.engine?.outdated, false);
    for (const f of ['usr/local/lib/devsnap/devsnap', 'usr/local/lib/devsnap/devsnap.js', 'etc/devsnap/auto.json', 'etc/systemd/system/devsnap-snapshot.timer'])
      assert.ok(fs.existsSync(path.join(root, f)), f);
    const cfg = JSON.parse(fs.readFileSync(path.join(root, 'etc', 'devsnap', 'auto.json'), 'utf8'));
    assert.deepStrictEqual(cfg.retention, { keepDaily: 7, keepWeekly: 4 });
    assert.strictEqual(cfg.source, c.disk);
    assert.match(tooltip(a), /daily, not scheduled \(systemd not running\)/);
    assert.ok(
      a.messages.some((m) => /Automatic snapshots are set up: .*Next run: daily, not scheduled \(systemd not running\)/.test(m.text)),
      JSON.stringify(a.messages.slice(-3)),
    );

    assert.strictEqual(await vscode.commands.executeCommand('devsnap.removeAutomatic', { root }), true);
    assert.ok(!fs.existsSync(path.join(root, 'usr', 'local', 'lib', 'devsnap')));
    assert.ok(!fs.existsSync(path.join(root, 'etc', 'systemd', 'system', 'devsnap-snapshot.timer')));
    // The config stays (removing is not purging), but nothing it calls for is installed: nothing runs.
    assert.match(tooltip(a), /\| Next run \| not scheduled \|/);
  });

  it('marks automatic snapshots in the tree, and reminds once when the newest snapshot is stale', async () => {
    const c = hostContext();
    const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', c.disk, '--repo', repo, '--label', 'scheduled: daily']);
    assert.strictEqual(r.status, 0, r.stderr);
    await setSetting('repository', repo);
    // The newest snapshot as if taken nine days ago (devsnap.staleAfterDays is 7).
    const real = a.engine;
    const aged: Engine = Object.create(real);
    aged.listRepository = async (p: string, token?: CancellationLike) => {
      const l = await real.listRepository(p, token);
      return { ...l, snapshots: l.snapshots.map((s) => ({ ...s, created: new Date(Date.now() - 9 * 86_400_000).toISOString() })) };
    };
    a.setEngine(aged);
    const reminders = () => a.messages.filter((m) => /Your newest snapshot is 9 days old/.test(m.text)).length;
    const before = reminders();
    await a.refresh();
    const p = a.treeProvider;
    const rows = [];
    for (const g of p.getChildren()) for (const s of p.getChildren(g)) if (s.kind === 'snapshot') rows.push(String((await p.getTreeItem(s)).description));
    assert.ok(rows.length === 1 && / · automatic$/.test(rows[0]), JSON.stringify(rows));
    assert.strictEqual(reminders(), before + 1);
    await a.refresh();
    await a.refresh();
    assert.strictEqual(reminders(), before + 1, 'once a day at most');
  });
});
