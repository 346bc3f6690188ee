// Read-only ext2/3/4 reader: superblock, group descriptors, inodes (128/256+ bytes, nanosecond times),
// extent trees of any depth, classic block maps (direct, indirect, double, triple), inline data,
// fast symlinks, linear directory scans (htree directories too) and xattrs (in-inode, xattr block,
// EA inodes). Layout reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/
import { DevsnapError } from '../../core/errors';
import { EXT_SB_OFFSET, EXT_SB_SIZE, extGeometryProblems, parseExtSuperblock, readDescriptorTable, type ExtSuperblock } from './superblock';
import type { ByteReader } from '../types';
import { BaseImageFs, ChildEntry } from '../image-fs/base';
import type { ImageFileType, ImageStat } from '../image-fs/types';
import {
  EXTENT_MAGIC,
  FL_EA_INODE,
  FL_EXTENTS,
  FL_INLINE_DATA,
  INCOMPAT_FILETYPE,
  MAX_INODE_CACHE,
  ROOT_INO,
  XATTR_MAGIC,
  XATTR_PREFIX,
  extAclToXattr,
  extTime,
  specialOf,
  typeOf,
  type Inode,
  type Run,
} from './reader-format';

export { extAclToXattr } from './reader-format';

export class ExtImageFs extends BaseImageFs<number> {
  readonly fs: 'ext2' | 'ext3' | 'ext4';
  readonly blockSize: number;
  private readonly inodeSize: number;
  private readonly inodesPerGroup: number;
  private readonly descSize: number;
  private readonly incompat: number;
  private readonly groupDescs: Buffer;
  private readonly inodeCache = new Map<number, Inode>();
  private readonly runCache = new Map<number, Run[]>();

  private constructor(
    private readonly p: ByteReader,
    sb: ExtSuperblock,
    gdt: Buffer,
  ) {
    super();
    this.fs = sb.fs;
    this.blockSize = sb.blockSize;
    this.inodesPerGroup = sb.inodesPerGroup;
    this.inodeSize = sb.inodeSize;
    this.incompat = sb.incompat;
    this.descSize = sb.descSize;
    this.groupDescs = gdt;
    this.label = sb.label;
    this.uuid = sb.uuid;
  }

  /** The ext filesystem on `p`, or null when there is none. */
  static async open(p: ByteReader): Promise<ExtImageFs | null> {
    if (p.size < EXT_SB_OFFSET + EXT_SB_SIZE) return null;
    const sb = parseExtSuperblock(await p.read(EXT_SB_OFFSET, EXT_SB_SIZE));
    if (!sb) return null;
    // The same checks as the used-block reader: sizes and offsets from a superblock that fails them are not followed.
    const problems = extGeometryProblems(sb, p.size);
    if (problems.length) {
      throw new DevsnapError(
        'DAMAGED',
        `The ${sb.fs} filesystem's superblock is implausible (${problems.join('; ')}): devsnap cannot read files from it.`,
        'Restore the partition and run e2fsck on it (with -b and a backup superblock if it cannot open the primary one).',
      );
    }
    return new ExtImageFs(p, sb, await readDescriptorTable(p, sb));
  }

  private async readBlocks(block: number, count: number): Promise<Buffer> {
    return this.p.read(block * this.blockSize, count * this.blockSize);
  }

  // ---- inodes

  private async inode(ino: number): Promise<Inode> {
    const hit = this.inodeCache.get(ino);
    if (hit) return hit;
    if (ino < 1) throw new DevsnapError('DAMAGED', `Inode ${ino} is out of range.`);
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    const index = (ino - 1) % this.inodesPerGroup;
    const d = group * this.descSize;
    if (d + this.descSize > this.groupDescs.length) throw new DevsnapError('DAMAGED', `Inode ${ino} is past the last block group.`);
    const table = this.groupDescs.readUInt32LE(d + 8) + (this.descSize >= 64 ? this.groupDescs.readUInt32LE(d + 0x28) * 2 ** 32 : 0);
    const raw = await this.p.read(table * this.blockSize + index * this.inodeSize, this.inodeSize);
    const extraIsize = this.inodeSize > 128 ? raw.readUInt16LE(0x80) : 0;
    const has = (off: number) => this.inodeSize > 128 && 128 + extraIsize >= off + 4;
    const mode = raw.readUInt16LE(0);
    const ind: Inode = {
      ino,
      mode,
      uid: raw.readUInt16LE(0x2) | (raw.readUInt16LE(0x78) << 16),
      gid: raw.readUInt16LE(0x18) | (raw.readUInt16LE(0x7a) << 16),
      size: raw.readUInt32LE(0x4) + raw.readUInt32LE(0x6c) * 2 ** 32,
      atime: extTime(raw.readUInt32LE(0x8), has(0x8c) ? raw.readUInt32LE(0x8c) : undefined),
      ctime: extTime(raw.readUInt32LE(0xc), has(0x84) ? raw.readUInt32LE(0x84) : undefined),
      mtime: extTime(raw.readUInt32LE(0x10), has(0x88) ? raw.readUInt32LE(0x88) : undefined),
      ...(has(0x90) ? { crtime: extTime(raw.readUInt32LE(0x90), has(0x94) ? raw.readUInt32LE(0x94) : undefined) } : {}),
      links: raw.readUInt16LE(0x1a),
      flags: raw.readUInt32LE(0x20),
      block: raw.subarray(0x28, 0x28 + 60),
      fileAcl: raw.readUInt32LE(0x68) + raw.readUInt16LE(0x76) * 2 ** 32,
      raw,
      extraIsize,
    };
    this.inodeCache.set(ino, ind);
    if (this.inodeCache.size > MAX_INODE_CACHE) {
      const old = this.inodeCache.keys().next().value as number;
      this.inodeCache.delete(old);
      this.runCache.delete(old);
    }
    return ind;
  }

