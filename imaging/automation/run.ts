// One automatic snapshot: the timer's (`devsnap auto run`) or a package manager's hook's
// (`devsnap hook pre-upgrade`, rate-limited), then retention of the automatic snapshots only. The
// snapshot, the listing and the forgetting are the engine's operations, run through the runner the
// caller passes (imaging/ops/registry.ts runOp): this layer sits below ops/, so that an operation
// can use it (install, status) without a cycle.
import * as fs from 'fs';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { AutoState, check, isAutomaticLabel, type ErrorInfo, type OpName, type OpParams, type OpResult, type ProgressEvent } from '../protocol';
import { applyPolicy } from '../snapshot/retention';
import { type AutoConfig, DEFAULT_RATE_LIMIT_HOURS, type Manager, writePublicFile } from './config';

export { AUTO_LABEL, isAutomaticLabel } from '../protocol';
export const scheduledLabel = (schedule: string | undefined) => `scheduled: ${schedule ?? 'by hand'}`;

export interface RunContext {
  signal?: AbortSignal;
  log: (message: string) => void;
  lockWaitMs?: number;
  /** The snapshot's progress (`devsnap auto run` in a terminal). */
  onProgress?: (e: ProgressEvent) => void;
}

/** The engine's runOp (imaging/ops/registry.ts). */
export type OpRunner = <K extends OpName>(name: K, params: OpParams<K>, ctx: RunContext) => Promise<OpResult<K>>;

export type Trigger = 'scheduled' | Manager;

export { AutoState } from '../protocol';

/** The state beside the config; empty when missing or unreadable (it only rate-limits and informs). */
export function readState(file: string): AutoState {
  try {
    const r = check(AutoState, JSON.parse(fs.readFileSync(file, 'utf8')));
    return r.ok ? r.value : {};
  } catch {
    return {};
  }
}

export interface AutoRunResult {
  outcome: 'taken' | 'skipped';
  trigger: Trigger;
  label: string;
  snapshot?: { id: string; label: string };
  /** Why nothing was taken. */
  reason?: string;
  /** Automatic snapshots removed by retention. */
  forgotten?: string[];
  /** Retention failed after the snapshot was taken (the snapshot stands). */
  retentionError?: ErrorInfo;
  /** The periodic verify (verifyEveryDays) of the snapshot just taken, when it was due. */
  verified?: { id: string; chunksChecked: number; bytesChecked: number };
}

export interface RunOptions extends RunContext {
  trigger: Trigger;
  label: string;
  runOp: OpRunner;
  stateFile: string;
  /** Called when the snapshot starts (not when the rate limit skips it). */
  onStart?: () => void;
  /** Stop the snapshot (at a safe point) after this long. */
  timeoutMs?: number;
  now?: () => Date;
}

/** The password of an encrypted repository, from the file the config names. */
function repoRequest(cfg: AutoConfig): { repo: string; password?: string } {
  if (!cfg.passwordFile) return { repo: cfg.repository };
  try {
    return { repo: cfg.repository, password: fs.readFileSync(cfg.passwordFile, 'utf8').replace(/\r?\n$/, '') };
  } catch (err) {
    throw toDevsnapError(err, `the password file ${cfg.passwordFile}`);
  }
}

