// restoreFiles through a real elevated helper process (imaging/helper/README.md, "Restoring files"):
// into a user's folder (dry run writes nothing; a real run restores content and modes, and gives
// the files to the requesting user without root's xattrs), in place into a root-owned folder
// standing in for '/' (snapshot owners kept; refused without `confirmed`, or not in place), symlinks
// that would lead root's writes elsewhere, and malformed requests refused with clear errors.
// Fixture: an ext4 partition made from a small tree (makeDisk fromDir), snapshotted with the CLI.
// Runs as root (the helper runs as root; the "other user" is devsnap-test-user).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateCall, MAX_RESTORE_PATHS } from '../../../imaging/helper/validate';
import { cleanup, isRoot, makeDisk, sh, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { CLI, ensureUser, HelperRun, launchHelper, launchHelperFor } from './helper-harness';
import { HelperEngine } from '../../../extension/helperClient';
import { RoutingEngine } from '../../../extension/engine';
import { EngineClient } from '../../../extension/engineClient';
import { ServedEngine } from '../../../extension/servedEngine';
import type { ProgressEvent } from '../../../imaging/protocol';

after(cleanup);
const skip = isRoot ? false : 'needs root (the helper runs as root)';
const TEST_USER = 'devsnap-test-user';
const MiB = 1 << 20;

describe('helper restoreFiles validation (unit)', () => {
  it('refuses a relative target, NUL bytes, ".." and too many paths, naming the field', () => {
    const ok = { repo: '/r', snapshot: 'latest', paths: ['/etc/hostname', 'usr/bin'], target: '/tmp' };
    assert.equal(validateCall('restoreFiles', ok).ok, true);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, target: 'relative/dir' }, /"target" must be an absolute path/],
      [{ ...ok, paths: ['/etc/host\0name'] }, /"paths\[0\]" is a path with a NUL byte/],
      [{ ...ok, paths: ['/etc', '/../../etc/shadow'] }, /"paths\[1\]" is .*'\.\.' is not allowed/],
      [{ ...ok, paths: [] }, /"paths" must be a list of 1 to \d+ paths/],
      [{ ...ok, paths: Array.from({ length: MAX_RESTORE_PATHS + 1 }, (_, i) => `/f${i}`) }, /"paths" must be a list of 1 to 10000 paths/],
      [{ ...ok, paths: ['x'.repeat(5000)] }, /at most 4096 characters/],
      [{ ...ok, paths: [7] }, /"paths\[0\]" must be a path/],
      [{ ...ok, paths: '/etc' }, /"paths" must be a list/],
      [{ ...ok, deep: true }, /unknown field "deep"/],
      [{ ...ok, inPlace: 'yes' }, /"inPlace" must be true or false/],
      [{ ...ok, target: undefined }, /"target" is missing/],
    ];
    for (const [msg, re] of bad) {
      const r = validateCall('restoreFiles', msg);
      assert.equal(r.ok, false, JSON.stringify(msg).slice(0, 200));
      if (!r.ok) assert.match(r.message, re);
    }
  });
});

