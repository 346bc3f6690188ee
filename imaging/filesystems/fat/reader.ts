// Read-only FAT12/16/32 reader: BPB, cluster chains, directories with long file names (VFAT LFN,
// UTF-16) and the lowercase flags of short names, DOS dates (read as local time, as Linux's vfat
// does by default). Reference: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103).
import { DevsnapError } from '../../core/errors';
import { cString } from '../bitmap';
import { parseFatBootSector, type FatGeometry } from './bootsector';
import type { ByteReader } from '../types';
import { BaseImageFs, ChildEntry } from '../image-fs/base';
import type { ImageFileType, ImageStat } from '../image-fs/types';

interface FatNode {
  /** Unique id: byte offset of the short entry on the partition / 32 (root: 1). */
  id: number;
  dir: boolean;
  root?: boolean;
  cluster: number;
  size: number;
  attr: number;
  mtime: number;
  atime: number;
  ctime: number;
}

const PAGE = 4096;
const MAX_PAGES = 256;

function dosTime(date: number, time: number, tenths = 0): number {
  if (!date) return 0;
  const d = new Date(1980 + (date >> 9), ((date >> 5) & 0xf) - 1, date & 0x1f, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2);
  return d.getTime() + tenths * 10;
}

function lfnChecksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short[i]) & 0xff;
  return sum;
}

export class FatImageFs extends BaseImageFs<FatNode> {
  readonly fs = 'vfat' as const;
  private readonly pages = new Map<number, Promise<Buffer>>();
  private readonly rootNodeValue: FatNode;

  private constructor(
    private readonly p: ByteReader,
    private readonly g: FatGeometry,
  ) {
    super();
    this.rootNodeValue = { id: 1, dir: true, root: true, cluster: g.rootCluster, size: 0, attr: 0x10, mtime: 0, atime: 0, ctime: 0 };
    if (g.label) this.label = g.label;
    if (g.uuid) this.uuid = g.uuid;
  }

  /**
   * The FAT filesystem on `p`, or null when there is none. Looser than filesystems/fat/used-blocks.ts's readFat, which
   * also rejects a data area past the partition end and FAT32 with root entries: this reader has
   * always opened those (it reads lazily, so whatever files are reachable can still be read).
   */
  static async open(p: ByteReader): Promise<FatImageFs | null> {
    if (p.size < 512) return null;
    const g = parseFatBootSector(await p.read(0, 512), p.size);
    return g && new FatImageFs(p, g);
  }

  private page(n: number): Promise<Buffer> {
    let pg = this.pages.get(n);
    if (!pg) {
      pg = this.p.read(this.g.fatStart + n * PAGE, PAGE);
      this.pages.set(n, pg);
      if (this.pages.size > MAX_PAGES) this.pages.delete(this.pages.keys().next().value as number);
    }
    return pg;
  }

  private async fatBytes(off: number, len: number): Promise<Buffer> {
    const first = Math.floor(off / PAGE);
    const a = await this.page(first);
    if ((off % PAGE) + len <= PAGE) return a.subarray(off % PAGE, (off % PAGE) + len);
    return Buffer.concat([a, await this.page(first + 1)]).subarray(off % PAGE, (off % PAGE) + len);
  }

