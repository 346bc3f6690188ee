// A real Ceph radosgw for tests (scripts/ceph.sh): started once per test file, stopped after it (and
// when the process exits without `after`). Without Ceph and without root to install it, tests skip
// with `cephSkip` as the reason.
import { execFile, spawnSync } from 'child_process';
import * as net from 'net';
import * as path from 'path';
import { isRoot, tmpDir } from './disks';

const CEPH_SH = path.join(__dirname, '..', '..', '..', 'scripts', 'ceph.sh');

const hasCommand = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

/** False when Ceph can run here (installed, or installable by scripts/ceph.sh as root); else why not. */
export const cephSkip: false | string =
  ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin'].every(hasCommand) || (isRoot && hasCommand('apt-get'))
    ? false
    : 'Ceph (radosgw, ceph-mon, ceph-osd) is not installed, and installing it needs root and apt-get: run `sudo scripts/install-deps.sh --only --s3`, or the tests as root';

/** A base port with the next two free too (radosgw, monitor v2, monitor v1). */
async function freePorts(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer().once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
}

const run = (cmd: string, args: string[], timeout: number) =>
  new Promise<string>((resolve, reject) =>
    execFile(cmd, args, { timeout, encoding: 'utf8', maxBuffer: 1 << 24 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );

export interface Ceph {
  /** "http://127.0.0.1:PORT" */
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The cluster's ceph.conf (for `ceph -c CONF osd down N`). */
  conf: string;
  /** The folder of the cluster (run/osd.N.pid, ...). */
  dir: string;
  /** The environment a devsnap process needs to reach it. */
  env: Record<string, string>;
  stop(): void;
}

/** Starts a cluster of `osds` OSDs (memstore) and radosgw; up to ~1 min more when it installs Ceph. */
export async function startCeph(osds = 1): Promise<Ceph> {
  const dir = tmpDir('devsnap-ceph-');
  const port = await freePorts();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [CEPH_SH, 'down', dir], { stdio: 'inherit', timeout: 120_000 });
  };
  process.once('exit', stop);
  let out: string;
  try {
    out = await run('bash', [CEPH_SH, 'up', dir, String(port), String(osds)], 600_000);
  } catch (err) {
    stop();
    throw err;
  }
  const env = Object.fromEntries(out.split('\n').flatMap((l) => (/^\w+=/.test(l) ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]] : [])));
  if (!env.S3_ENDPOINT || !env.AWS_ACCESS_KEY_ID) {
    stop();
    throw new Error(`scripts/ceph.sh printed no endpoint and keys:\n${out}`);
  }
  const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  return {
    endpoint: env.S3_ENDPOINT,
    credentials,
    conf: env.CEPH_CONF,
    dir,
    env: { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey },
    stop,
  };
}
