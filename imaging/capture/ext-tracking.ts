// What of an ext2/3/4 filesystem must be read again to bring an image of it from an earlier state up to
// now, from the filesystem's own records (filesystems/ext/state.ts): every inode whose bytes changed (a write,
// truncate, rename, link… always changes ctime and more) has its blocks read again, and the global
// metadata (superblocks, descriptors, bitmaps, inode tables, special inodes) always is. The design and
// its limits are in imaging/FORMAT.md, "Point in time and incrementals".
import { blocksToReread, changedInodes, incomparable, readExtState, type BlockRuns, type ExtState } from '../filesystems/ext/state';
import { parseExtSuperblock, readDescriptorTable, EXT_SB_OFFSET, EXT_SB_SIZE, RO_COMPAT_GDT_CSUM, RO_COMPAT_METADATA_CSUM } from '../filesystems/ext/superblock';
import type { ByteReader, UsedBlocks } from '../filesystems/types';
import { mergeRuns } from '../filesystems/runs';

export { readExtState, incomparable, mergeRuns, type ExtState, type BlockRuns };

/**
 * How long to wait after capturing a state before the disk is read: a write after the wait gets a
 * ctime different from any the state holds, even at the timestamps' granularity (one clock tick with
 * nanosecond timestamps, one second with 128-byte inodes).
 */
export function settleMs(s: ExtState): number {
  return s.fineTimestamps ? 50 : 1100;
}

export interface Changes {
  /** Blocks to read: metadata, the changed inodes' blocks, the journal superblock (and log, when the journal is not empty). */
  runs: BlockRuns;
  /** The journal's log when the journal is empty: its bytes do not matter and are stored as zeros. */
  deadJournal: BlockRuns;
  /** The journal's log blocks, whatever the journal's state. */
  journalLog: BlockRuns;
  /** Bytes of changed inodes' blocks (what a catch-up round would read). */
  changedBytes: number;
  changedInodes: number;
}

/**
 * What to read on `p` (now in state `after`) so that an image of it in state `before` shows `after`.
 * `logDead`: the journal's log will not matter (the filesystem is frozen, so emptied, before the end).
 */
export async function changesSince(p: ByteReader, before: ExtState, after: ExtState, logDead = false, opts: { metadata?: boolean } = {}): Promise<Changes> {
  const changed = changedInodes(before, after);
  const r = await blocksToReread(p, after, changed, before.inos);
  const dead = after.journalClean || logDead;
  // Without metadata: only the changed inodes' blocks (a pass whose metadata a frozen pass re-reads anyway).
  const runs = opts.metadata === false ? mergeRuns(r.changed) : mergeRuns([...r.metadata, ...r.changed, ...r.journalSuper, ...(dead ? [] : r.journalLog), ...(await inodeTableRuns(p))]);
  const changedBytes = r.changed.reduce((n, [, c]) => n + c * after.blockSize, 0);
  return { runs, deadJournal: after.journalClean ? r.journalLog : [], journalLog: r.journalLog, changedBytes, changedInodes: changed.length };
}

/** The journal's log blocks (all of the journal but its superblock). */
export async function journalRuns(p: ByteReader, s: ExtState): Promise<BlockRuns> {
  return (await blocksToReread(p, s, new Uint32Array(0))).journalLog;
}

/**
 * Every inode-table block an inode was ever used in: up to each group's high-water mark
 * (bg_itable_unused, with descriptor checksums), else the whole table. An inode allocated and freed
 * between two states is in neither state's list, but its bytes in an image read live may show it in
 * use; reading up to the mark replaces them.
 */
export async function inodeTableRuns(p: ByteReader): Promise<BlockRuns> {
  const s = parseExtSuperblock(await p.read(EXT_SB_OFFSET, EXT_SB_SIZE));
  if (!s) return [];
  const gdt = await readDescriptorTable(p, s);
  const csum = (s.roCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
  const perBlock = s.blockSize / s.inodeSize;
  const out: BlockRuns = [];
  for (let g = 0; g < s.groupCount; g++) {
    const d = gdt.subarray(g * s.descSize, (g + 1) * s.descSize);
    const wide = s.descSize >= 64;
    const table = d.readUInt32LE(8) + (wide ? d.readUInt32LE(0x28) * 2 ** 32 : 0);
    const unused = d.readUInt16LE(0x1c) + (wide ? d.readUInt16LE(0x32) << 16 : 0);
    const inodeUninit = (d.readUInt16LE(0x12) & 0x1) !== 0;
    let inodes = s.inodesPerGroup;
    if (csum && inodeUninit) inodes = 0;
    else if (csum && unused <= s.inodesPerGroup) inodes = s.inodesPerGroup - unused;
    const blocks = Math.ceil(inodes / perBlock);
    if (blocks > 0 && table > 0 && table + blocks <= s.blocksCount) out.push([table, blocks]);
  }
  return mergeRuns(out);
}

/** Clears the given blocks in a used-block map (a copy), so a full pass does not read them. */
export function withoutBlocks(used: UsedBlocks, runs: BlockRuns, fsBlockSize: number): UsedBlocks {
  const bitmap = Uint8Array.from(used.bitmap);
  const per = fsBlockSize / used.blockSize; // bitmap bits per filesystem block
  for (const [s, c] of runs) {
    for (let b = s * per; b < (s + c) * per; b++) bitmap[b >> 3] &= ~(1 << (b & 7));
  }
  return { ...used, bitmap };
}

/** The block runs as byte runs [from, to) of the partition. */
export function byteRuns(runs: BlockRuns, blockSize: number): [number, number][] {
  return runs.map(([s, c]) => [s * blockSize, (s + c) * blockSize]);
}
