// The `devsnap` command line. Every command that reports takes --json (one JSON object on stdout;
// errors as {"error": ErrorInfo} with the exit codes in core/errors.ts). See README "CLI".
import * as fs from 'fs';
import * as readline from 'readline';
import { Command, Option } from 'commander';
import { DevsnapError, EXIT_CODES, toDevsnapError } from './core/errors';
import { Repository, DEFAULT_CHUNK_SIZE } from './repo/repository';
import { breakLocks } from './repo/lock';
import { exportSnapshot, importSnapshot } from './archive/export';
import * as ops from './ops/operations';
import { serveStdio } from './ops/serve';
import { describeDamage } from './snapshot/verify';
import { runHelperCommand } from './helper/server';
import { registerFileCommands } from './cli-files';
import { chooseProgressMode, listText, oneLine, ProgressPrinter, table, terminalSafe } from './cli-output';
import { describeConsistency, formatBytes, formatDuration } from './core/format';
import { relaunchTuned, watchLauncher } from './runtime';
import type { DiskComparison, ProgressEvent, RepoRequest, SnapshotPlan } from './protocol';

interface GlobalOpts {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
  progress?: string;
  lockWait?: string;
}

const program = new Command();
const abort = new AbortController();

// A reader that stopped early (`devsnap --help | head -1`): end quietly with the status a shell gives
// a program killed by SIGPIPE (128 + 13), as other command-line tools do, not with a stack trace.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
}
let printer: ProgressPrinter | null = null;

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

const log = (msg: string) => process.stderr.write(`devsnap: ${terminalSafe(msg)}\n`);

