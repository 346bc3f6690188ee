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
  /** "message hint" for a notification (the hint without the CLI's options: see plainHint). */
  toUserMessage(): string {
    const hint = this.hint ? plainHint(this.hint) : '';
    return hint ? `${this.message} ${hint}` : this.message;
  }
}

/**
 * An engine hint as the extension shows it: the engine writes its hints for the CLI too, and the
 * CLI's options ("--fuzzy", "--force") mean nothing in VS Code. A clause that offers an option
 * (", or use --freeze (…)", "; meanwhile use --fuzzy …") is left out, and so is a sentence that
 * still names one; what remains says what to do. A hint made only of options becomes ''.
 */
export function plainHint(hint: string): string {
  const FLAG = /(^|[\s(`])--[a-z][\w-]*/;
  if (!FLAG.test(hint)) return hint;
  const sentences = hint.split(/(?<=[.!?])\s+/);
  const kept: string[] = [];
  for (const raw of sentences) {
    let s = raw.trim();
    if (!FLAG.test(s)) {
      if (s) kept.push(s);
      continue;
    }
    const cut = s.search(/(,|;)?\s+(or|meanwhile|and)?\s*(use|with|run with|pass|add)?\s*`?--[a-z]/i);
    s = cut > 0 ? s.slice(0, cut).replace(/[\s,;:(]+$/, '') : '';
    if (s.split(/\s+/).length < 3) s = ''; // "Use --force.": nothing left to say
    if (s && !FLAG.test(s)) kept.push(/[.!?]$/.test(s) ? s : `${s}.`);
  }
  return kept.join(' ');
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
