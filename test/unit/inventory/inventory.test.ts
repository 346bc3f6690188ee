// The environment inventory read from inside snapshots (no root needed to read), its diff after a simulated
// upgrade, and the live system's inventory.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, makeWorkstationTree, simulateUpgrade, tmpDir, withLoop, withMount, sh } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { openSnapshotFs } from '../../../imaging/files/open';
import { Repository } from '../../../imaging/repo/repository';
import { collectInventory, compareVersions, diffInventory, directoryRoot, parseDpkgStatus, describeInventoryDiff, bootModeFromPartitions } from '../../../imaging/inventory/inventory';

after(cleanup);
const MiB = 1 << 20;

function put(root: string, rel: string, data: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), data);
}

function devTools(root: string, v: { node: string; kernel: string; ext: string }): void {
  const [maj, min, pat] = v.node.split('.');
  put(root, 'usr/include/node/node_version.h', `#define NODE_MAJOR_VERSION ${maj}\n#define NODE_MINOR_VERSION ${min}\n#define NODE_PATCH_VERSION ${pat}\n`);
  put(root, 'usr/lib/node_modules/npm/package.json', JSON.stringify({ name: 'npm', version: '10.2.4' }));
  put(root, 'usr/lib/python3.11/os.py', '# os\n');
  put(root, 'usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA', 'Name: pip\n');
  put(root, 'usr/local/go/VERSION', 'go1.22.1\ntime 2024-03-01\n');
  put(root, 'usr/lib/gcc/x86_64-linux-gnu/12/cc1', 'x');
  put(root, 'usr/lib/jvm/java-17-openjdk-amd64/release', 'JAVA_VERSION="17.0.10"\n');
  put(
    root,
    'root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/multirust-channel-manifest.toml',
    '[pkg.cargo]\nversion = "1.76.0 (c84b36747 2024-01-18)"\n\n[pkg.rustc]\nversion = "1.76.0 (07dca489a 2024-02-04)"\n',
  );
  put(root, `boot/vmlinuz-${v.kernel}`, 'kernel');
  put(root, `usr/lib/modules/${v.kernel}/modules.dep`, '');
  if (!fs.existsSync(path.join(root, 'lib'))) fs.symlinkSync('usr/lib', path.join(root, 'lib')); // merged /usr
  put(
    root,
    'home/dev/.vscode/extensions/extensions.json',
    JSON.stringify([
      { identifier: { id: 'ms-python.python' }, version: v.ext },
      { identifier: { id: 'dbaeumer.vscode-eslint' }, version: '2.4.4' },
    ]),
  );
  fs.mkdirSync(path.join(root, 'home/dev/.vscode/extensions/ms-python.python-' + v.ext), { recursive: true });
  put(root, 'var/lib/pacman/local/ripgrep-14.1.0-1/desc', '%NAME%\nripgrep\n\n%VERSION%\n14.1.0-1\n\n%ARCH%\nx86_64\n');
  put(root, 'var/lib/rpm/rpmdb.sqlite', 'SQLite format 3\0');
  put(root, 'boot/efi/EFI/debian/grubx64.efi', 'efi');
}

