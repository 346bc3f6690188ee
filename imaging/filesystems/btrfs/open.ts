// An opened btrfs filesystem (superblock, chunk map, tree reader) and the items both the used-block
// reader and the change tracker interpret: root items, file extent items, inode items.

import { uuidString } from '../bitmap';
import {
  BtrfsDamage,
  BtrfsUnsupported,
  CHUNK_ITEM,
  DATA_RELOC_TREE,
  EXTENT_DATA,
  FIRST_FREE_OBJECTID,
  ROOT_ITEM,
  TREE_LOG,
  TREE_RELOC,
  readSuperblock,
  u64,
  type Superblock,
  TreeBlock,
} from './format';
import { ChunkMap, TreeReader, bootstrapChunks, parseChunk } from './tree';
import { DevsnapError } from '../../core/errors';
import type { ByteReader } from '../types';

export interface Opened {
  p: ByteReader;
  s: Superblock;
  map: ChunkMap;
  reader: TreeReader;
  /** The chunk tree's blocks (read whole to build the map): address, generation, physical copies. */
  chunkBlocks: { logical: number; generation: number; copies: [number, number][] }[];
}

/** Opens the filesystem on `p`; null when it holds no btrfs. Throws BtrfsDamage / BtrfsUnsupported saying what does not hold. */
export async function openBtrfs(p: ByteReader): Promise<Opened | null> {
  const s = await readSuperblock(p);
  if (s === null) return null;
  if (typeof s === 'string') throw new BtrfsDamage(s);
  if (s.numDevices !== 1) throw new BtrfsUnsupported(`it spans ${s.numDevices} devices`);
  if (s.devTotalBytes > p.size) {
    throw new BtrfsDamage(`its superblock gives the device ${s.devTotalBytes} bytes, but the partition has only ${p.size}: a truncated image or a shrunk partition`);
  }
  const map = bootstrapChunks(s);
  const reader = new TreeReader(p, s, map);
  const chunkBlocks: Opened['chunkBlocks'] = [];
  // Chunk items found while walking become usable at once: the chunk tree lives in system chunks, which the superblock's array maps.
  await reader.walk({ logical: s.chunkRoot, level: s.chunkRootLevel, generation: s.chunkRootGeneration }, 'the chunk tree', {
    onBlock(b, copies) {
      chunkBlocks.push({ logical: b.logical, generation: b.generation, copies });
      if (b.level) return;
      for (let i = 0; i < b.nritems; i++) {
        if (b.itemType(i) === CHUNK_ITEM) map.add(parseChunk(s, b.itemOffset(i), b.itemData(i), true));
      }
    },
  });
  return { p, s, map, reader, chunkBlocks };
}

/** A tree a ROOT_ITEM points to. `dead`: a deleted subvolume the cleaner has not finished dropping. */
export interface RootRef {
  id: bigint;
  offset: bigint;
  logical: number;
  level: number;
  generation: number;
  dead: boolean;
}

const LEGACY_ROOT_ITEM_SIZE = 239;

export function parseRootItem(b: TreeBlock, i: number): RootRef {
  const d = b.itemData(i);
  const key = b.itemKey(i);
  if (d.length < LEGACY_ROOT_ITEM_SIZE) throw new BtrfsDamage(`the root item of tree ${key.objectid} is truncated (${d.length} bytes)`);
  const level = d[238];
  if (level > 7) throw new BtrfsDamage(`the root item of tree ${key.objectid} gives level ${level}`);
  return {
    id: key.objectid,
    offset: key.offset,
    generation: u64(d, 160, 'a root generation'),
    logical: u64(d, 176, 'a root address'),
    level,
    dead: d.readUInt32LE(216) === 0 || d.readBigUInt64LE(220) !== 0n,
  };
}

const NAMES: Record<string, string> = {
  1: 'the root tree',
  2: 'the extent tree',
  3: 'the chunk tree',
  4: 'the device tree',
  5: 'the top-level subvolume (5)',
  7: 'the checksum tree',
  8: 'the quota tree',
  9: 'the UUID tree',
  10: 'the free space tree',
  11: 'the block group tree',
};

export function treeName(r: { id: bigint; offset: bigint }): string {
  if (r.id === TREE_LOG) return `the log tree of subvolume ${r.offset}`;
  if (r.id === TREE_RELOC) return `the relocation tree of subvolume ${r.offset}`;
  if (r.id === DATA_RELOC_TREE) return 'the data relocation tree';
  if (r.id >= FIRST_FREE_OBJECTID) return `subvolume ${r.id}`;
  return NAMES[String(r.id)] ?? `tree ${r.id}`;
}

