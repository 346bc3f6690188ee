// fsfreeze: makes a mounted filesystem consistent on disk and blocks writes to it while it is
// imaged (`devsnap snapshot --freeze`). Writes by other programs wait until the thaw, so this
// suits short snapshots; the repository must not live on a frozen filesystem (its writes would
// wait forever), which is checked first.
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import { DevsnapError } from './errors';
import { devnoString } from './device';
import { asRootSync, childCommand } from './privilege';

function fsfreeze(op: string, mountpoint: string) {
  const c = childCommand('fsfreeze', [op, mountpoint]);
  return spawnSync(c.file, c.args, { encoding: 'utf8', env: c.env });
}

export interface Frozen {
  mountpoints: string[];
  thaw(): void;
}

export function freezeMounts(mounts: { mountpoint: string; devno: string }[], repoDir: string): Frozen {
  const repoDev = devnoString(fs.statSync(repoDir).dev);
  const clash = mounts.find((m) => m.devno === repoDev);
  if (clash) {
    throw new DevsnapError('USAGE', `The repository ${repoDir} is on ${clash.mountpoint}, which --freeze would freeze.`, 'Keep the repository on another drive (which is wiser anyway), or snapshot without --freeze.');
  }
  const frozen: string[] = [];
  const thaw = () => {
    for (const mp of frozen.splice(0).reverse()) asRootSync(() => fsfreeze('--unfreeze', mp));
  };
  for (const m of mounts) {
    const r = asRootSync(() => fsfreeze('--freeze', m.mountpoint));
    if (r.status !== 0) {
      thaw();
      throw new DevsnapError('BAD_SOURCE', `Could not freeze ${m.mountpoint}: ${(r.stderr || r.error?.message || '').trim()}.`, 'fsfreeze needs root and a filesystem that supports it (ext4, xfs, btrfs); or snapshot without --freeze.');
    }
    frozen.push(m.mountpoint);
  }
  // Never leave a filesystem frozen, whatever ends the process.
  process.once('exit', thaw);
  return { mountpoints: [...frozen], thaw };
}
