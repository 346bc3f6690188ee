// What the engine is doing now, for the status bar and the Snapshots view: a snapshot, restore,
// verify or undo that runs, its percent, and the "finishing" stretch between 100% and the result (the
// engine writes and syncs the index and manifest then). It watches the engine the commands use
// (`track(engine)`), through the progress callbacks they already pass, so no command changes.
// When a primary phase reaches 100% it also reports a "finishing" progress event to the caller,
// so the command's own notification does not sit silent at 100% either.
// No `vscode` import (unit-tested in test/unit/extension/extension-activity.test.ts).
import type { ProgressEvent } from '../imaging/protocol';
import { formatDuration, formatRate } from '../imaging/core/format';
import type { Engine, ProgressListener } from './engineTypes';

export type ActivityKind = 'snapshot' | 'restore' | 'verify' | 'undo';

export interface Activity {
  readonly seq: number;
  readonly kind: ActivityKind;
  /** What it works on: the source disk, the target, the snapshot id ("all snapshots" when none). */
  readonly subject: string;
  readonly startedAt: number;
  /** 0..100 once the engine reported a total; undefined before. */
  percent?: number;
  /** The engine's last progress line ("image · 42% · 85 MB/s · 10 s left"), without the finishing text. */
  detail?: string;
  /** The primary phase is done; the engine is writing the result. */
  finishing: boolean;
  /** The engine returned; the result is being shown (the tree reloads). */
  done: boolean;
}

/** The phases whose percent is the operation's percent (as the commands' notifications count them). */
const PRIMARY: Record<ActivityKind, string> = { snapshot: 'image', restore: 'restore', verify: 'verify', undo: 'restore-files' };

/** What the engine does between 100% and its result, as the progress line says it. */
export const FINISHING_TEXT: Record<ActivityKind, string> = {
  snapshot: 'finishing: saving the index and the snapshot',
  restore: 'finishing: flushing the target',
  verify: 'finishing: collecting the results',
  undo: 'finishing: setting folder times back',
};

/** The engine's operation names that are activities, by the Engine method or `call` op. */
const OPS: Record<string, ActivityKind> = { snapshot: 'snapshot', restore: 'restore', verify: 'verify', undo: 'undo' };

type Listener = () => void;

export class ActivityTracker {
  private readonly running: Activity[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly wrapped = new WeakMap<object, Engine>();
  private seq = 0;

  /** Running (and just-finished) activities, oldest first. */
  get activities(): readonly Activity[] {
    return this.running;
  }
  /** The newest running activity, if any. */
  get current(): Activity | undefined {
    return this.running[this.running.length - 1];
  }

  onDidChange(listener: Listener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private fire(): void {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch {
        /* a listener's failure is not the engine's */
      }
    }
  }

  /**
   * The engine as the commands should use it: the same object's methods, with snapshot, restore and
   * verify (as methods or through `call`) tracked. One wrapper per engine object.
   */
  track<E extends Engine>(engine: E): E {
    const known = this.wrapped.get(engine);
    if (known) return known as E;
    const proxy = new Proxy(engine, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (prop === 'call') {
          return (op: string, params: Record<string, unknown>, options?: { progress?: ProgressListener }) => {
            const kind = OPS[op];
            if (!kind) return fn.call(target, op, params, options);
            return this.run(kind, subjectOf(kind, params), options?.progress, (progress) => fn.call(target, op, params, { ...options, progress }) as Promise<unknown>);
          };
        }
        const kind = typeof prop === 'string' && Object.prototype.hasOwnProperty.call(OPS, prop) ? OPS[prop] : undefined;
        if (!kind) return fn.bind(target);
        return (opts: Record<string, unknown>, onProgress?: ProgressListener, ...rest: unknown[]) =>
          this.run(kind, subjectOf(kind, opts), onProgress, (progress) => fn.call(target, opts, progress, ...rest) as Promise<unknown>);
      },
    });
    this.wrapped.set(engine, proxy);
    return proxy;
  }

  /** Runs one tracked operation: the caller's listener sees every event, plus "finishing" at 100%. */
  private async run<T>(kind: ActivityKind, subject: string, listener: ProgressListener | undefined, work: (progress: ProgressListener) => Promise<T>): Promise<T> {
    const a: Activity = { seq: ++this.seq, kind, subject, startedAt: Date.now(), finishing: false, done: false };
    this.running.push(a);
    this.fire();
    const progress: ProgressListener = (ev) => {
      listener?.(ev);
      if (ev.phase === 'finishing') return;
      const primary = ev.phase === PRIMARY[kind];
      if (primary && ev.bytesTotal > 0) a.percent = Math.max(0, Math.min(100, Math.floor((ev.bytesDone / ev.bytesTotal) * 100)));
      a.detail = progressDetail(ev);
      const reachedEnd = primary && ev.bytesTotal > 0 && ev.bytesDone >= ev.bytesTotal;
      if (reachedEnd && !a.finishing) {
        a.finishing = true;
        listener?.(finishingEvent(kind));
      } else if (!reachedEnd && a.finishing && primary) {
        a.finishing = false; // a second pass (verify of several snapshots reports one total, but be safe)
      }
      this.fire();
    };
    try {
      const result = await work(progress);
      a.done = true;
      a.finishing = true;
      this.fire();
      return result;
    } catch (err) {
      this.remove(a);
      throw err;
    }
  }

  /** Forgets activities whose engine work is done (called once their result is shown: the tree reloaded). */
  settle(): void {
    const before = this.running.length;
    for (const a of [...this.running]) if (a.done) this.remove(a, false);
    if (this.running.length !== before) this.fire();
  }

  private remove(a: Activity, fire = true): void {
    const i = this.running.indexOf(a);
    if (i >= 0) this.running.splice(i, 1);
    if (fire) this.fire();
  }

  dispose(): void {
    this.listeners.clear();
  }
}

function subjectOf(kind: ActivityKind, p: Record<string, unknown> | undefined): string {
  const s = (k: string) => (typeof p?.[k] === 'string' ? (p[k] as string) : undefined);
  if (kind === 'snapshot') return s('source') ?? '';
  if (kind === 'restore' || kind === 'undo') return s('target') ?? '';
  return s('id') ?? s('snapshot') ?? 'all snapshots';
}

function progressDetail(ev: ProgressEvent): string {
  const parts: string[] = [];
  if (ev.rate > 0) parts.push(formatRate(ev.rate));
  if (ev.etaSeconds !== null && Number.isFinite(ev.etaSeconds) && ev.bytesDone < ev.bytesTotal) parts.push(`${formatDuration(ev.etaSeconds)} left`);
  if (ev.message) parts.push(ev.message);
  return parts.join(' · ');
}

/** The event the caller's listener gets at 100%: no bar movement, a message saying what still happens. */
export function finishingEvent(kind: ActivityKind): ProgressEvent {
  return { type: 'progress', phase: 'finishing', bytesDone: 0, bytesTotal: 0, rate: 0, etaSeconds: null, message: FINISHING_TEXT[kind].replace(/^finishing: /, '') };
}
