// btrfs on-disk structures: the superblock, tree block headers, leaf items and the checksums that
// protect them. Reference: the kernel's include/uapi/linux/btrfs_tree.h and btrfs-progs' dump-super
// and dump-tree, which print every field read here. Every number read from the disk is checked before
// it is used as an offset, a length or a count: a crafted image gives a BtrfsDamage, never a crash.

import * as crypto from 'crypto';
import { cString, uuidString } from '../bitmap';
import { crc32cRaw } from '../checksums';
import type { ByteReader } from '../types';

/** Something on the disk is not what btrfs writes (a failed checksum, an item out of bounds, a dangling pointer). */
export class BtrfsDamage extends Error {}
/** A valid layout this reader does not follow (several devices, RAID5/6, zoned, an unknown feature). */
export class BtrfsUnsupported extends Error {}

export const SUPER_OFFSET = 0x10000;
export const SUPER_SIZE = 4096;
/** The superblock and its mirrors, at fixed physical offsets (64 KiB, 64 MiB, 256 GiB). */
export const SUPER_MIRRORS = [0x10000, 0x4000000, 0x4000000000];
/** Reserved at the start of every btrfs device (boot loaders live there); never allocated to chunks. */
export const RESERVED_BYTES = 1 << 20;
const MAGIC = Buffer.from('_BHRfS_M', 'latin1');

export const HEADER_SIZE = 101;
export const ITEM_SIZE = 25;
export const KEY_PTR_SIZE = 33;
export const MAX_LEVEL = 7; // BTRFS_MAX_LEVEL 8: levels 0..7

// Key types (btrfs_tree.h).
export const INODE_ITEM = 1;
export const EXTENT_DATA = 108;
export const ROOT_ITEM = 132;
export const EXTENT_ITEM = 168;
export const METADATA_ITEM = 169;
export const BLOCK_GROUP_ITEM = 192;
export const CHUNK_ITEM = 228;

// Tree object ids; the negative ones are u64 values near 2^64.
export const ROOT_TREE = 1n;
export const EXTENT_TREE = 2n;
export const CHUNK_TREE = 3n;
export const FS_TREE = 5n;
export const BLOCK_GROUP_TREE = 11n;
export const FIRST_FREE_OBJECTID = 256n;
export const LAST_FREE_OBJECTID = 2n ** 64n - 256n;
export const TREE_LOG = 2n ** 64n - 6n;
export const TREE_RELOC = 2n ** 64n - 8n;
export const DATA_RELOC_TREE = 2n ** 64n - 9n;

/** Trees that hold inodes and file extent items (subvolumes, snapshots, their reloc and log copies, the root tree's space-cache inodes). */
export function holdsFiles(owner: bigint): boolean {
  return owner === ROOT_TREE || owner === FS_TREE || (owner >= FIRST_FREE_OBJECTID && owner <= LAST_FREE_OBJECTID) || owner === TREE_LOG || owner === TREE_RELOC || owner === DATA_RELOC_TREE;
}

export const EXTENT_FLAG_DATA = 1;
export const INODE_NODATACOW = 1 << 1;
export const INODE_PREALLOC = 1 << 4;

// Block group / chunk profile bits.
export const BG_DATA = 1;
export const BG_SYSTEM = 2;
export const BG_METADATA = 4;
export const BG_RAID0 = 8;
export const BG_RAID1 = 16;
export const BG_DUP = 32;
export const BG_RAID10 = 64;
export const BG_RAID5 = 128;
export const BG_RAID6 = 256;
export const BG_RAID1C3 = 512;
export const BG_RAID1C4 = 1024;
/** Every profile bit (RAID0 … RAID1C4). */
export const BG_KNOWN_PROFILES = 0x7f8;

const INCOMPAT_METADATA_UUID = 1 << 10;
/**
 * Incompat features that change nothing this reader relies on: mixed backrefs, a default subvolume,
 * mixed block groups, lzo/zstd compression, big metadata, extended inode refs, skinny metadata, no
 * holes, a metadata UUID, RAID1C3/4 (several devices anyway). Not RAID5/6 (parity stripes), zoned
 * (sequential zones, a log-structured superblock), extent tree v2, the raid stripe tree or anything newer.
 */
const INCOMPAT_HANDLED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | INCOMPAT_METADATA_UUID | 0x800;
const INCOMPAT_NAMES: Record<number, string> = { 0x80: 'RAID56', 0x1000: 'ZONED', 0x2000: 'EXTENT_TREE_V2', 0x4000: 'RAID_STRIPE_TREE', 0x10000: 'SIMPLE_QUOTA' };
/** compat_ro: free space tree (+ valid), verity, block group tree. */
const COMPAT_RO_HANDLED = 0x1 | 0x2 | 0x4 | 0x8;

