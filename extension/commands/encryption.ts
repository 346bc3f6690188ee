// Encrypted repositories: offering encryption when a repository is created (Choose Repository on a
// new or empty folder, the first snapshot), the new password asked twice with a strength hint and
// the warning that a lost password means lost snapshots; devsnap.unlockRepository and
// devsnap.forgetRepositoryPassword. The password lives in VS Code's SecretStorage (passwords.ts).
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { EngineError } from '../engine';
import { repositoryKey } from '../paths';
import * as ui from '../ui';
import { CommandContext, reportError, requireRepository } from './common';
import { enterSecret, forgetSecret } from './credentials';

/** Command arguments that decide encryption without asking (tests, scripts). */
export interface EncryptionArgs {
  /** true: create the new repository encrypted; false: unencrypted; omitted: ask (interactive use only). */
  encrypt?: boolean;
  /** The new repository's password (with encrypt: true), or the password to unlock with. */
  password?: string;
}

export const LOST_PASSWORD_WARNING = 'If you lose this password, your snapshots are lost: nobody, devsnap included, can read or restore them without it.';
const MIN_LENGTH = 8;

/** A folder where a repository would be created: missing, or empty (no config.json). */
export function isNewRepository(repo: string): boolean {
  try {
    return fs.readdirSync(repo).length === 0;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** "weak" / "fair" / "strong", from the length and the kinds of characters (bits of a random password of that shape). */
export function passwordStrength(pw: string): { bits: number; word: 'weak' | 'fair' | 'strong' } {
  const pool = (/[a-z]/.test(pw) ? 26 : 0) + (/[A-Z]/.test(pw) ? 26 : 0) + (/[0-9]/.test(pw) ? 10 : 0) + (/[^a-zA-Z0-9]/.test(pw) ? 33 : 0);
  const distinct = new Set(pw).size;
  const bits = Math.round(Math.min(pw.length, distinct * 2) * Math.log2(Math.max(pool, 2)));
  return { bits, word: bits < 50 ? 'weak' : bits < 80 ? 'fair' : 'strong' };
}

/** A new password, asked twice (undefined when dismissed). */
export async function askNewPassword(repo: string): Promise<string | undefined> {
  const first = await ui.password({
    title: 'devsnap: Encrypt Repository (1/2)',
    prompt: `Password for the snapshots in ${repo}. ${LOST_PASSWORD_WARNING} It is kept in VS Code's secret storage on this machine.`,
    validateInput: (v) => {
      if (v.length < MIN_LENGTH) return `At least ${MIN_LENGTH} characters; a few unrelated words are strong and easy to type.`;
      const s = passwordStrength(v);
      const severity = s.word === 'weak' ? vscode.InputBoxValidationSeverity.Warning : vscode.InputBoxValidationSeverity.Info;
      return { message: `Strength: ${s.word}${s.word === 'weak' ? ': longer is stronger (a few unrelated words)' : ''}.`, severity };
    },
  });
  if (first === undefined) return undefined;
  const again = await ui.password({
    title: 'devsnap: Encrypt Repository (2/2)',
    prompt: `Enter the same password again. ${LOST_PASSWORD_WARNING}`,
    validateInput: (v) => (v === first ? undefined : 'The two passwords differ.'),
  });
  return again === first ? first : undefined;
}

/** New folders the user chose not to encrypt (this window). */
const chosePlain = new Set<string>();

const ENCRYPT = '$(lock) Encrypt this repository';
const PLAIN = '$(unlock) Do not encrypt';

/**
 * Decides whether a new repository is encrypted: from `args`, else (when `ask`) by asking. Returns
 * the password, null for unencrypted, undefined when the user dismissed the question.
 */
export async function chooseEncryption(repo: string, args: EncryptionArgs, ask: boolean): Promise<string | null | undefined> {
  if (args.encrypt === false || (args.encrypt === undefined && !ask)) return null;
  if (args.encrypt === undefined) {
    const picked = await ui.pick(
      [
        { label: ENCRYPT, detail: `Snapshots are encrypted (AES-256) with a password kept in VS Code's secret storage. ${LOST_PASSWORD_WARNING}` },
        { label: PLAIN, detail: 'Anyone who can read the repository folder can read the snapshots.' },
      ],
      { title: 'devsnap: New Repository', placeHolder: `Encrypt the snapshots in ${repo}?` },
    );
    if (!picked) return undefined;
    if (picked.label === PLAIN) return null;
  }
  if (args.password !== undefined) {
    if (args.password.length < MIN_LENGTH) throw new EngineError('USAGE', `The password is too short: at least ${MIN_LENGTH} characters.`);
    return args.password;
  }
  return askNewPassword(repo);
}

/**
 * Makes `repo` a repository now when it is to be encrypted (config.json holds the choice, as
 * `devsnap init --encrypt`), and keeps its password. Unencrypted, the first snapshot creates it;
 * a password kept for that folder from before is forgotten so it does not encrypt it after all.
 * False when the user dismissed the question.
 */
export async function setUpNewRepository(ctx: CommandContext, repo: string, args: EncryptionArgs, ask: boolean): Promise<boolean> {
  if (!isNewRepository(repo)) return true;
  const password = await chooseEncryption(repo, args, ask && !chosePlain.has(path.resolve(repo)));
  if (password === undefined) return false;
  if (password === null) {
    chosePlain.add(path.resolve(repo)); // asked once: the first snapshot does not ask again
    if (await ctx.passwords.forget(repo)) ctx.log(`Forgot the password kept for ${repo}: it is a new, unencrypted repository.`);
    return true;
  }
  await ctx.engine().call('init', { repo, password });
  await ctx.passwords.set(repo, password);
  ctx.log(`Created the encrypted repository ${repo}; its password is kept in VS Code's secret storage.`);
  return true;
}

/**
 * devsnap.unlockRepository: asks for the repository's password (again, while wrong) and keeps it
 * once the repository opens with it. `{ password }` tries that one only: a wrong one is reported
 * (BAD_PASSWORD). Resolves true when unlocked.
 */
export async function unlockRepository(ctx: CommandContext, args: EncryptionArgs = {}): Promise<boolean | undefined> {
  try {
    const repo = await requireRepository(ctx, true);
    if (!repo) return undefined;
    return await enterSecret(ctx, repo, ctx.passwords, (reason) => askPassword(repo, reason), { given: args.password });
  } catch (err) {
    await reportError(ctx, err, 'Unlocking the repository');
    return false;
  }
}

/** The password box of an encrypted repository (SecretsEngine's prompt for a password, and Unlock Repository's). */
export function askPassword(repo: string, reason: 'needed' | 'wrong'): Promise<string | undefined> {
  return Promise.resolve(
    ui.password({
      title: 'devsnap: Unlock Repository',
      prompt:
        reason === 'needed'
          ? `The repository ${repo} is encrypted: enter its password (kept in VS Code's secret storage from now on).`
          : `Wrong password for ${repo}: enter it again. (Without the right password its snapshots cannot be read.)`,
    }),
  );
}

/** devsnap.forgetRepositoryPassword `{ path? }`: removes the kept password (of the configured repository by default). */
export function forgetRepositoryPassword(ctx: CommandContext, args: { path?: string } = {}): Promise<boolean> {
  const repo = typeof args.path === 'string' && args.path ? repositoryKey(args.path) : undefined;
  return forgetSecret(ctx, repo, ctx.passwords, (r, had) =>
    had
      ? [`Forgot the password of ${r}.`, `devsnap no longer keeps the password of ${r}: it asks for it the next time it opens the repository.`]
      : [`No password was kept for ${r}.`, `devsnap keeps no password for ${r}.`],
  );
}
