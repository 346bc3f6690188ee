// Read-only NTFS reader for files inside snapshots (dual-boot Windows partitions): the MFT through its
// fixups (mft.ts), files' attributes through their attribute lists, directories through their $I30
// index (index.ts), data resident, non-resident, sparse and LZNT1-compressed (stream.ts, lznt1.ts).
//
// What it shows is what ntfs-3g shows with its default mount options, mounted by root, which is the
// oracle of its tests:
//   - the metafiles (MFT records below 16: $MFT, $LogFile, …, $Extend and everything under it) and the
//     root's entry for itself are not listed; DOS (8.3) names are not listed; hidden files are.
//   - owner 0:0 and mode 0777 for everything (no user mapping: ntfs-3g ignores the security descriptors).
//   - times from $STANDARD_INFORMATION: mtime = data change, ctime = MFT change, atime = access,
//     birthtime = creation; ino = the MFT record number.
//   - nlink: 1 for a directory; for a file its names other than DOS ones (ntfs-3g counts a separate DOS
//     name too, which only Windows writes).
//   - symbolic links: Interix ones (what ntfs-3g writes: a system file "IntxLNK\1" + UTF-16 target),
//     Windows symbolic links and junctions, WSL symlinks. A Windows target is shown with '/' for '\';
//     an absolute one ("C:\x", "\??\C:\x", "\x") relative to the volume's root ("/x"), where ntfs-3g
//     prefixes its mount point (and checks that the target exists, which is not done here). Interix
//     fifos, sockets and devices, and WSL special files, are 'other'. Any other reparse point (OneDrive,
//     deduplication, WOF-compressed system files, volume junctions) is 'other' with special 'unknown':
//     ntfs-3g without plugins shows it as a symlink to "unsupported reparse tag 0x…".
//   - xattrs: the named data streams (alternate data streams) of files and directories as user.NAME, as
//     ntfs-3g's default streams_interface=xattr does; streams over 64 KiB (more than the kernel lets an
//     xattr hold) are left out.
//   - EFS-encrypted files are listed with their size; reading them throws, as ntfs-3g refuses to.
import { DevsnapError } from '../../core/errors';
import { cString } from '../bitmap';
import { BaseImageFs, ChildEntry } from '../image-fs/base';
import type { ImageFileType, ImageStat } from '../image-fs/types';
import type { ByteReader } from '../types';
import { ATTR_DATA, Implausible, parseBootSector, parseRecord, residentValue, type Attr } from './used-blocks';
import { ATTR_FILE_NAME, ATTR_INDEX_ROOT, ATTR_STANDARD_INFORMATION, Mft, baseOf, fileAttrs, type Geometry } from './mft';
import { attrName, collectStream, readStream, type AttrStream } from './stream';
import { indexKeys } from './index';

const ROOT = 5;
const VOLUME = 3;
/** Records below this are the metafiles, which ntfs-3g does not list. */
const FIRST_USER = 16;
const ATTR_VOLUME_NAME = 0x60;
const ATTR_INDEX_ALLOCATION = 0xa0;
const ATTR_BITMAP = 0xb0;
const ATTR_REPARSE_POINT = 0xc0;
const RECORD_IS_DIRECTORY = 0x02;
const FILE_ATTR_HIDDEN = 0x02;
const FILE_ATTR_SYSTEM = 0x04;
const FILE_ATTR_REPARSE_POINT = 0x400;
const NAMESPACE_DOS = 2;
const TAG_MOUNT_POINT = 0xa0000003;
const TAG_SYMLINK = 0xa000000c;
const TAG_LX_SYMLINK = 0xa000001d;
const WSL_SPECIAL: Record<number, ImageStat['special']> = { 0x80000023: 'socket', 0x80000024: 'fifo', 0x80000025: 'chardev', 0x80000026: 'blockdev' };
const SYMLINK_RELATIVE = 1;
/** ntfs-3g reads an Interix file's type from its first bytes when it holds at most a PATH_MAX target. */
const INTX_MAX = 8 + 2 * 4096;
const MAX_XATTR = 65536;
/** A reparse point's data is at most 16 KiB. */
const MAX_REPARSE = 16 * 1024;
const MAX_FILE_CACHE = 2048;
/** 100 ns ticks from 1601-01-01 to 1970-01-01. */
const EPOCH_DIFF = 116444736000000000n;

