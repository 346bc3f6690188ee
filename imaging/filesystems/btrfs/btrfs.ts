// btrfs: which blocks a filesystem uses, and which of them can have changed since a generation.
//
// Used blocks (readBtrfs). Every allocated extent is an item of the extent tree: EXTENT_ITEM
// [bytenr, +length) for data (and for tree blocks without skinny metadata), METADATA_ITEM [bytenr,
// +nodesize) for tree blocks. Each is mapped through the chunk map (the superblock's system chunk
// array, then the chunk tree) to every copy on this device (DUP and RAID1* keep several). Also used:
// the first MiB (reserved; boot loaders live there), the superblock mirrors (64 KiB, 64 MiB, 256 GiB),
// the blocks of the chunk, root and extent trees as walked (they are in the extent tree too), the
// log trees when the superblock has one (they are not in the extent tree) with the data extents their
// file extent items reference (an fsync's data, added to the extent tree only at log replay), and
// everything past the device size btrfs records. The extent tree's total must equal the superblock's
// bytes_used, else nothing is trusted. A mounted filesystem may commit while its trees are read; a
// read that does not hold is tried again when the generation moved, up to twice. A boot sector at
// byte 0 (mkfs.btrfs zeroes it) means another filesystem was made over this one: not btrfs then.
// Every tree block is verified (checksum, fsid, address, level, its parent's generation, item
// bounds and key order) and within one tree no block may be reached twice (a pointer loop).
//
// Changed since generation G (btrfsChangedSince, filesystems/btrfs/changes.ts). btrfs is copy on write: a tree
// block written after G has a generation > G and so have the key pointers and root items that lead
// to it, while an unchanged subtree keeps its old generation. So, as `btrfs send` does, each tree is
// walked from its root into the children whose pointer generation is > G, and each root item with
// generation > G adds its tree (every subvolume and snapshot, deleted ones being dropped, relocation
// trees, extent, checksum, free space, UUID, quota, block group trees…). What can differ from what an
// earlier read after G's commit saw: the first MiB and the superblock mirrors; the chunk tree blocks
// of generation > G; every tree block reached that way; the disk extents of file extent items of
// generation > G and of data extent items (extent tree) allocated after G (this one also catches
// balance, which moves data without changing the file extent items' generation); every extent of an
// inode changed after G (inode transid > G) that may be written in place: NODATACOW or PREALLOC
// inodes (chattr +C, nodatacow, fallocate, the v1 space cache) — or, with `allChangedInodes`, every
// such inode; and all of a log tree. Everything is returned as physical runs on this device (every copy).
//
// Not covered (the caller reads in full or freezes instead): several devices, RAID0/10 striped over
// several stripes, RAID5/6, zoned devices, extent tree v2, the raid stripe tree, simple quotas and any
// feature newer than these; checksums other than crc32c and sha256 (xxhash64, blake2b); metadata
// dumps; a filesystem half-way through an fsid change or with a recorded error. Each gives a full
// image with a warning (readBtrfs) or a DevsnapError (state and changes). Known gaps of the change
// tracking: writes that bypass btrfs (a swap file's pages, raw writes to the device) and a scrub
// repairing a bad copy in place are not seen; reads must bypass the page cache (O_DIRECT, or drop it)
// and the generation G must be read from the disk after a `sync`, before the first pass starts.

import { BlockBitmap, cString, uuidString } from '../bitmap';
import { BtrfsDamage, BtrfsUnsupported, EXTENT_ITEM, EXTENT_TREE, METADATA_ITEM, RESERVED_BYTES, ROOT_ITEM, SUPER_MIRRORS, SUPER_OFFSET, SUPER_SIZE, hasMagic } from './format';
import { openBtrfs, openOrExplain, parseRootItem, stateOf, walkLogTrees, type BtrfsState, type RootRef } from './open';
import type { ByteReader, UsedBlocks } from '../types';

export { btrfsChangedSince, type BtrfsChanges, type ChangedOptions } from './changes';
export type { BtrfsState };

const RETRIES = 2;

/** The used blocks of the btrfs on `p`; null when it holds none. Never a wrong map: what does not hold is imaged in full, with a warning. */
export async function readBtrfs(p: ByteReader): Promise<UsedBlocks | null> {
  if (p.size < SUPER_OFFSET + SUPER_SIZE) return null;
  for (let attempt = 0; ; attempt++) {
    const raw = await p.read(SUPER_OFFSET, SUPER_SIZE);
    if (!hasMagic(raw)) return null;
    // mkfs.btrfs zeroes the start of the device, so a boot sector there is newer than the btrfs: an
    // NTFS made over it (mkntfs -Q leaves the old superblock at 64 KiB, blkid calls it ambivalent) or a
    // boot loader. Not btrfs, then: the other readers decide, and without one it is imaged in full.
    if ((await p.read(0, 512)).readUInt16LE(510) === 0xaa55) return null;
    try {
      return await usedBlocks(p);
    } catch (e) {
      if (e instanceof BtrfsUnsupported) return whole(p, raw, `it is laid out in a way devsnap does not follow: ${e.message}`);
      if (!(e instanceof BtrfsDamage || e instanceof RangeError)) throw e;
      // A mounted filesystem that committed meanwhile may have reused blocks of the state being read.
      const now = await p.read(SUPER_OFFSET, SUPER_SIZE);
      if (attempt < RETRIES && !now.subarray(0x48, 0x50).equals(raw.subarray(0x48, 0x50))) continue;
      return whole(p, raw, `its metadata does not hold: ${e.message}`);
    }
  }
}

