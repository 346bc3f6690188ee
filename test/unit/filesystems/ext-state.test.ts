// The ext change scan (filesystems/ext/state.ts) on real filesystems made by mke2fs and changed through the real
// kernel driver. The key property, checked for every kind of change: every block in use after the change
// whose bytes differ from before is in metadata ∪ changed ∪ journalSuper ∪ journalLog, while `changed`
// stays selective. Blocks free after the change are not checked: nothing images them (a deleted file's
// freed extent leaves are rewritten by the kernel, but no state after the delete describes them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { attachLoop, cleanup, detachLoop, fileReader, isRoot, makeFsImage, onCleanup, seededBytes, sh, tmpDir, writeAt } from '../../helpers/disks';
import { readExt } from '../../../imaging/filesystems/ext/used-blocks';
import { blocksToReread, changedInodes, incomparable, readExtState, type BlockRuns, type ExtState, type Reread } from '../../../imaging/filesystems/ext/state';

after(cleanup);
const KiB = 1024;
const MiB = 1 << 20;
const needsRoot = { skip: isRoot ? false : 'needs root: loop devices and mount' };

async function stateOf(img: string): Promise<ExtState | null> {
  const r = fileReader(img);
  try {
    return await readExtState(r);
  } finally {
    r.close();
  }
}

async function mustState(img: string): Promise<ExtState> {
  const s = await stateOf(img);
  assert.ok(s, `readExtState(${path.basename(img)}) is null`);
  return s;
}

async function rereadOf(img: string, st: ExtState, changed: Uint32Array, alsoInUse?: Uint32Array): Promise<Reread> {
  const r = fileReader(img);
  try {
    return await blocksToReread(r, st, changed, alsoInUse);
  } finally {
    r.close();
  }
}

/** Mounts `img` through a loop device for fn; unmounts and detaches even when fn fails. */
async function mounted<T>(img: string, options: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dev = attachLoop(img);
  const dir = tmpDir('ext-state-mnt-');
  let isMounted = false;
  onCleanup(() => {
    if (isMounted) sh('umount', ['-l', dir], { allowFail: true });
  });
  try {
    sh('mount', ['-o', options, dev, dir]);
    isMounted = true;
    const out = await fn(dir);
    sh('umount', [dir]);
    isMounted = false;
    return out;
  } finally {
    if (isMounted) sh('umount', ['-l', dir], { allowFail: true });
    isMounted = false;
    detachLoop(dev);
  }
}

function total(runs: BlockRuns): number {
  return runs.reduce((n, [, c]) => n + c, 0);
}

function marks(blocks: number, ...sets: BlockRuns[]): Uint8Array {
  const m = new Uint8Array(blocks);
  for (const runs of sets) {
    for (const [s, c] of runs) {
      assert.ok(s >= 0 && s + c <= blocks && c > 0, `run [${s}, ${c}] lies within the ${blocks}-block filesystem`);
      m.fill(1, s, s + c);
    }
  }
  return m;
}

/** Blocks whose bytes differ between two images and that the used-block reader calls used in `afterImg`. */
async function differingUsedBlocks(beforeImg: string, afterImg: string, blockSize: number): Promise<number[]> {
  const a = fs.readFileSync(beforeImg);
  const b = fs.readFileSync(afterImg);
  const r = fileReader(afterImg);
  const used = await readExt(r).finally(() => r.close());
  assert.ok(used && !used.full && used.blockSize === blockSize);
  const out: number[] = [];
  for (let blk = 0; blk * blockSize < b.length; blk++) {
    const s = blk * blockSize;
    if (a.compare(b, s, s + blockSize, s, s + blockSize) !== 0 && used.bitmap[blk >> 3] & (1 << (blk & 7))) out.push(blk);
  }
  return out;
}

interface Change {
  /** Mount options (strictatime for the atime case). */
  options?: string;
  /** Changes the mounted filesystem; returns the inode numbers that must be reported changed. */
  mutate(dir: string): number[] | Promise<number[]>;
  /** File data or directory blocks change: some differing block is in `changed` and in no other set. */
  dataChange: boolean;
}