  private async next(cluster: number): Promise<number | null> {
    let v: number;
    if (this.g.bits === 12) {
      const off = (cluster * 3) >> 1;
      const w = (await this.fatBytes(off, 2)).readUInt16LE(0);
      v = cluster & 1 ? w >> 4 : w & 0xfff;
      return v >= 0xff8 || v < 2 ? null : v;
    }
    if (this.g.bits === 16) {
      v = (await this.fatBytes(cluster * 2, 2)).readUInt16LE(0);
      return v >= 0xfff8 || v < 2 ? null : v;
    }
    v = (await this.fatBytes(cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
    return v >= 0x0ffffff8 || v < 2 ? null : v;
  }

  private async chain(first: number, maxClusters = Infinity): Promise<number[]> {
    const out: number[] = [];
    for (let c: number | null = first; c !== null && c >= 2 && out.length < maxClusters; c = await this.next(c)) {
      if (out.length > this.g.declaredClusters + 2) throw new DevsnapError('DAMAGED', 'A FAT cluster chain loops.');
      out.push(c);
    }
    return out;
  }

  private clusterPos(c: number): number {
    return this.g.dataStart + (c - 2) * this.g.clusterBytes;
  }

  /** Reads [pos, pos+len) of a chain, coalescing consecutive clusters. */
  private async readChain(first: number, pos: number, len: number): Promise<Buffer> {
    const out = Buffer.alloc(len);
    if (len === 0 || first < 2) return out;
    const cb = this.g.clusterBytes;
    const clusters = await this.chain(first, Math.ceil((pos + len) / cb));
    let done = 0;
    let idx = Math.floor(pos / cb);
    while (done < len && idx < clusters.length) {
      let n = 1;
      while (idx + n < clusters.length && clusters[idx + n] === clusters[idx] + n && (idx + n) * cb < pos + len) n++;
      const runStart = idx * cb;
      const s = Math.max(pos, runStart);
      const e = Math.min(pos + len, runStart + n * cb);
      const data = await this.p.read(this.clusterPos(clusters[idx]) + (s - runStart), e - s);
      data.copy(out, s - pos);
      done += e - s;
      idx += n;
    }
    return out;
  }

  private async dirBytes(node: FatNode): Promise<{ data: Buffer; base: (o: number) => number }> {
    if (node.root && this.g.bits !== 32) {
      return { data: await this.p.read(this.g.rootDirStart, this.g.rootDirBytes), base: (o) => this.g.rootDirStart + o };
    }
    const clusters = await this.chain(node.cluster);
    const parts: Buffer[] = [];
    for (const c of clusters) parts.push(await this.p.read(this.clusterPos(c), this.g.clusterBytes));
    return { data: Buffer.concat(parts), base: (o) => this.clusterPos(clusters[Math.floor(o / this.g.clusterBytes)]) + (o % this.g.clusterBytes) };
  }

  protected async rootNode(): Promise<FatNode> {
    return this.rootNodeValue;
  }

  protected nodeIno(node: FatNode): number {
    return node.id;
  }

  /** A directory is its cluster chain (cluster 0 in a directory entry means the root, as in a ".." entry). */
  protected dirKey(node: FatNode): number {
    return node.root || node.cluster === 0 || node.cluster === this.g.rootCluster ? 0 : node.cluster;
  }

  protected async nodeType(node: FatNode): Promise<ImageFileType> {
    return node.dir ? 'dir' : 'file';
  }

  protected async nodeSize(node: FatNode): Promise<number> {
    return node.size;
  }

  protected async readNode(node: FatNode, pos: number, len: number): Promise<Buffer> {
    const end = Math.min(pos + len, node.size);
    if (end <= pos) return Buffer.alloc(0);
    return this.readChain(node.cluster, pos, end - pos);
  }

  protected async readlinkNode(): Promise<string> {
    throw new DevsnapError('USAGE', 'FAT has no symbolic links.');
  }

  protected async children(dir: FatNode): Promise<ChildEntry<FatNode>[]> {
    const { data, base } = await this.dirBytes(dir);
    const out: ChildEntry<FatNode>[] = [];
    let lfn: string[] = [];
    let lfnSum = -1;
    for (let o = 0; o + 32 <= data.length; o += 32) {
      const first = data[o];
      if (first === 0x00) break;
      if (first === 0xe5) {
        lfn = [];
        continue;
      }
      const attr = data[o + 0x0b];
      if ((attr & 0x3f) === 0x0f) {
        const seq = first & 0x1f;
        if (first & 0x40) {
          lfn = [];
          lfnSum = data[o + 0x0d];
        }
        const parts = [data.subarray(o + 1, o + 11), data.subarray(o + 14, o + 26), data.subarray(o + 28, o + 32)];
        let s = Buffer.concat(parts).toString('utf16le');
        const nul = s.indexOf('\0');
        if (nul >= 0) s = s.slice(0, nul);
        lfn[seq - 1] = s;
        continue;
      }
      if (attr & 0x08) {
        lfn = [];
        continue; // volume label
      }
      const short = data.subarray(o, o + 11);
      let name: string;
      if (lfn.length && lfnSum === lfnChecksum(short)) name = lfn.join('');
      else {
        const nt = data[o + 0x0c];
        let b = cString(short.subarray(0, 8), 'latin1') ?? '';
        if (short[0] === 0x05) b = '\xe5' + b.slice(1);
        let e = cString(short.subarray(8, 11), 'latin1') ?? '';
        if (nt & 0x08) b = b.toLowerCase();
        if (nt & 0x10) e = e.toLowerCase();
        name = e ? `${b}.${e}` : b;
      }
      lfn = [];
      if (name === '.' || name === '..') continue;
      const isDir = (attr & 0x10) !== 0;
      const cluster = data.readUInt16LE(o + 0x1a) + (this.g.bits === 32 ? data.readUInt16LE(o + 0x14) * 65536 : 0);
      const node: FatNode = {
        id: Math.floor(base(o) / 32),
        dir: isDir,
        cluster,
        size: isDir ? 0 : data.readUInt32LE(o + 0x1c),
        attr,
        mtime: dosTime(data.readUInt16LE(o + 0x18), data.readUInt16LE(o + 0x16)),
        atime: dosTime(data.readUInt16LE(o + 0x12), 0),
        ctime: dosTime(data.readUInt16LE(o + 0x10), data.readUInt16LE(o + 0x0e), data[o + 0x0d]),
      };
      out.push({ name, ino: node.id, type: isDir ? 'dir' : 'file', node });
    }
    return out;
  }

  protected async statNode(node: FatNode, path: string, name: string): Promise<ImageStat> {
    return {
      path,
      name,
      type: node.dir ? 'dir' : 'file',
      size: node.size,
      mode: node.dir ? 0o755 : node.attr & 0x01 ? 0o444 : 0o644,
      uid: 0,
      gid: 0,
      mtime: node.mtime,
      atime: node.atime,
      ctime: node.ctime,
      birthtime: node.ctime,
      nlink: 1,
      ino: node.id,
      xattrs: {},
    };
  }
}
