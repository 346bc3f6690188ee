// readExt against filesystems made by mke2fs: the bitmap must equal libext2fs's own view of which
// blocks are in use (dumpe2fs), every block of every file must be marked, and the area past the
// filesystem's end must be marked used.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readExt } from '../../../imaging/filesystems/ext/used-blocks';
import { detectFilesystem } from '../../../imaging/filesystems/detect';
import type { UsedBlocks } from '../../../imaging/filesystems/types';
import { cleanup, diffDigests, ext4TreeDigest, fileReader, fsck, isRoot, makeFsImage, makeWorkstationTree, sh, simulateUpgrade, tmpDir, treeDigest, type FsImageOptions } from '../../helpers/disks';

const work = tmpDir('devsnap-ext-');
const tree = path.join(work, 'tree');
makeWorkstationTree(tree, { scale: 3 << 20 });
after(cleanup);

const MiB = 1 << 20;

interface Dump {
  blockSize: number;
  blockCount: number;
  freeCount: number;
  free: Set<number>;
  uuid: string;
  label?: string;
  uninitGroups: number;
}

/** libext2fs's view of the filesystem (dumpe2fs reconstructs BLOCK_UNINIT groups itself). */
function dumpe2fs(img: string): Dump {
  const out = sh('dumpe2fs', [img]).stdout;
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(out)?.[1].trim() ?? '';
  const free = new Set<number>();
  for (const m of out.matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const range of m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const [a, b] = range.split('-').map(Number);
      for (let i = a; i <= (b ?? a); i++) free.add(i);
    }
  }
  const label = field('Filesystem volume name');
  return {
    blockSize: Number(field('Block size')),
    blockCount: Number(field('Block count')),
    freeCount: Number(field('Free blocks')),
    free,
    uuid: field('Filesystem UUID'),
    label: label === '<none>' ? undefined : label,
    uninitGroups: (out.match(/BLOCK_UNINIT/g) ?? []).length,
  };
}

const isSet = (u: UsedBlocks, i: number): boolean => (u.bitmap[i >> 3] & (1 << (i & 7))) !== 0;

async function read(img: string): Promise<UsedBlocks> {
  const r = fileReader(img);
  try {
    const u = await readExt(r);
    assert.ok(u, `${img}: readExt found no ext filesystem`);
    assert.equal(u.bitmap.length, Math.ceil(Math.ceil(r.size / u.blockSize) / 8));
    return u;
  } finally {
    r.close();
  }
}

/** The bitmap equals libext2fs's exactly inside the filesystem; usedBytes = (total - free) blocks. */
function assertMatchesDump(u: UsedBlocks, d: Dump, kind: UsedBlocks['fs']): void {
  assert.equal(u.fs, kind);
  assert.equal(u.blockSize, d.blockSize);
  assert.equal(u.uuid, d.uuid);
  assert.equal(u.label, d.label);
  const wrong: number[] = [];
  for (let b = 0; b < d.blockCount && wrong.length < 10; b++) if (isSet(u, b) === d.free.has(b)) wrong.push(b);
  assert.deepEqual(wrong, [], 'blocks whose used/free state differs from dumpe2fs');
  assert.equal(d.free.size, d.freeCount);
  assert.equal(u.usedBytes, (d.blockCount - d.freeCount) * d.blockSize);
}

async function build(name: string, o: FsImageOptions): Promise<string> {
  const img = path.join(work, name);
  await makeFsImage(img, o);
  return img;
}

for (const [kind, blockSize] of [
  ['ext4', 4096],
  ['ext4', 1024],
  ['ext2', 4096],
  ['ext3', 1024],
] as const) {
  test(`${kind} with ${blockSize}-byte blocks: bitmap equals dumpe2fs`, async () => {
    const img = await build(`${kind}-${blockSize}.img`, { fs: kind, size: 24 * MiB, blockSize, label: `t-${kind}`, fromDir: tree });
    const d = dumpe2fs(img);
    assertMatchesDump(await read(img), d, kind);
    assert.equal((await detectFilesystem(fileReader(img)))?.fs, kind);
    fs.rmSync(img);
  });
}

