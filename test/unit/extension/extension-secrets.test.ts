// Unit tests of where secrets join the engine's requests (extension/secrets.ts, s3Keys.ts,
// passwords.ts): a bucket's keys go with every request on an s3: repository and never with a
// folder's; what they are kept under (endpoint and bucket) and passwords' keys; the keys from the
// environment when none are kept; one prompt for a refusal, not shown again after a dismissal until
// allowed, and keys kept only once the repository opened with them; no secret in what it reports.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EngineError } from '../../../extension/engineError';
import { describeCall } from '../../../extension/engineRpc';
import { RepoPasswords } from '../../../extension/passwords';
import { repositoryKey, s3Bucket } from '../../../extension/paths';
import { isKeysRefusal, S3Keys, type S3Credentials } from '../../../extension/s3Keys';
import { SecretsEngine, type SecretReason, type SecretStore } from '../../../extension/secrets';
import type { EngineCall } from '../../../extension/engineTypes';

const BUCKET = 's3:http://127.0.0.1:7480/team-bucket';
const REPO = `${BUCKET}/devsnap/alice`;
const GOOD: S3Credentials = { accessKeyId: 'AKIAGOODKEY0001', secretAccessKey: 'good-secret-Zq81/xyz+abc' };
const BAD: S3Credentials = { accessKeyId: 'AKIABADKEY00002', secretAccessKey: 'bad-secret-Hh22/uvw+def' };
const ENV: S3Credentials = { accessKeyId: 'AKIAENVKEY00003', secretAccessKey: 'env-secret-Pp33/rst+ghi' };
const PASSWORD = 'correct horse battery staple';

class MemoryStore implements SecretStore {
  readonly map = new Map<string, string>();
  async get(key: string) {
    return this.map.get(key);
  }
  async store(key: string, value: string) {
    this.map.set(key, value);
  }
  async delete(key: string) {
    this.map.delete(key);
  }
}

/** The storage's refusal as the engine reports it (imaging/storage/s3.ts fail(), through toDevsnapError). */
const denied = (detail: string) =>
  new EngineError(
    'PERMISSION',
    `s3 http://127.0.0.1:7480/team-bucket/devsnap/alice refused access to the bucket "team-bucket": ${detail}. Check the access key and secret (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and ~/.aws/credentials) and that they may use the bucket "team-bucket".`,
    undefined,
    5,
  );
/** The elevated helper's refusal of a bucket request without keys (imaging/helper/checks.ts bucketRepository). */
const helperRefusal = () =>
  new EngineError(
    'USAGE',
    `Refused: the repository ${REPO} is a bucket, and the request carries no keys for it. The helper never uses root's keys (its environment or /root/.aws) on a user's behalf.`,
    'Give the keys with the request (the extension sends those of devsnap: Set S3 Credentials…).',
  );

/** An engine whose bucket takes GOOD only (and whose repository, when `password` is set, needs it); records every request. */
function bucketEngine(o: { password?: string; noKeys?: () => EngineError; echo?: boolean } = {}) {
  const calls: { op: string; params: Record<string, unknown> }[] = [];
  const call = (async (op: string, params: Record<string, unknown>) => {
    calls.push({ op, params });
    if (typeof params.repo === 'string' && params.repo.startsWith('s3:') && op !== 'kitStatus') {
      const keys = params.s3Credentials as S3Credentials | undefined;
      if (!keys) throw (o.noKeys ?? (() => denied('CredentialsProviderError: Could not load credentials from any providers')))();
      if (keys.secretAccessKey !== GOOD.secretAccessKey)
        throw denied(o.echo ? `SignatureDoesNotMatch (HTTP 403): the signature of ${keys.accessKeyId} with ${keys.secretAccessKey} does not match` : 'SignatureDoesNotMatch (HTTP 403)');
    }
    if (o.password !== undefined && params.repo !== undefined && op !== 'kitStatus' && params.password !== o.password) throw new EngineError('BAD_PASSWORD', 'The password is wrong.', undefined, 3);
    return op === 'listSnapshots' ? { snapshots: [], damaged: [] } : {};
  }) as unknown as EngineCall;
  return { calls, inner: { call } };
}

