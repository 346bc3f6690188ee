// Which clusters of an NTFS volume can differ from an earlier state of it: the NTFS counterpart of
// filesystems/ext/state.ts, for the two-pass snapshot of a volume mounted read-write through ntfs-3g (which
// cannot be frozen): capture state S0, read every used cluster live, remount read-only for a moment,
// capture S1, read again only ntfsChangesSince(S0, S1).runs, remount read-write.
//
// Design. Every change to a file or directory rewrites its MFT record: $STANDARD_INFORMATION's
// modification and MFT-change times (set by the driver to "now", 100 ns units), the sizes and runlists
// of non-resident attributes, $FILE_NAME attributes, resident $INDEX_ROOT entries. A state keeps, per
// MFT record number, a 64-bit fingerprint of the record's bytes after fixups, excluding only what is
// rewritten without a change of content: the update sequence number (bumped on every write of the
// record) and the last-access times ($STANDARD_INFORMATION +0x18, $FILE_NAME +0x20, and the copies of
// children's $FILE_NAME in a resident directory $INDEX_ROOT, which ntfs-3g rewrites when a child is read).
// The last-access times get a 32-bit fingerprint of their own ("touched" records). Then the clusters to read again are:
//   - always: the boot sector (cluster 0) and everything past the last cluster (the backup boot
//     sector), and every non-resident attribute of the system files: records 0–23 ($MFT's data and
//     bitmap, $MFTMirr, $LogFile, $Volume, $AttrDef, $Bitmap, $Boot, $BadClus's allocated runs, $Secure's
//     $SDS/$SII/$SDH, $UpCase, reserved/extension records) and every record under $Extend, transitively
//     ($ObjId, $Quota, $Reparse, $UsnJrnl, $RmMetadata…): their clusters change without their records
//     changing. The whole $MFT is in that set, so every record's own bytes are always read again.
//   - for each record whose fingerprint changed, that appeared, or that could not be read (torn while
//     live): the whole file it belongs to (its base record and every extension record the base's
//     attribute list names): every non-resident attribute's allocated runs in the later state (data and
//     named streams, $INDEX_ALLOCATION, $BITMAP, non-resident attribute lists, $EA, $REPARSE_POINT,
//     $LOGGED_UTILITY_STREAM; sparse runs have no clusters; compressed runs: the allocated ones);
//   - for each such record, and each merely touched one: the non-resident attributes of the
//     directories its $FILE_NAME attributes name as parents, since a directory's index entries carry
//     copies of each child's times and sizes, rewritten (in $INDEX_ALLOCATION clusters) without the
//     directory's own record changing.
// A record that disappeared has nothing to read in the later state: its directory's record changed too
// (the entry's removal sets the directory's times), and its freed clusters are not used any more.
//
// Limits.
//   - Writes that bypass ntfs-3g (dd onto the device, another driver on the same device, a shared
//     writable mmap flushed after the state) change clusters without any record changing: not seen.
//   - Windows hibernation / fast startup: such a volume is not mounted read-write by Linux (ntfs-3g
//     refuses), so no live state of it is taken; Windows itself logs through $LogFile and may delay record
//     writes — states of a volume written by Windows while mounted elsewhere are not supported.
//   - The times are set by the driver from the clock. A clock stepped back can make a record's times
//     repeat an earlier state's, but the bytes repeat only if every other field does too (sizes, runlist,
//     names, index root): a rewrite of data in place with the same size and allocation at exactly the
//     same 100 ns tick as the earlier state's times. That needs the clock to land on the very tick twice,
//     so it is not plausible in practice; the caller can still watch the clock across a snapshot.
//   - An index entry in a parent directory rewritten after the child's record was captured (an
//     in-flight sync at the moment of a live state) is read again only when the child's record differs
//     between the two states: the record is written last in ntfs-3g's inode sync, so this does not occur.
//   - Identity is the boot sector's serial number and geometry. mkntfs seeds the serial from the clock,
//     so two volumes formatted in the same second with the same size compare: bind states to the device
//     too (the lead's snapshot takes both states of one device within one run).
//   - No settle time is needed after a state: the driver's times have 100 ns resolution.
//   - ntfsChangesSince re-reads the records it follows and checks them against `after`'s fingerprints:
//     it must run while the volume is still in that state (writes paused), or it throws.
//   - A live state (opts.live) takes torn records (fixups not matching) as unknown, hence changed; the
//     last state of a snapshot must be read with writes paused, strictly.
// Anything that does not hold makes readNtfsState answer null and ntfsChangesSince throw a DevsnapError:
// the caller then reads everything with writes paused, which is always safe.

