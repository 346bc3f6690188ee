// devsnap.setUpAutomatic (the walkthrough's last step): automatic snapshots run without VS Code,
// through the system's scheduler and the package managers' hooks (`devsnap auto install`, README
// "Automatic snapshots"). Until the extension installs them itself, this opens a terminal with the
// command typed in, not run: the user reads it, and runs it with Enter (it needs root).
import * as path from 'path';
import * as vscode from 'vscode';
import { CommandContext } from './common';
import { autoInstallCommand } from '../walkthrough';

export async function setUpAutomatic(ctx: CommandContext, cliPath: string): Promise<vscode.Terminal> {
  const cfg = ctx.config();
  let source = cfg.defaultSource;
  if (!source) {
    try {
      source = (await ctx.engine().listDisks()).find((d) => d.isSystem)?.path;
    } catch (err) {
      ctx.log(`Could not list disks: ${(err as Error).message}`, 'warn');
    }
  }
  const terminal = vscode.window.createTerminal({ name: 'devsnap: automatic snapshots', cwd: path.dirname(cliPath) });
  terminal.show();
  terminal.sendText(autoInstallCommand({ cliPath, repo: cfg.repository, source }), false);
  ctx.log('Automatic snapshots: the devsnap auto install command is typed in a terminal, for you to run');
  return terminal;
}
