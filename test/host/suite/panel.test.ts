// The compare & restore panel inside the real extension host: the compare command opens the panel
// on a pair and the panel gets its summary, changes and partitions from the engine; the read-only
// devsnap-snapshot: documents read files inside snapshots; Open Snapshots Panel reveals the panel.
import * as assert from 'assert';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../../imaging/protocol';
import { after, before, describe, hostContext, it } from './context';
import { cli, runCommand, sleep } from './util';

interface PanelLike {
  posted: { type: string; [k: string]: unknown }[];
  panel: vscode.WebviewPanel;
  dispose(): void;
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 60000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('compare panel', function () {
  this.timeout(120000);
  let a: SnapshotSummary;
  let b: SnapshotSummary;
  let panel: PanelLike | undefined;

  before(function () {
    const c = hostContext();
    for (const label of ['panel-a', 'panel-b']) {
      const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', c.disk, '--repo', c.repo, '--label', label]);
      assert.strictEqual(r.status, 0, `devsnap snapshot failed: ${JSON.stringify(r.json)} ${r.stderr}`);
      if (label === 'panel-a') a = r.json.snapshot;
      else b = r.json.snapshot;
    }
  });

  after(() => panel?.dispose());

  it('devsnap.compareSnapshots { a, b } opens the panel, which gets the summary, the changes and the partitions', async () => {
    await vscode.commands.executeCommand('devsnap.refresh');
    const { result, messages } = await runCommand<{ a: SnapshotSummary; b: SnapshotSummary; panel: PanelLike }>('devsnap.compareSnapshots', { a: a.id, b: b.id });
    assert.ok(result?.panel, `no panel; messages: ${JSON.stringify(messages)}`);
    panel = result.panel;
    assert.strictEqual(result.a.id, a.id);
    assert.strictEqual(result.b.id, b.id);
    assert.ok(panel.panel.visible, 'the panel is shown');
    const init = await waitFor('init', () => panel!.posted.find((m) => m.type === 'init' && m.a === a.id));
    assert.ok((init.snapshots as { id: string }[]).some((s) => s.id === b.id));
    // The webview asks for the comparison once it has loaded; the engine answers.
    const summary = await waitFor('summary', () => panel!.posted.find((m) => m.type === 'summary' && m.a === a.id && m.b === b.id));
    assert.strictEqual(summary.total, 0, 'the same disk twice: no file changed');
    assert.ok(summary.inventory, 'the inventory diff comes with the summary');
    assert.ok(typeof summary.partition === 'number');
    await waitFor('the last changes chunk', () => panel!.posted.find((m) => m.type === 'changes' && m.a === a.id && m.done === true));
    const parts = await waitFor('partitions', () => panel!.posted.find((m) => m.type === 'partitions' && m.a === a.id));
    assert.strictEqual(parts.totalChangedBytes, 0);
    assert.ok(!panel.posted.some((m) => m.type === 'sectionError'), JSON.stringify(panel.posted.filter((m) => m.type === 'sectionError')));
  });

  it('devsnap-snapshot: documents read a file inside a snapshot (a missing file reads empty)', async () => {
    const c = hostContext();
    const uri = (p: string) => vscode.Uri.from({ scheme: 'devsnap-snapshot', path: p, query: new URLSearchParams({ repo: c.repo, id: b.id }).toString() });
    const doc = await vscode.workspace.openTextDocument(uri('/etc/hostname'));
    assert.ok(doc.getText().trim().length > 0, 'hostname is empty');
    const cat = cli<unknown>(['ls', b.id, '/etc', '--repo', c.repo]);
    assert.strictEqual(cat.status, 0);
    const missing = await vscode.workspace.openTextDocument(uri('/no/such/file'));
    assert.strictEqual(missing.getText(), '');
  });

  it('devsnap.openPanel reveals the open panel', async () => {
    const again = await vscode.commands.executeCommand<PanelLike>('devsnap.openPanel');
    assert.strictEqual(again, panel);
  });
});