/**
 * Applies a change to `img` through the kernel and checks the key property against the image before it.
 * `control` is an untouched file's inode, which must not be reported.
 */
async function checkChange(img: string, c: Change, control?: number): Promise<{ before: ExtState; after: ExtState; changed: Uint32Array; rr: Reread }> {
  const before = await mustState(img);
  const beforeImg = `${img}.before`;
  sh('cp', ['--sparse=always', img, beforeImg]);
  const affected = await mounted(img, c.options ?? 'rw', c.mutate);
  const after = await mustState(img);
  assert.equal(incomparable(before, after), null);
  const changed = changedInodes(before, after);
  const set = new Set(changed);
  for (const ino of affected) assert.ok(set.has(ino), `inode ${ino} is reported changed (changed: ${[...changed].slice(0, 20).join(', ')})`);
  if (control !== undefined) assert.ok(!set.has(control), 'the untouched control file is not reported changed');

  const rr = await rereadOf(img, after, changed, before.inos);
  const all = marks(after.blocksCount, rr.metadata, rr.changed, rr.journalSuper, rr.journalLog);
  const differing = await differingUsedBlocks(beforeImg, img, after.blockSize);
  const missed = differing.filter((b) => !all[b]);
  assert.deepEqual(missed.slice(0, 20), [], `${missed.length} changed blocks in use are in no reread set`);
  assert.ok(total(rr.changed) < after.blocksCount / 4, `changed is selective (${total(rr.changed)} of ${after.blocksCount} blocks)`);
  if (c.dataChange) {
    const onlyChanged = marks(after.blocksCount, rr.changed);
    const other = marks(after.blocksCount, rr.metadata, rr.journalSuper, rr.journalLog);
    assert.ok(
      differing.some((b) => onlyChanged[b] && !other[b]),
      'some changed data block is found only through the changed inodes',
    );
  }
  fs.rmSync(beforeImg);
  return { before, after, changed, rr };
}

const ino = (p: string) => fs.statSync(p).ino;

/** A file of `n` data blocks separated by holes: one extent each, so the tree needs index and leaf blocks. */
function fragmentedFile(file: string, n: number, blockSize: number): void {
  fs.writeFileSync(file, '');
  for (let k = 0; k < n; k++) writeAt(file, 2 * k * blockSize, seededBytes(k + 1, blockSize));
}

function baseTree(dir: string): void {
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'control'), seededBytes(1, 200 * KiB));
  fs.writeFileSync(path.join(dir, 'big'), seededBytes(2, 2 * MiB));
  fs.writeFileSync(path.join(dir, 'big2'), seededBytes(3, MiB));
  fs.writeFileSync(path.join(dir, 'small'), 'hello\n');
  fs.writeFileSync(path.join(dir, 'mm'), seededBytes(4, 64 * KiB));
  fs.writeFileSync(path.join(dir, 'd', 'a'), seededBytes(5, 10 * KiB));
  fs.writeFileSync(path.join(dir, 'd', 'b'), seededBytes(6, 30 * KiB));
}

async function makeImage(kind: 'ext2' | 'ext3' | 'ext4', mkfsArgs: string[], size = 48 * MiB): Promise<string> {
  const dir = tmpDir('ext-state-');
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  baseTree(tree);
  const img = path.join(dir, `${kind}.img`);
  await makeFsImage(img, { fs: kind, size, fromDir: tree, mkfsArgs });
  return img;
}

