// Passwords of encrypted repositories: kept in VS Code's SecretStorage (the system keychain), one
// per repository folder, never in settings, logs or command lines; and the one place where they
// join the engine's requests. PasswordEngine wraps the engine the commands and the view use: every
// operation on a repository (a `repo` parameter) gets that repository's stored password. When the
// engine answers BAD_PASSWORD (none stored, or a wrong one), it asks the user (once at a time per
// repository), retries, and stores the password only once the repository opened with it. A prompt
// the user dismissed is not shown again by background refreshes until they ask (allowPrompt()).
// No `vscode` import: the store and the prompt are passed in.
import * as path from 'path';
import type { OpName, OpParams, OpResult } from '../imaging/protocol';
import { EngineError } from './engineError';
import { EngineFacade } from './engineFacade';
import type { CallOptions, EngineCall } from './engineTypes';

/** What we need of vscode.SecretStorage (which satisfies it). */
export interface SecretStore {
  get(key: string): Thenable<string | undefined>;
  store(key: string, value: string): Thenable<void>;
  delete(key: string): Thenable<void>;
}

/** Asks the user for a repository's password; undefined when dismissed. */
export type PasswordPrompt = (repo: string, reason: 'needed' | 'wrong') => Promise<string | undefined>;

export const UNLOCK_HINT = 'Run "devsnap: Unlock Repository" (or Refresh) to enter it; it is kept in VS Code\'s secret storage.';

export class RepoPasswords {
  constructor(private readonly secrets: SecretStore) {}
  private key(repo: string): string {
    return `devsnap.password:${path.resolve(repo)}`;
  }
  async get(repo: string): Promise<string | undefined> {
    return (await this.secrets.get(this.key(repo))) || undefined;
  }
  async set(repo: string, password: string): Promise<void> {
    await this.secrets.store(this.key(repo), password);
  }
  async forget(repo: string): Promise<boolean> {
    const had = (await this.get(repo)) !== undefined;
    await this.secrets.delete(this.key(repo));
    return had;
  }
}

export class PasswordEngine extends EngineFacade {
  private readonly asking = new Map<string, Promise<string | undefined>>();
  private readonly declined = new Set<string>();

  constructor(
    private readonly inner: () => { call: EngineCall },
    readonly passwords: RepoPasswords,
    private readonly prompt?: PasswordPrompt,
    private readonly log?: (line: string) => void,
  ) {
    super();
  }

  /** The next BAD_PASSWORD of `repo` (or of every repository) asks again, even after a dismissed prompt. */
  allowPrompt(repo?: string): void {
    if (repo) this.declined.delete(path.resolve(repo));
    else this.declined.clear();
  }

  async call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>> {
    const p = params as { repo?: unknown; password?: unknown };
    // An explicit password (creating or unlocking a repository) is used as given.
    if (typeof p.repo !== 'string' || p.password !== undefined) return this.inner().call(op, params, options);
    const repo = path.resolve(p.repo);
    let password = await this.passwords.get(repo);
    let entered = false;
    for (;;) {
      try {
        const r = await this.inner().call(op, (password !== undefined ? { ...params, password } : params) as OpParams<K>, options);
        if (entered && password !== undefined) {
          await this.passwords.set(repo, password);
          this.log?.(`The password for ${repo} opened it and is kept in VS Code's secret storage.`);
        }
        return r;
      } catch (err) {
        if (!(err instanceof EngineError) || err.code !== 'BAD_PASSWORD') throw err;
        const reason = password === undefined ? 'needed' : 'wrong';
        const failed = new EngineError(
          'BAD_PASSWORD',
          reason === 'needed' ? `The repository ${repo} is encrypted and needs its password.` : `The password for the repository ${repo} is wrong.`,
          UNLOCK_HINT,
          err.exitCode,
        );
        if (!this.prompt || this.declined.has(repo)) throw failed;
        const next = await this.ask(repo, reason);
        if (next === undefined) {
          this.declined.add(repo);
          throw failed;
        }
        password = next;
        entered = true;
      }
    }
  }

  /** One prompt at a time per repository: calls that fail meanwhile wait for its answer. */
  private ask(repo: string, reason: 'needed' | 'wrong'): Promise<string | undefined> {
    let pending = this.asking.get(repo);
    if (!pending) {
      pending = this.prompt!(repo, reason).finally(() => this.asking.delete(repo));
      this.asking.set(repo, pending);
    }
    return pending;
  }
}
