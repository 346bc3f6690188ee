// `devsnap auto install|remove|status|run`: snapshots that happen on their own, through the system's
// scheduler (a systemd timer) and before package managers change packages (their hooks run
// `devsnap hook pre-upgrade`, commands/hook.ts, registered here too). The work is imaging/automation/.
import * as path from 'path';
import { Command, Option } from 'commander';
import { type AutoConfig, autoPaths, checkCalendar, detectManagers, MANAGERS, parseConfig, readConfig, SCHEDULE_PRESETS } from '../../automation/config';
import { WRAPPER } from '../../automation/engine-copy';
import { installAutomatic } from '../../ops/automation';
import { plannedFiles, remove, status } from '../../automation/install';
import { runAutomatic, scheduledLabel } from '../../automation/run';
import { type DevsnapCommand } from '../../automation/units';
import { DevsnapError } from '../../core/errors';
import { runOp } from '../../ops/registry';
import { intArg, type CommandContext } from '../context';
import { dryRunText, installText, removeText, runText, statusText } from '../print/auto';
import * as hook from './hook';

/** This devsnap, as the installed files start it: the copy of it in /usr/local/lib/devsnap (automation/engine-copy.ts). */
export const thisDevsnap = (): DevsnapCommand => [WRAPPER];

/** --root and --config, shared by the subcommands. */
const where = (c: Command) =>
  c
    .option('--root <dir>', 'work below this folder instead of / (an image being prepared, or a test): nothing is started or stopped')
    .option('--config <file>', 'the configuration file (default: ROOT/etc/devsnap/auto.json)');
const pathsOf = (o: { root?: string; config?: string }) => autoPaths(o.root, o.config);

const numberArg = (name: string) => (s: string) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) throw new DevsnapError('USAGE', `${name} must be a number, got "${s}".`);
  return n;
};

/** `auto install`'s options, as commander gives them. */
interface InstallOptions {
  source?: string;
  schedule?: string;
  hooks?: string;
  rateLimit?: number;
  hookTimeout?: number;
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keep?: 'all';
  /** false with --no-prune */
  prune: boolean;
}

/** The new config: the options given, else the current config's values, else the defaults. */
function configFrom(o: InstallOptions, g: { repo?: string; passwordFile?: string }, current: AutoConfig | null, root: string, file: string): AutoConfig {
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(p));
  const repository = abs(g.repo ?? process.env.DEVSNAP_REPO) ?? current?.repository;
  const source = abs(o.source) ?? current?.source;
  if (!repository || !source)
    throw new DevsnapError(
      'USAGE',
      `No ${repository ? 'source' : 'repository'} given for automatic snapshots.`,
      'Pass --repo DIR and --source DISK (e.g. `devsnap auto install --repo /mnt/backup/devsnap --source /dev/nvme0n1`).',
    );
  const schedule = o.schedule === undefined ? (current ? current.schedule : 'daily') : o.schedule === 'none' ? undefined : o.schedule;
  const hooks = o.hooks === undefined ? (current?.hooks ?? detectManagers(root)) : o.hooks === 'none' ? [] : o.hooks.split(',').filter(Boolean);
  const keep = { keepLast: o.keepLast, keepDaily: o.keepDaily, keepWeekly: o.keepWeekly, keepMonthly: o.keepMonthly };
  const given = Object.values(keep).some((n) => n !== undefined);
  const retention = o.keep === 'all' ? undefined : given ? { ...keep, ...(o.prune === false ? { prune: false } : {}) } : current?.retention;
  const cfg = {
    repository,
    source,
    passwordFile: abs(g.passwordFile) ?? current?.passwordFile,
    schedule,
    hooks,
    rateLimitHours: o.rateLimit ?? current?.rateLimitHours,
    hookTimeoutMinutes: o.hookTimeout ?? current?.hookTimeoutMinutes,
    retention,
  };
  // Absent, not undefined, in the file.
  const parsed = parseConfig(JSON.parse(JSON.stringify(cfg)), file);
  if (parsed.schedule) checkCalendar(parsed.schedule);
  return parsed;
}