test('an unchanged image: equal, comparable states with nothing changed; every used block is covered when all inodes count as changed', async () => {
  const img = await makeImage('ext4', ['-b', '4096', '-g', '2048']);
  const a = await mustState(img);
  const b = await mustState(img);
  assert.deepEqual(a, b);
  assert.equal(incomparable(a, b), null);
  assert.equal(changedInodes(a, b).length, 0);
  assert.ok(a.groupCount >= 6 && a.fineTimestamps && a.journalInode === 8 && a.journalClean);
  assert.ok(a.inos.includes(2) && a.inos.includes(11), 'root and lost+found are in use');
  assert.equal(a.prints.length, 2 * a.inos.length);

  const rr = await rereadOf(img, a, a.inos);
  const buf = fs.readFileSync(img);
  const js = rr.journalSuper;
  assert.equal(total(js), 1);
  assert.equal(buf.readUInt32BE(js[0][0] * a.blockSize), 0xc03b3998, 'journalSuper is the jbd2 superblock');
  // Every used block but free inode-table slots is metadata, an inode's block or the journal.
  const all = marks(a.blocksCount, rr.metadata, rr.changed, rr.journalSuper, rr.journalLog);
  const r = fileReader(img);
  const used = (await readExt(r).finally(() => r.close()))!;
  const itable = Math.ceil(((a.inodesCount / a.groupCount) * a.inodeSize) / a.blockSize);
  const tables = sh('dumpe2fs', [img])
    .stdout.match(/Inode table at (\d+)-(\d+)/g)!
    .map((m) => m.match(/\d+/g)!.map(Number));
  assert.equal(tables.length, a.groupCount);
  const inTable = (b: number) => tables.some(([s, e]) => b >= s && b <= e && e - s + 1 === itable);
  const uncovered: number[] = [];
  for (let blk = 0; blk < a.blocksCount; blk++) if (used.bitmap[blk >> 3] & (1 << (blk & 7)) && !all[blk] && !inTable(blk)) uncovered.push(blk);
  assert.deepEqual(uncovered, []);
  // With nothing changed, the special inodes' blocks are still reread: the root directory's, the resize inode's.
  const none = await rereadOf(img, a, new Uint32Array(0));
  const noneMeta = marks(a.blocksCount, none.metadata);
  for (const special of [2, 7]) {
    const blocks = sh('debugfs', ['-R', `blocks <${special}>`, img])
      .stdout.trim()
      .split(/\s+/)
      .map(Number);
    assert.ok(blocks.length > 0 && blocks.every((b) => noneMeta[b]), `inode ${special}'s blocks are metadata`);
  }
  assert.deepEqual(none.changed, []);
  assert.deepEqual([none.journalSuper, none.journalLog], [rr.journalSuper, rr.journalLog]);
  // Only the group's table blocks that hold in-use inodes are metadata.
  const meta = marks(a.blocksCount, rr.metadata);
  const tableMeta = tables.reduce((n, [s, e]) => n + meta.subarray(s, e + 1).reduce((x, v) => x + v, 0), 0);
  assert.ok(tableMeta < (tables.length * itable) / 4, `${tableMeta} inode-table blocks reread, not all ${tables.length * itable}`);
});

