// restoreFiles from a real snapshot: a restored folder equals the source subtree (owners, modes, times,
// xattrs, symlinks, hard links, sparse files via treeDigest); a dry run writes nothing; a second run finds
// everything unchanged; in-place restores under a root; and the CLI commands (registerFileCommands).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { cleanup, diffDigests, isRoot, makeDisk, makeWorkstationTree, sh, tmpDir, treeDigest } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { openSnapshotFs, OpenedSnapshotFs } from '../../../imaging/files/open';
import { Repository } from '../../../imaging/repo/repository';
import { restoreFiles } from '../../../imaging/files/file-restore';
import { registerFileCommands } from '../../../imaging/cli-files';

after(cleanup);
const MiB = 1 << 20;

const work = tmpDir('devsnap-restore-');
const tree = path.join(work, 'tree');
makeWorkstationTree(tree, { scale: 3 * MiB });
sh('setfattr', ['-n', 'user.dir', '-v', 'on a dir', path.join(tree, 'home/dev/project')]);
// A POSIX ACL (user 1234: r--) as the kernel's xattr: version 2, then (tag, perm, id) entries.
const acl = (entries: [number, number, number][]) =>
  Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    ...entries.map(([tag, perm, id]) => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(tag, 0);
      b.writeUInt16LE(perm, 2);
      b.writeUInt32LE(id >>> 0, 4);
      return b;
    }),
  ]);
sh('setfattr', [
  '-n',
  'system.posix_acl_access',
  '-v',
  '0x' +
    acl([
      [1, 7, -1],
      [2, 4, 1234],
      [4, 5, -1],
      [0x10, 5, -1],
      [0x20, 5, -1],
    ]).toString('hex'),
  path.join(tree, 'usr/bin/tool'),
]);
const disk = path.join(work, 'disk.img');
const repoDir = path.join(work, 'repo');
let snapId = '';

async function withFs<T>(fn: (o: OpenedSnapshotFs) => Promise<T>): Promise<T> {
  if (!snapId) {
    await makeDisk(disk, {
      table: 'gpt',
      size: 48 * MiB,
      partitions: [
        { size: 4 * MiB, fs: 'vfat' },
        { fs: 'ext4', fromDir: tree },
      ],
    });
    const s = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
    assert.equal(s.status, 0, s.stderr);
    snapId = s.json.id;
  }
  const repo = await Repository.open(repoDir, {}, () => undefined);
  await repo.loadIndex();
  const o = await openSnapshotFs(repo, await repo.readManifest(snapId));
  try {
    return await fn(o);
  } finally {
    await o.close();
    await repo.close();
  }
}

const fields = isRoot ? undefined : (['mode', 'mtime', 'xattrs', 'links', 'dirs'] as const);

