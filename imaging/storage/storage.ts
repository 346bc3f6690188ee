// Where a repository's files live: a folder on a local drive, or an S3-compatible bucket (issue 13).
// A repository is a set of named objects ("config.json", "data/ab/<id>.pack", "index/<id>.idx",
// "snapshots/<id>.json", "locks/<id>.lock") that are written whole and never changed in place, so
// both kinds of storage can hold one: what a folder does with a write aside and a rename, an object
// store does with one PUT. This is the contract every storage passes (test/unit/storage/, one
// conformance suite, restic's backend tests and kopia's blobtesting as the model).
//
// Names are relative, '/'-separated, without '.' or '..' segments, empty segments or a leading '/'.

export interface ObjectInfo {
  name: string;
  size: number;
  /** Last modification, ms since the epoch (for stale-lock rules; object stores report it to the second). */
  modified: number;
  /**
   * Changes whenever the object is written again, even with the same size in the same second: a
   * file's mtime in nanoseconds, an S3 ETag. (Listing trusts a snapshot's summary while its
   * manifest keeps the size and version the summary recorded.)
   */
  version: string;
}

export interface PutOptions {
  /** Fail with StorageError 'exists' when the name is taken (O_EXCL on a folder, If-None-Match: * on S3). */
  ifAbsent?: boolean;
  /**
   * Called once with the new object's size and version, as soon as they are known: before the
   * object becomes visible where the storage can tell (a folder: after the write aside, before the
   * rename; then a throw here cancels the put), else right after the write (S3: from the PUT's ETag).
   */
  onVersion?: (info: { size: number; version: string }) => Promise<void>;
}

/**
 * An object written piece by piece (a pack of up to `packSize` bytes, streamed so that it need not
 * be held in memory): invisible under its name until commit(), and gone after abort().
 */
export interface ObjectWriter {
  /** Bytes appended so far. */
  readonly size: number;
  /** Appends `data`; calls must not overlap. */
  append(data: Buffer): Promise<void>;
  /** Appended bytes, read back before the commit (a chunk of a pack that is still open). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Makes the whole object visible under its name (replacing one there), durable when it resolves. */
  commit(): Promise<void>;
  /** Drops everything appended; the name is untouched. No error when it was committed or aborted already. */
  abort(): Promise<void>;
}

/** Something in a storage that is not an object (for `check`): a leftover of an interrupted write, or an entry no repository writes. */
export interface Stray {
  /** The path inside the storage, '/'-separated. */
  name: string;
  kind: 'leftover' | 'not-an-object';
  /** "a temporary file of an interrupted write", "a folder", "a symbolic link", "an unfinished multipart upload", ... */
  what: string;
  /** ms since the epoch, when known. */
  modified?: number;
  /** What removeStray needs besides the name (an S3 multipart upload's id). */
  ref?: string;
}

export type StorageErrorKind = 'not-found' | 'exists' | 'unavailable' | 'denied' | 'invalid';

/** A storage failure the repository layer can act on; other errors are bugs or I/O errors passed on. */
export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

export interface Storage {
  /** "folder /media/usb/devsnap" or "s3 https://host/bucket/prefix", for messages. */
  readonly location: string;
  /** The whole object; StorageError 'not-found' when there is none. */
  get(name: string): Promise<Buffer>;
  /** `length` bytes at `offset` (fewer only at the object's end); 'not-found' when there is none. */
  getRange(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Stores `data` under `name`, whole or not at all: a reader sees the old object, none, or the new
   * one, never a part (and after a crash at any point, the same). Durable when it resolves.
   */
  put(name: string, data: Buffer, opts?: PutOptions): Promise<{ size: number; version: string }>;
  /** A writer for a large object under `name` (see ObjectWriter); nothing is visible before its commit(). */
  create(name: string): Promise<ObjectWriter>;
  /** Size and time; null when there is no such object. */
  stat(name: string): Promise<ObjectInfo | null>;
  /** Every object whose name starts with `prefix`, in name order, however many there are. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes the object; no error when there is none. */
  delete(name: string): Promise<void>;
  /**
   * What is under `prefix` but is no object: temporary files and unfinished uploads of interrupted
   * writes (kind 'leftover'), and in a folder, entries with object names that are not regular files
   * (folders, links, devices: kind 'not-an-object'), so that `check` reports them instead of
   * silently skipping them as list() does.
   */
  strays(prefix: string): AsyncIterable<Stray>;
  /** Removes a stray (a leftover that strays() listed, by its name there); no error when it is gone. */
  removeStray(stray: Stray): Promise<void>;
  /** Releases what the storage holds open (an S3 client's connections); it is not used afterwards. */
  close?(): void;
  /** Creates what holds the objects when it is missing (a bucket, at a repository's init); true when it did. A folder needs no such step. */
  ensureContainer?(): Promise<boolean>;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Checks a name against the rules above (StorageError 'invalid' otherwise): storages never see anything else. */
export function checkName(name: string): string {
  const parts = name.split('/');
  if (!name || name.length > 512 || parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) throw new StorageError('invalid', `"${name}" is not a valid object name in a repository.`);
  return name;
}

const PREFIX = /^[A-Za-z0-9._/-]*$/;

/** Checks a list() prefix: the start of a name ('' for all, "snapshots/", "data/a"); StorageError 'invalid' otherwise. */
export function checkPrefix(prefix: string): string {
  if (prefix.length > 512 || !PREFIX.test(prefix) || prefix.startsWith('/') || prefix.includes('//') || /(^|\/)\.\.?\//.test(prefix)) {
    throw new StorageError('invalid', `"${prefix}" is not a valid prefix of object names in a repository.`);
  }
  return prefix;
}

/** getRange's offset and length are non-negative safe integers (StorageError 'invalid' otherwise). */
export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new StorageError('invalid', `A range of ${length} bytes at ${offset} is not valid: both must be whole numbers ≥ 0.`);
  }
}

/** checkName as a test: list() skips what no repository writes (temporary files, keys made by other tools). */
export function isValidName(name: string): boolean {
  try {
    checkName(name);
    return true;
  } catch {
    return false;
  }
}
