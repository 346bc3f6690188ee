// Encryption that cannot be silently switched off or broken (issue 10, item 15): whoever can write
// the repository (a NAS, a shared drive) edits config.json; bit rot hits the wrapped key. Every
// repository here is made by the real CLI; config.json is then edited as an attacker or a failing
// disk would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);

const PW = { DEVSNAP_PASSWORD: 'correct horse battery staple' };
const NO_PW = { DEVSNAP_PASSWORD: '' };
/** The CLI gives up on these after this long: without the KDF bounds, raised parameters ran for hours. */
const HANG_MS = 60_000;
/** What devsnap says of a repository whose key or config.json needs rewriting. */
const KEY_WARNINGS = /damaged copy|earlier devsnap|config\.json/;

/** A small source image: random data and zeros (a few chunks of the default size's worth of work, in 256 KiB). */
function source(dir: string): string {
  const file = path.join(dir, 'src.img');
  const b = Buffer.alloc(256 << 10);
  seededBytes(15, 64 << 10).copy(b, 0);
  fs.writeFileSync(file, b);
  return file;
}

/** An encrypted repository holding one snapshot of `src`. */
function encryptedRepo(dir: string, src: string, name = 'repo', pw: NodeJS.ProcessEnv = PW): string {
  const repo = path.join(dir, name);
  const init = devsnap(['init', '--encrypt', '--chunk-size', '65536', '--repo', repo, '--json'], pw);
  assert.equal(init.status, 0, init.stderr);
  const snap = devsnap(['snapshot', src, '--repo', repo, '--json'], pw);
  assert.equal(snap.status, 0, snap.stderr);
  return repo;
}

// config.json as parsed JSON, which the tests edit into hostile shapes (values of the wrong type or
// out of range, fields removed): deliberately untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- hostile edits of parsed JSON
type ConfigJson = any;

const configPath = (repo: string) => path.join(repo, 'config.json');
const readConfig = (repo: string) => JSON.parse(fs.readFileSync(configPath(repo), 'utf8'));
function editConfig(repo: string, edit: (c: ConfigJson) => void): void {
  const c = readConfig(repo);
  edit(c);
  fs.writeFileSync(configPath(repo), JSON.stringify(c, null, 2));
}

/** Every file under data/, index/ and snapshots/ with its size: what a refused command must leave as it was. */
function contents(repo: string): string {
  return sh('find', ['data', 'index', 'snapshots', '-type', 'f', '-printf', '%p %s\n'], { cwd: repo }).stdout.split('\n').sort().join('\n');
}

/** A base64 string with one character changed (in the middle, so it stays valid base64): a flipped bit on disk. */
const flip = (b64: string, at = 20) => b64.slice(0, at) + (b64[at] === 'A' ? 'B' : 'A') + b64.slice(at + 1);

function expectError(r: ReturnType<typeof devsnap>, code: string, mention: RegExp): void {
  assert.notEqual(r.status, 0, `expected ${code}, the command succeeded: ${r.stdout}`);
  assert.equal(r.json?.error?.code, code, r.stdout + r.stderr);
  assert.match(r.json.error.message, mention);
  assert.ok(r.json.error.hint, 'says what to do');
}

test('config.json switched to unencrypted: refused with or without the password, and nothing is stored in plaintext', () => {
  const dir = tmpDir();
  const src = source(dir);
  const repo = encryptedRepo(dir, src);
  const before = contents(repo);
  // The attacker makes the repository look like a plain one everywhere config.json says so.
  editConfig(repo, (c) => {
    c.encryption = null;
    c.chunkHash = 'sha256';
    c.version = 1;
    delete c.sealed;
  });
  for (const env of [PW, NO_PW]) {
    expectError(devsnap(['snapshot', src, '--repo', repo, '--json'], env), 'DAMAGED', /not encrypted.*sealed/);
    assert.equal(contents(repo), before, 'nothing written');
  }
  expectError(devsnap(['list', '--repo', repo, '--json'], NO_PW), 'DAMAGED', /changed/);

  // The same with every snapshot deleted too (no sealed manifest left to show): the password the
  // owner gives says encryption is expected, so writing is still refused.
  fs.rmSync(path.join(repo, 'snapshots'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'snapshots'));
  const emptied = contents(repo);
  expectError(devsnap(['snapshot', src, '--repo', repo, '--json'], PW), 'USAGE', /not encrypted, but a password was given/);
  assert.equal(contents(repo), emptied, 'nothing written');
});

