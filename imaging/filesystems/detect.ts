// Picks the filesystem reader for a partition. ext first (strongest magic), then btrfs (magic at 64 KiB), FAT last (loosest check).

import { readBtrfs } from './btrfs/btrfs';
import { readExt } from './ext/used-blocks';
import { readFat } from './fat/used-blocks';
import { readNtfs } from './ntfs/used-blocks';
import type { ByteReader, UsedBlocks } from './types';

const READERS = [readExt, readBtrfs, readNtfs, readFat];

/** The used blocks of the filesystem on `p`, or null when no supported filesystem is found. */
export async function detectFilesystem(p: ByteReader, opts: { flushed?: boolean } = {}): Promise<UsedBlocks | null> {
  for (const read of READERS) {
    const found = read === readExt ? await readExt(p, opts) : await read(p);
    if (found) return found;
  }
  return null;
}
