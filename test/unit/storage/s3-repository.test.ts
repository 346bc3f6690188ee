// A repository in a bucket on a real Ceph radosgw (issue 13), through the CLI as a user runs it:
// `--repo s3:http://host:port/bucket/prefix`, credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
// The first snapshot of the demo disk creates the bucket; the snapshot restores byte-identically,
// verifies and checks; an incremental, forget and prune work there as in a folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, tmpDir, writeAt } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { Ceph, cephSkip, startCeph } from '../../helpers/ceph';
import { S3Storage } from '../../../imaging/storage/s3';

after(cleanup);
const ROOT = path.join(__dirname, '..', '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { makeDemoDisk } = require(path.join(ROOT, 'test', 'host', 'fixture.js'));

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('a repository in a bucket on Ceph radosgw', { skip: cephSkip }, () => {
  let ceph: Ceph;
  let dir = '';
  let disk = '';
  before(
    async () => {
      ceph = await startCeph(1);
      dir = tmpDir('devsnap-s3repo-');
      disk = await makeDemoDisk(path.join(dir, 'disk.img'));
    },
    { timeout: 700_000 },
  );
  after(() => ceph?.stop());

  const cli = (args: string[], env: Record<string, string> = {}) => devsnap(args, { ...ceph.env, ...env }, 600_000);

  test('the demo disk into a new bucket: restored byte-identically, verified, checked; an incremental, forget and prune', { timeout: 900_000 }, async () => {
    const repo = `s3:${ceph.endpoint}/team-snapshots/workstations`;
    const first = cli(['snapshot', disk, '--repo', repo, '--label', 'before', '--json']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /Created the bucket/);

    const l = cli(['list', '--repo', repo, '--json']);
    assert.equal(l.status, 0, l.stderr);
    assert.deepEqual(
      l.json.snapshots.map((s: { label: string }) => s.label),
      ['before'],
    );
    assert.ok(l.json.snapshots[0].host, 'the snapshot names its host');

    const target = path.join(dir, 'restored.img');
    fs.writeFileSync(target, '');
    fs.truncateSync(target, fs.statSync(disk).size);
    const r = cli(['restore', 'latest', target, '--repo', repo, '--yes']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha256(target), sha256(disk), 'the restored disk is byte-identical');
    const v = cli(['verify', 'latest', '--repo', repo]);
    assert.equal(v.status, 0, v.stderr);

    // What a team's bucket holds: no temporary names, the same object names as in a folder.
    const s3 = new S3Storage(repo, { credentials: ceph.credentials });
    try {
      const names: string[] = [];
      for await (const o of s3.list('')) names.push(o.name);
      assert.ok(names.includes('config.json'));
      assert.ok(names.some((n) => /^data\/[0-9a-f]{2}\/[0-9a-f]{32}\.pack$/.test(n)));
      assert.ok(names.some((n) => /^index\/[0-9a-f]{32}\.idx$/.test(n)));
      assert.ok(names.some((n) => /^snapshots\/[0-9a-f]{16}\.json$/.test(n)));
      assert.ok(names.some((n) => /^snapshots\/[0-9a-f]{16}\.summary$/.test(n)));
      assert.ok(!names.some((n) => n.startsWith('locks/')), `no lock is left: ${names.filter((n) => n.startsWith('locks/'))}`);
    } finally {
      s3.close();
    }

    // An incremental after a change in the root filesystem's data area, then forget and prune.
    writeAt(disk, 200 << 20, crypto.randomBytes(1 << 20));
    const second = cli(['snapshot', disk, '--repo', repo, '--label', 'after', '--json']);
    assert.equal(second.status, 0, second.stderr);
    const c = cli(['check', '--repo', repo, '--json']);
    assert.equal(c.status, 0, JSON.stringify(c.json));
    assert.equal(c.json.snapshots, 2);
    assert.equal(cli(['forget', 'label:before', '--repo', repo]).status, 0);
    const p = cli(['prune', '--repo', repo]);
    assert.equal(p.status, 0, p.stderr);
    const c2 = cli(['check', '--repo', repo, '--json']);
    assert.equal(c2.status, 0, JSON.stringify(c2.json));
    assert.equal(c2.json.snapshots, 1);
    const target2 = path.join(dir, 'restored2.img');
    fs.writeFileSync(target2, '');
    fs.truncateSync(target2, fs.statSync(disk).size);
    assert.equal(cli(['restore', 'latest', target2, '--repo', repo, '--yes']).status, 0);
    assert.equal(sha256(target2), sha256(disk), 'after prune, the newer snapshot still restores byte-identically');
  });

  test('an encrypted repository in a bucket; wrong keys are refused by name, with what to check', { timeout: 300_000 }, async () => {
    const repo = `s3:${ceph.endpoint}/team-snapshots/encrypted`;
    const pw = { DEVSNAP_PASSWORD: 'correct horse battery staple' };
    const init = cli(['init', '--repo', repo, '--encrypt'], pw);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(cli(['snapshot', disk, '--repo', repo], pw).status, 0);
    const wrongPw = cli(['list', '--repo', repo], { DEVSNAP_PASSWORD: 'wrong' });
    assert.equal(wrongPw.status, 3, wrongPw.stderr);
    const denied = cli(['list', '--repo', repo], { ...pw, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    assert.equal(denied.status, 6, denied.stderr);
    assert.match(denied.stderr, /AWS_ACCESS_KEY_ID/);
    assert.doesNotMatch(denied.stderr, /not-the-secret/, 'a secret never appears in messages');
    const v = cli(['verify', 'latest', '--repo', repo], pw);
    assert.equal(v.status, 0, v.stderr);
  });
});
