// What every command shares: the context it runs in, argument resolution (tree items, ids,
// argument objects), the repository check, progress notifications and error reporting.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskInfo, ProgressEvent, SnapshotSummary } from '../../imaging/protocol';
import type { DevsnapConfig } from '../config';
import { CancellationLike, Engine, EngineError } from '../engine';
import type { RepoPasswords } from '../passwords';
import { isKeysRefusal, type S3Keys } from '../s3Keys';
import type { SecretsEngine } from '../secrets';
import type { StorageUsage } from '../storageUsage';
import { formatBytes, formatRelativeDate, formatTimestamp, ProgressTracker } from '../../imaging/core/format';
import { backupDriveMissing, livePlaces } from '../drives';
import { isS3Repository } from '../paths';
import { compareNewestFirst, sourceLabel, stateWords } from '../snapshotModel';
import { SnapshotNode, SnapshotTreeNode, SnapshotTreeProvider } from '../snapshotTree';
import * as ui from '../ui';

export interface CommandContext {
  engine(): Engine;
  config(): DevsnapConfig;
  tree: SnapshotTreeProvider;
  treeView: vscode.TreeView<SnapshotTreeNode>;
  output: vscode.LogOutputChannel;
  /** A line in the devsnap output channel, at the level given (info by default). */
  log(line: string, level?: LogLevel): void;
  /** Where the secrets join the engine's requests (secrets.ts): the engine() calls pass them already. */
  secrets: SecretsEngine;
  /** The encrypted repositories' passwords (passwords.ts). */
  passwords: RepoPasswords;
  /** The keys of repositories in S3 buckets (s3Keys.ts). */
  s3Keys: S3Keys;
  /** The space per snapshot (storageUsage.ts). */
  storage?: StorageUsage;
}

export type LogLevel = 'info' | 'warn' | 'error';

export const CHOOSE_REPOSITORY = 'Choose Repository';
export const SHOW_OUTPUT = 'Show Output';
export const OPEN_SETTINGS = 'Open Settings';
export const UNLOCK = 'Unlock Repository';
export const SET_KEYS = 'Set S3 Credentials';

/** A snapshot given to a command: a tree item, an id, or an object with `id`/`snapshot`. */
export type SnapshotRef = SnapshotNode | string | { id?: string; snapshot?: SnapshotSummary } | undefined;

/** The id a command argument refers to, if any. */
export function refId(ref: unknown): string | undefined {
  if (!ref) return undefined;
  if (typeof ref === 'string') return ref;
  if (ref instanceof SnapshotNode) return ref.snapshot.id;
  if (typeof ref === 'object') {
    const o = ref as { id?: unknown; snapshot?: { id?: unknown } };
    if (typeof o.id === 'string') return o.id;
    if (o.snapshot && typeof o.snapshot.id === 'string') return o.snapshot.id;
  }
  return undefined;
}

/**
 * The repository to work on. When none is configured, says so with a "Choose Repository"
 * action and returns the chosen folder (or undefined). A configured folder on a backup drive that
 * is not connected is said to be that (with "Try Again"), before any picker, never mistaken for a
 * new folder. With `mustExist`, a configured folder that does not exist is an error naming it.
 */
export async function requireRepository(ctx: CommandContext, mustExist: boolean): Promise<string | undefined> {
  const cfg = ctx.config();
  if (cfg.repository && isS3Repository(cfg.repository)) return cfg.repository; // a bucket: the engine says whether it is there
  if (!cfg.repository) {
    const choice = await ui.warn('No snapshot repository is configured. Choose a folder (ideally on another drive) to keep snapshots in.', CHOOSE_REPOSITORY);
    if (choice !== CHOOSE_REPOSITORY) return undefined;
    const chosen = await vscode.commands.executeCommand<string | undefined>('devsnap.selectRepository');
    return chosen ?? undefined;
  }
  for (;;) {
    const drive = unpluggedDrive(ctx, cfg.repository);
    if (!drive) break;
    ctx.log(`The repository ${cfg.repository} is not there: nothing is mounted at ${drive}`, 'warn');
    const choice = await ui.error(unpluggedText(cfg.repository, drive), TRY_AGAIN, CHOOSE_ANOTHER);
    if (choice === CHOOSE_ANOTHER) return (await vscode.commands.executeCommand<string | undefined>('devsnap.selectRepository')) ?? undefined;
    if (choice !== TRY_AGAIN) return undefined;
  }
  if (mustExist && !fs.existsSync(cfg.repository)) {
    throw new EngineError('NO_REPO', `The snapshot repository ${cfg.repository} does not exist.`, 'Take a snapshot to create it, or choose another folder in the devsnap.repository setting.');
  }
  return cfg.repository;
}

