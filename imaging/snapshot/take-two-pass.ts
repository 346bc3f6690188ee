// The end of a two-pass snapshot (take.ts): catch-up rounds while the source is still written, the
// last pass with writes paused, and the point in time the image then shows.
import { DevsnapError } from '../core/errors';
import type { MountUse } from '../disk/device';
import type { PartitionTable } from '../disk/partitions';
import type { SourceRead } from '../disk/source';
import type { UsedBlocks } from '../filesystems/types';
import type { Logger } from '../repo/repository';
import type { CellStore } from '../capture/cells';
import { canFreeze } from '../capture/pause';
import { catchUp, clockOffset, frozenPass, type PassStats, type Tracked } from '../capture/point-in-time';
import type { LvmSession } from '../capture/lvm-source';
import type { PointInTime } from '../protocol';

/** A first pass shorter than this leaves too little written meanwhile for a catch-up round to shorten the pause. */
const CATCH_UP_AFTER_MS = 5000;

/** The wall clock was set back by `seconds` while a two-pass snapshot ran. */
export class ClockStepped extends DevsnapError {
  constructor(readonly seconds: number) {
    super(
      'BAD_SOURCE',
      `The system clock was set back by ${seconds.toFixed(1)} s while the snapshot ran, so changes made meanwhile cannot be told apart by their times.`,
      'Take the snapshot again once the clock is settled.',
    );
  }
}

/** What the end of a two-pass snapshot works on: take.ts's source, store and tracked areas. */
export interface TwoPassEnd {
  src: SourceRead;
  source: string;
  repoDir: string;
  store: CellStore;
  stats: PassStats;
  signal?: AbortSignal;
  log: Logger;
  warn: (m: string) => void;
  /** Every tracked area: those of mounted filesystems are caught up, then read again with writes paused. */
  tracked: Tracked[];
  /** performance.now() when the snapshot started. */
  started: number;
  /** clockOffset() before the first state was captured. */
  clock0: number;
  table: PartitionTable;
  /** The source's read-write mounts; viaLvm: read from an LVM snapshot of lvm's. */
  rw: MountUse[];
  viaLvm: (m: MountUse) => boolean;
  lvm: LvmSession | null;
  /** Every read-write mount is read from an LVM snapshot. */
  native: boolean;
}

/** Catches up live, then the final pass with writes paused; the point in time the image shows. */
export async function finishTwoPass(x: TwoPassEnd): Promise<PointInTime> {
  const { src, store, stats, started, clock0, warn, rw, viaLvm, lvm, table, native } = x;
  const live = x.tracked.filter((t) => t.mountpoint);
  // Catch-up rounds pay off after a long first pass; after a short one the frozen pass reads little anyway.
  const liveExt = live.filter((t) => t.kind === 'ext');
  const rounds = liveExt.length && performance.now() - started > CATCH_UP_AFTER_MS ? await catchUp(src, liveExt, store, x.source, stats, x.signal) : 0;
  await store.drain(); // nothing may be written to the repository while frozen
  let fin = { at: new Date().toISOString(), pauseSeconds: 0, rereadBytes: 0, uncoveredBlocks: 0, used: new Map<Tracked, UsedBlocks | null>() };
  if (live.length) {
    x.log(`Pausing writes to ${live.map((t) => t.mountpoint).join(', ')} for the last pass…`);
    fin = await frozenPass(src, live, store, x.source, stats, x.repoDir);
    x.log(`Writes resumed after ${fin.pauseSeconds.toFixed(2)} s.`);
    // Should not happen (FORMAT.md): said, so that it is seen where it does.
    if (fin.uncoveredBlocks) x.log(`${fin.uncoveredBlocks} blocks in use were in neither the first pass's block map nor the changes: read again while writes were paused.`);
    if (clockOffset() < clock0 - 20) throw new ClockStepped((clock0 - clockOffset()) / 1000);
  }
  for (const [t, used] of fin.used) {
    for (const w of used?.warnings ?? []) warn(`Partition ${t.cells.area.partition}: ${w}`);
    if (!used || used.full)
      throw new DevsnapError(
        'BAD_SOURCE',
        `The filesystem at ${t.mountpoint} does not hold while writes are paused${used?.warnings?.length ? ` (${used.warnings.join('; ')})` : ''}.`,
        `Run ${t.kind === 'ext' ? 'e2fsck' : '`btrfs check --readonly`'} on it from a recovery environment; meanwhile use --freeze for a consistent snapshot.`,
      );
    t.cells.area.used = used;
  }
  const methods = [
    ...live.map((t) => ({ mountpoint: t.mountpoint!, partition: t.cells.area.partition, how: t.kind === 'ntfs' ? 'two-pass-ro' : 'two-pass' })),
    ...(lvm?.methods ?? []),
    ...rw
      .filter((m) => !viaLvm(m) && !live.some((t) => t.mountpoint === m.mountpoint))
      .map((m) => ({ mountpoint: m.mountpoint, ...partitionAt(table, m.offset), how: canFreeze(m.fstype) ? 'frozen' : 'remount-ro' })),
  ];
  // Every mount from an LVM snapshot: the image shows the instant the (first) snapshot was made.
  return { at: native && lvm ? lvm.at : fin.at, pauseSeconds: fin.pauseSeconds, rounds, rereadBytes: fin.rereadBytes, methods };
}

const partitionAt = (table: PartitionTable, offset: number | undefined) => {
  const p = table.partitions.find((x) => x.start === offset);
  return p ? { partition: p.index } : {};
};
