// `devsnap snapshot`: image a disk into the repository, or with --plan only say how it would go.
import { Command, Option } from 'commander';
import { DevsnapError } from '../../core/errors';
import * as ops from '../../ops/operations';
import { intArg, type CommandContext } from '../context';
import { planText, snapshotText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('snapshot <source>')
    .description('image a disk (block device or disk image file) into the repository')
    .option('-l, --label <text>', 'a label, e.g. "before upgrade"')
    .addOption(new Option('--compression <level>', 'zstd level 1-19 (default: the repository setting)').argParser(intArg('--compression')))
    .option('--full-read', 'read every used block, not only what changed since the previous snapshot')
    .option('--freeze', "pause writes to the source's mounted filesystems for the whole snapshot (default: only for the short last pass)")
    .option('--fuzzy', 'read a mounted read-write source live, without pausing writes: not one point in time (the restored filesystems may need repair)')
    .option('--plan', 'only say how the snapshot would reach a point in time and about how long writes would pause')
    .action(async (source: string, o, cmd) => {
      const g = ctx.globals(cmd);
      if (o.plan) {
        const plan = await ops.planSnapshotOp({ ...ctx.repoReq(g), source });
        ctx.report(g, plan, () => planText(plan));
        return;
      }
      if (o.freeze && o.fuzzy) throw new DevsnapError('USAGE', '--freeze and --fuzzy contradict each other.', 'Give one of them, or neither (the default: a point in time with a short pause).');
      const r = await ops.snapshotOp({ ...ctx.repoReq(g), source, label: o.label, compressionLevel: o.compression, freeze: o.freeze, fuzzy: o.fuzzy, fullRead: o.fullRead }, ctx.opContext(g));
      ctx.report(g, r, () => snapshotText(r, source));
    });
}