export const TRY_AGAIN = 'Try Again';
export const CHOOSE_ANOTHER = 'Choose Another Repository';

/** The mount point of the repository's backup drive when it is not connected (the view may know it from before). */
export function unpluggedDrive(ctx: CommandContext, repo: string): string | undefined {
  if (isS3Repository(repo) || fs.existsSync(repo)) return undefined;
  return backupDriveMissing(repo, livePlaces()) ?? ((ctx.tree.state as string) === 'unplugged' ? path.dirname(repo) : undefined);
}

export const unpluggedText = (repo: string, drive: string): string =>
  `The backup drive for ${repo} is not connected: nothing is mounted at ${drive}. Connect the drive (open it in the file manager if it does not mount by itself), then try again; or choose another repository.`;

/** /proc/self/mountinfo ('' where there is none). */
export function readMountinfo(): string {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

/** The same-disk warning: a repository on the disk a snapshot is taken of. */
export const sameDiskQuestion = (repo: string, disk: DiskInfo): string => `The repository ${repo} is on ${disk.path}${disk.isSystem ? ' (the system drive)' : ''}, the disk you are snapshotting.`;
export const sameDiskDetail = (disk: DiskInfo): string =>
  `A snapshot of ${disk.path} would contain the repository itself, so devsnap refuses to take it; and when that drive fails, the snapshots go with it. ` +
  'Keep the repository on another drive: an external disk, a second internal disk or a network share.';

/** Loads the snapshots if the tree has not yet. */
export async function currentSnapshots(ctx: CommandContext): Promise<readonly SnapshotSummary[]> {
  if (!ctx.tree.snapshots.length) await ctx.tree.refresh();
  return ctx.tree.snapshots;
}

export interface SnapshotPickItem extends vscode.QuickPickItem {
  snapshot?: SnapshotSummary;
}

export function snapshotPickItems(snapshots: readonly SnapshotSummary[], now = new Date()): SnapshotPickItem[] {
  return [...snapshots].sort(compareNewestFirst).map((s) => ({
    label: `$(${s.state === 'damaged' ? 'error' : s.pinned ? 'pinned' : s.state === 'verified' ? 'verified-filled' : 'unverified'}) ${s.label || '(no label)'}`,
    description: `${formatRelativeDate(s.created, now)} · ${formatTimestamp(new Date(s.created))}`,
    detail: `${sourceLabel(s.source)} · ${formatBytes(s.stats?.bytesLogical ?? s.source.size)} disk · +${formatBytes(s.stats?.bytesAdded ?? 0)} · ${stateWords(s)}`,
    snapshot: s,
  }));
}

/**
 * The snapshot a command works on: the one the argument names (looked up in the repository),
 * else one the user picks. Undefined when the user dismissed the pick.
 */
export async function resolveSnapshot(ctx: CommandContext, ref: unknown, placeHolder: string, repo: string): Promise<SnapshotSummary | undefined> {
  const id = refId(ref);
  if (id) {
    const known = ctx.tree.find(id);
    if (known) return known;
    const list = await ctx.engine().listSnapshots(repo);
    const found = list.find((s) => s.id === id || s.id.startsWith(id));
    if (!found) throw new EngineError('NOT_FOUND', `There is no snapshot ${id} in ${repo}.`, 'Refresh the Snapshots view and try again.');
    return found;
  }
  const snapshots = await currentSnapshots(ctx);
  if (!snapshots.length) {
    void ui.info(`There are no snapshots in ${repo} yet.`);
    return undefined;
  }
  const picked = await ui.pick(snapshotPickItems(snapshots), { placeHolder, title: 'devsnap' });
  return picked?.snapshot;
}

/**
 * Runs engine work in a progress notification: each ProgressEvent becomes the message
 * (phase · percent · MB/s · time left); `primary` phases move the bar.
 */
export function withEngineProgress<T>(title: string, primary: string[], cancellable: boolean, work: (onProgress: (ev: ProgressEvent) => void, token: CancellationLike) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable }, async (progress, token) => {
    const tracker = new ProgressTracker(primary);
    progress.report({ message: 'starting…' });
    return work((ev) => progress.report(tracker.next(ev)), token);
  });
}

