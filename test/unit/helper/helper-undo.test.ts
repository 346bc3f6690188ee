// Undoing an upgrade through the elevated helper, for a user who is not root, on a mounted ext4 whose
// files are root's (standing in for '/'), from the user's own repository: a real undo needs the
// user's confirmation, and the helper writes and removes as root only through folders the user
// cannot change (a folder of the user's on the way is refused before anything is changed).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup, isRoot, makeDisk, sh, tmpDir, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { ensureUser, launchHelperFor } from './helper-harness';

after(cleanup);
const skip = isRoot ? false : 'needs root (the helper runs as root)';
const TEST_USER = 'devsnap-test-user';
const MiB = 1 << 20;

describe('helper undo (real helper process, second user)', { skip }, () => {
  it('refuses without confirmation and through a folder of the user, then puts the upgrade back with root owners', async () => {
    const uid = ensureUser(TEST_USER);
    const work = tmpDir('devsnap-helperundo-');
    fs.chmodSync(work, 0o755);
    const tree = path.join(work, 'tree');
    const mk = (rel: string, content: string, mode: number) => {
      const f = path.join(tree, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, content);
      fs.chmodSync(f, mode);
    };
    mk('etc/hostname', 'before\n', 0o644);
    mk('etc/app/app.conf', 'level = 3\n', 0o640);
    mk('usr/bin/tool', '#!/bin/sh\necho 1\n', 0o755);
    fs.mkdirSync(path.join(tree, 'srv/drop'), { recursive: true });
    fs.chownSync(path.join(tree, 'srv/drop'), uid, uid); // a folder of the user's inside the system's tree
    const disk = path.join(work, 'disk.img');
    const repo = path.join(work, 'repo');
    const [part] = await makeDisk(disk, { table: 'gpt', size: 24 * MiB, partitions: [{ fs: 'ext4', fromDir: tree }] });
    const snapshot = () => {
      const s = devsnap(['snapshot', disk, '--repo', repo, '--json']);
      assert.equal(s.status, 0, s.stderr);
      return s.json.id as string;
    };
    await withLoop(disk, { offset: part.start, sizeLimit: part.size }, (dev) =>
      withMount(dev, 'ext', {}, async (mnt) => {
        fs.chmodSync(mnt, 0o755);
        const before = snapshot();
        // The upgrade.
        fs.writeFileSync(path.join(mnt, 'etc/hostname'), 'after\n');
        fs.writeFileSync(path.join(mnt, 'usr/bin/new-tool'), 'new\n');
        fs.rmSync(path.join(mnt, 'etc/app/app.conf'));
        fs.writeFileSync(path.join(mnt, 'srv/drop/payload'), 'added by the upgrade\n');
        const afterId = snapshot();
        sh('chown', ['-R', `${uid}:${uid}`, repo]);
        const h = await launchHelperFor(uid);
        try {
          assert.ok(h.sock, h.stderr());
          const base = { repo, before, after: afterId, target: mnt };
          const unchanged = () => assert.equal(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8'), 'after\n', 'nothing was changed');
          let m = await h.call('undo', base);
          assert.equal(m.error?.code, 'USAGE', JSON.stringify(m));
          assert.match(m.error.message, /does not say the user confirmed it/);
          unchanged();
          m = await h.call('undo', { ...base, deep: true, dryRun: true });
          assert.match(m.error?.message ?? '', /unknown field "deep"/);

          const dry = await h.call('undo', { ...base, dryRun: true });
          assert.equal(dry.type, 'result', JSON.stringify(dry));
          const action = (rel: string) => dry.result.entries.find((e: { path: string }) => e.path === rel)?.action;
          assert.equal(action('/etc/hostname'), 'restore');
          assert.equal(action('/usr/bin/new-tool'), 'remove');
          assert.equal(action('/srv/drop/payload'), 'remove');
          unchanged();

          // The user could swap srv/drop for a link between the check and the removal: refused, nothing changed.
          m = await h.call('undo', { ...base, confirmed: true });
          assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
          assert.match(m.error.message, new RegExp(`${path.join(mnt, 'srv/drop')} belongs to uid ${uid}`));
          unchanged();
          assert.ok(fs.existsSync(path.join(mnt, 'usr/bin/new-tool')));

          const real = await h.call('undo', { ...base, confirmed: true, exclude: ['/srv/drop'] });
          assert.equal(real.type, 'result', JSON.stringify(real));
          assert.equal(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8'), 'before\n');
          assert.equal(fs.existsSync(path.join(mnt, 'usr/bin/new-tool')), false);
          const conf = fs.statSync(path.join(mnt, 'etc/app/app.conf'));
          assert.equal(`${conf.uid}:${conf.mode & 0o7777}`, `0:${0o640}`, "put back with the snapshot's owner and mode");
          assert.equal(fs.readFileSync(path.join(mnt, 'srv/drop/payload'), 'utf8'), 'added by the upgrade\n', 'the excluded folder is left as it is');
        } finally {
          await h.close();
        }
      }),
    );
  });
});
