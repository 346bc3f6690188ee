#!/usr/bin/env node
// Deduplication across workstations (issue 13): two workstations that hold the same system files but
// were installed independently, snapshotted one after the other into one repository. What does the
// second add? Side by side with restic backing up the two mounted roots' files into one repository
// (restic deduplicates a file's content wherever it lies).
//
// Each workstation is a GPT disk (an EFI partition, then an ext4 root) made with the real tools, in
// two ways:
//   installed: the root is mounted and its files written through the kernel, as an installer or a
//              package manager writes them. Workstation B differs from A in the size of its EFI
//              partition (so its root starts elsewhere on the disk), the size of its root, the order
//              its files were written in, and files of its own written between them.
//   offline:   the root is populated by `mke2fs -d` (how devsnap's test disks are made), A and B with
//              roots of different sizes.
// devsnap stores 1 MiB cells at fixed offsets of a partition: a file's cells are alike on two disks
// when the file's blocks lie at the same offset modulo 1 MiB, which ext4's allocator gives to most
// of a large file (its buddy allocation), and mke2fs -d does not.
//
// Needs root (loop devices, mounts). Run after `npx tsc -p .`:
//   node bench/cross-host.js [--mb N] [--quick] [--no-restic] [--work DIR] [--keep]
//   --mb N: the system files sampled from this machine (/usr, /etc, /opt), default 600 (--quick: 120)
'use strict';

const fs = require('fs');
const path = require('path');
const { CLI, ROOT, WORK, MiB, sh, log, duBytes, fmtBytes, table, Devices, cleanupOnExit, devsnapCommand, numberArg } = require('./lib');
const { copyRealFiles } = require('./disk');

const HELPERS = path.join(ROOT, 'out/test/helpers/disks.js');
const quick = process.argv.includes('--quick');
const MB = numberArg('--mb', quick ? 120 : 600);
const withRestic = !process.argv.includes('--no-restic');
const keep = process.argv.includes('--keep');
const workArg = process.argv.includes('--work') ? process.argv[process.argv.indexOf('--work') + 1] : null;

/** Every file, link and folder of `tree` (relative paths, name order). */
function listTree(tree) {
  const out = [];
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(tree, rel)).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(tree, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile() || st.isSymbolicLink()) out.push(r);
    }
  };
  walk('');
  return out;
}

/** Writes `files` of `tree` into `root` in that order, with `extra` bytes of the host's own after every 20th. */
function install(tree, files, root, rand, extraEvery) {
  let k = 0;
  for (const f of files) {
    const from = path.join(tree, f);
    const to = path.join(root, f);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    const st = fs.lstatSync(from);
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(from), to);
    else fs.copyFileSync(from, to);
    if (extraEvery && ++k % extraEvery === 0) {
      fs.mkdirSync(path.join(root, 'var/lib/own'), { recursive: true });
      const n = Math.floor(rand() * 200_000);
      fs.writeFileSync(path.join(root, 'var/lib/own', `f${k}`), Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256))));
    }
  }
}

/** A GPT disk image: an EFI partition of `efiMiB` (left blank) and an ext4 root of `rootMiB`; returns the root's offset. */
function partitionDisk(img, efiMiB, rootMiB) {
  fs.rmSync(img, { force: true });
  sh('truncate', ['-s', `${1 + efiMiB + rootMiB + 1}M`, img]);
  sh('sfdisk', ['--quiet', img], { input: `label: gpt\nstart=2048, size=${efiMiB * 2048}, type=U\nsize=${rootMiB * 2048}, type=L\n` });
  return (1 + efiMiB) * MiB;
}

