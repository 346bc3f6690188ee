// `devsnap snapshot --freeze`: writes to the source's mounted filesystems wait for the whole snapshot
// (the default pauses them only for a short last pass: capture/point-in-time.ts). The repository
// must not live on a frozen filesystem (its writes would wait forever), which is checked first.
import * as fs from 'fs';
import { DevsnapError } from '../core/errors';
import { devnoString } from '../disk/device';
import { freeze, type Thaw } from './pause';

export interface Frozen {
  mountpoints: string[];
  thaw: Thaw;
}

/** A day: a bound for a frozen filesystem left behind by a killed devsnap, not for a snapshot. */
const WHOLE_SNAPSHOT_GUARD_SECONDS = 24 * 3600;

/** `repoFolder`: the repository's folder (null for a bucket, which no freeze can block). */
export function freezeMounts(mounts: { mountpoint: string; devno: string }[], repoFolder: string | null): Frozen {
  const repoDir = repoFolder ?? '';
  const repoDev = repoFolder !== null ? devnoString(fs.statSync(repoFolder).dev) : null;
  const clash = mounts.find((m) => m.devno === repoDev);
  if (clash) {
    throw new DevsnapError(
      'USAGE',
      `The repository ${repoDir} is on ${clash.mountpoint}, which --freeze would freeze.`,
      'Keep the repository on another drive (which is wiser anyway), or snapshot without --freeze.',
    );
  }
  const mountpoints = mounts.map((m) => m.mountpoint);
  return { mountpoints, thaw: freeze(mountpoints, WHOLE_SNAPSHOT_GUARD_SECONDS) };
}
