// `devsnap ls`: list a directory inside a snapshot without restoring it.
import { Command } from 'commander';
import { listDirOp } from '../../ops/files';
import { partitionOption, type CliContext } from '../context';
import { lsText } from '../print/files';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('ls <id> [path]')
    .description('list a directory inside a snapshot (without restoring it)')
    .addOption(partitionOption())
    .action(async (id: string, p: string | undefined, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await listDirOp({ ...ctx.repoReq(g), snapshot: id, path: p, partition: o.partition }, ctx.opContext(g, false));
      ctx.report(g, r, () => lsText(r));
    });
}