test('ext4: each kind of change is found through its inodes, and every changed block in use is reread', needsRoot, async (t) => {
  const img = await makeImage('ext4', ['-b', '4096', '-g', '2048']);
  const control = await mounted(img, 'ro', (dir) => ino(path.join(dir, 'control')));
  const cases: [string, Change][] = [
    [
      'a file with an extent tree of two leaves',
      {
        dataChange: true,
        mutate: (d) => {
          fragmentedFile(path.join(d, 'frag'), 400, 4096);
          // Old access times, so that the atime case below changes i_atime's seconds, not only i_atime_extra.
          for (const f of ['big', 'small']) fs.utimesSync(path.join(d, f), new Date('2001-01-01'), new Date('2001-01-01'));
          return [ino(path.join(d, 'frag')), ino(d), ino(path.join(d, 'big'))];
        },
      },
    ],
    [
      'atime only (strictatime)',
      {
        options: 'strictatime',
        dataChange: false,
        mutate: (d) => {
          fs.readFileSync(path.join(d, 'big'));
          fs.readFileSync(path.join(d, 'small'));
          return [];
        },
      },
    ],
    [
      'append',
      {
        dataChange: true,
        mutate: (d) => {
          fs.appendFileSync(path.join(d, 'big'), seededBytes(7, 10000));
          return [ino(path.join(d, 'big'))];
        },
      },
    ],
    [
      'append to the fragmented file (a new extent in a leaf)',
      {
        dataChange: true,
        mutate: (d) => {
          writeAt(path.join(d, 'frag'), 900 * 4096, seededBytes(8, 4096));
          return [ino(path.join(d, 'frag'))];
        },
      },
    ],
    [
      'overwrite in place (dd conv=notrunc)',
      {
        dataChange: true,
        mutate: (d) => {
          const src = path.join(path.dirname(img), 'src.bin');
          fs.writeFileSync(src, seededBytes(9, 8192));
          sh('dd', [`if=${src}`, `of=${path.join(d, 'big')}`, 'bs=4096', 'seek=10', 'conv=notrunc', 'status=none']);
          return [ino(path.join(d, 'big'))];
        },
      },
    ],
    [
      'truncate',
      {
        dataChange: false,
        mutate: (d) => {
          sh('truncate', ['-s', '100000', path.join(d, 'big')]);
          return [ino(path.join(d, 'big'))];
        },
      },
    ],
    [
      'fallocate',
      {
        dataChange: false,
        mutate: (d) => {
          sh('fallocate', ['-o', '200000', '-l', String(MiB), path.join(d, 'big')]);
          return [ino(path.join(d, 'big'))];
        },
      },
    ],
    [
      'punch hole',
      {
        dataChange: false,
        mutate: (d) => {
          sh('fallocate', ['-p', '-o', '8192', '-l', '32768', path.join(d, 'big2')]);
          return [ino(path.join(d, 'big2'))];
        },
      },
    ],
    [
      'mmap write',
      {
        dataChange: true,
        mutate: (d) => {
          const f = path.join(d, 'mm');
          sh('python3', ['-c', 'import mmap,sys\nf=open(sys.argv[1],"r+b")\nm=mmap.mmap(f.fileno(),0)\nm[5000:5100]=b"z"*100\nm.flush()\nm.close()', f]);
          return [ino(f)];
        },
      },
    ],
    [
      'rename over',
      {
        dataChange: true,
        mutate: (d) => {
          const a = ino(path.join(d, 'd', 'a'));
          fs.renameSync(path.join(d, 'd', 'a'), path.join(d, 'd', 'b'));
          return [a, ino(path.join(d, 'd'))];
        },
      },
    ],
    [
      'hard link',
      {
        dataChange: true,
        mutate: (d) => {
          fs.linkSync(path.join(d, 'small'), path.join(d, 'd', 'link'));
          return [ino(path.join(d, 'small')), ino(path.join(d, 'd'))];
        },
      },
    ],
    [
      'delete and create reusing the blocks',
      {
        dataChange: true,
        mutate: (d) => {
          fs.rmSync(path.join(d, 'big2'));
          sh('sync', []);
          fs.writeFileSync(path.join(d, 'new'), seededBytes(10, MiB));
          return [ino(path.join(d, 'new')), ino(d)];
        },
      },
    ],
    [
      'chmod',
      {
        dataChange: false,
        mutate: (d) => {
          fs.chmodSync(path.join(d, 'small'), 0o600);
          return [ino(path.join(d, 'small'))];
        },
      },
    ],
    [
      'setfattr, in the inode and in an xattr block',
      {
        dataChange: false,
        mutate: (d) => {
          sh('setfattr', ['-n', 'user.k', '-v', 'v', path.join(d, 'small')]);
          sh('setfattr', ['-n', 'user.big', '-v', 'x'.repeat(600), path.join(d, 'mm')]);
          return [ino(path.join(d, 'small')), ino(path.join(d, 'mm'))];
        },
      },
    ],
    [
      'a directory grown past one block into an htree',
      {
        dataChange: true,
        mutate: (d) => {
          const many = path.join(d, 'many');
          fs.mkdirSync(many);
          for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `entry-with-a-longish-name-${i}`), '');
          return [ino(many), ino(path.join(many, 'entry-with-a-longish-name-2999'))];
        },
      },
    ],
    [
      'delete a hundred files: inode-table blocks left with no inode in use',
      {
        dataChange: true,
        mutate: (d) => {
          const many = path.join(d, 'many');
          for (let i = 0; i < 100; i++) fs.rmSync(path.join(many, `entry-with-a-longish-name-${i}`));
          return [ino(many)];
        },
      },
    ],
  ];
  for (const [name, c] of cases) {
    await t.test(name, async () => {
      const r = await checkChange(img, c, control);
      if (name.startsWith('atime')) {
        assert.equal(r.changed.length, 0, 'an atime-only change reports no inode');
        assert.ok(r.after.fineTimestamps);
      }
      if (name === 'fallocate') {
        // Uninitialized extents are allocated blocks: they are reread with the file.
        const uninit = [...sh('debugfs', ['-R', 'ex /big', img]).stdout.matchAll(/(\d+)\s*-\s*(\d+)\s+\d+\s+Uninit/g)];
        assert.ok(uninit.length > 0, 'fallocate made uninitialized extents');
        const inChanged = marks(r.after.blocksCount, r.rr.changed);
        for (const [, s, e] of uninit)
          assert.ok(
            inChanged.subarray(Number(s), Number(e) + 1).every((v) => v === 1),
            `uninitialized extent ${s}-${e} is in changed`,
          );
      }
      if (name.startsWith('a directory')) assert.ok(r.changed.length >= 3001 && total(r.rr.changed) > 20, 'the new directory blocks are reread');
    });
  }
  assert.ok(sh('e2fsck', ['-fn', img], { allowFail: true }).status === 0, 'the filesystem is consistent');
});

