// CLI commands that look inside snapshots: ls, cat, inventory, changes (file-level and inventory diff)
// and restore-files. Registered on the main program by imaging/cli.ts through registerFileCommands.
import { Command, Option } from 'commander';
import { DevsnapError } from './core/errors';
import { formatBytes } from './core/format';
import { describeInventoryDiff } from './inventory/inventory';
import { restoreFilesOp } from './ops/operations';
import { changesOp, inventoryOp, listDirOp, withSnapshotFs } from './ops/files';
import type { Repository } from './repo/repository';
import type { OpContext } from './ops/operations';
import type { ProgressEvent, RepoRequest, WireStat } from './protocol';

export interface CliContext {
  withRepo<T>(g: any, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>): Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The repository part of an operation request (repository folder, password). */
  repoReq(g: any): RepoRequest; // eslint-disable-line @typescript-eslint/no-explicit-any
  report(g: any, json: unknown, human: () => string): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  globals(cmd: Command): any; // eslint-disable-line @typescript-eslint/no-explicit-any
  progressSink(g: any): (e: ProgressEvent) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
  log(msg: string): void;
  signal: AbortSignal;
  /** What an operation gets from the command line: cancellation (SIGINT), progress (--progress), the log. */
  opContext(g: any, progress?: boolean): OpContext; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DevsnapError('USAGE', `${name} must be a whole number, got "${v}".`);
  return n;
};

const partitionOption = () => new Option('-p, --partition <n>', 'partition number (default: the largest ext partition, the root)').argParser(intArg('--partition'));

function modeString(st: WireStat): string {
  const t = st.type === 'dir' ? 'd' : st.type === 'symlink' ? 'l' : st.type === 'file' ? '-' : st.special === 'chardev' ? 'c' : st.special === 'blockdev' ? 'b' : st.special === 'fifo' ? 'p' : 's';
  const m = st.mode;
  const rwx = (shift: number, special: number, ch: string) =>
    (m & (4 << shift) ? 'r' : '-') + (m & (2 << shift) ? 'w' : '-') + (m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? 'x' : '-');
  return t + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

export function registerFileCommands(program: Command, ctx: CliContext): void {
  program
    .command('ls <id> [path]')
    .description('list a directory inside a snapshot (without restoring it)')
    .addOption(partitionOption())
    .action(async (id: string, p: string | undefined, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await listDirOp({ ...ctx.repoReq(g), snapshot: id, path: p, partition: o.partition }, ctx.opContext(g, false));
      ctx.report(g, r, () =>
        r.entries
          .map(
            (e) =>
              `${modeString(e)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(e.size).padStart(10)} ${new Date(e.mtime).toISOString().slice(0, 19).replace('T', ' ')} ${e.name}${e.type === 'dir' ? '/' : ''}${e.target !== undefined ? ` -> ${e.target}` : ''}`,
          )
          .join('\n'),
      );
    });

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

  program
    .command('inventory <id>')
    .description('the environment of a snapshot: OS, kernel, packages, toolchains, VS Code extensions')
    .addOption(partitionOption())
    .action(async (id: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const inv = await inventoryOp({ ...ctx.repoReq(g), snapshot: id, partition: o.partition }, ctx.opContext(g, false));
      ctx.report(g, inv, () =>
        [
          `OS: ${inv.os.prettyName ?? `${inv.os.name} ${inv.os.version}`}${inv.os.kernel ? `, kernel ${inv.os.kernel}` : ''}${inv.bootMode ? `, ${inv.bootMode}` : ''}`,
          `Packages: ${inv.packages.length}${inv.packages.length ? ` (${[...new Set(inv.packages.map((p) => p.manager))].join(', ')})` : ''}`,
          ...inv.toolchains.map((t) => `  ${t.name} ${t.version}${t.path ? ` (${t.path})` : ''}`),
          `VS Code extensions: ${inv.vscodeExtensions.length}`,
          ...inv.notes.map((n) => `note: ${n}`),
        ].join('\n'),
      );
    });

  program
    .command('changes <a> <b>')
    .description('which files changed between two snapshots, and what changed in their environment')
    .addOption(partitionOption())
    .option('--path <prefix>', 'only this directory (or file)')
    .addOption(new Option('--limit <n>', 'changes per page').default(1000).argParser(intArg('--limit')))
    .addOption(new Option('--offset <n>', 'skip this many changes').default(0).argParser(intArg('--offset')))
    .option('--deep', 'compare contents even where size and mtime are equal')
    .option('--depth <n>', 'directory depth of the per-directory summary', intArg('--depth'), 2)
    .action(async (a: string, b: string, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await changesOp({ ...ctx.repoReq(g), a, b, partition: o.partition, path: o.path, offset: o.offset, limit: o.limit, deep: o.deep, depth: o.depth }, ctx.opContext(g));
      const t = r.files.totals;
      ctx.report(g, r, () =>
        [
          describeInventoryDiff(r.inventory),
          `Files (partition ${r.partition}): ${t.added} added, ${t.removed} removed, ${t.modified} modified, ${t.metadata} metadata only`,
          ...r.files.changes.map(
            (c) =>
              `  ${c.change === 'added' ? 'A' : c.change === 'removed' ? 'D' : c.change === 'modified' ? 'M' : 'm'} ${c.path}${c.type === 'dir' ? '/' : ''}${c.detail.length ? `  (${c.detail.join(', ')})` : ''}`,
          ),
          r.files.total > r.files.offset + r.files.changes.length ? `  … ${r.files.total - r.files.offset - r.files.changes.length} more (use --offset/--limit)` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  program
    .command('restore-files <id> <paths...>')
    .description('restore files and folders from a snapshot, keeping owners, modes, times, xattrs and links')
    .addOption(partitionOption())
    .requiredOption('--to <dir>', 'where to restore: "/" puts files back in their original place')
    .option('--in-place', 'restore each path under --to at its full path (the default when --to is /); otherwise under its base name')
    .option('-n, --dry-run', 'list what would be created, replaced or left unchanged; write nothing')
    .option('--deep', 'compare contents to decide that an existing file is unchanged')
    .action(async (id: string, paths: string[], o, cmd) => {
      const g = ctx.globals(cmd);
      // The same operation the elevated helper runs (imaging/operations.ts).
      const r = await restoreFilesOp(
        { ...ctx.repoReq(g), snapshot: id, paths, target: o.to, partition: o.partition, inPlace: o.inPlace ? true : undefined, dryRun: !!o.dryRun, deep: !!o.deep },
        ctx.opContext(g),
      );
      const t = r.totals;
      ctx.report(g, r, () =>
        [
          `${r.dryRun ? 'Would restore' : 'Restored'} to ${r.targetRoot}: ${t.create} created, ${t.replace} replaced, ${t.unchanged} unchanged${t.conflict ? `, ${t.conflict} conflicts` : ''}${t.skip ? `, ${t.skip} skipped` : ''}; ${formatBytes(r.dryRun ? r.bytesToWrite : r.bytesWritten)}${r.dryRun ? ' to write' : ' written'}.`,
          ...(r.dryRun ? r.entries.filter((e) => e.action !== 'unchanged').map((e) => `  ${e.action.padEnd(9)} ${e.dest}${e.reason ? `  (${e.reason})` : ''}`) : []),
          ...r.warnings.map((w) => `warning: ${w}`),
        ].join('\n'),
      );
    });
}
