// The recovery kit from the extension: with devsnap.recoveryKit on, a repository that holds snapshots
// gets its kit (recovery/, devsnap with its own Node) written in the background, whole and checked by
// `kit status --deep`; Create Recovery Media writes a kit into a chosen folder and says where.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { after, before, describe, hostContext, it } from './context';
import { api, cli, runCommand, setSetting, sleep } from './util';

interface KitStatusJson {
  state: string;
  dir: string;
  record?: { engine: string; node: string; files: Record<string, string> };
}

describe('recovery kit', function () {
  this.timeout(240000);
  let repo: string;
  let before_: unknown;

  before(async () => {
    const c = hostContext();
    repo = path.join(c.scratch, `kit-repo-${Date.now()}`);
    before_ = vscode.workspace.getConfiguration('devsnap').get('repository');
    const r = cli(['snapshot', c.disk, '--repo', repo, '--label', 'kit test']);
    assert.strictEqual(r.status, 0, r.stderr);
  });

  after(async () => {
    await setSetting('recoveryKit', undefined);
    await setSetting('repository', before_);
    fs.rmSync(repo, { recursive: true, force: true });
  });

  it('is written into a repository with snapshots, in the background, and checks out', async () => {
    const a = await api();
    await setSetting('recoveryKit', true);
    await setSetting('repository', repo);
    await a.refresh();
    const kitJson = path.join(repo, 'recovery', 'kit.json');
    for (let i = 0; i < 240 && !fs.existsSync(kitJson); i++) await sleep(500);
    assert.ok(fs.existsSync(kitJson), `no kit in ${repo} after 2 minutes; log:\n${a.logLines.slice(-10).join('\n')}`);
    const st = cli<KitStatusJson>(['kit', 'status', '--repo', repo, '--deep']);
    assert.strictEqual(st.status, 0, st.stderr);
    assert.strictEqual(st.json.state, 'ok');
    assert.ok(fs.statSync(path.join(repo, 'recovery', 'node')).mode & 0o100, 'its node is executable');
    assert.ok(
      a.logLines.some((l) => /Wrote the recovery kit to .*recovery/.test(l)),
      a.logLines.slice(-10).join('\n'),
    );
  });

  it('Create Recovery Media writes a kit into the folder given, and says where', async () => {
    const dir = path.join(hostContext().scratch, `media-${Date.now()}`, 'devsnap-recovery');
    const { result, messages } = await runCommand<string>('devsnap.createRecoveryMedia', { path: dir });
    assert.strictEqual(result, dir, JSON.stringify(messages));
    assert.ok(
      messages.some((m) => m.level === 'info' && m.text.includes(`Wrote the recovery kit to ${dir}`)),
      JSON.stringify(messages),
    );
    const st = cli<KitStatusJson>(['kit', 'status', '--dir', dir, '--deep']);
    assert.strictEqual(st.json.state, 'ok', JSON.stringify(st.json));
    assert.match(fs.readFileSync(path.join(dir, 'README.txt'), 'utf8'), /sudo \.\/devsnap recover --repo/);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });
});
