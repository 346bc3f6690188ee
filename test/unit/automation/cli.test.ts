// `devsnap auto install|remove|status|run` and `devsnap hook pre-upgrade` below a temporary root:
// the files written are the builders' text, readable by everyone; a reinstall removes what the
// config no longer calls for; remove and --purge; retention forgets automatic snapshots only; the
// hook exits 0 whatever happens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { aptHook, pacmanHook } from '../../../imaging/automation/hooks';
import { devsnap } from '../../helpers/cli';
import { makeFsImage, tmpDir } from '../../helpers/disks';
import { WRAPPER } from '../../../imaging/automation/engine-copy';
import { snapshots } from './fixture';

const NODE_CLI = [WRAPPER];

async function setup() {
  const dir = tmpDir('devsnap-auto-cli-');
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc', 'apt'), { recursive: true });
  const image = path.join(dir, 'disk.img');
  await makeFsImage(image, { fs: 'ext4', size: 8 << 20 });
  return { dir, root, image, repo: path.join(dir, 'repo'), config: path.join(root, 'etc', 'devsnap', 'auto.json') };
}

test('install writes the config and the files as built (mode 0644), detects apt, and a reinstall removes the hooks it no longer wants', async () => {
  const s = await setup();
  const dry = devsnap(['auto', 'install', '--root', s.root, '--repo', s.repo, '--source', s.image, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /Would write .*05devsnap-snapshot \(apt hook\):/);
  assert.equal(fs.existsSync(path.join(s.root, 'etc', 'devsnap')), false, 'a dry run writes nothing');

  const r = devsnap(['auto', 'install', '--root', s.root, '--repo', s.repo, '--source', s.image, '--keep-last', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(s.config, 'utf8')), { repository: s.repo, source: s.image, schedule: 'daily', hooks: ['apt'], retention: { keepLast: 2 } });
  const apt = path.join(s.root, 'etc', 'apt', 'apt.conf.d', '05devsnap-snapshot');
  assert.equal(fs.readFileSync(apt, 'utf8'), aptHook(NODE_CLI, s.config));
  for (const f of r.json.written) assert.equal(fs.statSync(f).mode & 0o777, path.basename(f) === 'devsnap' ? 0o755 : 0o644, f);
  // The copy of devsnap (its two files, the wrapper, its record), the config, the two units, the apt hook.
  assert.equal(r.json.written.length, 8);

  // Another package manager, no schedule: the apt hook and the units go, the rest of the config stays.
  const again = devsnap(['auto', 'install', '--root', s.root, '--hooks', 'pacman', '--schedule', 'none', '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(again.json.removed.map((p: string) => path.basename(p)).sort(), ['05devsnap-snapshot', 'devsnap-snapshot.service', 'devsnap-snapshot.timer']);
  assert.equal(fs.readFileSync(path.join(s.root, 'etc', 'pacman.d', 'hooks', '05-devsnap-snapshot.hook'), 'utf8'), pacmanHook(NODE_CLI, s.config));
  assert.deepEqual(JSON.parse(fs.readFileSync(s.config, 'utf8')), { repository: s.repo, source: s.image, hooks: ['pacman'], retention: { keepLast: 2 } });

  const st = devsnap(['auto', 'status', '--root', s.root, '--json']);
  assert.equal(st.status, 0, st.stderr);
  assert.deepEqual(
    st.json.files.map((f: { what: string; installed: boolean; current: boolean }) => [f.what, f.installed, f.current]),
    [['pacman hook', true, true]],
  );
  assert.deepEqual(st.json.leftovers, []);

  const rm = devsnap(['auto', 'remove', '--root', s.root, '--json']);
  assert.equal(rm.status, 0, rm.stderr);
  assert.deepEqual(
    rm.json.removed.map((p: string) => path.relative(s.root, p)),
    ['etc/pacman.d/hooks/05-devsnap-snapshot.hook', 'usr/local/lib/devsnap'],
  );
  assert.ok(fs.existsSync(s.config), 'remove keeps the configuration');
  const purge = devsnap(['auto', 'remove', '--root', s.root, '--purge', '--json']);
  assert.deepEqual(purge.json.removed, [s.config]);
  assert.match(devsnap(['auto', 'status', '--root', s.root]).stdout, /none \(`devsnap auto install` writes it\)/);
});

test('install refuses what cannot work, naming it, and writes nothing', async () => {
  const s = await setup();
  const refused = (args: string[], re: RegExp) => {
    const r = devsnap(['auto', 'install', '--root', s.root, ...args]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  };
  refused(['--source', s.image], /No repository given for automatic snapshots/);
  refused(['--repo', s.repo, '--source', s.image, '--schedule', 'every tuesday'], /--schedule "every tuesday" is not a calendar expression systemd understands/);
  refused(['--repo', s.repo, '--source', s.image, '--hooks', 'apt,zypper'], /"hooks\[1\]" must be one of apt, pacman, dnf/);
  refused(['--repo', '/mnt/100%', '--source', s.image], /"repository" must be an absolute path/);
  assert.equal(fs.existsSync(path.join(s.root, 'etc', 'devsnap')), false);
});

test('auto run: retention forgets automatic snapshots beyond the policy, never the others; a broken config is an error', async () => {
  const s = await setup();
  const manual = devsnap(['snapshot', s.image, '--repo', s.repo, '--label', 'before upgrade', '--json']);
  assert.equal(manual.status, 0, manual.stderr);
  assert.equal(devsnap(['auto', 'install', '--root', s.root, '--repo', s.repo, '--source', s.image, '--hooks', 'none', '--keep-last', '1']).status, 0);
  const runs = [1, 2, 3].map(() => devsnap(['auto', 'run', '--root', s.root, '--json']));
  for (const r of runs) assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(runs[0].json.forgotten, []);
  assert.deepEqual(runs[1].json.forgotten, [runs[0].json.snapshot.id]);
  assert.deepEqual(runs[2].json.forgotten, [runs[1].json.snapshot.id]);
  assert.deepEqual(
    snapshots(s.repo)
      .map((m) => m.label)
      .sort(),
    ['before upgrade', 'scheduled: daily'],
  );

  fs.writeFileSync(s.config, JSON.stringify({ repository: s.repo, source: s.image, retention: { keepLast: 0 } }));
  const bad = devsnap(['auto', 'run', '--root', s.root]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /configuration .* is not valid: "retention" must keep something/);
});

test('hook pre-upgrade exits 0 without a config, with an unknown manager, and past the rate limit counts from the state', async () => {
  const s = await setup();
  // An option of a later devsnap must not make it fail either.
  const hook = (args: string[]) => devsnap(['hook', 'pre-upgrade', '--root', s.root, ...args, '--some-future-option']);
  const none = hook(['--manager', 'apt']);
  assert.equal(none.status, 0);
  assert.match(none.stderr, /no snapshot before apt: there is no configuration/);
  const unknown = hook(['--manager', 'zypper']);
  assert.equal(unknown.status, 0);
  assert.match(unknown.stderr, /no snapshot before the package changes \(they go on\): The hook names an unknown package manager "zypper"/);

  fs.mkdirSync(path.dirname(s.config), { recursive: true });
  fs.writeFileSync(s.config, JSON.stringify({ repository: s.repo, source: s.image, hooks: ['pacman'], rateLimitHours: 1 }));
  // The last automatic snapshot two hours ago: past the limit, this one is taken.
  const state = path.join(path.dirname(s.config), 'auto-state.json');
  fs.writeFileSync(state, JSON.stringify({ lastSnapshot: { at: new Date(Date.now() - 2 * 3600_000).toISOString(), trigger: 'apt', id: 'old', label: 'x' } }));
  const taken = hook(['--manager', 'pacman']);
  assert.equal(taken.status, 0, taken.stderr);
  assert.match(taken.stderr, /snapshot [0-9a-f]+ "before pacman: transaction" taken/);
  assert.equal(snapshots(s.repo).length, 1);
  const skipped = hook(['--manager', 'pacman']);
  assert.equal(skipped.status, 0);
  assert.match(skipped.stderr, /no snapshot: an automatic snapshot was taken \d+ minutes ago/);
  assert.equal(snapshots(s.repo).length, 1);
  const recorded = JSON.parse(fs.readFileSync(state, 'utf8'));
  assert.equal(recorded.lastRun.outcome, 'skipped');
  assert.equal(recorded.lastSnapshot.id, snapshots(s.repo)[0].id);
});
