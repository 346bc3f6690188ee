// The operations of automatic snapshots: autoInstall and autoRemove (root: they write below `root`,
// '/' on a real system, so the extension sends them to the elevated helper) and autoStatus (as the
// user: the configuration and the state are readable by everyone). The CLI's `devsnap auto` runs the
// same functions (cli/commands/auto.ts).
import { type AutoPaths, autoPaths, checkCalendar, detectManagers } from '../automation/config';
import { chooseNode, engineBundleDir, installEngine, type NodeProbe, runningNode, WRAPPER } from '../automation/engine-copy';
import { install, remove, status } from '../automation/install';
import type { AutoConfig, AutoInstallRequest, AutoRemoveRequest, AutoStatus, AutoStatusRequest, InstallResult, RemoveResult } from '../protocol';

/** What the automation operations may be given besides their parameters (tests: another bundle, another node). */
export interface AutomationContext {
  /** The folder of the engine bundle to copy (default: the running one's, engine-copy.ts). */
  engineDir?: string;
  nodeProbe?: NodeProbe;
}

/** Copies the running engine below root (engine-copy.ts), then writes the config, units and hooks that run that copy. */
export async function installAutomatic(cfg: AutoConfig, paths: AutoPaths, ctx: AutomationContext): Promise<InstallResult> {
  if (cfg.schedule) checkCalendar(cfg.schedule);
  const node = chooseNode(ctx.nodeProbe ?? runningNode());
  const copy = await installEngine(paths.root, engineBundleDir(ctx.engineDir), node);
  const r = await install(cfg, paths, [WRAPPER]);
  if (node.kind === 'electron') {
    r.notes.push(
      `No node ${20} or later was found on this system: the automatic snapshots run devsnap with VS Code's own binary as node (${node.node}). An update of VS Code may move it: then set up automatic snapshots again, or install node from your distribution.`,
    );
  }
  return { ...r, written: [...copy.written, ...r.written], engine: copy.engine };
}

export function autoInstallOp(req: AutoInstallRequest, ctx: AutomationContext): Promise<InstallResult> {
  return installAutomatic(req.config, autoPaths(req.root ?? '/'), ctx);
}

export function autoRemoveOp(req: AutoRemoveRequest): Promise<RemoveResult> {
  return remove(autoPaths(req.root ?? '/'), !!req.purge);
}

export async function autoStatusOp(req: AutoStatusRequest, ctx: AutomationContext): Promise<AutoStatus> {
  const paths = autoPaths(req.root ?? '/');
  return { ...(await status(paths, [WRAPPER], process.platform, ctx.engineDir)), managers: detectManagers(paths.root) };
}
