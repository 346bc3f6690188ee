// `devsnap prune`: reclaim the space of data no snapshot uses.
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { pruneText } from '../print/repository';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('prune')
    .description('reclaim the space of data no snapshot uses (and leftovers of interrupted snapshots)')
    .option('-n, --dry-run', 'only say what would be freed')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.pruneOp({ ...ctx.repoReq(g), dryRun: o.dryRun }, ctx.opContext(g));
      ctx.report(g, r, () => pruneText(r));
    });
}