test('the atime case can fail: strictatime really rewrote the inode bytes', needsRoot, async () => {
  const img = await makeImage('ext4', []);
  const f = await mounted(img, 'ro', (dir) => ino(path.join(dir, 'control')));
  const at = sh('debugfs', ['-R', `imap <${f}>`, img]).stdout.match(/located at block (\d+), offset 0x([0-9a-f]+)/)!;
  const pos = Number(at[1]) * 1024 + parseInt(at[2], 16);
  const before = fs.readFileSync(img).subarray(pos, pos + 256);
  await mounted(img, 'strictatime', (dir) => fs.readFileSync(path.join(dir, 'control')));
  const after = fs.readFileSync(img).subarray(pos, pos + 256);
  assert.notDeepEqual(after, before, 'the inode changed on disk');
  // Everything but i_atime (0x08), i_checksum_lo (0x7c), i_checksum_hi (0x82) and i_atime_extra (0x8c) is equal.
  for (const [from, to] of [
    [0, 0x08],
    [0x0c, 0x7c],
    [0x7e, 0x82],
    [0x84, 0x8c],
    [0x90, 256],
  ]) {
    assert.deepEqual(after.subarray(from, to), before.subarray(from, to), `bytes 0x${from.toString(16)}–0x${to.toString(16)} are unchanged`);
  }
});

