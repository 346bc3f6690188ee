// readNtfs against volumes made by mkntfs (and filled through ntfs-3g when root): allocated clusters must
// match ntfsinfo, every cluster holding file data must be marked, the backup boot sector must be marked.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { readNtfs } from '../../../imaging/filesystems/ntfs/used-blocks';
import { detectFilesystem } from '../../../imaging/filesystems/detect';
import type { UsedBlocks } from '../../../imaging/filesystems/types';
import { cleanup, fileReader, isRoot, makeFsImage, seededBytes, sh, tmpDir } from '../../helpers/disks';

const work = tmpDir('devsnap-ntfs-');
after(cleanup);
const MiB = 1 << 20;

const isSet = (u: UsedBlocks, i: number): boolean => (u.bitmap[i >> 3] & (1 << (i & 7))) !== 0;

async function read(img: string): Promise<UsedBlocks> {
  const r = fileReader(img);
  try {
    const u = await readNtfs(r);
    assert.ok(u, 'readNtfs found no NTFS');
    return u;
  } finally {
    r.close();
  }
}

/** Volume geometry from ntfsinfo; allocated clusters from ntfscluster's free-space count (ntfsinfo's own "Allocated clusters" is not the bitmap count). */
function ntfsinfo(img: string): { clusterSize: number; clusters: number; allocated: number } {
  const info = sh('ntfsinfo', ['-m', img]).stdout;
  const stats = sh('ntfscluster', ['-i', img]).stdout;
  const num = (out: string, re: RegExp): number => Number(re.exec(out)![1]);
  const clusterSize = num(info, /Cluster Size: (\d+)/);
  const clusters = num(info, /Volume Size in Clusters: (\d+)/);
  const free = num(stats, /bytes of free space\s*: (\d+)/);
  return { clusterSize, clusters, allocated: clusters - free / clusterSize };
}

/** Common checks: identity from blkid, set bits = ntfsinfo's allocated clusters + the area past the last cluster. */
function checkVolume(u: UsedBlocks, img: string): void {
  const info = ntfsinfo(img);
  const size = fs.statSync(img).size;
  assert.equal(u.fs, 'ntfs');
  assert.equal(u.blockSize, info.clusterSize);
  assert.equal(u.label, sh('blkid', ['-p', '-o', 'value', '-s', 'LABEL', img]).stdout.trim() || undefined);
  assert.equal(u.uuid, sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).stdout.trim());
  const bits = Math.ceil(size / u.blockSize);
  for (let c = info.clusters; c < bits; c++) assert.ok(isSet(u, c), `cluster ${c} (past the volume, backup boot sector) not marked`);
  assert.ok(isSet(u, Math.floor((size - 512) / u.blockSize)), 'backup boot sector not marked');
  assert.equal(u.usedBytes, (info.allocated + bits - info.clusters) * u.blockSize);
}

for (const clusterSize of [4096, 512, 65536]) {
  test(`empty NTFS with ${clusterSize}-byte clusters`, async () => {
    const img = path.join(work, `empty-${clusterSize}.img`);
    await makeFsImage(img, { fs: 'ntfs', size: 40 * MiB + 512 * 3, blockSize: clusterSize, label: 'Data Disk' });
    const u = await read(img);
    checkVolume(u, img);
    assert.equal(u.label, 'Data Disk');
    assert.equal((await detectFilesystem(fileReader(img)))?.fs, 'ntfs');
  });
}

test('filled NTFS: every cluster holding file data is marked', { skip: !isRoot && 'needs root (mounts through ntfs-3g on a loop device)' }, async () => {
  const src = path.join(work, 'src');
  const chunks = new Set<string>();
  const cluster = 4096;
  for (let i = 0; i < 40; i++) {
    const data = seededBytes(500 + i, 3 * cluster + ((i * 7919) % 300_000));
    fs.mkdirSync(path.join(src, `d${i % 5}`), { recursive: true });
    fs.writeFileSync(path.join(src, `d${i % 5}`, `f${i}.bin`), data);
    for (let off = 0; off + cluster <= data.length; off += cluster) chunks.add(hash(data.subarray(off, off + cluster)));
  }
  fs.writeFileSync(path.join(src, 'small.txt'), 'resident data lives in the MFT record\n');
  const img = path.join(work, 'filled.img');
  await makeFsImage(img, { fs: 'ntfs', size: 64 * MiB, blockSize: cluster, label: 'filled', fromDir: src });
  assert.ok(sh('ntfsfix', ['-n', img], { allowFail: true }).status === 0, 'ntfsfix -n reports problems');

  const u = await read(img);
  checkVolume(u, img);
  const r = fileReader(img);
  let found = 0;
  const unmarked: number[] = [];
  try {
    for (let c = 0; c * cluster < r.size; c++) {
      if (!chunks.has(hash(await r.read(c * cluster, cluster)))) continue;
      found++;
      if (!isSet(u, c)) unmarked.push(c);
    }
  } finally {
    r.close();
  }
  assert.ok(found >= chunks.size, `found ${found} of ${chunks.size} file clusters in the image`);
  assert.deepEqual(unmarked.slice(0, 10), []);
});

test('not NTFS: returns null', async () => {
  const img = path.join(work, 'other.img');
  await makeFsImage(img, { fs: 'vfat', size: 4 * MiB });
  assert.equal(await readNtfs(fileReader(img)), null);
});

function hash(b: Buffer): string {
  return crypto.createHash('sha1').update(b).digest('hex');
}
