// Registers every devsnap command.
//
// Every command can run without prompts when given an argument object, so in-host tests, the
// harness and other extensions can drive them (vscode.commands.executeCommand(id, args)).
// From the Snapshots view's context menus VS Code passes the tree item (a SnapshotNode) instead.
// Every command resolves with its result (or undefined when dismissed, cancelled or failed —
// failures are shown to the user and recorded in the API's `messages`, never thrown):
//
//   devsnap.takeSnapshot      { source?: string, label?: string, confirm?: boolean } → SnapshotSummary (confirm: skip the long-pause question)
//   devsnap.restoreSnapshot   { id, target, partition?: number, dryRun?: boolean, confirm: true }
//                                                                           → { ok, bytesWritten, target }
//   devsnap.verifySnapshot    { id } | { all: true } | item                  → { ok, snapshots: [{ id, ok, damage }] }
//   devsnap.deleteSnapshot    { id } | { ids: string[] }, plus confirm: true, prune?: boolean
//                                                                           → { removed, kept, packsRemoved?, bytesFreed? }
//   devsnap.labelSnapshot     { id, label }                                  → SnapshotSummary
//   devsnap.pinSnapshot       { id, pinned?: boolean } (toggles without pinned) → SnapshotSummary
//   devsnap.unpinSnapshot     { id }                                         → SnapshotSummary
//   devsnap.compareSnapshots  { a, b } (older, newer) | { b } | item (= with previous) | nothing
//                             (the newest pair): opens the compare panel     → { a, b, panel }
//   devsnap.compareWithPrevious  item | { id }  (the context-menu entry)     → { a, b, panel }
//   devsnap.compareWith       item | { id }: asks for the other snapshot     → { a, b, panel }
//   devsnap.compareSelected   (item, selected items) | { ids: [x, y] }: the two selected → { a, b, panel }
//   devsnap.compareNewestTwo  a disk group item: its two newest snapshots    → { a, b, panel }
//   devsnap.showPartitionFiles  a partition item | { id, partition }: its changed files → { a, b, panel }
//   devsnap.restorePartition  a partition item | { id, partition }: Restore Snapshot… for that partition
//   devsnap.snapshotDisk      a disk group item | { source }: Take Snapshot… of that disk
//   devsnap.applyRetention    { confirm: true }                              → { removed, kept, ... }
//   devsnap.undoUpgrade       { before, after, target?, partition?, safetySnapshot?: false, confirm: true, dryRun? }
//                             puts the files an upgrade changed back in place → UndoResult
//   devsnap.selectRepository  { path: string, target?: 'global' | 'workspace', encrypt?: boolean, password?: string } → the path
//                             (a new or empty folder with encrypt: true becomes an encrypted repository now, its password kept)
//   devsnap.takeSnapshot also takes { encrypt, password } for a repository its first snapshot creates
//   devsnap.unlockRepository  { password } (tries it; BAD_PASSWORD is reported) | nothing (asks) → true when unlocked
//   devsnap.forgetRepositoryPassword  { path? } (default: the configured repository) → whether one was kept
//   devsnap.setS3Credentials  (asks; the configured repository's bucket)      → true when kept
//   devsnap.forgetS3Credentials  (the configured repository's bucket)         → whether keys were kept
//   devsnap.openPanel                                                        → the ComparePanel
//   devsnap.refresh, devsnap.showOutput                                      (no arguments)
//
// An `id` may also be passed as a plain string, or as an unambiguous prefix of the id.
import * as vscode from 'vscode';
import type { CommandContext } from './common';
import { registerPanel } from '../panel/comparePanel';
import { filterByHost } from './hosts';
import { compareNewestTwo, compareSelected, compareSnapshots, compareWith, openPanel, partitionRef, showPartitionFiles } from './compare';
import { DiskGroupNode, PartitionNode } from '../snapshotTree';
import { applyRetention, deleteSnapshot, labelSnapshot, pinSnapshot } from './manage';
import { refresh, selectRepository } from './repository';
import { forgetRepositoryPassword, unlockRepository } from './encryption';
import { forgetS3Credentials, setS3Credentials } from './credentials';
import { restoreSnapshot } from './restore';
import { takeSnapshot } from './takeSnapshot';
import { undoUpgrade } from './undo';
import { verifySnapshot } from './verify';

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  // Command arguments come from VS Code untyped (a tree node, a URI, nothing): each handler checks its own.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const reg = (id: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, fn);
  const { docs, disposables } = registerPanel(ctx);
  return [
    ...disposables,
    reg('devsnap.takeSnapshot', (args?) => takeSnapshot(ctx, args && typeof args === 'object' ? args : {})),
    reg('devsnap.restoreSnapshot', (arg?) => restoreSnapshot(ctx, arg)),
    reg('devsnap.verifySnapshot', (arg?) => verifySnapshot(ctx, arg)),
    reg('devsnap.deleteSnapshot', (arg?, selection?) => deleteSnapshot(ctx, arg, selection)),
    reg('devsnap.labelSnapshot', (arg?) => labelSnapshot(ctx, arg)),
    reg('devsnap.pinSnapshot', (arg?) => pinSnapshot(ctx, arg)),
    reg('devsnap.unpinSnapshot', (arg?) => pinSnapshot(ctx, arg, false)),
    reg('devsnap.compareSnapshots', (arg?) => compareSnapshots(ctx, docs, arg)),
    reg('devsnap.compareWithPrevious', (arg?) => compareSnapshots(ctx, docs, arg && typeof arg === 'object' && !('a' in arg) && 'id' in arg ? { b: arg.id } : arg)),
    reg('devsnap.compareWith', (arg?) => compareWith(ctx, docs, arg)),
    reg('devsnap.compareSelected', (arg?, selection?) => compareSelected(ctx, docs, arg, selection)),
    reg('devsnap.compareNewestTwo', (arg?) => compareNewestTwo(ctx, docs, arg)),
    reg('devsnap.showPartitionFiles', (arg?) => showPartitionFiles(ctx, docs, arg)),
    reg('devsnap.restorePartition', (arg?) => restoreSnapshot(ctx, arg instanceof PartitionNode ? partitionRef(arg) : arg)),
    reg('devsnap.snapshotDisk', (arg?) => takeSnapshot(ctx, arg instanceof DiskGroupNode ? { source: arg.group.source.path } : arg && typeof arg === 'object' ? arg : {})),
    reg('devsnap.applyRetention', (arg?) => applyRetention(ctx, arg)),
    reg('devsnap.undoUpgrade', (arg?) => undoUpgrade(ctx, arg)),
    reg('devsnap.openPanel', () => openPanel(ctx, docs)),
    reg('devsnap.refresh', () => refresh(ctx)),
    reg('devsnap.selectRepository', (args?) => selectRepository(ctx, args && typeof args === 'object' ? args : {})),
    reg('devsnap.showOutput', () => ctx.output.show(true)),
    reg('devsnap.unlockRepository', (args?) => unlockRepository(ctx, args && typeof args === 'object' ? args : {})),
    reg('devsnap.filterByHost', (args?) => filterByHost(ctx, args && typeof args === 'object' ? args : {})),
    reg('devsnap.forgetRepositoryPassword', (args?) => forgetRepositoryPassword(ctx, args && typeof args === 'object' ? args : {})),
    reg('devsnap.setS3Credentials', () => setS3Credentials(ctx)),
    reg('devsnap.forgetS3Credentials', () => forgetS3Credentials(ctx)),
  ];
}
