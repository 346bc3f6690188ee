// Keys for repositories in S3 buckets: kept in VS Code's SecretStorage (the system keychain), one
// pair per endpoint and bucket (every folder of a bucket shares them), never in settings, logs,
// command lines or error messages. S3Keys is the kind of secret that SecretsEngine (secrets.ts) adds
// to every request on an s3: repository: the kept keys; else AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY from VS Code's own environment; else none, and the engine as the user uses
// the AWS SDK's chain (AWS_PROFILE, ~/.aws). The elevated helper never uses root's keys: it takes a
// bucket only with keys in the request. A refusal of the keys asks for them (Set S3 Credentials).
// No `vscode` import: the store and the prompt are passed in.
import type { S3Credentials } from '../imaging/protocol';
import { EngineError } from './engineError';
import { s3Bucket } from './paths';
import type { RequestSecret, SecretReason, SecretStore } from './secrets';

export type { S3Credentials };

/** Asks the user for a bucket's keys (the repository's location names it); undefined when dismissed. */
export type S3KeysPrompt = (repo: string, reason: SecretReason) => Promise<S3Credentials | undefined>;

export const SET_KEYS_COMMAND = 'devsnap: Set S3 Credentials…';

/** What to do about keys a bucket refused or that are missing. */
export const keysHint = (bucket: string): string =>
  `Run "${SET_KEYS_COMMAND}" to give the access key and secret for ${bucket} (kept in VS Code's secret storage), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in VS Code's environment or a profile in ~/.aws/credentials.`;

/**
 * The engine's answer that a bucket refused the keys (or found none): the storage's 'denied' (imaging/storage/s3.ts,
 * whose message names AWS_ACCESS_KEY_ID), the elevated helper's refusal of a bucket request without keys
 * (imaging/helper/checks.ts), or SecretsEngine's report of either (its hint names the command).
 */
export function isKeysRefusal(err: EngineError): boolean {
  return (
    (err.code === 'PERMISSION' && (err.message.includes('AWS_ACCESS_KEY_ID') || !!err.hint?.includes(SET_KEYS_COMMAND))) ||
    (err.code === 'USAGE' && /is a bucket, and the request carries no keys/.test(err.message))
  );
}

/** Keys as kept (JSON), or undefined when what is kept is not a pair of keys. */
function parseKeys(text: string | undefined): S3Credentials | undefined {
  try {
    const o = JSON.parse(text ?? '') as Partial<S3Credentials>;
    if (typeof o.accessKeyId !== 'string' || typeof o.secretAccessKey !== 'string' || !o.accessKeyId || !o.secretAccessKey) return undefined;
    return { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey, ...(typeof o.sessionToken === 'string' && o.sessionToken ? { sessionToken: o.sessionToken } : {}) };
  } catch {
    return undefined;
  }
}

export class S3Keys implements RequestSecret<S3Credentials> {
  readonly field = 's3Credentials';
  constructor(
    private readonly secrets: SecretStore,
    readonly prompt?: S3KeysPrompt,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The SecretStorage key of a repository's bucket; undefined for a folder. */
  static key(repo: string): string | undefined {
    const bucket = s3Bucket(repo);
    return bucket && `devsnap.s3Credentials:${bucket}`;
  }
  /** The keys kept for the repository's bucket. */
  async get(repo: string): Promise<S3Credentials | undefined> {
    const key = S3Keys.key(repo);
    return key ? parseKeys(await this.secrets.get(key)) : undefined;
  }
  async set(repo: string, keys: S3Credentials): Promise<void> {
    const key = S3Keys.key(repo);
    if (!key) throw new EngineError('USAGE', `The repository ${repo} is not in an S3 bucket: it takes no S3 keys.`);
    await this.secrets.store(key, JSON.stringify(keys));
  }
  async forget(repo: string): Promise<boolean> {
    const key = S3Keys.key(repo);
    if (!key) return false;
    const had = (await this.get(repo)) !== undefined;
    await this.secrets.delete(key);
    return had;
  }
  /** The keys in VS Code's environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN if set). */
  fromEnvironment(): S3Credentials | undefined {
    const { AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: token } = this.env;
    return id && secret ? { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) } : undefined;
  }

  scope(repo: string): string | undefined {
    return s3Bucket(repo);
  }
  async find(repo: string): Promise<S3Credentials | undefined> {
    return (await this.get(repo)) ?? this.fromEnvironment();
  }
  async keep(repo: string, keys: S3Credentials): Promise<string> {
    await this.set(repo, keys);
    return `The keys for ${s3Bucket(repo)} opened ${repo} and are kept in VS Code's secret storage.`;
  }
  refusal(err: EngineError, repo: string, reason: SecretReason): EngineError | undefined {
    if (!isKeysRefusal(err)) return undefined;
    const bucket = s3Bucket(repo)!;
    if (err.code === 'USAGE' && reason !== 'needed') {
      // Keys were sent, yet the helper saw none: neither the bucket's doing nor the keys' fault, so
      // asking for keys again would not help. Thrown, not returned: SecretsEngine prompts for what it is returned.
      throw new EngineError(
        'INTERNAL',
        `The repository ${repo} is in a bucket, and the elevated helper received no keys with the request although devsnap sent the keys kept for ${bucket}.`,
        'The helper may be of another devsnap version: reload the window (the helper starts again). If it persists, please report it with the devsnap output log.',
      );
    }
    const message =
      err.code === 'USAGE'
        ? `The repository ${repo} is in a bucket, and the elevated helper needs its keys with the request (it never uses root's): none are kept for ${bucket}, nor set in VS Code's environment.`
        : reason === 'needed'
          ? `${err.message.replace(/\.?$/, '.')} No keys are kept for ${bucket}, nor set in VS Code's environment.`
          : `${err.message.replace(/\.?$/, '.')} The keys sent were refused.`;
    return new EngineError('PERMISSION', message, keysHint(bucket), err.exitCode);
  }
}
