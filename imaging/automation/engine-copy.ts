// The devsnap the installed units and hooks start: a copy of the running engine's bundle in
// /usr/local/lib/devsnap/ and a wrapper script there, so that they never start devsnap from a folder
// that changes with every update (an extension's ~/.vscode/extensions/devsnap-VERSION/dist/) nor
// through VS Code's Electron binary as if it were node. The copy is written aside, then renamed
// into place; install.json beside it says which engine and which node it is.
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { ENGINE_VERSION } from '../core/version';
import { check, InstalledEngine } from '../protocol';
import { checkCommand } from './units';

/** Where the copy lives on the installed system (below `root` when preparing another one). */
export const ENGINE_DIR = '/usr/local/lib/devsnap';
/** The command the units and hooks run. */
export const WRAPPER = `${ENGINE_DIR}/devsnap`;
const RECORD = 'install.json';
/** The files of dist/ the engine loads: the CLI and its compression worker (zstd's WASM is inlined). */
export const ENGINE_FILES = ['devsnap.js', 'compress-worker.js'];
/** The nodes devsnap looks for on the system when it does not run on a node itself. */
export const SYSTEM_NODES = ['/usr/bin/node', '/usr/local/bin/node'];
export const MIN_NODE_MAJOR = 20;

export interface NodeChoice {
  node: string;
  kind: InstalledEngine['nodeKind'];
}

export interface NodeProbe {
  execPath: string;
  versions: { node: string; electron?: string };
  /** The node major version of a binary (its `--version`), null when it does not run. */
  major: (file: string) => number | null;
  /** Only root may change it, nor any folder on the way to it (root runs it from the timer and the hooks). */
  rootOnly: (file: string) => boolean;
  candidates?: string[];
}

/**
 * The node the wrapper runs: the running one when it is node ≥ 20 (not Electron), else a node ≥ 20
 * of the system, else the running Electron binary as node (ELECTRON_RUN_AS_NODE). Each only when
 * nobody but root can change it: root runs it.
 */
export function chooseNode(p: NodeProbe): NodeChoice {
  const major = (v: string) => Number(/^v?(\d+)/.exec(v)?.[1] ?? 0);
  const refused: string[] = [];
  const ok = (file: string, m: number | null) => {
    if (m === null || m < MIN_NODE_MAJOR) return (refused.push(`${file}: ${m === null ? 'does not run' : `node ${m}`}`), false);
    if (!p.rootOnly(file)) return (refused.push(`${file}: others than root can change it`), false);
    return true;
  };
  if (!p.versions.electron && ok(p.execPath, major(p.versions.node))) return { node: p.execPath, kind: 'running' };
  for (const c of p.candidates ?? SYSTEM_NODES) if (fs.existsSync(c) && ok(c, p.major(c))) return { node: c, kind: 'system' };
  if (p.versions.electron && ok(p.execPath, major(p.versions.node))) return { node: p.execPath, kind: 'electron' };
  throw new DevsnapError(
    'USAGE',
    `No node ${MIN_NODE_MAJOR} or later that only root can change was found to run automatic snapshots (${refused.join('; ') || 'none found'}).`,
    `Install node ${MIN_NODE_MAJOR} or later from your distribution (e.g. /usr/bin/node), then set up automatic snapshots again.`,
  );
}

/** Owned by root and not writable by group or others, the file and every folder on the way to it. */
export function rootOnly(file: string): boolean {
  try {
    for (let p = fs.realpathSync(file); ; p = path.dirname(p)) {
      const st = fs.statSync(p);
      if (st.uid !== 0 || (st.mode & 0o022 && !(st.isDirectory() && st.mode & 0o1000))) return false;
      if (p === path.dirname(p)) return true;
    }
  } catch {
    return false;
  }
}

export function nodeMajor(file: string): number | null {
  try {
    const out = execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 10_000, env: { PATH: '/usr/bin:/bin' } });
    const m = /^v(\d+)\./.exec(out.trim());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export const runningNode = (): NodeProbe => ({ execPath: process.execPath, versions: process.versions, major: nodeMajor, rootOnly });

