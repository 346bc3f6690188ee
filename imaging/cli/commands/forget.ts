// `devsnap forget`: remove snapshots by id or by a retention policy, optionally pruning right after.
import { Command, Option } from 'commander';
import * as ops from '../../ops/operations';
import { intArg, type CommandContext } from '../context';
import { forgetText } from '../print/repository';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('forget [ids...]')
    .description('remove snapshots by id, or by a retention policy (pinned snapshots are always kept)')
    .addOption(new Option('--keep-last <n>').argParser(intArg('--keep-last')))
    .addOption(new Option('--keep-daily <n>').argParser(intArg('--keep-daily')))
    .addOption(new Option('--keep-weekly <n>').argParser(intArg('--keep-weekly')))
    .addOption(new Option('--keep-monthly <n>').argParser(intArg('--keep-monthly')))
    .option('-n, --dry-run', 'only say what would be removed')
    .option('--prune', 'prune right after')
    .action(async (ids: string[], o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.forgetOp(
        {
          ...ctx.repoReq(g),
          ids,
          policy: { keepLast: o.keepLast, keepDaily: o.keepDaily, keepWeekly: o.keepWeekly, keepMonthly: o.keepMonthly },
          dryRun: !!o.dryRun,
          prune: !!o.prune,
        },
        ctx.opContext(g, !!o.prune && !o.dryRun),
      );
      for (const d of r.damaged ?? []) ctx.log(`warning: snapshot ${d.id} has a damaged manifest and was left alone (${d.message}); forget it by id once you are sure.`);
      ctx.report(g, r, () => forgetText(r));
    });
}
