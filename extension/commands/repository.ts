// devsnap.selectRepository and devsnap.refresh.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { writeRepository } from '../config';
import * as ui from '../ui';
import { CommandContext, reportError } from './common';

export interface SelectRepositoryArgs {
  /** Folder to use; skips the folder dialog. */
  path?: string;
  /** Where to write the setting (default: user settings, or where it is already set). */
  target?: 'global' | 'workspace';
}

/** Asks for a folder (or takes `{ path }`), writes devsnap.repository, resolves with the path. */
export async function selectRepository(ctx: CommandContext, args: SelectRepositoryArgs = {}): Promise<string | undefined> {
  try {
    let folder = typeof args.path === 'string' && args.path.trim() ? path.resolve(args.path.trim()) : undefined;
    if (!folder) {
      const current = ctx.config().repository;
      const start = current && fs.existsSync(current) ? current : current && fs.existsSync(path.dirname(current)) ? path.dirname(current) : undefined;
      const uris = await ui.openFolder(
        'Choose the folder for devsnap snapshots (ideally on another drive than the one you snapshot)',
        'Use as Snapshot Repository',
        start ? vscode.Uri.file(start) : undefined,
      );
      folder = uris?.[0]?.fsPath;
      if (!folder) return undefined;
    }
    if (fs.existsSync(folder) && !fs.statSync(folder).isDirectory()) {
      void ui.error(`${folder} is a file, not a folder: choose a folder for the snapshot repository.`);
      return undefined;
    }
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

export async function refresh(ctx: CommandContext): Promise<void> {
  await ctx.tree.refresh();
  const err = ctx.tree.lastError;
  if (err) await reportError(ctx, err, 'Reading the repository');
}