import { mergeRuns } from '../runs';
import { DevsnapError } from '../../core/errors';
import { Implausible, parseRecord, type Attr } from './used-blocks';
import { Mft, attrRuns, baseOf, fileAttrs, parentsOf, type ClusterRuns } from './mft';
import type { ByteReader } from '../types';
import { fingerprintRecord, open, type NtfsState } from './state-read';

export type { ClusterRuns };
// Reading a state (state-read.ts), for the importers of this module.
export { ntfsMftBytes, readNtfsState, type NtfsState } from './state-read';

export interface NtfsChanges {
  /** Clusters [first, count] to read again, relative to the partition start, sorted and merged. */
  runs: ClusterRuns;
  /** Records that changed, appeared, disappeared or could not be read in the earlier state. */
  changedRecords: number;
  /** Bytes of the changed files' (and their directories') clusters, the selective part of `runs`. */
  changedBytes: number;
  /** Bytes of what is read again always (system files, boot sectors, the whole $MFT). */
  alwaysBytes: number;
}

/** Why two states cannot be compared, or null if they can. */
export function ntfsIncomparable(a: NtfsState, b: NtfsState): string | null {
  if (a.serial !== b.serial) return `the volume serial number changed (${a.serial} → ${b.serial}): another volume, or it was reformatted`;
  if (a.bytesPerSector !== b.bytesPerSector || a.clusterSize !== b.clusterSize || a.recordSize !== b.recordSize || a.mftLcn !== b.mftLcn) {
    return "the sector, cluster or MFT record size or the MFT's place changed: the volume was reformatted";
  }
  if (a.clusterCount !== b.clusterCount || a.totalSectors !== b.totalSectors) return `the volume was resized (${a.totalSectors} → ${b.totalSectors} sectors)`;
  if (!(a.prints instanceof Uint32Array) || !(b.prints instanceof Uint32Array)) return 'a state was not made by readNtfsState';
  return null;
}

/**
 * Records in use (or unknown) in `after` whose fingerprint differs from `before` or that `before` did
 * not have in use (`changed`); those whose access times alone differ (`touched`); and records in use in
 * `before` only (`gone`). Ascending.
 */
export function ntfsChangedRecords(before: NtfsState, after: NtfsState): { changed: number[]; touched: number[]; gone: number[] } {
  const changed: number[] = [];
  const touched: number[] = [];
  const gone: number[] = [];
  for (let r = 0; r < Math.max(before.records, after.records); r++) {
    const sa = r < after.records ? after.status[r] : 0;
    const sb = r < before.records ? before.status[r] : 0;
    if (sa) {
      if (sb !== 1 || sa !== 1 || before.prints[2 * r] !== after.prints[2 * r] || before.prints[2 * r + 1] !== after.prints[2 * r + 1]) changed.push(r);
      else if (before.atimes[r] !== after.atimes[r]) touched.push(r);
    } else if (sb) gone.push(r);
  }
  return { changed, touched, gone };
}

/**
 * What to read again on `p` (now in state `after`) so that an image of it read live after `before` was
 * captured shows `after`. `live`: `p` is still written (an incremental's first pass, whose last pass
 * re-reads whatever changed after `after`): a record that changed since `after` is read as it is now
 * rather than refused.
 */
export async function ntfsChangesSince(p: ByteReader, before: NtfsState, after: NtfsState, opts: { live?: boolean } = {}): Promise<NtfsChanges> {
  const why = ntfsIncomparable(before, after);
  if (why) throw new DevsnapError('BAD_SOURCE', `NTFS change tracking: the states cannot be compared: ${why}.`, 'Read the whole volume with writes paused.');
  try {
    return await changes(p, before, after, !!opts.live);
  } catch (e) {
    if (e instanceof Implausible || e instanceof RangeError) {
      throw new DevsnapError('BAD_SOURCE', `NTFS change tracking: ${e.message}.`, 'Read the whole volume with writes paused; run chkdsk /f (Windows) or ntfsfix on it.');
    }
    throw e;
  }
}

