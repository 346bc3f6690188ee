// The fuzz targets: every parser of untrusted bytes, each wrapped as a function from one input (a
// file holding the bytes) to a result or a DevsnapError. Seeds come from the real tools (mke2fs,
// mkfs.vfat + mtools, mkntfs, sfdisk, a real devsnap repository and export archive, real helper
// frames) and are generated on first use into the cache folder, never committed.
//
// To add a target: append an entry to TARGETS (name, seeds, run; optional dictionary, fix, mutate),
// make its seeds from the real tool that writes the format, and run `npm run fuzz -- --target NAME`.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { spawnSync } from 'child_process';
import { DevsnapError } from '../../imaging/core/errors';
import { readPartitionTable } from '../../imaging/disk/partitions';
import { readExt } from '../../imaging/filesystems/ext/used-blocks';
import { crc32cRaw } from '../../imaging/filesystems/checksums';
import { readFat } from '../../imaging/filesystems/fat/used-blocks';
import { readNtfs } from '../../imaging/filesystems/ntfs/used-blocks';
import { ExtImageFs } from '../../imaging/filesystems/ext/reader';
import { FatImageFs } from '../../imaging/filesystems/fat/reader';
import type { ImageFs } from '../../imaging/filesystems/image-fs/types';
import type { ByteReader } from '../../imaging/filesystems/types';
import { fileReader } from '../../imaging/disk/source';
import { chunkRefs, parseManifest, serializeManifest, summarize, type Manifest } from '../../imaging/repo/manifest';
import { parseIndexFile, Repository } from '../../imaging/repo/repository';
import { readPackTrailer } from '../../imaging/repo/pack';
import { loadZstd, type ZstdCodec } from '../../imaging/codec/zstd';
import { exportSnapshot, importSnapshot } from '../../imaging/archive/export';
import { takeSnapshot } from '../../imaging/snapshot/take';
import { describeImageFile } from '../../imaging/disk/disks';
import { encodeFrame, FrameDecoder } from '../../imaging/helper/framing';
import { validateCall } from '../../imaging/helper/validate';
import { changedBlocks, digestFrame, digestFrameLength, digestsOf, loadDigests } from '../../imaging/repo/digests';
import { vetMessage } from '../../imaging/helper/rpcFrames';
import { check, OpCall } from '../../imaging/protocol';
import { makeDisk, makeFsImage, sh } from '../helpers/disks';
import { mutate, mutateJson, Rng } from './mutate';
import { readTar, writeTar } from './tar';

/** A property violation found inside a target (besides exceptions of the wrong type): always a failure. */
const DIGEST_ID = 'ab'.repeat(32);

export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Violation';
  }
}

export interface RunContext {
  /** The input, written to this file (targets that read files or devices read it from here). */
  file: string;
  /** A folder the target may use (emptied by the target itself). */
  scratch: string;
  codec: ZstdCodec;
}