// Superblock flags (high bits: the image is a metadata dump or the fsid is being changed).
const SUPER_FLAG_ERROR = 1 << 2;
const SUPER_FLAGS_HI_UNSUPPORTED: Record<number, string> = {
  0x2: 'a metadata dump (btrfs-image)',
  0x4: 'a metadata dump (btrfs-image)',
  0x8: 'half-way through an fsid change',
  0x10: 'half-way through an fsid change',
};

const CSUM_SIZES: Record<number, number> = { 0: 4, 1: 8, 2: 32, 3: 32 };
const CSUM_NAMES: Record<number, string> = { 0: 'crc32c', 1: 'xxhash64', 2: 'sha256', 3: 'blake2b' };

export interface Superblock {
  fsid: Buffer;
  /** What tree block headers carry: fsid, or metadata_uuid when the METADATA_UUID feature is on. */
  metadataFsid: Buffer;
  label?: string;
  generation: number;
  root: number;
  rootLevel: number;
  chunkRoot: number;
  chunkRootLevel: number;
  chunkRootGeneration: number;
  logRoot: number;
  logRootLevel: number;
  totalBytes: number;
  bytesUsed: number;
  numDevices: number;
  sectorSize: number;
  nodeSize: number;
  flags: number;
  compat: number;
  compatRo: number;
  incompat: number;
  csumType: number;
  sysChunkArray: Buffer;
  devid: number;
  devTotalBytes: number;
}

