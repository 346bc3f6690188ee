// Restoring the running system's disk needs a recovery environment: the panel writes the command line
// to run from a live system into a new untitled editor.
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../../imaging/protocol';
import { PanelContext, repoOf } from './panelContext';

export async function writeRecoveryCommand(pc: PanelContext, id: string, partition?: number): Promise<void> {
  const repo = repoOf(pc) ?? '<repository folder>';
  const snap = await pc.snapshots.snapshot(id);
  const doc = await vscode.workspace.openTextDocument({ language: 'shellscript', content: recoveryScript(snap, repo, partition) });
  await vscode.window.showTextDocument(doc, { preview: false });
}

/** The commands to restore a snapshot of the running system's disk from a live (recovery) system. */
export function recoveryScript(s: SnapshotSummary, repo: string, partition?: number): string {
  const target = partition !== undefined ? `${s.source.path}${/\d$/.test(s.source.path) ? 'p' : ''}${partition}` : s.source.path;
  const q = (x: string) => (/^[\w@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, `'\\''`)}'`);
  return [
    `#!/bin/sh`,
    `# Restore devsnap snapshot "${s.label}" (${s.id}, taken ${s.created})`,
    `# onto ${target}${partition !== undefined ? ` (partition ${partition} of ${s.source.path})` : ` (the whole disk: partition table and every partition)`}.`,
    `#`,
    `# ${s.source.path} holds the system that is running now, and a disk cannot be overwritten while the`,
    `# system on it runs. Do it from a recovery environment:`,
    `#  1. Boot a live USB stick (any 64-bit Linux live system) on this machine.`,
    `#  2. Mount the drive holding the repository, e.g.: sudo mount /dev/sdX1 /mnt/backup`,
    `#     and adjust REPO below to where the repository is on it.`,
    `#  3. Its recovery kit (REPO/recovery, written by devsnap) runs devsnap there with nothing installed.`,
    `#     The guided way: cd "$REPO/recovery" && sudo ./devsnap recover`,
    `#     (it proposes the disk and the snapshot, and writes once you type the disk's name).`,
    `#  4. Or check TARGET (lsblk: device names can differ on the live system) and run this script as root.`,
    `#     devsnap checks every piece of data while it writes; the restore cannot be undone.`,
    `set -e`,
    `REPO=${q(repo)}`,
    `TARGET=${q(target)}`,
    `DEVSNAP="$REPO/recovery/devsnap"`,
    ``,
    `$DEVSNAP show ${q(s.id)} --repo "$REPO"`,
    `$DEVSNAP restore ${q(s.id)} "$TARGET" --repo "$REPO"${partition !== undefined ? ` --partition ${partition}` : ''} --dry-run`,
    `$DEVSNAP restore ${q(s.id)} "$TARGET" --repo "$REPO"${partition !== undefined ? ` --partition ${partition}` : ''}`,
    ``,
  ].join('\n');
}
