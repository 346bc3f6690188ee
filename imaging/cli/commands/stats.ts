// `devsnap stats [ID…]`: per snapshot the space only it uses (what deleting it frees), the repository's totals.
import { Command } from 'commander';
import { usageOp } from '../../ops/usage';
import type { CommandContext } from '../context';
import { usageText } from '../print/usage';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('stats')
    .argument('[ids...]', 'also say what deleting these snapshots together frees')
    .description('space per snapshot: the data only it uses (what deleting it frees), and the repository total')
    .action(async (ids: string[], _o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await usageOp({ ...ctx.repoReq(g), ...(ids.length ? { forget: ids } : {}) }, ctx.opContext(g, false));
      ctx.report(g, r, () => usageText(r));
    });
}
