// Security tests of the elevated helper (imaging/helper/README.md), against a real helper process:
// who may talk to it (the secret, the handshake, another user), what it accepts (framing, version,
// types, fields) and which paths it refuses (kernel interfaces, directories, mounted and system
// disks). Destructive requests are only ever sent as dry runs or are refused before they start.
// Runs as root (the helper checks file owners against --uid 0 here).
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HELPER_MAX_MESSAGE, PROTOCOL_VERSION, RPC_BYE, RPC_PARSE_ERROR, RPC_SHUTDOWN } from '../../../imaging/protocol';
import { encodeFrame, FrameDecoder } from '../../../imaging/helper/framing';
import { validateCall } from '../../../imaging/helper/validate';
import { vetMessage } from '../../../imaging/helper/rpcFrames';
import { cleanup, isRoot, sh, tmpDir, withLoop, withMount } from '../../helpers/disks';
import { CLI, ensureUser, launchHelper, launchHelperFor } from './helper-harness';

after(cleanup);
const skip = isRoot ? false : 'needs root (the helper runs as root)';
const TEST_USER = 'devsnap-test-user';

function initRepo(dir: string): void {
  const r = spawnSync(process.execPath, [CLI, 'init', '--repo', dir, '--json'], { encoding: 'utf8', env: { ...process.env, DEVSNAP_TUNED: '1' } }); // no relaunch: settings do not matter here
  assert.equal(r.status, 0, r.stderr);
}

describe('helper validation (unit)', () => {
  it('refuses messages that are not JSON-RPC 2.0 requests, and requests without an id', () => {
    assert.equal(vetMessage({ jsonrpc: '2.0', id: 'a', method: 'listDisks', params: { params: {} } }, 'server').ok, true);
    assert.equal(vetMessage({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 'a' } }, 'server').ok, true);
    const bad: [unknown, RegExp, string | null][] = [
      [[1, 2], /not JSON-RPC 2.0/, null],
      [{ jsonrpc: '1.0', id: 'a', method: 'listDisks' }, /not JSON-RPC 2.0/, 'a'],
      [{ v: PROTOCOL_VERSION, id: 'a', type: 'listDisks' }, /not JSON-RPC 2.0/, 'a'],
      [{ jsonrpc: '2.0', method: 'listDisks' }, /"listDisks" request without a valid "id"/, null],
      [{ jsonrpc: '2.0', id: { x: 1 }, method: 'listDisks' }, /"listDisks" request without a valid "id"/, null],
      [{ jsonrpc: '2.0', id: 'a', method: 'listDisks', params: 'x' }, /not a well-formed JSON-RPC request/, 'a'],
      [{ jsonrpc: '2.0', id: 'a', method: 'listDisks', extra: 1 }, /not a well-formed JSON-RPC request/, 'a'],
      [{ jsonrpc: '2.0', id: 'a', result: {} }, /not a well-formed JSON-RPC request/, 'a'],
    ];
    for (const [msg, re, id] of bad) {
      const r = vetMessage(msg, 'server');
      assert.equal(r.ok, false, JSON.stringify(msg));
      if (!r.ok) {
        assert.match(r.refusal.message, re);
        assert.equal(r.refusal.id, id, JSON.stringify(msg));
      }
    }
  });

  it('refuses unknown types, missing, ill-typed and unknown fields', () => {
    assert.equal(validateCall('listDisks', {}).ok, true);
    const bad: [string, unknown, RegExp][] = [
      ['format', {}, /unknown type "format"/],
      ['changes', { repo: '/r', a: 'x', b: 'y' }, /unknown type "changes"/], // looking inside snapshots needs no root
      ['snapshot', { repo: '/r' }, /"source" is missing/],
      ['snapshot', { repo: 'relative', source: '/dev/x' }, /"repo" must be an absolute path/],
      ['restore', { repo: '/r', snapshot: 'x', target: '/t', allowSystemdisk: true }, /unknown field "allowSystemdisk"/],
      ['restore', { repo: '/r', snapshot: 'x', target: '/t', partition: -1 }, /"partition" must be a whole number/],
      ['snapshot', { repo: '/r', source: '/s', compressionLevel: 40 }, /1 to 19/],
      ['pin', { repo: '/r', snapshot: 'x', pinned: 'yes' }, /true or false/],
      ['forget', { repo: '/r', policy: { keepEverything: 1 } }, /not a retention rule/],
      ['show', { repo: '/r', snapshot: '../../etc' }, /snapshot id/],
      ['snapshot', { repo: '/r\0x', source: '/s' }, /NUL/],
      ['listSnapshots', [1, 2], /parameters must be an object/],
    ];
    for (const [name, params, re] of bad) {
      const r = validateCall(name, params);
      assert.equal(r.ok, false, `${name} ${JSON.stringify(params)}`);
      if (!r.ok) assert.match(r.message, re);
    }
  });
});

