// `devsnap unlock`: remove stale locks, or with --all every lock.
import { Command } from 'commander';
import { breakLocks } from '../../repo/lock';
import { LocalStorage } from '../../storage/local';
import type { CommandContext } from '../context';
import { unlockText } from '../print/repository';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('unlock')
    .description('remove stale locks (of processes no longer running); --all removes every lock')
    .option('--all', 'remove all locks, also of other hosts (make sure no devsnap uses the repository)')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const removed = await breakLocks(new LocalStorage(ctx.repoDir(g)), !!o.all);
      ctx.report(g, { removed }, () => unlockText(removed));
    });
}