test('an unencrypted repository works as before without a password, and is refused with one', () => {
  const dir = tmpDir();
  const src = source(dir);
  const repo = path.join(dir, 'plain');
  // A password without --encrypt would make a repository every later command (given it) refuses.
  expectError(devsnap(['init', '--repo', repo, '--json'], PW), 'USAGE', /not --encrypt/);
  assert.ok(!fs.existsSync(repo));
  assert.equal(devsnap(['init', '--repo', repo], NO_PW).status, 0);
  const snap = devsnap(['snapshot', src, '--repo', repo, '--json'], NO_PW);
  assert.equal(snap.status, 0, snap.stderr);
  assert.equal(devsnap(['list', '--repo', repo, '--json'], NO_PW).json.snapshots.length, 1);
  const before = contents(repo);
  expectError(devsnap(['snapshot', src, '--repo', repo, '--json'], PW), 'USAGE', /not encrypted, but a password was given/);
  assert.equal(contents(repo), before);
  const out = path.join(dir, 'out.img');
  assert.equal(devsnap(['restore', snap.json.id, out, '--repo', repo], NO_PW).status, 0);
  sh('cmp', [src, out]);
});

test('any changed setting of an encrypted config.json is reported as tampered, naming it; put back, the repository works', () => {
  const dir = tmpDir();
  const src = source(dir);
  const repo = encryptedRepo(dir, src);
  const original = fs.readFileSync(configPath(repo));
  const before = contents(repo);
  const edits: [string, (c: ConfigJson) => void][] = [
    ['chunkSize', (c) => (c.chunkSize = 4096)],
    ['packSize', (c) => (c.packSize = 1 << 20)],
    ['compression', (c) => (c.compression.level = 19)],
    ['chunkHash', (c) => (c.chunkHash = 'sha256')],
    ['id', (c) => (c.id = 'f'.repeat(32))],
    ['version', (c) => (c.version = 1)],
    ['sealed', (c) => delete c.sealed],
    ['sealed', (c) => (c.sealed = flip(c.sealed))],
    ['extra', (c) => (c.extra = true)],
  ];
  for (const [field, edit] of edits) {
    fs.writeFileSync(configPath(repo), original);
    editConfig(repo, edit);
    expectError(devsnap(['list', '--repo', repo, '--json'], PW), 'DAMAGED', new RegExp(`tampered.*${field}`));
    expectError(devsnap(['snapshot', src, '--repo', repo, '--json'], PW), 'DAMAGED', new RegExp(field));
    assert.equal(contents(repo), before, `nothing written with a changed ${field}`);
  }
  fs.writeFileSync(configPath(repo), original);
  const list = devsnap(['list', '--repo', repo, '--json'], PW);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(list.json.snapshots.length, 1);
  assert.doesNotMatch(list.stderr, KEY_WARNINGS, 'no warning on an intact repository');
});

