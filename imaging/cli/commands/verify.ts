// `devsnap verify`: read back every chunk of snapshots, optionally compare one with a disk as it is now.
import { Command } from 'commander';
import { EXIT_CODES } from '../../core/errors';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { verifyText } from '../print/verify';

/** `verify --against`: the snapshot is sound but the disk holds something else (README, exit codes). */
const DIFFERS_FROM_DISK = 10;

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('verify [id]')
    .description('read back every chunk of a snapshot (default: all snapshots) and check its hash')
    .option('--against <disk>', 'also compare the snapshot with this disk (or image file) as it is now, where its filesystems have blocks in use')
    .action(async (id: string | undefined, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.verifyOp({ ...ctx.repoReq(g), ...(id ? { snapshot: id } : {}), ...(o.against ? { against: o.against } : {}) }, ctx.opContext(g));
      ctx.report(g, r, () => verifyText(r));
      if (!r.ok) process.exitCode = EXIT_CODES.DAMAGED;
      else if (r.disk && !r.disk.equal) process.exitCode = DIFFERS_FROM_DISK;
    });
}
