// What the automation tests share: a small ext4 disk on a loop device as the source, a temporary
// root that `devsnap auto install --root` writes into, and the repository's snapshots.
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { devsnap } from '../../helpers/cli';
import { makeFsImage, tmpDir, withLoop } from '../../helpers/disks';

/** The engine bundle `auto install` copies into ROOT/usr/local/lib/devsnap (the tests run the CLI from tsc's out/). */
export const DIST = path.join(__dirname, '..', '..', '..', '..', 'dist');
process.env.DEVSNAP_ENGINE_DIR = DIST;

/**
 * A command line run as the installed system would run it: in a mount namespace of its own where
 * ROOT/usr/local/lib is /usr/local/lib, so the units' and hooks' /usr/local/lib/devsnap/devsnap is
 * the copy below ROOT (the real /usr/local is neither read nor written). Needs root.
 */
export const inInstalledRoot = (root: string, command: string[]): [string, string[]] => [
  'unshare',
  ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0/usr/local/lib" /usr/local/lib && exec "$@"', root, ...command],
];

export interface AutoFixture {
  dir: string;
  root: string;
  repo: string;
  config: string;
  source: string;
}

/** A 16 MiB ext4 image with a few files, on a loop device for the duration of fn (detached even when fn fails). */
export async function withAutoFixture<T>(fn: (f: AutoFixture) => Promise<T>): Promise<T> {
  const dir = tmpDir('devsnap-auto-');
  const content = path.join(dir, 'content');
  fs.mkdirSync(path.join(content, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(content, 'etc', 'hostname'), 'auto-test\n');
  fs.writeFileSync(path.join(content, 'data.bin'), Buffer.alloc(256 << 10, 7));
  const image = path.join(dir, 'disk.img');
  await makeFsImage(image, { fs: 'ext4', size: 16 << 20, fromDir: content });
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc', 'apt'), { recursive: true });
  return withLoop(image, {}, (source) => fn({ dir, root, repo: path.join(dir, 'repo'), config: path.join(root, 'etc', 'devsnap', 'auto.json'), source }));
}

/** `devsnap auto install --root` with the fixture's repository and source; throws with its output when it fails. */
export function autoInstall(f: AutoFixture, args: string[]) {
  const r = devsnap(['auto', 'install', '--root', f.root, '--repo', f.repo, '--source', f.source, '--json', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.json;
}

export interface Listed {
  id: string;
  label: string;
  source: { path: string };
}

/** The repository's snapshots, oldest first ([] when it does not exist yet). */
export function snapshots(repo: string): Listed[] {
  if (!fs.existsSync(repo)) return [];
  const r = devsnap(['list', '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return r.json.snapshots;
}