interface NtfsNode {
  rec: number;
  /** The sequence number the directory entry expects (0: not checked). */
  seq: number;
}

interface NtfsFile {
  rec: number;
  /** The record's sequence number, which directory entries naming it carry too. */
  seq: number;
  type: ImageFileType;
  special?: ImageStat['special'];
  rdev?: [number, number];
  target?: string;
  size: number;
  crtime: number;
  mtime: number;
  ctime: number;
  atime: number;
  nlink: number;
  attrs: { n: number; a: Attr }[];
  /** The unnamed $DATA. */
  data: AttrStream | null;
  /** Named data streams become xattrs (files and directories only). */
  streams: boolean;
}

/** NTFS time (100 ns since 1601, UTC) as milliseconds since 1970 (fractional). */
export function ntfsTime(b: Buffer, off: number): number {
  const t = b.readBigUInt64LE(off) - EPOCH_DIFF;
  return Number(t / 10000n) + Number(t % 10000n) / 10000;
}

function damaged(e: Error): DevsnapError {
  return new DevsnapError('DAMAGED', `The NTFS filesystem is damaged: ${e.message}.`, 'Restore the partition and run chkdsk /f on it (Windows), or ntfsfix.');
}

/** A Windows path ('\' separated) as a symlink target, or null when it is none ntfs-3g would follow. */
function windowsTarget(t: string, relative: boolean): string | null {
  const slashes = (s: string) => s.replace(/\\/g, '/');
  const full = /^\\(\?\?|\\\?)\\[^\\]:\\(.*)$/s.exec(t); // \??\C:\path (a junction, or a full symlink)
  if (full) return relative ? null : '/' + slashes(full[2]);
  if (!relative) return null;
  const abs = /^(?:[^\\]:)?\\(.*)$/s.exec(t); // C:\path or \path
  if (abs) return '/' + slashes(abs[1]);
  return t.startsWith('\\') ? null : slashes(t);
}

export class NtfsImageFs extends BaseImageFs<NtfsNode> {
  readonly fs = 'ntfs' as const;
  private readonly files = new Map<number, Promise<NtfsFile>>();
  private readonly g: Geometry;

  private constructor(
    private readonly mft: Mft,
    label: string | undefined,
    uuid: string,
  ) {
    super();
    this.g = mft.g;
    if (label) this.label = label;
    this.uuid = uuid;
  }

  /** The NTFS filesystem on `p`, or null when there is none. */
  static async open(p: ByteReader): Promise<NtfsImageFs | null> {
    if (p.size < 512) return null;
    const bs = await p.read(0, 512);
    if (bs.toString('latin1', 3, 11) !== 'NTFS    ') return null;
    const geo = parseBootSector(bs, p.size);
    if (typeof geo === 'string') {
      throw new DevsnapError('DAMAGED', `The NTFS boot sector is implausible (${geo}): devsnap cannot read files from it.`, 'Restore the partition and run chkdsk /f on it (Windows), or ntfsfix.');
    }
    const uuid = bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
    try {
      const mft = await Mft.open({ p, ...geo });
      const fs = new NtfsImageFs(mft, undefined, uuid);
      // The label is only shown: a damaged $Volume record leaves it out rather than the files.
      const vol = await fs.loadRecord(VOLUME).catch((e) => (e instanceof Implausible || e instanceof RangeError ? null : Promise.reject(e)));
      const name = vol?.find((a) => a.type === ATTR_VOLUME_NAME && !a.nonResident);
      if (name) fs.label = cString(residentValue(name), 'utf16le');
      return fs;
    } catch (e) {
      if (e instanceof Implausible || e instanceof RangeError) throw damaged(e);
      throw e;
    }
  }

