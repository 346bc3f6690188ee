// The demo the host tests and `npm start` run against: a small GPT disk image (EFI vfat + ext4 root
// holding a workstation-like tree), a folder for the snapshot repository, and a workspace whose
// .vscode/settings.json points devsnap at both.
//
// Disks are made with test/helpers/disks.ts (compiled to out/test/helpers/disks.js) when it is
// built; otherwise with a small built-in fallback (sfdisk, mkfs.vfat, mkfs.ext4 -d: no root needed).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const MiB = 1024 * 1024;
const DISK = { size: 64 * MiB, efi: 8 * MiB, root: 52 * MiB };

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message || '').toString().trim()}`);
  }
}

function helpers() {
  const f = path.join(ROOT, 'out', 'test', 'helpers', 'disks.js');
  if (!fs.existsSync(f)) return null;
  const m = require(f);
  return typeof m.makeDisk === 'function' ? m : null;
}

/** A few folders of text and binary files, like a small home + /etc + /usr. */
function fallbackTree(dir) {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const put = (rel, data) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), data);
  };
  put('etc/hostname', 'demo-workstation\n');
  put('etc/fstab', 'UUID=demo / ext4 defaults 0 1\nUUID=EFI /boot/efi vfat umask=0077 0 1\n');
  for (let i = 0; i < 40; i++) put(`home/dev/project/src/module${i}.ts`, `export const value${i} = ${i};\n`.repeat(50 + i * 5));
  for (let i = 0; i < 6; i++) {
    const b = Buffer.alloc(512 * 1024);
    for (let j = 0; j < b.length; j += 4) b.writeUInt32LE((rnd() * 2 ** 32) >>> 0, j);
    put(`usr/lib/libdemo${i}.so`, b);
  }
  put('home/dev/.bashrc', 'export EDITOR=code\n');
}

function fallbackDisk(file, treeDir) {
  const tmp = fs.mkdtempSync(`${file}.parts-`);
  try {
    fs.rmSync(file, { force: true });
    fs.writeFileSync(file, '');
    fs.truncateSync(file, DISK.size);
    const s = 512;
    const efiStart = MiB / s;
    const rootStart = efiStart + DISK.efi / s;
    run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', file], {
      input: `label: gpt\nstart=${efiStart}, size=${DISK.efi / s}, type=U, name="EFI System"\nstart=${rootStart}, size=${DISK.root / s}, type=L, name="root"\n`,
    });
    const efi = path.join(tmp, 'efi.img');
    run('mkfs.vfat', ['-C', '-n', 'EFI', efi, String(DISK.efi / 1024)]);
    const efiFiles = path.join(tmp, 'BOOTX64.EFI');
    fs.writeFileSync(efiFiles, Buffer.alloc(64 * 1024, 0x90));
    run('mmd', ['-i', efi, '::/EFI', '::/EFI/BOOT']);
    run('mcopy', ['-i', efi, efiFiles, '::/EFI/BOOT/BOOTX64.EFI']);
    const root = path.join(tmp, 'root.img');
    run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', treeDir, root, `${DISK.root / 1024}k`]);
    for (const [img, start] of [
      [efi, efiStart],
      [root, rootStart],
    ]) {
      run('dd', [`if=${img}`, `of=${file}`, 'bs=512', `seek=${start}`, 'conv=notrunc,sparse', 'status=none']);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Makes the demo disk image at `file` (GPT: EFI vfat + ext4 root with a workstation tree). */
async function makeDemoDisk(file) {
  const treeDir = fs.mkdtempSync(`${file}.tree-`);
  try {
    const h = helpers();
    if (h && typeof h.makeWorkstationTree === 'function') await h.makeWorkstationTree(treeDir, { scale: 1 });
    else fallbackTree(treeDir);
    if (h) {
      await h.makeDisk(file, {
        table: 'gpt',
        size: DISK.size,
        partitions: [
          { size: DISK.efi, type: 'efi', fs: 'vfat' },
          { size: DISK.root, type: 'linux', fs: 'ext4', fromDir: treeDir },
        ],
      });
    } else {
      fallbackDisk(file, treeDir);
    }
  } finally {
    fs.rmSync(treeDir, { recursive: true, force: true });
  }
  return file;
}

/** Writes `<workspace>/.vscode/settings.json` configuring devsnap (merged over what is there). */
function writeWorkspaceSettings(workspace, settings) {
  const f = path.join(workspace, '.vscode', 'settings.json');
  fs.mkdirSync(path.dirname(f), { recursive: true });
  let cur = {};
  try {
    cur = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch {
    /* new */
  }
  fs.writeFileSync(f, JSON.stringify({ ...cur, ...settings }, null, 2) + '\n');
}

/**
 * Prepares (or, with reuse, keeps) the demo in `dir`: dir/disk.img, dir/repo (created by the first
 * snapshot), dir/workspace. Returns their paths.
 * @param {string} dir
 * @param {{ reuse?: boolean }} [opts]
 */
async function prepareDemo(dir, opts = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const disk = path.join(dir, 'disk.img');
  const repo = path.join(dir, 'repo');
  const workspace = path.join(dir, 'workspace');
  fs.mkdirSync(workspace, { recursive: true });
  if (!(opts.reuse && fs.existsSync(disk))) await makeDemoDisk(disk);
  // The recovery kit (130 MB per repository) only where a test or the demo asks for it.
  writeWorkspaceSettings(workspace, { 'devsnap.repository': repo, 'devsnap.diskImages': [disk], 'devsnap.defaultSource': disk, 'devsnap.recoveryKit': !!opts.recoveryKit });
  return { dir, disk, repo, workspace };
}

// ---- A simulated upgrade: two snapshots of the demo disk, before and after (the compare panel's
// e2e test and `npm start` use it). OS 12 → 13, kernel, node, dpkg versions bumped / one package
// removed / one added, files added, removed and modified, all with debugfs: no root needed.

const BEFORE = 'before upgrade';
const AFTER = 'after upgrade';

/** Edits the last (ext4 root) partition of a disk image with debugfs, on a copy of the partition: no root needed. */
function editRoot(disk, fn) {
  const t = JSON.parse(run('sfdisk', ['-J', disk])).partitiontable;
  const p = t.partitions[t.partitions.length - 1];
  const offset = p.start * t.sectorsize;
  const size = p.size * t.sectorsize;
  const dir = fs.mkdtempSync(path.join(path.dirname(disk), 'edit-'));
  const part = path.join(dir, 'root.img');
  try {
    run('dd', [`if=${disk}`, `of=${part}`, 'bs=1M', `skip=${offset}`, `count=${size}`, 'iflag=skip_bytes,count_bytes', 'status=none']);
    const cmds = [];
    const fsApi = {
      cat: (f) => run('debugfs', ['-R', `cat ${f}`, part]),
      write: (f, content) => {
        const local = path.join(dir, `f${cmds.length}`);
        fs.writeFileSync(local, content);
        cmds.push(`rm ${f}`, `write ${local} ${f}`);
      },
      rm: (f) => cmds.push(`rm ${f}`),
      mkdir: (d) => cmds.push(`mkdir ${d}`),
    };
    fn(fsApi);
    fs.writeFileSync(path.join(dir, 'cmds'), cmds.join('\n') + '\n');
    run('debugfs', ['-w', '-f', path.join(dir, 'cmds'), part]);
    run('dd', [`if=${part}`, `of=${disk}`, 'bs=1M', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc', 'status=none']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function snapshot(demo, label) {
  const CLI = path.join(ROOT, 'dist', 'devsnap.js');
  const out = JSON.parse(run(process.execPath, [CLI, 'snapshot', demo.disk, '--repo', demo.repo, '--label', label, '--json']));
  return out.snapshot;
}

/** Two snapshots: before and after a simulated upgrade of the demo disk's root. */
function makeUpgradePair(demo) {
  editRoot(demo.disk, (f) => {
    f.mkdir('/boot');
    f.write('/boot/vmlinuz-6.1.0-18-amd64', 'kernel 18');
    f.mkdir('/usr/include');
    f.mkdir('/usr/include/node');
    f.write('/usr/include/node/node_version.h', '#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 11\n#define NODE_PATCH_VERSION 1\n');
  });
  const before = snapshot(demo, BEFORE);
  editRoot(demo.disk, (f) => {
    let n = 0;
    const paras = f
      .cat('/var/lib/dpkg/status')
      .split('\n\n')
      .filter((x) => x.trim())
      .map((para) => (n++ % 4 === 0 ? para.replace(/^Version: (.*)-(\d+)$/m, (_m, v, r) => `Version: ${v}-${Number(r) + 1}`) : para));
    paras.shift(); // one package removed
    paras.push('Package: newtool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\nDescription: a new tool');
    f.write('/var/lib/dpkg/status', paras.join('\n\n') + '\n');
    f.write('/etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n');
    f.write('/etc/hostname', 'devbox-upgraded\n');
    f.write('/boot/vmlinuz-6.1.0-20-amd64', 'kernel 20');
    f.write('/usr/include/node/node_version.h', '#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 12\n#define NODE_PATCH_VERSION 0\n');
    f.rm('/etc/conf.d/service-3.conf');
    f.write('/etc/conf.d/service-new.conf', 'enabled = true\n');
    f.mkdir('/opt');
    f.mkdir('/opt/newtool');
    for (let i = 0; i < 25; i++) f.write(`/opt/newtool/plugin-${String(i).padStart(2, '0')}.conf`, `plugin ${i}\n`.repeat(i + 1));
    f.mkdir('/opt/newtool/lib');
    f.write('/opt/newtool/lib/libnewtool.so', Buffer.alloc(30000, 7));
  });
  const after = snapshot(demo, AFTER);
  return { before, after };
}

module.exports = { prepareDemo, makeDemoDisk, writeWorkspaceSettings, makeUpgradePair, BEFORE, AFTER, DISK };