/** An unsigned 64-bit field as a Number; a value past 2^53 is damage (no offset, length or generation of a real filesystem gets there). */
export function u64(b: Buffer, off: number, what: string): number {
  const hi = b.readUInt32LE(off + 4);
  if (hi >= 0x200000) throw new BtrfsDamage(`${what} is implausibly large (0x${b.readBigUInt64LE(off).toString(16)})`);
  return hi * 2 ** 32 + b.readUInt32LE(off);
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Whether the superblock at 64 KiB carries btrfs's magic (the rest may still be damaged). */
export function hasMagic(sb: Buffer): boolean {
  return sb.length >= SUPER_SIZE && sb.subarray(0x40, 0x48).equals(MAGIC);
}

/** The checksum of `data` as btrfs stores it (csum_size bytes), or null for a type this reader cannot compute. */
function checksum(type: number, data: Buffer): Buffer | null {
  switch (type) {
    case 0: {
      const out = Buffer.alloc(4);
      out.writeUInt32LE(~crc32cRaw(0xffffffff, data) >>> 0);
      return out;
    }
    case 2:
      return crypto.createHash('sha256').update(data).digest();
    default:
      return null; // xxhash64 and blake2b-256: Node has neither
  }
}

/** Whether a superblock or tree block's stored checksum (at byte 0) matches its bytes from 0x20 on. */
export function checksumOk(type: number, block: Buffer): boolean {
  const want = checksum(type, block.subarray(0x20));
  return want !== null && block.subarray(0, want.length).equals(want);
}

/** Parses the primary superblock; a string says what does not hold (damage), BtrfsUnsupported a layout not followed. */
export function parseSuperblock(sb: Buffer): Superblock | string {
  const csumType = sb.readUInt16LE(0xc4);
  if (!(csumType in CSUM_SIZES)) return `unknown checksum type ${csumType}`;
  if (!checksum(csumType, Buffer.alloc(0))) {
    throw new BtrfsUnsupported(`its metadata checksums are ${CSUM_NAMES[csumType]}, which devsnap cannot verify (it verifies crc32c and sha256)`);
  }
  if (!checksumOk(csumType, sb)) return 'the superblock fails its checksum';
  try {
    const s: Superblock = {
      fsid: Buffer.from(sb.subarray(0x20, 0x30)),
      metadataFsid: Buffer.from(sb.subarray(0x20, 0x30)),
      generation: u64(sb, 0x48, 'generation'),
      root: u64(sb, 0x50, 'root'),
      chunkRoot: u64(sb, 0x58, 'chunk_root'),
      logRoot: u64(sb, 0x60, 'log_root'),
      totalBytes: u64(sb, 0x70, 'total_bytes'),
      bytesUsed: u64(sb, 0x78, 'bytes_used'),
      numDevices: u64(sb, 0x88, 'num_devices'),
      sectorSize: sb.readUInt32LE(0x90),
      nodeSize: sb.readUInt32LE(0x94),
      chunkRootGeneration: u64(sb, 0xa4, 'chunk_root_generation'),
      flags: 0,
      compat: 0,
      compatRo: 0,
      incompat: 0,
      csumType,
      rootLevel: sb[0xc6],
      chunkRootLevel: sb[0xc7],
      logRootLevel: sb[0xc8],
      sysChunkArray: Buffer.alloc(0),
      devid: u64(sb, 0xc9, 'dev_item.devid'),
      devTotalBytes: u64(sb, 0xc9 + 8, 'dev_item.total_bytes'),
      label: cString(sb.subarray(0x12b, 0x12b + 256), 'utf8'),
    };
    const flagsHi = sb.readUInt32LE(0x38 + 4);
    s.flags = sb.readUInt32LE(0x38);
    for (const [bit, what] of Object.entries(SUPER_FLAGS_HI_UNSUPPORTED)) if (flagsHi & Number(bit)) throw new BtrfsUnsupported(`it is ${what}`);
    if (sb.readUInt32LE(0xac + 4) || sb.readUInt32LE(0xb4 + 4) || sb.readUInt32LE(0xbc + 4)) throw new BtrfsUnsupported('it has feature flags from a newer btrfs than devsnap knows');
    s.compat = sb.readUInt32LE(0xac);
    s.compatRo = sb.readUInt32LE(0xb4);
    s.incompat = sb.readUInt32LE(0xbc);
    const unknown = s.incompat & ~INCOMPAT_HANDLED;
    if (unknown) {
      const names = Object.entries(INCOMPAT_NAMES)
        .filter(([bit]) => unknown & Number(bit))
        .map(([, n]) => n);
      throw new BtrfsUnsupported(`it uses incompat features devsnap does not follow (${names.length ? names.join(', ') : `0x${unknown.toString(16)}`})`);
    }
    if (s.compatRo & ~COMPAT_RO_HANDLED) throw new BtrfsUnsupported(`it uses read-only-compatible features devsnap does not know (0x${(s.compatRo & ~COMPAT_RO_HANDLED).toString(16)})`);
    if (s.incompat & INCOMPAT_METADATA_UUID) s.metadataFsid = Buffer.from(sb.subarray(0x23b, 0x24b));
    if (u64(sb, 0x30, 'bytenr') !== SUPER_OFFSET) return `the superblock says it is at byte ${u64(sb, 0x30, 'bytenr')}, not ${SUPER_OFFSET}`;
    if (!isPow2(s.sectorSize) || s.sectorSize < 512 || s.sectorSize > 65536) return `implausible sector size ${s.sectorSize}`;
    if (!isPow2(s.nodeSize) || s.nodeSize < Math.max(4096, s.sectorSize) || s.nodeSize > 65536) return `implausible node size ${s.nodeSize}`;
    if (s.numDevices < 1) return 'num_devices is 0';
    const arraySize = sb.readUInt32LE(0xa0);
    if (arraySize > 2048) return `the system chunk array claims ${arraySize} bytes (at most 2048)`;
    s.sysChunkArray = Buffer.from(sb.subarray(0x32b, 0x32b + arraySize));
    for (const [name, v] of [
      ['root', s.root],
      ['chunk root', s.chunkRoot],
      ['log root', s.logRoot],
    ] as const) {
      if (v % s.sectorSize) return `the ${name} (${v}) is not sector-aligned`;
    }
    if (s.rootLevel > MAX_LEVEL || s.chunkRootLevel > MAX_LEVEL || s.logRootLevel > MAX_LEVEL) return 'a root level is above 7';
    if (!s.root || !s.chunkRoot) return 'the root or chunk tree pointer is zero';
    if (s.devTotalBytes < RESERVED_BYTES || s.devTotalBytes % s.sectorSize) return `implausible device size ${s.devTotalBytes}`;
    if (s.flags & SUPER_FLAG_ERROR) return 'the filesystem recorded an error (a transaction was aborted): run btrfs check on it';
    if (s.generation === 0) return 'generation 0';
    return s;
  } catch (e) {
    if (e instanceof BtrfsDamage || e instanceof RangeError) return e.message;
    throw e;
  }
}

/** The primary superblock; null when `p` holds no btrfs magic. A superblock that does not parse is a string saying why. */
export async function readSuperblock(p: ByteReader): Promise<Superblock | string | null> {
  if (p.size < SUPER_OFFSET + SUPER_SIZE) return null;
  const sb = await p.read(SUPER_OFFSET, SUPER_SIZE);
  if (!hasMagic(sb)) return null;
  return parseSuperblock(sb);
}

export function fsidString(s: Superblock): string {
  return uuidString(s.fsid);
}

// ------------------------------------------------------------------------------------------------
// Keys and tree blocks

/** A key compared as btrfs sorts them: objectid, type, offset. */
export interface Key {
  objectid: bigint;
  type: number;
  offset: bigint;
}

export function readKey(b: Buffer, off: number): Key {
  return { objectid: b.readBigUInt64LE(off), type: b[off + 8], offset: b.readBigUInt64LE(off + 9) };
}

export function compareKeys(a: Key, b: Key): number {
  if (a.objectid !== b.objectid) return a.objectid < b.objectid ? -1 : 1;
  if (a.type !== b.type) return a.type - b.type;
  return a.offset === b.offset ? 0 : a.offset < b.offset ? -1 : 1;
}

/** Raw comparison of two keys in buffers (no allocation): the tree checker's ordering rule. */
function compareRawKeys(b: Buffer, x: number, y: number): number {
  for (const [o, wide] of [
    [4, true],
    [0, true],
    [8, false],
    [13, true],
    [9, true],
  ] as const) {
    const a = wide ? b.readUInt32LE(x + o) : b[x + o];
    const c = wide ? b.readUInt32LE(y + o) : b[y + o];
    if (a !== c) return a < c ? -1 : 1;
  }
  return 0;
}

/** A verified tree block. Items of a leaf: item(i); key pointers of a node: ptr(i). */
export class TreeBlock {
  readonly level: number;
  readonly nritems: number;
  readonly generation: number;
  readonly owner: bigint;

  constructor(
    readonly logical: number,
    readonly buf: Buffer,
  ) {
    this.level = buf[0x64];
    this.nritems = buf.readUInt32LE(0x60);
    this.generation = u64(buf, 0x50, 'a tree block generation');
    this.owner = buf.readBigUInt64LE(0x58);
  }

  itemType(i: number): number {
    return this.buf[HEADER_SIZE + i * ITEM_SIZE + 8];
  }
  itemKey(i: number): Key {
    return readKey(this.buf, HEADER_SIZE + i * ITEM_SIZE);
  }
  /** The key's objectid / offset as Numbers (for items whose objectid is an address or an inode number). */
  itemObjectid(i: number): number {
    return u64(this.buf, HEADER_SIZE + i * ITEM_SIZE, 'an item key objectid');
  }
  itemOffset(i: number): number {
    return u64(this.buf, HEADER_SIZE + i * ITEM_SIZE + 9, 'an item key offset');
  }
  itemData(i: number): Buffer {
    const at = HEADER_SIZE + i * ITEM_SIZE + 17;
    const off = this.buf.readUInt32LE(at);
    return this.buf.subarray(HEADER_SIZE + off, HEADER_SIZE + off + this.buf.readUInt32LE(at + 4));
  }
  ptrKey(i: number): Key {
    return readKey(this.buf, HEADER_SIZE + i * KEY_PTR_SIZE);
  }
  ptrBlock(i: number): number {
    return u64(this.buf, HEADER_SIZE + i * KEY_PTR_SIZE + 17, 'a child pointer');
  }
  ptrGeneration(i: number): number {
    return u64(this.buf, HEADER_SIZE + i * KEY_PTR_SIZE + 25, 'a child pointer generation');
  }
}

/** Why a block read at `logical` is not a valid tree block of this filesystem, or null. */
export function blockProblem(s: Superblock, logical: number, buf: Buffer): string | null {
  if (!checksumOk(s.csumType, buf)) return 'fails its checksum';
  if (!buf.subarray(0x20, 0x30).equals(s.metadataFsid)) return 'belongs to another filesystem (fsid)';
  const bytenr = buf.readBigUInt64LE(0x30);
  if (bytenr !== BigInt(logical)) return `says it is block ${bytenr}`;
  const level = buf[0x64];
  const n = buf.readUInt32LE(0x60);
  if (level > MAX_LEVEL) return `has level ${level}`;
  const room = s.nodeSize - HEADER_SIZE;
  if (level > 0) {
    if (n === 0 || n * KEY_PTR_SIZE > room) return `has ${n} key pointers`;
    for (let i = 1; i < n; i++) {
      if (compareRawKeys(buf, HEADER_SIZE + (i - 1) * KEY_PTR_SIZE, HEADER_SIZE + i * KEY_PTR_SIZE) >= 0) return `has key pointers out of order at ${i}`;
    }
    return null;
  }
  if (n * ITEM_SIZE > room) return `has ${n} items`;
  // Item data is packed from the end of the block down, in item order (the kernel's tree checker).
  let end = room;
  for (let i = 0; i < n; i++) {
    const at = HEADER_SIZE + i * ITEM_SIZE;
    const off = buf.readUInt32LE(at + 17);
    const size = buf.readUInt32LE(at + 21);
    if (off + size !== end || off < n * ITEM_SIZE) return `has item ${i} at an impossible place (offset ${off}, size ${size})`;
    end = off;
    if (i && compareRawKeys(buf, at - ITEM_SIZE, at) >= 0) return `has items out of order at ${i}`;
  }
  return null;
}
