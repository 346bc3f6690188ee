// `devsnap show`: one snapshot's source, partitions and stats.
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { showText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('show <id>')
    .description('show a snapshot: source, partitions, stats (ID: id, id prefix, label, "latest", id:PREFIX or label:TEXT)')
    .action(async (id: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.showOp({ ...ctx.repoReq(g), snapshot: id }, ctx.opContext(g, false));
      ctx.report(g, r, () => showText(r));
    });
}
