// The elevated helper must not hand out root through the user's repository (issue 10, "The elevated
// helper lets a local user act as root"), tested the way it was found: a second, unprivileged user
// (devsnap-test-user) drives a real helper, while a process of that user swaps folders of the
// repository for symbolic links to a root-owned folder, or has planted such links beforehand.
// Nothing may appear in, or change in, the root-owned folder; what the helper writes into a user's
// repository belongs to the user because the helper writes it with the user's rights (not because it
// chowns it afterwards). Root-owned repositories are used only where nobody but root can change them.
// Runs as root.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { withIdentity, userIdentity } from '../../../imaging/helper/identity';
import { collectInventory } from '../../../imaging/inventory/inventory';
import { childCommand } from '../../../imaging/disk/privilege';
import { RPC_LOG } from '../../../imaging/protocol';
import { attachLoop, cleanup, isRoot, sh, tmpDir, withMount } from '../../helpers/disks';
import { CLI, ensureUser, HelperRun, launchHelper, removeCreatedUsers } from './helper-harness';

const skip = isRoot ? false : 'needs root (the helper runs as root)';
const TEST_USER = 'devsnap-test-user';
const MiB = 1 << 20;
/** Names of root's files in root's folder, which the user also gives files of their own. */
const ROOT_NAMES = Array.from({ length: 200 }, (_, i) => `secret-${i}`);

after(async () => {
  cleanup();
  removeCreatedUsers();
});

/** Every path under `dir` (not following links) with its owner, for "nothing of root's changed" checks. */
function snapshotTree(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      const st = fs.lstatSync(p);
      out.push(
        `${path.relative(dir, p)} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16) : ''}`,
      );
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join('\n');
}

/** Paths under `dir` (not following links) not owned by `uid`. */
function notOwnedBy(dir: string, uid: number): string[] {
  const bad: string[] = [];
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      const st = fs.lstatSync(p);
      if (st.uid !== uid) bad.push(`${p} (uid ${st.uid})`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return bad;
}

/**
 * A process of the test user that swaps each of `dirs` (paths in the repository) for a symbolic link
 * to `to` and back, as fast as it can, until killed. Every swap is a pair of renames, so the folder is
 * always either the real one or the link.
 */
function startSwapper(dirs: string[], to: string, uid: number, gid: number): ChildProcess {
  const script = `
    const fs = require('fs');
    const dirs = JSON.parse(process.argv[1]);
    for (const d of dirs) { try { fs.symlinkSync(process.argv[2], d + '.link'); } catch {} }
    process.stdout.write('ready\\n');
    for (;;) {
      for (const d of dirs) {
        try { fs.renameSync(d, d + '.real'); fs.renameSync(d + '.link', d); } catch {}
      }
      for (const d of dirs) {
        try { fs.renameSync(d, d + '.link'); fs.renameSync(d + '.real', d); } catch {}
      }
    }`;
  // Started as the user directly (not through runuser), so that killing it stops the loop itself;
  // given a higher priority, as an attacker with a core of their own, so the swaps go on while other
  // work loads the machine.
  const p = spawn(process.execPath, ['-e', script, JSON.stringify(dirs), to], { uid, gid, stdio: ['ignore', 'pipe', 'inherit'] });
  sh('renice', ['-n', '-5', '-p', String(p.pid)], { allowFail: true });
  return p;
}

async function stopSwapper(p: ChildProcess, dirs: string[]): Promise<void> {
  const exited = new Promise((r) => p.once('close', r));
  p.kill('SIGKILL');
  await exited;
  // Put every folder back (the swapper may have been killed between its two renames).
  for (const d of dirs) {
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) fs.rmSync(d);
    if (!fs.existsSync(d) && fs.existsSync(d + '.real')) fs.renameSync(d + '.real', d);
    fs.rmSync(d + '.link', { force: true });
  }
}

const ready = (p: ChildProcess) => new Promise<void>((resolve) => p.stdout!.once('data', () => resolve()));

