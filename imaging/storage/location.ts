// Where a repository is, as the user writes it: a folder path, or `s3:http[s]://host[:port]/bucket[/prefix]`
// (restic's form) for a bucket on any S3-compatible server (AWS, Ceph radosgw, MinIO, ...). Checked here
// once, with errors that say what a valid one looks like, so the storages get only sane parts.
import { StorageError } from './storage';

export interface S3Location {
  kind: 's3';
  /** Scheme, host and port only, e.g. "https://s3.example.com:9000". */
  endpoint: string;
  bucket: string;
  /** Folder inside the bucket the repository's objects are under, without a trailing '/'; '' for the bucket's root. */
  prefix: string;
}

export interface FolderLocation {
  kind: 'folder';
  path: string;
}

const EXAMPLE = 's3:https://s3.example.com/my-bucket/devsnap';
const SEGMENT = /^[A-Za-z0-9._-]+$/;
// S3's rules for new buckets: 3–63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isS3Location(location: string): boolean {
  return location.startsWith('s3:');
}

function refuse(location: string, why: string): never {
  throw new StorageError('invalid', `"${location}" is not a valid S3 repository location: ${why}. Write it as ${EXAMPLE}.`);
}

/** Parses `s3:https://host[:port]/bucket[/prefix]`; StorageError 'invalid' naming what is wrong otherwise. */
export function parseS3Location(location: string): S3Location {
  if (!isS3Location(location)) refuse(location, 'it does not start with "s3:"');
  // URL() would resolve "a/../b" and "%2e%2e" (and so change the bucket or the folder): check the path as written.
  const rawPath = location.slice(3).replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  if (/(^|\/)\.\.?(\/|$)|%/.test(rawPath.replace(/[?#].*/, ''))) refuse(location, 'its path has "." or ".." segments or %-escapes');
  let url: URL;
  try {
    url = new URL(location.slice(3));
  } catch {
    return refuse(location, 'the part after "s3:" is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') refuse(location, `the scheme is ${url.protocol.replace(/:$/, '')}, not https or http`);
  // Keys in a setting or a command line end up in logs and shell history: they come from the environment or ~/.aws.
  if (url.username || url.password) refuse(location, 'it holds credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile in ~/.aws/credentials) instead');
  if (url.search || url.hash) refuse(location, 'it has a query or fragment (?… or #…)');
  if (!url.hostname) refuse(location, 'it names no host');
  const parts = url.pathname.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  const bucket = parts[0];
  if (!bucket) refuse(location, 'it names no bucket after the host');
  if (!BUCKET.test(bucket) || bucket.includes('..')) refuse(location, `"${bucket}" is not a bucket name (3–63 lowercase letters, digits, "." and "-")`);
  const prefix = parts.slice(1);
  if (prefix.some((p) => !SEGMENT.test(p) || p === '.' || p === '..'))
    refuse(location, `the folder "${prefix.join('/')}" inside the bucket may hold only letters, digits, ".", "_" and "-" between single "/"`);
  return { kind: 's3', endpoint: `${url.protocol}//${url.host}`, bucket, prefix: prefix.join('/') };
}

/** A folder or an S3 location; what is not `s3:…` is a folder path. */
export function parseLocation(location: string): S3Location | FolderLocation {
  if (isS3Location(location)) return parseS3Location(location);
  if (!location) throw new StorageError('invalid', 'The repository location is empty: give a folder, or an S3 bucket as ' + EXAMPLE + '.');
  return { kind: 'folder', path: location };
}

/** The form messages name an S3 location by: "s3 https://host/bucket/prefix". */
export function describeS3(loc: S3Location): string {
  return `s3 ${loc.endpoint}/${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}
