// An engine failure meant for the user: the engine's ErrorInfo (code, message, hint).
import type { ErrorCode } from '../imaging/protocol';

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
