// Listing and naming snapshots (issue 10, items 8, 13, 14, 15): listing reads small summaries, not
// manifests; a summary that does not match its manifest is rebuilt from it; damaged manifests are
// listed as damaged (and `list`/`verify` exit non-zero); a name that fits more than one snapshot is
// refused, never guessed; a manifest copied under another id is damaged and forgetting it leaves
// the original alone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { CLI, devsnap } from '../../helpers/cli';
import { hexId, syntheticManifest } from '../../helpers/manifests';
import { Repository } from '../../../imaging/repo/repository';
import { forgetOp, listOp } from '../../../imaging/ops/operations';
import { DevsnapError } from '../../../imaging/core/errors';
import { damagedGroupText, damagedItemText } from '../../../extension/snapshotModel';

after(cleanup);
const quiet = { log: () => undefined };
const MiB = 1 << 20;

async function syntheticRepo(password?: string): Promise<{ dir: string; repo: Repository }> {
  const dir = path.join(tmpDir(), 'repo');
  return { dir, repo: await Repository.init(dir, { password }, () => undefined) };
}

const ids = (r: { snapshots: { id: string }[] }) => r.snapshots.map((s) => s.id);
const manifestFile = (dir: string, id: string) => path.join(dir, 'snapshots', `${id}.json`);
const summaryFile = (dir: string, id: string) => path.join(dir, 'snapshots', `${id}.summary`);

/** Changes bytes of a file in place and gives it back its size and mtime (to the nanosecond, with touch -r). */
function damageInPlace(file: string, offset: number, bytes: Buffer): void {
  const ref = `${file}.times`;
  fs.writeFileSync(ref, '');
  sh('touch', ['-r', file, ref]);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, offset);
  fs.closeSync(fd);
  sh('touch', ['-r', ref, file]);
  fs.rmSync(ref);
}

