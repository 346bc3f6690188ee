// The recovery kit as a user in trouble runs it: the repository copied to "a USB drive" mounted
// read-only, no node on PATH (every node of this machine hidden), the project's folder out of reach
// (a mount namespace made here: a tmpfs over it) and an empty environment. The kit's own devsnap
// restores a GPT disk (EFI vfat + ext4) onto a blank loop device: byte-identical to the source, and
// fsck clean. Also: kit.json checks out (`kit status --deep`), a damaged kit is said to be damaged,
// and the kit is replaced whole when written again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, fsck, isRoot, makeDisk, makeWorkstationTree, onCleanup, readLayout, sh, tmpDir } from '../../helpers/disks';

const ROOT = path.join(__dirname, '..', '..', '..', '..');
const BUNDLE = path.join(ROOT, 'dist', 'devsnap.js');
const MiB = 1 << 20;
// The pinned Node is fetched once (about 50 MB from the npm registry) and kept here between runs.
const CACHE = path.join(ROOT, '.cache', 'kit');

after(cleanup);

/** The bundled CLI, as the extension ships it, run by this machine's node. */
function bundled(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: CACHE, DEVSNAP_TUNED: '1' }, maxBuffer: 1 << 26 });
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Every node this machine could run instead of the kit's: on PATH, and the one running this test. */
function nodesOfThisMachine(): string[] {
  const found = new Set<string>([fs.realpathSync(process.execPath)]);
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const f = path.join(d, 'node');
    if (fs.existsSync(f)) found.add(fs.realpathSync(f));
  }
  for (const f of ['/usr/bin/node', '/usr/local/bin/node', '/usr/bin/nodejs']) if (fs.existsSync(f)) found.add(fs.realpathSync(f));
  return [...found];
}

