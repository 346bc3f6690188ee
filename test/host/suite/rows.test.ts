// The Snapshots view's rows and the words around them, in the real extension host: a click on a row
// compares it with the snapshot before it; the oldest offers no Compare with Previous (by the
// manifest's own when clauses); Compare Selected compares the two selected snapshots; a
// partition's Restore This Partition… restores that partition; Take Snapshot's steps count and go
// Back; the output channel is a log channel; machine settings do not sync; the walkthrough is there.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../../imaging/protocol';
import type { SnapshotTreeNode } from '../../../extension/snapshotTree';
import { before, describe, hostContext, it } from './context';
import { api, cli, nextInput, runCommand, sleep } from './util';

interface Manifest {
  contributes: {
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { properties: Record<string, { scope?: string }> };
    walkthroughs: { id: string; steps: { id: string; description: string; media: { markdown?: string; image?: string }; completionEvents?: string[] }[] }[];
  };
}
const manifest = (): Manifest => JSON.parse(fs.readFileSync(path.join(hostContext().root, 'package.json'), 'utf8'));

/** Whether the view/item/context menu offers `command` on an item with this contextValue (its `viewItem =~ /re/` and `viewItem == x` clauses). */
function offered(command: string, contextValue: string, group?: string): boolean {
  const entries = manifest().contributes.menus['view/item/context'].filter((e) => e.command === command && (!group || (e as { group?: string }).group?.startsWith(group)));
  assert.ok(entries.length, `no menu entry for ${command}`);
  return entries.some((e) => {
    const re = /viewItem =~ \/(.*?)\/(?= |$)/.exec(e.when ?? '');
    const eq = /viewItem == ([\w.]+)/.exec(e.when ?? '');
    return re ? new RegExp(re[1]).test(contextValue) : eq ? eq[1] === contextValue : true;
  });
}

