// The contract every filesystem reader of snapshots (ImageFs: ext2/3/4, FAT, NTFS) keeps, checked the same
// way on each, against the tree its image was made from by the real tools (mke2fs -d, mkfs.vfat +
// mcopy, mkntfs + cp through ntfs-3g): the same paths, types, sizes and bytes (whole, by range, streamed), directories sorted and
// listed alike, and DevsnapErrors (never another exception) for what does not exist or is not a file.
// A reader added later joins by adding its row to FORMATS.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, fileReader, FsImageOptions, isRoot, makeFsImage, tmpDir } from '../../helpers/disks';
import { compareNames, ImageFs, joinPath, openImageFs } from '../../../imaging/filesystems/image-fs/index';
import { DevsnapError } from '../../../imaging/core/errors';

after(cleanup);
const MiB = 1 << 20;
const work = tmpDir('devsnap-fscontract-');

/** The source tree: sizes around block boundaries, a long name, nested folders, an empty file and folder. */
function makeTree(dir: string, links: boolean): void {
  const put = (p: string, data: Buffer) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data);
  };
  put('empty.txt', Buffer.alloc(0));
  put('one.txt', Buffer.from('x'));
  for (const n of [511, 512, 4095, 4096, 4097, 65537]) put(`sizes/file-${n}.bin`, crypto.randomBytes(n));
  put('sizes/big.bin', crypto.randomBytes(MiB + 3));
  put('A Long File Name for the Reader Contract.txt', Buffer.from('long names are kept\n'));
  put('deep/er/and/deeper/leaf.conf', Buffer.from('leaf\n'));
  fs.mkdirSync(path.join(dir, 'empty-dir'));
  if (links) {
    fs.symlinkSync('one.txt', path.join(dir, 'link-to-one'));
    fs.symlinkSync('deep/er', path.join(dir, 'link-to-dir'));
  }
}

interface Format {
  name: string;
  image: Omit<FsImageOptions, 'fromDir'>;
  symlinks: boolean;
  /** Made through a mount (root only). */
  root?: boolean;
}

const FORMATS: Format[] = [
  { name: 'ext4, 4 KiB blocks', image: { fs: 'ext4', size: 16 * MiB }, symlinks: true },
  { name: 'ext4, 1 KiB blocks', image: { fs: 'ext4', size: 16 * MiB, blockSize: 1024 }, symlinks: true },
  { name: 'ext2 (indirect blocks)', image: { fs: 'ext2', size: 16 * MiB }, symlinks: true },
  { name: 'FAT16', image: { fs: 'vfat', size: 16 * MiB, fatBits: 16 }, symlinks: false },
  { name: 'FAT32, 512-byte clusters', image: { fs: 'vfat', size: 40 * MiB, fatBits: 32, blockSize: 512 }, symlinks: false },
  { name: 'NTFS, 4 KiB clusters', image: { fs: 'ntfs', size: 16 * MiB }, symlinks: true, root: true },
  { name: 'NTFS, 512-byte clusters', image: { fs: 'ntfs', size: 16 * MiB, blockSize: 512 }, symlinks: true, root: true },
];

/** Every path of a tree (not following links), with its lstat. */
function sourceEntries(dir: string, rel = '/'): Map<string, fs.Stats> {
  const out = new Map<string, fs.Stats>();
  for (const name of fs.readdirSync(path.join(dir, rel))) {
    const p = joinPath(rel, name);
    const st = fs.lstatSync(path.join(dir, p));
    out.set(p, st);
    if (st.isDirectory()) for (const [k, v] of sourceEntries(dir, p)) out.set(k, v);
  }
  return out;
}

const isDevsnapError = (code?: string) => (e: unknown) => e instanceof DevsnapError && (!code || e.code === code);
const streamed = async (r: NodeJS.ReadableStream) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

