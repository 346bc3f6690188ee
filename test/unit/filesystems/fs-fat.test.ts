// readFat against FAT12/16/32 images made by mkfs.vfat and filled with mtools: used clusters must
// match fsck.fat's count, every cluster of every file (mshowfat) must be marked, and the reserved
// area, FATs, root directory and tail must be marked used.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readFat } from '../../../imaging/filesystems/fat/used-blocks';
import { detectFilesystem } from '../../../imaging/filesystems/detect';
import type { UsedBlocks } from '../../../imaging/filesystems/types';
import { cleanup, diffDigests, fileReader, fsck, makeFsImage, seededBytes, sh, tmpDir, treeDigest, vfatTreeDigest } from '../../helpers/disks';

const work = tmpDir('devsnap-fat-');
after(cleanup);
const MiB = 1 << 20;

/** A plain tree FAT can hold: nested dirs, empty, tiny and multi-cluster files. */
function fatTree(dir: string, files: number, maxSize: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < files; i++) {
    const rel = `dir${i % 4}/sub${i % 3}/file${i}.bin`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), seededBytes(i, i === 0 ? 0 : (i * 7919) % maxSize));
    names.push(rel);
  }
  return names;
}

interface FsckInfo {
  dataStart: number;
  clusterBytes: number;
  dataClusters: number;
  usedClusters: number;
}

function fsckInfo(img: string): FsckInfo {
  const out = sh('fsck.vfat', ['-n', '-v', img]).stdout;
  const num = (re: RegExp): number => Number(re.exec(out)![1]);
  return {
    dataStart: num(/Data area starts at byte (\d+)/),
    clusterBytes: num(/(\d+) bytes per cluster/),
    dataClusters: num(/(\d+) data clusters/),
    usedClusters: num(/files, (\d+)\/\d+ clusters/),
  };
}

const isSet = (u: UsedBlocks, i: number): boolean => (u.bitmap[i >> 3] & (1 << (i & 7))) !== 0;
const countSet = (u: UsedBlocks, from: number, to: number): number => {
  let n = 0;
  for (let i = from; i < to; i++) if (isSet(u, i)) n++;
  return n;
};

for (const [bits, size, files, maxSize] of [
  [12, 2 * MiB, 30, 40_000],
  [16, 32 * MiB, 80, 300_000],
  [32, 64 * MiB, 120, 300_000],
] as const) {
  test(`FAT${bits}: used clusters match fsck.fat and cover every file`, async () => {
    const src = path.join(work, `src${bits}`);
    const names = fatTree(src, files, maxSize);
    const img = path.join(work, `fat${bits}.img`);
    await makeFsImage(img, { fs: 'vfat', size, fatBits: bits, label: `FAT${bits}TEST`, fromDir: src });
    const tail = 5 * 512 + 100; // partition larger than the filesystem
    fs.truncateSync(img, size + tail);

    const r = fileReader(img);
    const u = await readFat(r);
    r.close();
    assert.ok(u);
    assert.equal(u.fs, 'vfat');
    assert.equal(sh('blkid', ['-p', '-o', 'value', '-s', 'VERSION', img]).stdout.trim(), `FAT${bits}`);
    assert.equal(u.label, sh('blkid', ['-p', '-o', 'value', '-s', 'LABEL_FATBOOT', img]).stdout.trim());
    assert.equal(u.uuid, sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).stdout.trim());

    const f = fsckInfo(img);
    assert.equal(f.dataStart % u.blockSize, 0);
    assert.equal(f.clusterBytes % u.blockSize, 0);
    const per = f.clusterBytes / u.blockSize;
    const dataBit = f.dataStart / u.blockSize;
    const endBit = dataBit + f.dataClusters * per;
    const totalBits = Math.ceil((size + tail) / u.blockSize);
    assert.equal(countSet(u, 0, dataBit), dataBit, 'reserved sectors, FATs and root directory are used');
    assert.equal(countSet(u, endBit, totalBits), totalBits - endBit, 'tail past the last cluster is used');
    assert.equal(countSet(u, dataBit, endBit), f.usedClusters * per, 'used clusters = fsck.fat');
    assert.equal(u.usedBytes, countSet(u, 0, totalBits) * u.blockSize);

    // mshowfat lists each file's clusters, e.g. ::/a/b <3-5><9>
    const shown = sh('mshowfat', ['-i', img, ...names.map((n) => `::/${n}`)], { env: { MTOOLS_SKIP_CHECK: '1' } }).stdout;
    const clusters = [...shown.matchAll(/<(\d+)(?:-(\d+))?>/g)].flatMap((m) => {
      const out: number[] = [];
      for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
      return out;
    });
    assert.ok(clusters.length > files / 2, `mshowfat listed only ${clusters.length} clusters`);
    const unmarked = clusters.filter((c) => !isSet(u, dataBit + (c - 2) * per) || !isSet(u, dataBit + (c - 1) * per - 1));
    assert.deepEqual(unmarked, []);
    assert.equal((await detectFilesystem(fileReader(img)))?.fs, 'vfat');
  });
}

test('FAT32 with big clusters and data area not cluster-aligned', async () => {
  const img = path.join(work, 'fat32b.img');
  // -a: no alignment, -R 33: odd reserved sector count, so the data area starts mid-cluster.
  await makeFsImage(img, { fs: 'vfat', size: 300 * MiB, fatBits: 32, blockSize: 8192, mkfsArgs: ['-a', '-R', '33'] });
  const u = await readFat(fileReader(img));
  assert.ok(u);
  const f = fsckInfo(img);
  assert.notEqual(f.dataStart % f.clusterBytes, 0);
  assert.equal(u.usedBytes, f.dataStart + f.usedClusters * f.clusterBytes + (300 * MiB - f.dataStart - f.dataClusters * f.clusterBytes));
});

test('not FAT: returns null', async () => {
  const img = path.join(work, 'other.img');
  await makeFsImage(img, { fs: 'none', size: MiB });
  assert.equal(await readFat(fileReader(img)), null);
  await makeFsImage(img, { fs: 'ext4', size: 4 * MiB });
  assert.equal(await readFat(fileReader(img)), null);
});

test('fixture check: a FAT image filled by makeFsImage digests like its source', async () => {
  const src = path.join(work, 'digest-src');
  fatTree(src, 12, 20_000);
  const img = path.join(work, 'digest.img');
  await makeFsImage(img, { fs: 'vfat', size: 8 * MiB, fromDir: src });
  assert.equal(fsck('vfat', img).ok, true);
  assert.equal(diffDigests(treeDigest(src, { fields: [] }), vfatTreeDigest(img, { fields: [] })), '');
});
