#!/usr/bin/env node
// Repositories on S3 (issue 13): devsnap and restic into buckets of the same Ceph radosgw, on the same
// data, in one run. Builds (or reuses) bench/run.js's workstation disk, starts a fresh radosgw
// (scripts/ceph.sh; memstore, 1 OSD by default), then, each tool into its own bucket of that server:
//  1. full: devsnap snapshot of the disk with its root mounted read-write (what users run); restic
//     backup of the mounted root's files (what users run); restic backup --stdin of the unmounted disk
//     image (block level, the same bytes devsnap images);
//  2. incremental after the 5% upgrade (simulateUpgrade, as bench/run.js), each again;
//  3. restore of the newest snapshot from its bucket: devsnap restore to an image file, restic restore
//     of the tree, restic restore of the image; each checked against its source;
//  4. an unchanged re-snapshot (devsnap, restic files).
// Each run: seconds (wall clock, with a final sync), MB/s (root used bytes / seconds), bytes added to
// the bucket (sum of the object sizes under the prefix, listed with the S3 API: ListObjectsV2), bytes
// uploaded and downloaded and PUT/GET/all requests (radosgw's perf counters, `ceph --admin-daemon
// ASOK perf dump` before and after), peak RSS (GNU time).
//
// A benchmark, not a test: it prints a table and PASS/MISS, writes bench/.work/s3-results.json and
// exits 0 unless something crashed. Needs root (loop devices, mount, Ceph). After `npx tsc -p .`:
//   npm run bench:s3 -- [--quick] [--scale GB] [--osds N] [--keep]
//
// Options:
//   --quick          ~300 MB of data on a 1 GiB root partition (the scale of bench/run.js --quick)
//   --scale GB       GB of file data on the root partition (default 3)
//   --part GiB       size of the root partition (default: 8/3 of the data, at least 1 GiB)
//   --osds N         OSDs in the cluster (default 1; pools keep min(N, 3) copies, each in RAM)
//   --rebuild        rebuild the cached base disk image (bench/.work/base-*.img, shared with run.js)
//   --keep           keep the disk, the restored image and trees and the (stopped) cluster's folder
//   --work DIR       the run's folder (default bench/.work/s3); with it, results go to DIR/s3-results.json
//   --no-drop-caches do not drop the page cache before each run
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const {
  ROOT,
  WORK,
  GiB,
  MiB,
  sh,
  log,
  dropCaches,
  machineText,
  cachesText,
  timed,
  ext4Used,
  Devices,
  mountRoot,
  ext4Health,
  treeListing,
  compareListings,
  ensureGnuTime,
  diskScale,
  printHelp,
  devsnapCommand,
  cleanupOnExit,
  fmtBytes,
  table,
} = require('./lib');
const { buildBaseDisk } = require('./disk');
const { ratioCell, mark, RSS_LIMIT } = require('./report');

const CLI = path.join(ROOT, 'out/imaging/cli.js');
const HELPERS = path.join(ROOT, 'out/test/helpers/disks.js');
const CEPH_SH = path.join(ROOT, 'scripts/ceph.sh');
const PREFIX = 'bench'; // every repository is s3:ENDPOINT/BUCKET/bench
const BUCKETS = { devsnap: 'devsnap', resticFiles: 'restic-files', resticImage: 'restic-image' };

function parseArgs(argv) {
  const o = { quick: false, scale: null, part: null, osds: 1, rebuild: false, keep: false, work: null, dropCaches: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--scale') o.scale = Number(argv[++i]);
    else if (a === '--part') o.part = Number(argv[++i]);
    else if (a === '--osds') o.osds = Number(argv[++i]);
    else if (a === '--rebuild') o.rebuild = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--work') o.work = path.resolve(argv[++i]);
    else if (a === '--no-drop-caches') o.dropCaches = false;
    else if (a === '-h' || a === '--help') printHelp(__filename);
    else throw new Error(`unknown option ${a} (see --help)`);
  }
  if (!Number.isInteger(o.osds) || o.osds < 1) throw new Error('--osds needs a whole number of OSDs, 1 or more');
  return diskScale(o);
}