export function register(program: Command, ctx: CommandContext): void {
  const auto = program.command('auto').description('snapshots that happen on their own: on a schedule (a systemd timer) and before package managers change packages');

  where(auto.command('install'))
    .description('write the configuration, the timer and the package-manager hooks, and start the timer (root); again to change them')
    .option('--source <disk>', 'the disk (or image file) to snapshot')
    .option('--schedule <when>', `${SCHEDULE_PRESETS.join(', ')}, a systemd calendar expression, or none (default: daily)`)
    .option('--hooks <list>', `package managers whose changes are preceded by a snapshot: ${MANAGERS.join(',')} or none (default: those on this system)`)
    .addOption(new Option('--rate-limit <hours>', 'at most one snapshot from the hooks every so many hours (default: 6; 0: every time)').argParser(numberArg('--rate-limit')))
    .addOption(new Option('--hook-timeout <minutes>', "stop a hook's snapshot after so long: the package manager waits (default: 30)").argParser(intArg('--hook-timeout')))
    .addOption(new Option('--keep-last <n>', 'retention of the automatic snapshots (never the others)').argParser(intArg('--keep-last')))
    .addOption(new Option('--keep-daily <n>').argParser(intArg('--keep-daily')))
    .addOption(new Option('--keep-weekly <n>').argParser(intArg('--keep-weekly')))
    .addOption(new Option('--keep-monthly <n>').argParser(intArg('--keep-monthly')))
    .addOption(new Option('--keep <all>', 'keep every automatic snapshot (no retention)').choices(['all']))
    .option('--no-prune', 'after retention, leave the space of forgotten snapshots until `devsnap prune`')
    .option('-n, --dry-run', 'only show what would be written')
    .action(async (o: InstallOptions & { root?: string; config?: string; dryRun?: boolean }, cmd) => {
      const g = ctx.globals(cmd);
      const paths = pathsOf(o);
      const cfg = configFrom(o, g, readConfig(paths.config), paths.root, paths.config);
      if (o.dryRun) {
        const files = plannedFiles(cfg, paths, thisDevsnap());
        ctx.report(g, { config: paths.config, settings: cfg, files }, () => dryRunText(cfg, paths.config, files));
        return;
      }
      // DEVSNAP_ENGINE_DIR: the bundle to copy when this devsnap runs from elsewhere (tsc's out/, in development).
      const r = await installAutomatic(cfg, paths, { engineDir: process.env.DEVSNAP_ENGINE_DIR });
      ctx.report(g, { ...r, settings: cfg }, () => installText(r, cfg));
      if (r.commands.some((c) => !c.ok && !c.optional)) process.exitCode = 1;
    });

  where(auto.command('remove'))
    .description('stop the timer and remove the files `auto install` wrote')
    .option('--purge', 'remove the configuration and the record of the last runs too')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await remove(pathsOf(o), !!o.purge);
      ctx.report(g, r, () => removeText(r));
      if (r.commands.some((c) => !c.ok && !c.optional)) process.exitCode = 1;
    });

  where(auto.command('status'))
    .description('the configuration, what is installed, the timer and the last automatic snapshot')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const s = await status(pathsOf(o), thisDevsnap(), process.platform, process.env.DEVSNAP_ENGINE_DIR);
      ctx.report(g, s, () => statusText(s));
    });

  where(auto.command('run'))
    .description('what the timer runs: a snapshot now as the configuration says, then retention of the automatic snapshots (no rate limit; fails as other commands do)')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const paths = pathsOf(o);
      const cfg = readConfig(paths.config);
      if (!cfg) throw new DevsnapError('NOT_FOUND', `There is no automatic snapshot configuration ${paths.config}.`, 'Write it with `devsnap auto install`.');
      const r = await runAutomatic(cfg, { trigger: 'scheduled', label: scheduledLabel(cfg.schedule), runOp, stateFile: paths.state, ...ctx.opContext(g) });
      ctx.report(g, r, () => runText(r));
      if (r.retentionError) process.exitCode = 1;
    });

  hook.register(program, ctx);
}
