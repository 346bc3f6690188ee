// `devsnap export` and `devsnap import`: a snapshot as a .tar.zst that plain tar and dd can restore, and back.
import { Command } from 'commander';
import type { CommandContext } from '../context';
import { exportText, importText } from '../print/repository';

/** The archive modules (tar), loaded only by these commands. */
const archive = () => import('../../archive/export');

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('export <id> <file>')
    .description('write a snapshot as a .tar.zst that plain tar and dd can restore')
    .action(async (id: string, file: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ctx.withRepo(g, false, 'export', async (repo) =>
        (await archive()).exportSnapshot(repo, await repo.resolveId(id), file, { onProgress: ctx.progressSink(g), signal: ctx.signal, log: ctx.log }),
      );
      ctx.report(g, r, () => exportText(id, file));
    });

  program
    .command('import <file>')
    .description('read a snapshot exported with `devsnap export` into the repository')
    .action(async (file: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ctx.withRepo(g, true, 'import', async (repo) => (await archive()).importSnapshot(repo, file, { onProgress: ctx.progressSink(g), signal: ctx.signal, log: ctx.log }), true);
      ctx.report(g, r, () => importText(file));
    });
}