  /** Runs fn, turning what the volume's bytes made implausible into a DevsnapError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Implausible || e instanceof RangeError) throw damaged(e);
      throw e;
    }
  }

  /** Record `n`'s attributes (fixups applied), or null when the record is not in use. */
  private async loadRecord(n: number, header?: (raw: Buffer) => void): Promise<Attr[] | null> {
    const raw = await this.mft.readRecord(n);
    if (!raw) throw new Implausible(`MFT record ${n} lies past the end of the MFT`);
    if (raw.toString('latin1', 0, 4) === 'FILE' && !(raw.readUInt16LE(0x16) & 1)) return null;
    const attrs = parseRecord(raw, n, this.g.recordSize);
    header?.(raw);
    return attrs;
  }

  private file(node: NtfsNode): Promise<NtfsFile> {
    let f = this.files.get(node.rec);
    if (!f) {
      f = this.guard(() => this.loadFile(node.rec));
      this.files.set(node.rec, f);
      if (this.files.size > MAX_FILE_CACHE) this.files.delete(this.files.keys().next().value as number);
      f.catch(() => this.files.delete(node.rec));
    }
    return node.seq ? f.then((x) => this.checkSeq(x, node)) : f;
  }

  /** An entry whose sequence number is not its record's names a file deleted since (the record reused). */
  private checkSeq(f: NtfsFile, node: NtfsNode): NtfsFile {
    if (f.seq !== node.seq) {
      throw damaged(new Error(`a directory entry names MFT record ${f.rec} with sequence number ${node.seq}, but the record is at ${f.seq} (a stale entry)`));
    }
    return f;
  }

  private async loadFile(rec: number): Promise<NtfsFile> {
    let flags = 0;
    let seq = 0;
    const base = await this.loadRecord(rec, (raw) => {
      flags = raw.readUInt16LE(0x16);
      seq = raw.readUInt16LE(0x10);
      if (baseOf(raw, rec) !== rec) throw new Implausible(`MFT record ${rec} is named in a directory but extends record ${baseOf(raw, rec)}`);
    });
    if (!base) throw new Implausible(`a directory entry names MFT record ${rec}, which is not in use`);
    // An extension record that claims another base: the attribute list (or that record) is damaged.
    const fa = await fileAttrs(this.g, rec, (n) =>
      n === rec
        ? Promise.resolve(base)
        : this.loadRecord(n, (raw) => {
            if (baseOf(raw, n) !== rec) throw new Implausible(`MFT record ${rec}'s attribute list names record ${n}, which belongs to record ${baseOf(raw, n)}`);
          }),
    );
    const attrs = fa!.attrs;
    const what = `MFT record ${rec}`;
    const siAttr = attrs.find(({ a }) => a.type === ATTR_STANDARD_INFORMATION && !a.nonResident);
    const si = siAttr && residentValue(siAttr.a);
    if (!si || si.length < 0x24) throw new Implausible(`${what} has no standard information`);
    const fileAttributes = si.readUInt32LE(0x20);
    let names = 0;
    for (const { a } of attrs) {
      if (a.type !== ATTR_FILE_NAME || a.nonResident) continue;
      const v = residentValue(a);
      if (v.length >= 0x42 && v[0x41] !== NAMESPACE_DOS) names++;
    }
    const data = collectStream(this.g, attrs, ATTR_DATA, '', `${what}'s data`);
    const f: NtfsFile = {
      rec,
      seq,
      type: 'file',
      size: data?.size ?? 0,
      crtime: ntfsTime(si, 0),
      mtime: ntfsTime(si, 8),
      ctime: ntfsTime(si, 0x10),
      atime: ntfsTime(si, 0x18),
      nlink: Math.max(1, names),
      attrs,
      data,
      streams: true,
    };
    if (fileAttributes & FILE_ATTR_REPARSE_POINT) await this.reparse(f, (flags & RECORD_IS_DIRECTORY) !== 0);
    else if (flags & RECORD_IS_DIRECTORY) {
      f.type = 'dir';
      f.nlink = 1;
      // ntfs-3g's size of a directory: its index allocation's, 0 for a small one (index root only).
      f.size = collectStream(this.g, attrs, ATTR_INDEX_ALLOCATION, '$I30', `${what}'s index allocation`)?.size ?? 0;
    } else if (fileAttributes & FILE_ATTR_SYSTEM && data) await this.interix(f, data, (fileAttributes & FILE_ATTR_HIDDEN) !== 0);
    return f;
  }