test('128-byte inodes, ext2, ext3 (indirect maps) and inline_data', needsRoot, async (t) => {
  const append: Change = {
    dataChange: true,
    mutate: (d) => {
      fs.appendFileSync(path.join(d, 'big'), seededBytes(11, 300 * KiB));
      return [ino(path.join(d, 'big'))];
    },
  };
  await t.test('128-byte inodes: no fine timestamps', async () => {
    const img = await makeImage('ext4', ['-I', '128']);
    const s = await mustState(img);
    assert.equal(s.inodeSize, 128);
    assert.equal(s.fineTimestamps, false);
    await checkChange(img, append);
  });
  await t.test('ext2: no journal', async () => {
    const img = await makeImage('ext2', []);
    const s = await mustState(img);
    assert.equal(s.journalInode, 0);
    assert.equal(s.journalClean, true);
    const r = await checkChange(img, append);
    assert.deepEqual(r.rr.journalSuper, []);
    assert.deepEqual(r.rr.journalLog, []);
  });
  await t.test('ext3: indirect blocks of a grown file are reread', async () => {
    const img = await makeImage('ext3', []);
    const r = await checkChange(img, append);
    assert.equal(r.after.journalInode, 8);
    // 2.3 MiB of 1 KiB blocks needs the double-indirect block and its indirect blocks.
    assert.ok(total(r.rr.changed) > 2300, `${total(r.rr.changed)} blocks: data and indirect blocks`);
  });
  await t.test('inline_data: a small file grows out of its inode', async () => {
    const img = await makeImage('ext4', ['-O', 'inline_data']);
    // The root directory's blocks are metadata (a reserved inode): no data block is found only through `changed`.
    await checkChange(img, {
      dataChange: false,
      mutate: (d) => {
        fs.writeFileSync(path.join(d, 'tiny'), 'short');
        return [ino(path.join(d, 'tiny'))];
      },
    });
    await checkChange(img, {
      dataChange: true,
      mutate: (d) => {
        fs.appendFileSync(path.join(d, 'tiny'), seededBytes(12, 5000));
        return [ino(path.join(d, 'tiny'))];
      },
    });
  });
});

test('e2fsck or tune2fs between two states: incomparable says why', async () => {
  const img = await makeImage('ext4', []);
  sh('tune2fs', ['-C', '5', img]);
  const a = await mustState(img);
  assert.equal(a.mountCount, 5);
  sh('tune2fs', ['-C', '0', img]);
  assert.match(incomparable(a, await mustState(img))!, /mount count went down/);

  sh('tune2fs', ['-C', '5', img]);
  const b = await mustState(img);
  sh('e2fsck', ['-fy', img]);
  assert.match(incomparable(b, await mustState(img))!, /last-checked|mount count/);

  const c = await mustState(img);
  sh('tune2fs', ['-T', '20200101', img]);
  assert.match(incomparable(c, await mustState(img))!, /last-checked/);

  const other = await makeImage('ext4', []);
  assert.match(incomparable(c, await mustState(other))!, /UUID/);
  sh('tune2fs', ['-O', '^has_journal', img]);
  assert.match(incomparable(c, await mustState(img))!, /layout|last-checked/);
});

