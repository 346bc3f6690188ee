// A team repository in an S3 bucket, in a real VS Code: a Ceph radosgw started here (test/helpers/ceph.ts),
// a snapshot taken into s3:ENDPOINT/bucket/prefix with the CLI, and devsnap.repository set to that
// location. Without keys the bucket refuses: the prompt for them shows once, and not again from the
// view's refreshes after it was dismissed. Set S3 Credentials… asks for the access key and the secret
// (typed into its two boxes by the runner's browser), keeps them in SecretStorage once the bucket
// opened with them, and the Snapshots view lists the snapshot. The secret is in no setting, log line
// or message. Then (as root, as in CI) Take Snapshot of a loop device goes through the elevated
// helper, which opens a bucket only with keys carried in the request: the extension adds the kept
// ones; the view lists it next to the CLI's, no log line (not the logged requests to the helper) nor
// message holds the secret, and the CLI verifies it and restores it byte-identically. With a folder
// as the repository the command asks nothing. Skipped where Ceph cannot run.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DevsnapApi } from '../../../extension/extension';
import type { DiskGroupNode } from '../../../extension/snapshotTree';
import type { SnapshotSummary } from '../../../imaging/protocol';
import { devsnap } from '../../helpers/cli';
import { type Ceph, cephSkip, startCeph } from '../../helpers/ceph';
import { after, before, describe, hostContext, it, type MochaContext } from './context';
import { api, type CommandRun, nextInput, runCommand, setSetting, sleep, typeInInputBox } from './util';

const LABEL = 'team snapshot';
const HELPER_LABEL = 'team snapshot through the helper';