  /** An Interix special file (what ntfs-3g writes for symlinks, fifos, sockets and devices): a system file whose data says what it is. */
  private async interix(f: NtfsFile, data: AttrStream, hidden: boolean): Promise<void> {
    if (!hidden && data.size <= 1) {
      f.type = 'other';
      f.special = data.size === 0 ? 'fifo' : 'socket';
      f.streams = false;
    }
    if (data.size <= 8 || data.size > INTX_MAX || data.encrypted) return;
    const v = await readStream(this.g, data, 0, data.size);
    const magic = v.toString('latin1', 0, 8);
    if (magic === 'IntxLNK\x01') {
      f.type = 'symlink';
      f.target = v.toString('utf16le', 8, 8 + ((data.size - 8) & ~1));
      f.size = Buffer.byteLength(f.target);
      f.streams = false;
    } else if ((magic === 'IntxBLK\0' || magic === 'IntxCHR\0') && data.size === 24) {
      f.type = 'other';
      f.special = magic === 'IntxBLK\0' ? 'blockdev' : 'chardev';
      f.rdev = [Number(v.readBigUInt64LE(8) & 0xffffffffn), Number(v.readBigUInt64LE(16) & 0xffffffffn)];
      f.streams = false;
    }
  }

  /** A reparse point: a symbolic link or junction, a WSL special file, or something only Windows follows. */
  private async reparse(f: NtfsFile, isDir: boolean): Promise<void> {
    f.streams = false;
    f.type = 'other';
    f.special = 'unknown';
    const s = collectStream(this.g, f.attrs, ATTR_REPARSE_POINT, '', `MFT record ${f.rec}'s reparse point`);
    if (!s || s.size < 8 || s.size > MAX_REPARSE) return;
    const v = await readStream(this.g, s, 0, s.size);
    const tag = v.readUInt32LE(0);
    if (8 + v.readUInt16LE(4) !== v.length) return; // as ntfs-3g: the length must match exactly
    let target: string | null = null;
    if (tag === TAG_MOUNT_POINT || tag === TAG_SYMLINK) {
      const buf = tag === TAG_SYMLINK ? 20 : 16;
      if (v.length < buf) return;
      const off = buf + v.readUInt16LE(8);
      const len = v.readUInt16LE(10);
      if (off + len > v.length) return;
      const name = v.toString('utf16le', off, off + (len & ~1));
      if (tag === TAG_MOUNT_POINT) target = isDir ? windowsTarget(name, false) : null;
      else target = windowsTarget(name, (v.readUInt32LE(16) & SYMLINK_RELATIVE) !== 0);
    } else if (tag === TAG_LX_SYMLINK) {
      if (v.length > 12 && v.readUInt32LE(8) === 2) target = v.toString('utf8', 12);
    } else if (WSL_SPECIAL[tag]) {
      f.special = WSL_SPECIAL[tag];
      f.size = 0;
      return;
    }
    if (target) {
      f.type = 'symlink';
      f.target = target;
      f.size = Buffer.byteLength(target);
      delete f.special;
    }
  }

  protected async rootNode(): Promise<NtfsNode> {
    return { rec: ROOT, seq: 0 };
  }

