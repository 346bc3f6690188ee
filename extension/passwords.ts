// Passwords of encrypted repositories: kept in VS Code's SecretStorage (the system keychain), one
// per repository (a folder's absolute path, or an s3: location), never in settings, logs or command
// lines. RepoPasswords is the password kind of secret that SecretsEngine (secrets.ts) adds to every
// request on a repository; the engine's BAD_PASSWORD (none sent, or a wrong one) asks for it.
// No `vscode` import: the store and the prompt are passed in.
import { EngineError } from './engineError';
import { repositoryKey } from './paths';
import type { RequestSecret, SecretReason, SecretStore } from './secrets';

/** Asks the user for a repository's password; undefined when dismissed. */
export type PasswordPrompt = (repo: string, reason: SecretReason) => Promise<string | undefined>;

export const UNLOCK_HINT = 'Run "devsnap: Unlock Repository" (or Refresh) to enter it; it is kept in VS Code\'s secret storage.';

export class RepoPasswords implements RequestSecret<string> {
  readonly field = 'password';
  constructor(
    private readonly secrets: SecretStore,
    readonly prompt?: PasswordPrompt,
  ) {}
  private key(repo: string): string {
    return `devsnap.password:${repositoryKey(repo)}`;
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

  scope(repo: string): string {
    return repositoryKey(repo);
  }
  find(repo: string): Promise<string | undefined> {
    return this.get(repo);
  }
  async keep(repo: string, password: string): Promise<string> {
    await this.set(repo, password);
    return `The password for ${repositoryKey(repo)} opened it and is kept in VS Code's secret storage.`;
  }
  refusal(err: EngineError, repo: string, reason: SecretReason): EngineError | undefined {
    if (err.code !== 'BAD_PASSWORD') return undefined;
    const r = repositoryKey(repo);
    const message = reason === 'needed' ? `The repository ${r} is encrypted and needs its password.` : `The password for the repository ${r} is wrong.`;
    return new EngineError('BAD_PASSWORD', message, UNLOCK_HINT, err.exitCode);
  }
}