export interface FuzzTarget {
  name: string;
  /** What it parses, for the README and the report. */
  what: string;
  /** The seeds, made from the real tools into `dir` (called once; the cache keeps the result). */
  seeds(dir: string): Promise<Buffer[]>;
  run(input: Buffer, ctx: RunContext): Promise<unknown>;
  /** Wall-clock bound of one case in milliseconds (longer: a hang). Generous: a busy machine must not turn a slow case into a "hang". */
  timeoutMs: number;
  /** Random cases the smoke test runs (a few seconds' worth). */
  smokeExecs: number;
  dictionary?: string[];
  /** Mutations concentrate on the non-zero bytes (disk images: the metadata). */
  hot?: boolean;
  /** Makes a mutated input consistent again (checksums), so mutations get past the first check. */
  fix?(input: Buffer): Buffer;
  /** A structure-aware mutation, used for part of the cases. */
  mutate?(input: Buffer, rng: Rng, ctx: RunContext): Buffer | null;
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function withReader<T>(file: string, fn: (r: ByteReader) => Promise<T>): Promise<T> {
  const fh = await fs.promises.open(file, 'r');
  try {
    return await fn(fileReader(fh, (await fh.stat()).size));
  } finally {
    await fh.close();
  }
}

/** An image cut after its last non-zero 4 KiB (plus one block of zeros): small inputs, same metadata. */
function trimmed(file: string, keepAtLeast = 0): Buffer {
  const b = fs.readFileSync(file);
  let end = 0;
  for (let o = 0; o < b.length; o += 4096) if (b.subarray(o, o + 4096).some((x) => x !== 0)) end = o + 4096;
  return b.subarray(0, Math.min(b.length, Math.max(keepAtLeast, end + 4096)));
}

/** A small tree of files (text, binary, nested folders, a long name, a symlink where supported). */
function makeTree(dir: string, symlink = true): string {
  const t = path.join(dir, 'tree');
  fs.rmSync(t, { recursive: true, force: true });
  fs.mkdirSync(path.join(t, 'etc/ssh'), { recursive: true });
  fs.mkdirSync(path.join(t, 'home/dev/a fairly long folder name for LFN entries'), { recursive: true });
  fs.writeFileSync(path.join(t, 'etc/hostname'), 'devbox\n');
  fs.writeFileSync(path.join(t, 'etc/ssh/sshd_config'), 'PermitRootLogin no\n'.repeat(40));
  fs.writeFileSync(path.join(t, 'home/dev/a fairly long folder name for LFN entries/data.bin'), crypto.createHash('sha512').update('seed').digest().toString('hex').repeat(60));
  fs.writeFileSync(path.join(t, 'home/dev/empty'), '');
  if (symlink) fs.symlinkSync('../etc/hostname', path.join(t, 'home/hostname-link'));
  return t;
}

function image(dir: string, name: string): string {
  return path.join(dir, `${name}.img`);
}

/** Walks a filesystem as `devsnap files` would, reading the ends of every file and every link target. */
async function walkAll(f: ImageFs): Promise<number> {
  let n = 0;
  for await (const st of f.walk('/')) {
    // A filesystem of a few dozen inodes cannot list this many entries: the walk is going round a cycle.
    if (++n > 20000) throw new Violation('the walk of a tiny filesystem did not end (a directory cycle is followed forever)');
    if (st.type === 'file') {
      await f.read(st.path, 0, 65536);
      if (st.size > 65536) await f.read(st.path, st.size - 65536, 65536);
    } else if (st.type === 'symlink') await f.readlink(st.path);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Checksum fix-ups (structure-aware: let mutated fields past the CRC/hash that guards them)

function fixGpt(b: Buffer): Buffer {
  if (b.length < 1024) return b;
  const out = Buffer.from(b);
  const h = out.subarray(512, 1024);
  const hs = h.readUInt32LE(12);
  const entriesLba = Number(h.readBigUInt64LE(72));
  const bytes = h.readUInt32LE(80) * h.readUInt32LE(84);
  if (entriesLba * 512 + bytes <= out.length) h.writeUInt32LE(zlib.crc32(out.subarray(entriesLba * 512, entriesLba * 512 + bytes)), 88);
  if (hs >= 92 && hs <= 512) {
    h.writeUInt32LE(0, 16);
    h.writeUInt32LE(zlib.crc32(h.subarray(0, hs)), 16);
  }
  return out;
}

/** ext4 with metadata_csum: the superblock's own crc32c, so a mutated superblock is not refused for its checksum alone. */
function fixExt(b: Buffer): Buffer {
  if (b.length < 2048 || b.readUInt16LE(1024 + 0x38) !== 0xef53 || !(b.readUInt32LE(1024 + 0x64) & 0x400)) return b;
  const out = Buffer.from(b);
  out.writeUInt32LE(crc32cRaw(0xffffffff, out.subarray(1024, 1024 + 0x3fc)), 1024 + 0x3fc);
  return out;
}

function fixIndex(b: Buffer): Buffer {
  if (b.length < 32) return b;
  const body = b.subarray(0, b.length - 32);
  return Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]);
}

/** Re-serializes a manifest whose JSON still parses, with its digest recomputed. */
function fixManifest(b: Buffer): Buffer {
  try {
    const m = JSON.parse(b.toString('utf8'));
    return m && typeof m === 'object' && !Array.isArray(m) ? serializeManifest(m as Manifest) : b;
  } catch {
    return b;
  }
}

// ---------------------------------------------------------------------------------------------
// The real repository: one small GPT disk (ext2 with files + FAT12 with files) snapshot and
// exported; manifests, index files, packs, zstd frames and the archive all come from it.

export const REPO_OPTIONS = { chunkSize: 64 << 10, packSize: 192 << 10 };
const quiet = () => undefined;

async function repoSeeds(dir: string): Promise<{ repo: string; archive: string }> {
  const repoDir = path.join(dir, 'repo');
  const archive = path.join(dir, 'snapshot.tar.zst');
  if (fs.existsSync(path.join(dir, 'done'))) return { repo: repoDir, archive };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tree = makeTree(dir);
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, {
    table: 'gpt',
    size: 3 << 20,
    partitions: [
      { fs: 'ext2', size: 1 << 20, fromDir: tree, blockSize: 1024, mkfsArgs: ['-N', '32'] },
      { fs: 'vfat', size: 512 << 10, fromDir: tree, fatBits: 12 },
    ],
  });
  const repo = await Repository.init(repoDir, REPO_OPTIONS, quiet);
  await repo.loadIndex();
  const first = await takeSnapshot(repo, { source: disk, label: 'before upgrade', log: quiet });
  fs.appendFileSync(path.join(tree, 'etc/hostname'), 'changed\n');
  await takeSnapshot(repo, { source: disk, label: 'after', log: quiet });
  await exportSnapshot(repo, first.id, archive, { log: quiet });
  await repo.close();
  fs.writeFileSync(path.join(dir, 'done'), '');
  return { repo: repoDir, archive };
}

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, suffix));
    else if (e.name.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Targets

async function fsSeeds(dir: string, specs: { name: string; make: (file: string) => Promise<void>; keep?: number }[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const s of specs) {
    const f = image(dir, s.name);
    await s.make(f);
    out.push(trimmed(f, s.keep));
    fs.rmSync(f);
  }
  return out;
}

const EXT_SPECS = (dir: string) => {
  const tree = makeTree(dir);
  const ext = (name: string, fsName: 'ext2' | 'ext3' | 'ext4', size: number, args: string[], blockSize = 1024) => ({
    name,
    make: (f: string) => makeFsImage(f, { fs: fsName, size, blockSize, fromDir: tree, label: name, mkfsArgs: ['-N', '32', ...args] }),
  });
  return [
    ext('ext2', 'ext2', 128 << 10, []),
    ext('ext4-nojournal', 'ext4', 128 << 10, ['-O', '^has_journal']),
    ext('ext4-csum64', 'ext4', 256 << 10, ['-O', '^has_journal,64bit,metadata_csum']),
    ext('ext4-metabg', 'ext4', 512 << 10, ['-O', '^has_journal,meta_bg,^resize_inode', '-g', '1024']),
    ext('ext4-inline', 'ext4', 256 << 10, ['-O', '^has_journal,inline_data', '-I', '256']),
    ext('ext3', 'ext3', 2 << 20, []),
    ext('ext2-4k', 'ext2', 1 << 20, [], 4096),
  ];
};

const FAT_SPECS = (dir: string) => {
  const tree = makeTree(dir, false);
  return [
    { name: 'fat12', make: (f: string) => makeFsImage(f, { fs: 'vfat', size: 128 << 10, fatBits: 12, fromDir: tree, label: 'FAT12' }) },
    { name: 'fat16', make: (f: string) => makeFsImage(f, { fs: 'vfat', size: 4200 << 10, fatBits: 16, blockSize: 512, fromDir: tree }) },
    { name: 'fat32', make: (f: string) => makeFsImage(f, { fs: 'vfat', size: 34 << 20, fatBits: 32, blockSize: 512, fromDir: tree, label: 'EFI' }) },
  ];
};

export const TARGETS: FuzzTarget[] = [
  {
    name: 'partitions',
    what: 'MBR and GPT partition tables (imaging/disk/partitions.ts readPartitionTable)',
    timeoutMs: 15000,
    smokeExecs: 1000,
    hot: true,
    dictionary: ['EFI PART', 'NTFS    ', 'FAT32', '\x55\xaa', '\xee', '\x05', '\x0f'],
    async seeds(dir) {
      const out: Buffer[] = [];
      const tables = [
        'label: dos\nsize=32, type=83\nsize=32, type=7, bootable\nsize=40, type=5\n',
        'label: gpt\nsize=20, type=L, name="root"\nsize=20, type=U, name="EFI system"\n',
        'label: gpt\nfirst-lba: 34\nsize=8, type=L\n',
        'label: dos\nlabel-id: 0x12345678\nstart=1, size=126, type=ee\n',
      ];
      for (const [i, t] of tables.entries()) {
        const f = image(dir, `table${i}`);
        fs.writeFileSync(f, Buffer.alloc(64 << 10));
        sh('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', f], { input: t });
        out.push(fs.readFileSync(f));
        fs.rmSync(f);
      }
      return out;
    },
    fix: fixGpt,
    run: (_input, ctx) => withReader(ctx.file, readPartitionTable),
  },
  {
    name: 'ext',
    what: 'ext2/3/4 superblock, group descriptors and block bitmaps (imaging/filesystems/ext/superblock.ts, filesystems/ext/used-blocks.ts readExt)',
    timeoutMs: 15000,
    smokeExecs: 600,
    hot: true,
    dictionary: ['\x53\xef', '\x0a\xf3'],
    seeds: (dir) => fsSeeds(dir, EXT_SPECS(dir)),
    fix: fixExt,
    run: (_input, ctx) => withReader(ctx.file, readExt),
  },
  {
    name: 'ext-files',
    what: 'ext2/3/4 inodes, extent trees, block maps, directories, xattrs, symlinks (imaging/filesystems/ext/reader.ts)',
    timeoutMs: 30000,
    smokeExecs: 150,
    hot: true,
    dictionary: ['\x53\xef', '\x0a\xf3', '\x00\x00\x02\xea'],
    seeds: (dir) => fsSeeds(dir, EXT_SPECS(dir)),
    fix: fixExt,
    run: (_input, ctx) =>
      withReader(ctx.file, async (r) => {
        const f = await ExtImageFs.open(r);
        return f ? walkAll(f) : null;
      }),
  },
  {
    name: 'fat',
    what: 'FAT12/16/32 boot sector and FAT (imaging/filesystems/fat/bootsector.ts, filesystems/fat/used-blocks.ts readFat)',
    timeoutMs: 15000,
    smokeExecs: 600,
    hot: true,
    dictionary: ['\xeb\x3c\x90', 'FAT12   ', 'FAT32   ', '\x55\xaa', '\x29'],
    seeds: (dir) => fsSeeds(dir, FAT_SPECS(dir)),
    run: (_input, ctx) => withReader(ctx.file, readFat),
  },
  {
    name: 'fat-files',
    what: 'FAT directories, long names and cluster chains (imaging/filesystems/fat/reader.ts)',
    timeoutMs: 30000,
    smokeExecs: 100,
    hot: true,
    dictionary: ['\x0f', '\xe5', '\xff\xff\xff\x0f', '\xf8\xff'],
    seeds: (dir) => fsSeeds(dir, FAT_SPECS(dir)),
    run: (_input, ctx) =>
      withReader(ctx.file, async (r) => {
        const f = await FatImageFs.open(r);
        return f ? walkAll(f) : null;
      }),
  },
  {
    name: 'ntfs',
    what: 'NTFS boot sector, MFT records, run lists and $Bitmap (imaging/filesystems/ntfs/used-blocks.ts readNtfs)',
    timeoutMs: 15000,
    smokeExecs: 400,
    hot: true,
    dictionary: ['NTFS    ', 'FILE', '\xe0', '\xf6', '\x80\x00\x00\x00', '\x60\x00\x00\x00', '\xff\xff\xff\xff'],
    seeds: (dir) =>
      fsSeeds(dir, [
        { name: 'ntfs', make: (f) => makeFsImage(f, { fs: 'ntfs', size: 2 << 20, label: 'Windows' }), keep: 2 << 20 },
        { name: 'ntfs-4k', make: (f) => makeFsImage(f, { fs: 'ntfs', size: 3 << 20, blockSize: 4096 }), keep: 3 << 20 },
      ]),
    run: (_input, ctx) => withReader(ctx.file, readNtfs),
  },
  {
    name: 'disk',
    what: "a whole disk image as `devsnap disks` and snapshot planning see it: table, then every partition's filesystem (imaging/disk/disks.ts describeImageFile)",
    timeoutMs: 30000,
    smokeExecs: 200,
    hot: true,
    dictionary: ['EFI PART', 'NTFS    ', 'FAT12   ', '\x53\xef', '\xe0'],
    async seeds(dir) {
      const tree = makeTree(dir);
      const mbr = image(dir, 'mbr');
      await makeDisk(mbr, {
        table: 'mbr',
        size: 4 << 20,
        partitions: [
          { fs: 'ntfs', size: 2 << 20 },
          { fs: 'ext4', size: 1 << 20, blockSize: 1024, fromDir: tree, mkfsArgs: ['-N', '32', '-O', '^has_journal'] },
        ],
      });
      const { repo } = await repoSeeds(path.join(dir, '..', '_repo'));
      return [fs.readFileSync(mbr), fs.readFileSync(path.join(path.dirname(repo), 'disk.img'))];
    },
    fix: fixGpt,
    run: (_input, ctx) => describeImageFile(ctx.file),
  },
  {
    name: 'manifest',
    what: 'snapshot manifests (imaging/repo/manifest.ts parseManifest, then summarize, chunkRefs, and written again and read back the same)',
    timeoutMs: 15000,
    smokeExecs: 600,
    dictionary: ['"areas"', '"extents"', '"partitions"', '"digest"', '"source"', 'null', '1e309', '-1', '"z"', '"f"'],
    async seeds(dir) {
      const { repo } = await repoSeeds(path.join(dir, '..', '_repo'));
      return filesUnder(path.join(repo, 'snapshots'), '.json').map((f) => fs.readFileSync(f));
    },
    fix: fixManifest,
    mutate(input, rng) {
      try {
        return serializeManifest(mutateJson(JSON.parse(input.toString('utf8')), rng) as Manifest);
      } catch {
        return null;
      }
    },
    async run(input) {
      let id = '0123456789abcdef';
      try {
        const m = JSON.parse(input.toString('utf8'));
        if (typeof m?.id === 'string' && /^[0-9a-f]{16}$/.test(m.id)) id = m.id;
      } catch {
        // not JSON: parseManifest says so
      }
      const m = parseManifest(input, id);
      summarize(m);
      // Written again and read back, a manifest is the same (extent maps go through repo/extents.ts both ways).
      const { digest: _d, ...rest } = m;
      const again = parseManifest(serializeManifest(m), m.id);
      if (JSON.stringify({ ...again, digest: undefined }) !== JSON.stringify({ ...rest, digest: undefined })) throw new Error('a manifest written again reads back differently');
      return [...chunkRefs(m)].length;
    },
  },
  {
    name: 'index',
    what: 'index files (imaging/repo/repository.ts parseIndexFile)',
    timeoutMs: 15000,
    smokeExecs: 600,
    dictionary: ['DSIDX1\0\0', '\xff\xff\xff\xff'],
    async seeds(dir) {
      const { repo } = await repoSeeds(path.join(dir, '..', '_repo'));
      return filesUnder(path.join(repo, 'index'), '.idx').map((f) => fs.readFileSync(f));
    },
    fix: fixIndex,
    async run(input) {
      const packs = parseIndexFile(input);
      return packs ? packs.size : null;
    },
  },
  {
    name: 'pack',
    what: 'pack trailers, the chunk lists that rebuild a lost index (imaging/repo/pack.ts readPackTrailer)',
    timeoutMs: 15000,
    smokeExecs: 1000,
    dictionary: ['DSPKIDX1', '\x5d\x2a\x4d\x18', '\xff\xff\xff\xff'],
    async seeds(dir) {
      const { repo } = await repoSeeds(path.join(dir, '..', '_repo'));
      return filesUnder(path.join(repo, 'data'), '.pack').map((f) => fs.readFileSync(f));
    },
    // The trailer is at the end: mutate there too, not only at random places of the compressed chunks.
    mutate(input, rng) {
      if (input.length < 64) return null;
      const tailLen = Math.min(input.length, 48 * 8 + 20);
      const tail = mutate(input.subarray(input.length - tailLen), rng, { maxLength: tailLen + 64 });
      return Buffer.concat([input.subarray(0, input.length - tailLen), tail]);
    },
    async run(_input, ctx) {
      const entries = await readPackTrailer(fs.statSync(ctx.file).size, async (o, n) => fs.readFileSync(ctx.file).subarray(o, o + n));
      return entries ? entries.length : null;
    },
  },
  {
    name: 'digests',
    what: "a stored chunk's block digests, the skippable frame after its zstd frame (imaging/repo/digests.ts digestsOf); input: raw length (u32 LE) + the frame's tail",
    timeoutMs: 15000,
    smokeExecs: 1000,
    dictionary: ['\x5e\x2a\x4d\x18', 'DSDG', '\x00\x10\x00\x00', '\xff\xff\xff\xff'],
    async seeds() {
      const hash = await loadDigests();
      const seed = (raw: Buffer) => {
        const len = Buffer.alloc(4);
        len.writeUInt32LE(raw.length);
        return Buffer.concat([len, Buffer.from('(zstd frame)'), digestFrame(hash, DIGEST_ID, raw)]);
      };
      return [seed(Buffer.alloc(4096, 1)), seed(crypto.createHash('sha512').update('x').digest().subarray(0, 37)), seed(Buffer.alloc(3 * 4096 + 100, 7))];
    },
    // Mutations get past the check: it is recomputed over the mutated payload (the frame is found where digestsOf looks).
    fix(input) {
      if (input.length < 4) return input;
      const rawLength = input.readUInt32LE(0) % (4 << 20);
      const len = digestFrameLength(rawLength);
      if (input.length - 4 < len) return input;
      const out = Buffer.from(input);
      const f = out.subarray(out.length - len);
      crypto
        .createHash('sha256')
        .update(Buffer.from(DIGEST_ID, 'hex'))
        .update(f.subarray(8, len - 8))
        .digest()
        .subarray(0, 8)
        .copy(f, len - 8);
      return out;
    },
    async run(input) {
      if (input.length < 4) return null;
      const rawLength = input.readUInt32LE(0) % (4 << 20); // a chunk is at most a few MiB
      const digests = digestsOf(input.subarray(4), DIGEST_ID, rawLength);
      if (!Buffer.isBuffer(digests)) return digests;
      if (digests.length !== 8 * Math.ceil(rawLength / 4096)) throw new Violation(`digestsOf returned ${digests.length} bytes for a chunk of ${rawLength}`);
      // What an incremental does with them: compare a re-read cell block by block.
      return changedBlocks(await loadDigests(), digests, Buffer.alloc(rawLength, 1)).size;
    },
  },
  {
    name: 'zstd',
    what: 'zstd frames of stored chunks (imaging/codec/zstd.ts decompress); input: raw length (u32 LE) + frame',
    timeoutMs: 30000,
    smokeExecs: 600,
    dictionary: ['\x28\xb5\x2f\xfd', '\x50\x2a\x4d\x18'],
    async seeds(dir) {
      const { repo } = await repoSeeds(path.join(dir, '..', '_repo'));
      const out: Buffer[] = [];
      for (const file of filesUnder(path.join(repo, 'data'), '.pack')) {
        const pack = fs.readFileSync(file);
        for (const e of (await readPackTrailer(pack.length, async (o, n) => pack.subarray(o, o + n))) ?? []) {
          const head = Buffer.alloc(4);
          head.writeUInt32LE(e.rawLength);
          if (out.length < 24) out.push(Buffer.concat([head, pack.subarray(e.offset, e.offset + e.length)]));
        }
      }
      return out;
    },
    async run(input, ctx) {
      if (input.length < 4) return null;
      const frame = input.subarray(4);
      const rawLength = input.readUInt32LE(0);
      let out: Buffer | null = null;
      try {
        out = ctx.codec.decompress(frame, rawLength);
      } finally {
        // The codec must survive a hostile frame: the next good frame still decompresses.
        const probe = ctx.codec.decompress(GOOD_FRAME(ctx.codec), 4096);
        // eslint-disable-next-line no-unsafe-finally -- a broken codec is the finding: its Violation deliberately replaces the hostile frame's own error
        if (!probe.equals(Buffer.alloc(4096, 7))) throw new Violation('the zstd codec no longer decompresses a good frame after a hostile one');
      }
      return out.length;
    },
  },
  {
    name: 'import',
    what: 'export archives: zstd frames, tar, manifest and pieces (imaging/archive/import.ts importSnapshot into a scratch repository)',
    timeoutMs: 60000,
    smokeExecs: 30,
    dictionary: ['manifest.json', 'devsnap-export.json', 'SHA256SUMS', 'partitions/p1.img', '../', 'ustar'],
    async seeds(dir) {
      const { archive } = await repoSeeds(path.join(dir, '..', '_repo'));
      return [fs.readFileSync(archive)];
    },
    // Structure-aware: take the archive apart, change one member (manifest JSON with its digest and
    // SHA256SUMS kept consistent, another JSON, a piece's bytes, names, order), put it back together.
    mutate(input, rng, ctx) {
      // The zstd CLI: an archive is many frames, and the engine's codec decompresses one frame of known size.
      const unz = spawnSync('zstd', ['-dcq'], { input, maxBuffer: 1 << 30 });
      if (unz.status !== 0) return null;
      const tar = unz.stdout;
      const members = readTar(tar);
      if (!members.length) return null;
      const i = rng.int(members.length);
      const m = members[i];
      switch (rng.int(6)) {
        case 0: // the manifest, kept valid as JSON with a matching digest and SHA256SUMS line
        case 1: {
          const mi = members.findIndex((x) => x.name === 'manifest.json');
          if (mi < 0) return null;
          try {
            members[mi].data = serializeManifest(mutateJson(JSON.parse(members[mi].data.toString('utf8')), rng) as Manifest);
          } catch {
            return null;
          }
          const sums = members.find((x) => x.name === 'SHA256SUMS');
          if (sums) {
            const hex = crypto.createHash('sha256').update(members[mi].data).digest('hex');
            sums.data = Buffer.from(sums.data.toString('utf8').replace(/^[0-9a-f]{64}( {2}manifest\.json)$/m, `${hex}$1`));
          }
          break;
        }
        case 2:
          if (m.name.endsWith('.json')) {
            try {
              m.data = Buffer.from(JSON.stringify(mutateJson(JSON.parse(m.data.toString('utf8')), rng)));
              break;
            } catch {
              // fall through to a byte mutation
            }
          }
          m.data = mutate(m.data, rng, { maxLength: m.data.length + 4096 });
          break;
        case 3:
          m.data = mutate(m.data, rng, { maxLength: m.data.length + 4096 });
          break;
        case 4:
          m.name = rng.pick(['../' + m.name, '/' + m.name, m.name + '/', members[rng.int(members.length)].name, './' + m.name, 'x'.repeat(99)]);
          break;
        default: {
          const j = rng.int(members.length);
          if (rng.chance(0.5)) [members[i], members[j]] = [members[j], members[i]];
          // eslint-disable-next-line no-dupe-else-if -- each rng.chance() call draws anew: a second coin toss, not a duplicate condition
          else if (rng.chance(0.5)) members.splice(i, 1);
          else members.splice(j, 0, { ...m });
        }
      }
      const out = writeTar(members);
      if (out.length > 16 << 20) return null; // duplicated members pile up: the WASM codec runs out of memory
      try {
        return ctx.codec.compress(out, 1);
      } catch {
        return null;
      }
    },
    async run(_input, ctx) {
      const dir = path.join(ctx.scratch, 'repo');
      fs.rmSync(dir, { recursive: true, force: true });
      const repo = await Repository.init(dir, REPO_OPTIONS, quiet);
      try {
        await repo.loadIndex();
        return (await importSnapshot(repo, ctx.file, { log: quiet })).id;
      } catch (err) {
        // Refused: nothing may be left behind (no pack, no index file, no manifest).
        const left = ['data', 'index', 'snapshots'].flatMap((d) => filesUnder(path.join(dir, d), ''));
        if (left.length) throw new Violation(`a refused import left ${left.map((f) => path.relative(dir, f)).join(', ')} in the repository`);
        throw err;
      } finally {
        await repo.close();
      }
    },
  },
  {
    name: 'helper-frames',
    what: 'elevated helper channel: length-prefixed frames of JSON-RPC requests (imaging/helper/framing.ts FrameDecoder, rpcFrames.ts vetMessage, helper/validate.ts validateCall)',
    timeoutMs: 15000,
    smokeExecs: 800,
    dictionary: [
      '{"jsonrpc":"2.0",',
      '"method":"restore"',
      '"id":"r1"',
      '"params":{"params":{',
      '"target":"/dev/sda"',
      '"paths":["/etc"]',
      '"$/cancelRequest"',
      '\xff\xff\xff\xff',
      '\x00\x10\x00\x01',
    ],
    async seeds() {
      const req = (id: string, method: string, params: object) => encodeFrame({ jsonrpc: '2.0', id, method, params: { params, progressToken: id } });
      const cancel = (id: string) => encodeFrame({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id } });
      return [
        req('a1', 'listDisks', {}),
        req('a2', 'listSnapshots', { repo: '/srv/repo' }),
        Buffer.concat([req('b1', 'restore', { repo: '/srv/repo', snapshot: 'latest', target: '/dev/sdb', partition: 2, confirmed: true }), cancel('b1')]),
        req('c1', 'restoreFiles', { repo: '/srv/repo', snapshot: '84', paths: ['/etc/hostname', '/home/dev'], target: '/home/dev/restored', dryRun: true }),
        req('d1', 'forget', { repo: '/srv/repo', policy: { keepLast: 3 }, prune: true }),
        Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), encodeFrame({ jsonrpc: '2.0', id: 'e1', method: 'devsnap/shutdown' })]),
      ];
    },
    async run(input) {
      let messages = 0;
      const onMessage = (msg: unknown) => {
        // The helper's path for each frame: the envelope (rpcFrames.ts), then the call (ops/serve.ts: OpCall; validate.ts).
        const vetted = vetMessage(msg, 'server');
        if (typeof vetted !== 'object' || typeof vetted.ok !== 'boolean') throw new Violation('vetMessage returned no verdict');
        if (vetted.ok && 'id' in vetted.message) {
          const m = vetted.message as unknown as { method: string; params?: unknown };
          const call = check(OpCall, m.params);
          if (call.ok) {
            const v = validateCall(m.method, call.value.params);
            if (typeof v !== 'object' || typeof v.ok !== 'boolean') throw new Violation('validateCall returned no verdict');
          }
        }
        vetMessage(msg, 'client');
        messages++;
      };
      // The same bytes as one write, in pieces of varying size, and through a decoder with a small frame limit.
      const rng = new Rng(crypto.createHash('sha1').update(input).digest().readUInt32LE(0));
      for (const max of [undefined, 64]) {
        const d = new FrameDecoder(onMessage, () => undefined, max);
        d.push(input);
        const split = new FrameDecoder(onMessage, () => undefined, max);
        for (let o = 0; o < input.length;) {
          const n = 1 + rng.int(16);
          split.push(input.subarray(o, o + n));
          o += n;
        }
      }
      return messages;
    },
  },
];