/** A base port with the next two free too (radosgw, monitor msgr v2, monitor msgr v1). */
async function freePorts() {
  const free = (port) =>
    new Promise((resolve) => {
      const srv = net.createServer().once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
}

/** Pid files of `dir`'s cluster whose process still runs (another run in the same folder, or one killed without its cleanup). */
function liveDaemons(dir) {
  const run = path.join(dir, 'run');
  if (!fs.existsSync(run)) return [];
  const conf = path.join(dir, 'ceph.conf');
  return fs
    .readdirSync(run)
    .filter((f) => f.endsWith('.pid'))
    .filter((f) => {
      const pid = fs.readFileSync(path.join(run, f), 'utf8').trim();
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(conf);
      } catch {
        return false;
      }
    });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid() !== 0) throw new Error('the benchmark needs root (loop devices, mounts, Ceph)');
  if (!fs.existsSync(CLI) || !fs.existsSync(HELPERS)) throw new Error('build first: npx tsc -p . (or npm run build)');
  const W = o.work ?? path.join(WORK, 's3');
  const resultsFile = o.work ? path.join(W, 's3-results.json') : path.join(WORK, 's3-results.json');
  fs.mkdirSync(W, { recursive: true });
  fs.mkdirSync(WORK, { recursive: true });
  if (!fs.existsSync('/usr/bin/restic')) {
    log('installing restic (scripts/install-deps.sh --only --bench)');
    sh('bash', [path.join(ROOT, 'scripts/install-deps.sh'), '--only', '--bench'], { stdio: 'inherit' });
  }
  ensureGnuTime();
  const cephDir = path.join(W, 'ceph');
  const live = liveDaemons(cephDir);
  if (live.length) throw new Error(`a cluster still runs in ${cephDir} (${live.join(', ')}): another run uses this folder, or stop it with: scripts/ceph.sh down ${cephDir}`);

  const H = require(HELPERS);
  const D = new Devices();
  let cephUp = false;
  const stopCeph = () => {
    if (!cephUp) return;
    cephUp = false;
    log('stopping the cluster (scripts/ceph.sh down)');
    spawnSync('bash', [CEPH_SH, 'down', cephDir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  };
  let s3 = null;
  const cleanupAll = () => {
    D.cleanupAll();
    stopCeph();
    s3?.destroy();
    s3 = null;
  };
  cleanupOnExit(cleanupAll);

  const started = Date.now();
  const loadAtStart = os.loadavg();
  const results = [];
  const record = (r) => {
    results.push(r);
    log(
      `  ${r.op} / ${r.tool}: ${r.seconds.toFixed(1)} s, ${r.bytes != null ? fmtBytes(r.bytes) + ' added, ' : ''}${r.put} PUT, ${r.get} GET, ${r.requests} requests, peak RSS ${r.rss ? (r.rss / MiB).toFixed(0) + ' MiB' : '?'}`,
    );
    return r;
  };
  const disk = path.join(W, 'disk.img');
  const restores = path.join(W, 'restore');
  const mnt = path.join(W, 'mnt');
  try {
    const { base, info } = await buildBaseDisk(o, H);
    const rootP = info.layout[1];
    log(`copying the base disk to ${path.relative(ROOT, disk)} (sparse)`);
    fs.rmSync(disk, { force: true });
    sh('cp', ['--sparse=always', base, disk]);
    fs.rmSync(restores, { recursive: true, force: true });
    fs.mkdirSync(restores, { recursive: true });
    let dev = D.attach(disk, { offset: rootP.start, size: rootP.size, ro: true });
    const rootUsed = ext4Used(dev);
    D.detach(dev);
    const mbps = (s) => rootUsed / 1e6 / s;
    log(`disk: ${fmtBytes(info.diskSize)}; root ext4 ${fmtBytes(rootP.size)} with ${fmtBytes(rootUsed)} used; ${info.treeFiles} files`);

    // ---- the server: a fresh cluster, every OSD in RAM (memstore) ----
    // Each memstore OSD may hold MEMSTORE_BYTES (writes stop at 95%): room for the three repositories
    // (each at most about the data, compressed or not) and the incrementals.
    const memstoreBytes = Math.max(4 * GiB, Math.ceil((3.5 * rootUsed + GiB) / GiB) * GiB);
    if (memstoreBytes > 0.6 * os.totalmem()) log(`warning: the cluster may hold up to ${fmtBytes(memstoreBytes)} per OSD in RAM; this machine has ${fmtBytes(os.totalmem())}`);
    fs.rmSync(cephDir, { recursive: true, force: true });
    const port = await freePorts();
    log(`starting Ceph: scripts/ceph.sh up ${path.relative(ROOT, cephDir)} ${port} ${o.osds} (memstore, ${(memstoreBytes / GiB).toFixed(0)} GiB per OSD)`);
    const t0 = Date.now();
    cephUp = true;
    const up = sh('bash', [CEPH_SH, 'up', cephDir, String(port), String(o.osds)], { env: { ...process.env, STORE: 'memstore', MEMSTORE_BYTES: String(memstoreBytes) }, timeout: 600_000 });
    const cephStartSeconds = (Date.now() - t0) / 1000;
    const cephEnv = Object.fromEntries(up.stdout.split('\n').flatMap((l) => (/^\w+=/.test(l) ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]] : [])));
    if (!cephEnv.S3_ENDPOINT || !cephEnv.AWS_ACCESS_KEY_ID) throw new Error(`scripts/ceph.sh printed no endpoint and keys:\n${up.stdout}`);
    const endpoint = cephEnv.S3_ENDPOINT;
    log(`radosgw at ${endpoint}, ready in ${cephStartSeconds.toFixed(1)} s`);
    const asok = path.join(cephDir, 'run', 'client.rgw.a.asok');
    const versions = {
      node: process.version,
      restic: sh('restic', ['version']).stdout.trim(),
      ceph: sh('radosgw', ['--version']).stdout.trim(),
    };

    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // the bench's own listings: not the SDK's notice about Node 20
    const { S3Client, ListObjectsV2Command } = require('@aws-sdk/client-s3');
    s3 = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: cephEnv.AWS_ACCESS_KEY_ID, secretAccessKey: cephEnv.AWS_SECRET_ACCESS_KEY },
    });
    /** Objects under the repository's prefix in `bucket`: their number and the sum of their sizes (0 without the bucket). */
    const bucketUsage = async (bucket) => {
      let bytes = 0;
      let objects = 0;
      let token;
      do {
        let r;
        try {
          r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/`, ContinuationToken: token }));
        } catch (err) {
          if (err.name === 'NoSuchBucket') return { bytes: 0, objects: 0 };
          throw err;
        }
        for (const c of r.Contents ?? []) {
          bytes += c.Size;
          objects += 1;
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return { bytes, objects };
    };
    /** radosgw's request counters (one gateway: every request of the bench goes through it). */
    const counters = () => {
      const rgw = JSON.parse(sh('ceph', ['--admin-daemon', asok, 'perf', 'dump']).stdout).rgw;
      return { requests: rgw.req, failed: rgw.failed_req, put: rgw.put, putBytes: rgw.put_b, get: rgw.get, getBytes: rgw.get_b };
    };

    const repo = (bucket) => `s3:${endpoint}/${bucket}/${PREFIX}`;
    const env = {
      AWS_ACCESS_KEY_ID: cephEnv.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: cephEnv.AWS_SECRET_ACCESS_KEY,
      RESTIC_PASSWORD: 'devsnap-bench',
      RESTIC_CACHE_DIR: path.join(W, 'restic-cache'),
    };
    fs.rmSync(env.RESTIC_CACHE_DIR, { recursive: true, force: true });
    const devsnapArgs = devsnapCommand(CLI);
    const drop = () => dropCaches(o.dropCaches);

    /** One measured run: page cache dropped, radosgw's counters and the bucket's objects before and after. */
    const measure = async (row, bucket, argv, opts = {}) => {
      const before = bucket ? await bucketUsage(bucket) : null;
      drop();
      const c0 = counters();
      const t = timed([argv], { env, allowFail: true, ...opts });
      const c1 = counters();
      const ok = opts.okExits ?? [0];
      if (!ok.includes(t.status)) throw new Error(`${argv.join(' ')} failed (exit ${t.status}):\n${(t.stderr || '').trim().slice(-3000)}`);
      const after = bucket ? await bucketUsage(bucket) : null;
      const r = record({
        ...row,
        seconds: t.seconds,
        mbps: mbps(t.seconds),
        bytes: bucket ? after.bytes - before.bytes : null,
        objects: bucket ? after.objects - before.objects : null,
        uploaded: c1.putBytes - c0.putBytes,
        downloaded: c1.getBytes - c0.getBytes,
        put: c1.put - c0.put,
        get: c1.get - c0.get,
        requests: c1.requests - c0.requests,
        failedRequests: c1.failed - c0.failed,
        rss: t.rss,
        exit: t.status,
      });
      return { r, stdout: t.stdout };
    };

    // restic's repositories are made first (untimed); devsnap's first snapshot creates its bucket and repository within its time
    const resticInit = {};
    for (const b of [BUCKETS.resticImage, BUCKETS.resticFiles]) {
      const t = timed([['restic', '--repo', repo(b), 'init']], { env });
      resticInit[b] = t.seconds;
    }

    // ---- 1. full ----
    log('(1) full: restic --stdin of the unmounted disk image; then, the root mounted read-write: devsnap, restic (files)');
    const resticImage = (op) =>
      measure(
        { op, tool: 'restic --stdin (image)', source: 'unmounted image' },
        BUCKETS.resticImage,
        ['restic', '--repo', repo(BUCKETS.resticImage), 'backup', '--quiet', '--stdin', '--stdin-filename', 'disk.img'],
        {
          stdinFrom: disk,
        },
      );
    const fullImage = (await resticImage('first backup')).r;

    const { rw, whole } = mountRoot(D, disk, rootP, mnt);
    const devsnapSnapshot = async (op, label) => {
      const { r, stdout } = await measure(
        { op, tool: 'devsnap', source: 'mounted rw' },
        BUCKETS.devsnap,
        devsnapArgs({ args: ['snapshot', whole, '--repo', repo(BUCKETS.devsnap), '--json', '--progress', 'none', '--label', label] }),
      );
      const snap = JSON.parse(stdout);
      const s = snap.snapshot ?? {};
      r.detail = { id: snap.id, consistency: s.consistency ?? '?', pointInTime: s.pointInTime ?? null, stats: s.stats, warnings: snap.warnings };
      const p = r.detail.pointInTime;
      log(`  consistency ${r.detail.consistency}${p ? `, writes paused ${Number(p.pauseSeconds).toFixed(2)} s` : ''}; read ${fmtBytes(s.stats?.bytesRead)}, added ${fmtBytes(s.stats?.bytesAdded)}`);
      return r;
    };
    // restic exits 3 when it could not read some file: still a snapshot, its exit is in the results
    const resticFiles = async (op) =>
      (await measure({ op, tool: 'restic backup (files)', source: 'mounted rw' }, BUCKETS.resticFiles, ['restic', '--repo', repo(BUCKETS.resticFiles), 'backup', '--quiet', mnt], { okExits: [0, 3] }))
        .r;
    const full = await devsnapSnapshot('full', 'installed');
    const fullFiles = await resticFiles('first backup');

    // ---- 2. incremental after the upgrade ----
    log('upgrade: simulateUpgrade(…, 0.05) on the mounted root');
    const upgrade = H.simulateUpgrade(mnt, 0.05);
    log(`  modified ${upgrade.modified}, added ${upgrade.added}, removed ${upgrade.removed} files`);
    log('(2) incremental: devsnap, restic (files) on the mounted root');
    const inc = await devsnapSnapshot('incremental', 'upgraded');
    const incFiles = await resticFiles('incremental');

    // ---- 3. restore of the newest snapshots, each checked against its source ----
    log('(3) restore: devsnap to an image file, restic (files) to a folder; the image restore follows the block-level incremental');
    log('  listing the mounted root (sha256 of every file; untimed)');
    const source = treeListing(mnt);
    const checks = {};
    const restoredImg = path.join(restores, 'devsnap.img');
    fs.closeSync(fs.openSync(restoredImg, 'w'));
    fs.truncateSync(restoredImg, info.diskSize);
    const resDevsnap = (
      await measure(
        { op: 'restore', tool: 'devsnap', source: 'bucket -> image file' },
        null,
        devsnapArgs({ args: ['restore', inc.detail.id, restoredImg, '--repo', repo(BUCKETS.devsnap), '--yes', '--progress', 'none'] }),
      )
    ).r;
    {
      // outside the root partition (table, EFI, gaps) byte for byte; the root as a filesystem and as a tree
      const rootEnd = rootP.start + rootP.size;
      const cmpRange = (start, length) => sh('cmp', ['-s', `--ignore-initial=${start}`, `--bytes=${length}`, disk, restoredImg], { allowFail: true }).status === 0;
      const outsideRoot = cmpRange(0, rootP.start) && cmpRange(rootEnd, info.diskSize - rootEnd);
      dev = D.attach(restoredImg, { offset: rootP.start, size: rootP.size, ro: true });
      const health = ext4Health(dev);
      const check = path.join(W, 'mnt-check');
      D.mount(dev, check, 'ro,noload');
      let tree;
      try {
        tree = compareListings(source, treeListing(check));
      } finally {
        D.umount(check);
        D.detach(dev);
      }
      checks.devsnap = { equal: outsideRoot && tree.equal && !health.needsRecovery && health.e2fsckExit === 0, outsideRoot, ...health, tree };
      log(
        `  devsnap: outside the root ${outsideRoot ? 'byte-identical' : 'DIFFERENT'}; root ${health.needsRecovery ? 'needs_recovery SET' : 'no needs_recovery'}, e2fsck -fn exit ${health.e2fsckExit}; tree ${tree.equal ? 'identical' : `${tree.differing} differences`} (${tree.entries} entries)`,
      );
      if (!o.keep) fs.rmSync(restoredImg, { force: true });
    }
    const filesTarget = path.join(restores, 'files');
    const resFiles = (
      await measure({ op: 'restore', tool: 'restic restore (files)', source: 'bucket -> folder' }, null, [
        'restic',
        '--repo',
        repo(BUCKETS.resticFiles),
        'restore',
        '--quiet',
        'latest',
        '--target',
        filesTarget,
      ])
    ).r;
    {
      const tree = compareListings(source, treeListing(path.join(filesTarget, mnt)));
      checks.resticFiles = { equal: tree.equal, tree };
      log(`  restic (files): tree ${tree.equal ? 'identical' : `${tree.differing} differences`} (${tree.entries} entries)`);
      if (!o.keep) fs.rmSync(filesTarget, { recursive: true, force: true });
    }

    // ---- 4. unchanged re-snapshot ----
    log('(4) unchanged: restic (files), devsnap');
    const sameFiles = await resticFiles('unchanged');
    const same = await devsnapSnapshot('unchanged', 'unchanged');
    D.umount(mnt);
    D.detach(whole);
    D.detach(rw);

    // ---- block level after the upgrade, unmounted, and its restore ----
    log('(2, block level) incremental: restic --stdin of the unmounted disk image (the upgraded root, now unmounted)');
    const incImage = (await resticImage('incremental')).r;
    const imageTarget = path.join(restores, 'image');
    const resImage = (
      await measure({ op: 'restore', tool: 'restic restore (image)', source: 'bucket -> image file' }, null, [
        'restic',
        '--repo',
        repo(BUCKETS.resticImage),
        'restore',
        '--quiet',
        'latest',
        '--target',
        imageTarget,
      ])
    ).r;
    {
      const equal = sh('cmp', ['-s', disk, path.join(imageTarget, 'disk.img')], { allowFail: true }).status === 0;
      checks.resticImage = { equal };
      log(`  restic (image): ${equal ? 'byte-identical' : 'DIFFERENT'} to the image it backed up`);
      if (!o.keep) fs.rmSync(imageTarget, { recursive: true, force: true });
    }

    // ---- report ----
    const rows = { full, fullFiles, fullImage, inc, incFiles, incImage, same, sameFiles, resDevsnap, resFiles, resImage };
    report({
      o,
      loadAtStart,
      resultsFile,
      versions,
      started,
      info,
      rootP,
      rootUsed,
      upgrade,
      results,
      rows,
      checks,
      ceph: { endpoint, osds: o.osds, memstoreBytes, startSeconds: cephStartSeconds },
      resticInit,
    });
  } finally {
    cleanupAll();
    if (!o.keep) {
      fs.rmSync(disk, { force: true });
      fs.rmSync(restores, { recursive: true, force: true });
      fs.rmSync(cephDir, { recursive: true, force: true });
      fs.rmSync(path.join(W, 'restic-cache'), { recursive: true, force: true });
      // the empty mount points; rmdir, never recursive: one could still be mounted if its umount failed
      for (const m of [mnt, path.join(W, 'mnt-check')]) if (fs.existsSync(m)) fs.rmdirSync(m);
    }
  }
}

const OPS = ['full', 'first backup', 'incremental', 'unchanged', 'restore'];

function report(ctx) {
  const { o, loadAtStart, resultsFile, versions, started, info, rootP, rootUsed, upgrade, results, rows, checks, ceph, resticInit } = ctx;
  const { full, inc, incFiles, same } = rows;
  const num = (n) => (n == null ? '-' : n.toLocaleString('en-US'));
  const order = (r) => OPS.indexOf(r.op) * 10 + (r.tool === 'devsnap' ? 0 : 1);
  const sorted = results.map((r, i) => ({ r, i })).sort((a, b) => order(a.r) - order(b.r) || a.i - b.i);
  const tableRows = sorted.map(({ r }) => [
    r.op,
    r.tool,
    r.source,
    r.seconds.toFixed(1),
    r.mbps.toFixed(0),
    fmtBytes(r.bytes),
    num(r.objects),
    fmtBytes(r.uploaded),
    fmtBytes(r.downloaded),
    num(r.put),
    num(r.get),
    num(r.requests),
    r.rss ? `${(r.rss / MiB).toFixed(0)} MiB` : '-',
    ratioCell(results, r),
  ]);
  const s1 = (x) => `${x.toFixed(1)} s`;
  const devsnapRuns = results.filter((r) => r.tool === 'devsnap');
  const t = checks.devsnap.tree;
  const targets = [
    {
      name: 'devsnap: the restored image equals the source',
      pass: checks.devsnap.equal,
      value: `outside the root partition ${checks.devsnap.outsideRoot ? 'byte-identical' : 'DIFFERENT'}; root ${checks.devsnap.needsRecovery ? 'needs_recovery SET' : 'no needs_recovery'}, e2fsck -fn exit ${checks.devsnap.e2fsckExit}, ${t.equal ? `every entry identical (${num(t.entries)} entries, ${fmtBytes(t.bytes)} of files)` : `${num(t.differing)} differences, e.g. ${t.differences.join('; ')}`}`,
    },
    {
      name: 'restic (files): the restored tree equals the source',
      pass: checks.resticFiles.equal,
      value: checks.resticFiles.tree.equal
        ? `every entry identical (${num(checks.resticFiles.tree.entries)} entries)`
        : `${num(checks.resticFiles.tree.differing)} differences, e.g. ${checks.resticFiles.tree.differences.join('; ')}`,
    },
    { name: 'restic (image): the restored image equals the image backed up', pass: checks.resticImage.equal, value: checks.resticImage.equal ? 'byte-identical' : 'DIFFERENT' },
    { name: 'incremental faster than restic backup (files)', pass: inc.seconds < incFiles.seconds, value: `${s1(inc.seconds)} vs ${s1(incFiles.seconds)}` },
    {
      name: 'incremental bytes <= 1.5x restic (files)',
      pass: inc.bytes <= 1.5 * incFiles.bytes,
      value: `${fmtBytes(inc.bytes)} vs ${fmtBytes(incFiles.bytes)} (${(inc.bytes / incFiles.bytes).toFixed(2)}x)`,
    },
    {
      name: "unchanged re-snapshot <= 10% of the full's time",
      pass: same.seconds <= 0.1 * full.seconds,
      value: `${s1(same.seconds)} vs ${s1(full.seconds)} (${((100 * same.seconds) / full.seconds).toFixed(0)}%)`,
    },
    {
      name: `peak RSS <= ${(RSS_LIMIT / 1e6).toFixed(0)} MB (every devsnap run)`,
      pass: devsnapRuns.every((r) => r.rss && r.rss <= RSS_LIMIT),
      value: devsnapRuns.map((r) => `${r.op} ${(r.rss / 1e6).toFixed(0)} MB`).join(', '),
    },
  ];
  const load = (l) => l.map((x) => x.toFixed(1)).join(' ');
  const machine = `${machineText()}; load average ${load(loadAtStart)} at the start, ${load(os.loadavg())} at the end`;
  const caches = cachesText(o.dropCaches);
  const out = [''];
  out.push(`devsnap S3 benchmark (issue 13) — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
  out.push(`engine: working tree (out/), Node ${process.version}; ${versions.restic}; ${versions.ceph}`);
  out.push(
    `server: Ceph radosgw at ${ceph.endpoint} (scripts/ceph.sh: 1 monitor, ${ceph.osds} OSD${ceph.osds > 1 ? 's' : ''} memstore (in RAM, up to ${(ceph.memstoreBytes / GiB).toFixed(0)} GiB each), ${Math.min(ceph.osds, 3)} cop${Math.min(ceph.osds, 3) > 1 ? 'ies' : 'y'}, 1 gateway), started fresh for this run in ${ceph.startSeconds.toFixed(1)} s; one bucket per repository, prefix "${PREFIX}/"`,
  );
  out.push(
    `disk: GPT ${fmtBytes(info.diskSize)}, EFI vfat 256 MiB, ext4 root ${fmtBytes(rootP.size)} with ${fmtBytes(rootUsed)} used (${num(info.treeFiles)} files); upgrade: ${upgrade.modified} modified, ${upgrade.added} added, ${upgrade.removed} removed`,
  );
  out.push(`page cache: ${caches}. Times are wall clock and include a final sync. MB/s = root used bytes (${fmtBytes(rootUsed)}) / seconds, for every row.`);
  out.push(
    'bytes: growth of the sum of object sizes under the repository prefix (S3 ListObjectsV2). objects: growth of their number. up/down, PUT, GET, requests: radosgw perf counters (put_b, get_b, put, get, req) over the run; PUT counts object writes (multipart parts each), GET object reads; requests every request (lists, HEADs, deletes, bucket calls too).',
  );
  out.push(
    `"mounted rw": devsnap images the whole disk while its root is mounted read-write (noatime), nothing else writing; restic backs up the mounted root's files. "unmounted image": restic backup --stdin < the disk image file (every byte, free space included); its incremental runs after the root was unmounted at the end (the upgraded data). devsnap's repository is unencrypted, zstd level 3; restic's encrypted (it always is), compression auto; restic init ran before (${Object.values(
      resticInit,
    )
      .map((s) => s.toFixed(1))
      .join(' s, ')} s, untimed), devsnap's first snapshot creates its bucket and repository within its time.`,
  );
  out.push('');
  out.push(table(tableRows, ['operation', 'tool', 'source', 'seconds', 'MB/s', 'bytes', 'objects', 'up', 'down', 'PUT', 'GET', 'requests', 'peak RSS', 'devsnap/peer'], 3));
  out.push('');
  out.push('devsnap on the mounted root:');
  for (const r of devsnapRuns.filter((x) => x.detail)) {
    const d = r.detail;
    const p = d.pointInTime;
    out.push(
      `  ${r.op}: consistency ${d.consistency}${p ? `, writes paused ${Number(p.pauseSeconds).toFixed(2)} s, ${fmtBytes(p.rereadBytes)} re-read` : ''}; read ${fmtBytes(d.stats?.bytesRead)}, added ${fmtBytes(d.stats?.bytesAdded)} (the engine's count)`,
    );
  }
  out.push('');
  out.push('targets (restores; then those of issue 8, on S3):');
  for (const tg of targets) out.push(`  ${mark(tg.pass)}  ${tg.name}: ${tg.value}`);
  out.push('');
  out.push(`total bench time ${((Date.now() - started) / 60000).toFixed(1)} min; results in ${path.relative(process.cwd(), resultsFile)}`);
  console.log(out.join('\n'));
  fs.writeFileSync(
    resultsFile,
    JSON.stringify({ date: new Date().toISOString(), machine, options: o, versions, pageCache: caches, ceph, disk: { ...info, rootUsed }, upgrade, results, checks, targets, resticInit }, null, 2),
  );
}

main().catch((err) => {
  console.error(`bench failed: ${err.stack || err}`);
  process.exit(1);
});
