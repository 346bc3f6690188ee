// What a repository's space is used by (the `usage` operation, `devsnap stats`): per snapshot the
// stored bytes that only it references, i.e. what deleting it (forget + prune) frees, as borg's
// "deduplicated size", restic's and kopia's "unique" sizes; and the repository's totals. Also what
// creating a repository says (the `init` operation).
import * as v from 'valibot';
import { snapshotName, text } from './common';
import { S3Credentials } from './requests';

const Path = v.pipe(text(), v.minLength(1, 'must be a path'));
const IDS = 'must be a list of snapshot names';

export const UsageRequest = v.strictObject({
  repo: Path,
  /** Password of an encrypted repository. */
  password: v.optional(text()),
  s3Credentials: v.optional(S3Credentials),
  /** Also say what deleting these snapshots together would free (data no other snapshot references). */
  forget: v.optional(v.pipe(v.array(snapshotName(), IDS), v.maxLength(10000, IDS))),
});
export type UsageRequest = v.InferOutput<typeof UsageRequest>;

export const SnapshotUsage = v.object({
  id: v.string(),
  label: v.string(),
  created: v.string(),
  /** Stored (compressed, encrypted) bytes of the chunks only this snapshot references: what deleting it frees. */
  uniqueBytes: v.number(),
  uniqueChunks: v.number(),
  /** Stored bytes of every chunk it references (each chunk once), shared ones included. */
  referencedBytes: v.number(),
  referencedChunks: v.number(),
});
export type SnapshotUsage = v.InferOutput<typeof SnapshotUsage>;

export const UsageResult = v.object({
  /** Oldest first. */
  snapshots: v.array(SnapshotUsage),
  total: v.object({
    /** Stored bytes of every chunk the repository holds (the index), and how many chunks. */
    storedBytes: v.number(),
    chunks: v.number(),
    /** Stored bytes some snapshot references. */
    referencedBytes: v.number(),
    /** Stored bytes no snapshot references: what `prune` frees now. */
    unreferencedBytes: v.number(),
    /** Stored bytes referenced by two or more snapshots. */
    sharedBytes: v.number(),
  }),
  /** With `forget`: the snapshots named and what deleting them together frees. */
  forget: v.optional(v.object({ ids: v.array(v.string()), freedBytes: v.number(), chunks: v.number() })),
  /** Chunk references the index does not hold (damage: `devsnap check` tells more); not counted. */
  missingChunks: v.number(),
  /** Snapshots whose manifest cannot be read: their chunks are unknown, so sizes shared with them may read as unique. */
  damaged: v.array(v.object({ id: v.string(), message: v.string() })),
});
export type UsageResult = v.InferOutput<typeof UsageResult>;

export const InitRequest = v.strictObject({
  repo: Path,
  /** Encrypts the new repository with this password (as `devsnap init --encrypt`). */
  password: v.optional(text()),
  s3Credentials: v.optional(S3Credentials),
});
export type InitRequest = v.InferOutput<typeof InitRequest>;

export const InitResult = v.object({
  repository: v.string(),
  encrypted: v.boolean(),
});
export type InitResult = v.InferOutput<typeof InitResult>;
