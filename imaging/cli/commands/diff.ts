// `devsnap diff`: which byte ranges of each partition changed between two snapshots.
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { diffText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('diff <a> <b>')
    .description('which byte ranges of each partition changed between two snapshots')
    .action(async (a: string, b: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.diffOp({ ...ctx.repoReq(g), a, b }, ctx.opContext(g, false));
      ctx.report(g, r, () => diffText(r));
    });
}
