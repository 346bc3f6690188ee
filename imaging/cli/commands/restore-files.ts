// `devsnap restore-files`: files and folders from a snapshot, with owners, modes, times, xattrs and links.
import { Command } from 'commander';
import { restoreFilesOp } from '../../ops/operations';
import { partitionOption, type CliContext } from '../context';
import { restoreFilesText } from '../print/files';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('restore-files <id> <paths...>')
    .description('restore files and folders from a snapshot, keeping owners, modes, times, xattrs and links')
    .addOption(partitionOption())
    .requiredOption('--to <dir>', 'where to restore: "/" puts files back in their original place')
    .option('--in-place', 'restore each path under --to at its full path (the default when --to is /); otherwise under its base name')
    .option('-n, --dry-run', 'list what would be created, replaced or left unchanged; write nothing')
    .option('--deep', 'compare contents to decide that an existing file is unchanged')
    .action(async (id: string, paths: string[], o, cmd) => {
      const g = ctx.globals(cmd);
      // The same operation the elevated helper runs (imaging/ops/operations.ts).
      const r = await restoreFilesOp(
        { ...ctx.repoReq(g), snapshot: id, paths, target: o.to, partition: o.partition, inPlace: o.inPlace ? true : undefined, dryRun: !!o.dryRun, deep: !!o.deep },
        ctx.opContext(g),
      );
      ctx.report(g, r, () => restoreFilesText(r));
    });
}