/** Rewrites a plain summary's fields and its digest, as someone who read FORMAT.md could. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a forger edits the parsed JSON freely
function forgeSummary(file: string, change: (s: any) => void): Buffer {
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(s);
  s.digest = crypto
    .createHash('sha256')
    .update(JSON.stringify({ ...s, digest: undefined }))
    .digest('hex');
  return Buffer.from(JSON.stringify(s));
}

test('a name that fits an id prefix and a label is refused with the candidates; id: and label: name exactly', async () => {
  const { dir, repo } = await syntheticRepo();
  const byPrefix = hexId(1, '84');
  const labelled = hexId(2, 'a1');
  await repo.writeManifest(syntheticManifest({ id: byPrefix, label: 'nightly', created: '2026-01-01T10:00:00.000Z' }));
  await repo.writeManifest(syntheticManifest({ id: labelled, label: '84', created: '2026-01-02T10:00:00.000Z' }));
  await repo.writeManifest(syntheticManifest({ id: hexId(3, 'c0'), label: 'twice', created: '2026-01-03T10:00:00.000Z' }));
  await repo.writeManifest(syntheticManifest({ id: hexId(4, 'd0'), label: 'twice', created: '2026-01-04T10:00:00.000Z' }));

  // The CLI, as the issue found it: `forget 84` must not pick either.
  const cli = devsnap(['forget', '84', '--repo', dir, '--json']);
  assert.equal(cli.status, 2, cli.stdout);
  assert.equal(cli.json.error.code, 'USAGE');
  assert.match(cli.json.error.message, /"84" could name 2 snapshots/);
  assert.ok(cli.json.error.message.includes(byPrefix) && cli.json.error.message.includes(labelled), cli.json.error.message);
  assert.match(cli.json.error.message, /its id starts with 84/);
  assert.match(cli.json.error.message, /it is labelled "84"/);
  assert.match(cli.json.error.hint, /id:PREFIX .* label:TEXT/);
  assert.deepEqual(ids(await listOp({ repo: dir }, quiet)).length, 4, 'nothing was removed');

  // Two snapshots with one label: refused too (it used to take the newest).
  await assert.rejects(forgetOp({ repo: dir, ids: ['twice'] }, quiet), (e: DevsnapError) => e.code === 'USAGE' && /could name 2 snapshots/.test(e.message));
  // A label "latest" makes "latest" ambiguous; label:latest and the id stay exact.
  await repo.writeManifest({ ...(await repo.readManifest(hexId(3, 'c0'))), label: 'latest' });
  await assert.rejects(
    forgetOp({ repo: dir, ids: ['latest'], dryRun: true }, quiet),
    (e: DevsnapError) => e.code === 'USAGE' && e.message.includes(hexId(4, 'd0')) && e.message.includes(hexId(3, 'c0')),
  );
  assert.deepEqual((await forgetOp({ repo: dir, ids: ['label:latest'], dryRun: true }, quiet)).removed, [hexId(3, 'c0')]);

  // label: takes only labels, id: only ids.
  assert.deepEqual((await forgetOp({ repo: dir, ids: ['label:84'] }, quiet)).removed, [labelled]);
  assert.deepEqual((await forgetOp({ repo: dir, ids: ['id:84'], dryRun: true }, quiet)).removed, [byPrefix]);
  await assert.rejects(forgetOp({ repo: dir, ids: ['label:nope'] }, quiet), (e: DevsnapError) => e.code === 'NOT_FOUND');
  await assert.rejects(forgetOp({ repo: dir, ids: ['id:nightly'] }, quiet), (e: DevsnapError) => e.code === 'NOT_FOUND');
  // Once the label "84" is gone, "84" names the id prefix alone.
  assert.deepEqual((await forgetOp({ repo: dir, ids: ['84'], dryRun: true }, quiet)).removed, [byPrefix]);
  assert.ok(fs.existsSync(manifestFile(dir, byPrefix)));
});

test('listing reads summaries, not manifests: a manifest damaged in place (size and mtime kept) is listed from its summary; full reads see the damage', async () => {
  const { dir, repo } = await syntheticRepo();
  const all = Array.from({ length: 20 }, (_, i) => hexId(i + 1, 'b'));
  for (const [i, id] of all.entries()) await repo.writeManifest(syntheticManifest({ id, chunks: 2000, created: new Date(Date.UTC(2026, 0, 1, i)).toISOString() }));
  const victim = all[7];
  const file = manifestFile(dir, victim);
  damageInPlace(file, Math.floor(fs.statSync(file).size / 2), Buffer.from('garbage!'));

  const listed = await listOp({ repo: dir }, quiet);
  assert.deepEqual(ids(listed), all, 'every snapshot listed, oldest first, the damaged one from its summary');
  assert.deepEqual(listed.damaged, []);
  assert.equal(listed.snapshots[7].warningCount, 0);
  assert.equal(listed.snapshots[7].source.size, syntheticManifest({ id: victim }).source.size);
  // Reading the manifest itself (show, restore, verify, check do) finds the damage.
  await assert.rejects(repo.readManifest(victim), (e: DevsnapError) => e.code === 'DAMAGED');
  const show = devsnap(['show', victim, '--repo', dir, '--json']);
  assert.equal(show.status, 8);
  assert.equal(devsnap(['check', '--repo', dir, '--json']).status, 8);
});

test('a long list --json reaches a pipe whole (the extension reads it through one)', async () => {
  const { dir, repo } = await syntheticRepo();
  for (let i = 1; i <= 300; i++) await repo.writeManifest(syntheticManifest({ id: hexId(i, 'f'), created: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }));
  // A reader that starts late (as a busy extension host does): the pipe fills at 64 KiB and the CLI
  // must wait for it instead of exiting with the rest unwritten.
  const r = sh('sh', ['-c', `"${process.execPath}" "${CLI}" list --repo "${dir}" --json | (sleep 0.5; cat)`]);
  assert.ok(r.stdout.length > 256 * 1024, `${r.stdout.length} bytes: more than a pipe takes at once`);
  assert.equal(JSON.parse(r.stdout).snapshots.length, 300);
});

test('a summary that does not match its manifest is rebuilt from it: missing, tampered with, stale after a crash', async () => {
  const { dir, repo } = await syntheticRepo();
  const [a, b, c] = [hexId(1, 'a'), hexId(2, 'b'), hexId(3, 'c')];
  for (const id of [a, b, c]) await repo.writeManifest(syntheticManifest({ id, label: `label ${id}` }));

  // Missing: listed from the manifest, and written again.
  fs.rmSync(summaryFile(dir, a));
  assert.deepEqual(ids(await listOp({ repo: dir }, quiet)).sort(), [a, b, c]);
  assert.ok(fs.existsSync(summaryFile(dir, a)), 'the summary was rebuilt');

  // Damaged into other valid JSON (its own digest no longer matches): not trusted.
  const text = fs.readFileSync(summaryFile(dir, b), 'utf8');
  fs.writeFileSync(summaryFile(dir, b), text.replace(`"label":"label ${b}"`, '"label":"evil"'));
  // Forged with a correct digest but for another manifest (the sha256 of its JSON differs): listing
  // trusts it while the file stamp matches, but any full read of the manifest heals it.
  fs.writeFileSync(
    summaryFile(dir, c),
    forgeSummary(summaryFile(dir, c), (s) => {
      s.snapshot.label = 'forged';
      s.manifest.sha256 = '0'.repeat(64);
    }),
  );
  let r = await listOp({ repo: dir }, quiet);
  assert.equal(r.snapshots.find((s) => s.id === b)?.label, `label ${b}`);
  assert.equal(r.snapshots.find((s) => s.id === c)?.label, 'forged');
  await repo.readManifest(c);
  r = await listOp({ repo: dir }, quiet);
  assert.equal(r.snapshots.find((s) => s.id === c)?.label, `label ${c}`, 'a full read rebuilt the summary');

  // A crash after the summary of a change was written but before the manifest was renamed into
  // place leaves the manifest as it was: the old summary comes back here, with a stamp that no
  // longer matches (the manifest was rewritten since).
  const old = fs.readFileSync(summaryFile(dir, a));
  await repo.writeManifest({ ...(await repo.readManifest(a)), label: 'relabelled' });
  fs.writeFileSync(summaryFile(dir, a), old);
  r = await listOp({ repo: dir }, quiet);
  assert.equal(r.snapshots.find((s) => s.id === a)?.label, 'relabelled');
});

test('encrypted repository: summaries are sealed; a plain one planted there is not trusted', async () => {
  const password = 'correct horse';
  const { dir, repo } = await syntheticRepo(password);
  const a = hexId(1, 'e');
  await repo.writeManifest(syntheticManifest({ id: a, label: 'secret label' }));
  const sealed = fs.readFileSync(summaryFile(dir, a));
  assert.ok(sealed.subarray(0, 7).equals(Buffer.from('DSENC1\n')), 'sealed like a manifest');
  assert.ok(!sealed.includes('secret label'));
  assert.equal((await listOp({ repo: dir, password }, quiet)).snapshots[0].label, 'secret label');

  // A plain summary with the right stamp and digest, written by someone without the key.
  const st = fs.statSync(manifestFile(dir, a), { bigint: true });
  const plainDir = (await syntheticRepo()).dir;
  const plainRepo = await Repository.open(plainDir, {}, () => undefined);
  await plainRepo.writeManifest(syntheticManifest({ id: a, label: 'planted' }));
  fs.writeFileSync(
    summaryFile(dir, a),
    forgeSummary(summaryFile(plainDir, a), (s) => {
      s.manifest.size = Number(st.size);
      s.manifest.mtimeNs = st.mtimeNs.toString();
    }),
  );
  assert.equal((await listOp({ repo: dir, password }, quiet)).snapshots[0].label, 'secret label');
});

test('damaged manifests are listed as damaged: list and verify exit 8 naming each; a copy under another id is damaged and forgetting it keeps the original', async () => {
  const dir = tmpDir();
  const repo = path.join(dir, 'repo');
  const env = { DEVSNAP_PASSWORD: 'pw' };
  const image = path.join(dir, 'tiny.img');
  fs.writeFileSync(image, seededBytes(5, 4 * MiB));
  assert.equal(devsnap(['init', '--encrypt', '--repo', repo], env).status, 0);
  const a = devsnap(['snapshot', image, '--repo', repo, '--label', 'first', '--json'], env);
  assert.equal(a.status, 0, a.stderr);
  const b = devsnap(['snapshot', image, '--repo', repo, '--label', 'second', '--json'], env);
  const [idA, idB] = [a.json.id as string, b.json.id as string];

  // A byte flipped in a sealed manifest (it used to make `list` say "No snapshots yet." and exit 0).
  const fileA = manifestFile(repo, idA);
  const bytes = fs.readFileSync(fileA);
  bytes[bytes.length - 5] ^= 0x01;
  fs.writeFileSync(fileA, bytes);
  let list = devsnap(['list', '--repo', repo, '--json'], env);
  assert.equal(list.status, 8, list.stdout);
  assert.deepEqual(ids(list.json), [idB]);
  assert.deepEqual(
    list.json.damaged.map((d: { id: string }) => d.id),
    [idA],
  );
  assert.match(list.json.damaged[0].message, /corrupt or was tampered with/);
  assert.equal(list.json.damaged[0].label, 'first', 'what its last summary said');
  const human = devsnap(['list', '--repo', repo], env);
  assert.equal(human.status, 8);
  assert.match(human.stdout, new RegExp(`1 snapshot has a damaged manifest[^]*${idA}`));

  const verify = devsnap(['verify', '--repo', repo, '--json'], env);
  assert.equal(verify.status, 8, verify.stdout);
  assert.equal(verify.json.ok, false);
  const entry = verify.json.snapshots.find((s: { id: string }) => s.id === idA);
  assert.match(entry?.error ?? '', /corrupt or was tampered with/);
  assert.match(devsnap(['verify', '--repo', repo], env).stdout, new RegExp(`${idA} "first": DAMAGED manifest`));

  // Only damaged snapshots left: still not "No snapshots yet.".
  assert.equal(devsnap(['forget', idB, '--repo', repo], env).status, 0);
  const only = devsnap(['list', '--repo', repo], env);
  assert.equal(only.status, 8);
  assert.doesNotMatch(only.stdout, /No snapshots yet/);
  // A damaged snapshot can be forgotten by id.
  assert.equal(devsnap(['forget', `id:${idA}`, '--repo', repo], env).status, 0);
  assert.equal(devsnap(['list', '--repo', repo], env).stdout.trim(), 'No snapshots yet.');

  // A manifest (and its summary) copied under another id.
  const c = devsnap(['snapshot', image, '--repo', repo, '--label', 'original', '--json'], env);
  const idC = c.json.id as string;
  const copy = idC.startsWith('0') ? `1${idC.slice(1)}` : `0${idC.slice(1)}`;
  sh('cp', ['-p', manifestFile(repo, idC), manifestFile(repo, copy)]);
  sh('cp', ['-p', summaryFile(repo, idC), summaryFile(repo, copy)]);
  list = devsnap(['list', '--repo', repo, '--json'], env);
  assert.equal(list.status, 8);
  assert.deepEqual(ids(list.json), [idC]);
  assert.deepEqual(
    list.json.damaged.map((d: { id: string }) => d.id),
    [copy],
  );
  assert.match(list.json.damaged[0].message, new RegExp(`id is ${idC}.*copy of another snapshot`));
  const forget = devsnap(['forget', copy, '--repo', repo, '--json'], env);
  assert.equal(forget.status, 0, forget.stdout);
  assert.deepEqual(forget.json.removed, [copy]);
  assert.ok(fs.existsSync(manifestFile(repo, idC)), 'the original is still there');
  list = devsnap(['list', '--repo', repo, '--json'], env);
  assert.equal(list.status, 0);
  assert.deepEqual(ids(list.json), [idC]);
  assert.equal(devsnap(['verify', idC, '--repo', repo], env).status, 0);
});

test('the Snapshots view names a damaged snapshot by its last known label, says what is wrong and how to remove it', () => {
  const d = {
    id: 'abcdef0123456789',
    message: 'The manifest of snapshot abcdef0123456789 is corrupt or was tampered with.',
    hint: 'Restore from another snapshot.',
    label: 'before upgrade',
    created: '2026-11-20T10:00:00.000Z',
  };
  const t = damagedItemText(d);
  assert.equal(t.label, 'before upgrade');
  assert.equal(t.description, d.message);
  assert.match(t.tooltip, /abcdef0123456789, last known as 'before upgrade'/);
  assert.match(t.tooltip, /Restore from another snapshot\./);
  assert.match(t.tooltip, /devsnap forget id:abcdef0123456789/);
  assert.equal(damagedItemText({ id: d.id, message: 'x' }).label, d.id, 'no summary: named by id');
  assert.deepEqual(damagedGroupText(2), { label: 'Damaged snapshots', description: '2 cannot be used' });
});
