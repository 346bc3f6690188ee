// `devsnap label`: rename a snapshot.
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { labelText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('label <id> <text>')
    .description('rename a snapshot')
    .action(async (id: string, text: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.labelOp({ ...ctx.repoReq(g), snapshot: id, label: text }, ctx.opContext(g, false));
      ctx.report(g, r, () => labelText(r));
    });
}
