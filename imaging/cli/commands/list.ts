// `devsnap list`: the snapshots, oldest first, and any damaged manifest.
import { Command } from 'commander';
import { EXIT_CODES } from '../../core/errors';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { listText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('list')
    .description('list snapshots, oldest first')
    .action(async (_o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.listOp(ctx.repoReq(g), ctx.opContext(g, false));
      ctx.report(g, r, () => listText(r));
      if (r.damaged.length) process.exitCode = EXIT_CODES.DAMAGED;
    });
}