describe("helper: the repository side runs with the user's rights (real helper, second user)", { skip }, () => {
  let uid: number;
  let gid: number;
  let work: string;
  let rootDir: string;
  let rootDirBefore: string;
  let loop: string;
  let h: HelperRun;

  /** A folder of the test user's in the (root-owned) work folder. */
  const userDir = (name: string): string => {
    const d = path.join(work, name);
    fs.mkdirSync(d);
    fs.chownSync(d, uid, gid);
    return d;
  };
  /** A repository owned by the test user, made as that user. */
  const userRepo = (name: string): string => {
    const repo = path.join(userDir(name), 'repo');
    sh('runuser', ['-u', TEST_USER, '--', process.execPath, CLI, 'init', '--repo', repo, '--json']);
    return repo;
  };
  /** New content on the source disk, so that the next snapshot writes a new pack. */
  const freshData = () => {
    const fd = fs.openSync(loop, 'r+');
    try {
      fs.writeSync(fd, crypto.randomBytes(MiB), 0, MiB, 0);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  const asUser = (...args: string[]) => sh('runuser', ['-u', TEST_USER, '--', ...args], { allowFail: true });

  before(async () => {
    uid = ensureUser(TEST_USER);
    gid = Number(sh('id', ['-g', TEST_USER]).stdout.trim());
    work = tmpDir('devsnap-helperraces-');
    fs.chmodSync(work, 0o755);
    // Root's private folder with a secret: what a successful attack would reach.
    rootDir = path.join(work, 'root-private');
    fs.mkdirSync(rootDir, { mode: 0o700 });
    fs.writeFileSync(path.join(rootDir, 'secret.txt'), 'root only\n', { mode: 0o600 });
    for (const n of ROOT_NAMES) fs.writeFileSync(path.join(rootDir, n), 'root only\n', { mode: 0o600 });
    rootDirBefore = snapshotTree(rootDir);
    const img = path.join(work, 'source.img');
    fs.writeFileSync(img, crypto.randomBytes(2 * MiB));
    loop = attachLoop(img);
    h = await launchHelper({
      uid,
      prepare: (p) => {
        fs.chownSync(p.dir, uid, gid);
        fs.chownSync(p.secretFile, uid, gid);
        fs.chownSync(p.socketPath, uid, gid);
      },
    });
    assert.ok(h.sock, h.stderr());
  });
  after(async () => {
    await h?.close();
  });

  it("a folder swapped for a link to a root-owned folder during listSnapshots requests: root's file stays root's", async () => {
    const repo = userRepo('repo-list');
    // A folder whose entries have the names of root's files: a walk that trusts a name it listed in
    // the real folder reaches root's file through the link once the folder is swapped.
    const d = path.join(repo, 'data', '00');
    asUser('mkdir', '-p', d);
    asUser('touch', ...ROOT_NAMES.map((n) => path.join(d, n)));
    const swapped = [d];
    const swapper = startSwapper(swapped, rootDir, uid, gid);
    await ready(swapper);
    try {
      for (let i = 0; i < 300; i++) {
        const r = await h.call('listSnapshots', { repo });
        assert.ok(r.type === 'result' || r.type === 'error', JSON.stringify(r));
        if (r.type === 'error') assert.notEqual(r.error.code, 'INTERNAL', JSON.stringify(r));
        assert.equal(snapshotTree(rootDir), rootDirBefore, `after ${i + 1} requests, root's folder changed`);
      }
    } finally {
      await stopSwapper(swapper, swapped);
    }
    assert.deepEqual(notOwnedBy(repo, uid), []);
  });

  it('folders swapped for links during snapshot requests: nothing is written into the root-owned folder', async () => {
    const repo = userRepo('repo-snap');
    const swapped = ['data', 'index', 'snapshots'].map((n) => path.join(repo, n));
    const SNAPSHOTS = 80;
    const swapper = startSwapper(swapped, rootDir, uid, gid);
    await ready(swapper);
    let ok = 0;
    const errors = new Set<string>();
    try {
      for (let i = 0; i < SNAPSHOTS; i++) {
        freshData();
        const r = await h.call('snapshot', { repo, source: loop, label: `race ${i}` });
        if (r.type === 'result') ok++;
        else {
          assert.notEqual(r.error.code, 'INTERNAL', JSON.stringify(r));
          errors.add(`${r.error.code}: ${r.error.message.replace(/\/tmp\/\S+/g, 'PATH')}`);
        }
        assert.equal(snapshotTree(rootDir), rootDirBefore, `after ${i + 1} snapshots, root's folder changed`);
      }
    } finally {
      await stopSwapper(swapper, swapped);
    }
    // Whatever was written is the user's, and the repository is consistent.
    assert.deepEqual(notOwnedBy(repo, uid), []);
    const check = await h.call('check', { repo });
    assert.equal(check.type, 'result', JSON.stringify(check));
    process.stdout.write(`# ${ok} of ${SNAPSHOTS} snapshots succeeded while the folders were being swapped; the others: ${[...errors].join(' | ')}\n`);
  });

  it('links planted in data/00 … data/ff, index/, snapshots/ and locks/ lead nowhere the user could not write', async () => {
    const repo = userRepo('repo-planted');
    const plant = (link: string) => {
      fs.symlinkSync(rootDir, link);
      fs.lchownSync(link, uid, gid); // the user's own link, as if the user had made it
    };
    for (let i = 0; i < 256; i++) plant(path.join(repo, 'data', i.toString(16).padStart(2, '0')));
    freshData();
    let r = await h.call('snapshot', { repo, source: loop });
    assert.equal(r.type, 'error', JSON.stringify(r));
    assert.equal(r.error.code, 'PERMISSION', JSON.stringify(r));
    assert.match(r.error.message, /with your own rights/);
    assert.match(r.error.hint, /chown -R/);
    assert.equal(snapshotTree(rootDir), rootDirBefore, "a pack was written into root's folder");
    for (const sub of ['index', 'snapshots', 'locks']) {
      const repo2 = userRepo(`repo-planted-${sub}`);
      fs.rmSync(path.join(repo2, sub), { recursive: true });
      plant(path.join(repo2, sub));
      freshData();
      r = await h.call('snapshot', { repo: repo2, source: loop });
      assert.equal(r.type, 'error', `${sub}: ${JSON.stringify(r)}`);
      assert.equal(r.error.code, 'PERMISSION', `${sub}: ${JSON.stringify(r)}`);
      assert.equal(snapshotTree(rootDir), rootDirBefore, `${sub}: root's folder changed`);
    }
    // A link to a folder the user may write to is the user's business: it works, as it would for them.
    const repo3 = userRepo('repo-linked-index');
    const elsewhere = userDir('user-index');
    fs.rmSync(path.join(repo3, 'index'), { recursive: true });
    asUser('ln', '-s', elsewhere, path.join(repo3, 'index'));
    freshData();
    r = await h.call('snapshot', { repo: repo3, source: loop });
    assert.equal(r.type, 'result', JSON.stringify(r));
    assert.equal(fs.readdirSync(elsewhere).length, 1);
    assert.deepEqual(notOwnedBy(repo3, uid), []);
    assert.deepEqual(notOwnedBy(elsewhere, uid), []);
  });

  it('a new repository and a restored image file are created by the user, not by root', async () => {
    const parent = userDir('new-parent');
    const repo = path.join(parent, 'new-repo');
    freshData();
    const r = await h.call('snapshot', { repo, source: loop });
    assert.equal(r.type, 'result', JSON.stringify(r));
    assert.deepEqual(notOwnedBy(repo, uid), []);
    const out = userDir('user-out');
    const img = path.join(out, 'restored.img');
    const res = await h.call('restore', { repo, snapshot: r.result.id, target: img, confirmed: true });
    assert.equal(res.type, 'result', JSON.stringify(res));
    assert.equal(fs.statSync(img).uid, uid);
    assert.deepEqual(notOwnedBy(out, uid), []);
    // Onto a block device: opened as root (the one root step), the repository read with the user's rights.
    const targetImg = path.join(work, 'target-disk.img');
    fs.writeFileSync(targetImg, Buffer.alloc(2 * MiB));
    const target = attachLoop(targetImg);
    const dev = await h.call('restore', { repo, snapshot: r.result.id, target, confirmed: true });
    assert.equal(dev.type, 'result', JSON.stringify(dev));
    assert.ok(fs.readFileSync(targetImg).equals(fs.readFileSync(img)), 'the device holds the snapshot');
  });

  it("the root-needing steps still work for the user: fsfreeze of a mounted source, whose snapshot is the user's", async () => {
    const img = path.join(work, 'mounted.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 8 * MiB);
    sh('mkfs.ext4', ['-q', img]);
    const dev = attachLoop(img);
    const repo = userRepo('repo-freeze');
    await withMount(dev, 'ext', {}, async (mnt) => {
      fs.writeFileSync(path.join(mnt, 'file.txt'), 'hello\n');
      const r = await h.call('snapshot', { repo, source: dev, freeze: true });
      assert.equal(r.type, 'result', JSON.stringify(r));
      assert.equal(r.result.snapshot.consistency, 'frozen');
      fs.writeFileSync(path.join(mnt, 'after.txt'), 'thawed\n'); // would hang if still frozen
    });
    assert.deepEqual(notOwnedBy(repo, uid), []);
  });

  it('serves one request at a time: a later one waits (and says so); one cancelled while waiting never runs', async () => {
    const repo = userRepo('repo-serial');
    freshData();
    h.request('snapshot', { repo, source: loop }, 'serial-snap');
    h.request('listSnapshots', { repo }, 'serial-list');
    h.request('listSnapshots', { repo }, 'serial-list2');
    h.cancel('serial-list2');
    const snap = await h.outcome('serial-snap');
    const list = await h.outcome('serial-list');
    const list2 = await h.outcome('serial-list2');
    assert.equal(snap.type, 'result', JSON.stringify(snap));
    // Ran after the snapshot was committed, not beside it.
    assert.deepEqual(
      list.result.snapshots.map((x: { id: string }) => x.id),
      [snap.result.id],
    );
    const answered = (id: string) => h.messages.findIndex((m) => m.id === id && ('result' in m || 'error' in m));
    assert.ok(answered('serial-snap') < answered('serial-list'));
    assert.ok(h.messages.some((m) => m.method === RPC_LOG && m.params.token === 'serial-list' && /Waiting for the helper's 1 earlier request/.test(m.params.message)));
    assert.equal(list2.error?.code, 'CANCELLED', JSON.stringify(list2));
    assert.match(list2.error.message, /cancelled before it started; nothing was changed/);
  });

  it('a root-owned repository is used only where nobody but root can change it', async () => {
    // Trusted: every folder on the way and in it is root's and writable by root only.
    const trusted = path.join(work, 'root-repo');
    sh(process.execPath, [CLI, 'init', '--repo', trusted, '--json']);
    freshData();
    let r = await h.call('snapshot', { repo: trusted, source: loop, allowRootRepository: true });
    assert.equal(r.type, 'result', JSON.stringify(r));
    r = await h.call('listSnapshots', { repo: trusted, allowRootRepository: true });
    assert.equal(r.result.snapshots.length, 1, JSON.stringify(r));
    // In a folder of the user's: the user could swap the repository for another folder.
    const userFolder = userDir('user-folder');
    const inUserFolder = path.join(userFolder, 'root-repo');
    sh(process.execPath, [CLI, 'init', '--repo', inUserFolder, '--json']);
    r = await h.call('listSnapshots', { repo: inUserFolder, allowRootRepository: true });
    assert.equal(r.type, 'error', JSON.stringify(r));
    assert.equal(r.error.code, 'PERMISSION');
    assert.match(r.error.message, new RegExp(`${userFolder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .*uid ${uid}`));
    // A folder inside it that the user owns (or may write to): refused too.
    fs.chownSync(path.join(trusted, 'index'), uid, gid);
    r = await h.call('listSnapshots', { repo: trusted, allowRootRepository: true });
    assert.equal(r.error?.code, 'PERMISSION', JSON.stringify(r));
    assert.match(r.error.message, /index/);
    fs.chownSync(path.join(trusted, 'index'), 0, 0);
    fs.chmodSync(path.join(trusted, 'snapshots'), 0o777);
    r = await h.call('listSnapshots', { repo: trusted, allowRootRepository: true });
    assert.equal(r.error?.code, 'PERMISSION', JSON.stringify(r));
    assert.match(r.error.message, /snapshots.*writable/);
  });
});

describe("helper: children spawned in the user window have only the user's rights", { skip }, () => {
  // Only the effective ids are the user's in that window (helper/identity.ts): a plain child keeps
  // real and saved uid 0 and can become root again; childCommand's children cannot.
  const runChild = (cmd: string, args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const c = childCommand(cmd, args);
      execFile(c.file, c.args, { env: c.env }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)));
    });

  it("a child runs with the user's real, effective and saved ids and a clean PATH", async () => {
    const uid = ensureUser(TEST_USER);
    const gid = Number(sh('id', ['-g', TEST_USER]).stdout.trim());
    const out = await withIdentity(userIdentity(uid, gid), () => runChild('sh', ['-c', 'grep -E "^(Uid|Gid):" /proc/self/status; echo "PATH=$PATH"']));
    const ids = (k: string) => new RegExp(`^${k}:\\s+(.*)$`, 'm').exec(out)?.[1].trim().split(/\s+/).slice(0, 3).map(Number);
    assert.deepEqual(ids('Uid'), [uid, uid, uid], out);
    assert.deepEqual(ids('Gid'), [gid, gid, gid], out);
    assert.match(out, /^PATH=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m);
    assert.equal(process.geteuid!(), 0, 'back to root after the window');
    // Outside the window children are as before: root's.
    assert.match(await runChild('id', ['-ru']), /^0$/m);
  });

  it('the live inventory still runs its tools in the user window', async () => {
    const uid = ensureUser(TEST_USER);
    const gid = Number(sh('id', ['-g', TEST_USER]).stdout.trim());
    const inv = await withIdentity(userIdentity(uid, gid), () => collectInventory('live'));
    assert.ok(
      inv.toolchains.some((t) => t.name === 'node'),
      JSON.stringify(inv.toolchains),
    );
  });
});
