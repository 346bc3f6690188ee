// The repository's recovery kit (imaging/recovery/), kept by the extension: after the Snapshots view
// loads a repository that holds snapshots, its kit is checked (quickly: kit.json and the files'
// presence); a missing or outdated one (another devsnap version) is written in the background, with
// the status bar saying so. A failure (offline, the drive full) is said once per repository and
// window, and tried again after the next snapshot. The Create Recovery Media command writes a kit
// into a folder of the user's choice.
import * as path from 'path';
import * as vscode from 'vscode';
import type { KitStatus, SnapshotSummary } from '../imaging/protocol';
import type { Engine } from './engine';
import { isS3Repository } from './paths';
import * as ui from './ui';

export class RecoveryKitKeeper {
  private readonly told = new Set<string>();
  private running: Promise<KitStatus | undefined> | undefined;
  private lastCount = new Map<string, number>();

  constructor(
    private readonly engine: () => Engine,
    private readonly settings: () => { repository?: string; recoveryKit: boolean },
    private readonly log: (line: string) => void,
  ) {}

  /** Called when the view loaded `snapshots`: checks the kit when their number changed, writes it when needed. */
  update(snapshots: readonly SnapshotSummary[]): Promise<KitStatus | undefined> {
    const { repository: repo, recoveryKit } = this.settings();
    // A kit in a bucket could not be run from a live USB: the engine keeps one only in a repository's folder.
    if (!repo || isS3Repository(repo) || !recoveryKit || !snapshots.length) return Promise.resolve(undefined);
    if (this.lastCount.get(repo) === snapshots.length && this.running) return this.running;
    this.lastCount.set(repo, snapshots.length);
    const prev = this.running ?? Promise.resolve(undefined);
    this.running = prev.then(() => this.keep(repo));
    return this.running;
  }

  private async keep(repo: string): Promise<KitStatus | undefined> {
    try {
      const st = await this.engine().call('kitStatus', { repo });
      if (st.state === 'ok') return st;
      this.log(`Recovery kit of ${repo}: ${st.state}${st.reason ? ` (${st.reason})` : ''}; writing it.`);
      const written = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'devsnap: writing the recovery kit' }, () => this.engine().call('kitWrite', { repo }));
      this.log(`Wrote the recovery kit to ${written.dir} (devsnap ${written.record?.engine}, Node ${written.record?.node}).`);
      return written;
    } catch (err) {
      this.lastCount.delete(repo); // try again after the next snapshot
      const msg = (err as Error).message;
      this.log(`Could not write the recovery kit of ${repo}: ${msg}`);
      if (!this.told.has(repo)) {
        this.told.add(repo);
        void ui.warn(`devsnap could not write the recovery kit into the repository: ${msg} Snapshots are not affected; it is tried again after the next snapshot.`);
      }
      return undefined;
    }
  }
}

export interface RecoveryMediaArgs {
  /** The folder to write the kit into (tests, scripts); asked when absent. */
  path?: string;
}

/** devsnap.createRecoveryMedia: writes a kit (devsnap-recovery/) onto a chosen drive or folder. Resolves with the kit's folder. */
export async function createRecoveryMedia(engine: () => Engine, log: (l: string) => void, args: RecoveryMediaArgs = {}): Promise<string | undefined> {
  let dir = args.path;
  if (!dir) {
    const picked = await ui.openFolder('devsnap: Create Recovery Media — where? (a USB stick, or any folder)', 'Write the Recovery Kit Here');
    if (!picked?.length) return undefined;
    dir = path.join(picked[0].fsPath, 'devsnap-recovery');
  }
  try {
    const st = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `devsnap: writing the recovery kit to ${dir} (about 130 MB; the first time its Node is fetched)`, cancellable: false },
      () => engine().call('kitWrite', { to: dir! }),
    );
    log(`Wrote the recovery kit to ${st.dir}.`);
    const open = 'Open README.txt';
    void ui.info(`Wrote the recovery kit to ${st.dir}. From a live USB: sudo ./devsnap recover --repo /path/to/the/repository (README.txt says each step).`, open).then((c) => {
      if (c === open) void vscode.window.showTextDocument(vscode.Uri.file(path.join(st.dir, 'README.txt')));
    });
    return st.dir;
  } catch (err) {
    void ui.error(`The recovery kit could not be written to ${dir}: ${(err as Error).message}`);
    return undefined;
  }
}