describe('a team repository in an S3 bucket', function () {
  this.timeout(300000);
  let a: DevsnapApi;
  let ceph: Ceph | undefined;
  let repo = '';
  let bucket = '';
  let before_: unknown;
  let src = ''; // the image file behind the loop device (a copy of the demo disk)
  let dev = ''; // the loop device the helper snapshots

  before(async function (this: MochaContext) {
    if (cephSkip) {
      console.log(`skipping the S3 suite: ${cephSkip}`);
      this.skip();
    }
    this.timeout(900000); // installing Ceph, when it is missing, takes a minute or more
    a = await api();
    before_ = vscode.workspace.getConfiguration('devsnap').get('repository');
    ceph = await startCeph(1);
    bucket = `${ceph.endpoint}/team-snapshots`;
    repo = `s3:${bucket}/workstations`;
    const r = devsnap(['snapshot', hostContext().disk, '--repo', repo, '--label', LABEL, '--json'], ceph.env, 600000);
    assert.strictEqual(r.status, 0, r.stderr);
  });

  after(async () => {
    // The loop device and its image go whatever happened (also when the test failed half way);
    // Ceph is stopped even if detaching fails, which is reported after.
    let detach: unknown;
    try {
      if (dev) execFileSync('losetup', ['-d', dev]);
    } catch (err) {
      detach = err;
    }
    if (src) fs.rmSync(src, { force: true });
    if (ceph) {
      await a.s3Keys.forget(repo);
      await setSetting('repository', before_);
      await a.refresh();
      ceph.stop();
    }
    if (detach) throw detach;
  });

  const secret = () => ceph!.credentials.secretAccessKey;
  const keyPrompt = (t0: number) => a.messages.filter((m) => m.at >= t0 && m.level === 'input' && m.text.includes('Set S3 Credentials (1/2)'));

  it('without keys the bucket refuses: its keys are asked for once, not again by refreshes after a dismissal', async () => {
    const t0 = Date.now();
    const shown = nextInput(a, (m) => m.level === 'input' && m.text.includes('Set S3 Credentials (1/2)'), 'the key prompt');
    await setSetting('repository', repo); // the view loads the repository: the bucket refuses
    const prompt = await shown;
    assert.ok(prompt.text.includes(`The repository ${repo} is in the bucket ${bucket}.`), prompt.text);
    await sleep(300);
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    await a.refresh();
    await a.refresh();
    assert.strictEqual(keyPrompt(t0).length, 1, JSON.stringify(keyPrompt(t0)));
    assert.strictEqual(a.treeProvider.state, 'error');
    const err = a.treeProvider.lastError as { code?: string; message: string; hint?: string };
    assert.strictEqual(err.code, 'PERMISSION', err.message);
    assert.match(err.hint ?? '', /devsnap: Set S3 Credentials…/);
    assert.strictEqual(await a.s3Keys.get(repo), undefined, 'nothing kept');
  });

  it('Set S3 Credentials… asks for the key and the secret, keeps them once the bucket opened with them; the view lists the snapshot', async () => {
    const keyBox = nextInput(a, (m) => m.level === 'input' && m.text.includes('Set S3 Credentials (1/2)'), 'the access key box');
    const secretBox = nextInput(a, (m) => m.level === 'password' && m.text.includes('Set S3 Credentials (2/2)'), 'the secret box');
    const run = runCommand<boolean>('devsnap.setS3Credentials');
    await keyBox;
    await typeInInputBox(ceph!.credentials.accessKeyId);
    await secretBox;
    await typeInInputBox(secret());
    const { result, messages } = await run;
    assert.strictEqual(result, true, JSON.stringify(messages));
    assert.deepStrictEqual(await a.s3Keys.get(repo), ceph!.credentials);
    assert.deepStrictEqual(await a.s3Keys.get(`s3:${bucket}/another/prefix`), ceph!.credentials, 'every folder of the bucket shares them');

    const shown = await a.refresh();
    assert.strictEqual(a.treeProvider.state, 'ok');
    assert.deepStrictEqual(
      shown.map((s) => s.label),
      [LABEL],
    );
    const rows = a.treeProvider
      .getChildren(undefined)
      .filter((n): n is DiskGroupNode => 'group' in n)
      .flatMap((g) => g.group.snapshots.map((s) => s.label));
    assert.deepStrictEqual(rows, [LABEL], 'the Snapshots view shows it');

    // The secret is in VS Code's secret storage only.
    const settings = fs.readFileSync(path.join(hostContext().workspace, '.vscode', 'settings.json'), 'utf8');
    assert.ok(settings.includes(repo) && !settings.includes(secret()), settings);
    assert.ok(
      a.logLines.some((l) => l.includes(`→ listSnapshots --repo ${repo}`)),
      'no engine call was logged',
    );
    assert.deepStrictEqual(
      a.logLines.filter((l) => l.includes(secret()) || l.includes('s3-credentials')),
      [],
    );
    assert.deepStrictEqual(
      a.messages.filter((m) => m.text.includes(secret())),
      [],
    );
  });

  it('Take Snapshot of a loop device goes through the root helper with the kept keys, into the bucket; the CLI restores it byte-identically', async function (this: MochaContext) {
    if (process.getuid?.() !== 0) this.skip(); // loop devices and the prompt-free helper need root (as in CI)
    assert.ok(a.helper, 'no helper engine: is devsnap.elevation "none"?');
    // After the tests above the setting names the bucket and its keys are kept; run alone (--grep), this test sets both.
    if (!(await a.s3Keys.get(repo))) await a.s3Keys.set(repo, ceph!.credentials);
    if (vscode.workspace.getConfiguration('devsnap').get('repository') !== repo) await setSetting('repository', repo);
    const c = hostContext();
    fs.mkdirSync(c.scratch, { recursive: true });
    src = path.join(c.scratch, 's3-helper-source.img');
    fs.copyFileSync(c.disk, src);
    dev = execFileSync('losetup', ['--find', '--show', src], { encoding: 'utf8' }).trim();
    const logFrom = a.logLines.length; // (the log keeps its last 1000 lines: enough for one snapshot)

    // Keys are kept: a key prompt now means the helper got none (or other) keys. Dismissed at once, so
    // the command fails here (with its messages) instead of waiting on a box nobody types in.
    const asked: string[] = [];
    const watch = a.onDidShowMessage((m) => {
      if ((m.level === 'input' || m.level === 'password') && m.text.includes('Set S3 Credentials')) {
        asked.push(m.text);
        setTimeout(() => void vscode.commands.executeCommand('workbench.action.closeQuickOpen'), 300);
      }
    });
    let run: CommandRun<SnapshotSummary>;
    try {
      run = await runCommand<SnapshotSummary>('devsnap.takeSnapshot', { source: dev, label: HELPER_LABEL });
    } finally {
      watch.dispose();
    }
    const { result, messages } = run;
    assert.deepStrictEqual(asked, [], `the keys were asked for again; log: ${a.logLines.slice(logFrom).join('\n')}`);
    assert.ok(result && result.id, `no snapshot; messages: ${JSON.stringify(messages)}; log: ${a.logLines.slice(logFrom).join('\n')}`);
    assert.strictEqual(result.label, HELPER_LABEL);
    assert.strictEqual(result.source.path, dev);
    const logged = a.logLines.slice(logFrom);
    // In the helper, not the user's engine: the plan and the snapshot were sent to it, and it runs.
    assert.ok(a.helper.helperPid, 'the helper is not running');
    for (const op of ['planSnapshot', 'snapshot'])
      assert.ok(
        logged.some((l) => l.startsWith(`→ helper ${op} --repo ${repo} `) && l.includes(`--source ${dev}`)),
        `${op} of ${dev} into ${repo} was not sent to the helper: ${logged.join('\n')}`,
      );
    assert.ok(!logged.some((l) => /^→ (planSnapshot|snapshot) /.test(l)), `the user's engine ran it: ${logged.join('\n')}`);

    // The Snapshots view lists it next to the one the CLI took.
    assert.strictEqual(a.treeProvider.state, 'ok');
    const rows = a.treeProvider
      .getChildren(undefined)
      .filter((n): n is DiskGroupNode => 'group' in n)
      .flatMap((g) => g.group.snapshots.map((s) => s.label))
      .sort();
    assert.deepStrictEqual(rows, [LABEL, HELPER_LABEL].sort(), 'the Snapshots view shows both');

    // The secret is in no log line (the requests to the helper name no keys) and no message.
    assert.deepStrictEqual(
      a.logLines.filter((l) => l.includes(secret()) || l.includes('s3-credentials') || l.includes('secretAccessKey')),
      [],
    );
    assert.deepStrictEqual(
      a.messages.filter((m) => m.text.includes(secret())),
      [],
    );

    // The CLI, with the same bucket's keys, finds it whole and restores the loop device's bytes.
    const v = devsnap(['verify', result.id, '--repo', repo, '--json'], ceph!.env, 600000);
    assert.strictEqual(v.status, 0, v.stderr + v.stdout);
    const restored = path.join(c.scratch, 's3-helper-restored.img');
    try {
      const r = devsnap(['restore', result.id, restored, '--repo', repo, '--yes', '--json'], ceph!.env, 600000);
      assert.strictEqual(r.status, 0, r.stderr + r.stdout);
      assert.ok(fs.readFileSync(restored).equals(fs.readFileSync(src)), "the restored disk differs from the loop device's image");
    } finally {
      fs.rmSync(restored, { force: true });
    }
  });

  it('Forget S3 Credentials forgets them; with a folder as the repository, Set S3 Credentials asks nothing', async () => {
    const forgot = await runCommand<boolean>('devsnap.forgetS3Credentials');
    assert.strictEqual(forgot.result, true, JSON.stringify(forgot.messages));
    assert.strictEqual(await a.s3Keys.get(repo), undefined);
    await setSetting('repository', hostContext().repo);
    const t0 = Date.now();
    const folder = await runCommand<boolean>('devsnap.setS3Credentials');
    assert.strictEqual(folder.result, undefined);
    assert.ok(
      folder.messages.some((m) => m.level === 'info' && m.text.includes(`The repository ${hostContext().repo} is a folder`)),
      JSON.stringify(folder.messages),
    );
    assert.deepStrictEqual(
      a.messages.filter((m) => m.at >= t0 && (m.level === 'input' || m.level === 'password')),
      [],
    );
  });
});
