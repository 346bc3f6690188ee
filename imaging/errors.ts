import type { ErrorCode, ErrorInfo } from './protocol';

/** An error meant for the user: a message naming the problem and a hint saying what to do. */
export class DevsnapError extends Error {
  constructor(public readonly code: ErrorCode, message: string, public readonly hint?: string) {
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
  CANCELLED: 130,
  INTERNAL: 1,
};

/** Turns any thrown value into a user-facing error, translating the common system errors. */
export function toDevsnapError(err: unknown, what?: string): DevsnapError {
  if (err instanceof DevsnapError) return err;
  const e = err as NodeJS.ErrnoException;
  const subject = what ?? e?.path ?? 'file';
  switch (e?.code) {
    case 'ENOENT':
      return new DevsnapError('NOT_FOUND', `${subject} does not exist.`, 'Check the path and try again.');
    case 'EACCES':
    case 'EPERM':
      return new DevsnapError('PERMISSION', `No permission to access ${subject}.`, 'Run devsnap as root (sudo) or as the owner of the repository.');
    case 'ENOSPC':
      return new DevsnapError('NO_SPACE', `No space left on the device holding ${subject}.`, 'Free some space (or run `devsnap prune`) and try again; nothing was committed.');
    case 'EROFS':
      return new DevsnapError('PERMISSION', `${subject} is on a read-only filesystem.`, 'Choose a writable location.');
    case 'EIO':
      return new DevsnapError('DAMAGED', `I/O error reading or writing ${subject}: the device may have been removed or is failing.`, 'Check the drive and its cable, then run `devsnap check`.');
    case 'EBUSY':
      return new DevsnapError('BAD_TARGET', `${subject} is busy (in use by the system).`, 'Unmount it or close programs using it.');
  }
  const message = e?.message ?? String(err);
  return new DevsnapError('INTERNAL', `Unexpected error: ${message}`, 'Please report this with the output of the command.');
}