function password(g: GlobalOpts): string | undefined {
  if (g.passwordFile) {
    try {
      return fs.readFileSync(g.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw toDevsnapError(err, `the password file ${g.passwordFile}`);
    }
  }
  return process.env.DEVSNAP_PASSWORD || undefined;
}

function repoDir(g: GlobalOpts): string {
  const dir = g.repo ?? process.env.DEVSNAP_REPO;
  if (!dir) throw new DevsnapError('USAGE', 'No repository given.', 'Pass --repo DIR or set DEVSNAP_REPO.');
  return dir;
}

/** Opens the repository, takes its lock, loads the index, runs `fn`, and always releases. */
function withRepo<T>(g: GlobalOpts, exclusive: boolean, purpose: string, fn: (repo: Repository) => Promise<T>, create = false): Promise<T> {
  return ops.withRepository(repoReq(g), { log, ...lockWait(g) }, exclusive, purpose, fn, create);
}

/** The repository part of every operation request. */
function repoReq(g: GlobalOpts): RepoRequest {
  const pw = password(g);
  return { repo: repoDir(g), ...(pw !== undefined ? { password: pw } : {}) };
}

/** The context of an operation: cancellation by signal, progress as --progress says, log on stderr. */
function opCtx(g: GlobalOpts, progress = true): ops.OpContext {
  return { signal: abort.signal, log, ...lockWait(g), ...(progress ? { onProgress: progressSink(g) } : {}) };
}

function lockWait(g: GlobalOpts): { lockWaitMs?: number } {
  if (g.lockWait === undefined) return {};
  const s = Number(g.lockWait);
  if (!Number.isFinite(s) || s < 0) throw new DevsnapError('USAGE', `--lock-wait must be a number of seconds, got "${g.lockWait}".`);
  return { lockWaitMs: s * 1000 };
}

function progressSink(g: GlobalOpts): (e: ProgressEvent) => void {
  printer = new ProgressPrinter(chooseProgressMode(g.progress, !!g.json));
  return printer.sink;
}

/** Prints the result: JSON, or the human text. */
function report(g: GlobalOpts, json: unknown, human: () => string): void {
  printer?.stop();
  if (g.json) process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  else {
    const text = terminalSafe(human());
    if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  return answer.trim().toLowerCase() === 'yes';
}

const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DevsnapError('USAGE', `${name} must be a whole number, got "${v}".`);
  return n;
};

program
  .name('devsnap')
  .description('Deduplicated, incremental images of whole disks (partition table, boot areas, used blocks of every filesystem), verified on restore.')
  .version('0.1.0')
  .option('-r, --repo <dir>', 'repository folder (default: $DEVSNAP_REPO)')
  .option('--password-file <file>', 'file holding the repository password (default: $DEVSNAP_PASSWORD)')
  .option('--json', 'print the result as one JSON object on stdout')
  .addOption(new Option('--progress <mode>', 'progress display').choices(['bar', 'plain', 'json', 'none']))
  .option('--lock-wait <seconds>', 'how long to wait for another devsnap holding the repository lock (default: 10)')
  .addHelpText(
    'after',
    '\nNaming a snapshot (ID): its full id, a prefix of it, its label, or "latest"; id:PREFIX names by id only and\nlabel:TEXT by label only. A name that fits more than one snapshot is refused with the candidates, never guessed.',
  )
  .showHelpAfterError();

program
  .command('init')
  .description('create an empty repository (snapshot creates one too when the folder is new)')
  .addOption(new Option('--chunk-size <bytes>', 'chunk size').argParser(intArg('--chunk-size')).default(DEFAULT_CHUNK_SIZE))
  .addOption(new Option('--compression <level>', 'zstd level 1-19').argParser(intArg('--compression')).default(3))
  .addOption(new Option('--pack-size <bytes>', 'target size of pack files').argParser(intArg('--pack-size')).default(32 << 20))
  .option('--encrypt', 'encrypt with the password from --password-file / $DEVSNAP_PASSWORD')
  .action(async (o, cmd) => {
    const g = globals(cmd);
    if (o.encrypt && !password(g)) throw new DevsnapError('USAGE', '--encrypt needs a password.', 'Set DEVSNAP_PASSWORD or pass --password-file FILE.');
    // An unencrypted repository refuses every command given a password: do not create one that way.
    if (!o.encrypt && password(g))
      throw new DevsnapError(
        'USAGE',
        'A password is given (DEVSNAP_PASSWORD or --password-file) but not --encrypt.',
        'Add --encrypt for an encrypted repository, or unset the password for an unencrypted one.',
      );
    const repo = await Repository.init(repoDir(g), { chunkSize: o.chunkSize, packSize: o.packSize, level: o.compression, password: o.encrypt ? password(g) : undefined }, log);
    report(
      g,
      { repository: repo.dir, config: { ...repo.config, encryption: repo.config.encryption ? 'scrypt+aes-256-gcm' : null } },
      () => `Created repository ${repo.dir}${repo.cipher.encrypted ? ' (encrypted)' : ''}.`,
    );
  });

program
  .command('disks')
  .description('list disks and partitions (the disk of the running system is marked)')
  .action(async (_o, cmd) => {
    const g = globals(cmd);
    const { disks } = await ops.disksOp();
    report(g, { disks }, () =>
      table([
        ['DISK', 'SIZE', 'TABLE', 'MODEL', 'NOTE'],
        ...disks.flatMap((d) => [
          [d.path, formatBytes(d.size), d.table ?? '', d.model ?? '', [d.isSystem ? 'running system' : '', ...(d.notes ?? [])].filter(Boolean).join('; ')],
          ...d.partitions.map((p) => [
            `  ${p.path ?? `#${p.index}`}`,
            formatBytes(p.size),
            p.fs ?? '',
            p.label ?? '',
            [p.usedBytes !== undefined ? `${formatBytes(p.usedBytes)} used` : '', ...(p.mountpoints ?? [])].filter(Boolean).join(' '),
          ]),
        ]),
      ]),
    );
  });

program
  .command('snapshot <source>')
  .description('image a disk (block device or disk image file) into the repository')
  .option('-l, --label <text>', 'a label, e.g. "before upgrade"')
  .addOption(new Option('--compression <level>', 'zstd level 1-19 (default: the repository setting)').argParser(intArg('--compression')))
  .option('--full-read', 'read every used block, not only what changed since the previous snapshot')
  .option('--freeze', "pause writes to the source's mounted filesystems for the whole snapshot (default: only for the short last pass)")
  .option('--fuzzy', 'read a mounted read-write source live, without pausing writes: not one point in time (the restored filesystems may need repair)')
  .option('--plan', 'only say how the snapshot would reach a point in time and about how long writes would pause')
  .action(async (source: string, o, cmd) => {
    const g = globals(cmd);
    if (o.plan) {
      const plan = await ops.planSnapshotOp({ ...repoReq(g), source });
      report(g, plan, () => planText(plan));
      return;
    }
    if (o.freeze && o.fuzzy) throw new DevsnapError('USAGE', '--freeze and --fuzzy contradict each other.', 'Give one of them, or neither (the default: a point in time with a short pause).');
    const r = await ops.snapshotOp({ ...repoReq(g), source, label: o.label, compressionLevel: o.compression, freeze: o.freeze, fuzzy: o.fuzzy, fullRead: o.fullRead }, opCtx(g));
    const m = r.snapshot;
    const s = m.stats;
    report(
      g,
      r,
      () =>
        `Snapshot ${m.id} "${oneLine(m.label)}" of ${oneLine(source)}: ${formatBytes(s.bytesLogical)} disk, ${formatBytes(s.bytesUsed)} used, ${formatBytes(s.bytesAdded)} added (${s.chunksNew} new chunks, ${s.chunksReused} reused) in ${formatDuration(s.durationSeconds)}.\n${describeConsistency(m)}`,
    );
  });

/** `verify --against`: the snapshot is sound but the disk holds something else (README, exit codes). */
const DIFFERS_FROM_DISK = 10;

function diskText(d: DiskComparison): string[] {
  const where = (x: DiskComparison['differences'][number]) => `  ${x.partition === null ? 'raw area' : `partition ${x.partition}`}: ${formatBytes(x.length)} at byte ${x.offset}`;
  return [
    ...d.warnings.map((w) => `warning: ${w}`),
    d.equal
      ? `${oneLine(d.source)} holds what the snapshot holds (${formatBytes(d.bytesCompared)} in use compared).`
      : `${oneLine(d.source)} differs from the snapshot in ${formatBytes(d.differingBytes)} of ${formatBytes(d.bytesCompared)} in use:`,
    ...d.differences.map(where),
  ];
}

function planText(p: SnapshotPlan): string {
  if (p.consistency === 'offline') return `${oneLine(p.source)} has no filesystem mounted read-write: it is imaged as it is, nothing is paused.`;
  const lines = p.mounts.map(
    (m) =>
      `  ${oneLine(m.mountpoint)}: ${m.how === 'two-pass' ? `read live, then writes paused for about ${m.pauseSeconds!.toFixed(1)} s for the last pass` : m.how === 'two-pass-ro' ? `read live, then read-only for about ${m.pauseSeconds!.toFixed(1)} s for the last pass` : m.how === 'frozen' ? `writes paused while it is read (about ${m.pauseSeconds!.toFixed(1)} s)` : m.how === 'remount-ro' ? `read-only while it is read (about ${m.pauseSeconds!.toFixed(1)} s)` : m.how === 'lvm-snapshot' ? 'read from an LVM snapshot (LVM suspends it for an instant)' : 'cannot be paused'}${m.holdsRepository ? ' (holds the repository)' : ''}`,
  );
  return [
    `A snapshot of ${oneLine(p.source)} is one point in time; writes pause for about ${p.pauseSeconds.toFixed(1)} s:`,
    ...lines,
    ...(p.problem ? [`Refused: ${p.problem.message} ${p.problem.hint}`] : []),
  ].join('\n');
}

program
  .command('list')
  .description('list snapshots, oldest first')
  .action(async (_o, cmd) => {
    const g = globals(cmd);
    const r = await ops.listOp(repoReq(g), opCtx(g, false));
    report(g, r, () => listText(r));
    if (r.damaged.length) process.exitCode = EXIT_CODES.DAMAGED;
  });

program
  .command('show <id>')
  .description('show a snapshot: source, partitions, stats (ID: id, id prefix, label, "latest", id:PREFIX or label:TEXT)')
  .action(async (id: string, _o, cmd) => {
    const g = globals(cmd);
    const r = await ops.showOp({ ...repoReq(g), snapshot: id }, opCtx(g, false));
    const m = { ...r.snapshot, warnings: r.warnings };
    report(g, r, () =>
      [
        `Snapshot ${m.id} "${oneLine(m.label)}"`,
        `  created ${m.created} on ${oneLine(m.host)}; ${m.state}${m.pinned ? '; pinned' : ''}${m.parent ? `; parent ${m.parent}` : ''}`,
        `  ${describeConsistency(m)}`,
        `  source ${oneLine(m.source.path)}, ${formatBytes(m.source.size)}, ${m.source.table} table`,
        ...m.partitions.map(
          (p) =>
            `  partition ${p.index}: ${formatBytes(p.size)} at ${p.start}, ${p.fs ?? 'unknown content (imaged in full)'}${p.label ? ` "${oneLine(p.label)}"` : ''}${p.usedBytes !== undefined ? `, ${formatBytes(p.usedBytes)} used` : ''}`,
        ),
        `  read ${formatBytes(m.stats.bytesRead)}, added ${formatBytes(m.stats.bytesAdded)} in ${formatDuration(m.stats.durationSeconds)}`,
        ...m.warnings.map((w) => `  warning: ${w}`),
      ].join('\n'),
    );
  });

program
  .command('restore <id> <target>')
  .description('write a snapshot (or one partition) to a device or image file, verifying every chunk')
  .addOption(new Option('-p, --partition <n>', 'restore only this partition').argParser(intArg('--partition')))
  .option('-n, --dry-run', 'say what would be written, write nothing')
  .option('-y, --yes', 'do not ask before overwriting a device')
  .action(async (id: string, target: string, o, cmd) => {
    const g = globals(cmd);
    const r = await ops.restoreOp(
      { ...repoReq(g), snapshot: id, target, partition: o.partition, dryRun: o.dryRun },
      {
        ...opCtx(g),
        confirmRestore: o.yes
          ? undefined
          : async (plan, full) => {
              if (plan.targetKind !== 'block') return;
              if (!process.stdin.isTTY) throw new DevsnapError('USAGE', `Restoring overwrites the device ${target}.`, 'Pass --yes to confirm.');
              if (!(await confirm(`This overwrites ${target} (${formatBytes(plan.targetSize)}) with snapshot ${full}. Type "yes" to continue: `)))
                throw new DevsnapError('CANCELLED', 'Restore cancelled; nothing was written.');
            },
      },
    );
    report(g, r, () =>
      r.dryRun
        ? [
            `Would write ${formatBytes(r.bytesToWrite)} of snapshot ${r.snapshot} to ${r.target} (${r.targetKind}):`,
            ...r.areas.map((a) => `  ${a.kind === 'partition' ? `partition ${a.partition}` : 'raw area'} at ${a.offset}, ${formatBytes(a.size)} (${a.mode})`),
          ].join('\n')
        : `Restored snapshot ${r.snapshot} to ${r.target}: ${formatBytes(r.bytesWritten)} written, every chunk verified${r.gptRelocated ? '; GPT backup moved to the end of the larger disk' : ''}.`,
    );
  });

program
  .command('verify [id]')
  .description('read back every chunk of a snapshot (default: all snapshots) and check its hash')
  .option('--against <disk>', 'also compare the snapshot with this disk (or image file) as it is now, where its filesystems have blocks in use')
  .action(async (id: string | undefined, o, cmd) => {
    const g = globals(cmd);
    const r = await ops.verifyOp({ ...repoReq(g), ...(id ? { snapshot: id } : {}), ...(o.against ? { against: o.against } : {}) }, opCtx(g));
    report(g, r, () =>
      [
        `Checked ${r.chunksChecked} chunks (${formatBytes(r.bytesChecked)}).`,
        ...r.snapshots.map((s) =>
          s.ok
            ? `  ${s.id} "${oneLine(s.label)}": ok`
            : s.error
              ? `  ${s.id} "${oneLine(s.label)}": DAMAGED manifest: ${s.error}`
              : `  ${s.id} "${oneLine(s.label)}": DAMAGED\n${s.damage.map((d) => `    ${describeDamage(d)}`).join('\n')}`,
        ),
        ...(r.disk ? diskText(r.disk) : []),
      ].join('\n'),
    );
    if (!r.ok) process.exitCode = EXIT_CODES.DAMAGED;
    else if (r.disk && !r.disk.equal) process.exitCode = DIFFERS_FROM_DISK;
  });

program
  .command('check')
  .description("check the repository's structure (add --read-data to also verify every chunk)")
  .option('--read-data', 'also read and verify every chunk')
  .action(async (o, cmd) => {
    const g = globals(cmd);
    const r = await ops.checkOp({ ...repoReq(g), readData: !!o.readData }, opCtx(g, !!o.readData));
    report(g, r, () =>
      [
        `${r.snapshots} snapshots, ${r.packs} packs, ${r.chunks} chunks.`,
        ...r.errors.map((e) => `error: ${e}`),
        ...r.warnings.map((w) => `note: ${w}`),
        r.ok ? 'No errors found.' : 'Errors found.',
      ].join('\n'),
    );
    if (!r.ok) process.exitCode = EXIT_CODES.DAMAGED;
  });

program
  .command('diff <a> <b>')
  .description('which byte ranges of each partition changed between two snapshots')
  .action(async (a: string, b: string, _o, cmd) => {
    const g = globals(cmd);
    const r = await ops.diffOp({ ...repoReq(g), a, b }, opCtx(g, false));
    report(g, r, () =>
      [
        ...r.partitions.map((p) => `${p.index === null ? 'raw areas' : `partition ${p.index}`}${p.fs ? ` (${p.fs})` : ''}: ${formatBytes(p.changedBytes)} changed in ${p.ranges.length} range(s)`),
        `total: ${formatBytes(r.totalChangedBytes)} changed`,
      ].join('\n'),
    );
  });

program
  .command('forget [ids...]')
  .description('remove snapshots by id, or by a retention policy (pinned snapshots are always kept)')
  .addOption(new Option('--keep-last <n>').argParser(intArg('--keep-last')))
  .addOption(new Option('--keep-daily <n>').argParser(intArg('--keep-daily')))
  .addOption(new Option('--keep-weekly <n>').argParser(intArg('--keep-weekly')))
  .addOption(new Option('--keep-monthly <n>').argParser(intArg('--keep-monthly')))
  .option('-n, --dry-run', 'only say what would be removed')
  .option('--prune', 'prune right after')
  .action(async (ids: string[], o, cmd) => {
    const g = globals(cmd);
    const r = await ops.forgetOp(
      {
        ...repoReq(g),
        ids,
        policy: { keepLast: o.keepLast, keepDaily: o.keepDaily, keepWeekly: o.keepWeekly, keepMonthly: o.keepMonthly },
        dryRun: !!o.dryRun,
        prune: !!o.prune,
      },
      opCtx(g, !!o.prune && !o.dryRun),
    );
    for (const d of r.damaged ?? []) log(`warning: snapshot ${d.id} has a damaged manifest and was left alone (${d.message}); forget it by id once you are sure.`);
    report(
      g,
      r,
      () =>
        `${r.dryRun ? 'Would remove' : 'Removed'} ${r.removed.length} snapshot(s)${r.removed.length ? `: ${r.removed.join(', ')}` : ''}; ${r.kept.length} kept.${r.prune ? ` Pruned ${formatBytes(r.prune.bytesFreed)}.` : ''}`,
    );
  });

program
  .command('prune')
  .description('reclaim the space of data no snapshot uses (and leftovers of interrupted snapshots)')
  .option('-n, --dry-run', 'only say what would be freed')
  .action(async (o, cmd) => {
    const g = globals(cmd);
    const r = await ops.pruneOp({ ...repoReq(g), dryRun: o.dryRun }, opCtx(g));
    report(g, r, () => `${r.dryRun ? 'Would free' : 'Freed'} ${formatBytes(r.bytesFreed)}: ${r.packsRemoved} pack(s) removed (${r.packsRewritten} rewritten), ${r.tempFilesRemoved} leftover file(s).`);
  });

for (const [name, pinned] of [
  ['pin', true],
  ['unpin', false],
] as const) {
  program
    .command(`${name} <id>`)
    .description(pinned ? 'pin a snapshot: retention never removes it' : 'unpin a snapshot')
    .action(async (id: string, _o, cmd) => {
      const g = globals(cmd);
      const r = await ops.pinOp({ ...repoReq(g), snapshot: id, pinned }, opCtx(g, false));
      report(g, r, () => `Snapshot ${r.snapshot.id} ${pinned ? 'pinned' : 'unpinned'}.`);
    });
}

program
  .command('label <id> <text>')
  .description('rename a snapshot')
  .action(async (id: string, text: string, _o, cmd) => {
    const g = globals(cmd);
    const r = await ops.labelOp({ ...repoReq(g), snapshot: id, label: text }, opCtx(g, false));
    report(g, r, () => `Snapshot ${r.snapshot.id} is now "${oneLine(r.snapshot.label)}".`);
  });

program
  .command('export <id> <file>')
  .description('write a snapshot as a .tar.zst that plain tar and dd can restore')
  .action(async (id: string, file: string, _o, cmd) => {
    const g = globals(cmd);
    const r = await withRepo(g, false, 'export', async (repo) => exportSnapshot(repo, await repo.resolveId(id), file, { onProgress: progressSink(g), signal: abort.signal, log }));
    report(g, r, () => `Exported snapshot ${id} to ${file}.`);
  });

program
  .command('import <file>')
  .description('read a snapshot exported with `devsnap export` into the repository')
  .action(async (file: string, _o, cmd) => {
    const g = globals(cmd);
    const r = await withRepo(g, true, 'import', (repo) => importSnapshot(repo, file, { onProgress: progressSink(g), signal: abort.signal, log }), true);
    report(g, r, () => `Imported ${file}.`);
  });

program
  .command('unlock')
  .description('remove stale locks (of processes no longer running); --all removes every lock')
  .option('--all', 'remove all locks, also of other hosts (make sure no devsnap uses the repository)')
  .action(async (o, cmd) => {
    const g = globals(cmd);
    const removed = await breakLocks(repoDir(g), !!o.all);
    report(g, { removed }, () => `Removed ${removed} lock(s).`);
  });

// Looking inside snapshots: ls, cat, inventory, changes, restore-files (imaging/cli-files.ts).
registerFileCommands(program, { withRepo, repoReq, report, globals, progressSink, log, signal: abort.signal, opContext: (g, progress) => opCtx(g, progress) });

// The engine as a long-lived service of one client (the extension, one per window): every
// operation of ops/registry.ts over JSON-RPC on stdin/stdout; it exits when stdin closes.
program
  .command('serve')
  .description("serve the engine's operations over JSON-RPC on stdin/stdout (started by the extension)")
  .requiredOption('--stdio', 'speak JSON-RPC on stdin and stdout (the only transport)')
  .action(async () => {
    await serveStdio();
  });

// The elevated helper (imaging/helper/README.md): started by the extension, as root, never by hand.
program
  .command('helper', { hidden: true })
  .description('serve the extension over its authenticated socket (started by the extension)')
  .requiredOption('--socket <path>', "the extension's Unix socket to connect to")
  .requiredOption('--secret-file <file>', 'file holding the one-time secret (deleted once read)')
  .option('--uid <uid>', 'uid of the user the helper works for (default: $PKEXEC_UID, $SUDO_UID or our own)')
  .option('--idle-timeout <seconds>', 'exit after this long without a request', '600')
  .action(async (o) => {
    process.exitCode = await runHelperCommand({ socket: o.socket, secretFile: o.secretFile, uid: o.uid, idleTimeout: o.idleTimeout });
  });

/**
 * Exits once stdout and stderr have taken everything: process.exit() drops what a pipe has not
 * accepted yet (a `list --json` of 1,000 snapshots reached the extension cut at 64 KiB).
 */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function fail(err: unknown): void {
  printer?.stop();
  const e = toDevsnapError(err);
  const json = process.argv.includes('--json');
  if (json) process.stdout.write(JSON.stringify({ error: e.toInfo() }, null, 2) + '\n');
  process.stderr.write(terminalSafe(`devsnap: error: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`) + '\n');
  if (e.code === 'INTERNAL' && process.env.DEVSNAP_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  exit(EXIT_CODES[e.code]);
}

function main(): void {
  // Ctrl-C / SIGTERM: stop at a safe point (the snapshot is abandoned, the repository left as it was).
  let signals = 0;
  if (process.argv[2] !== 'helper')
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (++signals > 1) process.exit(EXIT_CODES.CANCELLED);
        log('stopping at a safe point… (again to quit now)');
        abort.abort();
      });
    }
  watchLauncher(() => process.kill(process.pid, 'SIGTERM'));
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.parseAsync(process.argv).then(
    () => exit(Number(process.exitCode ?? 0)),
    (err: unknown) => {
      const ce = err as { code?: string; exitCode?: number };
      if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
        return exit(ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' ? 0 : EXIT_CODES.USAGE);
      }
      fail(err);
    },
  );
}

if (!relaunchTuned()) main(); // runtime.ts: the engine's memory settings