test('implausible scrypt parameters are refused before scrypt runs, naming the field; one bad copy falls back to the other', () => {
  const dir = tmpDir();
  const src = source(dir);
  const repo = encryptedRepo(dir, src);
  const original = fs.readFileSync(configPath(repo));
  const cases: [string, (k: ConfigJson) => void][] = [
    ['N', (k) => (k.N = 2 ** 30)],
    ['N', (k) => (k.N = 3)],
    ['N', (k) => (k.N = '32768')],
    ['r', (k) => (k.r = 1_000_000)],
    ['p', (k) => (k.p = 1_000_000_000)],
    ['N and .r', (k) => ((k.N = 2 ** 20), (k.r = 32))], // 4 GiB of memory
    ['N, .r and .p', (k) => ((k.N = 2 ** 20), (k.r = 2), (k.p = 16))], // 128 times the work of the default
  ];
  for (const [field, edit] of cases) {
    fs.writeFileSync(configPath(repo), original);
    editConfig(repo, (c) => [c.encryption, c.encryption.copy].forEach((k) => k && edit(k)));
    const r = devsnap(['list', '--repo', repo, '--json'], PW, HANG_MS);
    expectError(r, 'DAMAGED', new RegExp(`encryption\\.${field.replace('.', '\\.')}`));
    assert.match(r.json.error.message, /key/);
  }
  // Only the first copy raised: the second opens the repository, the next writer repairs the first.
  fs.writeFileSync(configPath(repo), original);
  editConfig(repo, (c) => (c.encryption.N = 2 ** 30));
  const list = devsnap(['list', '--repo', repo, '--json'], PW, HANG_MS);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stderr, /damaged copy.*encryption\.N/);
  assert.equal(devsnap(['snapshot', src, '--repo', repo, '--json'], PW).status, 0);
  assert.equal(readConfig(repo).encryption.N, 2 ** 15, 'repaired');
  const again = devsnap(['list', '--repo', repo, '--json'], PW);
  assert.equal(again.json.snapshots.length, 2);
  assert.doesNotMatch(again.stderr, KEY_WARNINGS);
});

test('a damaged wrapped key is told apart from a wrong password: the other copy is used and repaired; both damaged is DAMAGED', () => {
  const dir = tmpDir();
  const src = source(dir);
  const repo = encryptedRepo(dir, src);
  const original = fs.readFileSync(configPath(repo));
  const wrongPw = { DEVSNAP_PASSWORD: 'Tr0ub4dor&3' };
  expectError(devsnap(['list', '--repo', repo, '--json'], wrongPw), 'BAD_PASSWORD', /wrong/);

  // One copy damaged (in its key, its salt, or the copy's key): opens, says so, and a writer repairs it.
  const oneDamaged: [string, (c: ConfigJson) => void][] = [
    ['encryption fails its checksum', (c) => (c.encryption.wrappedKey = flip(c.encryption.wrappedKey))],
    ['encryption fails its checksum', (c) => (c.encryption.salt = flip(c.encryption.salt, 3))],
    ['encryption.copy fails its checksum', (c) => (c.encryption.copy.wrappedKey = flip(c.encryption.copy.wrappedKey, 50))],
    ['encryption.copy is missing', (c) => delete c.encryption.copy],
  ];
  for (const [what, damage] of oneDamaged) {
    fs.writeFileSync(configPath(repo), original);
    editConfig(repo, damage);
    const list = devsnap(['list', '--repo', repo, '--json'], PW);
    assert.equal(list.status, 0, `${what}: ${list.stdout}${list.stderr}`);
    assert.equal(list.json.snapshots.length, 1);
    assert.ok(list.stderr.includes(what) || (what.endsWith('missing') && /second key copy.*missing/.test(list.stderr)), list.stderr);
    // A wrong password is still a wrong password while one copy is intact.
    expectError(devsnap(['list', '--repo', repo, '--json'], wrongPw), 'BAD_PASSWORD', /wrong/);
    const label = devsnap(['label', 'latest', 'repaired', '--repo', repo, '--json'], PW);
    assert.equal(label.status, 0, label.stderr);
    assert.match(label.stderr, /Repaired/);
    const after = devsnap(['list', '--repo', repo, '--json'], PW);
    assert.doesNotMatch(after.stderr, KEY_WARNINGS, `${what}: repaired, no more warning`);
  }

  // Both copies damaged: the key is lost, and the user is told that (not "wrong password").
  fs.writeFileSync(configPath(repo), original);
  editConfig(repo, (c) => {
    c.encryption.wrappedKey = flip(c.encryption.wrappedKey);
    c.encryption.copy.wrappedKey = flip(c.encryption.copy.wrappedKey, 40);
  });
  for (const env of [PW, wrongPw]) {
    const r = devsnap(['list', '--repo', repo, '--json'], env);
    expectError(r, 'DAMAGED', /repository key .* is damaged/);
    assert.match(r.json.error.hint, /another copy/);
  }

  // A copy replaced (checksum and all) by the key of another repository: one of the attacker's
  // (another password), or another of the owner's with the same password. The owner's password
  // opens the right copy, and the replaced one is reported.
  const replaced: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['attacker', wrongPw, /encryption does not open with the password that opens encryption\.copy/],
    ['sibling', PW, /encryption holds another key than encryption\.copy/],
  ];
  for (const [name, pw, report] of replaced) {
    const foreign = readConfig(encryptedRepo(dir, src, name, pw)).encryption;
    fs.writeFileSync(configPath(repo), original);
    editConfig(repo, (c) => {
      for (const k of ['salt', 'wrappedKey', 'checksum']) c.encryption[k] = foreign[k];
    });
    const swapped = devsnap(['list', '--repo', repo, '--json'], PW);
    assert.equal(swapped.status, 0, swapped.stderr);
    assert.equal(swapped.json.snapshots.length, 1);
    assert.match(swapped.stderr, report);
  }
});

