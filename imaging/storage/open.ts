// The storage a repository location names: a folder path, or `s3:https://host/bucket/prefix`.
import * as path from 'path';
import { LocalStorage } from './local';
import { isS3Location, parseS3Location } from './location';
import type { S3StorageOptions } from './s3';
import type { Storage } from './storage';

export interface OpenedStorage {
  storage: Storage;
  /** The folder, resolved, for a local repository (what only a folder has: its filesystem, its device); null for a bucket. */
  folder: string | null;
  /** How messages name the repository: the folder's path, or the location as the user wrote it. */
  display: string;
}

/** The storage of a repository location. S3 credentials come from the SDK's chain (environment, AWS profile files) unless given. */
export function openStorage(location: string, s3?: S3StorageOptions): OpenedStorage {
  if (isS3Location(location)) {
    const loc = parseS3Location(location);
    const display = `s3:${loc.endpoint}/${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
    // Loaded only for a bucket: the AWS SDK adds ~22 MB to every process that loads it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { S3Storage } = require('./s3') as typeof import('./s3');
    return { storage: new S3Storage(loc, s3), folder: null, display };
  }
  const folder = path.resolve(location);
  return { storage: new LocalStorage(folder), folder, display: folder };
}
