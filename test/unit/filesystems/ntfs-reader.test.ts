// NtfsImageFs (filesystems/ntfs/reader.ts) against ntfs-3g, the oracle: volumes made by mkntfs and filled
// through ntfs-3g (nested folders, a 2000-entry folder, empty/resident/large/sparse files, LZNT1-compressed
// files, fragmented files, a file whose data and one whose names spill into extension records through an
// attribute list, hard links, Interix symlinks and fifos, Windows symlinks and junctions, unicode names,
// alternate data streams), read from the image file and compared with the same image mounted read-only by
// ntfs-3g: every path, type, size, content, times, inode, link count, symlink target and xattr. Then
// damaged volumes (truncated, corrupt records and index blocks, a fuzz loop): DevsnapErrors, never a
// crash or a hang.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, diffDigests, fileReader, isRoot, memReader, makeFsImage, prng, seededBytes, sh, tmpDir, treeDigest, withLoop, withMount } from '../../helpers/disks';
import { imageFsDigest, openImageFs, type ImageFs, type ImageStat } from '../../../imaging/filesystems/image-fs/index';
import { NtfsImageFs } from '../../../imaging/filesystems/ntfs/reader';
import { lznt1Decompress } from '../../../imaging/filesystems/ntfs/lznt1';
import type { ByteReader } from '../../../imaging/filesystems/types';
import { DevsnapError } from '../../../imaging/core/errors';

after(cleanup);
const MiB = 1 << 20;
const work = tmpDir('devsnap-ntfs-reader-');
const needsRoot = { skip: isRoot ? false : 'needs root: loop devices and ntfs-3g' };

/** Compressible text: lines of words from a seeded generator. */
function words(seed: number, bytes: number): Buffer {
  const rand = prng(seed);
  const w = ['partition', 'snapshot', 'cluster', 'record', 'index', 'the', 'of', 'and', 'volume', 'stream', 'compressed'];
  const lines: string[] = [];
  for (let n = 0; n < bytes;) {
    const line = Array.from({ length: 1 + Math.floor(rand() * 9) }, () => w[Math.floor(rand() * w.length)]).join(' ') + '\n';
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join('').slice(0, bytes));
}

/** The tree copied in by makeFsImage (cp through ntfs-3g). */
function makeSource(dir: string): void {
  const put = (p: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data);
  };
  put('empty.txt', '');
  put('small.txt', 'resident data\n');
  put('docs/readme.md', words(1, 600));
  put('docs/manual.txt', words(2, 70_000));
  put('large.bin', seededBytes(3, 3 * MiB + 123));
  put('nested/a/b/c/d/leaf.txt', 'deep\n');
  put('unicode/Ünïcødé ファイル 📁.txt', 'unicode\n');
  fs.mkdirSync(path.join(dir, 'unicode', 'Ελληνικά κατάλογος'));
  put('unicode/Ελληνικά κατάλογος/ĳ.txt', 'ij\n');
  for (let i = 0; i < 2000; i++) put(`many/entry-${String(i).padStart(4, '0')}-with-a-longer-name.txt`, `entry ${i}\n`);
  const sparse = path.join(dir, 'sparse.img');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 20 * MiB);
  const fd = fs.openSync(sparse, 'r+');
  fs.writeSync(fd, seededBytes(4, 70_000), 0, 70_000, 7 * MiB + 5);
  fs.writeSync(fd, Buffer.from('end'), 0, 3, 20 * MiB - 3);
  fs.closeSync(fd);
  put('links/orig.txt', 'linked\n');
  fs.linkSync(path.join(dir, 'links/orig.txt'), path.join(dir, 'links/second.txt'));
  fs.linkSync(path.join(dir, 'links/orig.txt'), path.join(dir, 'nested/a/third.txt'));
  fs.symlinkSync('orig.txt', path.join(dir, 'links/sym'));
  fs.symlinkSync('../nested/a', path.join(dir, 'links/dirsym'));
  fs.symlinkSync('nowhere/x', path.join(dir, 'links/dangling'));
  fs.symlinkSync('/small.txt', path.join(dir, 'links/absolute'));
  // Times with sub-second parts, old and new.
  fs.utimesSync(path.join(dir, 'docs/readme.md'), new Date('2001-02-03T04:05:06.789Z'), new Date('1999-12-31T23:59:59.123Z'));
  fs.utimesSync(path.join(dir, 'large.bin'), 1_700_000_000.5, 1_600_000_000.25);
}