describe('helper framing (unit)', () => {
  it('splits frames across and within chunks, skips oversized frames unread and reports bad JSON', () => {
    const got: unknown[] = [];
    const problems: string[] = [];
    const d = new FrameDecoder(
      (m) => got.push(m),
      (p) => problems.push(p.kind === 'oversized' ? `oversized ${p.length}` : 'malformed'),
      64,
    );
    const a = encodeFrame({ a: 1 });
    const b = encodeFrame({ b: 'two' });
    const all = Buffer.concat([a, b]);
    for (let i = 0; i < all.length; i++) d.push(all.subarray(i, i + 1)); // byte by byte
    assert.deepEqual(got, [{ a: 1 }, { b: 'two' }]);
    const big = Buffer.alloc(4 + 100, 0x41);
    big.writeUInt32BE(100, 0);
    const bad = Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7d]);
    const c = encodeFrame({ c: true });
    d.push(Buffer.concat([big.subarray(0, 30)]));
    d.push(Buffer.concat([big.subarray(30), bad, c]));
    assert.deepEqual(problems, ['oversized 100', 'malformed']);
    assert.deepEqual(got[2], { c: true });
    assert.throws(() => encodeFrame('x'.repeat(HELPER_MAX_MESSAGE)), /exceeds/);
  });
});

