// What every CLI command receives: the global options, the repository request, the operation context, report, log.
import * as fs from 'fs';
import * as readline from 'readline';
import { Command, Option } from 'commander';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { withRepository, type OpContext } from '../ops/operations';
import { chooseProgressMode, ProgressPrinter, terminalSafe } from './output';
import type { Repository } from '../repo/repository';
import type { ProgressEvent, RepoRequest } from '../protocol';

export interface GlobalOpts {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
  progress?: string;
  lockWait?: string;
}

/** The part of the context the commands looking inside snapshots use (also what test/unit/file-restore.test.ts gives them). */
export interface CliContext {
  withRepo<T>(g: GlobalOpts, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>): Promise<T>;
  /** The repository part of an operation request (repository folder, password). */
  repoReq(g: GlobalOpts): RepoRequest;
  report(g: GlobalOpts, json: unknown, human: () => string): void;
  globals(cmd: Command): GlobalOpts;
  progressSink(g: GlobalOpts): (e: ProgressEvent) => void;
  log(msg: string): void;
  signal: AbortSignal;
  /** What an operation gets from the command line: cancellation (SIGINT), progress (--progress), the log. */
  opContext(g: GlobalOpts, progress?: boolean): OpContext;
}

/** The whole context of the devsnap program. */
export interface CommandContext extends CliContext {
  globals(cmd: Command): GlobalOpts;
  /** Opens the repository, takes its lock, loads the index, runs `fn`, and always releases. */
  withRepo<T>(g: GlobalOpts, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>, create?: boolean): Promise<T>;
  password(g: GlobalOpts): string | undefined;
  repoDir(g: GlobalOpts): string;
  /** Asks on stderr; true only for "yes". */
  confirm(question: string): Promise<boolean>;
  /** Ends the progress display before the result or an error is printed. */
  stopProgress(): void;
}

export function createContext(signal: AbortSignal): CommandContext {
  let printer: ProgressPrinter | null = null;

  const globals = (cmd: Command): GlobalOpts => cmd.optsWithGlobals() as GlobalOpts;

  const log = (msg: string) => process.stderr.write(`devsnap: ${terminalSafe(msg)}\n`);

  function password(g: GlobalOpts): string | undefined {
    if (g.passwordFile) {
      try {
        return fs.readFileSync(g.passwordFile, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw toDevsnapError(err, `the password file ${g.passwordFile}`);
      }
    }
    return process.env.DEVSNAP_PASSWORD || undefined;
  }

  function repoDir(g: GlobalOpts): string {
    const dir = g.repo ?? process.env.DEVSNAP_REPO;
    if (!dir) throw new DevsnapError('USAGE', 'No repository given.', 'Pass --repo DIR or set DEVSNAP_REPO.');
    return dir;
  }

  function withRepo<T>(g: GlobalOpts, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>, create = false): Promise<T> {
    return withRepository(repoReq(g), { log, ...lockWait(g) }, exclusive, purpose, fn, create);
  }

  /** The repository part of every operation request. */
  function repoReq(g: GlobalOpts): RepoRequest {
    const pw = password(g);
    return { repo: repoDir(g), ...(pw !== undefined ? { password: pw } : {}) };
  }

  /** The context of an operation: cancellation by signal, progress as --progress says, log on stderr. */
  function opContext(g: GlobalOpts, progress = true): OpContext {
    return { signal, log, ...lockWait(g), ...(progress ? { onProgress: progressSink(g) } : {}) };
  }

  function progressSink(g: GlobalOpts): (e: ProgressEvent) => void {
    printer = new ProgressPrinter(chooseProgressMode(g.progress, !!g.json));
    return printer.sink;
  }

  /** Prints the result: JSON, or the human text. */
  function report(g: GlobalOpts, json: unknown, human: () => string): void {
    printer?.stop();
    if (g.json) process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    else {
      const text = terminalSafe(human());
      if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    }
  }

  return { globals, log, signal, password, repoDir, withRepo, repoReq, opContext, progressSink, report, confirm, stopProgress: () => printer?.stop() };
}

function lockWait(g: GlobalOpts): { lockWaitMs?: number } {
  if (g.lockWait === undefined) return {};
  const s = Number(g.lockWait);
  if (!Number.isFinite(s) || s < 0) throw new DevsnapError('USAGE', `--lock-wait must be a number of seconds, got "${g.lockWait}".`);
  return { lockWaitMs: s * 1000 };
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  return answer.trim().toLowerCase() === 'yes';
}

/** A commander argument parser for a whole number >= 0 (a usage error otherwise). */
export const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DevsnapError('USAGE', `${name} must be a whole number, got "${v}".`);
  return n;
};

/** -p/--partition of the commands looking inside a snapshot's filesystem. */
export const partitionOption = () =>
  new Option('-p, --partition <n>', 'partition number (default: the largest ext partition, the root; without one, the largest NTFS one)').argParser(intArg('--partition'));
