// The on-disk pieces the ext reader (reader.ts) decodes on their own: inode flags and fields, file types
// from mode bits, timestamps, xattr name prefixes, and POSIX ACLs as userspace sees them.
import type { ImageFileType, ImageStat } from '../image-fs/types';

export const ROOT_INO = 2;

export const INCOMPAT_FILETYPE = 0x2;

export const FL_EXTENTS = 0x80000;
export const FL_EA_INODE = 0x200000;
export const FL_INLINE_DATA = 0x10000000;

export const EXTENT_MAGIC = 0xf30a;
export const XATTR_MAGIC = 0xea020000;

export const XATTR_PREFIX: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
};

export interface Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  ctime: number;
  mtime: number;
  crtime?: number;
  links: number;
  flags: number;
  block: Buffer; // i_block, 60 bytes
  fileAcl: number;
  raw: Buffer; // the whole on-disk inode (for in-inode xattrs)
  extraIsize: number;
}

/** A mapped run of a file: logical block, count, physical block (0 = hole), uninitialized (reads as zeros). */
export type Run = { lblk: number; len: number; pblk: number; uninit: boolean };

export const MAX_INODE_CACHE = 2048;

export function typeOf(mode: number): ImageFileType {
  switch (mode & 0xf000) {
    case 0x8000:
      return 'file';
    case 0x4000:
      return 'dir';
    case 0xa000:
      return 'symlink';
    default:
      return 'other';
  }
}

export function specialOf(mode: number): ImageStat['special'] {
  switch (mode & 0xf000) {
    case 0x1000:
      return 'fifo';
    case 0x2000:
      return 'chardev';
    case 0x6000:
      return 'blockdev';
    case 0xc000:
      return 'socket';
    default:
      return 'unknown';
  }
}

/** Seconds (signed 32-bit) + the extra field's epoch bits and nanoseconds -> milliseconds. */
export function extTime(lo: number, extra: number | undefined): number {
  let sec = lo | 0;
  let ns = 0;
  if (extra !== undefined) {
    sec += (extra & 3) * 2 ** 32;
    ns = extra >>> 2;
  }
  return sec * 1000 + ns / 1e6;
}

/** ext4's on-disk POSIX ACL (version 1, short entries) -> the xattr format userspace sees (version 2). */
export function extAclToXattr(v: Buffer): Buffer {
  if (v.length < 4 || v.readUInt32LE(0) !== 1) return v;
  const out: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeUInt32LE(2, 0);
  out.push(head);
  for (let o = 4; o + 4 <= v.length;) {
    const tag = v.readUInt16LE(o);
    const perm = v.readUInt16LE(o + 2);
    let id = 0xffffffff;
    if (tag === 0x02 || tag === 0x08) {
      id = v.readUInt32LE(o + 4);
      o += 8;
    } else o += 4;
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    e.writeUInt32LE(id, 4);
    out.push(e);
  }
  return Buffer.concat(out);
}