test('hostile: corrupted extent headers, extents outside the filesystem, a cycle in an indirect map', async (t) => {
  async function corrupt(kind: 'ext2' | 'ext4', file: string, damage: (img: string, ino: number) => void, why: RegExp): Promise<void> {
    const img = await makeImage(kind, kind === 'ext2' ? [] : ['-b', '4096']);
    const a = await mustState(img);
    const f = Number(sh('debugfs', ['-R', `stat ${file}`, img]).stdout.match(/Inode: (\d+)/)![1]);
    damage(img, f);
    const b = await mustState(img);
    const changed = changedInodes(a, b);
    assert.ok(changed.includes(f));
    await assert.rejects(rereadOf(img, b, changed, a.inos), (e: Error) => e.constructor === Error && why.test(e.message) && e.message.includes(`inode ${f}`));
  }
  const sif = (img: string, file: string, field: string, value: string) => sh('debugfs', ['-w', '-R', `sif ${file} ${field} ${value}`, img]);
  await t.test('bad extent magic', () => corrupt('ext4', '/small', (img) => sif(img, '/small', 'block[0]', '0x0001dead'), /bad magic/));
  await t.test('extent depth 7', () => corrupt('ext4', '/small', (img) => sif(img, '/small', 'block[1]', '0x00070004'), /depth 7/));
  await t.test('extent outside the filesystem', () => corrupt('ext4', '/big', (img) => sif(img, '/big', 'block[5]', '0x7ffffff'), /outside the filesystem/));
  await t.test('an extent leaf that fails its checksum', async () => {
    const dir = tmpDir('ext-state-');
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    fragmentedFile(path.join(tree, 'frag'), 400, 4096);
    const img = path.join(dir, 'frag.img');
    await makeFsImage(img, { fs: 'ext4', size: 32 * MiB, blockSize: 4096, fromDir: tree });
    const a = await mustState(img);
    const leaf = Number(sh('debugfs', ['-R', 'ex /frag', img]).stdout.match(/^\s*0\/\s*1\s+1\/\s*\d+\s+\d+\s*-\s*\d+\s+(\d+)/m)![1]);
    const fd = fs.openSync(img, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, leaf * 4096 + 40); // inside an extent entry
    fs.closeSync(fd);
    const b = await mustState(img);
    assert.equal(changedInodes(a, b).length, 0, 'the inode itself did not change');
    await assert.rejects(rereadOf(img, b, b.inos), /fails its checksum/);
  });
  await t.test('an inode that fails its checksum', () =>
    corrupt(
      'ext4',
      '/big',
      (img, f) => {
        const at = sh('debugfs', ['-R', `imap <${f}>`, img]).stdout.match(/located at block (\d+), offset 0x([0-9a-f]+)/)!;
        const fd = fs.openSync(img, 'r+');
        fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, Number(at[1]) * 4096 + parseInt(at[2], 16) + 0x28 + 59); // the last byte of i_block
        fs.closeSync(fd);
      },
      /fails its checksum/,
    ),
  );
  await t.test('a triple-indirect block that points at itself', () =>
    corrupt(
      'ext2',
      '/big',
      (img, f) => {
        const blk = Number(sh('debugfs', ['-R', 'ffb 1 40000', img]).stdout.match(/(\d+)\s*$/)![1]);
        const b = Buffer.alloc(1024);
        for (let o = 0; o < 1024; o += 4) b.writeUInt32LE(blk, o);
        const fd = fs.openSync(img, 'r+');
        fs.writeSync(fd, b, 0, 1024, blk * 1024);
        fs.closeSync(fd);
        sif(img, `<${f}>`, 'block[TIND]', String(blk));
      },
      /reached twice|more mapping blocks/,
    ),
  );
});

test('hostile: damaged descriptors and bitmaps, garbage and truncated input make readExtState null', async () => {
  const flip = (img: string, pos: number) => {
    const fd = fs.openSync(img, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, pos);
    b[0] ^= 0x01;
    fs.writeSync(fd, b, 0, 1, pos);
    fs.closeSync(fd);
  };
  const img = await makeImage('ext4', []);
  const s = await mustState(img);
  const gdt = (s.firstDataBlock + 1) * s.blockSize;
  flip(img, gdt + 64 + 0x0e); // group 1's free inode count: its descriptor checksum no longer holds
  assert.equal(await stateOf(img), null);
  flip(img, gdt + 64 + 0x0e);
  assert.ok(await stateOf(img));
  const bitmapAt = Number(sh('dumpe2fs', [img]).stdout.match(/Inode bitmap at (\d+)/)![1]);
  flip(img, bitmapAt * s.blockSize + 100); // group 0's inode bitmap fails its checksum
  assert.equal(await stateOf(img), null);

  const ext2 = await makeImage('ext2', []);
  const e = await mustState(ext2);
  const fd = fs.openSync(ext2, 'r+');
  const far = Buffer.alloc(4);
  far.writeUInt32LE(e.blocksCount + 5);
  fs.writeSync(fd, far, 0, 4, (e.firstDataBlock + 1) * e.blockSize + 32 + 8); // group 1's inode table, no checksum to catch it
  fs.closeSync(fd);
  assert.equal(await stateOf(ext2), null);

  const garbage = path.join(tmpDir(), 'garbage.img');
  fs.writeFileSync(garbage, seededBytes(13, 4 * MiB));
  assert.equal(await stateOf(garbage), null);
  assert.equal(await readExtState({ size: 0, read: async (_p, n) => Buffer.alloc(n) }), null);
  const head = path.join(tmpDir(), 'head.img');
  fs.writeFileSync(head, fs.readFileSync(img).subarray(0, 64 * KiB));
  assert.equal(await stateOf(head), null, 'a filesystem larger than its device');
});