test('the kit in a repository restores a disk with nothing installed, from read-only media (devsnap recover)', { skip: !isRoot && 'needs root (loop devices, a mount namespace)' }, async () => {
  assert.ok(fs.existsSync(BUNDLE), `${BUNDLE} is missing: npm run build`);
  const dir = tmpDir('devsnap-kit-');
  const tree = path.join(dir, 'tree');
  makeWorkstationTree(tree, { scale: 6 * MiB, seed: 12 });
  const src = path.join(dir, 'disk.img');
  await makeDisk(src, {
    table: 'gpt',
    size: 64 * MiB,
    partitions: [
      { fs: 'vfat', size: 16 * MiB, label: 'EFI', name: 'EFI system partition' },
      { fs: 'ext4', label: 'root', fromDir: tree },
    ],
  });
  const repo = path.join(dir, 'repo');
  let r = bundled(['snapshot', src, '--repo', repo, '--label', 'before the upgrade', '--json']);
  assert.equal(r.status, 0, r.stderr);
  r = bundled(['kit', 'write', '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const written = JSON.parse(r.stdout);
  assert.equal(written.state, 'ok');
  assert.deepEqual(Object.keys(written.record.files).sort(), ['README.txt', 'compress-worker.js', 'devsnap', 'devsnap.js', 'node']);
  r = bundled(['kit', 'status', '--repo', repo, '--deep', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).state, 'ok');

  // "The USB drive": a copy of the repository, mounted read-only in the namespace below.
  const usb = path.join(dir, 'usb');
  fs.mkdirSync(usb);
  sh('cp', ['-a', repo, path.join(usb, 'devsnap')]);
  const target = path.join(dir, 'target.img');
  fs.writeFileSync(target, '');
  fs.truncateSync(target, 64 * MiB);
  const dev = attachLoop(target);
  onCleanup(() => spawnSync('losetup', ['-d', dev]));

  const kit = path.join(usb, 'devsnap', 'recovery');
  const hide = nodesOfThisMachine().map((n) => `mount --bind /dev/null '${n}'`);
  const script = [
    'set -e',
    `mount --bind '${usb}' '${usb}'`,
    `mount -o remount,bind,ro '${usb}'`,
    ...hide,
    `mount -t tmpfs none '${ROOT}'`,
    // Proofs that the kit has nothing else: no node runs, the project is gone, the media is read-only.
    'if node --version >/dev/null 2>&1; then echo "a node still runs" >&2; exit 90; fi',
    `if [ -e '${BUNDLE}' ]; then echo "the project is still there" >&2; exit 91; fi`,
    `if touch '${kit}/x' 2>/dev/null; then echo "the media is writable" >&2; exit 92; fi`,
    `cd '${kit}'`,
    // The guided restore, answered by options (a terminal drives its questions in the test below).
    `./devsnap recover --disk ${dev} --confirm ${dev} --include-virtual --json`,
  ].join('\n');
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' },
    maxBuffer: 1 << 26,
    timeout: 300_000,
  });
  assert.equal(run.status, 0, `the kit's restore failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  const result = JSON.parse(run.stdout);
  assert.equal(result.ok, true, run.stdout);
  assert.equal(result.verified, true, run.stdout);
  assert.ok(result.bytesWritten > 0 && result.bytesCompared > 0, run.stdout);
  assert.match(run.stderr, /Repository: .*\/usb\/devsnap/, 'the repository is the folder holding the kit');
  assert.match(result.next.join('\n'), /efibootmgr --create --disk .* --part 1 /, 'the next steps name the EFI partition');
  detachLoop(dev);

  const cmp = spawnSync('cmp', [src, target], { encoding: 'utf8' });
  assert.equal(cmp.status, 0, `the restored disk differs from the source: ${cmp.stdout}${cmp.stderr}`);
  const layout = readLayout(target);
  const efi = path.join(dir, 'efi.img');
  sh('dd', [`if=${target}`, `of=${efi}`, 'bs=512', `skip=${layout[0].start / 512}`, `count=${layout[0].size / 512}`, 'status=none']);
  const rootPart = attachLoop(target, { offset: layout[1].start, sizeLimit: layout[1].size, readOnly: true });
  try {
    assert.ok(fsck('vfat', efi).ok, fsck('vfat', efi).output);
    const e = fsck('ext4', rootPart);
    assert.ok(e.ok, e.output);
  } finally {
    detachLoop(rootPart);
  }
});

test('a kit with a changed file is damaged; writing it again replaces it whole', { skip: !isRoot && 'needs root (the cache folder)' }, () => {
  assert.ok(fs.existsSync(BUNDLE), `${BUNDLE} is missing: npm run build`);
  const dir = tmpDir('devsnap-kit2-');
  const media = path.join(dir, 'media');
  let r = bundled(['kit', 'write', '--to', media, '--json']);
  assert.equal(r.status, 0, r.stderr);
  fs.appendFileSync(path.join(media, 'devsnap.js'), '\n// changed\n');
  r = bundled(['kit', 'status', '--dir', media, '--deep', '--json']);
  assert.equal(r.status, 8, r.stdout + r.stderr);
  assert.match(JSON.parse(r.stdout).reason, /devsnap\.js is not the file the kit was written with/);
  fs.writeFileSync(path.join(media, 'left-over'), 'x');
  r = bundled(['kit', 'write', '--to', media, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!fs.existsSync(path.join(media, 'left-over')), 'the old kit is replaced whole');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['media'], 'nothing aside is left');
  r = bundled(['kit', 'status', '--dir', media, '--deep', '--json']);
  assert.equal(JSON.parse(r.stdout).state, 'ok');
  // A folder that holds something else is not taken.
  const other = path.join(dir, 'photos');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'a.jpg'), 'x');
  r = bundled(['kit', 'write', '--to', other, '--json']);
  assert.equal(r.status, 7, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /not empty and holds no recovery kit/);
  fs.rmSync(other, { recursive: true });
});

test('devsnap recover asks in a terminal: the snapshot (arrow keys), then the disk name typed; another name writes nothing', { skip: !isRoot && 'needs root (loop devices)' }, async () => {
  const dir = tmpDir('devsnap-recover-');
  const src = path.join(dir, 'src.img');
  fs.writeFileSync(src, '');
  fs.truncateSync(src, 32 * MiB);
  sh('mkfs.ext4', ['-q', '-F', '-L', 'first', src]);
  const first = path.join(dir, 'first.img');
  fs.copyFileSync(src, first);
  const repo = path.join(dir, 'repo');
  assert.equal(bundled(['snapshot', src, '--repo', repo, '--label', 'first']).status, 0);
  sh('tune2fs', ['-L', 'second', src]);
  assert.equal(bundled(['snapshot', src, '--repo', repo, '--label', 'second']).status, 0);
  const target = path.join(dir, 'target.img');
  fs.writeFileSync(target, '');
  fs.truncateSync(target, 32 * MiB);
  const dev = attachLoop(target);

  /** Runs recover in a pseudo-terminal (script(1)), answering each question when it shows. */
  const inTerminal = (answers: [RegExp, string][], repoDir = repo) =>
    new Promise<{ code: number | null; screen: string }>((resolve) => {
      const cmd = [process.execPath, BUNDLE, 'recover', '--repo', repoDir, '--disk', dev, '--include-virtual'].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, DEVSNAP_TUNED: '1', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let screen = '';
      const pending = [...answers];
      const onData = (d: Buffer) => {
        screen += d.toString();
        const plain = screen.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, ''); // eslint-disable-line no-control-regex
        // Answered as a person does, a moment after the question shows (the prompt turns echo off first).
        while (pending.length && pending[0][0].test(plain)) {
          const answer = pending.shift()![1];
          setTimeout(() => child.stdin.write(answer), 150);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, screen: screen.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '') }); // eslint-disable-line no-control-regex
      });
    });

  // A wrong name: nothing is written.
  const before = fs.readFileSync(target);
  let r = await inTerminal([
    [/Which snapshot\?/, '\r'],
    [/Type \/dev\/loop\d+ to overwrite it/, '/dev/sdz\r'],
  ]);
  assert.notEqual(r.code, 0, r.screen);
  assert.match(r.screen, /"\/dev\/sdz" is not \/dev\/loop\d+: nothing was written/);
  assert.ok(fs.readFileSync(target).equals(before), 'the target was written to');

  // The older snapshot (one arrow down from the proposed newest), then the right name.
  r = await inTerminal([
    [/Which snapshot\?/, '\x1b[B'],
    [/❯ first/, '\r'],
    [/Type \/dev\/loop\d+ to overwrite it/, `${dev}\r`],
  ]);
  assert.equal(r.code, 0, r.screen);
  assert.match(r.screen, /Proposed: snapshot "second"/);
  assert.match(r.screen, /Done: \/dev\/loop\d+ holds the snapshot "first", and reads back as it/);

  // An encrypted repository: its password is asked (hidden), again when wrong.
  const sealed = path.join(dir, 'sealed');
  const pw = { DEVSNAP_PASSWORD: 'correct horse battery' };
  assert.equal(spawnSync(process.execPath, [BUNDLE, 'init', '--encrypt', '--repo', sealed], { env: { ...process.env, ...pw } }).status, 0);
  assert.equal(spawnSync(process.execPath, [BUNDLE, 'snapshot', src, '--repo', sealed, '--label', 'sealed'], { env: { ...process.env, ...pw, DEVSNAP_TUNED: '1' } }).status, 0);
  r = await inTerminal(
    [
      [/Password of the repository/, 'wrong one\r'],
      [/That password does not open the repository\.[\s\S]*Password of the repository/, 'correct horse battery\r'],
      [/Type \/dev\/loop\d+ to overwrite it/, `${dev}\r`],
    ],
    sealed,
  );
  assert.equal(r.code, 0, r.screen);
  assert.ok(!r.screen.includes('correct horse battery'), 'the password was shown');
  assert.match(r.screen, /Done: \/dev\/loop\d+ holds the snapshot "sealed"/);
  detachLoop(dev);
  const cmp = spawnSync('cmp', [src, target], { encoding: 'utf8' });
  assert.equal(cmp.status, 0, `the disk is not the sealed snapshot: ${cmp.stdout}${cmp.stderr}`);
  void first;
});