function main() {
  if (process.getuid() !== 0) throw new Error('this bench needs root (loop devices, mounts)');
  if (!fs.existsSync(CLI) || !fs.existsSync(HELPERS)) throw new Error('build first: npx tsc -p . (or npm run build)');
  const H = require(HELPERS);
  const W = workArg ?? path.join(WORK, 'cross-host');
  fs.rmSync(W, { recursive: true, force: true });
  fs.mkdirSync(W, { recursive: true });
  const D = new Devices();
  cleanupOnExit(() => D.cleanupAll());
  const devsnap = devsnapCommand(CLI);
  const run = (args) => {
    const [cmd, ...rest] = devsnap({ args });
    return JSON.parse(sh(cmd, rest).stdout);
  };

  const tree = path.join(W, 'tree');
  fs.mkdirSync(tree);
  const real = copyRealFiles(tree, MB * 1e6, H.prng(20261128));
  const files = listTree(tree);
  log(`system files sampled from this machine: ${real.files} files, ${fmtBytes(real.bytes)}`);
  const rootMiB = Math.max(256, Math.ceil((real.bytes * 2) / MiB));

  // [name, EFI MiB, root MiB, how the root is populated]
  const disks = {
    installed: [
      ['A', 256, rootMiB, (root) => install(tree, files, root, H.prng(1), 0)],
      ['B', 512, Math.ceil(rootMiB * 1.25), (root) => install(tree, [...files].reverse(), root, H.prng(2), 20)],
    ],
    offline: [
      ['A', 256, rootMiB, null],
      ['B', 256, Math.ceil(rootMiB * 1.5), null],
    ],
  };
  const rows = [];
  const results = { mb: MB, files: real.files, bytes: real.bytes, ways: {} };
  for (const [way, pair] of Object.entries(disks)) {
    const repo = path.join(W, `repo-${way}`);
    const restic = path.join(W, `restic-${way}`);
    const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: path.join(W, 'restic-cache') };
    if (withRestic) sh('restic', ['init', '--repo', restic], { env });
    const r = {};
    for (const [name, efiMiB, size, populate] of pair) {
      const img = path.join(W, `${way}-${name}.img`);
      const offset = partitionDisk(img, efiMiB, size);
      if (populate) {
        const dev = D.attach(img, { offset, size: size * MiB });
        sh('mkfs.ext4', ['-q', '-F', dev]);
        const mnt = path.join(W, `mnt-${way}-${name}`);
        D.mount(dev, mnt);
        populate(mnt);
        D.umount(mnt);
        D.detach(dev);
      } else sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-E', `offset=${offset}`, img, `${size}M`]);
      const snap = run(['snapshot', img, '--repo', repo, '--json', '--progress', 'none', '--label', `workstation ${name}`]).snapshot;
      const alone = name === 'A' ? snap : run(['snapshot', img, '--repo', path.join(W, `repo-${way}-B-alone`), '--json', '--progress', 'none']).snapshot;
      let resticAdded = null;
      if (withRestic) {
        const dev = D.attach(img, { offset, size: size * MiB, ro: true });
        const mnt = path.join(W, `ro-${way}-${name}`);
        D.mount(dev, mnt, 'ro,noload');
        const before = duBytes(restic);
        const b = sh('restic', ['--repo', restic, 'backup', '--quiet', '--host', `workstation-${name}`, '.'], { env, cwd: mnt, allowFail: true });
        if (![0, 3].includes(b.status)) throw new Error(`restic backup failed (exit ${b.status}): ${b.stderr.slice(-2000)}`);
        resticAdded = duBytes(restic) - before;
        D.umount(mnt);
        D.detach(dev);
      }
      r[name] = { added: snap.stats.bytesAdded, alone: alone.stats.bytesAdded, chunksNew: snap.stats.chunksNew, chunksReused: snap.stats.chunksReused, resticAdded };
      rows.push([
        way,
        `workstation ${name}`,
        `${efiMiB} MiB EFI, ${size} MiB root`,
        fmtBytes(snap.stats.bytesAdded),
        name === 'A'
          ? '-'
          : `${fmtBytes(alone.stats.bytesAdded)} alone: ${((1 - snap.stats.bytesAdded / alone.stats.bytesAdded) * 100).toFixed(0)}% saved, ${snap.stats.chunksReused} of ${snap.stats.chunksNew + snap.stats.chunksReused} chunks reused`,
        withRestic ? fmtBytes(resticAdded) : '-',
      ]);
    }
    results.ways[way] = r;
  }
  console.log(`\nTwo workstations with the same ${real.files} system files (${fmtBytes(real.bytes)}), one repository each tool:\n`);
  console.log(table(rows, ['root populated', 'snapshot', 'disk', 'devsnap adds', 'the second against a repository of its own', 'restic (files) adds'], 6));
  fs.mkdirSync(WORK, { recursive: true });
  fs.writeFileSync(path.join(W, 'cross-host.json'), JSON.stringify(results, null, 2) + '\n');
  if (!workArg) fs.writeFileSync(path.join(WORK, 'cross-host.json'), JSON.stringify(results, null, 2) + '\n');
  D.cleanupAll();
  if (!keep) for (const f of fs.readdirSync(W)) if (f !== 'cross-host.json') fs.rmSync(path.join(W, f), { recursive: true, force: true });
}

try {
  main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
