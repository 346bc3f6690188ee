// `devsnap check`: the repository's structure, and with --read-data every chunk.
import { Command } from 'commander';
import { EXIT_CODES } from '../../core/errors';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { checkText } from '../print/verify';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('check')
    .description("check the repository's structure (add --read-data to also verify every chunk)")
    .option('--read-data', 'also read and verify every chunk')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ops.checkOp({ ...ctx.repoReq(g), readData: !!o.readData }, ctx.opContext(g, !!o.readData));
      ctx.report(g, r, () => checkText(r));
      if (!r.ok) process.exitCode = EXIT_CODES.DAMAGED;
    });
}