  // ---- block mapping

  private async runs(ind: Inode): Promise<Run[]> {
    const hit = this.runCache.get(ind.ino);
    if (hit) return hit;
    const runs: Run[] = [];
    if (ind.flags & FL_EXTENTS) await this.extentRuns(ind.block, runs, 0);
    else await this.blockMapRuns(ind, runs);
    runs.sort((a, b) => a.lblk - b.lblk);
    this.runCache.set(ind.ino, runs);
    return runs;
  }

  private async extentRuns(node: Buffer, out: Run[], level: number): Promise<void> {
    if (level > 8 || node.readUInt16LE(0) !== EXTENT_MAGIC) throw new DevsnapError('DAMAGED', 'An extent tree node is corrupt (bad magic).');
    const entries = node.readUInt16LE(2);
    const depth = node.readUInt16LE(6);
    for (let i = 0; i < entries; i++) {
      const e = 12 + i * 12;
      if (e + 12 > node.length) break;
      if (depth === 0) {
        let len = node.readUInt16LE(e + 4);
        const uninit = len > 32768;
        if (uninit) len -= 32768;
        out.push({ lblk: node.readUInt32LE(e), len, pblk: node.readUInt16LE(e + 6) * 2 ** 32 + node.readUInt32LE(e + 8), uninit });
      } else {
        const leaf = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * 2 ** 32;
        await this.extentRuns(await this.readBlocks(leaf, 1), out, level + 1);
      }
    }
  }

  private async blockMapRuns(ind: Inode, out: Run[]): Promise<void> {
    const bs = this.blockSize;
    const per = bs / 4;
    const total = Math.ceil(ind.size / bs);
    const push = (lblk: number, pblk: number) => {
      if (!pblk) return;
      const last = out[out.length - 1];
      if (last && last.lblk + last.len === lblk && last.pblk + last.len === pblk && last.len < 65535) last.len++;
      else out.push({ lblk, len: 1, pblk, uninit: false });
    };
    let l = 0;
    for (let i = 0; i < 12 && l < total; i++, l++) push(l, ind.block.readUInt32LE(i * 4));
    // level 1: indirect, 2: double, 3: triple
    const walk = async (blk: number, level: number, first: number): Promise<void> => {
      const span = per ** (level - 1);
      if (!blk) return; // a hole covering the whole span
      const b = await this.readBlocks(blk, 1);
      for (let k = 0; k < per; k++) {
        const start = first + k * span;
        if (start >= total) return;
        const ptr = b.readUInt32LE(k * 4);
        if (level === 1) push(start, ptr);
        else await walk(ptr, level - 1, start);
      }
    };
    let first = 12;
    for (let level = 1; level <= 3 && first < total; level++) {
      await walk(ind.block.readUInt32LE((11 + level) * 4), level, first);
      first += per ** level;
    }
  }

  /** Bytes [pos, pos+len) of inode `ino`'s data, for files no path reaches (fs/ext-journal reads the journal inode). */
  async readInodeData(ino: number, pos: number, len: number): Promise<Buffer> {
    return this.readData(await this.inode(ino), pos, len);
  }

