// `devsnap kit write|status`: the recovery kit (imaging/recovery/): devsnap with its own Node, to restore
// from a live USB with nothing installed. In the repository (recovery/) by default, or in any folder.
import { Command } from 'commander';
import * as path from 'path';
import { engineBundleDir } from '../../automation/engine-copy';
import { KIT_DIR, kitStatus, writeKit, writeRepositoryKit, type KitStatus } from '../../recovery/kit';
import { fetchKitNode } from '../../recovery/node-runtime';
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
      const node = o.node ? path.resolve(o.node) : await fetchKitNode(undefined, { say: ctx.log });
      const bundleDir = engineBundleDir();
      const s = o.to ? await writeKit(o.to, { node, bundleDir }) : await writeRepositoryKit(ctx.repoDir(g), { node, bundleDir }, ctx.log);
      ctx.report(g, s, () => `Wrote the recovery kit to ${s.dir} (devsnap ${s.record!.engine}, Node ${s.record!.node}). Its README.txt says how to restore from a live USB.`);
    });
  kit
    .command('status')
    .description("say whether the repository's recovery kit (or --dir DIR's) is there and up to date")
    .option('--dir <dir>', "the kit folder to look at (default: the repository's recovery/)")
    .option('--deep', 'also check every file against its SHA-256 in kit.json')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const dir = o.dir ? path.resolve(o.dir) : path.join(ctx.repoDir(g), KIT_DIR);
      const s = await kitStatus(dir, !!o.deep);
      ctx.report(g, s, () => statusText(s));
      if (s.state === 'damaged') process.exitCode = 8;
    });
}