let good: Buffer | null = null;
/** A known-good frame (4096 bytes of 7) for the codec survival check. */
function GOOD_FRAME(codec: ZstdCodec): Buffer {
  good ??= codec.compress(Buffer.alloc(4096, 7), 3);
  return good;
}

/**
 * Checks of the harness itself (not fuzzed by `npm run fuzz`): an input that aborts the process the
 * way a C++ assertion does, and one that hangs it in synchronous code. The smoke test makes sure the
 * parent catches both and names the input.
 */
export const HARNESS_CHECKS: FuzzTarget[] = [
  {
    name: 'harness-abort',
    what: 'aborts on an input starting with "ABORT"',
    timeoutMs: 2000,
    smokeExecs: 0,
    seeds: async () => [Buffer.from('ABORT: like a failed C++ CHECK in node')],
    async run(input) {
      if (input.toString('latin1').startsWith('ABORT')) process.abort();
    },
  },
  {
    name: 'harness-hang',
    what: 'loops forever on an input starting with "HANG"',
    timeoutMs: 2000,
    smokeExecs: 0,
    seeds: async () => [Buffer.from('HANG: a loop that never yields')],
    async run(input) {
      if (input.toString('latin1').startsWith('HANG')) for (;;);
    },
  },
];

export function targetByName(name: string): FuzzTarget {
  const t = [...TARGETS, ...HARNESS_CHECKS].find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target ${name}; targets: ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}

export { DevsnapError, loadZstd };