function whole(p: ByteReader, sb: Buffer, why: string): UsedBlocks {
  const sectorSize = sb.readUInt32LE(0x90);
  const bm = new BlockBitmap(sectorSize >= 512 && sectorSize <= 65536 && !(sectorSize & (sectorSize - 1)) ? sectorSize : 4096, p.size);
  bm.setRange(0, bm.blocks);
  return {
    ...bm.result('btrfs', cString(sb.subarray(0x12b, 0x12b + 256), 'utf8'), uuidString(sb.subarray(0x20, 0x30))),
    full: true,
    warnings: [`btrfs: ${why}. The whole partition is imaged in full.` + (/does not hold/.test(why) ? ' Run `btrfs check --readonly` on it (unmounted).' : '')],
  };
}

async function usedBlocks(p: ByteReader): Promise<UsedBlocks | null> {
  const o = await openBtrfs(p);
  if (!o) return null;
  const { s, map, reader } = o;
  const bm = new BlockBitmap(s.sectorSize, p.size);
  const mark = (runs: [number, number][]) => {
    for (const [at, n] of runs) bm.setBytes(at, at + n);
  };
  bm.setBytes(0, RESERVED_BYTES);
  for (const m of SUPER_MIRRORS) bm.setBytes(m, m + SUPER_SIZE); // clipped to the partition
  bm.setBytes(s.devTotalBytes, p.size); // past the filesystem: not ours to judge
  for (const c of o.chunkBlocks) mark(c.copies);

  const roots: RootRef[] = [];
  await reader.walk({ logical: s.root, level: s.rootLevel }, 'the root tree', {
    onBlock(b, copies) {
      mark(copies);
      if (!b.level) for (let i = 0; i < b.nritems; i++) if (b.itemType(i) === ROOT_ITEM) roots.push(parseRootItem(b, i));
    },
  });
  const extent = roots.filter((r) => r.id === EXTENT_TREE);
  if (extent.length !== 1 || extent[0].dead) throw new BtrfsDamage(`the root tree has ${extent.length} extent tree roots`);

  let accounted = 0;
  await reader.walk(extent[0], 'the extent tree', {
    onBlock(b, copies) {
      mark(copies);
      if (b.level) return;
      for (let i = 0; i < b.nritems; i++) {
        const type = b.itemType(i);
        if (type !== EXTENT_ITEM && type !== METADATA_ITEM) continue;
        const at = b.itemObjectid(i);
        const len = type === EXTENT_ITEM ? b.itemOffset(i) : s.nodeSize;
        mark(map.map(at, len, `the extent at logical ${at}`));
        accounted += len;
      }
    },
  });
  if (accounted !== s.bytesUsed) {
    throw new BtrfsDamage(`the extent tree holds ${accounted} bytes of extents, but the superblock says ${s.bytesUsed} are used`);
  }
  if (s.logRoot) await walkLogTrees(o, mark, (disk) => mark(map.map(disk[0], disk[1], `logged data at logical ${disk[0]}`)));
  return bm.result('btrfs', s.label, uuidString(s.fsid));
}

/**
 * The state of the btrfs on `p` (its generation is what the next change scan starts from); null when
 * `p` holds no btrfs; a DevsnapError saying why when it is one this module cannot track.
 */
export async function readBtrfsState(p: ByteReader): Promise<BtrfsState | null> {
  const o = await openOrExplain(p);
  return o && stateOf(o);
}

/** Why two states cannot be compared (not the same filesystem, or not in the same order), or null. */
export function btrfsIncomparable(before: BtrfsState, after: BtrfsState): string | null {
  if (before.fsid !== after.fsid) return `the filesystem UUID changed (${before.fsid} → ${after.fsid}): another filesystem, or btrfstune -u`;
  if (before.devid !== after.devid || before.numDevices !== after.numDevices) return 'its devices changed (btrfs device add/remove/replace)';
  if (before.nodeSize !== after.nodeSize || before.sectorSize !== after.sectorSize) return 'its node or sector size changed: the filesystem was recreated';
  if (before.devTotalBytes !== after.devTotalBytes) return `it was resized (${before.devTotalBytes} → ${after.devTotalBytes} bytes)`;
  if (after.generation < before.generation) return `its generation went back (${before.generation} → ${after.generation}): an older copy of it was restored`;
  return null;
}
