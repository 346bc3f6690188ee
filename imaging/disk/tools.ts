// Running the system's disk tools (resize2fs, ntfsresize, tune2fs, losetup, mount, mtools, ...) the
// way the engine runs every child (disk/privilege.ts childCommand: a safe PATH, and in the elevated
// helper with only the requesting user's rights), with one kind of error for each way they fail.
import { execFile } from 'child_process';
import { promisify } from 'util';
import { DevsnapError } from '../core/errors';
import { childCommand } from './privilege';

const run = promisify(execFile);

export interface ToolOptions {
  /** Exit codes that are not failures (e2fsck's 1: "errors corrected"). */
  ok?: number[];
  env?: Record<string, string>;
  /** What it is needed for, and the package to install: "to fit a partition onto a smaller disk", "e2fsprogs". */
  neededFor: string;
  pkg: string;
}

/** Runs `file args`; its stdout and stderr, or DevsnapError naming the tool and its last words (INTERNAL when it is not installed). */
export async function runTool(file: string, args: string[], o: ToolOptions): Promise<{ stdout: string; stderr: string }> {
  const c = childCommand(file, args, o.env);
  try {
    const r = await run(c.file, c.args, { env: c.env, maxBuffer: 16 << 20 });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code === 'number' && (o.ok ?? []).includes(e.code)) return { stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    if (e.code === 'ENOENT') throw new DevsnapError('INTERNAL', `${file} is needed ${o.neededFor}, and it is not installed.`, `Install ${o.pkg}, then try again.`);
    const said = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-3).join(' ');
    throw new DevsnapError('BAD_TARGET', `${file} ${args.join(' ')} failed (${e.code}): ${said}`);
  }
}