  protected nodeIno(node: NtfsNode): number {
    return node.rec;
  }

  protected async nodeType(node: NtfsNode): Promise<ImageFileType> {
    return (await this.file(node)).type;
  }

  protected async nodeSize(node: NtfsNode): Promise<number> {
    return (await this.file(node)).size;
  }

  protected async readNode(node: NtfsNode, pos: number, len: number): Promise<Buffer> {
    const f = await this.file(node);
    if (!f.data) return Buffer.alloc(0);
    if (f.data.encrypted) {
      throw new DevsnapError('BAD_SOURCE', `MFT record ${f.rec} is encrypted by Windows (EFS): devsnap cannot read it.`, 'Copy it from Windows, signed in as its owner.');
    }
    return this.guard(() => readStream(this.g, f.data!, pos, len));
  }

  protected async readlinkNode(node: NtfsNode): Promise<string> {
    const f = await this.file(node);
    if (f.type !== 'symlink') throw new DevsnapError('USAGE', `MFT record ${f.rec} is not a symbolic link.`);
    return f.target!;
  }

  protected async children(dir: NtfsNode): Promise<ChildEntry<NtfsNode>[]> {
    const f = await this.file(dir);
    return this.guard(async () => {
      const what = `directory MFT record ${f.rec}`;
      const root = f.attrs.find(({ n, a }) => a.type === ATTR_INDEX_ROOT && attrName(a, n) === '$I30');
      if (!root || root.a.nonResident) throw new Implausible(`${what} has no index root`);
      const alloc = collectStream(this.g, f.attrs, ATTR_INDEX_ALLOCATION, '$I30', `${what}'s index allocation`);
      const bitmap = collectStream(this.g, f.attrs, ATTR_BITMAP, '$I30', `${what}'s index bitmap`);
      const out: ChildEntry<NtfsNode>[] = [];
      for (const k of await indexKeys(this.g, residentValue(root.a), alloc, bitmap, what)) {
        // ntfs-3g lists neither DOS names nor the metafiles (nor the root's entry for itself).
        if (k.namespace === NAMESPACE_DOS || k.record < FIRST_USER) continue;
        // A name no path can hold is not listed.
        if (!k.name || k.name === '.' || k.name === '..' || /[/\0]/.test(k.name)) continue;
        out.push({ name: k.name, ino: k.record, node: { rec: k.record, seq: k.seq } });
      }
      return out;
    });
  }

  private async xattrs(f: NtfsFile): Promise<Record<string, Buffer>> {
    const out: Record<string, Buffer> = {};
    if (!f.streams) return out;
    for (const { n, a } of f.attrs) {
      if (a.type !== ATTR_DATA || !a.named) continue;
      const name = attrName(a, n);
      if (out[`user.${name}`] || (a.nonResident && Number(a.body.readBigUInt64LE(0x10)) !== 0)) continue;
      const s = collectStream(this.g, f.attrs, ATTR_DATA, name, `MFT record ${f.rec}'s stream ${name}`);
      if (!s || s.size > MAX_XATTR || s.encrypted) continue;
      out[`user.${name}`] = await readStream(this.g, s, 0, s.size);
    }
    return out;
  }

  protected async statNode(node: NtfsNode, path: string, name: string): Promise<ImageStat> {
    const f = await this.file(node);
    const xattrs = await this.guard(() => this.xattrs(f));
    return {
      path,
      name,
      type: f.type,
      ...(f.special ? { special: f.special } : {}),
      ...(f.rdev ? { rdev: f.rdev } : {}),
      size: f.size,
      mode: 0o777,
      uid: 0,
      gid: 0,
      mtime: f.mtime,
      atime: f.atime,
      ctime: f.ctime,
      birthtime: f.crtime,
      nlink: f.nlink,
      ino: f.rec,
      ...(f.target !== undefined ? { target: f.target } : {}),
      xattrs,
    };
  }
}