test('restore folders to another folder: equal to the source subtrees; dry runs write nothing', async () => {
  await withFs(async ({ fs: ifs }) => {
    const out = tmpDir();
    const dry = await restoreFiles(ifs, ['/home/dev/project', '/usr/bin'], out, { dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(fs.readdirSync(out), [], 'a dry run writes nothing');
    assert.equal(dry.totals.create, dry.entries.length);
    assert.ok(dry.entries.some((e) => e.dest === path.join(out, 'bin', 'devsnap-suid') && e.action === 'create'));
    assert.ok(dry.bytesToWrite > 0);

    const r = await restoreFiles(ifs, ['/home/dev/project', '/usr/bin'], out, {});
    assert.equal(r.totals.create, dry.totals.create);
    assert.deepEqual(r.warnings, []);
    const opts = { fields: fields ? [...fields] : undefined };
    assert.equal(diffDigests(treeDigest(path.join(tree, 'home/dev/project'), opts), treeDigest(path.join(out, 'project'), opts)), '');
    assert.equal(diffDigests(treeDigest(path.join(tree, 'usr/bin'), opts), treeDigest(path.join(out, 'bin'), opts)), '');
    // the top folders themselves: mode, owner, times, xattrs
    const top = fs.statSync(path.join(out, 'project'));
    const src = fs.statSync(path.join(tree, 'home/dev/project'));
    assert.equal(top.mode, src.mode);
    assert.equal(Math.floor(top.mtimeMs / 1000), Math.floor(src.mtimeMs / 1000));
    assert.match(sh('getfattr', ['-n', 'user.dir', '--only-values', path.join(out, 'project')]).stdout, /on a dir/);
    if (isRoot) assert.equal(`${top.uid}:${top.gid}`, '1000:1000');
    assert.equal(fs.statSync(path.join(out, 'bin/tool')).ino, fs.statSync(path.join(out, 'bin/tool-2.1')).ino, 'hard links stay linked');
    assert.equal(fs.statSync(path.join(out, 'bin/devsnap-suid')).mode & 0o7777, 0o4755);
    assert.equal(fs.readdirSync(path.join(out, 'bin')).filter((n) => n.endsWith('.tmp')).length, 0, 'no temporary files left');

    // again: all unchanged, nothing to write
    const again = await restoreFiles(ifs, ['/home/dev/project', '/usr/bin'], out, { dryRun: true });
    assert.equal(again.totals.unchanged, again.entries.length, JSON.stringify(again.entries.filter((e) => e.action !== 'unchanged').slice(0, 3)));
    // a broken file is found and replaced
    fs.writeFileSync(path.join(out, 'project/README.md'), 'broken');
    fs.rmSync(path.join(out, 'bin/tool-link'));
    const fix = await restoreFiles(ifs, ['/home/dev/project', '/usr/bin'], out, { dryRun: true });
    assert.deepEqual(
      fix.entries
        .filter((e) => e.action !== 'unchanged')
        .map((e) => [e.path, e.action])
        .filter(([p]) => !p.endsWith('/project') && !p.endsWith('/bin')),
      [
        ['/home/dev/project/README.md', 'replace'],
        ['/usr/bin/tool-link', 'create'],
      ],
    );
    await restoreFiles(ifs, ['/home/dev/project', '/usr/bin'], out, {});
    assert.equal(diffDigests(treeDigest(path.join(tree, 'home/dev/project'), opts), treeDigest(path.join(out, 'project'), opts)), '');
    assert.equal(fs.readlinkSync(path.join(out, 'bin/tool-link')), 'tool');
  });
});

test('restore in place under a root; a sparse file stays sparse; a directory in the way is a conflict', async () => {
  await withFs(async ({ fs: ifs }) => {
    const root = tmpDir();
    const r = await restoreFiles(ifs, ['/etc', '/home/dev/vm/disk.raw', '/etc/hostname'], root, { inPlace: true });
    assert.ok(r.inPlace);
    const opts = { fields: fields ? [...fields] : undefined };
    assert.equal(diffDigests(treeDigest(path.join(tree, 'etc'), opts), treeDigest(path.join(root, 'etc'), opts)), '');
    const vm = path.join(root, 'home/dev/vm/disk.raw');
    assert.equal(fs.statSync(vm).size, fs.statSync(path.join(tree, 'home/dev/vm/disk.raw')).size);
    assert.ok(fs.statSync(vm).blocks * 512 < fs.statSync(vm).size / 4, 'holes are not written');
    assert.equal(sh('cmp', [vm, path.join(tree, 'home/dev/vm/disk.raw')], { allowFail: true }).status, 0);
    if (isRoot) assert.equal(fs.statSync(path.join(root, 'home/dev')).uid, 1000, 'missing parents take the snapshot owner in place');

    fs.rmSync(path.join(root, 'etc/hostname'));
    fs.mkdirSync(path.join(root, 'etc/hostname'));
    const c = await restoreFiles(ifs, ['/etc/hostname'], root, { inPlace: true });
    assert.equal(c.totals.conflict, 1);
    assert.ok(fs.statSync(path.join(root, 'etc/hostname')).isDirectory(), 'the directory in the way is left alone');
  });
});

test('CLI: ls, cat, inventory, restore-files --dry-run and changes through registerFileCommands', async () => {
  await withFs(async () => undefined); // make the snapshot
  const outputs: { json: unknown; human: string }[] = [];
  const stdout: Buffer[] = [];
  const program = new Command();
  program.exitOverride();
  program.option('--repo <dir>').option('--json');
  registerFileCommands(program, {
    withRepo: async (g, _exclusive, _purpose, fn) => {
      const repo = await Repository.open(g.repo ?? repoDir, {}, () => undefined);
      await repo.loadIndex();
      try {
        return await fn(repo);
      } finally {
        await repo.close();
      }
    },
    repoReq: (g) => ({ repo: g.repo ?? repoDir }),
    report: (_g, json, human) => outputs.push({ json, human: human() }),
    globals: (cmd) => cmd.optsWithGlobals(),
    progressSink: () => () => undefined,
    log: () => undefined,
    signal: new AbortController().signal,
    opContext: () => ({ log: () => undefined }),
  });
  const run = (args: string[]) => program.parseAsync(['node', 'devsnap', ...args, '--repo', repoDir]);

  await run(['ls', snapId, '/usr/bin']);
  const ls = outputs.pop()!;
  assert.match(ls.human, /^-rwsr-xr-x .* devsnap-suid$/m);
  assert.match(ls.human, /tool-link -> tool$/m);
  assert.equal((ls.json as { partition: number }).partition, 2);

  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: Buffer) => (stdout.push(Buffer.from(chunk)), true)) as typeof process.stdout.write;
  try {
    await run(['cat', snapId.slice(0, 6), '/etc/hostname']);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(Buffer.concat(stdout).toString(), 'devbox\n');

  await run(['inventory', snapId]);
  const inv = outputs.pop()!;
  assert.match(inv.human, /Debian GNU\/Linux 12/);
  assert.ok((inv.json as { packages: unknown[] }).packages.length >= 50);

  const to = tmpDir();
  await run(['restore-files', snapId, '/etc/apt', '--to', to, '--dry-run']);
  const dry = outputs.pop()!;
  assert.match(dry.human, /Would restore .*: 2 created/);
  assert.deepEqual(fs.readdirSync(to), []);

  await run(['changes', snapId, snapId, '--limit', '5']);
  const ch = outputs.pop()! as { json: { files: { total: number }; inventory: { packages: { upgraded: unknown[] } } } };
  assert.equal(ch.json.files.total, 0);
  assert.equal(ch.json.inventory.packages.upgraded.length, 0);
});