/** A file extent item: its generation and the disk extent it references (null for inline data and holes). */
export function parseFileExtent(b: TreeBlock, i: number): { generation: number; disk: [number, number] | null } {
  const d = b.itemData(i);
  if (d.length < 21) throw new BtrfsDamage(`a file extent item of inode ${b.itemKey(i).objectid} is truncated (${d.length} bytes)`);
  const generation = u64(d, 0, 'a file extent generation');
  const type = d[20];
  if (type === 0) return { generation, disk: null }; // inline: the data is in the leaf
  if (type > 2) throw new BtrfsDamage(`a file extent item of inode ${b.itemKey(i).objectid} has type ${type}`);
  if (d.length !== 53) throw new BtrfsDamage(`a file extent item of inode ${b.itemKey(i).objectid} has ${d.length} bytes, not 53`);
  const bytenr = u64(d, 21, 'a file extent address');
  const len = u64(d, 29, 'a file extent length');
  if (!bytenr) return { generation, disk: null }; // a hole
  if (!len) throw new BtrfsDamage(`a file extent item of inode ${b.itemKey(i).objectid} references 0 bytes at ${bytenr}`);
  return { generation, disk: [bytenr, len] };
}

export const INODE_ITEM_SIZE = 160;

/** An inode item's transid (the last transaction that changed it) and flags. */
export function parseInode(b: TreeBlock, i: number): { transid: number; flags: number } {
  const d = b.itemData(i);
  if (d.length !== INODE_ITEM_SIZE) throw new BtrfsDamage(`the inode item of inode ${b.itemKey(i).objectid} has ${d.length} bytes, not ${INODE_ITEM_SIZE}`);
  return { transid: u64(d, 8, 'an inode transid'), flags: d.readUInt32LE(64) };
}

/** Physical byte runs collected in any order; toRuns() sorts and merges them. */
export class Runs {
  private list: [number, number][] = [];
  add(start: number, length: number): void {
    if (length > 0) this.list.push([start, length]);
  }
  addAll(runs: [number, number][]): void {
    for (const [s, l] of runs) this.add(s, l);
  }
  toRuns(): [number, number][] {
    return mergeRuns(this.list);
  }
}

/** Sorts and merges [offset, length) runs. */
export function mergeRuns(runs: [number, number][]): [number, number][] {
  const sorted = runs.filter(([, l]) => l > 0).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, l] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[0] + last[1]) last[1] = Math.max(last[1], s + l - last[0]);
    else out.push([s, l]);
  }
  return out;
}

export interface BtrfsState {
  /** The superblock's generation: the last committed transaction. The next change scan starts from it. */
  generation: number;
  fsid: string;
  devid: number;
  nodeSize: number;
  sectorSize: number;
  /** The filesystem's size over all devices, and this device's (dev_item.total_bytes). */
  totalBytes: number;
  devTotalBytes: number;
  numDevices: number;
  bytesUsed: number;
  label?: string;
}

export function stateOf(o: Opened): BtrfsState {
  const { s } = o;
  const st: BtrfsState = {
    generation: s.generation,
    fsid: uuidString(s.fsid),
    devid: s.devid,
    nodeSize: s.nodeSize,
    sectorSize: s.sectorSize,
    totalBytes: s.totalBytes,
    devTotalBytes: s.devTotalBytes,
    numDevices: s.numDevices,
    bytesUsed: s.bytesUsed,
  };
  if (s.label) st.label = s.label;
  return st;
}

/** openBtrfs, with what does not hold or is not followed turned into a DevsnapError naming it. */
export async function openOrExplain(p: ByteReader): Promise<Opened | null> {
  try {
    return await openBtrfs(p);
  } catch (e) {
    throw explain(e);
  }
}

/** A BtrfsDamage / BtrfsUnsupported (or a RangeError from a structure that does not parse) as a DevsnapError; anything else as it is. */
export function explain(e: unknown): unknown {
  if (e instanceof BtrfsUnsupported) {
    return new DevsnapError('BAD_SOURCE', `The btrfs filesystem cannot be tracked block by block: ${e.message}.`, 'Snapshot it with --freeze (writes pause while it is read in full).');
  }
  if (e instanceof BtrfsDamage || e instanceof RangeError) {
    return new DevsnapError(
      'BAD_SOURCE',
      `The btrfs filesystem's metadata does not hold: ${e.message}.`,
      'Run `btrfs check --readonly` on it (unmounted, from a recovery environment); meanwhile snapshot it with --freeze.',
    );
  }
  return e;
}

/**
 * The log trees (fsync'ed changes not yet committed, replayed at the next mount): the log root tree,
 * each subvolume's log tree, and the data extents their file extent items reference. `blocks` gets
 * every tree block's copies, `data` every referenced disk extent (logical).
 */
export async function walkLogTrees(o: Opened, blocks: (copies: [number, number][]) => void, data: (disk: [number, number]) => void): Promise<void> {
  const { s, reader } = o;
  const logs: RootRef[] = [];
  await reader.walk({ logical: s.logRoot, level: s.logRootLevel }, 'the log root tree', {
    onBlock(b, copies) {
      blocks(copies);
      if (!b.level) for (let i = 0; i < b.nritems; i++) if (b.itemType(i) === ROOT_ITEM) logs.push(parseRootItem(b, i));
    },
  });
  for (const log of logs) {
    await reader.walk(log, treeName(log), {
      onBlock(b, copies) {
        blocks(copies);
        if (b.level) return;
        for (let i = 0; i < b.nritems; i++) {
          if (b.itemType(i) !== EXTENT_DATA) continue;
          const { disk } = parseFileExtent(b, i);
          if (disk) data(disk);
        }
      },
    });
  }
}

export { TreeBlock };
