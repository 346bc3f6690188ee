// What every message shares: the protocol version, errors and progress events.
import * as v from 'valibot';

export const PROTOCOL_VERSION = 2;

/** Stable error codes; the CLI maps them to exit codes (see EXIT_CODES in core/errors.ts). */
export const ErrorCode = v.picklist([
  'USAGE', //        bad command line / request
  'NO_REPO', //      repository missing or not a devsnap repository
  'REPO_EXISTS',
  'BAD_PASSWORD',
  'LOCKED', //       another process holds the repository lock
  'NOT_FOUND', //    snapshot / source / target does not exist
  'PERMISSION', //   no permission to read/write a device or file
  'BAD_SOURCE',
  'BAD_TARGET', //   too small, mounted, system disk, not a device/file
  'DAMAGED', //      hash mismatch, corrupt pack, truncated manifest
  'NO_SPACE',
  'UNAVAILABLE', //  the repository's server (S3) did not answer, after retries
  'CANCELLED',
  'INTERNAL',
]);
export type ErrorCode = v.InferOutput<typeof ErrorCode>;
export const ERROR_CODES: readonly ErrorCode[] = ErrorCode.options;

export const ErrorInfo = v.object({
  code: ErrorCode,
  /** What went wrong, naming the thing. */
  message: v.string(),
  /** What to do about it. */
  hint: v.optional(v.string()),
});
export type ErrorInfo = v.InferOutput<typeof ErrorInfo>;

/** Emitted while long work runs (one JSON object per line on stderr with `--progress json`). */
export const ProgressEvent = v.object({
  type: v.literal('progress'),
  /** e.g. 'scan', 'image', 'restore', 'verify', 'prune' */
  phase: v.string(),
  bytesDone: v.number(),
  bytesTotal: v.number(),
  /** Bytes per second, smoothed. */
  rate: v.number(),
  etaSeconds: v.nullable(v.number()),
  /** e.g. 'partition 2 (ext4)' */
  message: v.optional(v.string()),
});
export type ProgressEvent = v.InferOutput<typeof ProgressEvent>;

// Field schemas of requests. Each message is a predicate, so that a failure reads
// `"field" must be ...` (describeIssues in ops.ts).
const WHOLE = 'must be a whole number';
/** Integers that count something (bytes, partitions, entries). */
export const count = () => v.pipe(v.number(WHOLE), v.safeInteger(WHOLE), v.minValue(0, WHOLE));
export const bool = () => v.boolean('must be true or false');
/** A snapshot's name as a request gives it: an id, a unique prefix or 'latest'. */
export const snapshotName = () => {
  const m = 'must be a snapshot id or prefix (letters, digits, . _ : -)';
  return v.pipe(v.string(m), v.regex(/^[A-Za-z0-9_.:-]{1,128}$/, m));
};
/** A text field: bounded, no NUL bytes (they end C strings in the tools it reaches). */
export const text = (max = 4096) => {
  const m = `must be a string of at most ${max} characters without NUL bytes`;
  return v.pipe(
    v.string(m),
    v.maxLength(max, m),
    v.check((s) => !s.includes('\0'), m),
  );
};
/** An absolute path (what the elevated helper accepts). */
export const absolutePath = () => {
  const m = 'must be an absolute path';
  const bounded = 'must be a string of at most 4096 characters without NUL bytes';
  return v.pipe(
    v.string(m),
    v.startsWith('/', m),
    v.maxLength(4096, bounded),
    v.check((s) => !s.includes('\0'), bounded),
  );
};
