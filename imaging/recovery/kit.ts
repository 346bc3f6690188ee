// The recovery kit: a folder that restores snapshots on a machine that has nothing installed (a live
// USB): the pinned Node for Linux x86-64, the engine's bundle, a launcher script and README.txt. It
// lives in every repository as recovery/ (so the backup drive carries its own restore tool) and can
// be written to any folder (recovery media). Written aside, then renamed into place: a kit is whole
// or absent, never half-written. kit.json says what it holds, with the SHA-256 of every file.
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { hashFile } from '../core/fsutil';
import { check, KitRecord, type KitStatus } from '../protocol';
import { ENGINE_VERSION } from '../core/version';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../runtime';
import { acquireLock } from '../repo/lock';
import { LocalStorage } from '../storage/local';
import { ENGINE_FILES } from '../automation/engine-copy';
import { kitReadme } from './kit-readme';
import { hasNativeZstd, KIT_NODE, nodeVersionOf } from './node-runtime';

/** The kit's folder in a repository. */
export const KIT_DIR = 'recovery';
const RECORD = 'kit.json';
const LAUNCHER = 'devsnap';
const NODE = 'node';
const README = 'README.txt';

export type KitState = KitStatus['state'];

/** The launcher: runs the kit's engine on the kit's Node, from wherever the kit is (read-only media included). */
export function launcherText(): string {
  const env = Object.entries(ENGINE_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return [
    '#!/bin/sh',
    '# devsnap recovery kit: the devsnap of this folder on the Node of this folder; nothing else is needed.',
    '# Run it as root: sudo ./devsnap recover   (README.txt says more)',
    'here=$(cd -- "$(dirname -- "$0")" && pwd -P) || exit 1',
    'node="$here/node"',
    'if ! "$node" --version >/dev/null 2>&1; then',
    '  # A drive mounted noexec, or a filesystem without execute bits: run a copy from memory instead.',
    '  tmp=$(mktemp -d) && cp "$node" "$tmp/node" && chmod 700 "$tmp/node" && node="$tmp/node" || exit 1',
    'fi',
    `exec env ${env} "$node" ${ENGINE_NODE_ARGS.join(' ')} "$here/devsnap.js" "$@"`,
    '',
  ].join('\n');
}

const sha256 = async (file: string): Promise<string> => (await hashFile(file, 'sha256')).toString('hex');

async function readRecord(dir: string): Promise<KitRecord | undefined> {
  try {
    const r = check(KitRecord, JSON.parse(await fs.promises.readFile(path.join(dir, RECORD), 'utf8')));
    return r.ok ? r.value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What state the kit in `dir` is in. Quick by default (the record, the files there with their sizes
 * checked against nothing but presence); `deep` hashes every file (121 MB: about a second).
 */
export async function kitStatus(dir: string, deep = false): Promise<KitStatus> {
  const record = await readRecord(dir);
  if (!record) return { dir, state: fs.existsSync(dir) ? 'damaged' : 'missing', ...(fs.existsSync(dir) ? { reason: `${RECORD} is missing or unreadable` } : {}) };
  for (const f of Object.keys(record.files)) {
    if (!fs.existsSync(path.join(dir, f))) return { dir, state: 'damaged', reason: `${f} is missing`, record };
    if (deep && (await sha256(path.join(dir, f))) !== record.files[f]) return { dir, state: 'damaged', reason: `${f} is not the file the kit was written with`, record };
  }
  if (record.engine !== ENGINE_VERSION) return { dir, state: 'outdated', reason: `its devsnap is ${record.engine}, this one is ${ENGINE_VERSION}`, record };
  if (record.node !== KIT_NODE.version) return { dir, state: 'outdated', reason: `its Node is ${record.node}, the kit's is now ${KIT_NODE.version}`, record };
  return { dir, state: 'ok', record };
}

export interface WriteKitOptions {
  /** The Node binary to put in the kit (fetchKitNode(), or one the user gave). */
  node: string;
  /** Where devsnap.js and compress-worker.js are (engineBundleDir()). */
  bundleDir: string;
  /** Where the repository is, when the kit goes into one (its README then says so). */
  repository?: string;
}

/** Writes a kit into `dir` (made, or replaced whole when it already holds a kit). */
export async function writeKit(dir: string, o: WriteKitOptions): Promise<KitStatus> {
  const version = nodeVersionOf(o.node);
  if (!version || !hasNativeZstd(version))
    throw new DevsnapError(
      'USAGE',
      `${o.node} is not a Node 22.15 or later that runs here (${version ? `it is ${version}` : 'it does not run'}).`,
      'Give the official Node for Linux x86-64, 22.15 or later.',
    );
  dir = path.resolve(dir);
  const parent = path.dirname(dir);
  await fs.promises.mkdir(parent, { recursive: true });
  if (fs.existsSync(dir) && !(await readRecord(dir)) && (await fs.promises.readdir(dir)).length)
    throw new DevsnapError('BAD_TARGET', `${dir} is not empty and holds no recovery kit.`, 'Choose an empty folder, or a new one.');
  // Leftovers of an interrupted write.
  for (const n of await fs.promises.readdir(parent)) if (n.startsWith(`.${path.basename(dir)}.`)) await fs.promises.rm(path.join(parent, n), { recursive: true, force: true });
  const aside = await fs.promises.mkdtemp(path.join(parent, `.${path.basename(dir)}.new-`));
  try {
    await fs.promises.chmod(aside, 0o755);
    const files: Record<string, string> = {};
    const put = async (name: string, mode: number, from: { file?: string; text?: string }) => {
      const to = path.join(aside, name);
      if (from.file) await fs.promises.copyFile(from.file, to);
      else await fs.promises.writeFile(to, from.text ?? '');
      await fs.promises.chmod(to, mode);
      const fh = await fs.promises.open(to, 'r');
      await fh.sync();
      await fh.close();
      files[name] = await sha256(to);
    };
    await put(NODE, 0o755, { file: o.node });
    for (const f of ENGINE_FILES) await put(f, 0o644, { file: path.join(o.bundleDir, f) });
    await put(LAUNCHER, 0o755, { text: launcherText() });
    await put(README, 0o644, { text: kitReadme({ engine: ENGINE_VERSION, node: version, repository: o.repository }) });
    const record: KitRecord = { format: 1, engine: ENGINE_VERSION, node: version, platform: 'linux-x64', written: new Date().toISOString(), files };
    await fs.promises.writeFile(path.join(aside, RECORD), JSON.stringify(record, null, 2) + '\n', { mode: 0o644 });
    // Swap: the old kit aside, the new one in, the old one gone.
    const old = `${aside.replace(/\.new-[^/]*$/, '')}.old-${process.pid}`;
    if (fs.existsSync(dir)) await fs.promises.rename(dir, old);
    await fs.promises.rename(aside, dir);
    await fs.promises.rm(old, { recursive: true, force: true });
    return { dir, state: 'ok', record };
  } finally {
    await fs.promises.rm(aside, { recursive: true, force: true });
  }
}

/** Writes (or refreshes) the kit of the repository `repo`, under the repository's exclusive lock. */
export async function writeRepositoryKit(repo: string, o: Omit<WriteKitOptions, 'repository'>, warn: (m: string) => void): Promise<KitStatus> {
  repo = path.resolve(repo);
  if (!fs.existsSync(path.join(repo, 'config.json')))
    throw new DevsnapError('NO_REPO', `${repo} is not a devsnap repository (it has no config.json).`, 'Take a snapshot into it first, or give the repository with --repo.');
  const lock = await acquireLock(new LocalStorage(repo), true, 'recovery kit', warn);
  try {
    return await writeKit(path.join(repo, KIT_DIR), { ...o, repository: repo });
  } finally {
    await lock.release();
  }
}
