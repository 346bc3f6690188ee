// The ext3/4 journal (jbd2) of a filesystem that needs recovery: which home blocks its transactions
// will overwrite when it is replayed. A block bitmap or descriptor block listed there is newer in the
// journal than at home, so the home copy may call freshly written data free (a snapshot of a mounted
// filesystem, taken without --freeze, always sees such a journal).
// Reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/journal.html (all fields big-endian).

import { ExtImageFs } from './reader';
import type { ExtSuperblock } from './superblock';
import type { ByteReader } from '../types';

const JBD2_MAGIC = 0xc03b3998;
const BLOCK_DESCRIPTOR = 1;
const BLOCK_COMMIT = 2;
const BLOCK_SB_V1 = 3;
const BLOCK_SB_V2 = 4;
const BLOCK_REVOKE = 5;
const INCOMPAT_64BIT = 0x2;
const INCOMPAT_CSUM_V2 = 0x8;
const INCOMPAT_CSUM_V3 = 0x10;
const INCOMPAT_FAST_COMMIT = 0x20;
const TAG_SAME_UUID = 0x2;
const TAG_LAST = 0x8;

/**
 * Home block numbers the journal's transactions would write on replay, or a string saying why the
 * journal could not be followed (the caller then trusts no bitmap). Revoke records are ignored: a
 * revoked block counts as logged, which only makes the result more cautious.
 */
export async function journalledBlocks(p: ByteReader, s: ExtSuperblock, journalInode: number): Promise<Set<number> | string> {
  if (!journalInode) return 'the journal is on another device';
  const fsr = await ExtImageFs.open(p);
  if (!fsr) return 'the journal inode cannot be read';
  const block = async (n: number, size: number) => fsr.readInodeData(journalInode, n * size, size);

  const jsb = await block(0, s.blockSize);
  const type = jsb.readUInt32BE(4);
  if (jsb.readUInt32BE(0) !== JBD2_MAGIC || (type !== BLOCK_SB_V1 && type !== BLOCK_SB_V2)) return 'the journal superblock is damaged';
  const size = jsb.readUInt32BE(0x0c);
  const maxLen = jsb.readUInt32BE(0x10);
  const first = jsb.readUInt32BE(0x14);
  let seq = jsb.readUInt32BE(0x18);
  let at = jsb.readUInt32BE(0x1c);
  const incompat = type === BLOCK_SB_V2 ? jsb.readUInt32BE(0x28) : 0;
  if (size !== s.blockSize || first === 0 || first >= maxLen || at >= maxLen) return 'the journal superblock is implausible';
  const logged = new Set<number>();
  if (at === 0) return logged; // s_start 0: nothing to replay
  // Fast commits are replayed by re-running allocations from inode records: no block list to check.
  if (incompat & INCOMPAT_FAST_COMMIT) return 'it uses fast commits';

  const csum3 = (incompat & INCOMPAT_CSUM_V3) !== 0;
  const tagBytes = csum3 ? 16 : 8 + (incompat & INCOMPAT_CSUM_V2 ? 2 : 0) + (incompat & INCOMPAT_64BIT ? 4 : 0);
  const tail = incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) ? 4 : 0; // descriptor block checksum
  const next = (b: number) => (b + 1 >= maxLen ? first : b + 1);
  // Every block of the log is visited at most once; the walk ends at the first block of another sequence.
  for (let visited = 0; visited < maxLen;) {
    const b = await block(at, size);
    if (b.readUInt32BE(0) !== JBD2_MAGIC || b.readUInt32BE(8) !== seq) break;
    const kind = b.readUInt32BE(4);
    at = next(at);
    visited++;
    if (kind === BLOCK_COMMIT) seq = (seq + 1) >>> 0;
    else if (kind === BLOCK_DESCRIPTOR) {
      for (let off = 12; off + tagBytes <= size - tail;) {
        const lo = b.readUInt32BE(off);
        const flags = csum3 ? b.readUInt32BE(off + 4) : b.readUInt16BE(off + 6);
        const hi = incompat & INCOMPAT_64BIT ? b.readUInt32BE(off + 8) : 0; // t_blocknr_high, in both tag layouts
        logged.add(hi * 2 ** 32 + lo);
        at = next(at); // the logged copy follows the descriptor
        visited++;
        off += tagBytes + (flags & TAG_SAME_UUID ? 0 : 16);
        if (flags & TAG_LAST) break;
      }
    } else if (kind !== BLOCK_REVOKE) break;
  }
  return logged;
}
