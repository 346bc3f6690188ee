// devsnap.selectRepository (attached drives with their free space, a warning for a folder on the
// disk that is snapshotted) and devsnap.refresh.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DiskInfo } from '../../imaging/protocol';
import { writeRepository } from '../config';
import { defaultSourceDisk, diskOfPath, driveDescription, parseMountinfo, repositoryDrives } from '../drives';
import * as ui from '../ui';
import { CommandContext, readMountinfo, reportError, sameDiskDetail, sameDiskQuestion } from './common';
import { EncryptionArgs, setUpNewRepository } from './encryption';

export interface SelectRepositoryArgs extends EncryptionArgs {
  /** Folder to use; skips the pickers. */
  path?: string;
  /** Where to write the setting (default: user settings, or where it is already set). */
  target?: 'global' | 'workspace';
  /** true: no question when the folder is on the disk that is snapshotted (scripts). */
  confirm?: boolean;
}

interface PlaceItem extends vscode.QuickPickItem {
  folder?: string;
  browse?: boolean;
}

const CHOOSE_OTHER = 'Choose Another Folder';
const USE_ANYWAY = 'Use Anyway';

/**
 * Offers the attached drives with their free space (a `devsnap` folder on one), or a folder of one's
 * choice; warns (modal) when the folder is on the disk that is snapshotted; writes devsnap.repository
 * and resolves with the path. `{ path }` skips the pickers.
 */
export async function selectRepository(ctx: CommandContext, args: SelectRepositoryArgs = {}): Promise<string | undefined> {
  try {
    const cfg = ctx.config();
    const disks = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'devsnap: looking for drives' }, () =>
      ctx
        .engine()
        .listDisks()
        .catch((err: Error) => {
          ctx.log(`Could not list disks: ${err.message}`);
          return [] as DiskInfo[];
        }),
    );
    let folder = typeof args.path === 'string' && args.path.trim() ? path.resolve(args.path.trim()) : undefined;
    for (;;) {
      if (!folder) folder = await pickPlace(ctx, disks);
      if (!folder) return undefined;
      if (fs.existsSync(folder) && !fs.statSync(folder).isDirectory()) {
        void ui.error(`${folder} is a file, not a folder: choose a folder for the snapshot repository.`);
        return undefined;
      }
      const mounts = parseMountinfo(readMountinfo());
      const source = defaultSourceDisk(disks, cfg.defaultSource);
      const on = diskOfPath(folder, disks, mounts);
      if (args.confirm === true || !source || !on || on.path !== source.path) break;
      ctx.log(`Repository ${folder} is on ${on.path}, the disk that is snapshotted`);
      const choice = await ui.ask(sameDiskQuestion(folder, source), `${sameDiskDetail(source)} Use this folder only for snapshots of other disks or disk images.`, [CHOOSE_OTHER, USE_ANYWAY]);
      if (choice === USE_ANYWAY) break;
      if (choice !== CHOOSE_OTHER) return undefined;
      folder = undefined;
    }
    // A new or empty folder: encrypt it? (asked when the folder was picked; `encrypt` decides for scripts)
    if (!(await setUpNewRepository(ctx, folder, args, args.path === undefined))) return undefined;
    const target = args.target === 'workspace' ? vscode.ConfigurationTarget.Workspace : args.target === 'global' ? vscode.ConfigurationTarget.Global : undefined;
    await writeRepository(folder, target);
    ctx.log(`Repository set to ${folder}`);
    await ctx.tree.refresh();
    return folder;
  } catch (err) {
    await reportError(ctx, err, 'Choosing the repository');
    return undefined;
  }
}

/** The attached drives (a devsnap folder on one, most free space first), or a folder from the dialog. */
async function pickPlace(ctx: CommandContext, disks: DiskInfo[]): Promise<string | undefined> {
  const cfg = ctx.config();
  const drives = repositoryDrives(disks, parseMountinfo(readMountinfo()), cfg.showVirtualDisks);
  const items: PlaceItem[] = [];
  if (drives.length) items.push({ label: 'Attached drives', kind: vscode.QuickPickItemKind.Separator });
  for (const d of drives) {
    const folder = path.join(d.mountpoint, 'devsnap');
    items.push({
      label: `$(${d.network ? 'globe' : 'database'}) ${d.mountpoint}`,
      description: driveDescription(d),
      detail: fs.existsSync(folder) ? `Use ${folder}` : `Keep snapshots in ${folder} (the first snapshot creates it)`,
      folder,
    });
  }
  if (cfg.repository)
    items.push({ label: 'Current', kind: vscode.QuickPickItemKind.Separator }, { label: `$(check) ${cfg.repository}`, description: 'keep the current repository', folder: cfg.repository });
  items.push(
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Choose a folder…', description: 'any folder, ideally on another drive than the one you snapshot', browse: true },
  );
  const picked = await ui.pick(items, {
    title: 'devsnap: Choose Snapshot Repository',
    placeHolder: drives.length
      ? 'Where should snapshots be kept? An attached drive keeps them safe when the system drive fails.'
      : 'No other drive is attached: connect a backup drive, or choose a folder.',
  });
  if (!picked?.browse) return picked?.folder;
  const current = cfg.repository;
  const start = current && fs.existsSync(current) ? current : current && fs.existsSync(path.dirname(current)) ? path.dirname(current) : (drives[0]?.mountpoint ?? os.homedir());
  const uris = await ui.openFolder('Choose the folder for devsnap snapshots (ideally on another drive than the one you snapshot)', 'Use as Snapshot Repository', vscode.Uri.file(start));
  return uris?.[0]?.fsPath;
}

export async function refresh(ctx: CommandContext): Promise<void> {
  ctx.secrets.allowPrompt(); // asked by the user: a password or keys dismissed before are asked for again
  await ctx.tree.refresh();
  const err = ctx.tree.lastError;
  if (err) await reportError(ctx, err, 'Reading the repository');
}
