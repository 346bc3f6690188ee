import type { ErrorCode, ErrorInfo } from '../protocol';

/** An error meant for the user: a message naming the problem and a hint saying what to do. */
export class DevsnapError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly hint?: string,
  ) {
    super(message);
    this.name = 'DevsnapError';
  }
  toInfo(): ErrorInfo {
    return this.hint ? { code: this.code, message: this.message, hint: this.hint } : { code: this.code, message: this.message };
  }
}

/** Documented CLI exit codes (README "Exit codes"). */
export const EXIT_CODES: Record<ErrorCode, number> = {
  USAGE: 2,
  NO_REPO: 3,
  REPO_EXISTS: 3,
  BAD_PASSWORD: 3,
  LOCKED: 4,
  NOT_FOUND: 5,
  PERMISSION: 6,
  BAD_SOURCE: 7,
  BAD_TARGET: 7,
  DAMAGED: 8,
  NO_SPACE: 9,
  UNAVAILABLE: 11,
  CANCELLED: 130,
  INTERNAL: 1,
};

// Effective: the elevated helper works in a user's repository with the user's rights (helper/identity.ts).
const isRoot = () => process.geteuid?.() === 0;

/** Turns any thrown value into a user-facing error, translating the common system errors. */
export function toDevsnapError(err: unknown, what?: string): DevsnapError {
  if (err instanceof DevsnapError) return err;
  // A storage's error (imaging/storage/, a layer above this one: known by its shape) already names
  // the location and what to check.
  const se = err as { name?: string; kind?: string; message?: string };
  if (se?.name === 'StorageError' && typeof se.message === 'string') {
    const code = ({ denied: 'PERMISSION', 'not-found': 'NOT_FOUND', exists: 'REPO_EXISTS', unavailable: 'UNAVAILABLE', invalid: 'USAGE' } as const)[se.kind as string] ?? 'INTERNAL';
    return new DevsnapError(
      code,
      se.message,
      code === 'UNAVAILABLE' ? 'Nothing was lost: what was not committed is cleaned up by the next run or by `devsnap prune`. Run it again when the server answers.' : undefined,
    );
  }
  const e = err as NodeJS.ErrnoException;
  const subject = what ?? e?.path ?? 'file';
  switch (e?.code) {
    case 'ENOENT':
      return new DevsnapError('NOT_FOUND', `${subject} does not exist.`, 'Check the path and try again.');
    case 'EACCES':
    case 'EPERM':
      if (isRoot()) {
        // Root is refused only by the object itself or a policy: "run as root" would not help.
        return new DevsnapError(
          'PERMISSION',
          `The system refused access to ${subject} (${e.code}), although devsnap runs as root.`,
          'The device may be read-only or write-protected (`blockdev --getro DEVICE`; `blockdev --setrw DEVICE` clears it), locked or claimed by another program; a file may be immutable (`lsattr`; `chattr -i FILE` clears it); or a security policy (SELinux, AppArmor, lockdown) forbids the access. `dmesg` may say more.',
        );
      }
      return new DevsnapError('PERMISSION', `No permission to access ${subject}.`, 'Run devsnap as root (sudo) or as the owner of the repository.');
    case 'ENOSPC':
    case 'EDQUOT':
      return new DevsnapError(
        'NO_SPACE',
        `No space left${e.code === 'EDQUOT' ? ' in your disk quota' : ''} on the device holding ${subject}.`,
        'Free some space (or run `devsnap prune`) and try again; nothing was committed.',
      );
    case 'EFBIG':
      return new DevsnapError(
        'NO_SPACE',
        `${subject} would grow larger than its filesystem allows (a FAT-formatted drive holds files of at most 4 GiB).`,
        'Choose a location on a filesystem such as ext4, NTFS or exFAT.',
      );
    case 'EROFS':
      return new DevsnapError('PERMISSION', `${subject} is on a read-only filesystem.`, 'Choose a writable location.');
    case 'EIO':
      return new DevsnapError('DAMAGED', `I/O error reading or writing ${subject}: the device may have been removed or is failing.`, 'Check the drive and its cable, then run `devsnap check`.');
    case 'ENXIO':
    case 'ENODEV':
    case 'ENOMEDIUM':
      return new DevsnapError('NOT_FOUND', `${subject} is not available: the device is gone, or holds no medium.`, 'Check that the drive is attached (and a card or disc inserted), then try again.');
    case 'EBUSY':
      return new DevsnapError('BAD_TARGET', `${subject} is busy (in use by the system).`, 'Unmount it or close programs using it.');
    case 'ENOTDIR':
      return new DevsnapError('NOT_FOUND', `${subject} cannot be reached: a part of its path is a file, not a folder.`, 'Check the path and try again.');
    case 'EISDIR':
      return new DevsnapError('USAGE', `${subject} is a folder, not a file or device.`, 'Give the path of a file or device.');
    case 'ELOOP':
      return new DevsnapError('USAGE', `${subject} is a symbolic link that devsnap does not follow here, or a loop of links.`, 'Give the real path (see `realpath`).');
    case 'ENAMETOOLONG':
      return new DevsnapError('USAGE', `The path of ${subject} is too long.`, 'Use a shorter path.');
    case 'EMFILE':
    case 'ENFILE':
      return new DevsnapError('INTERNAL', `Too many open files while working on ${subject}.`, 'Raise the limit (`ulimit -n 4096`) and try again.');
    case 'ENOMEM':
      return new DevsnapError('INTERNAL', `Out of memory while working on ${subject}.`, 'Close other programs and try again.');
    case 'ETXTBSY':
      return new DevsnapError('BAD_TARGET', `${subject} is in use by a running program.`, 'Stop the program using it and try again.');
    case 'EINVAL':
      return new DevsnapError(
        'USAGE',
        `The system rejected the operation on ${subject} (EINVAL): it is not a kind of file or device devsnap can use this way.`,
        'Give a block device or a regular disk image file.',
      );
  }
  // Node's own argument checks (ERR_INVALID_ARG_VALUE for a path with a NUL byte, and the like).
  if (typeof e?.code === 'string' && e.code.startsWith('ERR_INVALID_ARG')) {
    return new DevsnapError('USAGE', `${what ? `${what}: ` : ''}an invalid path or value was given.`, 'Check the arguments (paths must not contain NUL bytes).');
  }
  const message = e?.message ?? String(err);
  return new DevsnapError('INTERNAL', `Unexpected error: ${message}`, 'Please report this with the output of the command.');
}
