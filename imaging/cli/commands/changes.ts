// `devsnap changes`: which files changed between two snapshots (a page at a time), and what changed in their environment.
import { Command, Option } from 'commander';
import { changesOp } from '../../ops/files';
import { intArg, partitionOption, type CliContext } from '../context';
import { changesText } from '../print/files';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('changes <a> <b>')
    .description('which files changed between two snapshots, and what changed in their environment')
    .addOption(partitionOption())
    .option('--path <prefix>', 'only this directory (or file)')
    .addOption(new Option('--limit <n>', 'changes per page').default(1000).argParser(intArg('--limit')))
    .addOption(new Option('--offset <n>', 'skip this many changes').default(0).argParser(intArg('--offset')))
    .option('--deep', 'compare contents even where size and mtime are equal')
    .option('--depth <n>', 'directory depth of the per-directory summary', intArg('--depth'), 2)
    .action(async (a: string, b: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await changesOp({ ...ctx.repoReq(g), a, b, partition: o.partition, path: o.path, offset: o.offset, limit: o.limit, deep: o.deep, depth: o.depth }, ctx.opContext(g));
      ctx.report(g, r, () => changesText(r));
    });
}