async function changes(p: ByteReader, before: NtfsState, after: NtfsState, live: boolean): Promise<NtfsChanges> {
  const o = await open(p);
  if (!o) throw new Implausible('the volume is not (any more) an NTFS volume devsnap can follow');
  const { g } = o;
  if (
    g.clusterSize !== after.clusterSize ||
    g.clusterCount !== after.clusterCount ||
    g.recordSize !== after.recordSize ||
    o.bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0') !== after.serial
  ) {
    throw new Implausible('the volume is not the one the later state describes');
  }
  const mft = await Mft.open(g);
  if (mft.records < after.records) throw new Implausible('the MFT shrank since the later state was read');

  // Records as they are now, checked against the later state's fingerprints: the volume must still be in it.
  const cache = new Map<number, Attr[] | null>();
  const scratch = Buffer.alloc(g.recordSize);
  const words = new Uint32Array(scratch.buffer, scratch.byteOffset, g.recordSize >> 2);
  const fp = new Uint32Array(2);
  const fa = new Uint32Array(1);
  const bases = new Map<number, number>();
  const prefetch = async (nums: Iterable<number>): Promise<void> => {
    const want = [...new Set(nums)].filter((r) => !cache.has(r)).sort((a, b) => a - b);
    for (const [r, raw] of await mft.readMany(want)) {
      const check = Buffer.from(raw);
      raw.copy(scratch);
      const got = fingerprintRecord(scratch, words, r, g.recordSize, fp, fa, 0);
      if (typeof got === 'string') {
        if (got === 'free') {
          cache.set(r, null);
          continue;
        }
        throw new Implausible(got === 'bad' ? `MFT record ${r} is marked bad (BAAD)` : got);
      }
      if (!live && r < after.records && after.status[r] === 1 && (fp[0] !== after.prints[2 * r] || fp[1] !== after.prints[2 * r + 1])) {
        throw new Implausible(`MFT record ${r} changed since the later state was read`);
      }
      const attrs = parseRecord(check, r, g.recordSize); // unzeroed bytes: the runs themselves
      cache.set(r, attrs);
      bases.set(r, baseOf(check, r));
    }
    for (const r of want) if (!cache.has(r)) cache.set(r, null);
  };
  const load = async (r: number): Promise<Attr[] | null> => {
    if (!cache.has(r)) await prefetch([r]);
    return cache.get(r)!;
  };

  const { changed, touched, gone } = ntfsChangedRecords(before, after);

  const always = new RunList();
  const selective = new RunList();
  always.add(0, 1);
  always.add(g.clusterCount, Math.ceil(p.size / g.clusterSize) - g.clusterCount);
  const addFile = async (base: number, into: RunList, done: Set<number>): Promise<number[]> => {
    if (done.has(base)) return [];
    done.add(base);
    const f = await fileAttrs(g, base, load);
    if (!f) return [];
    for (const { n, a } of f.attrs) {
      if (!a.nonResident) continue;
      for (const e of attrRuns(g, a, n)) if (e.lcn !== null) into.add(e.lcn, e.length);
    }
    return parentsOf(f);
  };

  await prefetch([...after.system, ...changed, ...touched]);
  const sysDone = new Set<number>();
  for (const r of after.system) if (bases.get(r) === r) await addFile(r, always, sysDone);
  for (const e of mftExtents(mft)) always.add(e[0], e[1]);

  // Changed records' files, then the directories naming them (and the touched records).
  const baseOfChanged = (rs: number[]) => rs.filter((r) => cache.get(r)).map((r) => bases.get(r)!);
  const changedBases = baseOfChanged(changed);
  const touchedBases = baseOfChanged(touched);
  await prefetch([...changedBases, ...touchedBases]);
  const done = new Set<number>(sysDone);
  const parents = new Set<number>();
  for (const b of changedBases) for (const d of await addFile(b, selective, done)) parents.add(d);
  const touchedDone = new Set<number>();
  for (const b of touchedBases) {
    if (touchedDone.has(b)) continue;
    touchedDone.add(b);
    const f = await fileAttrs(g, b, load);
    if (f) for (const d of parentsOf(f)) parents.add(d);
  }
  await prefetch([...parents].filter((d) => d < mft.records));
  for (const d of parents) if (d < mft.records && cache.get(d) && bases.get(d) === d) await addFile(d, selective, done);

  const sel = selective.toRuns();
  const all = always.toRuns();
  const count = (runs: ClusterRuns) => runs.reduce((s, [, c]) => s + c * g.clusterSize, 0);
  return {
    runs: mergeClusterRuns([...all, ...sel]),
    changedRecords: changed.length + gone.length,
    changedBytes: count(sel),
    alwaysBytes: count(all),
  };
}

function mftExtents(mft: Mft): ClusterRuns {
  return mft.extents.filter((e) => e.lcn !== null).map((e) => [e.lcn!, e.length]);
}

/** Sorts and merges cluster runs. */
export const mergeClusterRuns = (runs: ClusterRuns): ClusterRuns => mergeRuns(runs);

/** Cluster runs collected in any order. */
class RunList {
  private runs: ClusterRuns = [];
  add(start: number, count: number): void {
    if (!(count > 0)) return;
    const last = this.runs[this.runs.length - 1];
    if (last && start >= last[0] && start <= last[0] + last[1]) last[1] = Math.max(last[1], start + count - last[0]);
    else this.runs.push([start, count]);
    if (this.runs.length > 1 << 16) this.runs = mergeClusterRuns(this.runs);
  }
  toRuns(): ClusterRuns {
    return mergeClusterRuns(this.runs);
  }
}
