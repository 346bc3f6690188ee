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
    return execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message || '').trim()}`);
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
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
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
    for (const [img, start] of [[efi, efiStart], [root, rootStart]]) {
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
  try { cur = JSON.parse(fs.readFileSync(f, 'utf8')); } catch { /* new */ }
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
  writeWorkspaceSettings(workspace, { 'devsnap.repository': repo, 'devsnap.diskImages': [disk], 'devsnap.defaultSource': disk });
  return { dir, disk, repo, workspace };
}

module.exports = { prepareDemo, makeDemoDisk, writeWorkspaceSettings, DISK };