  /** Bytes [pos, pos+len) of an inode's data (clipped to its size); holes and uninitialized extents are zeros. */
  private async readData(ind: Inode, pos: number, len: number): Promise<Buffer> {
    const end = Math.min(pos + len, ind.size);
    if (end <= pos) return Buffer.alloc(0);
    const out = Buffer.alloc(end - pos);
    if (ind.flags & FL_INLINE_DATA) {
      const inline = await this.inlineData(ind);
      // i_size can claim more than the inline bytes hold (damaged inode): the rest reads as zeros.
      if (pos < inline.length) inline.copy(out, 0, pos, Math.min(end, inline.length));
      return out;
    }
    const bs = this.blockSize;
    const runs = await this.runs(ind);
    const firstBlk = Math.floor(pos / bs);
    const lastBlk = Math.ceil(end / bs); // exclusive
    // binary search for the first run that may cover firstBlk
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (runs[mid].lblk + runs[mid].len <= firstBlk) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < runs.length && runs[i].lblk < lastBlk; i++) {
      const r = runs[i];
      if (r.uninit || !r.pblk) continue;
      const from = Math.max(r.lblk, firstBlk);
      const to = Math.min(r.lblk + r.len, lastBlk);
      if (to <= from) continue;
      const data = await this.readBlocks(r.pblk + (from - r.lblk), to - from);
      const byteFrom = from * bs;
      const s = Math.max(pos, byteFrom);
      const e = Math.min(end, to * bs);
      data.copy(out, s - pos, s - byteFrom, e - byteFrom);
    }
    return out;
  }

  /** Inline data: the 60 bytes of i_block followed by the value of the system.data xattr. */
  private async inlineData(ind: Inode): Promise<Buffer> {
    const more = (await this.rawXattrs(ind, true)).get('system.data');
    return more && more.length ? Buffer.concat([ind.block, more]) : ind.block;
  }

  // ---- xattrs

  private parseXattrEntries(buf: Buffer, entriesStart: number, valueBase: number, end: number, out: Map<string, Buffer>, eaInodes: [string, number, number][]): void {
    let o = entriesStart;
    while (o + 16 <= end) {
      if (buf.readUInt32LE(o) === 0) break; // the 4 zero bytes that end the list
      const nameLen = buf[o];
      const index = buf[o + 1];
      const valueOffs = buf.readUInt16LE(o + 2);
      const valueInum = buf.readUInt32LE(o + 4);
      const valueSize = buf.readUInt32LE(o + 8);
      const full = (XATTR_PREFIX[index] ?? `unknown${index}.`) + buf.toString('latin1', o + 16, o + 16 + nameLen);
      if (valueInum) eaInodes.push([full, valueInum, valueSize]);
      else out.set(full, buf.subarray(valueBase + valueOffs, valueBase + valueOffs + valueSize));
      o += (16 + nameLen + 3) & ~3;
    }
  }

  /** Every xattr as stored (internal ones such as system.data included). */
  private async rawXattrs(ind: Inode, inlineOnly = false): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const eaInodes: [string, number, number][] = [];
    const start = 128 + ind.extraIsize;
    if (this.inodeSize > 128 && start + 4 <= this.inodeSize && ind.raw.readUInt32LE(start) === XATTR_MAGIC) {
      this.parseXattrEntries(ind.raw, start + 4, start + 4, this.inodeSize, out, eaInodes);
    }
    if (!inlineOnly && ind.fileAcl) {
      const b = await this.readBlocks(ind.fileAcl, 1);
      if (b.readUInt32LE(0) === XATTR_MAGIC) this.parseXattrEntries(b, 32, 0, b.length, out, eaInodes);
    }
    for (const [name, inum, size] of eaInodes) {
      const ea = await this.inode(inum);
      out.set(name, (await this.readData(ea, 0, size)).subarray(0, size));
    }
    return out;
  }

  private async xattrs(ind: Inode): Promise<Record<string, Buffer>> {
    const out: Record<string, Buffer> = {};
    if (!ind.fileAcl && (this.inodeSize <= 128 || ind.raw.readUInt32LE(Math.min(128 + ind.extraIsize, this.inodeSize - 4)) !== XATTR_MAGIC)) return out;
    const raw = await this.rawXattrs(ind);
    for (const [k, v] of [...raw].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (k === 'system.data') continue; // inline data, not an attribute users see
      out[k] = k.startsWith('system.posix_acl_') ? extAclToXattr(v) : Buffer.from(v);
    }
    return out;
  }

  // ---- BaseImageFs

  protected async rootNode(): Promise<number> {
    return ROOT_INO;
  }

  protected nodeIno(node: number): number {
    return node;
  }

  protected async nodeType(node: number): Promise<ImageFileType> {
    return typeOf((await this.inode(node)).mode);
  }

  protected async nodeSize(node: number): Promise<number> {
    return (await this.inode(node)).size;
  }

  protected async readNode(node: number, pos: number, len: number): Promise<Buffer> {
    return this.readData(await this.inode(node), pos, len);
  }

  protected async readlinkNode(node: number): Promise<string> {
    const ind = await this.inode(node);
    let bytes: Buffer;
    if (!(ind.flags & (FL_INLINE_DATA | FL_EA_INODE)) && ind.size < 60 && this.blockCountOf(ind) === 0) {
      bytes = ind.block.subarray(0, ind.size); // fast symlink
    } else bytes = await this.readData(ind, 0, ind.size);
    return bytes.toString('utf8');
  }

  /** i_blocks minus the xattr block: 0 for a fast symlink. */
  private blockCountOf(ind: Inode): number {
    const blocks = ind.raw.readUInt32LE(0x1c) + ind.raw.readUInt16LE(0x74) * 2 ** 32;
    return ind.fileAcl ? Math.max(0, blocks - this.blockSize / 512) : blocks;
  }

  protected async children(dir: number): Promise<ChildEntry<number>[]> {
    const ind = await this.inode(dir);
    const out: ChildEntry<number>[] = [];
    if (ind.flags & FL_INLINE_DATA) {
      // i_block: 4-byte parent inode, then dirents; then more dirents in system.data.
      this.parseDirents(ind.block.subarray(4), out);
      const more = (await this.rawXattrs(ind, true)).get('system.data');
      if (more && more.length) this.parseDirents(more, out);
      return out;
    }
    const bs = this.blockSize;
    // A damaged inode can give a directory terabytes of holes, which would take hours to scan:
    // no directory is larger than the filesystem that holds it.
    if (ind.size > this.p.size) {
      throw new DevsnapError(
        'DAMAGED',
        `Directory inode ${dir} claims ${ind.size} bytes, more than the whole ${this.p.size}-byte filesystem: the filesystem is damaged.`,
        'Restore the partition and run e2fsck on it.',
      );
    }
    const blocks = Math.ceil(ind.size / bs);
    for (let b = 0; b < blocks; b += 64) {
      const data = await this.readData(ind, b * bs, Math.min(64, blocks - b) * bs);
      for (let o = 0; o < data.length; o += bs) this.parseDirents(data.subarray(o, o + bs), out);
    }
    return out;
  }

  private parseDirents(buf: Buffer, out: ChildEntry<number>[]): void {
    const hasType = (this.incompat & INCOMPAT_FILETYPE) !== 0;
    for (let o = 0; o + 8 <= buf.length;) {
      const ino = buf.readUInt32LE(o);
      let rec = buf.readUInt16LE(o + 4);
      if (rec === 0 || rec === 65535) rec = Math.max(buf.length - o, 8); // 64 KiB blocks encode their size this way
      if (rec < 8) break; // corrupt: stop this block
      const nameLen = hasType ? buf[o + 6] : buf.readUInt16LE(o + 6);
      if (ino && nameLen && o + 8 + nameLen <= buf.length) {
        const name = buf.toString('utf8', o + 8, o + 8 + nameLen);
        if (name !== '.' && name !== '..') {
          const ft = hasType ? buf[o + 7] : 0;
          const type: ImageFileType | undefined = ft === 1 ? 'file' : ft === 2 ? 'dir' : ft === 7 ? 'symlink' : ft >= 3 && ft <= 6 ? 'other' : undefined;
          out.push({ name, ino, node: ino, ...(type ? { type } : {}) });
        }
      }
      o += rec;
    }
  }

  protected async statNode(node: number, path: string, name: string): Promise<ImageStat> {
    const ind = await this.inode(node);
    const type = typeOf(ind.mode);
    const st: ImageStat = {
      path,
      name,
      type,
      size: ind.size,
      mode: ind.mode & 0o7777,
      uid: ind.uid,
      gid: ind.gid,
      mtime: ind.mtime,
      atime: ind.atime,
      ctime: ind.ctime,
      ...(ind.crtime !== undefined ? { birthtime: ind.crtime } : {}),
      nlink: ind.links,
      ino: ind.ino,
      xattrs: await this.xattrs(ind),
    };
    if (type === 'symlink') st.target = await this.readlinkNode(node);
    if (type === 'other') {
      st.special = specialOf(ind.mode);
      if (st.special === 'chardev' || st.special === 'blockdev') {
        const old = ind.block.readUInt32LE(0);
        if (old) st.rdev = [(old >> 8) & 0xff, old & 0xff];
        else {
          const n = ind.block.readUInt32LE(4);
          st.rdev = [(n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00)];
        }
      }
    }
    return st;
  }
}
