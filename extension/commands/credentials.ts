// Secrets the user enters for the configured repository: devsnap.setS3Credentials and
// devsnap.forgetS3Credentials for a bucket's keys (s3Keys.ts), and what they share with Unlock
// Repository and Forget Repository Password (encryption.ts): asking until the repository opens
// with the secret, then keeping it in VS Code's SecretStorage; forgetting it.
import * as vscode from 'vscode';
import type { ErrorCode, OpParams } from '../../imaging/protocol';
import { EngineError } from '../engine';
import { isS3Repository, s3Bucket } from '../paths';
import type { S3Credentials } from '../s3Keys';
import type { RequestSecret, SecretReason } from '../secrets';
import * as ui from '../ui';
import { CommandContext, reportError } from './common';

/**
 * Asks for `kind`'s secret of `repo` (again while the engine refuses it) and tries it on the
 * repository; keeps it once the repository opened with it (or answered one of `alsoOpened`, which
 * say the secret got past). `given`: try that one only (a refusal is thrown). True when kept,
 * undefined when the user dismissed the prompt.
 */
export async function enterSecret<T>(
  ctx: CommandContext,
  repo: string,
  kind: RequestSecret<T>,
  ask: (reason: SecretReason) => Promise<T | undefined>,
  o: { given?: T; alsoOpened?: ErrorCode[] } = {},
): Promise<true | undefined> {
  ctx.secrets.allowPrompt(repo);
  let value = o.given;
  for (let reason: SecretReason = 'needed'; ; reason = 'wrong') {
    value ??= await ask(reason);
    if (value === undefined) return undefined;
    try {
      await ctx.engine().call('listSnapshots', { repo, [kind.field]: value } as OpParams<'listSnapshots'>);
    } catch (err) {
      if (!(err instanceof EngineError)) throw err;
      const refused = kind.refusal(err, repo, 'wrong');
      if (refused && o.given !== undefined) throw refused;
      if (refused) {
        value = undefined;
        continue;
      }
      if (!o.alsoOpened?.includes(err.code)) throw err;
    }
    ctx.log(await kind.keep(repo, value));
    await ctx.tree.refresh();
    return true;
  }
}

/**
 * Forgets `kind`'s secret of `repo` (the configured repository by default) and says so: `words(had)`
 * gives the log line and the message. Whether one was kept.
 */
export async function forgetSecret(
  ctx: CommandContext,
  repo: string | undefined,
  kind: { forget(repo: string): Promise<boolean> },
  words: (repo: string, had: boolean) => [log: string, message: string],
): Promise<boolean> {
  repo ??= ctx.config().repository;
  if (!repo) {
    void ui.info('No snapshot repository is configured.');
    return false;
  }
  const had = await kind.forget(repo);
  ctx.secrets.allowPrompt(repo);
  const [line, message] = words(repo, had);
  ctx.log(line);
  void ui.info(message);
  return had;
}

/** The access key and secret of the repository's bucket, in two boxes (undefined when either is dismissed). */
export async function askS3Keys(repo: string, reason: SecretReason): Promise<S3Credentials | undefined> {
  const bucket = s3Bucket(repo) ?? repo;
  const why = reason === 'needed' ? `The repository ${repo} is in the bucket ${bucket}.` : `The bucket ${bucket} refused the keys devsnap used.`;
  const title = 'devsnap: Set S3 Credentials';
  const prompt = `${why} Enter an access key that may use it; it is kept in VS Code's secret storage, for every repository in ${bucket}.`;
  ui.record('input', `${title} (1/2): ${prompt}`);
  const accessKeyId = await vscode.window.showInputBox({
    title: `${title} (1/2)`,
    prompt: `${prompt} Access key ID:`,
    placeHolder: 'access key ID',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'The access key ID is needed.'),
  });
  if (!accessKeyId?.trim()) return undefined;
  const secretAccessKey = await ui.password({
    title: `${title} (2/2)`,
    prompt: `Secret access key for ${accessKeyId.trim()} (kept in VS Code's secret storage):`,
    validateInput: (v) => (v ? undefined : 'The secret access key is needed.'),
  });
  if (!secretAccessKey) return undefined;
  return { accessKeyId: accessKeyId.trim(), secretAccessKey };
}

/** The configured repository when it is in a bucket; else says why there is nothing to do (undefined). */
function bucketRepository(ctx: CommandContext): string | undefined {
  const repo = ctx.config().repository;
  if (!repo) void ui.info('No snapshot repository is configured. Choose one, or set devsnap.repository to an s3: location, first.');
  else if (!isS3Repository(repo)) void ui.info(`The repository ${repo} is a folder: it needs no S3 keys.`);
  else if (!s3Bucket(repo)) void ui.error(`The repository setting "${repo}" names no bucket: write it as s3:https://host/bucket/folder.`);
  else return repo;
  return undefined;
}

/**
 * devsnap.setS3Credentials: asks for the keys of the configured repository's bucket (again while the
 * bucket refuses them), and keeps them once the repository opens with them (or is new: the first
 * snapshot creates it). True when kept; undefined when there is nothing to do or it was dismissed.
 */
export async function setS3Credentials(ctx: CommandContext): Promise<boolean | undefined> {
  const repo = bucketRepository(ctx);
  if (!repo) return undefined;
  try {
    const kept = await enterSecret(ctx, repo, ctx.s3Keys, (reason) => askS3Keys(repo, reason), { alsoOpened: ['NO_REPO', 'BAD_PASSWORD'] });
    if (kept) void ui.info(`devsnap keeps the keys for ${s3Bucket(repo)} in VS Code's secret storage.`);
    return kept;
  } catch (err) {
    await reportError(ctx, err, 'Setting the S3 keys');
    return false;
  }
}

/** devsnap.forgetS3Credentials: forgets the keys kept for the configured repository's bucket. */
export async function forgetS3Credentials(ctx: CommandContext): Promise<boolean> {
  const repo = bucketRepository(ctx);
  if (!repo) return false;
  const bucket = s3Bucket(repo);
  return forgetSecret(ctx, repo, ctx.s3Keys, (_, had) =>
    had
      ? [`Forgot the S3 keys for ${bucket}.`, `devsnap no longer keeps the keys for ${bucket}: it uses those of its environment or ~/.aws, or asks for them when the bucket refuses access.`]
      : [`No S3 keys were kept for ${bucket}.`, `devsnap keeps no keys for ${bucket}.`],
  );
}
