// Builds the benchmark's workstation disk: GPT, 256 MiB EFI (vfat, bootloader-like files) and an ext4
// root holding a deterministic sample of this machine's real files plus developer content. The result
// is cached as bench/.work/base-s<scale>-p<part>.img (+ .json) and copied for each run.
'use strict';

const fs = require('fs');
const path = require('path');
const { ROOT, WORK, MiB, GiB, sh, q, log, duBytes } = require('./lib');

/** Regular files and symlinks under `roots`, with sizes, in name order (no file over `maxFile`). */
function listReal(roots, maxFile) {
  const out = [];
  const walk = (d) => {
    let names;
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(d, name);
      let st;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) out.push({ p, size: 0 });
      else if (st.isFile() && st.size <= maxFile) out.push({ p, size: st.size });
    }
  };
  for (const r of roots) walk(r);
  return out;
}

/** Copies a deterministic sample of this machine's real files (about `budget` bytes) into `dir`, keeping their paths. */
function copyRealFiles(dir, budget, rand) {
  const groups = [
    // system: libraries, data, binaries, headers (most of a root filesystem)
    { share: 0.8, roots: ['/usr/lib', '/usr/share', '/usr/bin', '/usr/sbin', '/usr/include', '/usr/libexec', '/usr/local', '/etc'] },
    // developer caches: Python wheels and downloaded packages (mostly already-compressed archives)
    { share: 0.2, roots: ['/opt/wheels', '/opt/pypi', '/opt/tf-plugins'] },
  ];
  let files = 0;
  for (const g of groups) {
    const all = listReal(g.roots, 64 * MiB);
    const total = all.reduce((n, f) => n + f.size, 0);
    const want = budget * g.share;
    const p = Math.min(1, want / Math.max(1, total));
    const pick = all.filter(() => rand() < p).map((f) => f.p.slice(1));
    if (!pick.length) continue;
    const listFile = path.join(WORK, 'real-files.txt');
    fs.writeFileSync(listFile, pick.join('\n') + '\n');
    // tar keeps modes, owners, symlinks and hard links; unreadable files are skipped with a warning.
    sh('bash', ['-c', `tar -C / --no-recursion --ignore-failed-read -cf - -T ${q(listFile)} 2>/dev/null | tar -C ${q(dir)} -xpf -`]);
    fs.rmSync(listFile);
    files += pick.length;
  }
  return { files, bytes: duBytes(dir) };
}

async function buildBaseDisk(o, H) {
  const tag = `s${o.scale}-p${o.part}`;
  const base = path.join(WORK, `base-${tag}.img`);
  const stamp = base + '.json';
  if (!o.rebuild && fs.existsSync(base) && fs.existsSync(stamp)) {
    log(`reusing the base disk ${path.relative(ROOT, base)} (--rebuild to make it anew)`);
    return { base, info: JSON.parse(fs.readFileSync(stamp, 'utf8')) };
  }
  const tree = path.join(WORK, `tree-${tag}`);
  const efi = path.join(WORK, `efi-${tag}`);
  fs.rmSync(tree, { recursive: true, force: true });
  fs.rmSync(efi, { recursive: true, force: true });
  fs.mkdirSync(tree, { recursive: true });
  const budget = o.scale * 1e9;
  const rand = H.prng(20240601);
  log(`building a workstation tree of ~${o.scale} GB in ${path.relative(ROOT, tree)}: real files from /usr, /etc, /opt...`);
  const real = copyRealFiles(tree, budget * 0.65, rand);
  log(`  real system files: ${real.files} files, ${(real.bytes / 1e6).toFixed(0)} MB; now developer content (makeWorkstationTree)`);
  const dev = H.makeWorkstationTree(tree, { scale: Math.max(20e6, budget - real.bytes), seed: 7 });
  const treeBytes = duBytes(tree);
  log(`  developer content: ${dev.files} files; tree total ${(treeBytes / 1e6).toFixed(0)} MB`);

  // EFI system partition: a bootloader-like layout with real binaries as stand-ins for .efi files and a kernel
  fs.mkdirSync(path.join(efi, 'EFI/debian'), { recursive: true });
  fs.mkdirSync(path.join(efi, 'EFI/BOOT'), { recursive: true });
  const bins = ['/usr/bin/bash', '/usr/bin/perl', '/usr/bin/tar', '/usr/bin/gzip'].filter((f) => fs.existsSync(f));
  bins.forEach((b, i) => fs.copyFileSync(b, path.join(efi, 'EFI/debian', ['shimx64.efi', 'grubx64.efi', 'mmx64.efi', 'fbx64.efi'][i])));
  fs.copyFileSync(bins[0], path.join(efi, 'EFI/BOOT/BOOTX64.EFI'));
  fs.writeFileSync(path.join(efi, 'EFI/debian/grub.cfg'), "search.fs_uuid 0a1b2c3d root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n");

  const diskSize = MiB + 256 * MiB + o.part * GiB + MiB;
  log(`making the disk: GPT, 256 MiB EFI (vfat), ${o.part} GiB ext4 root (mke2fs -d; takes a while)`);
  const tmp = base + '.tmp';
  const layout = await H.makeDisk(tmp, {
    table: 'gpt',
    size: diskSize,
    partitions: [
      { size: 256 * MiB, fs: 'vfat', type: 'efi', fromDir: efi, label: 'EFI', name: 'EFI system partition' },
      { fs: 'ext4', fromDir: tree, label: 'root', name: 'root' },
    ],
  });
  fs.renameSync(tmp, base);
  const info = { diskSize, layout, treeBytes, treeFiles: real.files + dev.files, built: new Date().toISOString() };
  fs.writeFileSync(stamp, JSON.stringify(info, null, 2));
  fs.rmSync(efi, { recursive: true, force: true });
  // The tree is not needed any more: the disk holds it.
  fs.rmSync(tree, { recursive: true, force: true });
  return { base, info };
}

module.exports = { buildBaseDisk, copyRealFiles };
