// Pure path helpers for settings (no `vscode` import).
import * as os from 'os';
import * as path from 'path';

/**
 * Resolves a path from a setting: `~` is the home folder, `${workspaceFolder}` the first
 * workspace folder, relative paths are relative to that folder (or home without one).
 * Empty or blank values give undefined.
 */
export function resolveSettingPath(value: unknown, workspaceFolder?: string, home: string = os.homedir()): string | undefined {
  if (typeof value !== 'string') return undefined;
  let p = value.trim();
  if (!p) return undefined;
  if (workspaceFolder) p = p.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  if (p === '~') p = home;
  else if (p.startsWith('~/')) p = path.join(home, p.slice(2));
  if (!path.isAbsolute(p)) p = path.resolve(workspaceFolder ?? home, p);
  return path.normalize(p);
}

/**
 * The repository setting: a folder, resolved as above, or an S3 location ("s3:https://host/bucket/prefix")
 * kept as written (the engine checks it), instead of it becoming a folder called "s3:https:" in the workspace.
 */
export function resolveRepositorySetting(value: unknown, workspaceFolder?: string, home: string = os.homedir()): string | undefined {
  if (typeof value === 'string' && isS3Repository(value)) return value.trim();
  return resolveSettingPath(value, workspaceFolder, home);
}

/** A repository in an S3 bucket ("s3:https://host/bucket/prefix"), not a folder. */
export function isS3Repository(repo: string): boolean {
  return /^\s*s3:/.test(repo);
}

/** An s3: location's URL (without "s3:"), or undefined when it is a folder or not an http(s) URL naming a bucket. */
function s3Url(repo: string): { url: URL; bucket: string; rest: string[] } | undefined {
  if (!isS3Repository(repo)) return undefined;
  let url: URL;
  try {
    url = new URL(repo.trim().slice(3));
  } catch {
    return undefined;
  }
  const [bucket, ...rest] = url.pathname.split('/').filter(Boolean);
  return /^https?:$/.test(url.protocol) && bucket ? { url, bucket, rest } : undefined;
}

/**
 * The endpoint and bucket of an s3: location ("https://host:port/bucket"): what its keys are kept
 * for, so that every folder of one bucket shares them. Undefined for a folder or an s3: location
 * that names no bucket (the engine says what is wrong with it).
 */
export function s3Bucket(repo: string): string | undefined {
  const u = s3Url(repo);
  return u && `${u.url.protocol}//${u.url.host}/${u.bucket}`;
}

/** One name per repository, for what is kept about it: a folder's absolute path; an s3: location as "s3:https://host/bucket/prefix". */
export function repositoryKey(repo: string): string {
  if (!isS3Repository(repo)) return path.resolve(repo);
  const u = s3Url(repo);
  return u ? `s3:${[`${u.url.protocol}//${u.url.host}`, u.bucket, ...u.rest].join('/')}` : repo.trim();
}
