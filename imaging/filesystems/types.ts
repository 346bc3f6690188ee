// Interfaces between the imaging engine and the filesystem / partition-table readers.

/** Random access to a byte range (a whole disk, or one partition with positions relative to its start). */
export interface ByteReader {
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position` (zero-filled past the end), into `into` (at least
   * `length` bytes) where the reader can: the caller may reuse `into` once done with what came back.
   */
  read(position: number, length: number, into?: Buffer): Promise<Buffer>;
}

/** What a filesystem reader found: which blocks of the partition hold data and must be imaged. */
export interface UsedBlocks {
  fs: 'ext2' | 'ext3' | 'ext4' | 'btrfs' | 'vfat' | 'ntfs';
  label?: string;
  uuid?: string;
  /** Bytes per bitmap bit (the filesystem block or cluster size, or the sector size for FAT's reserved area granularity). */
  blockSize: number;
  /** Bytes in use according to the filesystem (blocks set in `bitmap` × blockSize). */
  usedBytes: number;
  /**
   * Bit i (LSB first: byte i>>3, bit i&7) set = bytes [i*blockSize, (i+1)*blockSize) of the partition must be imaged.
   * Covers the whole partition (ceil(partitionSize / blockSize) bits); anything the filesystem does not
   * describe (boot sectors, the area past the last block, NTFS's backup boot sector) is marked used.
   */
  bitmap: Uint8Array;
  /**
   * The metadata could not be trusted as a whole (implausible geometry, a failed superblock checksum, an
   * unreadable cluster map) or is laid out in a way this reader does not follow: every bit is set and
   * the partition is imaged in full (area mode "full").
   */
  full?: boolean;
  /** What did not hold and what was imaged in full because of it, for the manifest's warnings and the output. */
  warnings?: string[];
}
