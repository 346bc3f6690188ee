// `devsnap cat`: a file's content from inside a snapshot, raw on stdout.
import { Command } from 'commander';
import { DevsnapError } from '../../core/errors';
import { withSnapshotFs } from '../../ops/files';
import { partitionOption, type CliContext } from '../context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('cat <id> <path>')
    .description("write a file's content from inside a snapshot to stdout")
    .addOption(partitionOption())
    .action(async (id: string, p: string, o, cmd) => {
      const g = ctx.globals(cmd);
      await ctx.withRepo(g, false, 'cat', (repo) =>
        withSnapshotFs(repo, id, o.partition, async (s) => {
          for await (const chunk of s.fs.createReadStream(p)) {
            if (ctx.signal.aborted) throw new DevsnapError('CANCELLED', 'Cancelled.');
            if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
          }
        }),
      );
    });
}