/** Checks that a source or target path exists and can be opened; throws an error naming it. */
export async function checkAccessible(p: string, what: string, write: boolean, settingHint?: string, elevated = false): Promise<void> {
  try {
    const st = await fs.promises.stat(p);
    if (st.isDirectory()) throw new EngineError(what.includes('image') ? 'BAD_SOURCE' : 'BAD_TARGET', `${capitalize(what)} ${p} is a folder, not a disk or disk image.`, settingHint);
    if (!write && st.isFile() && st.size === 0) throw new EngineError('BAD_SOURCE', `${capitalize(what)} ${p} is empty (0 bytes): it holds no disk to snapshot.`, settingHint);
    await fs.promises.access(p, write ? fs.constants.R_OK | fs.constants.W_OK : fs.constants.R_OK);
  } catch (err) {
    if (err instanceof EngineError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new EngineError('NOT_FOUND', `${capitalize(what)} ${p} does not exist.`, settingHint ?? 'Check the path and try again.');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      if (elevated) return; // the elevated helper will access it (and check it on its side)
      throw new EngineError(
        'PERMISSION',
        `No permission to ${write ? 'write to' : 'read'} ${what} ${p}.`,
        p.startsWith('/dev/')
          ? 'Reading and writing disk devices needs root rights: set devsnap.elevation to "auto" (or pkexec / sudo), give your user access to the device (e.g. the "disk" group), or use a disk image file.'
          : "Check the file's permissions.",
      );
    }
    throw new EngineError('INTERNAL', `Cannot access ${what} ${p}: ${(err as Error).message}`);
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Reports a failed command to the user (without waiting for the message to close); never throws. */
export async function reportError(ctx: CommandContext, err: unknown, what: string, cancelledText?: string): Promise<void> {
  if (err instanceof EngineError) {
    if (err.cancelled) {
      ctx.log(`${what}: cancelled`);
      void ui.info(cancelledText ?? `${what} cancelled.`);
      return;
    }
    ctx.log(`${what} failed: [${err.code}] ${err.toUserMessage()}`, 'error');
    const actions: string[] = [];
    if (err.code === 'NO_REPO') actions.push(CHOOSE_REPOSITORY);
    if (err.code === 'BAD_PASSWORD') actions.push(UNLOCK);
    if (isKeysRefusal(err)) actions.push(SET_KEYS);
    if (err.code === 'NOT_FOUND' || err.code === 'BAD_SOURCE') actions.push(OPEN_SETTINGS);
    actions.push(SHOW_OUTPUT);
    // Not awaited: the command finishes now; the action runs if the user clicks it.
    void ui.error(`${what} failed: ${err.toUserMessage()}`, ...actions).then((choice) => followErrorAction(ctx, choice));
    return;
  }
  const e = err as Error;
  ctx.log(`${what} failed unexpectedly: ${e?.stack ?? String(err)}`, 'error');
  void ui.error(`${what} failed: ${e?.message ?? String(err)}`, SHOW_OUTPUT).then((choice) => followErrorAction(ctx, choice));
}

function followErrorAction(ctx: CommandContext, choice: string | undefined): void {
  if (choice === SHOW_OUTPUT) ctx.output.show(true);
  else if (choice === CHOOSE_REPOSITORY) void vscode.commands.executeCommand('devsnap.selectRepository');
  else if (choice === UNLOCK) void vscode.commands.executeCommand('devsnap.unlockRepository');
  else if (choice === SET_KEYS) void vscode.commands.executeCommand('devsnap.setS3Credentials');
  else if (choice === OPEN_SETTINGS) void vscode.commands.executeCommand('workbench.action.openSettings', 'devsnap');
}

/** Reveals a snapshot in the Snapshots view (after a refresh if it is not shown yet). */
export async function revealSnapshot(ctx: CommandContext, id: string): Promise<void> {
  if (!ctx.tree.nodeFor(id)) await ctx.tree.refresh();
  const node = ctx.tree.nodeFor(id);
  if (node) await ctx.treeView.reveal(node, { select: true, focus: true, expand: false });
  else await vscode.commands.executeCommand('devsnap.snapshots.focus');
}
