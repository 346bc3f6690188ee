// The stable devsnap of automatic snapshots (imaging/automation/engine-copy.ts) and the operations
// autoInstall, autoStatus and autoRemove through the engine's runOp, below a temporary root: the
// files written, the wrapper run as the installed system runs it (it prints the engine's version),
// `outdated` once the copy is another version, and remove.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { chooseNode, type NodeProbe, wrapperText } from '../../../imaging/automation/engine-copy';
import { aptHook } from '../../../imaging/automation/hooks';
import { ENGINE_VERSION } from '../../../imaging/core/version';
import { runOp } from '../../../imaging/ops/registry';
import { isRoot, sh, tmpDir } from '../../helpers/disks';
import { DIST, inInstalledRoot } from './fixture';

const probe = (o: Partial<NodeProbe> & { majors?: Record<string, number | null>; unsafe?: string[] }): NodeProbe => ({
  execPath: '/opt/node20/bin/node',
  versions: { node: '20.11.1' },
  major: (f) => o.majors?.[f] ?? null,
  rootOnly: (f) => !(o.unsafe ?? []).includes(f),
  candidates: [process.execPath], // exists here; its major comes from `majors`
  ...o,
});

test('the node the wrapper runs: the running node, else a system node ≥ 20, else Electron as node; never one others than root can change', () => {
  assert.deepEqual(chooseNode(probe({})), { node: '/opt/node20/bin/node', kind: 'running' });
  // Node 18 running: the system's node 22.
  assert.deepEqual(chooseNode(probe({ versions: { node: '18.19.0' }, majors: { [process.execPath]: 22 } })), { node: process.execPath, kind: 'system' });
  // VS Code's Electron (its node is 20) with a system node: the system's.
  const electron = { execPath: '/usr/share/code/code', versions: { node: '20.18.0', electron: '34.2.0' } };
  assert.deepEqual(chooseNode(probe({ ...electron, majors: { [process.execPath]: 20 } })), { node: process.execPath, kind: 'system' });
  // …whose node is too old, or missing: Electron as node.
  assert.deepEqual(chooseNode(probe({ ...electron, majors: { [process.execPath]: 18 } })), { node: '/usr/share/code/code', kind: 'electron' });
  // A node in the user's home (writable by them) is never what root runs.
  assert.deepEqual(chooseNode(probe({ execPath: '/home/u/.nvm/node', unsafe: ['/home/u/.nvm/node'], majors: { [process.execPath]: 20 } })), { node: process.execPath, kind: 'system' });
  assert.throws(
    () => chooseNode(probe({ ...electron, unsafe: ['/usr/share/code/code'], majors: {} })),
    /No node 20 or later that only root can change was found .*\/usr\/share\/code\/code: others than root can change it/,
  );
});

