// At a glance, in a real VS Code: the status-bar item and the Snapshots view's header show the
// newest snapshot's age and keep it true as time passes; a running snapshot shows its progress in
// the view (a transient row and the view's progress bar) and in the status bar, "finishing" after
// 100%, until the result; the warning state for a stale snapshot and for an unplugged backup drive.
// The clock is never faked: a listing whose newest snapshot was taken a given time ago, and real
// seconds passing (a few) for an age to cross a boundary.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { ProgressEvent, SnapshotSummary } from '../../../imaging/protocol';
import type { DevsnapApi } from '../../../extension/extension';
import type { CancellationLike, Engine, ProgressListener, SnapshotOptions } from '../../../extension/engine';
import type { SnapshotTreeNode } from '../../../extension/snapshotTree';
import { after, before, describe, hostContext, it } from './context';
import { api, cli, runCommand, setSetting, sleep } from './util';

const WARNING_BG = 'statusBarItem.warningBackground';

/** The real engine, listing the repository with the newest snapshot taken `ageMs` ago. */
function agedEngine(real: Engine, ageMs: number, created = new Date(Date.now() - ageMs).toISOString()): Engine {
  const e: Engine = Object.create(real);
  e.listRepository = async (repo: string, token?: CancellationLike) => {
    const r = await real.listRepository(repo, token);
    const newest = [...r.snapshots].sort((a, b) => Date.parse(b.created) - Date.parse(a.created))[0];
    return { ...r, snapshots: r.snapshots.map((s) => (s === newest ? { ...s, created } : s)) };
  };
  return e;
}

async function waitFor(what: string | (() => string), check: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(50);
  }
}

async function snapshotRowDescriptions(a: DevsnapApi): Promise<string[]> {
  const p = a.treeProvider;
  const out: string[] = [];
  for (const g of p.getChildren()) for (const s of p.getChildren(g)) if (s.kind === 'snapshot') out.push(String((await p.getTreeItem(s)).description));
  return out;
}

const bg = (a: DevsnapApi) => (a.statusBar.backgroundColor as vscode.ThemeColor | undefined)?.id;
const headerLabels = (a: DevsnapApi) => a.treeProvider.headerItems.map((i) => `${String(i.label)} | ${String(i.description ?? '')}`);

