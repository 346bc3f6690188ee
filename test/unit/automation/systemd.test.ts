// The systemd units `devsnap auto install` writes pass `systemd-analyze verify`, and the command the
// service runs (its ExecStart, run here directly) takes a snapshot of the configured source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { systemdService, systemdUnquote } from '../../../imaging/automation/units';
import { isRoot, sh, tmpDir } from '../../helpers/disks';
import { CLI } from '../../helpers/cli';
import { autoInstall, inInstalledRoot, snapshots, withAutoFixture } from './fixture';

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** `systemd-analyze verify` as on the installed system (inInstalledRoot: the service's /usr/local/lib/devsnap/devsnap is root's copy). */
function verify(root: string, ...units: string[]) {
  const [cmd, args] = inInstalledRoot(root, ['systemd-analyze', 'verify', ...units]);
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, output: (r.stdout + r.stderr).trim() };
}

test(
  'systemd-analyze verify: the written timer and service pass without a warning; a service whose command is missing does not',
  { skip: (!hasAnalyze || !isRoot) && 'needs systemd-analyze and root (a mount namespace)' },
  () => {
    const dir = tmpDir('devsnap-units-');
    const root = path.join(dir, 'root');
    const cfg = { repository: path.join(dir, 'my repo'), source: '/dev/sda', schedule: 'Mon..Fri *-*-* 03:15:00', hooks: [] };
    fs.mkdirSync(path.join(root, 'etc', 'devsnap'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc', 'devsnap', 'auto.json'), JSON.stringify(cfg));
    // Installed as a user would, through the CLI (the options left out come from the config above).
    const r = spawnSync(process.execPath, [CLI, 'auto', 'install', '--root', root], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /the timer was written, not started/);
    const units = path.join(root, 'etc', 'systemd', 'system');
    const timer = path.join(units, 'devsnap-snapshot.timer');
    const service = path.join(units, 'devsnap-snapshot.service');
    assert.match(fs.readFileSync(timer, 'utf8'), /^OnCalendar=Mon\.\.Fri \*-\*-\* 03:15:00$/m);
    assert.match(fs.readFileSync(service, 'utf8'), /^RequiresMountsFor=".*\/my repo"$/m);
    assert.deepEqual(verify(root, timer, service), { status: 0, output: '' });

    // The check can fail: the same service with a node that is not there.
    const broken = path.join(dir, 'broken', 'devsnap-snapshot.service');
    fs.mkdirSync(path.dirname(broken));
    fs.writeFileSync(broken, systemdService(['/nonexistent/node', CLI], '/etc/devsnap/auto.json', cfg));
    const bad = verify(root, broken);
    assert.notEqual(bad.status, 0);
    assert.match(bad.output, /\/nonexistent\/node is not executable/);
  },
);

test("the service's ExecStart, run directly: one snapshot of the source, labelled as scheduled", { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  await withAutoFixture(async (f) => {
    autoInstall(f, ['--schedule', 'daily', '--hooks', 'none']);
    const unit = fs.readFileSync(path.join(f.root, 'etc', 'systemd', 'system', 'devsnap-snapshot.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1];
    const [program, ...args] = systemdUnquote(execStart);
    assert.deepEqual(args.slice(-4), ['auto', 'run', '--config', f.config]);
    assert.equal(snapshots(f.repo).length, 0);
    assert.equal(program, '/usr/local/lib/devsnap/devsnap');
    const r = sh(...inInstalledRoot(f.root, [program, ...args]), { allowFail: true });
    assert.equal(r.status, 0, r.stderr);
    const taken = snapshots(f.repo);
    assert.equal(taken.length, 1);
    assert.equal(taken[0].label, 'scheduled: daily');
    assert.equal(taken[0].source.path, f.source);
    const state = JSON.parse(fs.readFileSync(path.join(f.root, 'etc', 'devsnap', 'auto-state.json'), 'utf8'));
    assert.equal(state.lastSnapshot.id, taken[0].id);
    assert.equal(state.lastRun.outcome, 'taken');
  });
});
