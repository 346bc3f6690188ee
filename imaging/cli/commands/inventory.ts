// `devsnap inventory`: the environment of a snapshot (OS, kernel, packages, toolchains, VS Code extensions).
import { Command } from 'commander';
import { inventoryOp } from '../../ops/files';
import { partitionOption, type CliContext } from '../context';
import { inventoryText } from '../print/files';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('inventory <id>')
    .description('the environment of a snapshot: OS, kernel, packages, toolchains, VS Code extensions')
    .addOption(partitionOption())
    .action(async (id: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const inv = await inventoryOp({ ...ctx.repoReq(g), snapshot: id, partition: o.partition }, ctx.opContext(g, false));
      ctx.report(g, inv, () => inventoryText(inv));
    });
}