test('the wrapper: sh, the node, the copy by its installed path, the arguments as given; Electron gets ELECTRON_RUN_AS_NODE', () => {
  assert.equal(wrapperText({ node: '/usr/bin/node', kind: 'system' }).split('\n').at(-2), 'exec /usr/bin/node /usr/local/lib/devsnap/devsnap.js "$@"');
  assert.match(wrapperText({ node: '/usr/bin/node', kind: 'system' }), /^#!\/bin\/sh\n/);
  assert.doesNotMatch(wrapperText({ node: '/usr/bin/node', kind: 'running' }), /ELECTRON/);
  const e = wrapperText({ node: '/usr/share/code/code', kind: 'electron' });
  assert.match(e, /\nELECTRON_RUN_AS_NODE=1\nexport ELECTRON_RUN_AS_NODE\nexec \/usr\/share\/code\/code \/usr\/local\/lib\/devsnap\/devsnap.js "\$@"\n$/);
  assert.throws(() => wrapperText({ node: '/opt/my $node/node', kind: 'system' }), /cannot be started from the files it would install/);
});

test('autoInstall, autoStatus, autoRemove through runOp below a temporary root', async () => {
  const dir = tmpDir('devsnap-auto-ops-');
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc', 'apt'), { recursive: true });
  const ctx = { log: () => undefined, engineDir: DIST };
  const config = { repository: path.join(dir, 'repo'), source: path.join(dir, 'disk.img'), schedule: 'daily', hooks: ['apt' as const], retention: { keepDaily: 7, keepWeekly: 4 } };
  const r = await runOp('autoInstall', { root, config }, ctx);
  const lib = path.join(root, 'usr', 'local', 'lib', 'devsnap');
  assert.deepEqual(
    r.written.slice(0, 4),
    ['devsnap.js', 'compress-worker.js', 'devsnap', 'install.json'].map((f) => path.join(lib, f)),
  );
  assert.equal(r.engine?.command, '/usr/local/lib/devsnap/devsnap');
  for (const f of ['devsnap.js', 'compress-worker.js']) assert.ok(fs.readFileSync(path.join(lib, f)).equals(fs.readFileSync(path.join(DIST, f))), f);
  const wrapper = path.join(lib, 'devsnap');
  assert.equal(fs.statSync(wrapper).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(wrapper, 'utf8'), wrapperText({ node: r.engine!.node, kind: r.engine!.nodeKind }));
  assert.equal(r.engine!.nodeKind, 'running'); // the tests run on a node of root's (/usr/bin/node)
  // The units and hooks run the wrapper, never this checkout's files.
  const config_ = path.join(root, 'etc', 'devsnap', 'auto.json');
  assert.equal(fs.readFileSync(path.join(root, 'etc', 'apt', 'apt.conf.d', '05devsnap-snapshot'), 'utf8'), aptHook(['/usr/local/lib/devsnap/devsnap'], config_));
  assert.match(fs.readFileSync(path.join(root, 'etc', 'systemd', 'system', 'devsnap-snapshot.service'), 'utf8'), /^ExecStart=\/usr\/local\/lib\/devsnap\/devsnap auto run --config /m);
  assert.deepEqual(JSON.parse(fs.readFileSync(config_, 'utf8')), config);
  assert.deepEqual(fs.readdirSync(path.dirname(lib)), ['devsnap'], 'nothing left aside');

  let st = await runOp('autoStatus', { root }, ctx);
  assert.equal(st.engine?.outdated, false);
  assert.equal(st.engine?.version, ENGINE_VERSION);
  assert.deepEqual(st.managers, ['apt']);
  assert.equal(st.systemd, false, 'below another root the timer is never started');
  assert.ok(st.files.length === 3 && st.files.every((f) => f.installed && f.current), JSON.stringify(st.files));

  // Another version of the copy: outdated (the extension offers to install this one).
  const record = path.join(lib, 'install.json');
  const rec = JSON.parse(fs.readFileSync(record, 'utf8'));
  fs.writeFileSync(record, JSON.stringify({ ...rec, engine: { ...rec.engine, version: '0.0.9' } }));
  st = await runOp('autoStatus', { root }, ctx);
  assert.equal(st.engine?.outdated, true);
  assert.equal(st.engine?.version, '0.0.9');
  // Installing again puts this one in place (renamed over the old copy).
  await runOp('autoInstall', { root, config }, ctx);
  assert.equal((await runOp('autoStatus', { root }, ctx)).engine?.outdated, false);

  const rm = await runOp('autoRemove', { root }, ctx);
  assert.deepEqual(rm.removed.map((p) => path.relative(root, p)).sort(), [
    'etc/apt/apt.conf.d/05devsnap-snapshot',
    'etc/systemd/system/devsnap-snapshot.service',
    'etc/systemd/system/devsnap-snapshot.timer',
    'usr/local/lib/devsnap',
  ]);
  st = await runOp('autoStatus', { root }, ctx);
  assert.equal(st.engine, undefined);
  assert.ok(st.files.every((f) => !f.installed));
  assert.ok(fs.existsSync(config_), 'remove without purge keeps the configuration');
});

test("the installed wrapper, run as the installed system runs it, starts the copy: it prints the engine's version", { skip: !isRoot && 'needs root (a mount namespace)' }, async () => {
  const root = path.join(tmpDir('devsnap-auto-wrapper-'), 'root');
  await runOp('autoInstall', { root, config: { repository: '/mnt/backup/devsnap', source: '/dev/sda', hooks: [] } }, { log: () => undefined, engineDir: DIST });
  const r = sh(...inInstalledRoot(root, ['/usr/local/lib/devsnap/devsnap', '--version']), { allowFail: true });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), ENGINE_VERSION);
  // It can fail: without the copy there is nothing to run.
  fs.rmSync(path.join(root, 'usr', 'local', 'lib', 'devsnap', 'devsnap.js'));
  assert.notEqual(sh(...inInstalledRoot(root, ['/usr/local/lib/devsnap/devsnap', '--version']), { allowFail: true }).status, 0);
});
