// What the ext change scan produces: a filesystem's state (state.ts) and the blocks to read again
// after comparing two states (reread.ts).

/** One filesystem's state at a moment: identity, geometry, and a fingerprint per in-use inode. */
export interface ExtState {
  uuid: string;
  blockSize: number;
  blocksCount: number;
  inodesCount: number;
  inodeSize: number;
  groupCount: number;
  firstDataBlock: number;
  /** compat/incompat/ro_compat feature words and anything else geometry-defining, joined: equal strings = same layout. */
  layoutKey: string;
  /** Proof-of-history fields from the superblock: s_mnt_count, s_lastcheck, s_state, s_kbytes_written, s_wtime. */
  mountCount: number;
  lastCheck: number;
  state: number;
  kbytesWritten: number;
  writeTime: number;
  /** True when inodes carry nanosecond timestamps (inode size > 128 with extra_isize covering the time fields). */
  fineTimestamps: boolean;
  /** Journal: inode number (0 = none) and whether the journal is empty (jbd2 superblock s_start == 0 and no needs_recovery flag in the fs superblock). */
  journalInode: number;
  journalClean: boolean;
  /** In-use inodes (per the inode bitmaps; groups flagged INODE_UNINIT have none), ascending. */
  inos: Uint32Array;
  /** 64-bit fingerprint of each in-use inode's raw bytes excluding i_atime, i_atime_extra, i_checksum_lo/hi: prints[2i], prints[2i+1] for inos[i]. */
  prints: Uint32Array;
  /** Every distinct xattr block (i_file_acl) of an in-use inode, ascending. */
  xattrBlocks: Float64Array;
}

/** Block runs [firstBlock, count] (filesystem blocks, sorted, merged, within the fs). */
export type BlockRuns = Array<[number, number]>;

export interface Reread {
  /** Global metadata: superblocks and descriptor tables (reserved GDT included), bitmaps, the inode-table blocks of in-use inodes, the MMP block, xattr blocks, special inodes' blocks. */
  metadata: BlockRuns;
  /** Every block of each changed inode: mapping blocks and mapped data blocks (uninitialized extents included). */
  changed: BlockRuns;
  /** The journal inode's first block (the jbd2 superblock), and the rest of its blocks (log and mapping). */
  journalSuper: BlockRuns;
  journalLog: BlockRuns;
}
