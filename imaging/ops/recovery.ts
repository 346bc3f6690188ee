// The recovery kit's operations: write it (into a repository under its lock, or into a folder) with the
// pinned Node, fetched once and checked (imaging/recovery/), and say what state a kit is in.
import * as path from 'path';
import { engineBundleDir } from '../automation/engine-copy';
import type { KitStatus, KitStatusRequest, KitWriteRequest } from '../protocol';
import { KIT_DIR, kitStatus, writeKit, writeRepositoryKit } from '../recovery/kit';
import { fetchKitNode } from '../recovery/node-runtime';
import { DevsnapError } from '../core/errors';
import { isS3Location } from '../storage/location';
import type { OpContext } from './operations';

/** The kit lives in a repository's folder: a repository in a bucket is refused by name (a kit there could not be run from a live USB). */
function folderRepo(repo: string): string {
  if (isS3Location(repo))
    throw new DevsnapError('USAGE', `The recovery kit is kept in a repository's folder, and ${repo} is a bucket.`, 'Write one onto a USB drive instead: `devsnap kit write --to FOLDER`.');
  return repo;
}

export async function kitWriteOp(p: KitWriteRequest, ctx: OpContext): Promise<KitStatus> {
  const node = p.node ? path.resolve(p.node) : await fetchKitNode(undefined, { say: ctx.log });
  const bundleDir = engineBundleDir();
  return p.to !== undefined ? writeKit(p.to, { node, bundleDir }) : writeRepositoryKit(folderRepo(p.repo!), { node, bundleDir }, ctx.log);
}

export function kitStatusOp(p: KitStatusRequest): Promise<KitStatus> {
  return kitStatus(p.dir !== undefined ? path.resolve(p.dir) : path.join(path.resolve(folderRepo(p.repo!)), KIT_DIR), !!p.deep);
}
