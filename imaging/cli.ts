// The `devsnap` command line. Every command that reports takes --json (one JSON object on stdout;
// errors as {"error": ErrorInfo} with the exit codes in core/errors.ts). See README "CLI".
// This builds the program from imaging/cli/commands/ (shared helpers: cli/context.ts, texts: cli/print/).
import { Command, Option } from 'commander';
import { EXIT_CODES, toDevsnapError } from './core/errors';
import { createContext } from './cli/context';
import { terminalSafe } from './cli/output';
import { registerFileCommands } from './cli-files';
import * as init from './cli/commands/init';
import * as disks from './cli/commands/disks';
import * as snapshot from './cli/commands/snapshot';
import * as list from './cli/commands/list';
import * as show from './cli/commands/show';
import * as restore from './cli/commands/restore';
import * as verify from './cli/commands/verify';
import * as check from './cli/commands/check';
import * as diff from './cli/commands/diff';
import * as forget from './cli/commands/forget';
import * as prune from './cli/commands/prune';
import * as stats from './cli/commands/stats';
import * as pin from './cli/commands/pin';
import * as label from './cli/commands/label';
import * as archive from './cli/commands/archive';
import * as unlock from './cli/commands/unlock';
import * as serve from './cli/commands/serve';
import * as helper from './cli/commands/helper';
import * as undo from './cli/commands/undo';
import * as auto from './cli/commands/auto';
import * as kit from './cli/commands/kit';
import * as recover from './cli/commands/recover';
import { relaunchTuned, watchLauncher } from './runtime';
import { ENGINE_VERSION } from './core/version';

const program = new Command();
const abort = new AbortController();
const ctx = createContext(abort.signal);

// A reader that stopped early (`devsnap --help | head -1`): end quietly with the status a shell gives
// a program killed by SIGPIPE (128 + 13), as other command-line tools do, not with a stack trace.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
}

program
  .name('devsnap')
  .description('Deduplicated, incremental images of whole disks (partition table, boot areas, used blocks of every filesystem), verified on restore.')
  .version(ENGINE_VERSION)
  .option('-r, --repo <dir>', 'repository folder (default: $DEVSNAP_REPO)')
  .option('--password-file <file>', 'file holding the repository password (default: $DEVSNAP_PASSWORD)')
  .option('--json', 'print the result as one JSON object on stdout')
  .addOption(new Option('--progress <mode>', 'progress display').choices(['bar', 'plain', 'json', 'none']))
  .option('--lock-wait <seconds>', 'how long to wait for another devsnap holding the repository lock (default: 10)')
  .addHelpText(
    'after',
    '\nNaming a snapshot (ID): its full id, a prefix of it, its label, or "latest"; id:PREFIX names by id only and\nlabel:TEXT by label only. A name that fits more than one snapshot is refused with the candidates, never guessed.',
  )
  .showHelpAfterError();

// The commands, in the order `devsnap --help` lists them.
init.register(program, ctx);
disks.register(program, ctx);
snapshot.register(program, ctx);
list.register(program, ctx);
show.register(program, ctx);
restore.register(program, ctx);
verify.register(program, ctx);
check.register(program, ctx);
diff.register(program, ctx);
forget.register(program, ctx);
prune.register(program, ctx);
stats.register(program, ctx);
pin.register(program, ctx);
label.register(program, ctx);
archive.register(program, ctx);
unlock.register(program, ctx);
// Looking inside snapshots: ls, cat, inventory, changes, restore-files (imaging/cli-files.ts).
registerFileCommands(program, ctx);
undo.register(program, ctx);
auto.register(program, ctx); // auto install|remove|status|run and hook pre-upgrade
kit.register(program, ctx); // kit write|status: the recovery kit
recover.register(program, ctx); // the kit's guided restore
serve.register(program);
helper.register(program);

/**
 * Exits once stdout and stderr have taken everything: process.exit() drops what a pipe has not
 * accepted yet (a `list --json` of 1,000 snapshots reached the extension cut at 64 KiB).
 */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function fail(err: unknown): void {
  ctx.stopProgress();
  const e = toDevsnapError(err);
  const json = process.argv.includes('--json');
  if (json) process.stdout.write(JSON.stringify({ error: e.toInfo() }, null, 2) + '\n');
  process.stderr.write(terminalSafe(`devsnap: error: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`) + '\n');
  if (e.code === 'INTERNAL' && process.env.DEVSNAP_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  exit(EXIT_CODES[e.code]);
}

function main(): void {
  // Ctrl-C / SIGTERM: stop at a safe point (the snapshot is abandoned, the repository left as it was).
  let signals = 0;
  if (process.argv[2] !== 'helper')
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (++signals > 1) process.exit(EXIT_CODES.CANCELLED);
        ctx.log('stopping at a safe point… (again to quit now)');
        abort.abort();
      });
    }
  watchLauncher(() => process.kill(process.pid, 'SIGTERM'));
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.parseAsync(process.argv).then(
    () => exit(Number(process.exitCode ?? 0)),
    (err: unknown) => {
      const ce = err as { code?: string; exitCode?: number };
      if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
        return exit(ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' ? 0 : EXIT_CODES.USAGE);
      }
      fail(err);
    },
  );
}

if (!relaunchTuned()) main(); // runtime.ts: the engine's memory settings
