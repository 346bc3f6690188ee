// diffFiles on real snapshots before and after a simulated upgrade: the changed paths must be exactly the
// lines that differ between treeDigest()s of the mounted filesystem before and after.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, makeWorkstationTree, simulateUpgrade, tmpDir, treeDigest, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { openSnapshotFs } from '../../../imaging/files/open';
import { Repository } from '../../../imaging/repo/repository';
import { diffFiles, diffPage, FileChange, summarizeByDirectory } from '../../../imaging/files/file-diff';
import { WorkerPool } from '../../../imaging/repo/worker-pool';

after(cleanup);
const MiB = 1 << 20;

function digestMap(d: string): Map<string, string> {
  return new Map(
    d
      .trim()
      .split('\n')
      .map((l) => [l.split('\t')[0], l]),
  );
}

test('simulated upgrade: diffFiles lists exactly the paths whose treeDigest line changed', { skip: !isRoot && 'needs root (mounts to simulate the upgrade)' }, async () => {
  const dir = tmpDir();
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 4 * MiB });
  const disk = path.join(dir, 'disk.img');
  const repoDir = path.join(dir, 'repo');
  const layout = await makeDisk(disk, {
    table: 'gpt',
    size: 64 * MiB,
    partitions: [
      { size: 8 * MiB, fs: 'vfat' },
      { fs: 'ext4', fromDir: tree },
    ],
  });
  const mountRoot = (fn: (mnt: string) => void | Promise<void>) => withLoop(disk, { offset: layout[1].start, sizeLimit: layout[1].size }, (dev) => withMount(dev, 'ext', {}, fn));
  let before = '';
  await mountRoot((mnt) => {
    before = treeDigest(mnt);
  });
  const s1 = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
  assert.equal(s1.status, 0, s1.stderr);
  await new Promise((r) => setTimeout(r, 1100)); // new mtimes differ from the old ones in whole seconds
  let after_ = '';
  await mountRoot((mnt) => {
    simulateUpgrade(mnt, 0.1);
    fs.chmodSync(path.join(mnt, 'etc/hostname'), 0o600); // metadata only
    fs.symlinkSync('elsewhere', path.join(mnt, 'usr/bin/tool-link2'));
    fs.rmSync(path.join(mnt, 'usr/bin/tool-link'));
    fs.symlinkSync('tool-2.1', path.join(mnt, 'usr/bin/tool-link')); // target changed
    fs.mkdirSync(path.join(mnt, 'opt/new/deep'), { recursive: true });
    fs.writeFileSync(path.join(mnt, 'opt/new/deep/file'), 'new');
    after_ = treeDigest(mnt);
  });
  const s2 = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
  assert.equal(s2.status, 0, s2.stderr);

  const A = digestMap(before);
  const B = digestMap(after_);
  const expected = new Map<string, string>();
  for (const [p, l] of A) expected.set(p, !B.has(p) ? 'removed' : B.get(p) !== l ? 'changed' : '');
  for (const [p] of B) if (!A.has(p)) expected.set(p, 'added');
  for (const [p, v] of [...expected]) if (!v) expected.delete(p);

  const repo = await Repository.open(repoDir, {}, () => undefined);
  await repo.loadIndex();
  const pool = new WorkerPool(2);
  try {
    const fa = await openSnapshotFs(repo, await repo.readManifest(s1.json.id), undefined, { pool });
    const fb = await openSnapshotFs(repo, await repo.readManifest(s2.json.id), undefined, { pool });
    const got = new Map<string, FileChange>();
    for await (const c of diffFiles(fa.fs, fb.fs, { exclude: (p) => p === '/lost+found' })) {
      assert.ok(!got.has(c.path), `reported once: ${c.path}`);
      got.set(c.path.slice(1), c);
    }
    const extra = [...got.keys()].filter((p) => !expected.has(p));
    const missing = [...expected.keys()].filter((p) => !got.has(p));
    assert.deepEqual({ extra, missing }, { extra: [], missing: [] });
    for (const [p, kind] of expected) {
      const c = got.get(p)!;
      if (kind === 'added' || kind === 'removed') assert.equal(c.change, kind, p);
      else assert.ok(c.change === 'modified' || c.change === 'metadata', `${p}: ${c.change}`);
    }
    assert.equal(got.get('etc/hostname')!.change, 'metadata');
    assert.deepEqual(got.get('etc/hostname')!.detail, ['mode']);
    assert.equal(got.get('usr/bin/tool-link')!.change, 'modified');
    assert.deepEqual(got.get('usr/bin/tool-link')!.detail.includes('target'), true);
    assert.equal(got.get('var/lib/dpkg/status')!.change, 'modified');
    assert.equal(got.get('opt/new/deep/file')!.change, 'added');
    assert.equal(got.get('opt/new/deep/file')!.sizeAfter, 3);
    // content changes keep mtime order: every modified regular file really differs in content
    for (const c of got.values()) if (c.change === 'modified' && c.type === 'file') assert.ok(c.detail.includes('content'));

    // paging and totals
    const all = [...got.values()];
    const page = await diffPage(fa.fs, fb.fs, { offset: 5, limit: 7, exclude: (p) => p === '/lost+found' });
    assert.equal(page.total, all.length);
    assert.equal(page.changes.length, 7);
    assert.deepEqual(
      page.changes.map((c) => c.path.slice(1)),
      [...got.keys()].slice(5, 12),
    );
    assert.equal(page.totals.added + page.totals.removed + page.totals.modified + page.totals.metadata, all.length);
    assert.equal(page.totals.added, all.filter((c) => c.change === 'added').length);
    // a subtree only
    const sub = await diffPage(fa.fs, fb.fs, { root: '/usr/bin' });
    assert.deepEqual(
      sub.changes.map((c) => c.path).sort(),
      all
        .map((c) => c.path)
        .filter((p) => p === '/usr/bin' || p.startsWith('/usr/bin/'))
        .sort(),
    );
    // grouping
    const groups = summarizeByDirectory(all, 2);
    assert.ok(groups.some((g) => g.dir === '/usr/lib' && g.added > 0));
    assert.equal(
      groups.reduce((n, g) => n + g.added + g.removed + g.modified + g.metadata, 0),
      all.length,
    );
    // deep mode finds nothing more on files whose mtime did not change
    const deep = await diffPage(fa.fs, fb.fs, { deep: true, limit: 0, exclude: (p) => p === '/lost+found' });
    assert.equal(deep.total, all.length);
    // identical snapshots: no changes
    assert.equal((await diffPage(fa.fs, fa.fs, {})).total, 0);
  } finally {
    await pool.close();
    await repo.close();
  }
});