describe('helper security (real helper process)', { skip }, () => {
  let work: string;
  let repo: string;
  before(() => {
    work = tmpDir('devsnap-helpersec-');
    repo = path.join(work, 'repo');
    initRepo(repo);
  });

  it('serves an authenticated extension, and does not listen on any socket itself', async () => {
    const h = await launchHelper();
    try {
      assert.ok(h.sock, `no connection: ${h.stderr()}`);
      const r = await h.call('listSnapshots', { repo });
      assert.equal(r.type, 'result', JSON.stringify(r));
      assert.deepEqual(r.result.snapshots, []);
      const check = await h.call('check', { repo });
      assert.equal(check.result.ok, true, JSON.stringify(check));
      const disks = await h.call('listDisks');
      assert.ok(Array.isArray(disks.result.disks), JSON.stringify(disks));
      h.cancel('nothing-running'); // cancelling what does not run changes nothing
      assert.equal((await h.call('listSnapshots', { repo })).type, 'result');
      assert.equal(fs.existsSync(h.secretFile), false, 'the secret file was not deleted');
      // Only the extension listens: no process can connect to the helper.
      const ss = spawnSync('ss', ['-xlpn'], { encoding: 'utf8' }).stdout;
      assert.ok(!ss.includes(`pid=${h.helper.pid},`), `the helper listens on a socket:\n${ss}`);
      // shutdown: answered, then 'bye', then a clean exit.
      assert.deepEqual((await h.call(RPC_SHUTDOWN)).result, { stopping: true });
      assert.match((await h.next((m) => m.method === RPC_BYE)).params.reason, /shut down/);
      assert.equal((await h.exited).code, 0);
    } finally {
      await h.close();
    }
  });

  it('a second process that finds the socket gets nothing but a challenge, and cannot pass the handshake', async () => {
    // The real extension side (acceptAuthenticatedPeer) with a rogue process connecting first.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-rogue-'));
    const socketPath = path.join(dir, 'helper.sock');
    const { acceptAuthenticatedPeer } = await import('../../../extension/helperClient');
    const { newSecret } = await import('../../../imaging/helper/auth');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(socketPath, r));
    const logs: string[] = [];
    let accepted = false;
    void acceptAuthenticatedPeer(server, newSecret(), (l) => logs.push(l)).then(() => (accepted = true));
    const rogue = String.raw`
      const net = require('net');
      const frame = (o) => { const b = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); };
      const s = net.connect(process.argv[1]);
      const got = [];
      s.on('data', (d) => got.push(d.toString('latin1')));
      s.on('connect', () => {
        const v = Number(process.argv[2]);
        s.write(frame({ v, type: 'hello', nonce: 'a'.repeat(64), pid: 1, uid: 0 }));
        setTimeout(() => s.write(frame({ v, type: 'auth', mac: 'b'.repeat(64) })), 100);
        setTimeout(() => s.write(frame({ jsonrpc: '2.0', id: 'x', method: 'restore', params: { params: { repo: '/r', snapshot: 'latest', target: '/dev/vda', confirmed: true } } })), 200);
      });
      s.on('close', () => { console.log(JSON.stringify({ closed: true, got: got.join('') })); process.exit(0); });
      setTimeout(() => { console.log(JSON.stringify({ closed: false })); process.exit(0); }, 5000);
    `;
    // Asynchronously: this process serves the socket meanwhile.
    const r = await new Promise<{ stdout: string }>((resolve) => {
      const c = spawn(process.execPath, ['-e', rogue, socketPath, String(PROTOCOL_VERSION)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.on('close', () => resolve({ stdout }));
    });
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
    const out = JSON.parse(r.stdout.trim());
    assert.equal(out.closed, true, 'the rogue connection was not closed');
    assert.ok(out.got.includes('"challenge"') && !out.got.includes('"ready"'), out.got);
    assert.equal(accepted, false);
    assert.ok(
      logs.some((l) => /authentication failed/.test(l)),
      logs.join('\n'),
    );
  });

  it('refuses to serve a peer that does not know the secret (wrong secret)', async () => {
    const h = await launchHelper({ handshake: 'wrong-secret' });
    try {
      // The harness sent a snapshot request right behind its (wrong) challenge: never executed,
      // the helper hangs up and exits.
      const { code } = await h.exited;
      assert.equal(code, 6);
      assert.match(h.stderr(), /authentication failed/);
      assert.equal(fs.existsSync(path.join(h.dir, 'never')), false);
    } finally {
      await h.close();
    }
  });

  it('refuses a secret file or folder others could read, and a socket of another user', async () => {
    const uid = ensureUser(TEST_USER);
    const cases: [string, (p: { dir: string; secretFile: string; socketPath: string }) => void, RegExp][] = [
      ['secret mode 0644', (p) => fs.chmodSync(p.secretFile, 0o644), /must be readable by its owner only/],
      ['folder mode 0755', (p) => fs.chmodSync(p.dir, 0o755), /can be entered by other users/],
      ['secret of another user', (p) => fs.chownSync(p.secretFile, uid, uid), /secret file .* belongs to uid/],
      ['socket of another user', (p) => fs.chownSync(p.socketPath, uid, uid), /socket .* belongs to uid/],
      [
        'secret is a symlink',
        (p) => {
          fs.renameSync(p.secretFile, p.secretFile + '.real');
          fs.symlinkSync(p.secretFile + '.real', p.secretFile);
        },
        /symbolic link/,
      ],
    ];
    for (const [name, prepare, re] of cases) {
      const h = await launchHelper({ prepare, handshake: 'none' });
      try {
        const { code } = await h.exited;
        assert.equal(code, 6, `${name}: ${h.stderr()}`);
        assert.match(h.stderr(), re, name);
      } finally {
        await h.close();
      }
    }
    // --uid naming someone other than the user pkexec/sudo says asked.
    const h = await launchHelper({ handshake: 'none', env: { SUDO_UID: String(uid) } });
    try {
      assert.equal((await h.exited).code, 6);
      assert.match(h.stderr(), /not the user who asked for elevation/);
    } finally {
      await h.close();
    }
  });

  it('answers malformed, oversized, unknown and incomplete messages with errors and executes none of them', async () => {
    const h = await launchHelper();
    try {
      const never = path.join(work, 'not-created');
      // Malformed JSON in a well-formed frame.
      const body = Buffer.from('{"jsonrpc":"2.0","id":"m1","method":"snapshot",');
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      h.sendRaw(Buffer.concat([head, body]));
      let m = await h.next((x) => x.error && /malformed/.test(x.error.message));
      assert.equal(m.id, null);
      assert.equal(m.error.code, RPC_PARSE_ERROR);
      // Oversized: a 2 MiB frame (its content is skipped, never parsed).
      const big = Buffer.alloc(2 << 20, 0x20);
      const bigHead = Buffer.alloc(4);
      bigHead.writeUInt32BE(big.length);
      h.sendRaw(Buffer.concat([bigHead, big]));
      m = await h.next((x) => x.error && /limit is 1 MiB/.test(x.error.message));
      assert.equal(m.error.data.code, 'USAGE');
      // Unknown type, not JSON-RPC 2.0, no id, missing and ill-typed fields.
      m = await h.call('formatDisk', { target: '/dev/vda' });
      assert.match(m.error.message, /unknown type "formatDisk"/);
      h.send({ jsonrpc: '1.0', id: 'v2', method: 'listDisks' });
      m = await h.next((x) => x.id === 'v2');
      assert.match(m.error.message, /not JSON-RPC 2.0/);
      h.send({ jsonrpc: '2.0', method: 'snapshot', params: { params: { repo: never, source: path.join(work, 'img') } } });
      m = await h.next((x) => x.error && /"snapshot" request without a valid "id"/.test(x.error.message));
      assert.equal(m.id, null);
      m = await h.call('snapshot', { source: path.join(work, 'img') });
      assert.match(m.error.message, /"repo" is missing/);
      m = await h.call('snapshot', { repo: never, source: 42 });
      assert.match(m.error.message, /"source" must be an absolute path/);
      m = await h.call('restore', { repo, snapshot: 'latest', target: '/dev/vda', confirmed: true, force: true });
      assert.match(m.error.message, /unknown field "force"/);
      assert.equal(fs.existsSync(never), false);
      // Still serving after all that.
      m = await h.call('listSnapshots', { repo });
      assert.equal(m.type, 'result');
    } finally {
      await h.close();
    }
  });

  it("refuses paths outside what is allowed: /proc through a symlink, directories, other users' files and repositories", async () => {
    const uid = ensureUser(TEST_USER);
    const h = await launchHelper();
    try {
      const link = path.join(work, 'mem-link');
      fs.symlinkSync('/proc/self/mem', link);
      let m = await h.call('restore', { repo, snapshot: 'latest', target: link, dryRun: true });
      assert.equal(m.error.code, 'BAD_TARGET', JSON.stringify(m));
      assert.match(m.error.message, /kernel interface under \/proc/);
      fs.symlinkSync('/proc/kcore', path.join(work, 'kcore-link'));
      m = await h.call('snapshot', { repo, source: path.join(work, 'kcore-link') });
      assert.equal(m.error.code, 'BAD_SOURCE');
      m = await h.call('restore', { repo, snapshot: 'latest', target: work, dryRun: true });
      assert.match(m.error.message, /is a directory/);
      m = await h.call('snapshot', { repo, source: '/dev/null' });
      assert.match(m.error.message, /character device/);
      m = await h.call('restore', { repo, snapshot: 'latest', target: '/sys/kernel/notes', dryRun: true });
      assert.match(m.error.message, /kernel interface under \/sys/);
      // As another user: root's image file and root's repository are refused.
      const img = path.join(work, 'root.img');
      fs.writeFileSync(img, Buffer.alloc(1 << 20, 1));
      const other = await launchHelperFor(uid);
      try {
        assert.ok(other.sock, other.stderr());
        m = await other.call('listSnapshots', { repo });
        assert.equal(m.error.code, 'PERMISSION');
        assert.match(m.error.message, /belongs to uid 0/);
        const userRepo = path.join(work, 'user-repo');
        fs.mkdirSync(userRepo);
        fs.chownSync(userRepo, uid, uid);
        m = await other.call('snapshot', { repo: userRepo, source: img });
        assert.equal(m.error.code, 'PERMISSION');
        assert.match(m.error.message, /image file .* belongs to uid 0/);
        assert.deepEqual(fs.readdirSync(userRepo), []);
      } finally {
        await other.close();
      }
      // A request without the user's confirmation does not overwrite anything.
      const target = path.join(work, 'target.img');
      fs.writeFileSync(target, Buffer.alloc(1 << 20, 7));
      m = await h.call('restore', { repo, snapshot: 'latest', target });
      assert.match(m.error.message, /does not say the user confirmed/);
      assert.ok(fs.readFileSync(target).every((b) => b === 7));
    } finally {
      await h.close();
    }
  });

  it('refuses a mounted loop device and the system disk as restore targets (dry runs)', async () => {
    const h = await launchHelper();
    try {
      const img = path.join(work, 'fs.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 16 << 20);
      sh('mkfs.ext4', ['-q', '-F', img]);
      await withLoop(img, {}, async (dev) => {
        await withMount(dev, 'ext', {}, async () => {
          const m = await h.call('restore', { repo, snapshot: 'latest', target: dev, dryRun: true, confirmed: true });
          assert.equal(m.error.code, 'BAD_TARGET', JSON.stringify(m));
          assert.match(m.error.message, /mounted filesystems/);
        });
      });
      const rootSource = spawnSync('findmnt', ['-no', 'SOURCE', '/'], { encoding: 'utf8' }).stdout.trim();
      let sys = rootSource;
      if (sys && fs.existsSync(sys) && fs.statSync(sys).isBlockDevice()) {
        // The whole disk of the root partition, if it is one (e.g. /dev/vda1 -> /dev/vda).
        const pk = spawnSync('lsblk', ['-no', 'PKNAME', sys], { encoding: 'utf8' }).stdout.trim();
        if (pk) sys = `/dev/${pk}`;
        for (const allowSystemDisk of [false, true]) {
          const m = await h.call('restore', { repo, snapshot: 'latest', target: sys, dryRun: true, confirmed: true, allowSystemDisk });
          assert.equal(m.error.code, 'BAD_TARGET', JSON.stringify(m));
          assert.match(m.error.message, /holds the running system/);
          if (allowSystemDisk) assert.match(m.error.message, /Even with allowSystemDisk/);
        }
      } else {
        process.stdout.write(`# note: / is on ${rootSource || 'nothing'}, not a block device: system-disk refusal not exercised\n`);
      }
    } finally {
      await h.close();
    }
  });

  it('a process of another user cannot connect to the socket at all', async () => {
    ensureUser(TEST_USER);
    const h = await launchHelper({ handshake: 'none' });
    try {
      const script = `require('net').connect(process.argv[1]).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
      const r = spawnSync('runuser', ['-u', TEST_USER, '--', process.execPath, '-e', script, h.socketPath], { encoding: 'utf8' });
      assert.equal(r.stdout.trim(), 'EACCES', `${r.stdout} ${r.stderr}`);
    } finally {
      await h.close();
    }
  });
});
