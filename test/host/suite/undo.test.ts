// devsnap.undoUpgrade inside the real extension host, on a copy of the demo disk whose root is
// mounted (through a loop device, as root, as in CI): snapshot, an "upgrade", snapshot, then the
// command plans, takes a safety snapshot and puts the files back; a file changed after the second
// snapshot stops a later undo before anything changes. Its own repository, so the other suites'
// snapshots are not disturbed.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { ListResult, UndoResult } from '../../../imaging/protocol';
import { after, before, describe, hostContext, it } from './context';
import { cli, runCommand, setSetting } from './util';

describe('undo an upgrade', function () {
  this.timeout(180000);
  let disk = '';
  let dev = '';
  let mnt = '';
  let repo = '';
  let previousRepo: unknown;

  before(async function () {
    if (process.getuid?.() !== 0) this.skip(); // loop devices and mounts need root (as in CI)
    const c = hostContext();
    fs.mkdirSync(c.scratch, { recursive: true });
    disk = path.join(c.scratch, 'undo-disk.img');
    mnt = path.join(c.scratch, 'undo-mnt');
    repo = path.join(c.scratch, 'undo-repo');
    fs.rmSync(repo, { recursive: true, force: true });
    fs.copyFileSync(c.disk, disk);
    fs.mkdirSync(mnt, { recursive: true });
    const table = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })) as {
      partitiontable: { sectorsize?: number; partitions: { start: number; size: number; type: string }[] };
    };
    const sector = table.partitiontable.sectorsize ?? 512;
    const root = [...table.partitiontable.partitions].sort((a, b) => b.size - a.size)[0];
    dev = execFileSync('losetup', ['--find', '--show', '--offset', String(root.start * sector), '--sizelimit', String(root.size * sector), disk], { encoding: 'utf8' }).trim();
    execFileSync('mount', [dev, mnt]);
    previousRepo = vscodeRepository();
    await setSetting('repository', repo);
  });

  after(async () => {
    if (dev) execFileSync('umount', [mnt]);
    if (dev) execFileSync('losetup', ['-d', dev]);
    if (disk) fs.rmSync(disk, { force: true });
    await setSetting('repository', previousRepo);
  });

  const snapshot = (label: string): string => {
    const r = cli<{ id: string }>(['snapshot', disk, '--repo', repo, '--label', label]);
    assert.strictEqual(r.status, 0, r.stderr);
    return r.json.id;
  };
  const read = (rel: string) => fs.readFileSync(path.join(mnt, rel), 'utf8');

  it('plans, takes a safety snapshot, and puts back what the upgrade changed', async () => {
    const hostname = read('etc/hostname');
    const victim = firstFile(path.join(mnt, 'usr')); // not /home: left as it is by default
    const beforeId = snapshot('before the upgrade');
    fs.writeFileSync(path.join(mnt, 'etc/hostname'), 'upgraded\n');
    fs.writeFileSync(path.join(mnt, 'etc/added-by-upgrade.conf'), 'new\n');
    fs.rmSync(victim);
    execFileSync('sync');
    const afterId = snapshot('after the upgrade');

    const plan = await runCommand<UndoResult>('devsnap.undoUpgrade', { before: beforeId, after: afterId, target: mnt, dryRun: true });
    assert.ok(plan.result, JSON.stringify(plan.messages));
    assert.deepStrictEqual(
      plan.result.entries
        .filter((e) => e.action !== 'unchanged' && e.type !== 'dir') // folders: their times
        .map((e) => `${e.action} ${e.path}`)
        .sort(),
      ['remove /etc/added-by-upgrade.conf', 'restore /etc/hostname', `restore /${path.relative(mnt, victim)}`].sort(),
    );
    assert.strictEqual(read('etc/hostname'), 'upgraded\n', 'a dry run changes nothing');

    const done = await runCommand<UndoResult>('devsnap.undoUpgrade', { before: beforeId, after: afterId, target: mnt, confirm: true });
    assert.ok(done.result, JSON.stringify(done.messages));
    assert.strictEqual(read('etc/hostname'), hostname);
    assert.strictEqual(fs.existsSync(path.join(mnt, 'etc/added-by-upgrade.conf')), false);
    assert.ok(fs.existsSync(victim));
    assert.ok(
      done.messages.some((m) => m.level === 'info' && /Undone on .*: \d+ restored, 1 removed/.test(m.text)),
      JSON.stringify(done.messages),
    );
    const list = cli<ListResult>(['list', '--repo', repo]).json;
    assert.ok(
      list.snapshots.some((s) => s.label === 'before undo of after the upgrade'),
      `a safety snapshot was taken: ${list.snapshots.map((s) => s.label).join(', ')}`,
    );

    // A file changed since the "after" snapshot: a second undo stops before anything changes.
    fs.writeFileSync(path.join(mnt, 'etc/hostname'), 'edited by hand since\n');
    fs.writeFileSync(path.join(mnt, 'etc/added-by-upgrade.conf'), 'new\n');
    const refused = await runCommand<UndoResult>('devsnap.undoUpgrade', { before: beforeId, after: afterId, target: mnt, confirm: true, safetySnapshot: false });
    assert.strictEqual(refused.result, undefined);
    assert.ok(
      refused.messages.some((m) => m.level === 'warning' && /Nothing was undone: \d+ paths? on .* changed after snapshot/.test(m.text)),
      JSON.stringify(refused.messages),
    );
    assert.strictEqual(read('etc/hostname'), 'edited by hand since\n');
    assert.ok(fs.existsSync(path.join(mnt, 'etc/added-by-upgrade.conf')));
  });
});

/** The first regular file below `dir` (depth first, sorted). */
function firstFile(dir: string): string {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isFile()) return p;
    if (e.isDirectory()) {
      const f = firstFile(p);
      if (f) return f;
    }
  }
  return '';
}

function vscodeRepository(): unknown {
  return vscode.workspace.getConfiguration('devsnap').inspect('repository')?.workspaceValue;
}
