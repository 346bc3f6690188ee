// CLI commands that look inside snapshots: ls, cat, inventory, changes (file-level and inventory diff)
// and restore-files. Registered on the main program by imaging/cli.ts through registerFileCommands.
import { Command, Option } from 'commander';
import { DevsnapError } from './core/errors';
import { formatBytes } from './core/format';
import { collectInventory, bootModeFromPartitions, describeInventoryDiff, diffInventory, Inventory } from './inventory/inventory';
import { diffPage, FileChange, summarizeByDirectory, DirectorySummary } from './files/file-diff';
import { restoreFilesOp } from './operations';
import { openSnapshotFs, OpenedSnapshotFs } from './files/open';
import type { ImageStat } from './filesystems/image-fs/types';
import type { Manifest } from './repo/manifest';
import type { Repository } from './repo/repository';
import type { ProgressEvent, RepoRequest } from './protocol';
import { WorkerPool } from './repo/worker-pool';

export interface CliContext {
  withRepo<T>(g: any, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>): Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The repository part of an operation request (repository folder, password). */
  repoReq(g: any): RepoRequest; // eslint-disable-line @typescript-eslint/no-explicit-any
  report(g: any, json: unknown, human: () => string): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  globals(cmd: Command): any; // eslint-disable-line @typescript-eslint/no-explicit-any
  progressSink(g: any): (e: ProgressEvent) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
  log(msg: string): void;
  signal: AbortSignal;
}

const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DevsnapError('USAGE', `${name} must be a whole number, got "${v}".`);
  return n;
};

const partitionOption = () => new Option('-p, --partition <n>', 'partition number (default: the largest ext partition, the root)').argParser(intArg('--partition'));

async function withSnapshotFs<T>(repo: Repository, id: string, partition: number | undefined, fn: (o: OpenedSnapshotFs, m: Manifest) => Promise<T>): Promise<T> {
  const m = await repo.readManifest(await repo.resolveId(id));
  const o = await openSnapshotFs(repo, m, partition);
  try {
    return await fn(o, m);
  } finally {
    await o.close();
  }
}

function modeString(st: ImageStat): string {
  const t = st.type === 'dir' ? 'd' : st.type === 'symlink' ? 'l' : st.type === 'file' ? '-' : st.special === 'chardev' ? 'c' : st.special === 'blockdev' ? 'b' : st.special === 'fifo' ? 'p' : 's';
  const m = st.mode;
  const rwx = (shift: number, special: number, ch: string) =>
    (m & (4 << shift) ? 'r' : '-') + (m & (2 << shift) ? 'w' : '-') + (m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? 'x' : '-');
  return t + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

function statJson(st: ImageStat) {
  return { ...st, xattrs: Object.fromEntries(Object.entries(st.xattrs).map(([k, v]) => [k, v.toString('base64')])) };
}

/** The inventory of a snapshot: the one recorded in its manifest, else read from its root filesystem. */
export async function snapshotInventory(o: OpenedSnapshotFs, m: Manifest): Promise<Inventory> {
  if (m.inventory && typeof m.inventory === 'object') return m.inventory as Inventory;
  const inv = await collectInventory(o.fs);
  inv.bootMode ??= bootModeFromPartitions(m.partitions);
  return inv;
}

export function registerFileCommands(program: Command, ctx: CliContext): void {
  program
    .command('ls <id> [path]')
    .description('list a directory inside a snapshot (without restoring it)')
    .addOption(partitionOption())
    .action(async (id: string, p: string | undefined, o, cmd) => {
      const g = ctx.globals(cmd);
      const r = await ctx.withRepo(g, false, 'ls', (repo) =>
        withSnapshotFs(repo, id, o.partition, async (s) => {
          const st = await s.fs.stat(p ?? '/');
          const entries = st.type === 'dir' ? await s.fs.list(p ?? '/') : [st];
          return { partition: s.partition, fs: s.fs.fs, path: st.path, entries };
        }),
      );
      ctx.report(g, { ...r, entries: r.entries.map(statJson) }, () =>
        r.entries
          .map((e) => `${modeString(e)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(e.size).padStart(10)} ${new Date(e.mtime).toISOString().slice(0, 19).replace('T', ' ')} ${e.name}${e.type === 'dir' ? '/' : ''}${e.target !== undefined ? ` -> ${e.target}` : ''}`)
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
      const inv = await ctx.withRepo(g, false, 'inventory', (repo) => withSnapshotFs(repo, id, o.partition, (s, m) => snapshotInventory(s, m)));
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
      const sink = ctx.progressSink(g);
      const r = await ctx.withRepo(g, false, 'changes', async (repo) => {
        const [ma, mb] = await Promise.all([repo.readManifest(await repo.resolveId(a)), repo.readManifest(await repo.resolveId(b))]);
        const pool = new WorkerPool(2);
        try {
          const fa = await openSnapshotFs(repo, ma, o.partition, { pool });
          const fb = await openSnapshotFs(repo, mb, o.partition ?? fa.partition, { pool });
          const [ia, ib] = await Promise.all([snapshotInventory(fa, ma), snapshotInventory(fb, mb)]);
          const dirs = new Map<string, DirectorySummary>();
          const depth = o.depth as number;
          let last = 0;
          const page = await diffPage(fa.fs, fb.fs, {
            root: o.path,
            deep: o.deep,
            offset: o.offset,
            limit: o.limit,
            signal: ctx.signal,
            onProgress: (entries) => {
              if (Date.now() - last > 500) {
                last = Date.now();
                sink({ type: 'progress', phase: 'compare', bytesDone: entries, bytesTotal: 0, rate: 0, etaSeconds: null, message: `${entries} entries compared` });
              }
            },
            filter: (c: FileChange) => {
              for (const s of summarizeByDirectory([c], depth)) {
                const t = dirs.get(s.dir);
                if (!t) dirs.set(s.dir, s);
                else for (const k of ['added', 'removed', 'modified', 'metadata', 'bytesBefore', 'bytesAfter'] as const) t[k] += s[k];
              }
              return true;
            },
          });
          return { a: ma.id, b: mb.id, partition: fa.partition, inventory: diffInventory(ia, ib), files: page, directories: [...dirs.values()].sort((x, y) => (x.dir < y.dir ? -1 : 1)) };
        } finally {
          await pool.close();
        }
      });
      const t = r.files.totals;
      ctx.report(g, r, () =>
        [
          describeInventoryDiff(r.inventory),
          `Files (partition ${r.partition}): ${t.added} added, ${t.removed} removed, ${t.modified} modified, ${t.metadata} metadata only`,
          ...r.files.changes.map((c) => `  ${c.change === 'added' ? 'A' : c.change === 'removed' ? 'D' : c.change === 'modified' ? 'M' : 'm'} ${c.path}${c.type === 'dir' ? '/' : ''}${c.detail.length ? `  (${c.detail.join(', ')})` : ''}`),
          r.files.total > r.files.offset + r.files.changes.length ? `  … ${r.files.total - r.files.offset - r.files.changes.length} more (use --offset/--limit)` : '',
        ].filter(Boolean).join('\n'),
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
        { signal: ctx.signal, onProgress: ctx.progressSink(g), log: ctx.log },
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
