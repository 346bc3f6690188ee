// The one place where secrets join the engine's requests: an encrypted repository's password
// (passwords.ts) and a bucket's keys (s3Keys.ts), kept in VS Code's SecretStorage (the system
// keychain), never in settings, logs or command lines. SecretsEngine wraps the engine the commands
// and the view use: every operation on a repository (a `repo` parameter) gets the secrets that
// repository uses, unless the request gives its own. When the engine's answer says one is missing
// or refused, it asks the user (once at a time per secret), retries, and keeps what was entered only
// once the repository opened with it. A prompt the user dismissed is not shown again by background
// refreshes until they ask (allowPrompt()). Errors it passes on never hold a secret it sent.
// No `vscode` import: the store and the prompts are passed in.
import { OPS, type OpName, type OpParams, type OpResult } from '../imaging/protocol';
import { EngineError } from './engineError';
import { EngineFacade } from './engineFacade';
import type { CallOptions, EngineCall } from './engineTypes';

/** What we need of vscode.SecretStorage (which satisfies it). */
export interface SecretStore {
  get(key: string): Thenable<string | undefined>;
  store(key: string, value: string): Thenable<void>;
  delete(key: string): Thenable<void>;
}

/** Why a secret is asked for: none was sent, or the one sent was refused. */
export type SecretReason = 'needed' | 'wrong';

/** A kind of secret that requests carry (a repository's password, a bucket's keys). */
export interface RequestSecret<T> {
  /** The request's field it goes in. */
  readonly field: 'password' | 's3Credentials';
  /** Whose secret a repository uses (one prompt at a time, and dismissals, are per scope); undefined: none of this kind. */
  scope(repo: string): string | undefined;
  /** What to send: the kept one, or one found elsewhere (the environment). */
  find(repo: string): Promise<T | undefined>;
  /** Keeps a secret the user entered, once the repository opened with it; returns the log line that says so. */
  keep(repo: string, value: T): Promise<string>;
  /** The error to report when `err` says this secret is missing or refused (naming no secret); undefined when it says something else. */
  refusal(err: EngineError, repo: string, reason: SecretReason): EngineError | undefined;
  /** Asks the user; undefined when dismissed. */
  readonly prompt?: (repo: string, reason: SecretReason) => Promise<T | undefined>;
}

// Each kind of secret is typed by its own module; here they are handled alike.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnySecret = RequestSecret<any>;

/** Whether operation `op`'s parameters take `field` (the recovery kit's, for one, take no secrets). */
function takes(op: OpName, field: string): boolean {
  const schema = OPS[op].params as { entries?: object; pipe?: { entries?: object }[] };
  const entries = schema.entries ?? schema.pipe?.[0]?.entries;
  return !!entries && field in entries;
}

/** The texts of a secret (a password, or each of the keys). */
const texts = (value: unknown): string[] => (typeof value === 'string' ? [value] : value && typeof value === 'object' ? Object.values(value).filter((v) => typeof v === 'string') : []);

/** `err` with every text of `sent` cut out of its message and hint (an engine should never echo one; this makes sure). */
function redacted(err: EngineError, sent: unknown[]): EngineError {
  const cut = sent.flatMap(texts).filter((t) => t.length >= 4);
  const scrub = (s: string) => cut.reduce((acc, t) => acc.split(t).join('…'), s);
  const message = scrub(err.message);
  const hint = err.hint === undefined ? undefined : scrub(err.hint);
  return message === err.message && hint === err.hint ? err : new EngineError(err.code, message, hint, err.exitCode);
}

export class SecretsEngine extends EngineFacade {
  private readonly asking = new Map<string, Promise<unknown>>();
  private readonly declined = new Set<string>();

  /** `kinds` in the order the engine checks them (a bucket's keys before the password of the repository in it). */
  constructor(
    private readonly inner: () => { call: EngineCall },
    private readonly kinds: readonly AnySecret[],
    private readonly log?: (line: string) => void,
  ) {
    super();
  }

  /** The next refusal for `repo` (or for every repository) asks again, even after a dismissed prompt. */
  allowPrompt(repo?: string): void {
    if (!repo) return this.declined.clear();
    for (const k of this.kinds) this.declined.delete(`${k.field} ${k.scope(repo)}`);
  }

  async call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>> {
    const p = params as Record<string, unknown>;
    const repo = p.repo;
    // A secret the request gives (creating or unlocking a repository) is used as given.
    const kinds = typeof repo === 'string' ? this.kinds.filter((k) => p[k.field] === undefined && takes(op, k.field) && k.scope(repo) !== undefined) : [];
    if (typeof repo !== 'string' || !kinds.length) return this.inner().call(op, params, options);
    const values = new Map<AnySecret, unknown>();
    for (const k of kinds) values.set(k, await k.find(repo));
    const entered = new Set<AnySecret>();
    /** Keeps what the user entered of the kinds the engine got past (all of them, or those it checks before `refused`). */
    const keepEntered = async (refused?: AnySecret) => {
      for (const k of kinds.slice(0, refused ? kinds.indexOf(refused) : kinds.length).filter((x) => entered.has(x))) {
        entered.delete(k);
        this.log?.(await k.keep(repo, values.get(k)));
      }
    };
    for (;;) {
      const sent = { ...params } as Record<string, unknown>;
      for (const [k, v] of values) if (v !== undefined) sent[k.field] = v;
      try {
        const r = await this.inner().call(op, sent as OpParams<K>, options);
        await keepEntered();
        return r;
      } catch (err) {
        if (!(err instanceof EngineError)) throw err;
        const safe = redacted(err, [...values.values()]);
        let hit: { k: AnySecret; reason: SecretReason; failed: EngineError } | undefined;
        for (const k of kinds) {
          const reason: SecretReason = values.get(k) === undefined ? 'needed' : 'wrong';
          const failed = k.refusal(safe, repo, reason);
          if (failed) {
            hit = { k, reason, failed };
            break;
          }
        }
        if (!hit) throw safe;
        await keepEntered(hit.k); // e.g. keys that opened the bucket, before its password was found wrong
        const scope = `${hit.k.field} ${hit.k.scope(repo)}`;
        if (!hit.k.prompt || this.declined.has(scope)) throw hit.failed;
        const next = await this.ask(scope, () => hit.k.prompt!(repo, hit.reason));
        if (next === undefined) {
          this.declined.add(scope);
          throw hit.failed;
        }
        values.set(hit.k, next);
        entered.add(hit.k);
      }
    }
  }

  /** One prompt at a time per secret: calls that fail meanwhile wait for its answer. */
  private ask(scope: string, prompt: () => Promise<unknown>): Promise<unknown> {
    let pending = this.asking.get(scope);
    if (!pending) {
      pending = prompt().finally(() => this.asking.delete(scope));
      this.asking.set(scope, pending);
    }
    return pending;
  }
}
