// An engine failure meant for the user: the engine's ErrorInfo (code, message, hint).
import { check, OPS } from '../imaging/protocol';
import type { ErrorCode, OpName, OpResult } from '../imaging/protocol';

/** An engine failure meant for the user (the engine's ErrorInfo), plus the exit code. */
export class EngineError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly hint?: string,
    public readonly exitCode?: number | null,
  ) {
    super(message);
    this.name = 'EngineError';
  }
  get cancelled(): boolean {
    return this.code === 'CANCELLED';
  }
  /** "message hint" for a notification. */
  toUserMessage(): string {
    return this.hint ? `${this.message} ${this.hint}` : this.message;
  }
}

/** A result from the engine checked against its operation's schema: one that does not fit is an error, never used. */
export function checkedResult<K extends OpName>(op: K, raw: unknown, from: 'engine' | 'helper'): OpResult<K> {
  const r = check(OPS[op].result, raw);
  if (r.ok) return r.value as OpResult<K>;
  throw new EngineError(
    'INTERNAL',
    `The devsnap ${from} answered "${op}" with a result that does not fit its schema: ${r.problem}.`,
    from === 'engine' ? 'The extension and its engine may come from different versions: reinstall the extension.' : 'The extension and its helper may come from different versions: restart VS Code.',
  );
}
