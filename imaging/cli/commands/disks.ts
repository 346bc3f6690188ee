// `devsnap disks`: the disks and partitions of this machine; virtual devices (loop, RAM disks) apart.
// With --json every device, the virtual ones marked with `virtual` (their kind, a loop's image file).
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { disksText } from '../print/disks';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('disks')
    .description('list disks and partitions (the disk of the running system is marked; loop devices and RAM disks apart, below)')
    .action(async (_o, cmd) => {
      const g = ctx.globals(cmd);
      const { disks } = await ops.disksOp();
      ctx.report(g, { disks }, () => disksText(disks));
    });
}
