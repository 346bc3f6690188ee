// Faults at the system-call level for the real CLI, as kopia's `faulty` storage does in-process:
// strace injects an error (ENOSPC, EIO, EROFS) or SIGKILL at the Nth durable call (pwrite64,
// fsync, rename, unlink, mkdir, rmdir) of a devsnap command. No code of devsnap is replaced.
//
// Counting: strace counts a system call's invocations per thread, so the CLI runs with one libuv
// thread (UV_THREADPOOL_SIZE=1), which makes every file system call of the engine; a dry run
// records the order of durable calls on it and `durableSteps` refuses to go on if any other thread
// made one (then the step numbers would not name one call).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CLI_ARGS, CLI_ENV, CliResult } from './cli';

export const DURABLE_CALLS = ['pwrite64', 'fsync', 'fdatasync', 'rename', 'unlink', 'mkdir', 'rmdir'] as const;
export type DurableCall = (typeof DURABLE_CALLS)[number];

/** One durable call of a run: its name, its ordinal among calls of that name, and its path argument. */
export interface Step {
  call: DurableCall;
  nth: number;
  detail: string;
}

export type FaultKind = 'ENOSPC' | 'EIO' | 'EROFS' | 'SIGKILL';

export interface Fault {
  step: Step;
  kind: FaultKind;
}

export const straceAvailable = spawnSync('strace', ['-V']).status === 0;

function parse(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    return undefined;
  }
}

function run(args: string[], straceArgs: string[], env: NodeJS.ProcessEnv): CliResult & { signal: string | null } {
  const r = spawnSync('strace', ['-f', '-qq', ...straceArgs, process.execPath, ...CLI_ARGS, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...CLI_ENV, ...env, UV_THREADPOOL_SIZE: '1' },
    maxBuffer: 1 << 28,
  });
  // strace exits with the tracee's status; a tracee killed by a signal makes strace kill itself alike.
  return { status: r.status ?? 128 + 9, signal: r.signal, stdout: r.stdout, stderr: r.stderr, json: parse(r.stdout) };
}

/** Runs the command once under strace and lists its durable calls in order. */
export function durableSteps(args: string[], env: NodeJS.ProcessEnv = {}): { result: CliResult; steps: Step[] } {
  const trace = path.join(fs.mkdtempSync('/tmp/devsnap-trace-'), 'trace');
  try {
    const result = run(args, ['-o', trace, '-e', `trace=${DURABLE_CALLS.join(',')}`], env);
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const steps: Step[] = [];
    const threads = new Set<string>();
    const seen = new Map<string, number>();
    for (const line of lines) {
      const m = /^(\d+)\s+([a-z0-9_]+)\((.*)$/.exec(line);
      if (!m || !(DURABLE_CALLS as readonly string[]).includes(m[2])) continue;
      threads.add(m[1]);
      const call = m[2] as DurableCall;
      const nth = (seen.get(call) ?? 0) + 1;
      seen.set(call, nth);
      steps.push({ call, nth, detail: (/"([^"]*)"/.exec(m[3])?.[1] ?? m[3].split(',')[0]).replace(/^.*\/(?=[^/]+\/[^/]+$)/, '') });
    }
    if (threads.size > 1) throw new Error(`durable calls came from ${threads.size} threads (${[...threads].join(', ')}): step numbers would be ambiguous`);
    return { result, steps };
  } finally {
    fs.rmSync(path.dirname(trace), { recursive: true, force: true });
  }
}

/** Runs the command with one fault injected at `fault.step`. */
export function devsnapWithFault(args: string[], fault: Fault, env: NodeJS.ProcessEnv = {}): CliResult & { signal: string | null } {
  const action = fault.kind === 'SIGKILL' ? 'signal=SIGKILL' : `error=${fault.kind}`;
  return run(args, ['-o', '/dev/null', '-e', `trace=${fault.step.call}`, '-e', `inject=${fault.step.call}:${action}:when=${fault.step.nth}`], env);
}

/** Which errors a call can plausibly return: the faults worth injecting there. */
export function faultsFor(call: DurableCall): FaultKind[] {
  switch (call) {
    case 'pwrite64':
      return ['ENOSPC', 'EIO', 'SIGKILL'];
    case 'fsync':
    case 'fdatasync':
      return ['EIO', 'ENOSPC', 'SIGKILL'];
    case 'rename':
    case 'mkdir':
      return ['ENOSPC', 'EROFS', 'EIO', 'SIGKILL'];
    case 'unlink':
    case 'rmdir':
      return ['EROFS', 'EIO', 'SIGKILL'];
  }
}

export const describeFault = (f: Fault) => `${f.kind} at ${f.step.call} #${f.step.nth} (${f.step.detail})`;
