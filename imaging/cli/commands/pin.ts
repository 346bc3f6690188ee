// `devsnap pin` and `devsnap unpin`: keep a snapshot from retention, or stop keeping it.
import { Command } from 'commander';
import * as ops from '../../ops/operations';
import type { CommandContext } from '../context';
import { pinText } from '../print/snapshots';

export function register(program: Command, ctx: CommandContext): void {
  for (const [name, pinned] of [
    ['pin', true],
    ['unpin', false],
  ] as const) {
    program
      .command(`${name} <id>`)
      .description(pinned ? 'pin a snapshot: retention never removes it' : 'unpin a snapshot')
      .action(async (id: string, _o, cmd) => {
        const g = ctx.globals(cmd);
        const r = await ops.pinOp({ ...ctx.repoReq(g), snapshot: id, pinned }, ctx.opContext(g, false));
        ctx.report(g, r, () => pinText(r, pinned));
      });
  }
}