/** The wrapper script: the chosen node, and the copy's devsnap.js, by the paths of the installed system. */
export function wrapperText(n: NodeChoice): string {
  checkCommand([n.node]);
  return [
    '#!/bin/sh',
    '# Written by `devsnap auto install` (automatic snapshots): the devsnap the systemd timer and the package',
    "# managers' hooks run. `devsnap auto remove --purge` removes it.",
    ...(n.kind === 'electron' ? ['# VS Code runs it as node: an update of VS Code may move it (then set up automatic snapshots again).', 'ELECTRON_RUN_AS_NODE=1', 'export ELECTRON_RUN_AS_NODE'] : []),
    `exec ${n.node} ${ENGINE_DIR}/devsnap.js "$@"`,
    '',
  ].join('\n');
}

/** The folder of the running engine's bundle: where devsnap.js and compress-worker.js are. */
export function engineBundleDir(given?: string): string {
  const candidates = [given, __dirname, process.argv[1] && path.dirname(fs.realpathSync(process.argv[1]))].filter((d): d is string => !!d);
  const dir = candidates.find((d) => ENGINE_FILES.every((f) => fs.existsSync(path.join(d, f))));
  if (!dir)
    throw new DevsnapError(
      'NOT_FOUND',
      `The devsnap engine's files (${ENGINE_FILES.join(', ')}) were not found beside the running devsnap (${candidates.join(', ')}).`,
      'Run devsnap from its bundle (dist/devsnap.js).',
    );
  return dir;
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

interface Record_ {
  engine: InstalledEngine;
  sha256: string;
}

/** Copies the bundle and writes the wrapper below root, aside, then renames it into place; the files written. */
export async function installEngine(root: string, bundleDir: string, n: NodeChoice): Promise<{ engine: InstalledEngine; written: string[] }> {
  const dir = path.join(root, ENGINE_DIR);
  const engine: InstalledEngine = { command: WRAPPER, node: n.node, nodeKind: n.kind, version: ENGINE_VERSION };
  const wrapper = wrapperText(n);
  await fs.promises.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  const aside = await fs.promises.mkdtemp(path.join(path.dirname(dir), '.devsnap-new-'));
  try {
    await fs.promises.chmod(aside, 0o755);
    for (const f of ENGINE_FILES) {
      await fs.promises.copyFile(path.join(bundleDir, f), path.join(aside, f));
      await fs.promises.chmod(path.join(aside, f), 0o644);
    }
    await fs.promises.writeFile(path.join(aside, 'devsnap'), wrapper, { mode: 0o755 });
    await fs.promises.chmod(path.join(aside, 'devsnap'), 0o755);
    const record: Record_ = { engine, sha256: sha256(path.join(bundleDir, 'devsnap.js')) };
    await fs.promises.writeFile(path.join(aside, RECORD), JSON.stringify(record, null, 2) + '\n', { mode: 0o644 });
    for (const f of await fs.promises.readdir(aside)) {
      const fh = await fs.promises.open(path.join(aside, f), 'r');
      await fh.sync().finally(() => fh.close());
    }
    // The old copy out of the way, the new one in: a run starting in between finds no wrapper, and fails as with none.
    const old = fs.existsSync(dir) ? `${aside.replace('.devsnap-new-', '.devsnap-old-')}` : null;
    if (old) await fs.promises.rename(dir, old);
    await fs.promises.rename(aside, dir);
    if (old) await fs.promises.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fs.promises.rm(aside, { recursive: true, force: true });
    throw err;
  }
  return { engine, written: [...ENGINE_FILES, 'devsnap', RECORD].map((f) => path.join(dir, f)) };
}

/** The installed copy (below root) and whether it is the running engine; null when there is none. */
export function installedEngine(root: string, bundleDir?: string): (InstalledEngine & { outdated: boolean; running: string }) | null {
  let rec: Record_;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(root, ENGINE_DIR, RECORD), 'utf8')) as Record_;
  } catch {
    return null;
  }
  const r = check(InstalledEngine, rec.engine);
  if (!r.ok) return null;
  let sameBuild = true;
  try {
    sameBuild = sha256(path.join(engineBundleDir(bundleDir), 'devsnap.js')) === rec.sha256;
  } catch {
    /* no bundle to compare with: the version says it */
  }
  return { ...r.value, outdated: r.value.version !== ENGINE_VERSION || !sameBuild, running: ENGINE_VERSION };
}

/** Removes the copy (with --purge: it is what the units and hooks ran). */
export async function removeEngine(root: string): Promise<string[]> {
  const dir = path.join(root, ENGINE_DIR);
  if (!fs.existsSync(dir)) return [];
  await fs.promises.rm(dir, { recursive: true, force: true });
  return [dir];
}
