// The apt hook on a real `apt-get install` of a small local .deb: apt reads the hook `devsnap auto
// install` wrote (from a temporary configuration directory: APT_CONFIG points Dir::Etc::Parts at it,
// so nothing of the real /etc/apt is touched), runs it with what is being installed, and the hook
// takes exactly one snapshot of the loop-device source, labelled with the package; a second
// transaction within the rate limit takes none, and a broken configuration does not make apt fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { isRoot, sh } from '../../helpers/disks';
import { autoInstall, inInstalledRoot, snapshots, withAutoFixture } from './fixture';

const PKG = 'devsnap-auto-hook-probe';
const hasApt = spawnSync('apt-get', ['--version']).status === 0 && spawnSync('dpkg-deb', ['--version']).status === 0;

/** A package with nothing in it but its name and version. */
function buildDeb(dir: string, version: string): string {
  const tree = path.join(dir, `pkg-${version}`);
  fs.mkdirSync(path.join(tree, 'DEBIAN'), { recursive: true });
  fs.writeFileSync(
    path.join(tree, 'DEBIAN', 'control'),
    `Package: ${PKG}\nVersion: ${version}\nArchitecture: all\nMaintainer: devsnap tests <tests@devsnap.invalid>\nDescription: devsnap apt hook test package\n`,
  );
  const deb = path.join(dir, `${PKG}_${version}_all.deb`);
  sh('dpkg-deb', ['--build', '--root-owner-group', tree, deb]);
  return deb;
}

const installedVersion = () => sh('dpkg-query', ['-W', '-f', '${Status} ${Version}', PKG], { allowFail: true }).stdout.replace(/^install ok installed /, '');

test(
  'apt-get install runs the hook: one snapshot labelled with the package, none within the rate limit, and a broken config does not fail apt',
  { skip: (!isRoot || !hasApt) && 'needs root and apt' },
  async () => {
    assert.equal(installedVersion(), '', `${PKG} must not be installed before the test`);
    await withAutoFixture(async (f) => {
      try {
        autoInstall(f, ['--hooks', 'apt', '--schedule', 'none', '--rate-limit', '6']);
        const parts = path.join(f.root, 'etc', 'apt', 'apt.conf.d');
        assert.deepEqual(fs.readdirSync(parts), ['05devsnap-snapshot']);
        const aptConfig = path.join(f.dir, 'apt.conf');
        fs.writeFileSync(aptConfig, `Dir::Etc::Parts "${parts}";\n`);
        // apt runs the hook's /usr/local/lib/devsnap/devsnap: the copy below the fixture's root (inInstalledRoot).
        const apt = (deb: string) =>
          sh(...inInstalledRoot(f.root, ['apt-get', 'install', '-y', '--allow-downgrades', deb]), { allowFail: true, env: { APT_CONFIG: aptConfig, DEBIAN_FRONTEND: 'noninteractive' } });

        // The hook's configuration reaches apt.
        const dump = sh('apt-config', ['dump'], { env: { APT_CONFIG: aptConfig } }).stdout;
        assert.match(dump, /DPkg::Pre-Install-Pkgs:: "DEVSNAP_HOOK=apt .* hook pre-upgrade --manager apt --config /);

        const first = apt(buildDeb(f.dir, '1.0-1'));
        assert.equal(first.status, 0, first.stderr);
        assert.equal(installedVersion(), '1.0-1');
        assert.match(first.stderr, /devsnap: taking a snapshot of .* "before apt: install devsnap-auto-hook-probe 1\.0-1"/);
        const taken = snapshots(f.repo);
        assert.equal(taken.length, 1, 'exactly one snapshot');
        assert.equal(taken[0].label, `before apt: install ${PKG} 1.0-1`);
        assert.equal(taken[0].source.path, f.source);

        // Within the rate limit: the upgrade goes on, no second snapshot.
        const second = apt(buildDeb(f.dir, '1.1-1'));
        assert.equal(second.status, 0, second.stderr);
        assert.equal(installedVersion(), '1.1-1');
        assert.match(second.stderr, /devsnap: no snapshot: an automatic snapshot was taken \d+ minutes ago/);
        assert.equal(snapshots(f.repo).length, 1, 'no snapshot within the rate limit');

        // A broken configuration: said on stderr, apt goes on.
        fs.writeFileSync(f.config, '{ "repository": ');
        const third = apt(buildDeb(f.dir, '1.2-1'));
        assert.equal(third.status, 0, third.stderr);
        assert.equal(installedVersion(), '1.2-1');
        assert.match(third.stderr, /devsnap: no snapshot before the package changes \(they go on\): The automatic snapshot configuration .* is not JSON/);

        // A valid configuration whose repository cannot be made (its parent is a file): the same (rate limit off, so the snapshot is tried).
        fs.writeFileSync(path.join(f.dir, 'a-file'), '');
        fs.writeFileSync(f.config, JSON.stringify({ repository: path.join(f.dir, 'a-file', 'repo'), source: f.source, hooks: ['apt'], rateLimitHours: 0 }));
        const fourth = apt(buildDeb(f.dir, '1.3-1'));
        assert.equal(fourth.status, 0, fourth.stderr);
        assert.equal(installedVersion(), '1.3-1');
        assert.match(fourth.stderr, /devsnap: taking a snapshot/);
        assert.match(fourth.stderr, /devsnap: no snapshot before the package changes \(they go on\): .*a-file\/repo/);
        assert.equal(snapshots(f.repo).length, 1);
      } finally {
        sh('dpkg', ['--purge', PKG], { allowFail: true });
      }
    });
    assert.equal(installedVersion(), '');
  },
);
