// `devsnap export` and `devsnap import`: a snapshot as a .tar.zst that plain tar and dd can restore, and back.
import { Command } from 'commander';
import { exportSnapshot, importSnapshot } from '../../archive/export';
import type { CommandContext } from '../context';
import { exportText, importText } from '../print/repository';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('export <id> <file>')
    .description('write a snapshot as a .tar.zst that plain tar and dd can restore')
    .action(async (id: string, file: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ctx.withRepo(g, false, 'export', async (repo) => exportSnapshot(repo, await repo.resolveId(id), file, { onProgress: ctx.progressSink(g), signal: ctx.signal, log: ctx.log }));
      ctx.report(g, r, () => exportText(id, file));
    });

  program
    .command('import <file>')
    .description('read a snapshot exported with `devsnap export` into the repository')
    .action(async (file: string, _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ctx.withRepo(g, true, 'import', (repo) => importSnapshot(repo, file, { onProgress: ctx.progressSink(g), signal: ctx.signal, log: ctx.log }), true);
      ctx.report(g, r, () => importText(file));
    });
}
