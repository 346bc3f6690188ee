// The read-only view of a filesystem inside a snapshot (or any ByteReader): one API for ext2/3/4, FAT and NTFS.
import type { Readable } from 'stream';
import type { ImageFileType } from '../../protocol';
export type { ImageFileType };

/** lstat-like information about one entry. Times are milliseconds since the epoch (fractional: ns precision where the filesystem has it). */
export interface ImageStat {
  /** Absolute path inside the filesystem ('/' for the root). */
  path: string;
  name: string;
  type: ImageFileType;
  /** For type 'other': what it is. */
  special?: 'fifo' | 'chardev' | 'blockdev' | 'socket' | 'unknown';
  /** Device number of a chardev/blockdev: [major, minor]. */
  rdev?: [number, number];
  size: number;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  atime: number;
  ctime: number;
  /** Creation time where the filesystem records it (ext4 i_crtime). */
  birthtime?: number;
  nlink: number;
  ino: number;
  /** Symlink target (type 'symlink'). */
  target?: string;
  /** Extended attributes as the kernel presents them to userspace (POSIX ACLs in the xattr format). */
  xattrs: Record<string, Buffer>;
}

export interface ImageDirEntry {
  name: string;
  /** The type from the directory entry when known (ext with filetype, FAT always); otherwise stat it. */
  type?: ImageFileType;
  ino: number;
}

export interface ReadStreamOptions {
  /** Bytes per read (default 1 MiB). */
  blockSize?: number;
  start?: number;
  /** Exclusive end. */
  end?: number;
}

export interface ImageFs {
  readonly fs: 'ext2' | 'ext3' | 'ext4' | 'vfat' | 'ntfs';
  readonly label?: string;
  readonly uuid?: string;
  /** Names in a directory (not '.' and '..'), sorted. Follows symlinks in the path. */
  readdir(path: string): Promise<ImageDirEntry[]>;
  /** Like lstat: a symlink as the last component is not followed. Throws DevsnapError NOT_FOUND. */
  stat(path: string): Promise<ImageStat>;
  /** stat that returns null for a missing path. */
  tryStat(path: string): Promise<ImageStat | null>;
  /** Whole content (follows symlinks). Meant for small files. */
  readFile(path: string): Promise<Buffer>;
  /** Reads [position, position+length) of a file (clipped to its size). */
  read(path: string, position: number, length: number): Promise<Buffer>;
  /** Streams the content in blocks; sparse holes read as zeros. */
  createReadStream(path: string, opts?: ReadStreamOptions): Readable;
  readlink(path: string): Promise<string>;
  /** Every entry below `root` (default '/'), depth-first pre-order, children sorted by name; `root` itself first. */
  walk(root?: string): AsyncGenerator<ImageStat>;
  /** Children of a directory with their stat, sorted by name (what walk and the diff use). */
  list(path: string): Promise<ImageStat[]>;
}
