// A changed file's text diff: both versions through `devsnap cat` into the read-only devsnap-snapshot:
// documents, then VS Code's diff editor (not for binary or too large files).
import * as path from 'path';
import * as vscode from 'vscode';
import { EngineError } from '../engine';
import { formatBytes } from '../../imaging/core/format';
import * as ui from '../ui';
import { looksBinary, SnapshotDocumentProvider, snapshotFileUri } from '../virtualDocs';
import { comparedPartition, CompareRun } from './compareRuns';
import { PanelContext, repoOf } from './panelContext';

/** Opens the diff of `file` between the two snapshots of `run` (the pair the panel shows). */
export async function openDiff(pc: PanelContext, docs: SnapshotDocumentProvider, run: CompareRun | null, file: string, change: string): Promise<void> {
  const repo = repoOf(pc);
  if (!repo || !run) return;
  const [sa, sb] = await Promise.all([pc.snapshots.snapshot(run.a), pc.snapshots.snapshot(run.b)]);
  const partition = comparedPartition(run);
  const left = snapshotFileUri({ repo, id: sa.id, path: file, partition, label: sa.label });
  const right = snapshotFileUri({ repo, id: sb.id, path: file, partition, label: sb.label });
  const [ba, bb] = await vscode.window
    .withProgress({ location: { viewId: 'devsnap.snapshots' }, title: `Reading ${file}` }, () =>
      Promise.all([change === 'added' ? null : docs.read({ repo, id: sa.id, path: file, partition }), change === 'removed' ? null : docs.read({ repo, id: sb.id, path: file, partition })]),
    )
    .then(
      (r) => r,
      async (err) => {
        if (err instanceof EngineError && err.code === 'BAD_SOURCE') {
          void ui.info(`${file} is too large to show in a diff editor (${err.message}).`);
          return [undefined, undefined] as const;
        }
        throw err;
      },
    );
  if (ba === undefined) return;
  if ((ba && looksBinary(ba)) || (bb && looksBinary(bb))) {
    void ui.info(
      `${file} is a binary file (${ba ? formatBytes(ba.length) : 'absent'} → ${bb ? formatBytes(bb.length) : 'absent'}): there is no text diff to show. Select it in the panel to restore it.`,
    );
    return;
  }
  docs.remember(left, ba ? ba.toString('utf8') : '');
  docs.remember(right, bb ? bb.toString('utf8') : '');
  const name = path.posix.basename(file);
  await vscode.commands.executeCommand('vscode.diff', left, right, `${name} (${sa.label || sa.id} ↔ ${sb.label || sb.id})`, { preview: true, preserveFocus: false });
}