/** Runs `command` until it shows the `n`th quick input (pick or input box) matching `want`; resolves with it (the command keeps running). */
describe('rows and wording', function () {
  this.timeout(120000);
  let older: SnapshotSummary;
  let newer: SnapshotSummary;

  before(async function () {
    const c = hostContext();
    for (const label of ['rows-older', 'rows-newer']) {
      const r = cli<{ snapshot: SnapshotSummary }>(['snapshot', c.disk, '--repo', c.repo, '--label', label]);
      assert.strictEqual(r.status, 0, `devsnap snapshot failed: ${JSON.stringify(r.json)} ${r.stderr}`);
      if (label === 'rows-older') older = r.json.snapshot;
      else newer = r.json.snapshot;
    }
    await (await api()).refresh();
  });

  const nodes = async () => {
    const a = await api();
    const node = a.treeProvider.nodeFor(newer.id);
    assert.ok(node, 'the newer snapshot is in the tree');
    const oldestId = node.parent.group.snapshots[node.parent.group.snapshots.length - 1].id;
    const oldest = a.treeProvider.nodeFor(oldestId)!;
    return { a, node, oldest };
  };

  it('a click on a snapshot row compares it with the one before it; a click on the oldest only selects it', async () => {
    const { a, node, oldest } = await nodes();
    const item = a.treeProvider.getTreeItem(node);
    assert.strictEqual(item.command?.command, 'devsnap.compareWithPrevious', JSON.stringify(item.command));
    const { result, messages } = await runCommand<{ a: SnapshotSummary; b: SnapshotSummary; panel: { dispose(): void } }>(item.command.command, ...(item.command.arguments ?? []));
    assert.ok(result?.panel, `no panel: ${JSON.stringify(messages)}`);
    assert.deepStrictEqual([result.a.id, result.b.id], [older.id, newer.id], 'the snapshot and the one before it');
    result.panel.dispose();
    assert.notStrictEqual(oldest.snapshot.id, newer.id);
    assert.strictEqual(a.treeProvider.getTreeItem(oldest).command, undefined, 'the oldest has nothing to compare with');
  });

  it('Compare with Previous is not offered on the oldest snapshot of a disk (the manifest’s when clauses)', async () => {
    const { a, node, oldest } = await nodes();
    const newerValue = a.treeProvider.getTreeItem(node).contextValue!;
    const oldestValue = a.treeProvider.getTreeItem(oldest).contextValue!;
    assert.ok(offered('devsnap.compareWithPrevious', newerValue, '1_compare'), `not offered on ${newerValue}`);
    assert.ok(offered('devsnap.compareWithPrevious', newerValue, 'inline'), `no inline button on ${newerValue}`);
    assert.ok(!offered('devsnap.compareWithPrevious', oldestValue, '1_compare'), `offered on the oldest (${oldestValue})`);
    assert.ok(!offered('devsnap.compareWithPrevious', oldestValue, 'inline'), `inline on the oldest (${oldestValue})`);
    assert.ok(offered('devsnap.compareWith', oldestValue) && offered('devsnap.restoreSnapshot', oldestValue), 'the oldest keeps its other commands');
    assert.ok(offered('devsnap.pinSnapshot', oldestValue) || offered('devsnap.unpinSnapshot', oldestValue), 'pin or unpin on the oldest');
  });

  it('Compare Selected with two selected snapshots opens the panel with that pair; with one it says to select two', async () => {
    const { node, oldest } = await nodes();
    // From the context menu VS Code passes the item right-clicked and every selected item.
    const { result, messages } = await runCommand<{ a: SnapshotSummary; b: SnapshotSummary; panel: { posted: { type: string; a?: string; b?: string }[]; dispose(): void } }>(
      'devsnap.compareSelected',
      node,
      [node, oldest],
    );
    assert.ok(result?.panel, `no panel: ${JSON.stringify(messages)}`);
    assert.deepStrictEqual([result.a.id, result.b.id], [oldest.snapshot.id, newer.id], 'older first');
    const end = Date.now() + 30000;
    while (!result.panel.posted.some((m) => m.type === 'init' && m.a === oldest.snapshot.id && m.b === newer.id) && Date.now() < end) await sleep(200);
    assert.ok(
      result.panel.posted.some((m) => m.type === 'init' && m.a === oldest.snapshot.id && m.b === newer.id),
      'the panel is told to compare that pair',
    );
    result.panel.dispose();
    const one = await runCommand('devsnap.compareSelected', node, [node]);
    assert.strictEqual(one.result, undefined);
    assert.ok(
      one.messages.some((m) => m.level === 'info' && /Select two snapshots/.test(m.text)),
      JSON.stringify(one.messages),
    );
  });

  it("a partition's Restore This Partition… restores that partition (its target picker, no whole-disk question)", async () => {
    const { a, node } = await nodes();
    const parts = a.treeProvider.getChildren(node as SnapshotTreeNode);
    const part = parts.find((p) => p.kind === 'partition' && p.partition.fs === 'ext4');
    assert.ok(part && part.kind === 'partition', `an ext4 partition row: ${JSON.stringify(parts.map((p) => p.kind))}`);
    assert.strictEqual(a.treeProvider.getTreeItem(part).contextValue, 'partition.files', 'its changed files are offered');
    const shown = nextInput(a, (m) => m.level === 'pick', 'the target picker');
    const run = runCommand('devsnap.restorePartition', part);
    const pick = await shown;
    await sleep(200);
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    const { result, messages } = await run;
    assert.strictEqual(result, undefined, 'dismissed: nothing restored');
    assert.match(pick.text, new RegExp(`Restore partition ${part.partition.index} of 'rows-newer'`));
    assert.match(pick.text, /Which partition should be overwritten\?/);
    assert.ok(!messages.some((m) => /whole disk or one partition/.test(m.text)), `asked for the scope: ${JSON.stringify(messages)}`);
  });

  it("Take Snapshot's picker counts its steps and goes Back from the label to the disk", async () => {
    const a = await api();
    const first = nextInput(a, (m) => m.level === 'pick' && m.step === '1/2', 'step 1/2');
    const run = runCommand('devsnap.takeSnapshot');
    const step1 = await first;
    assert.strictEqual(step1.back, false, 'no Back on the first step');
    assert.ok(
      step1.items?.some((i) => i.includes('disk.img')),
      JSON.stringify(step1.items),
    );
    const second = nextInput(a, (m) => m.level === 'input' && m.step === '2/2', 'step 2/2');
    await sleep(300);
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    const step2 = await second;
    assert.strictEqual(step2.back, true, 'Back on the second step');
    assert.match(step2.text, /Label for the snapshot of .*disk\.img/);
    const again = nextInput(a, (m) => m.level === 'pick' && m.step === '1/2', 'step 1/2 again');
    await sleep(300);
    await vscode.commands.executeCommand('workbench.action.quickInputBack');
    await again;
    await sleep(300);
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    const { result, messages } = await run;
    assert.strictEqual(result, undefined, 'dismissed: no snapshot');
    assert.ok(!messages.some((m) => m.level === 'error'), JSON.stringify(messages));
  });

  it('the output channel is a log channel; settings of this machine do not sync', async () => {
    const a = await api();
    assert.strictEqual(typeof a.output.info, 'function');
    assert.strictEqual(typeof a.output.error, 'function');
    assert.ok('logLevel' in a.output, 'a LogOutputChannel has a log level');
    const props = manifest().contributes.configuration.properties;
    for (const key of ['repository', 'defaultSource', 'diskImages']) assert.strictEqual(props[`devsnap.${key}`].scope, 'machine-overridable', key);
    for (const key of ['elevation', 'showVirtualDisks']) assert.strictEqual(props[`devsnap.${key}`].scope, 'machine', key);
  });

  it('the first-run walkthrough is contributed: its media exist and its buttons run registered commands', async () => {
    const w = manifest().contributes.walkthroughs.find((x) => x.id === 'firstRun');
    assert.ok(w, 'a walkthrough with id firstRun');
    assert.deepStrictEqual(
      w.steps.map((s) => s.id),
      ['chooseRepository', 'takeSnapshot', 'compareRestore', 'automatic'],
    );
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const s of w.steps) {
      const media = s.media.markdown ?? s.media.image;
      assert.ok(media && fs.existsSync(path.join(hostContext().root, media)), `${s.id}: media ${media}`);
      const commands = [...s.description.matchAll(/\(command:([\w.]+)/g), ...(s.completionEvents ?? []).map((e) => /^onCommand:([\w.]+)/.exec(e))].filter(Boolean).map((m) => m![1]);
      assert.ok(commands.length, `${s.id}: a button`);
      for (const c of commands) assert.ok(registered.has(c), `${s.id}: ${c} is not registered`);
    }
    const automatic = w.steps.find((s) => s.id === 'automatic')!;
    assert.match(automatic.description, /command:devsnap\.setUpAutomatic/);
    // VS Code knows it: opening it does not fail.
    await vscode.commands.executeCommand('workbench.action.openWalkthrough', 'devsnap.devsnap#firstRun', false);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });
});