test('every block of every file is marked used', async () => {
  const img = await build('files.img', { fs: 'ext4', size: 24 * MiB, blockSize: 1024, fromDir: tree });
  const u = await read(img);
  const files = sh('find', ['.', '-type', 'f'], { cwd: tree })
    .stdout.trim()
    .split('\n')
    .map((f) => f.slice(1));
  const cmds = path.join(work, 'cmds');
  fs.writeFileSync(cmds, files.map((f) => `blocks "${f}"`).join('\n') + '\n');
  const out = sh('debugfs', ['-f', cmds, img]).stdout;
  const blocks = out
    .split('\n')
    .filter((l) => /^\d/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).map(Number));
  assert.ok(blocks.length > 1000, `only ${blocks.length} file blocks found`);
  assert.deepEqual(
    blocks.filter((b) => !isSet(u, b)),
    [],
  );
  fs.rmSync(img);
});

test('area past the filesystem end is marked used', async () => {
  const img = await build('short.img', { fs: 'ext4', size: 8 * MiB });
  fs.truncateSync(img, 8 * MiB + 3 * 4096 + 100); // partition larger than the filesystem, not block-aligned
  const u = await read(img);
  const blocks = Math.ceil(fs.statSync(img).size / u.blockSize);
  for (let b = (8 * MiB) / u.blockSize; b < blocks; b++) assert.ok(isSet(u, b), `block ${b} past the end is not marked`);
  const d = dumpe2fs(img);
  assert.equal(u.usedBytes, (d.blockCount - d.freeCount + blocks - d.blockCount) * u.blockSize);
});

test('2 GiB ext4 with mostly uninitialised groups', async () => {
  const img = await build('big.img', { fs: 'ext4', size: 2048 * MiB, fromDir: tree });
  const d = dumpe2fs(img);
  assert.ok(d.uninitGroups >= 8, `expected BLOCK_UNINIT groups, found ${d.uninitGroups}`);
  assertMatchesDump(await read(img), d, 'ext4');
  fs.rmSync(img);
});

for (const [name, mkfsArgs] of [
  ['no flex_bg, no sparse_super', ['-O', '^flex_bg,^sparse_super,^resize_inode']],
  ['sparse_super2', ['-O', 'sparse_super2', '-E', 'num_backup_sb=2']],
  ['no resize_inode, no csum (uninit flags ignored)', ['-O', '^resize_inode,^metadata_csum,^uninit_bg']],
  ['64bit off', ['-O', '^64bit']],
] as const) {
  test(`ext4 ${name}: bitmap equals dumpe2fs`, async () => {
    const img = await build('variant.img', { fs: 'ext4', size: 600 * MiB, blockSize: 1024, fromDir: tree, mkfsArgs: [...mkfsArgs] });
    assertMatchesDump(await read(img), dumpe2fs(img), 'ext4');
    fs.rmSync(img);
  });
}

test('meta_bg (not interpreted) marks everything used', async () => {
  const img = await build('metabg.img', { fs: 'ext4', size: 16 * MiB, mkfsArgs: ['-O', 'meta_bg,^resize_inode'] });
  const u = await read(img);
  assert.equal(u.usedBytes, 16 * MiB);
});

test('not ext: returns null', async () => {
  const img = await build('random.img', { fs: 'none', size: MiB });
  assert.equal(await readExt(fileReader(img)), null);
  await makeFsImage(img, { fs: 'vfat', size: 4 * MiB });
  assert.equal(await readExt(fileReader(img)), null);
});

test('fixture check: an ext4 made from the workstation tree digests like the tree; an upgrade changes it', { skip: !isRoot && 'needs root (mounts a loop device)' }, async () => {
  const img = await build('digest.img', { fs: 'ext4', size: 24 * MiB, fromDir: tree });
  assert.equal(fsck('ext4', img).ok, true);
  const src = treeDigest(tree);
  assert.match(src, /\tl\t.*-> tool\t/);
  assert.match(src, /usr\/bin\/tool-2.1\t.*hl=usr\/bin\/tool\b/);
  assert.match(src, /x\{user\.comment=0x/);
  const restored = await ext4TreeDigest(img);
  assert.equal(diffDigests(src, restored), '');
  assert.equal(restored, src);

  const copy = path.join(work, 'upgraded');
  sh('cp', ['-a', tree, copy]);
  const changes = simulateUpgrade(copy, 0.2);
  assert.ok(changes.modified > 0 && changes.added > 0 && changes.removed > 0);
  assert.notEqual(treeDigest(copy), src);
});
