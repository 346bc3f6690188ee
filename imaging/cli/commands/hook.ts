// `devsnap hook pre-upgrade`: what the package managers' hooks run (imaging/automation/hooks.ts)
// before they change packages. It never stands in their way: whatever happens it exits 0, says what
// went wrong on stderr and in the system log, and gives up after the configured time.
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import { autoPaths, DEFAULT_HOOK_TIMEOUT_MINUTES, MANAGERS, type Manager, readConfig } from '../../automation/config';
import { changesLabel, commandLineLabel, managerArguments, parseAptInput, parsePacmanInput } from '../../automation/hook-input';
import { runAutomatic } from '../../automation/run';
import { DevsnapError, toDevsnapError } from '../../core/errors';
import { runOp } from '../../ops/registry';
import type { CommandContext } from '../context';

/** More than any package list; what is past it is not read as input (but still drained). */
const MAX_INPUT = 16 << 20;
/** After the snapshot was told to stop, how long it may take to reach a safe point before the process just exits. */
const GRACE_MS = 120_000;

/** How long the package manager may take to write its input and close it (it writes it at once). */
const INPUT_MS = 60_000;

/** All of stdin: apt fails when its hook does not take everything it writes. */
function readInput(): Promise<string> {
  if (process.stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    setTimeout(() => resolve(Buffer.concat(chunks).toString('utf8')), INPUT_MS).unref();
    process.stdin.on('data', (b: Buffer) => {
      if (size < MAX_INPUT) chunks.push(b);
      size += b.length;
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** The system log, where a hook's failure is found later (the package manager's output scrolls away). */
function syslog(priority: 'info' | 'err', message: string): void {
  spawnSync('logger', ['-t', 'devsnap', '-p', `user.${priority}`, '--', message], { timeout: 5000, stdio: 'ignore' });
}

export function register(program: Command, ctx: CommandContext): void {
  const hook = program.command('hook').description('what package managers run before they change packages (installed by `devsnap auto install`)');
  hook
    .command('pre-upgrade')
    .description('take the automatic snapshot before a package transaction, rate-limited; never fails (exit 0)')
    .option('--manager <name>', `the package manager running it: ${MANAGERS.join(', ')}`, 'apt')
    .option('--root <dir>', 'the configuration is below this folder')
    .option('--config <file>', 'the configuration file (default: ROOT/etc/devsnap/auto.json)')
    // A hook written by another version of devsnap must still never fail: unknown options are ignored.
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (o) => {
      const say = (m: string) => ctx.log(m);
      try {
        const manager = o.manager as Manager;
        // dnf's plugin leaves dnf's own stdin (a terminal, or nothing) to the command: only apt and pacman write to it.
        const input = manager === 'dnf' ? '' : await readInput();
        if (!MANAGERS.includes(manager)) {
          throw new DevsnapError('USAGE', `The hook names an unknown package manager "${o.manager}".`, 'It was written by another devsnap: run `devsnap auto install` again.');
        }
        const paths = autoPaths(o.root, o.config);
        const cfg = readConfig(paths.config);
        if (!cfg) return say(`no snapshot before ${manager}: there is no configuration ${paths.config} (\`devsnap auto install\` writes it).`);
        const label =
          manager === 'apt' ? changesLabel('apt', parseAptInput(input)) : manager === 'pacman' ? changesLabel('pacman', parsePacmanInput(input)) : commandLineLabel('dnf', managerArguments('dnf'));
        const minutes = cfg.hookTimeoutMinutes ?? DEFAULT_HOOK_TIMEOUT_MINUTES;
        // The last resort of the bound on the run time: the snapshot did not reach a safe point in time.
        setTimeout(
          () => {
            say(`the snapshot did not stop within ${GRACE_MS / 1000} s of its time limit: ${manager} goes on without it.`);
            syslog('err', `snapshot "${label}" abandoned after its time limit`);
            process.exit(0);
          },
          minutes * 60_000 + GRACE_MS,
        ).unref();
        const r = await runAutomatic(cfg, {
          trigger: manager,
          label,
          runOp,
          stateFile: paths.state,
          signal: ctx.signal,
          log: say,
          timeoutMs: minutes * 60_000,
          onStart: () => say(`taking a snapshot of ${cfg.source} "${label}" (stopped after ${minutes} minutes at the latest; ${manager} waits)…`),
        });
        if (r.outcome === 'skipped') return say(`no snapshot: ${r.reason}.`);
        say(`snapshot ${r.snapshot!.id} "${r.snapshot!.label}" taken${r.forgotten?.length ? `; retention removed ${r.forgotten.length} older automatic snapshot(s)` : ''}.`);
        syslog('info', `snapshot ${r.snapshot!.id} "${r.snapshot!.label}" taken of ${cfg.source}`);
        if (r.retentionError) {
          say(`retention failed: ${r.retentionError.message}`);
          syslog('err', `retention of automatic snapshots failed: ${r.retentionError.message}`);
        }
      } catch (err) {
        const e = toDevsnapError(err);
        say(`no snapshot before the package changes (they go on): ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`);
        syslog('err', `no snapshot before ${o.manager} changed packages: ${e.message}`);
      } finally {
        process.exitCode = 0;
      }
    });
}