test('a repository of the previous devsnap opens with a warning, is upgraded by the next writer, and cannot be rolled back to it', () => {
  const dir = tmpDir();
  // Made by devsnap before this change (commit a39b336): `init --encrypt --chunk-size 65536` and one
  // snapshot of source() with the password below.
  const repo = path.join(dir, 'legacy');
  fs.cpSync(path.join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'legacy-encrypted-repo'), repo, { recursive: true });
  fs.mkdirSync(path.join(repo, 'locks'));
  const pw = { DEVSNAP_PASSWORD: 'legacy password' };
  assert.equal(readConfig(repo).version, 1);
  const list = devsnap(['list', '--repo', repo, '--json'], pw);
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(
    list.json.snapshots.map((s: { id: string }) => s.id),
    ['88442920a0427261'],
  );
  assert.match(list.stderr, /earlier devsnap.*upgrades it/);
  expectError(devsnap(['list', '--repo', repo, '--json'], { DEVSNAP_PASSWORD: 'nope' }), 'BAD_PASSWORD', /wrong/);

  const src = source(dir);
  const snap = devsnap(['snapshot', src, '--repo', repo, '--json'], pw);
  assert.equal(snap.status, 0, snap.stderr);
  assert.match(snap.stderr, /Upgraded config\.json/);
  assert.equal(snap.json.snapshot.stats.bytesAdded, 0, "the same key: the old snapshot's chunks are reused");
  assert.ok(snap.json.snapshot.stats.chunksReused > 0);
  const c = readConfig(repo);
  assert.equal(c.version, 2);
  assert.ok(c.sealed && c.encryption.copy && c.encryption.checksum);
  const quiet = devsnap(['list', '--repo', repo, '--json'], pw);
  assert.doesNotMatch(quiet.stderr, KEY_WARNINGS);
  const out = path.join(dir, 'out.img');
  assert.equal(devsnap(['restore', '88442920a0427261', out, '--repo', repo], pw).status, 0);
  sh('cmp', [src, out]);

  // Made to look like the old format again (seal and copy stripped, version 1) to change a setting
  // unnoticed: the key itself says its settings are sealed.
  editConfig(repo, (k) => {
    k.version = 1;
    delete k.sealed;
    delete k.encryption.copy;
    delete k.encryption.checksum;
    k.chunkSize = 4096;
  });
  expectError(devsnap(['list', '--repo', repo, '--json'], pw), 'DAMAGED', /sealed copy of the settings is missing/);
});