describe('helper restoreFiles (real helper process)', { skip }, () => {
  let work: string;
  let tree: string;
  let repo: string;
  /** The same repository, owned by the test user (the helper works in it with the user's rights). */
  let userRepo: string;
  let snap: string;
  let uid: number;
  let h: HelperRun;
  let other: HelperRun;

  before(async () => {
    uid = ensureUser(TEST_USER);
    work = tmpDir('devsnap-helperfiles-');
    fs.chmodSync(work, 0o755);
    tree = path.join(work, 'tree');
    const mk = (rel: string, content: string, mode: number, owner: number) => {
      const f = path.join(tree, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, content);
      fs.chownSync(f, owner, owner);
      fs.chmodSync(f, mode); // after chown, which clears setuid
    };
    mk('etc/hostname', 'snapbox\n', 0o644, 0);
    mk('etc/app/app.conf', 'level = 3\n', 0o640, 0);
    mk('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755, 0);
    mk('usr/bin/su-tool', 'suid\n', 0o4755, 0);
    mk('home/dev/notes.txt', 'private notes\n', 0o600, 1000);
    fs.chownSync(path.join(tree, 'home/dev'), 1000, 1000);
    sh('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(tree, 'usr/bin/tool')]);
    sh('setfattr', ['-n', 'trusted.devsnap', '-v', 'root-only', path.join(tree, 'usr/bin/tool')]);
    const disk = path.join(work, 'disk.img');
    await makeDisk(disk, { table: 'gpt', size: 24 * MiB, partitions: [{ fs: 'ext4', fromDir: tree }] });
    repo = path.join(work, 'repo');
    const s = devsnap(['snapshot', disk, '--repo', repo, '--json']);
    assert.equal(s.status, 0, s.stderr);
    snap = s.json.id;
    userRepo = path.join(work, 'user-repo');
    sh('cp', ['-a', repo, userRepo]);
    sh('chown', ['-R', `${uid}:${uid}`, userRepo]);
    h = await launchHelper();
    other = await launchHelperFor(uid);
    assert.ok(h.sock, h.stderr());
    assert.ok(other.sock, other.stderr());
  });
  after(async () => {
    await h?.close();
    await other?.close();
  });

  /** A folder owned by `owner`, mode 0755. */
  const folder = (name: string, owner: number) => {
    const d = path.join(work, name);
    fs.mkdirSync(d);
    fs.chownSync(d, owner, owner);
    return d;
  };
  const listAll = (d: string): string[] => fs.readdirSync(d, { recursive: true }).map(String).sort();

  it("into a user's folder: a dry run writes nothing; the real run restores content and modes, owned by the user, without root's xattrs", async () => {
    const out = folder('user-out', uid);
    const base = { repo: userRepo, snapshot: snap, paths: ['/usr/bin', 'etc/hostname'], target: out };
    const dry = await other.call('restoreFiles', { ...base, dryRun: true });
    assert.equal(dry.type, 'result', JSON.stringify(dry));
    assert.equal(dry.result.dryRun, true);
    assert.equal(dry.result.inPlace, false);
    assert.deepEqual(fs.readdirSync(out), [], 'a dry run writes nothing');
    assert.deepEqual(dry.result.entries.map((e: { dest: string }) => e.dest).sort(), [path.join(out, 'bin'), path.join(out, 'bin/su-tool'), path.join(out, 'bin/tool'), path.join(out, 'hostname')]);
    assert.ok(dry.result.entries.every((e: { action: string }) => e.action === 'create'));

    const real = await other.call('restoreFiles', base);
    assert.equal(real.type, 'result', JSON.stringify(real));
    assert.equal(real.result.totals.create, 4);
    assert.equal(real.result.bytesWritten, dry.result.bytesToWrite);
    assert.deepEqual(listAll(out), ['bin', 'bin/su-tool', 'bin/tool', 'hostname']);
    for (const [rel, src] of [
      ['hostname', 'etc/hostname'],
      ['bin/tool', 'usr/bin/tool'],
      ['bin/su-tool', 'usr/bin/su-tool'],
    ]) {
      const a = fs.statSync(path.join(out, rel));
      const b = fs.statSync(path.join(tree, src));
      assert.equal(fs.readFileSync(path.join(out, rel), 'utf8'), fs.readFileSync(path.join(tree, src), 'utf8'), rel);
      assert.equal((a.mode & 0o7777).toString(8), (b.mode & 0o7777).toString(8), `${rel}: mode`);
      assert.equal(Math.floor(a.mtimeMs / 1000), Math.floor(b.mtimeMs / 1000), `${rel}: mtime`);
      assert.equal(`${a.uid}:${a.gid}`, `${uid}:${uid}`, `${rel}: given to the requesting user`);
    }
    assert.equal(fs.statSync(path.join(out, 'bin')).uid, uid);
    assert.equal(fs.statSync(path.join(out, 'bin/su-tool')).mode & 0o7777, 0o4755, "setuid, but the user's own");
    const xattrs = sh('getfattr', ['-d', '-m', '-', path.join(out, 'bin/tool')]).stdout;
    assert.match(xattrs, /user\.note="kept"/);
    assert.doesNotMatch(xattrs, /trusted\./, "root's xattrs are not given to the user");

    // A root-owned folder (not in place) and another user's folder are refused.
    const rootOwned = folder('root-out', 0);
    let m = await other.call('restoreFiles', { ...base, target: rootOwned, dryRun: true });
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, /belongs to root; .* only in place/);
    m = await h.call('restoreFiles', { ...base, target: out, allowRootRepository: undefined, dryRun: true });
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, new RegExp(`belongs to uid ${uid}, not to the requesting user \\(uid 0\\)`));
    // Not an existing folder.
    m = await other.call('restoreFiles', { ...base, target: path.join(out, 'hostname') });
    assert.match(m.error.message, /is not a folder/);
    m = await other.call('restoreFiles', { ...base, target: path.join(work, 'missing') });
    assert.match(m.error.message, /does not exist/);
    m = await other.call('restoreFiles', { ...base, target: '/proc/self', dryRun: true });
    assert.match(m.error.message, /under \/proc/);
    // From a root-owned repository into the user's folder: the helper would have to write there as root.
    m = await other.call('restoreFiles', { ...base, repo, allowRootRepository: true, target: folder('user-out-2', uid), dryRun: true });
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, /from the root-owned repository .* only in place, not into a folder of yours/);
    assert.match(m.error.hint, /chown -R/);
  });

  it("in place into a root-owned folder standing in for '/': refused without confirmed, then restored with the snapshot's owners", async () => {
    const root = folder('fake-root', 0);
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/hostname'), 'changed since\n');
    fs.writeFileSync(path.join(root, 'etc/not-in-snapshot'), 'left alone\n');
    const base = { repo, allowRootRepository: true, snapshot: snap, paths: ['/etc', '/usr/bin/su-tool', '/home/dev'], target: root, inPlace: true };
    let m = await other.call('restoreFiles', base);
    assert.equal(m.error?.code, 'USAGE', JSON.stringify(m));
    assert.match(m.error.message, /does not say the user confirmed it/);
    m = await other.call('restoreFiles', { ...base, inPlace: false, confirmed: true });
    assert.match(m.error.message, /only in place/);
    assert.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'changed since\n', 'nothing was written');
    assert.deepEqual(listAll(root), ['etc', 'etc/hostname', 'etc/not-in-snapshot']);

    // A dry run needs no confirmation and writes nothing.
    const dry = await other.call('restoreFiles', { ...base, dryRun: true });
    assert.equal(dry.type, 'result', JSON.stringify(dry));
    const action = (r: { entries: { dest: string; action: string }[] }, rel: string) => r.entries.find((e) => e.dest === path.join(root, rel))?.action;
    assert.equal(action(dry.result, 'etc/hostname'), 'replace');
    assert.equal(action(dry.result, 'usr/bin/su-tool'), 'create');
    assert.deepEqual(listAll(root), ['etc', 'etc/hostname', 'etc/not-in-snapshot']);

    const real = await other.call('restoreFiles', { ...base, confirmed: true });
    assert.equal(real.type, 'result', JSON.stringify(real));
    assert.equal(real.result.inPlace, true);
    assert.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'snapbox\n');
    assert.equal(fs.readFileSync(path.join(root, 'etc/not-in-snapshot'), 'utf8'), 'left alone\n', 'files not in the snapshot are left alone');
    const st = (rel: string) => fs.statSync(path.join(root, rel));
    assert.equal(`${st('home/dev/notes.txt').uid}:${st('home/dev/notes.txt').gid}`, '1000:1000', "the snapshot's owners are kept");
    assert.equal(st('home/dev/notes.txt').mode & 0o7777, 0o600);
    assert.equal(st('home/dev').uid, 1000);
    assert.equal(st('usr/bin/su-tool').uid, 0);
    assert.equal(st('usr/bin/su-tool').mode & 0o7777, 0o4755);
    assert.equal(st('etc/app/app.conf').mode & 0o7777, 0o640);
    assert.equal(fs.readFileSync(path.join(root, 'etc/app/app.conf'), 'utf8'), 'level = 3\n');

    // Again: everything unchanged.
    const again = await other.call('restoreFiles', { ...base, dryRun: true });
    assert.ok(
      again.result.entries.every((e: { action: string }) => e.action === 'unchanged'),
      JSON.stringify(again.result.entries),
    );
  });

  it("does not follow a symbolic link out of the target, nor another user's link in place", async () => {
    const out = folder('user-linked', uid);
    const elsewhere = folder('elsewhere', 0);
    fs.symlinkSync(elsewhere, path.join(out, 'usr'));
    fs.lchownSync(path.join(out, 'usr'), uid, uid);
    let m = await other.call('restoreFiles', { repo: userRepo, snapshot: snap, paths: ['/usr/bin/tool'], target: out, inPlace: true, dryRun: true });
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, /symbolic link to .*elsewhere, outside/);
    m = await other.call('restoreFiles', { repo: userRepo, snapshot: snap, paths: ['/usr/bin/tool'], target: out, inPlace: true });
    assert.match(m.error.message, /symbolic link/);
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the link');

    const root = folder('fake-root-2', 0);
    fs.mkdirSync(path.join(root, 'home'));
    fs.symlinkSync(elsewhere, path.join(root, 'home', 'dev'));
    fs.lchownSync(path.join(root, 'home', 'dev'), uid, uid);
    m = await other.call('restoreFiles', { repo, allowRootRepository: true, snapshot: snap, paths: ['/home/dev/notes.txt'], target: root, inPlace: true, confirmed: true });
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, new RegExp(`symbolic link of uid ${uid}`));
    assert.deepEqual(fs.readdirSync(elsewhere), []);
  });

  it('in place, writes as root only through folders the user cannot change (no race with a swapped folder)', async () => {
    // The user's own folder inside the system's tree (their home): they could swap it for a link to
    // /etc between the helper's check and its writes, so the helper does not write through it.
    const root = folder('fake-root-3', 0);
    const home = path.join(root, 'home', 'dev');
    fs.mkdirSync(home, { recursive: true });
    fs.chownSync(home, uid, uid);
    const req = { repo: userRepo, snapshot: snap, paths: ['/home/dev/notes.txt'], target: root, inPlace: true, confirmed: true };
    let m = await other.call('restoreFiles', req);
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, new RegExp(`${home} belongs to uid ${uid}; restoring .* in place, the helper writes as root only through folders`));
    assert.match(m.error.hint, /as yourself/);
    // A folder anyone may write to (not sticky): the same.
    fs.chownSync(home, 0, 0);
    fs.chmodSync(home, 0o777);
    m = await other.call('restoreFiles', req);
    assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
    assert.match(m.error.message, /writable by its group or others \(mode 777\)/);
    assert.deepEqual(fs.readdirSync(home), []);
    // Sticky (as /tmp): others cannot rename root's entries in it. The writing runs as root (the
    // snapshot's owner is kept), while the repository, the user's, is opened with the user's rights.
    fs.chmodSync(home, 0o1777);
    m = await other.call('restoreFiles', req);
    assert.equal(m.type, 'result', JSON.stringify(m));
    assert.equal(fs.statSync(path.join(home, 'notes.txt')).uid, 1000);
    assert.equal(fs.readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'private notes\n');
  });

  it("through the extension's engines: RoutingEngine sends an in-place restore under a folder the user cannot write to HelperEngine", async () => {
    const root = folder('fake-root-engine', 0);
    fs.mkdirSync(path.join(root, 'usr'));
    const logs: string[] = [];
    const helper = new HelperEngine({ cliPath: CLI, nodePath: process.execPath, method: 'direct', idleTimeoutSeconds: 60 });
    // The probe stands in for "the user cannot write there" (the test runs as root).
    const e = new RoutingEngine(
      new ServedEngine(new EngineClient({ cliPath: CLI })),
      helper,
      (p, mode) => mode === 'write' && p.startsWith(root),
      (l) => logs.push(l),
    );
    try {
      const opts = { repo, id: snap, paths: ['/usr/bin'], to: root, inPlace: true };
      const dry = await e.restoreFiles({ ...opts, dryRun: true });
      assert.equal(dry.totals.create, 3);
      assert.deepEqual(fs.readdirSync(path.join(root, 'usr')), []);
      assert.equal(helper.starts, 1);
      const events: ProgressEvent[] = [];
      const r = await e.restoreFiles(opts, (ev) => events.push(ev));
      assert.equal(r.totals.create, 3);
      assert.ok(
        events.some((ev) => ev.phase === 'restore-files'),
        JSON.stringify(events),
      );
      assert.equal(fs.statSync(path.join(root, 'usr/bin/su-tool')).mode & 0o7777, 0o4755);
      assert.match(logs.join('\n'), /restore files: through the elevated helper/);
      // A folder the user can write: the CLI, as before (no new helper request).
      const out = folder('engine-user-out', 0);
      const before = helper.starts;
      const viaCli = await e.restoreFiles({ repo, id: snap, paths: ['/etc/hostname'], to: out });
      assert.equal(viaCli.totals.create, 1);
      assert.equal(helper.starts, before);
    } finally {
      await helper.dispose();
    }
  });

  it('refuses malformed requests from a real extension side with clear errors, and writes nothing', async () => {
    const out = folder('malformed', 0);
    const base = { repo, snapshot: snap, paths: ['/etc/hostname'], target: out };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, target: 'malformed' }, /"target" must be an absolute path/],
      [{ ...base, paths: ['/etc/\0hostname'] }, /NUL/],
      [{ ...base, paths: Array.from({ length: MAX_RESTORE_PATHS + 1 }, () => '/etc/hostname') }, /1 to 10000 paths/],
      [{ ...base, paths: ['../../etc/hostname'] }, /'\.\.' is not allowed/],
    ];
    for (const [params, re] of cases) {
      const m = await h.call('restoreFiles', params);
      assert.equal(m.type, 'error', JSON.stringify(m).slice(0, 300));
      assert.equal(m.error.code, 'USAGE');
      assert.match(m.error.message, re);
    }
    assert.deepEqual(fs.readdirSync(out), []);
    // Still serving.
    const ok = await h.call('restoreFiles', { ...base, dryRun: true });
    assert.equal(ok.type, 'result', JSON.stringify(ok));
  });
});
