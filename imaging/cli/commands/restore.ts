// `devsnap restore`: write a snapshot (or one partition) to a device or image file, asking before a device.
import { Command, Option } from 'commander';
import { DevsnapError } from '../../core/errors';
import { formatBytes } from '../../core/format';
import * as ops from '../../ops/operations';
import { intArg, type CommandContext } from '../context';
import { restoreText } from '../print/disks';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('restore <id> <target>')
    .description('write a snapshot (or one partition) to a device or image file, verifying every chunk')
    .addOption(new Option('-p, --partition <n>', 'restore only this partition').argParser(intArg('--partition')))
    .option('-n, --dry-run', 'say what would be written, write nothing')
    .option('-y, --yes', 'do not ask before overwriting a device')
    .option('--new-ids', 'a copy to live beside the original: new disk and partition GUIDs and filesystem UUIDs, and /etc/fstab and the boot loader updated to them (root)')
    .action(async (id: string, target: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.restoreOp(
        { ...ctx.repoReq(g), snapshot: id, target, partition: o.partition, dryRun: o.dryRun, ...(o.newIds ? { newIds: true } : {}) },
        {
          ...ctx.opContext(g),
          confirmRestore: o.yes
            ? undefined
            : async (plan, full) => {
                if (plan.targetKind !== 'block') return;
                if (!process.stdin.isTTY) throw new DevsnapError('USAGE', `Restoring overwrites the device ${target}.`, 'Pass --yes to confirm.');
                if (!(await ctx.confirm(`This overwrites ${target} (${formatBytes(plan.targetSize)}) with snapshot ${full}. Type "yes" to continue: `)))
                  throw new DevsnapError('CANCELLED', 'Restore cancelled; nothing was written.');
              },
        },
      );
      ctx.report(g, r, () => restoreText(r));
    });
}
