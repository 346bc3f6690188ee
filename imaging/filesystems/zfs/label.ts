// ZFS pool members, from their vdev labels: devsnap does not image a live ZFS pool at a point in time
// (its blocks are written by the pool's transaction groups, which no freeze of a mount pauses), so it
// must at least know one is there. A vdev has four 256 KiB labels (two at the start, two at the end,
// the end ones aligned down to 256 KiB); each holds the pool's configuration as an XDR-encoded nvlist
// at 16 KiB and a ring of 1 KiB uberblocks at 128 KiB. Like libblkid, a partition is a member when at
// least four uberblock magics are found; the pool's name and state come from the nvlist's top level.
import type { ByteReader } from '../types';

const LABEL = 256 * 1024;
const NVLIST_AT = 16 * 1024;
const NVLIST_SIZE = 112 * 1024;
const UBERBLOCKS_AT = 128 * 1024;
const UBERBLOCK = 1024;
const MAGIC = 0x00bab10cn;
const MAGIC_SWAPPED = 0x0cb1ba0000000000n; // written big-endian
const WANT = 4;
const MIN_SIZE = 64 << 20; // a vdev is at least 64 MiB

const DATA_TYPE_UINT64 = 8;
const DATA_TYPE_STRING = 9;

/** POOL_STATE_* of the label's "state". */
export const POOL_STATE = { active: 0, exported: 1, destroyed: 2, spare: 3, l2cache: 4 } as const;

export interface ZfsLabel {
  /** The pool's name (null when the label does not say: a spare or cache device). */
  pool: string | null;
  /** POOL_STATE: 0 active (imported, or not exported cleanly), 1 exported, 2 destroyed… */
  state: number | null;
  uberblocks: number;
}

/** Where the four labels of a device of `size` bytes are. */
function labelOffsets(size: number): number[] {
  const end = size - (size % LABEL);
  return [0, LABEL, end - 2 * LABEL, end - LABEL];
}

function countUberblocks(label: Buffer): number {
  let n = 0;
  for (let at = UBERBLOCKS_AT; at + 8 <= label.length; at += UBERBLOCK) {
    const m = label.readBigUInt64LE(at);
    if (m === MAGIC || m === MAGIC_SWAPPED) n++;
  }
  return n;
}

/**
 * The top-level string and uint64 pairs of an XDR nvlist (12 bytes of header, then pairs of
 * [encoded size, decoded size, name length, name padded to 4, type, count, value], big-endian,
 * ending with a zero size). Nested lists are skipped by their size. Stops at anything malformed.
 */
export function topLevelPairs(nv: Buffer): Map<string, string | bigint> {
  const out = new Map<string, string | bigint>();
  let at = 12;
  for (let guard = 0; guard < 4096 && at + 12 <= nv.length; guard++) {
    const size = nv.readUInt32BE(at);
    if (size === 0 || size < 12 || at + size > nv.length) break;
    const nameLen = nv.readUInt32BE(at + 8);
    const valueAt = at + 12 + Math.ceil(nameLen / 4) * 4; // (not `& ~3`: a hostile length is past int32)
    if (nameLen === 0 || valueAt + 8 > at + size) break;
    const name = nv.toString('latin1', at + 12, at + 12 + nameLen).replace(/\0+$/, '');
    const type = nv.readUInt32BE(valueAt);
    if (type === DATA_TYPE_STRING && valueAt + 12 <= at + size) {
      const len = nv.readUInt32BE(valueAt + 8);
      if (valueAt + 12 + len <= at + size) out.set(name, nv.toString('utf8', valueAt + 12, valueAt + 12 + len).replace(/\0+$/, ''));
    } else if (type === DATA_TYPE_UINT64 && valueAt + 16 <= at + size) {
      out.set(name, nv.readBigUInt64BE(valueAt + 8));
    }
    at += size;
  }
  return out;
}

/** The ZFS label on `p`, or null when `p` is not a ZFS pool member. */
export async function readZfsLabel(p: ByteReader): Promise<ZfsLabel | null> {
  if (p.size < MIN_SIZE) return null;
  let found = 0;
  let first: Buffer | null = null;
  for (const off of labelOffsets(p.size)) {
    const label = await p.read(off, LABEL);
    const n = countUberblocks(label);
    if (n && !first) first = label;
    found += n;
  }
  if (found < WANT || !first) return null;
  const pairs = topLevelPairs(first.subarray(NVLIST_AT, NVLIST_AT + NVLIST_SIZE));
  const pool = pairs.get('name');
  const state = pairs.get('state');
  return { pool: typeof pool === 'string' && pool ? pool : null, state: typeof state === 'bigint' && state < 256n ? Number(state) : null, uberblocks: found };
}
