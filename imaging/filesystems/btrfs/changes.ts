// What of a btrfs device can differ from what a read after generation G's commit saw: the design and
// its limits are at the top of btrfs.ts. Reads only; works on a frozen filesystem through its device.

import {
  EXTENT_DATA,
  EXTENT_FLAG_DATA,
  EXTENT_ITEM,
  EXTENT_TREE,
  INODE_ITEM,
  INODE_NODATACOW,
  INODE_PREALLOC,
  RESERVED_BYTES,
  ROOT_ITEM,
  ROOT_TREE,
  SUPER_MIRRORS,
  SUPER_SIZE,
  holdsFiles,
  u64,
} from './format';
import { Runs, explain, openOrExplain, parseFileExtent, parseInode, parseRootItem, stateOf, treeName, walkLogTrees, type BtrfsState, type Opened, type RootRef } from './open';
import { DevsnapError } from '../../core/errors';
import type { ByteReader } from '../types';

export interface BtrfsChanges {
  /** The filesystem now: `state.generation` is the G of the next round. */
  state: BtrfsState;
  /** Physical [byteOffset, byteLength) runs on the device to read again: sorted, merged. */
  runs: [number, number][];
  /** Bytes of those runs that hold file data (every copy), the rest being metadata. */
  changedDataBytes: number;
  /** Tree blocks read to find them (for the figures). */
  blocksRead: number;
}

export interface ChangedOptions {
  /**
   * Re-read every extent of every inode changed after G, not only of those that can be written in
   * place (NODATACOW / PREALLOC): a COW file's new data always has new extents, which are found anyway.
   */
  allChangedInodes?: boolean;
}

/** What to read again on `p` so that a copy of it read after generation `since` was committed equals it now. */
export async function btrfsChangedSince(p: ByteReader, since: number, opts: ChangedOptions = {}): Promise<BtrfsChanges> {
  const o = await openOrExplain(p);
  if (!o) throw new DevsnapError('BAD_SOURCE', 'No btrfs filesystem was found where one was imaged (its superblock is gone).', 'Was the partition reformatted meanwhile? Take the snapshot again.');
  if (!Number.isSafeInteger(since) || since < 0 || since > o.s.generation) {
    throw new DevsnapError(
      'BAD_SOURCE',
      `The btrfs filesystem is at generation ${o.s.generation}, before generation ${since} its earlier read saw: it is another filesystem or an older copy of it.`,
      'Take the snapshot again.',
    );
  }
  try {
    return await changes(o, since, !!opts.allChangedInodes);
  } catch (e) {
    throw explain(e);
  }
}

async function changes(o: Opened, since: number, allChangedInodes: boolean): Promise<BtrfsChanges> {
  const { p, s, map, reader } = o;
  const meta = new Runs();
  const data = new Runs();
  const addData = (disk: [number, number], what: string) => data.addAll(map.map(disk[0], disk[1], what));

  meta.add(0, Math.min(RESERVED_BYTES, p.size));
  for (const m of SUPER_MIRRORS) if (m + SUPER_SIZE <= p.size) meta.add(m, SUPER_SIZE);
  for (const c of o.chunkBlocks) if (c.generation > since) meta.addAll(c.copies);

  // Trees to walk, growing as the root tree's changed leaves name changed roots.
  const queue: RootRef[] = [{ id: ROOT_TREE, offset: 0n, logical: s.root, level: s.rootLevel, generation: -1, dead: false }];
  for (let t = 0; t < queue.length; t++) {
    const tree = queue[t];
    const name = treeName(tree);
    const files = holdsFiles(tree.id);
    const inodes = new Set<bigint>();
    await reader.walk(tree.generation < 0 ? { logical: tree.logical, level: tree.level } : tree, name, {
      tolerant: tree.dead,
      descend: (b, i) => b.ptrGeneration(i) > since,
      onBlock(b, copies) {
        if (b.generation <= since) return; // the root tree's root, unchanged: nothing below it changed either
        meta.addAll(copies);
        if (b.level) return;
        for (let i = 0; i < b.nritems; i++) {
          const type = b.itemType(i);
          if (type === ROOT_ITEM && tree.id === ROOT_TREE) {
            const r = parseRootItem(b, i);
            if (r.generation > since) queue.push(r);
          } else if (type === EXTENT_ITEM && tree.id === EXTENT_TREE) {
            // Data extents allocated after G, whoever references them (balance moves data under old file extent items).
            const d = b.itemData(i);
            if (d.length >= 24 && d.readUInt32LE(16) & EXTENT_FLAG_DATA && u64(d, 8, 'an extent generation') > since) {
              addData([b.itemObjectid(i), b.itemOffset(i)], `the data extent at logical ${b.itemObjectid(i)}`);
            }
          } else if (files && type === EXTENT_DATA) {
            const fe = parseFileExtent(b, i);
            if (fe.disk && fe.generation > since) addData(fe.disk, `${name}: an extent of inode ${b.itemKey(i).objectid}`);
          } else if (files && type === INODE_ITEM) {
            const ino = parseInode(b, i);
            if (ino.transid > since && (allChangedInodes || ino.flags & (INODE_NODATACOW | INODE_PREALLOC))) inodes.add(b.itemKey(i).objectid);
          }
        }
      },
    });
    if (inodes.size) await inodeExtents(o, tree, inodes, addData);
  }
  if (s.logRoot)
    await walkLogTrees(
      o,
      (c) => meta.addAll(c),
      (disk) => addData(disk, 'logged data'),
    );

  const dataRuns = data.toRuns();
  meta.addAll(dataRuns);
  return {
    state: stateOf(o),
    runs: meta.toRuns(),
    changedDataBytes: dataRuns.reduce((n, [, l]) => n + l, 0),
    blocksRead: reader.blocksRead,
  };
}

/**
 * Every disk extent of the given inodes, whatever its generation: data written in place (NODATACOW,
 * prealloc) keeps its old file extent items. Reads the subtrees whose key range holds those inodes,
 * changed or not.
 */
async function inodeExtents(o: Opened, tree: RootRef, inodes: Set<bigint>, addData: (disk: [number, number], what: string) => void): Promise<void> {
  const sorted = [...inodes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const anyIn = (lo: bigint, hi: bigint): boolean => {
    let a = 0;
    let b = sorted.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (sorted[m] < lo) a = m + 1;
      else b = m;
    }
    return a < sorted.length && sorted[a] <= hi;
  };
  const name = treeName(tree);
  await o.reader.walk(tree, `${name} (extents of changed inodes)`, {
    tolerant: tree.dead,
    descend: (_b, _i, lo, hi) => anyIn(lo, hi),
    onBlock(b) {
      if (b.level) return;
      for (let i = 0; i < b.nritems; i++) {
        if (b.itemType(i) !== EXTENT_DATA) continue;
        const ino = b.itemKey(i).objectid;
        if (!inodes.has(ino)) continue;
        const fe = parseFileExtent(b, i);
        if (fe.disk) addData(fe.disk, `${name}: an extent of inode ${ino}`);
      }
    },
  });
}