describe('status at a glance', function () {
  this.timeout(120000);
  let a: DevsnapApi;
  let drive: string;
  let repo: string;
  let real: Engine;

  before(async () => {
    const c = hostContext();
    a = await api();
    real = a.engine;
    // A repository of its own on a "drive" (a folder this test can unplug by renaming it).
    drive = path.join(c.scratch, 'status-drive');
    repo = path.join(drive, 'devsnap');
    fs.rmSync(drive, { recursive: true, force: true });
    const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', c.disk, '--repo', repo, '--label', 'glance seed']);
    assert.strictEqual(r.status, 0, `devsnap snapshot failed: ${JSON.stringify(r.json)} ${r.stderr}`);
    await setSetting('repository', repo);
    await setSetting('staleAfterDays', undefined);
    await vscode.commands.executeCommand('devsnap.snapshots.focus'); // visible: its ages are kept true
    await waitFor('the Snapshots view to be visible', () => a.treeView.visible);
  });

  after(async () => {
    a.setEngine(undefined);
    await setSetting('staleAfterDays', undefined);
    await setSetting('repository', hostContext().repo);
    await a.refresh();
    fs.rmSync(`${drive}-unplugged`, { recursive: true, force: true });
    fs.rmSync(drive, { recursive: true, force: true });
  });

  it('the status bar and the view header show the newest snapshot age', async () => {
    a.setEngine(agedEngine(real, 6 * 60_000 + 5_000));
    await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'ok');
    assert.strictEqual(a.statusBar.text, '$(history) Snapshot 6 min ago');
    assert.strictEqual(a.treeView.description, 'newest 6 min ago');
    assert.ok(
      (await snapshotRowDescriptions(a)).some((d) => d.startsWith('6 min ago')),
      JSON.stringify(await snapshotRowDescriptions(a)),
    );
    assert.strictEqual(bg(a), undefined, 'no warning colours');
    const tip = (a.statusBar.tooltip as vscode.MarkdownString).value;
    for (const want of ['| Repository |', repo, '| Free on its drive |', '| Last verify | never |', '| Next run | not scheduled |', 'glance seed'])
      assert.ok(tip.includes(want), `"${want}" not in the tooltip: ${tip}`);
    // The summary row on top: the repository, its size and the free space of its drive.
    const sized = /^newest 6 min ago · \d+(\.\d+)? [KMGT]?B, \d+(\.\d+)? [KMGT]?B free · never verified$/;
    await waitFor(
      () => `the summary row with the size (${JSON.stringify(headerLabels(a))})`,
      () => a.treeProvider.headerItems.some((i) => sized.test(String(i.description))),
    );
    assert.strictEqual(a.treeProvider.headerItems[0].label, 'devsnap');
  });

  it('the age changes as time passes (no reload)', async () => {
    const created = Date.now() - 42_000; // crosses 45 s, where "just now" becomes "1 min ago", in about 3 s
    a.setEngine(agedEngine(real, 0, new Date(created).toISOString()));
    await a.refresh();
    assert.strictEqual(a.statusBar.text, '$(history) Snapshot just now');
    assert.strictEqual(a.treeView.description, 'newest just now');
    const treeChanges: number[] = [];
    const sub = a.treeProvider.onDidChangeTreeData(() => treeChanges.push(Date.now()));
    let loads = 0;
    const sub2 = a.treeProvider.onDidLoad(() => loads++);
    try {
      const boundary = created + 45_000;
      await waitFor('the status bar to say "1 min ago"', () => a.statusBar.text === '$(history) Snapshot 1 min ago');
      assert.strictEqual(a.treeView.description, 'newest 1 min ago');
      assert.match(String(a.treeProvider.headerItems[0]?.description), /^newest 1 min ago · /, 'the summary row');
      assert.ok((await snapshotRowDescriptions(a)).some((d) => d.startsWith('1 min ago')));
      assert.ok(
        treeChanges.some((t) => t >= boundary),
        `the tree was not re-rendered when the age changed (re-rendered at ${treeChanges.map((t) => t - boundary).join(', ')} ms from the change)`,
      );
      assert.strictEqual(loads, 0, 'the ages were kept true by reloading the repository, not by a timer');
    } finally {
      sub.dispose();
      sub2.dispose();
    }
  });

  it('warns when the newest snapshot is older than devsnap.staleAfterDays', async () => {
    a.setEngine(agedEngine(real, 9 * 86_400_000));
    await a.refresh();
    assert.strictEqual(a.statusBar.text, '$(warning) Snapshot 1 week ago');
    assert.strictEqual(bg(a), WARNING_BG);
    assert.match((a.statusBar.tooltip as vscode.MarkdownString).value, /9 days old/);
    await setSetting('staleAfterDays', 30);
    await waitFor('the warning to go with a 30-day limit', () => bg(a) === undefined);
    assert.strictEqual(a.statusBar.text, '$(history) Snapshot 1 week ago');
    await setSetting('staleAfterDays', undefined);
    await waitFor('the warning with the default 7 days', () => bg(a) === WARNING_BG);
  });

  it('a running snapshot shows its progress in the view and the status bar until the result', async () => {
    a.setEngine(undefined);
    await a.refresh();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let report: ProgressListener | undefined;
    const slow: Engine = Object.create(real);
    slow.snapshot = async (opts: SnapshotOptions, onProgress?: ProgressListener, token?: CancellationLike) => {
      report = (ev) => onProgress?.(ev);
      await gate;
      return real.snapshot.call(real, opts, onProgress, token);
    };
    a.setEngine(slow);
    await a.refresh();
    const run = runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: hostContext().disk, label: 'watched' });
    try {
      await waitFor('the snapshot to start', () => !!report);
      await waitFor('the starting row', () => headerLabels(a).some((l) => l.startsWith('Taking snapshot…')));
      assert.ok(a.viewSummary.progressShown, "the view's progress bar does not run");
      const ev = (done: number): ProgressEvent => ({ type: 'progress', phase: 'image', bytesDone: done, bytesTotal: 100, rate: 0, etaSeconds: null });
      report!(ev(42));
      await waitFor('"Taking snapshot… 42%" in the view', () => headerLabels(a).some((l) => l.startsWith('Taking snapshot… 42% | ')));
      assert.strictEqual(a.statusBar.text, '$(sync~spin) Snapshot 42%');
      assert.strictEqual(a.statusBar.command && typeof a.statusBar.command === 'object' ? a.statusBar.command.command : a.statusBar.command, 'devsnap.showProgress');
      report!(ev(100));
      await waitFor('the finishing row', () => headerLabels(a).some((l) => l.startsWith('Taking snapshot… finishing')));
      assert.strictEqual(a.statusBar.text, '$(sync~spin) Snapshot finishing…');
    } finally {
      release();
    }
    const { result, messages } = await run;
    assert.ok(result?.id, `no snapshot: ${JSON.stringify(messages)}`);
    await waitFor('the row and the progress bar to go', () => !headerLabels(a).some((l) => l.startsWith('Taking')) && !a.viewSummary.progressShown);
    assert.ok(
      a.treeProvider.snapshots.some((s) => s.id === result.id),
      'the new snapshot is not shown',
    );
    assert.strictEqual(a.statusBar.text, '$(history) Snapshot just now');
  });

  it('warns when the backup drive is unplugged, and not for a new folder', async () => {
    a.setEngine(undefined);
    await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'ok');
    fs.renameSync(drive, `${drive}-unplugged`); // the drive goes away with its mount point
    try {
      await a.refresh();
      assert.strictEqual(a.treeProvider.state, 'unplugged');
      assert.strictEqual(a.statusBar.text, '$(warning) Backup drive missing');
      assert.strictEqual(bg(a), WARNING_BG);
      assert.strictEqual(a.treeView.description, 'backup drive not connected');
      assert.deepStrictEqual(
        a.treeProvider.getChildren().map((n: SnapshotTreeNode) => n.kind),
        [],
        'the view is empty, so its welcome text says what happened',
      );
    } finally {
      fs.renameSync(`${drive}-unplugged`, drive);
    }
    await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'ok');
    assert.strictEqual(bg(a), undefined);
    // A folder never used, on a drive that is there: the first snapshot creates it; no warning.
    await setSetting('repository', path.join(hostContext().scratch, 'status-new-folder', 'devsnap'));
    fs.mkdirSync(path.join(hostContext().scratch, 'status-new-folder'), { recursive: true });
    await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'missing');
    assert.strictEqual(a.statusBar.text, '$(history) No snapshots yet');
    assert.strictEqual(bg(a), undefined);
  });
});
