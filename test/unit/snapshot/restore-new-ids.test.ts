// `restore --new-ids`: a copy that lives beside the original. A GPT disk (EFI vfat, ext4 root whose
// /etc/fstab and grub.cfg name every filesystem by UUID and one by PARTUUID, swap, NTFS) restored
// with --new-ids: no UUID or GUID of the copy equals the source's (blkid, sfdisk), every UUID and
// PARTUUID the restored /etc/fstab names exists on the copy, grub.cfg on the root and on the EFI
// partition name the new root, and every filesystem passes its fsck. Also onto a smaller disk.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, fsck, isRoot, makeDisk, readLayout, sh, tmpDir, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

const MiB = 1 << 20;
after(cleanup);

interface Ids {
  disk: string;
  parts: { index: number; partuuid: string; uuid: string; type: string }[];
}

/** The disk's GUID, and each partition's PARTUUID and filesystem UUID and type, as blkid and sfdisk see them. */
function idsOf(img: string): Ids {
  const t = JSON.parse(sh('sfdisk', ['-J', img]).stdout).partitiontable;
  const parts = readLayout(img).map((p, i) => {
    const loop = attachLoop(img, { offset: p.start, sizeLimit: p.size, readOnly: true });
    try {
      const kv = Object.fromEntries(
        sh('blkid', ['-p', '-o', 'export', loop], { allowFail: true })
          .stdout.split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      return { index: p.index, partuuid: String(t.partitions[i].uuid).toLowerCase(), uuid: kv.UUID ?? '', type: kv.TYPE ?? '' };
    } finally {
      detachLoop(loop);
    }
  });
  return { disk: String(t.id).toLowerCase(), parts };
}

test('--new-ids: no id of the copy equals the source, every id its fstab names exists on it, boot files follow', { skip: !isRoot && 'needs root (loop devices, mount, tune2fs)' }, async () => {
  const dir = tmpDir('devsnap-newids-');
  const src = path.join(dir, 'disk.img');
  await makeDisk(src, {
    table: 'gpt',
    size: 320 * MiB,
    partitions: [
      { fs: 'vfat', size: 32 * MiB, label: 'EFI', name: 'EFI system partition' },
      { fs: 'ext4', size: 160 * MiB, label: 'root', name: 'root' },
      { fs: 'none', size: 16 * MiB, type: 'swap', name: 'swap' },
      { fs: 'ntfs', label: 'DATA', name: 'data' },
    ],
  });
  // The swap, and a root whose boot files name everything by id, as an installer writes them.
  const layout = readLayout(src);
  const swapLoop = attachLoop(src, { offset: layout[2].start, sizeLimit: layout[2].size });
  sh('mkswap', ['-q', swapLoop]);
  detachLoop(swapLoop);
  const before = idsOf(src);
  const [efi, root, swap, data] = before.parts;
  const rootLoop = attachLoop(src, { offset: layout[1].start, sizeLimit: layout[1].size });
  await withMount(rootLoop, 'ext', {}, (mnt) => {
    fs.mkdirSync(path.join(mnt, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(mnt, 'boot', 'grub'), { recursive: true });
    fs.writeFileSync(
      path.join(mnt, 'etc', 'fstab'),
      [
        `UUID=${root.uuid} / ext4 errors=remount-ro 0 1`,
        `UUID=${efi.uuid} /boot/efi vfat umask=0077 0 1`,
        `UUID=${swap.uuid} none swap sw 0 0`,
        `PARTUUID=${data.partuuid} /data ntfs-3g defaults 0 0`,
        `UUID=${data.uuid} /data2 ntfs-3g defaults 0 0`,
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(mnt, 'boot', 'grub', 'grub.cfg'), `search --no-floppy --fs-uuid --set=root ${root.uuid}\nlinux /boot/vmlinuz root=UUID=${root.uuid} ro resume=UUID=${swap.uuid}\n`);
  });
  detachLoop(rootLoop);
  // The EFI partition's grub.cfg (as Debian's shim/grub install writes it), through mtools.
  const efiLoop = attachLoop(src, { offset: layout[0].start, sizeLimit: layout[0].size });
  const stub = path.join(dir, 'grub.cfg');
  fs.writeFileSync(stub, `search.fs_uuid ${root.uuid} root hd0,gpt2\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n`);
  sh('mmd', ['-i', efiLoop, '::/EFI', '::/EFI/debian'], { env: { MTOOLS_SKIP_CHECK: '1' } });
  sh('mcopy', ['-i', efiLoop, stub, '::/EFI/debian/grub.cfg'], { env: { MTOOLS_SKIP_CHECK: '1' } });
  detachLoop(efiLoop);

  const repo = path.join(dir, 'repo');
  let r = devsnap(['snapshot', src, '--repo', repo, '--json']);
  assert.equal(r.status, 0, r.stderr);

  for (const [name, size] of [
    ['same size', 320 * MiB],
    ['smaller', 260 * MiB],
  ] as const) {
    const target = path.join(dir, `copy-${size}.img`);
    sh('sh', ['-c', `head -c ${size} /dev/urandom > '${target}'`]);
    const dev = attachLoop(target);
    r = devsnap(['restore', 'latest', dev, '--repo', repo, '--yes', '--new-ids', '--json']);
    detachLoop(dev);
    assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.deepEqual(r.json.newIds.warnings, [], name);
    const after_ = idsOf(target);

    // Nothing of the copy is the source's.
    assert.notEqual(after_.disk, before.disk, `${name}: disk GUID`);
    const old = new Set([before.disk, ...before.parts.flatMap((p) => [p.partuuid, p.uuid.toLowerCase()])]);
    for (const p of after_.parts) {
      assert.equal(p.type, before.parts[p.index - 1].type, `${name}: partition ${p.index} keeps its filesystem`);
      assert.ok(!old.has(p.partuuid), `${name}: partition ${p.index} PARTUUID ${p.partuuid} is the source's`);
      assert.ok(p.uuid && !old.has(p.uuid.toLowerCase()), `${name}: partition ${p.index} UUID ${p.uuid} is the source's`);
    }
    // Every id the copy's boot files name exists on the copy.
    const tl = readLayout(target);
    const copyRoot = attachLoop(target, { offset: tl[1].start, sizeLimit: tl[1].size, readOnly: true });
    const { fstab, grub } = await withMount(copyRoot, 'ext', { readOnly: true }, (mnt) => ({
      fstab: fs.readFileSync(path.join(mnt, 'etc', 'fstab'), 'utf8'),
      grub: fs.readFileSync(path.join(mnt, 'boot', 'grub', 'grub.cfg'), 'utf8'),
    }));
    assert.ok(fsck('ext4', copyRoot).ok, `${name}: e2fsck`);
    detachLoop(copyRoot);
    const named = [...fstab.matchAll(/^(PARTUUID|UUID)=(\S+)/gm)].map((m) => [m[1], m[2]] as const);
    assert.equal(named.length, 5, fstab);
    for (const [kind, id] of named) {
      const found = after_.parts.some((p) => (kind === 'UUID' ? p.uuid.toLowerCase() : p.partuuid) === id.toLowerCase());
      assert.ok(found, `${name}: /etc/fstab names ${kind}=${id}, which is not on the copy:\n${fstab}`);
    }
    const newRoot = after_.parts[1].uuid;
    assert.ok(grub.includes(`root=UUID=${newRoot}`) && !grub.includes(root.uuid), `${name}: grub.cfg:\n${grub}`);
    const copyEfi = attachLoop(target, { offset: tl[0].start, sizeLimit: tl[0].size, readOnly: true });
    const espCfg = sh('mtype', ['-i', copyEfi, '::/EFI/debian/grub.cfg'], { env: { MTOOLS_SKIP_CHECK: '1' } }).stdout;
    assert.ok(espCfg.includes(`search.fs_uuid ${newRoot} `), `${name}: the EFI grub.cfg:\n${espCfg}`);
    assert.ok(fsck('vfat', copyEfi).ok, `${name}: fsck.vfat`);
    detachLoop(copyEfi);
    const copyData = attachLoop(target, { offset: tl[3].start, sizeLimit: tl[3].size, readOnly: true });
    assert.ok(fsck('ntfs', copyData).ok, `${name}: ntfsfix`);
    detachLoop(copyData);
    const v = sh('sfdisk', ['-V', target], { allowFail: true });
    assert.equal(v.status, 0, `${name}: sfdisk -V: ${v.stdout}${v.stderr}`);
  }
});
