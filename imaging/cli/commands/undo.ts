// `devsnap undo`: put back every file an upgrade changed between two snapshots of the running system.
import * as path from 'path';
import { Command, Option } from 'commander';
import { DevsnapError } from '../../core/errors';
import * as ops from '../../ops/operations';
import { undoOp } from '../../ops/undo';
import { UNDO_DEFAULT_EXCLUDES } from '../../protocol';
import { partitionOption, type CommandContext } from '../context';
import { undoText } from '../print/undo';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('undo <before> <after>')
    .description('undo an upgrade: put back every file that changed between two snapshots of the mounted filesystem (modified and removed files restored, added ones removed)')
    .addOption(partitionOption())
    .option('--target <dir>', 'where that filesystem is mounted', '/')
    .option('-n, --dry-run', 'list what would be restored, removed and left; change nothing')
    .option('-y, --yes', 'do not ask before changing files')
    .option('--force', "also undo paths changed since AFTER (their changes are lost), and onto a target not confirmed as the snapshots' filesystem")
    .option('--everything', `also undo below ${UNDO_DEFAULT_EXCLUDES.join(', ')} (left as they are by default)`)
    .addOption(new Option('--exclude <path>', 'leave this path and what is below it as it is (repeatable)').argParser((p: string, all: string[] = []) => [...all, p]))
    .option('--deep', 'compare contents even where size and mtime are equal')
    .option('--source <disk>', 'first take a safety snapshot of this disk (the one holding the filesystem), to go back to if needed')
    .action(async (before: string, after: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const opCtx = ctx.opContext(g);
      let safety: string | undefined;
      if (o.source && !o.dryRun) {
        const s = await ops.snapshotOp({ ...ctx.repoReq(g), source: o.source, label: `before undo of ${after}` }, opCtx);
        safety = s.id;
        ctx.log(`safety snapshot ${s.id} taken of ${o.source}`);
      }
      const r = await undoOp(
        {
          ...ctx.repoReq(g),
          before,
          after,
          partition: o.partition,
          target: path.resolve(o.target),
          dryRun: !!o.dryRun,
          force: !!o.force,
          deep: !!o.deep,
          everything: !!o.everything,
          exclude: o.exclude?.map((p: string) => path.posix.resolve('/', p)),
        },
        {
          ...opCtx,
          confirmUndo: o.yes
            ? undefined
            : async (plan) => {
                if (!process.stdin.isTTY || g.json) throw new DevsnapError('USAGE', `Undoing changes files on ${plan.target}.`, 'Pass --yes to confirm, or --dry-run to see what it would do.');
                process.stderr.write(undoText(plan) + '\n');
                if (!(await ctx.confirm(`Put these files on ${plan.target} back as they were in ${plan.before}? Type "yes" to continue: `)))
                  throw new DevsnapError('CANCELLED', 'Undo cancelled; nothing was changed.');
              },
        },
      );
      ctx.report(g, safety ? { ...r, safetySnapshot: safety } : r, () => (safety ? `Safety snapshot: ${safety}\n` : '') + undoText(r));
    });
}