function setUp(o: { env?: NodeJS.ProcessEnv; keys?: (S3Credentials | undefined)[]; passwords?: (string | undefined)[]; engine?: ReturnType<typeof bucketEngine> } = {}) {
  const store = new MemoryStore();
  const prompts: { kind: 'keys' | 'password'; repo: string; reason: SecretReason }[] = [];
  const keyAnswers = [...(o.keys ?? [])];
  const passwordAnswers = [...(o.passwords ?? [])];
  const s3Keys = new S3Keys(
    store,
    async (repo, reason) => {
      prompts.push({ kind: 'keys', repo, reason });
      return keyAnswers.shift();
    },
    o.env ?? {},
  );
  const passwords = new RepoPasswords(store, async (repo, reason) => {
    prompts.push({ kind: 'password', repo, reason });
    return passwordAnswers.shift();
  });
  const engine = o.engine ?? bucketEngine();
  const log: string[] = [];
  const secrets = new SecretsEngine(
    () => engine.inner,
    [s3Keys, passwords],
    (l) => log.push(l),
  );
  return { store, prompts, s3Keys, passwords, engine, log, secrets };
}

/** Every text of the secrets: none may appear in what the facade reports. */
const SECRETS = [GOOD, BAD, ENV].flatMap((k) => [k.accessKeyId, k.secretAccessKey]).concat(PASSWORD);
function assertNoSecret(text: string, what: string) {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${what} holds a secret: ${text}`);
}

describe('S3 keys and passwords in requests', () => {
  it('names keys by endpoint and bucket (every folder of a bucket shares them), passwords by repository; folders keep their keys', () => {
    assert.equal(S3Keys.key(REPO), 'devsnap.s3Credentials:http://127.0.0.1:7480/team-bucket');
    assert.equal(S3Keys.key(`${BUCKET}/devsnap/bob/`), S3Keys.key(REPO));
    assert.equal(S3Keys.key(BUCKET), S3Keys.key(REPO));
    assert.equal(S3Keys.key('  s3:HTTP://127.0.0.1:7480/team-bucket/x'), S3Keys.key(REPO), 'the scheme and host as URL writes them');
    assert.equal(S3Keys.key('s3:https://s3.example.com:443/b1/x'), 'devsnap.s3Credentials:https://s3.example.com/b1', 'the default port is left out');
    assert.notEqual(S3Keys.key('s3:http://127.0.0.1:7480/other-bucket/devsnap/alice'), S3Keys.key(REPO));
    assert.notEqual(S3Keys.key('s3:http://127.0.0.1:7481/team-bucket/devsnap/alice'), S3Keys.key(REPO));
    assert.equal(S3Keys.key('/srv/backups/devsnap'), undefined, 'a folder has no keys');
    assert.equal(S3Keys.key('s3:not a url'), undefined);
    assert.equal(s3Bucket('s3:ftp://host/bucket'), undefined);
    // Passwords: a folder's key is its absolute path, as before; an s3: location is not a path.
    assert.equal(repositoryKey('/srv/backups/devsnap'), '/srv/backups/devsnap');
    assert.equal(repositoryKey('relative/repo'), path.resolve('relative/repo'));
    assert.equal(repositoryKey(`${REPO}/`), REPO);
    assert.notEqual(repositoryKey(REPO), repositoryKey(`${BUCKET}/devsnap/bob`), 'each repository of a bucket has its own password');
  });

  it('adds the kept keys to requests on an s3: repository only; a folder gets none, nor an operation that takes none', async () => {
    const { secrets, s3Keys, engine } = setUp({ env: { AWS_ACCESS_KEY_ID: ENV.accessKeyId, AWS_SECRET_ACCESS_KEY: ENV.secretAccessKey } });
    await s3Keys.set(REPO, GOOD);
    await secrets.listSnapshots(REPO);
    await secrets.listSnapshots(`${BUCKET}/devsnap/bob`);
    await secrets.listSnapshots('/srv/backups/devsnap');
    await secrets.listDisks();
    await secrets.call('kitStatus', { repo: REPO });
    await secrets.call('usage', { repo: REPO });
    await secrets.call('listSnapshots', { repo: REPO, s3Credentials: BAD }).catch(() => undefined);
    assert.deepEqual(
      engine.calls.map((c) => [c.op, c.params.repo, c.params.s3Credentials]),
      [
        ['listSnapshots', REPO, GOOD],
        ['listSnapshots', `${BUCKET}/devsnap/bob`, GOOD],
        ['listSnapshots', '/srv/backups/devsnap', undefined],
        ['listDisks', undefined, undefined],
        ['kitStatus', REPO, undefined],
        ['usage', REPO, GOOD],
        ['listSnapshots', REPO, BAD],
      ],
    );
  });

  it("without kept keys: those of VS Code's environment, else none (the engine then uses ~/.aws)", async () => {
    const withEnv = setUp({ env: { AWS_ACCESS_KEY_ID: ENV.accessKeyId, AWS_SECRET_ACCESS_KEY: ENV.secretAccessKey, AWS_SESSION_TOKEN: 'tok' } });
    assert.deepEqual(await withEnv.s3Keys.find(REPO), { ...ENV, sessionToken: 'tok' });
    const halfEnv = setUp({ env: { AWS_ACCESS_KEY_ID: ENV.accessKeyId } });
    assert.equal(await halfEnv.s3Keys.find(REPO), undefined);
    const { secrets, engine } = setUp({ engine: bucketEngine() });
    await assert.rejects(secrets.listSnapshots(REPO), (e: EngineError) => e.code === 'PERMISSION');
    assert.equal(engine.calls[0].params.s3Credentials, undefined);
    assert.ok(!('s3Credentials' in engine.calls[0].params), 'no empty field either');
  });

  it('asks once when the bucket refuses, keeps the keys only once the repository opened with them, and retries', async () => {
    const { secrets, s3Keys, prompts, engine, log } = setUp({ keys: [BAD, GOOD] });
    const r = await secrets.listSnapshots(REPO);
    assert.deepEqual(r, []);
    assert.deepEqual(
      prompts.map((p) => [p.kind, p.reason]),
      [
        ['keys', 'needed'],
        ['keys', 'wrong'],
      ],
    );
    assert.deepEqual(
      engine.calls.map((c) => c.params.s3Credentials),
      [undefined, BAD, GOOD],
    );
    assert.deepEqual(await s3Keys.get(`${BUCKET}/devsnap/bob`), GOOD, 'kept for the whole bucket');
    assert.deepEqual(log, ["The keys for http://127.0.0.1:7480/team-bucket opened s3:http://127.0.0.1:7480/team-bucket/devsnap/alice and are kept in VS Code's secret storage."]);
  });

  it('keeps nothing the bucket refused; a dismissed prompt is not shown again by background calls until allowed', async () => {
    const { secrets, s3Keys, prompts, store } = setUp({ keys: [BAD, undefined, GOOD] });
    await assert.rejects(secrets.listSnapshots(REPO), (e: EngineError) => {
      assert.equal(e.code, 'PERMISSION');
      assert.ok(isKeysRefusal(e), 'still known as a refusal of the keys (the view offers Set S3 Credentials)');
      assert.match(e.message, /The keys sent were refused/);
      assert.match(e.hint ?? '', /"devsnap: Set S3 Credentials…" .* for http:\/\/127\.0\.0\.1:7480\/team-bucket/);
      return true;
    });
    assert.equal(prompts.length, 2);
    assert.equal(store.map.size, 0, 'nothing kept');
    await assert.rejects(secrets.listSnapshots(REPO));
    await assert.rejects(secrets.listSnapshots(`${BUCKET}/devsnap/bob`));
    assert.equal(prompts.length, 2, 'not asked again for the same bucket');
    secrets.allowPrompt(REPO);
    assert.deepEqual(await secrets.listSnapshots(REPO), []);
    assert.equal(prompts.length, 3);
    assert.deepEqual(await s3Keys.get(REPO), GOOD);
  });

  it('calls that fail meanwhile wait for the one prompt', async () => {
    let answer!: (k: S3Credentials | undefined) => void;
    const { engine } = setUp();
    let asked = 0;
    const s3Keys = new S3Keys(new MemoryStore(), () => {
      asked++;
      return new Promise((r) => (answer = r));
    });
    const both = new SecretsEngine(
      () => engine.inner,
      [s3Keys],
      () => undefined,
    );
    const a = both.listSnapshots(REPO);
    const b = both.call('usage', { repo: REPO });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(asked, 1);
    answer(GOOD);
    await Promise.all([a, b]);
    assert.equal(asked, 1);
  });

  it("the elevated helper's refusal of a bucket request without keys asks for them too", async () => {
    const { secrets, prompts, s3Keys } = setUp({ keys: [GOOD], engine: bucketEngine({ noKeys: helperRefusal }) });
    assert.deepEqual(await secrets.listSnapshots(REPO), []);
    assert.deepEqual(prompts, [{ kind: 'keys', repo: REPO, reason: 'needed' }]);
    assert.deepEqual(await s3Keys.get(REPO), GOOD);
    const dismissed = setUp({ engine: bucketEngine({ noKeys: helperRefusal }) });
    await assert.rejects(dismissed.secrets.listSnapshots(REPO), (e: EngineError) => e.code === 'PERMISSION' && isKeysRefusal(e) && /elevated helper needs its keys/.test(e.message));
  });

  it('a helper that says the request carries no keys although keys were sent: a clear error, no prompt for keys', async () => {
    // A helper that loses the keys on the way (another devsnap version, say), then refuses the request.
    const helper = bucketEngine({ noKeys: helperRefusal });
    const call = (async (op: string, params: Record<string, unknown>) => helper.inner.call(op as never, { ...params, s3Credentials: undefined } as never)) as unknown as EngineCall;
    const { secrets, prompts, s3Keys } = setUp({ engine: { ...helper, inner: { call } } });
    await s3Keys.set(REPO, GOOD);
    await assert.rejects(
      secrets.listSnapshots(REPO),
      (e: EngineError) => e.code === 'INTERNAL' && /received no keys with the request although devsnap sent/.test(e.message) && /reload the window/.test(e.hint ?? ''),
    );
    assert.deepEqual(prompts, [], 'no prompt: other keys would not help');
    assert.deepEqual(await s3Keys.get(REPO), GOOD, 'the kept keys stay');
  });

  it('an encrypted repository in a bucket: the keys first, kept once the bucket opened, then its password', async () => {
    const { secrets, prompts, s3Keys, passwords, engine } = setUp({ keys: [GOOD], passwords: [undefined], engine: bucketEngine({ password: PASSWORD }) });
    await assert.rejects(secrets.listSnapshots(REPO), (e: EngineError) => e.code === 'BAD_PASSWORD' && e.message === `The repository ${REPO} is encrypted and needs its password.`);
    assert.deepEqual(
      prompts.map((p) => p.kind),
      ['keys', 'password'],
    );
    assert.deepEqual(await s3Keys.get(REPO), GOOD, 'the keys opened the bucket: kept');
    await passwords.set(REPO, PASSWORD);
    assert.deepEqual(await secrets.listSnapshots(REPO), []);
    assert.deepEqual(engine.calls.at(-1)!.params, { repo: REPO, s3Credentials: GOOD, password: PASSWORD });
    assert.equal(await passwords.get(`${BUCKET}/devsnap/bob`), undefined, "another repository's password is its own");
  });

  it('nothing of a secret in the errors or log lines the facade produces, even when the engine echoes one', async () => {
    const { secrets, log, s3Keys } = setUp({ keys: [BAD, undefined], passwords: [PASSWORD], engine: bucketEngine({ echo: true, password: PASSWORD }) });
    let err: EngineError | undefined;
    await secrets.listSnapshots(REPO).catch((e: EngineError) => (err = e));
    assert.ok(err);
    assertNoSecret(`${err.message} ${err.hint}`, 'the error');
    secrets.allowPrompt();
    // Kept keys that are refused (rotated): the error names the bucket, not the keys.
    await s3Keys.set(REPO, BAD);
    await secrets.listSnapshots(REPO).catch((e: EngineError) => (err = e));
    assertNoSecret(`${err!.message} ${err!.hint}`, 'the error');
    // Then the right keys and password, entered: kept, and logged without them.
    const ok = setUp({ keys: [GOOD], passwords: [PASSWORD], engine: bucketEngine({ echo: true, password: PASSWORD }) });
    assert.deepEqual(await ok.secrets.listSnapshots(REPO), []);
    for (const line of [...log, ...ok.log]) assertNoSecret(line, 'a log line');
    assert.equal(ok.log.length, 2, JSON.stringify(ok.log));
    // The engine's own log line of a call (engineRpc.ts) leaves the secrets out.
    const line = describeCall('listSnapshots', ok.engine.calls.at(-1)!.params);
    assert.equal(line, `listSnapshots --repo ${REPO}`);
  });

  it('Forget S3 Credentials forgets the bucket’s keys; a folder has none to forget', async () => {
    const { s3Keys, store } = setUp();
    await s3Keys.set(REPO, GOOD);
    assert.equal(await s3Keys.forget(`${BUCKET}/devsnap/bob`), true);
    assert.equal(store.map.size, 0);
    assert.equal(await s3Keys.forget(REPO), false);
    assert.equal(await s3Keys.forget('/srv/backups/devsnap'), false);
    await assert.rejects(s3Keys.set('/srv/backups/devsnap', GOOD), /not in an S3 bucket/);
    store.map.set(S3Keys.key(REPO)!, 'not json');
    assert.equal(await s3Keys.get(REPO), undefined, 'what is not a pair of keys is not sent');
  });
});