const u16 = (s: string) => Buffer.from(s, 'utf16le');
const u16le = (n: number) => Buffer.from([n & 0xff, n >> 8]);

/** The raw $REPARSE_POINT value of a Windows symbolic link (tag 0xA000000C) or junction (0xA0000003). */
function reparseData(kind: 'symlink' | 'junction', subst: string, print: string, relative = false): Buffer {
  const s = u16(subst);
  const p = u16(print);
  const head = Buffer.concat([u16le(0), u16le(s.length), u16le(s.length + 2), u16le(p.length)]);
  const body = Buffer.concat([head, kind === 'symlink' ? Buffer.from([relative ? 1 : 0, 0, 0, 0]) : Buffer.alloc(0), s, Buffer.alloc(2), p, Buffer.alloc(2)]);
  const tag = Buffer.alloc(4);
  tag.writeUInt32LE(kind === 'symlink' ? 0xa000000c : 0xa0000003);
  return Buffer.concat([tag, u16le(body.length), Buffer.alloc(2), body]);
}

/** What only an NTFS mount can make: compressed and fragmented files, attribute lists, streams, fifos, reparse points. */
function populate(mnt: string): void {
  const at = (p: string) => path.join(mnt, p);
  // A file filled backwards, one cluster at a time: 600 runs, more than its record holds (data in extension records).
  const rev = fs.openSync(at('backwards.bin'), 'w');
  fs.ftruncateSync(rev, 600 * 4096);
  for (let k = 599; k >= 0; k--) fs.writeSync(rev, seededBytes(100 + k, 4096), 0, 4096, k * 4096);
  fs.closeSync(rev);
  // A non-sparse fragmented file: fill the volume, free every other file, write into the holes.
  fs.mkdirSync(at('fill'));
  const block = seededBytes(5, 16384);
  let n = 0;
  try {
    for (; n < 100_000; n++) fs.writeFileSync(at(`fill/${n}`), block);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  for (let i = 0; i < n; i += 2) fs.rmSync(at(`fill/${i}`), { force: true });
  fs.writeFileSync(at('fragmented.bin'), seededBytes(6, 2 * MiB + 77));
  fs.rmSync(at('fill'), { recursive: true, force: true });
  // 120 hard links: the names spill into extension records too.
  fs.mkdirSync(at('hardlinks'));
  fs.writeFileSync(at('hardlinks/target'), 'many names\n');
  for (let i = 0; i < 120; i++) fs.linkSync(at('hardlinks/target'), at(`hardlinks/another-rather-long-name-for-the-same-file-${i}`));
  // Compressed files: the folder's compression flag makes new files in it compressed (ntfs-3g's default "compression").
  fs.mkdirSync(at('compressed'));
  sh('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', at('compressed')]);
  fs.writeFileSync(at('compressed/text.txt'), words(7, MiB + 17));
  fs.writeFileSync(at('compressed/random.bin'), seededBytes(8, 200_000)); // incompressible: units stored as they are
  fs.writeFileSync(at('compressed/holes.bin'), Buffer.concat([words(9, 65536), Buffer.alloc(256 * 1024), words(10, 70_000)]));
  fs.writeFileSync(at('compressed/tiny.txt'), 'tiny\n');
  fs.appendFileSync(at('compressed/text.txt'), words(11, 5000)); // a partial last unit rewritten
  // Alternate data streams (shown as user.* xattrs), a fifo, Windows reparse points.
  sh('setfattr', ['-n', 'user.Zone.Identifier', '-v', '[ZoneTransfer]\r\nZoneId=3\r\n', at('small.txt')]);
  sh('setfattr', ['-n', 'user.note', '-v', 'on a folder', at('docs')]);
  fs.mkdirSync(at('special'));
  sh('mkfifo', [at('special/fifo')]);
  fs.mkdirSync(at('reparse'));
  fs.writeFileSync(at('reparse/winlink'), '');
  sh('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + reparseData('symlink', '..\\links\\orig.txt', '..\\links\\orig.txt', true).toString('hex'), at('reparse/winlink')]);
  fs.mkdirSync(at('reparse/junction'));
  sh('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + reparseData('junction', '\\??\\C:\\nested\\a', 'C:\\nested\\a').toString('hex'), at('reparse/junction')]);
  fs.writeFileSync(at('reparse/wof'), '');
  const wof = Buffer.concat([Buffer.from([0x17, 0, 0, 0x80]), u16le(16), Buffer.alloc(2), Buffer.alloc(16, 1)]);
  sh('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + wof.toString('hex'), at('reparse/wof')]);
}

/** lstat of every path under a mount, root first. */
function mountEntries(mnt: string): Map<string, fs.BigIntStats> {
  const out = new Map<string, fs.BigIntStats>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(mnt, rel))) {
      const r = `${rel}/${name}`;
      const st = fs.lstatSync(path.join(mnt, r), { bigint: true });
      out.set(r, st);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function typeOf(st: fs.BigIntStats): [string, string?] {
  if (st.isDirectory()) return ['dir'];
  if (st.isFile()) return ['file'];
  if (st.isSymbolicLink()) return ['symlink'];
  return ['other', st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'unknown'];
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
async function streamed(ifs: ImageFs, p: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of ifs.createReadStream(p)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
/** ms (fractional) → ns, for comparing with lstat's bigint times (ours are exact to 100 ns; a double of ms is not quite). */
const nsOf = (ms: number) => BigInt(Math.round(ms * 1e6));
const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) < 1000n;

/** Reparse points ntfs-3g shows differently on purpose (see reader.ts): checked on their own. */
const OWN_WAY = new Set(['/reparse/junction', '/reparse/wof']);

/**
 * Walks `img` with NtfsImageFs and compares every entry with ntfs-3g's view of it (the same image mounted
 * read-only): paths, types, sizes, contents, times to 1 µs, inodes, link counts, targets and, through
 * the tree digests, xattrs.
 */
async function compareWithNtfs3g(img: string, check?: (ifs: ImageFs, mnt: string) => Promise<void>): Promise<{ entries: number }> {
  const r = fileReader(img);
  try {
    const ifs = await openImageFs(r);
    assert.ok(ifs, 'NTFS recognized');
    assert.equal(ifs.fs, 'ntfs');
    const ours = new Map<string, ImageStat>();
    for await (const st of ifs.walk('/')) ours.set(st.path, st);
    return await withLoop(img, { readOnly: true }, (dev) =>
      withMount(dev, 'ntfs', { readOnly: true }, async (mnt) => {
        const theirs = mountEntries(mnt);
        assert.deepEqual([...ours.keys()].filter((p) => p !== '/').sort(), [...theirs.keys()].sort());
        for (const [p, want] of theirs) {
          if (OWN_WAY.has(p)) continue;
          const got = ours.get(p)!;
          const [type, special] = typeOf(want);
          assert.equal(got.type, type, `${p} type`);
          assert.equal(got.special, special, `${p} special`);
          assert.equal(got.size, Number(want.size), `${p} size`);
          assert.equal(got.ino, Number(want.ino), `${p} ino`);
          assert.equal(got.nlink, Number(want.nlink), `${p} nlink`);
          assert.equal(got.mode, Number(want.mode & 0o7777n), `${p} mode`);
          assert.equal(`${got.uid}:${got.gid}`, `${want.uid}:${want.gid}`, `${p} owner`);
          for (const t of ['mtime', 'atime', 'ctime'] as const) assert.ok(near(nsOf(got[t]), want[`${t}Ns`]), `${p} ${t}: ${nsOf(got[t])} vs ${want[`${t}Ns`]}`);
          if (type === 'symlink') assert.equal(got.target, fs.readlinkSync(path.join(mnt, p)), `${p} target`);
          if (type === 'file') assert.equal(sha(await streamed(ifs, p)), sha(fs.readFileSync(path.join(mnt, p))), `${p} content`);
        }
        const ignore = ['reparse'];
        assert.equal(diffDigests(treeDigest(mnt, { ignore }), await imageFsDigest(ifs, { ignore })), '');
        await check?.(ifs, mnt);
        return { entries: theirs.size };
      }),
    );
  } finally {
    r.close();
  }
}

describe('NTFS read from an image equals ntfs-3g', needsRoot, () => {
  const src = path.join(work, 'src');
  const img = path.join(work, 'main.img');

  before(async () => {
    makeSource(src);
    await makeFsImage(img, { fs: 'ntfs', size: 64 * MiB, label: 'Windows', fromDir: src });
    await withLoop(img, {}, (dev) => withMount(dev, 'ntfs', {}, (mnt) => populate(mnt)));
    assert.ok(sh('ntfsfix', ['-n', img], { allowFail: true }).status === 0, 'the volume is consistent');
  });

  it('every path, type, size, content, time, inode, link count, target and xattr', async () => {
    const { entries } = await compareWithNtfs3g(img, async (ifs, mnt) => {
      // The fixture has what it is meant to have (seen through ntfs-3g and e2fsprogs' filefrag).
      const extents = (p: string) => Number(/(\d+) extents? found/.exec(sh('filefrag', [path.join(mnt, p)]).stdout)![1]);
      // How many depends on where ntfs-3g put the filler files (5 to 34 here); backwards.bin is the heavily fragmented one.
      assert.ok(extents('/fragmented.bin') >= 3, `fragmented.bin has ${extents('/fragmented.bin')} extents`);
      assert.ok(extents('/backwards.bin') >= 50, `backwards.bin has ${extents('/backwards.bin')} extents`);
      const attrList = (p: string) => sh('ntfsinfo', ['-i', String(fs.statSync(path.join(mnt, p)).ino), img]).stdout.includes('$ATTRIBUTE_LIST');
      assert.ok(attrList('/backwards.bin') && attrList('/hardlinks/target'), 'attribute lists');
      assert.ok(fs.statSync(path.join(mnt, 'sparse.img')).blocks * 512 < 1 * MiB, 'sparse.img is sparse');
      const attrib = sh('getfattr', ['-n', 'system.ntfs_attrib_be', '-e', 'hex', path.join(mnt, 'compressed/text.txt')]).stdout;
      assert.ok(Number(/=(0x[0-9a-f]+)/.exec(attrib)![1]) & 0x800, 'text.txt is compressed');
      assert.equal(fs.statSync(path.join(mnt, 'hardlinks/target')).nlink, 121);
      // The reader's side of the same.
      const st = await ifs.stat('/small.txt');
      assert.equal(st.xattrs['user.Zone.Identifier'].toString(), '[ZoneTransfer]\r\nZoneId=3\r\n');
      assert.equal((await ifs.stat('/docs')).xattrs['user.note'].toString(), 'on a folder');
      assert.equal((await ifs.stat('/links/orig.txt')).nlink, 3);
      assert.equal((await ifs.stat('/special/fifo')).special, 'fifo');
      assert.equal((await ifs.readFile('/links/dirsym/b/c/d/leaf.txt')).toString(), 'deep\n');
      assert.equal((await ifs.readFile('/links/absolute')).toString(), 'resident data\n');
      assert.equal((await ifs.readdir('/many')).length, 2000);
      assert.equal(Math.floor((await ifs.stat('/docs/readme.md')).mtime / 1000), Date.parse('1999-12-31T23:59:59Z') / 1000);
      assert.equal(ifs.label, 'Windows');
      assert.equal(ifs.uuid, sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).stdout.trim());
    });
    assert.ok(entries > 2100);
  });

  it('other cluster sizes: 512 bytes (compressed units of 8 KiB) and 64 KiB (index blocks smaller than a cluster)', async () => {
    for (const blockSize of [512, 65536]) {
      const other = path.join(work, `cluster-${blockSize}.img`);
      await makeFsImage(other, { fs: 'ntfs', size: 48 * MiB, blockSize, fromDir: src });
      if (blockSize <= 4096) {
        await withLoop(other, {}, (dev) =>
          withMount(dev, 'ntfs', {}, (mnt) => {
            fs.mkdirSync(path.join(mnt, 'compressed'));
            sh('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', path.join(mnt, 'compressed')]);
            fs.writeFileSync(path.join(mnt, 'compressed/text.txt'), words(30, 300_000));
            fs.writeFileSync(path.join(mnt, 'compressed/random.bin'), seededBytes(31, 50_000));
          }),
        );
      }
      await compareWithNtfs3g(other);
      fs.rmSync(other);
    }
  });

  it('reads compressed, sparse and fragmented files by ranges as ntfs-3g does', async () => {
    const r = fileReader(img);
    try {
      const ifs = (await openImageFs(r))!;
      await withLoop(img, { readOnly: true }, (dev) =>
        withMount(dev, 'ntfs', { readOnly: true }, async (mnt) => {
          const rand = prng(3);
          for (const p of ['/compressed/text.txt', '/compressed/random.bin', '/compressed/holes.bin', '/compressed/tiny.txt', '/sparse.img', '/fragmented.bin', '/backwards.bin', '/large.bin']) {
            const want = fs.readFileSync(path.join(mnt, p));
            const size = want.length;
            const ranges: [number, number][] = [
              [0, 1],
              [size - 1, 10],
              [size, 4],
              [65535, 65538],
              [4095, 8193],
            ];
            for (let i = 0; i < 40; i++) ranges.push([Math.floor(rand() * size), Math.floor(rand() * 300_000)]);
            for (const [pos, len] of ranges) {
              const got = await ifs.read(p, pos, len);
              assert.ok(got.equals(want.subarray(pos, pos + len)), `${p} [${pos}, +${len})`);
            }
          }
        }),
      );
    } finally {
      r.close();
    }
  });

  it('reparse points: Windows symlinks as symlinks, junctions relative to the volume root, unknown tags as other', async () => {
    const r = fileReader(img);
    try {
      const ifs = (await openImageFs(r))!;
      await withLoop(img, { readOnly: true }, (dev) =>
        withMount(dev, 'ntfs', { readOnly: true }, async (mnt) => {
          const win = await ifs.stat('/reparse/winlink');
          assert.equal(win.type, 'symlink');
          assert.equal(win.target, fs.readlinkSync(path.join(mnt, 'reparse/winlink')));
          assert.equal((await ifs.readFile('/reparse/winlink')).toString(), 'linked\n');
          const j = await ifs.stat('/reparse/junction');
          assert.equal(j.type, 'symlink');
          assert.equal(j.target, '/nested/a');
          assert.equal(fs.readlinkSync(path.join(mnt, 'reparse/junction')), mnt + j.target, 'ntfs-3g prefixes its mount point');
          assert.deepEqual(
            (await ifs.readdir('/reparse/junction')).map((e) => e.name),
            ['b', 'third.txt'],
          );
          const wof = await ifs.stat('/reparse/wof');
          assert.equal(wof.type, 'other');
          assert.equal(wof.special, 'unknown');
          assert.equal(fs.readlinkSync(path.join(mnt, 'reparse/wof')), 'unsupported reparse tag 0x80000017');
        }),
      );
    } finally {
      r.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Damaged volumes

/** Opens, walks every entry and reads every file: what a listing, a diff or a restore does. */
async function readAll(r: ByteReader): Promise<number> {
  const ifs = await openImageFs(r);
  if (!ifs) return 0;
  let n = 0;
  for await (const st of ifs.walk('/')) {
    n++;
    if (st.type === 'file') await ifs.read(st.path, 0, 4 * MiB);
    if (st.type === 'symlink') await ifs.readlink(st.path);
  }
  return n;
}

/** Byte offsets of every "FILE" record and "INDX" block in an image (at 512-byte boundaries). */
function structures(buf: Buffer, magic: string): number[] {
  const out: number[] = [];
  for (let o = 0; o + 4 <= buf.length; o += 512) if (buf.toString('latin1', o, o + 4) === magic) out.push(o);
  return out;
}

describe('damaged NTFS volumes give DevsnapErrors, never a crash or a hang', needsRoot, () => {
  const src = path.join(work, 'hostile-src');
  const img = path.join(work, 'hostile.img');
  let clean: Buffer;
  let mftRecords: number[];
  let indexBlocks: number[];

  before(async () => {
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, 'dir', `file-number-${i}.txt`), `file ${i}\n`);
    fs.writeFileSync(path.join(src, 'big.bin'), seededBytes(20, 300_000));
    fs.symlinkSync('big.bin', path.join(src, 'link'));
    await makeFsImage(img, { fs: 'ntfs', size: 12 * MiB, fromDir: src });
    await withLoop(img, {}, (dev) =>
      withMount(dev, 'ntfs', {}, (mnt) => {
        fs.mkdirSync(path.join(mnt, 'c'));
        sh('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', path.join(mnt, 'c')]);
        fs.writeFileSync(path.join(mnt, 'c', 'text.txt'), words(21, 300_000));
        const rev = fs.openSync(path.join(mnt, 'backwards.bin'), 'w');
        for (let k = 299; k >= 0; k--) fs.writeSync(rev, seededBytes(k, 4096), 0, 4096, k * 4096);
        fs.closeSync(rev);
      }),
    );
    clean = fs.readFileSync(img);
    mftRecords = structures(clean, 'FILE').slice(0, 120);
    indexBlocks = structures(clean, 'INDX');
    assert.ok(indexBlocks.length >= 2, 'the 300-entry folder has index blocks');
    assert.ok((await readAll(memReader(clean))) > 300);
  });

  const rejectsDamaged = async (buf: Buffer, what: string) => {
    await assert.rejects(readAll(memReader(buf)), (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED', what);
  };

  it('a corrupt index block: bad signature, torn fixups, wrong VCN, entries running past the block', async () => {
    const at = indexBlocks[0];
    for (const [what, patch] of [
      ['signature', (b: Buffer) => b.write('XXXX', at, 'latin1')],
      ['torn sector', (b: Buffer) => (b[at + 510] ^= 0xff)],
      ['VCN', (b: Buffer) => b.writeBigInt64LE(77n, at + 0x10)],
      ['entry length', (b: Buffer) => b.writeUInt32LE(0xfff0, at + 0x18 + 4)],
      ['entries offset', (b: Buffer) => b.writeUInt32LE(3, at + 0x18)],
    ] as const) {
      const b = Buffer.from(clean);
      patch(b);
      await rejectsDamaged(b, what);
    }
  });

  it('a record that is no longer in use, a stale directory entry, a record with a bad signature', async () => {
    const ifs = (await openImageFs(memReader(clean)))!;
    const big = await ifs.stat('/big.bin');
    const cs = clean.readUInt16LE(0x0b) * clean[0x0d];
    const rsByte = clean.readInt8(0x40);
    const recAt = Number(clean.readBigUInt64LE(0x30)) * cs + big.ino * (rsByte < 0 ? 2 ** -rsByte : rsByte * cs);
    assert.equal(clean.toString('latin1', recAt, recAt + 4), 'FILE');
    const notInUse = Buffer.from(clean);
    notInUse.writeUInt16LE(notInUse.readUInt16LE(recAt + 0x16) & ~1, recAt + 0x16);
    await rejectsDamaged(notInUse, 'not in use');
    const stale = Buffer.from(clean);
    stale.writeUInt16LE(stale.readUInt16LE(recAt + 0x10) + 1, recAt + 0x10);
    await rejectsDamaged(stale, 'stale');
    const sig = Buffer.from(clean);
    sig.write('BAAD', recAt, 'latin1');
    await rejectsDamaged(sig, 'BAAD');
  });

  it('a truncated image (zeros past the cut, as a short read gives) and a short partition', async () => {
    const mft = Number(clean.readBigUInt64LE(0x30)) * clean.readUInt16LE(0x0b) * clean[0x0d];
    for (const cut of [600, 64 * 1024, mft + 20 * 1024, mft + 70 * 1024, indexBlocks[0] + 100, clean.length / 2, clean.length - 4096]) {
      const b = Buffer.alloc(clean.length);
      clean.copy(b, 0, 0, cut);
      const t0 = Date.now();
      try {
        await readAll(memReader(b));
      } catch (e) {
        assert.ok(e instanceof DevsnapError, `cut at ${cut}: ${(e as Error).stack}`);
      }
      assert.ok(Date.now() - t0 < 10_000);
    }
    await assert.rejects(readAll(memReader(clean.subarray(0, clean.length / 2))), (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED');
  });

  it('LZNT1: hostile compressed data throws, never reads or writes outside its buffers', () => {
    const rand = prng(5);
    for (let i = 0; i < 2000; i++) {
      const src = crypto.randomBytes(2 + Math.floor(rand() * 200));
      if (rand() < 0.5) src.writeUInt16LE(0xb000 | Math.floor(rand() * 0x1000), 0);
      const out = Buffer.alloc(65536);
      try {
        lznt1Decompress(src, out, 'fuzz');
      } catch (e) {
        assert.match((e as Error).message, /^fuzz: compressed data /);
      }
    }
  });

  it('fuzz: a few hundred random byte flips in MFT records and index blocks', async () => {
    const rand = prng(11);
    const b = Buffer.from(clean);
    let errors = 0;
    let ok = 0;
    const t0 = Date.now();
    for (let it = 0; it < 300; it++) {
      const flips: number[] = [];
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const base = rand() < 0.6 ? mftRecords[Math.floor(rand() * mftRecords.length)] : indexBlocks[Math.floor(rand() * indexBlocks.length)];
        const pos = base + Math.floor(rand() * 1024);
        flips.push(pos);
        b[pos] ^= 1 << Math.floor(rand() * 8);
      }
      const t = Date.now();
      try {
        await readAll(memReader(b));
        ok++;
      } catch (e) {
        assert.ok(e instanceof DevsnapError, `flips at ${flips.join(', ')}: ${(e as Error).stack}`);
        errors++;
      }
      assert.ok(Date.now() - t < 5000, `flips at ${flips.join(', ')} took ${Date.now() - t} ms`);
      clean.copy(b);
    }
    assert.ok(errors > 30 && ok > 30, `${errors} damaged, ${ok} read`);
    assert.ok(Date.now() - t0 < 120_000);
  });

  it('NtfsImageFs.open: not NTFS is null, an implausible boot sector is DAMAGED', async () => {
    assert.equal(await NtfsImageFs.open(memReader(Buffer.alloc(1 << 20))), null);
    const b = Buffer.from(clean.subarray(0, 1 << 20));
    b[0x0d] = 3; // sectors per cluster not a power of two
    await assert.rejects(NtfsImageFs.open(memReader(b)), (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED');
  });
});