test('inventory of an ext4 root inside a snapshot; diffInventory after a simulated upgrade', { skip: !isRoot && 'needs root (mounts to simulate the upgrade)' }, async () => {
  const dir = tmpDir();
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 2 * MiB });
  devTools(tree, { node: '20.11.1', kernel: '6.1.0-18-amd64', ext: '2024.0.1' });
  const disk = path.join(dir, 'disk.img');
  const repoDir = path.join(dir, 'repo');
  const layout = await makeDisk(disk, {
    table: 'gpt',
    size: 48 * MiB,
    partitions: [
      { size: 8 * MiB, fs: 'vfat' },
      { fs: 'ext4', fromDir: tree },
    ],
  });
  const s1 = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
  assert.equal(s1.status, 0, s1.stderr);
  const statusBefore = fs.readFileSync(path.join(tree, 'var/lib/dpkg/status'), 'utf8');
  let statusAfter = '';
  await withLoop(disk, { offset: layout[1].start, sizeLimit: layout[1].size }, (dev) =>
    withMount(dev, 'ext', {}, (mnt) => {
      simulateUpgrade(mnt, 0.2);
      devTools(mnt, { node: '20.12.0', kernel: '6.1.0-20-amd64', ext: '2024.2.0' });
      put(mnt, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n');
      // one package removed, one added
      const st = fs.readFileSync(path.join(mnt, 'var/lib/dpkg/status'), 'utf8').split('\n\n');
      st.shift();
      st.push('Package: newtool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n', 'Package: gone-but-configured\nStatus: deinstall ok config-files\nVersion: 2.0-1\n');
      statusAfter = st.join('\n\n');
      fs.writeFileSync(path.join(mnt, 'var/lib/dpkg/status'), statusAfter);
    }),
  );
  const s2 = devsnap(['snapshot', disk, '--repo', repoDir, '--json']);
  assert.equal(s2.status, 0, s2.stderr);

  const repo = await Repository.open(repoDir, {}, () => undefined);
  await repo.loadIndex();
  try {
    const m1 = await repo.readManifest(s1.json.id);
    const o1 = await openSnapshotFs(repo, m1);
    const o2 = await openSnapshotFs(repo, await repo.readManifest(s2.json.id));
    try {
      const a = await collectInventory(o1.fs);
      const b = await collectInventory(o2.fs);
      assert.equal(a.source, 'image');
      assert.deepEqual({ id: a.os.id, version: a.os.version, name: a.os.name }, { id: 'debian', version: '12', name: 'Debian GNU/Linux' });
      assert.equal(a.os.kernel, '6.1.0-18-amd64');
      assert.equal(a.bootMode, 'uefi');
      assert.equal(bootModeFromPartitions(m1.partitions), 'uefi');
      const dpkgA = a.packages.filter((p) => p.manager === 'dpkg');
      const names = [...statusBefore.matchAll(/^Package: (.*)$/gm)].map((m) => m[1]);
      assert.equal(dpkgA.length, names.length);
      assert.deepEqual(dpkgA.map((p) => p.name).sort(), [...names].sort());
      assert.ok(dpkgA.every((p) => p.arch === 'amd64' && /^\d/.test(p.version)));
      assert.ok(a.packages.some((p) => p.manager === 'pacman' && p.name === 'ripgrep' && p.version === '14.1.0-1'));
      assert.ok(a.notes.some((n) => n.includes('rpm')));
      const tc = Object.fromEntries(a.toolchains.map((t) => [t.name, t.version]));
      assert.deepEqual(
        { node: tc.node, npm: tc.npm, python: tc.python, pip: tc.pip, go: tc.go, gcc: tc.gcc, java: tc.java, rustc: tc.rustc, cargo: tc.cargo },
        { node: '20.11.1', npm: '10.2.4', python: '3.11', pip: '23.0.1', go: '1.22.1', gcc: '12', java: '17.0.10', rustc: '1.76.0', cargo: '1.76.0' },
      );
      assert.deepEqual(
        a.vscodeExtensions.map((e) => `${e.id}@${e.version}`),
        ['dbaeumer.vscode-eslint@2.4.4', 'ms-python.python@2024.0.1'],
      );

      // the diff
      const d = diffInventory(a, b);
      assert.equal(d.os.changed, true);
      assert.equal(d.os.after?.version, '13');
      assert.deepEqual(d.kernel, { before: '6.1.0-18-amd64', after: '6.1.0-20-amd64', changed: true });
      const parse = (s: string) => {
        const m = new Map<string, string>();
        for (const p of s.split('\n\n')) {
          const n = /^Package: (.*)$/m.exec(p)?.[1];
          const v = /^Version: (.*)$/m.exec(p)?.[1];
          if (n && v) m.set(n, v);
        }
        return m;
      };
      const va = parse(statusBefore);
      const vb = parse(statusAfter);
      vb.delete('gone-but-configured'); // not installed
      const upgraded = [...va]
        .filter(([n, v]) => vb.has(n) && vb.get(n) !== v)
        .map(([n]) => n)
        .sort();
      assert.ok(upgraded.length > 3, 'the simulated upgrade bumped some versions');
      assert.deepEqual(
        d.packages.upgraded
          .filter((u) => u.manager === 'dpkg')
          .map((u) => u.name)
          .sort(),
        upgraded,
      );
      assert.ok(d.packages.upgraded.every((u) => u.direction === 'up'));
      assert.deepEqual(
        d.packages.added.map((p) => p.name),
        ['newtool'],
      );
      assert.deepEqual(
        d.packages.removed.map((p) => p.name),
        [names[0]],
      );
      assert.deepEqual(d.toolchains, [{ name: 'node', before: '20.11.1', after: '20.12.0' }]);
      assert.deepEqual(
        d.vscodeExtensions.upgraded.map((e) => [e.id, e.from, e.to]),
        [['ms-python.python', '2024.0.1', '2024.2.0']],
      );
      assert.match(describeInventoryDiff(d), /Kernel: 6\.1\.0-18-amd64 → 6\.1\.0-20-amd64/);
    } finally {
      await o1.close();
      await o2.close();
    }
  } finally {
    await repo.close();
  }
});

test('inventory from a directory tree, and parsers', async () => {
  const dir = tmpDir();
  devTools(dir, { node: '18.19.0', kernel: '5.15.0-91-generic', ext: '1.0.0' });
  put(dir, 'etc/os-release', 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n');
  put(dir, 'var/lib/dpkg/status', 'Package: a\nStatus: install ok installed\nVersion: 1:2.0-1\nArchitecture: all\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 1\n');
  const inv = await collectInventory(directoryRoot(dir));
  assert.equal(inv.os.id, 'ubuntu');
  assert.equal(inv.os.kernel, '5.15.0-91-generic');
  assert.deepEqual(
    inv.packages.filter((p) => p.manager === 'dpkg'),
    [{ manager: 'dpkg', name: 'a', version: '1:2.0-1', arch: 'all' }],
  );
  assert.equal(parseDpkgStatus('Package: x\nVersion: 1\n').length, 1);
  assert.equal(compareVersions('1.2.10-1', '1.2.9-3'), 1);
  assert.equal(compareVersions('1:1.0', '2.0'), 1);
  assert.equal(compareVersions('1.0~rc1', '1.0'), -1);
  assert.equal(compareVersions('6.1.0-18-amd64', '6.1.0-20-amd64'), -1);
});

test('live inventory: this machine', async () => {
  const inv = await collectInventory('live', { timeoutMs: 10000 });
  assert.equal(inv.source, 'live');
  assert.ok(inv.os.kernel);
  assert.ok(inv.bootMode === 'uefi' || inv.bootMode === 'bios');
  assert.ok(
    inv.toolchains.some((t) => t.name === 'node' && t.version === process.version.slice(1)),
    JSON.stringify(inv.toolchains),
  );
  if (sh('sh', ['-c', 'command -v dpkg-query'], { allowFail: true }).status === 0) {
    assert.ok(inv.packages.some((p) => p.manager === 'dpkg' && p.name === 'dpkg'));
  }
  if (sh('sh', ['-c', 'command -v git'], { allowFail: true }).status === 0) assert.ok(inv.toolchains.some((t) => t.name === 'git'));
});