for (const f of FORMATS) {
  describe(`filesystem reader contract: ${f.name}`, { skip: f.root && !isRoot ? 'needs root: mounts through ntfs-3g' : false }, () => {
    const src = path.join(work, f.name.replace(/\W+/g, '-'), 'tree');
    const image = path.join(path.dirname(src), 'fs.img');
    let ifs: ImageFs;
    let close = () => undefined as void;
    let entries: Map<string, fs.Stats>;

    it('opens the image and walks exactly the source tree, types and sizes equal', async () => {
      makeTree(src, f.symlinks);
      await makeFsImage(image, { ...f.image, fromDir: src });
      const reader = fileReader(image);
      close = () => reader.close();
      ifs = (await openImageFs(reader))!;
      assert.ok(ifs, 'the format is recognized');
      entries = sourceEntries(src);
      const walked = new Map<string, { type: string; size: number }>();
      for await (const st of ifs.walk('/')) if (st.path !== '/' && !/^\/lost\+found(\/|$)/.test(st.path)) walked.set(st.path, st);
      assert.deepEqual([...walked.keys()].sort(), [...entries.keys()].sort());
      for (const [p, st] of entries) {
        const got = walked.get(p)!;
        assert.equal(got.type, st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'file', p);
        if (st.isFile()) assert.equal(got.size, st.size, p);
      }
    });

    it('reads every file whole, by ranges (clipped at the end) and streamed, equal to the source', async () => {
      for (const [p, st] of entries) {
        if (!st.isFile()) continue;
        const want = fs.readFileSync(path.join(src, p));
        assert.ok((await ifs.readFile(p)).equals(want), `readFile ${p}`);
        for (const [pos, len] of [
          [0, 1],
          [1, 4096],
          [want.length - 1, 10],
          [want.length, 5],
          [want.length + 100, 5],
          [4095, 4098],
        ]) {
          if (pos < 0) continue;
          const got = await ifs.read(p, pos, len);
          assert.ok(got.equals(want.subarray(pos, pos + len)), `read ${p} [${pos}, +${len})`);
        }
        assert.ok((await streamed(ifs.createReadStream(p, { blockSize: 4096 }))).equals(want), `stream ${p}`);
        const start = Math.floor(want.length / 3);
        const end = Math.floor((2 * want.length) / 3);
        assert.ok((await streamed(ifs.createReadStream(p, { start, end }))).equals(want.subarray(start, end)), `stream range ${p}`);
      }
    });

    it('lists directories sorted, readdir and list agreeing, each entry at its own path', async () => {
      for (const [p, st] of [['/', null] as const, ...entries]) {
        if (st && !st.isDirectory()) continue;
        const names = (await ifs.readdir(p)).map((e) => e.name).filter((n) => !(p === '/' && n === 'lost+found'));
        assert.deepEqual(names, [...names].sort(compareNames), `readdir ${p} sorted`);
        assert.deepEqual(names, fs.readdirSync(path.join(src, p)).sort(compareNames), `readdir ${p}`);
        const listed = (await ifs.list(p)).filter((e) => !(p === '/' && e.name === 'lost+found'));
        assert.deepEqual(
          listed.map((e) => e.name),
          names,
          `list ${p}`,
        );
        for (const e of listed) assert.equal(e.path, joinPath(p, e.name));
      }
    });

    it('answers what is missing or of the wrong kind with a DevsnapError', async () => {
      await assert.rejects(ifs.stat('/no/such/file'), isDevsnapError('NOT_FOUND'));
      assert.equal(await ifs.tryStat('/no-such-file'), null);
      await assert.rejects(ifs.readFile('/no-such-file'), isDevsnapError('NOT_FOUND'));
      await assert.rejects(ifs.stat('/one.txt/below'), isDevsnapError());
      await assert.rejects(ifs.readdir('/one.txt'), isDevsnapError());
      await assert.rejects(ifs.readFile('/deep'), isDevsnapError());
      await assert.rejects(ifs.readlink('/one.txt'), isDevsnapError());
    });

    if (f.symlinks) {
      it('keeps symbolic links: lstat-like stat, their target, and reads through them', async () => {
        const l = await ifs.stat('/link-to-one');
        assert.equal(l.type, 'symlink');
        assert.equal(await ifs.readlink('/link-to-one'), 'one.txt');
        assert.equal((await ifs.readFile('/link-to-one')).toString(), 'x');
        assert.deepEqual(
          (await ifs.readdir('/link-to-dir')).map((e) => e.name),
          ['and'],
        );
      });
    }

    after(() => close());
  });
}
