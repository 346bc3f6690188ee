// Runs the real `devsnap` CLI (tsc output) as a child process, as users and the extension do.
import { spawn, spawnSync } from 'child_process';
import * as path from 'path';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../../imaging/runtime';

export const CLI = path.join(__dirname, '..', '..', 'imaging', 'cli.js');

/** The CLI as the extension and the helper start it: with the engine's runtime settings, so it runs in this very process (no relaunch). */
export const CLI_ARGS: readonly string[] = [...ENGINE_NODE_ARGS, CLI];
export const CLI_ENV: Readonly<Record<string, string>> = ENGINE_ENV;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function parse(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    return undefined;
  }
}

/** `timeoutMs`: kill the CLI after that long (status 128), for tests of what must not hang. */
export function devsnap(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs?: number): CliResult {
  const r = spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8', env: { ...process.env, ...ENGINE_ENV, ...env }, maxBuffer: 1 << 28, timeout: timeoutMs });
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr, json: parse(r.stdout) };
}

/** Starts the CLI for tests that interrupt it; `exited` resolves with the exit code (or signal). */
export function devsnapChild(args: string[]) {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...CLI_ENV } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}
