// `devsnap kit write|status`: the recovery kit (imaging/recovery/): devsnap with its own Node, to restore
// from a live USB with nothing installed. In the repository (recovery/) by default, or in any folder.
import { Command } from 'commander';
import type { KitStatus } from '../../protocol';
import { KIT_DIR } from '../../recovery/kit';
import { kitStatusOp, kitWriteOp } from '../../ops/recovery';
import type { CommandContext } from '../context';

function statusText(s: KitStatus): string {
  const what = s.record ? ` (devsnap ${s.record.engine}, Node ${s.record.node}, written ${s.record.written.slice(0, 16).replace('T', ' ')})` : '';
  switch (s.state) {
    case 'ok':
      return `Recovery kit in ${s.dir}: up to date${what}.`;
    case 'missing':
      return `No recovery kit in ${s.dir}. Write one with: devsnap kit write`;
    case 'outdated':
      return `The recovery kit in ${s.dir} is outdated: ${s.reason}${what}. Refresh it with: devsnap kit write`;
    case 'damaged':
      return `The recovery kit in ${s.dir} is damaged: ${s.reason}. Write it again with: devsnap kit write`;
  }
  return '';
}

export function register(program: Command, ctx: CommandContext): void {
  const kit = program.command('kit').description('the recovery kit: devsnap and its own Node, to restore from a live USB with nothing installed');
  kit
    .command('write')
    .description(`write the recovery kit into the repository (${KIT_DIR}/), or into --to DIR (recovery media)`)
    .option('--to <dir>', 'write it into this folder instead (new or empty, or a kit to refresh)')
    .option('--node <file>', 'the Node to put in it (Linux x86-64, 22.15 or later); default: the pinned official Node, fetched once from the npm registry and checked')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const s = await kitWriteOp({ ...(o.to ? { to: o.to } : { repo: ctx.repoDir(g) }), ...(o.node ? { node: o.node } : {}) }, ctx.opContext(g, false));
      ctx.report(g, s, () => `Wrote the recovery kit to ${s.dir} (devsnap ${s.record!.engine}, Node ${s.record!.node}). Its README.txt says how to restore from a live USB.`);
    });
  kit
    .command('status')
    .description("say whether the repository's recovery kit (or --dir DIR's) is there and up to date")
    .option('--dir <dir>', "the kit folder to look at (default: the repository's recovery/)")
    .option('--deep', 'also check every file against its SHA-256 in kit.json')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const s = await kitStatusOp(o.dir ? { dir: o.dir, deep: !!o.deep } : { repo: ctx.repoDir(g), deep: !!o.deep });
      ctx.report(g, s, () => statusText(s));
      if (s.state === 'damaged') process.exitCode = 8;
    });
}