/** Takes the snapshot (unless a hook's rate limit says not), then applies retention; throws when the snapshot fails. */
export async function runAutomatic(cfg: AutoConfig, o: RunOptions): Promise<AutoRunResult> {
  const now = (o.now ?? (() => new Date()))();
  const state = readState(o.stateFile);
  const record = (s: AutoState) =>
    writePublicFile(o.stateFile, JSON.stringify(Object.assign(state, s), null, 2) + '\n').catch((err) => o.log(`could not record the run in ${o.stateFile}: ${toDevsnapError(err).message}`));
  const base = { trigger: o.trigger, label: o.label };

  const hours = cfg.rateLimitHours ?? DEFAULT_RATE_LIMIT_HOURS;
  const last = state.lastSnapshot ? Date.parse(state.lastSnapshot.at) : NaN;
  const age = now.getTime() - last;
  // A time in the future (the clock was set back) does not hold snapshots off.
  if (o.trigger !== 'scheduled' && age >= 0 && age < hours * 3600_000) {
    const reason = `an automatic snapshot was taken ${Math.floor(age / 60_000)} minutes ago (${state.lastSnapshot!.id}); at most one every ${hours} hours (rateLimitHours in the configuration)`;
    await record({ lastRun: { at: now.toISOString(), trigger: o.trigger, outcome: 'skipped', message: reason } });
    return { ...base, outcome: 'skipped', reason };
  }

  const timeout = o.timeoutMs !== undefined ? AbortSignal.timeout(o.timeoutMs) : undefined;
  const signals = [o.signal, timeout].filter((s): s is AbortSignal => !!s);
  const ctx: RunContext = { log: o.log, lockWaitMs: o.lockWaitMs, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] };
  const repo = repoRequest(cfg);
  let snapshot: { id: string; label: string };
  try {
    o.onStart?.();
    const r = await o.runOp('snapshot', { ...repo, source: cfg.source, label: o.label }, { ...ctx, onProgress: o.onProgress });
    snapshot = { id: r.snapshot.id, label: r.snapshot.label };
  } catch (err) {
    let e = toDevsnapError(err);
    if (timeout?.aborted && e.code === 'CANCELLED') {
      e = new DevsnapError(
        'CANCELLED',
        `The snapshot was stopped after ${Math.round(o.timeoutMs! / 60_000)} minutes (hookTimeoutMinutes); the repository is as it was.`,
        'Take the first snapshot by hand (`devsnap auto run`): later ones read only what changed.',
      );
    }
    await record({ lastRun: { at: now.toISOString(), trigger: o.trigger, outcome: 'failed', message: e.message } });
    throw e;
  }
  await record({ lastSnapshot: { at: now.toISOString(), trigger: o.trigger, ...snapshot }, lastRun: { at: now.toISOString(), trigger: o.trigger, outcome: 'taken' } });

  const result: AutoRunResult = { ...base, outcome: 'taken', snapshot };
  if (cfg.retention) {
    try {
      result.forgotten = await applyRetention(cfg, repo, o.runOp, { ...ctx, signal: o.signal });
    } catch (err) {
      result.retentionError = toDevsnapError(err).toInfo();
    }
  }
  // Only the timer's run: a hook's package manager is waiting.
  if (o.trigger === 'scheduled' && cfg.verifyEveryDays && verifyDue(state, cfg.verifyEveryDays, now)) result.verified = await periodicVerify(repo, snapshot.id, o, ctx, now, record);
  return result;
}

/** The last verify is older than `days` (or there was none, or its time is in the future: the clock was set back). */
export function verifyDue(state: AutoState, days: number, now: Date): boolean {
  const age = now.getTime() - Date.parse(state.lastVerify?.at ?? '');
  return !(age >= 0 && age < days * 86400_000);
}

/** Verifies the snapshot just taken and records it; damage (or a verify that cannot run) fails the run. */
async function periodicVerify(
  repo: { repo: string; password?: string },
  id: string,
  o: RunOptions,
  ctx: RunContext,
  now: Date,
  record: (s: AutoState) => Promise<void>,
): Promise<AutoRunResult['verified']> {
  let message: string | undefined;
  try {
    const r = await o.runOp('verify', { ...repo, snapshot: id }, ctx);
    const bad = r.snapshots.find((s) => !s.ok);
    if (r.ok && !bad) {
      await record({ lastVerify: { at: now.toISOString(), id, ok: true } });
      return { id, chunksChecked: r.chunksChecked, bytesChecked: r.bytesChecked };
    }
    message = `The periodic verify of ${id} found damage: ${bad?.error ?? `${bad?.damage.length ?? 0} damaged range(s)`}.`;
  } catch (err) {
    message = `The periodic verify of ${id} failed: ${toDevsnapError(err).message}`;
  }
  await record({ lastVerify: { at: now.toISOString(), id, ok: false, message }, lastRun: { at: now.toISOString(), trigger: o.trigger, outcome: 'failed', message } });
  throw new DevsnapError(
    'DAMAGED',
    message,
    '`devsnap verify` says which snapshots and ranges; `devsnap check` checks the whole repository. Take a new snapshot into another repository if the drive is failing.',
  );
}

/** Forgets the automatic snapshots the policy does not keep (per source disk; pinned ones are kept), pruning unless told not to. */
async function applyRetention(cfg: AutoConfig, repo: { repo: string; password?: string }, runOp: OpRunner, ctx: RunContext): Promise<string[]> {
  const { prune, ...policy } = cfg.retention!;
  const list = await runOp('listSnapshots', repo, ctx);
  const remove = applyPolicy(
    list.snapshots.filter((s) => isAutomaticLabel(s.label)),
    policy,
  ).remove.map((s) => s.id);
  if (remove.length) await runOp('forget', { ...repo, ids: remove, prune: prune ?? true }, ctx);
  return remove;
}
