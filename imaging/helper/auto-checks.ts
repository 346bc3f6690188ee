// The helper's checks of automatic snapshots (autoInstall, autoRemove: README.md beside this file,
// "Automatic snapshots"). They write root's files (/etc/devsnap, the systemd units, the package
// managers' hooks, /usr/local/lib/devsnap) and start the timer, as root: for a user other than root
// only on the running system, root '/'. Another root would let the user choose where root writes.
import * as path from 'path';
import { EngineContext, runOp } from '../ops/registry';
import type { HelperParams } from '../protocol';
import { refuse } from './check-common';

type AutoCall = ({ type: 'autoInstall' } & HelperParams<'autoInstall'>) | ({ type: 'autoRemove' } & HelperParams<'autoRemove'>);

export function checkAutomationRoot(root: string, uid: number): void {
  if (uid !== 0 && path.resolve(root) !== '/') {
    throw refuse(
      'PERMISSION',
      `Refused: the helper installs or removes automatic snapshots only on the running system (root "/"), not below ${root}: it would write root's files where you chose.`,
      `Prepare another root as root yourself (sudo devsnap auto install --root ${root}), or install on this system.`,
    );
  }
}

/** Runs autoInstall or autoRemove as root, after the check of its root. */
export function runAutomation(req: AutoCall, uid: number, ctx: EngineContext): Promise<unknown> {
  checkAutomationRoot(req.root, uid);
  const { type, ...params } = req;
  return type === 'autoInstall' ? runOp('autoInstall', params, ctx) : runOp('autoRemove', params, ctx);
}
