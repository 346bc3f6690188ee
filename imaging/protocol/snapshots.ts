// Snapshots as `list`, `show` and `snapshot` describe them (the manifest without its extent maps),
// and what a snapshot would do before it runs.
import * as v from 'valibot';
import { PartitionInfo, PartitionTableKind } from './disks';

export const SnapshotStats = v.object({
  /** Bytes actually read from the source. */
  bytesRead: v.number(),
  /** Size of the source disk. */
  bytesLogical: v.number(),
  /** Bytes of data chunks (non-zero, non-free) in the image. */
  bytesUsed: v.number(),
  /** Compressed bytes this snapshot added to the repository. */
  bytesAdded: v.number(),
  chunksNew: v.number(),
  chunksReused: v.number(),
  durationSeconds: v.number(),
});
export type SnapshotStats = v.InferOutput<typeof SnapshotStats>;

export const SnapshotState = v.picklist(['verified', 'not-verified', 'damaged']);
export type SnapshotState = v.InferOutput<typeof SnapshotState>;

export const PointInTime = v.object({
  /** ISO 8601: the instant the image shows (writes paused from here). */
  at: v.string(),
  /** How long writes were paused (the longest pause of any mount). */
  pauseSeconds: v.number(),
  /** Live catch-up rounds before the pause. */
  rounds: v.number(),
  /** Bytes read again while paused. */
  rereadBytes: v.number(),
  /** Per read-write mount: 'two-pass' (fsfreeze for the last pass), 'two-pass-ro' (read-only for the last pass: NTFS), 'remount-ro' (read-only while read), 'frozen' (fsfreeze while read), 'lvm-snapshot'. */
  methods: v.array(v.object({ mountpoint: v.string(), partition: v.optional(v.number()), how: v.string() })),
});
export type PointInTime = v.InferOutput<typeof PointInTime>;

/**
 * How the image is one point in time: 'offline' (nothing mounted read-write), 'native-snapshot'
 * (LVM), 'frozen-two-pass' (read live, then the changes re-read with writes paused briefly),
 * 'frozen' (writes paused for the whole snapshot), 'fuzzy' (read live without a point in time, only
 * when forced); 'crash-consistent' is what earlier versions called a fuzzy read.
 */
export const Consistency = v.picklist(['offline', 'native-snapshot', 'frozen-two-pass', 'frozen', 'fuzzy', 'crash-consistent']);

export const SnapshotSummary = v.object({
  id: v.string(),
  label: v.string(),
  /** ISO 8601. */
  created: v.string(),
  host: v.string(),
  source: v.object({ path: v.string(), size: v.number(), model: v.optional(v.string()), table: PartitionTableKind, diskId: v.optional(v.string()) }),
  consistency: Consistency,
  /** For a running system: when writes were paused, for how long, and how each mount was handled. */
  pointInTime: v.optional(PointInTime),
  /** 'changes': filesystems were read only where they changed since the parent; 'all': every used block was read. */
  readMode: v.optional(v.picklist(['all', 'changes'])),
  parent: v.optional(v.string()),
  pinned: v.boolean(),
  state: SnapshotState,
  verifiedAt: v.optional(v.string()),
  stats: SnapshotStats,
  partitions: v.array(PartitionInfo),
});
export type SnapshotSummary = v.InferOutput<typeof SnapshotSummary>;

/** A snapshot as `list` shows it: its summary, and how many warnings its manifest holds. */
export const ListedSnapshot = v.object({ ...SnapshotSummary.entries, warningCount: v.number() });
export type ListedSnapshot = v.InferOutput<typeof ListedSnapshot>;

/** A snapshot whose manifest cannot be used (corrupt, truncated, tampered with, or another snapshot's copied under this id). */
export const DamagedSnapshot = v.object({
  /** Its file name in snapshots/: how to name it (e.g. to forget it). */
  id: v.string(),
  message: v.string(),
  hint: v.optional(v.string()),
  /** What its last summary said, when there was one. */
  label: v.optional(v.string()),
  created: v.optional(v.string()),
});
export type DamagedSnapshot = v.InferOutput<typeof DamagedSnapshot>;

export const ListResult = v.object({
  snapshots: v.array(ListedSnapshot),
  /** Listed, never left out: `list` exits with DAMAGED's code when there is any. */
  damaged: v.array(DamagedSnapshot),
});
export type ListResult = v.InferOutput<typeof ListResult>;

export const ShowResult = v.object({ snapshot: SnapshotSummary, warnings: v.array(v.string()) });
export type ShowResult = v.InferOutput<typeof ShowResult>;
export const SnapshotRefResult = v.object({ snapshot: SnapshotSummary });
export type SnapshotRefResult = v.InferOutput<typeof SnapshotRefResult>;
export const SnapshotOpResult = v.object({ id: v.string(), snapshot: SnapshotSummary, warnings: v.array(v.string()) });
export type SnapshotOpResult = v.InferOutput<typeof SnapshotOpResult>;

/** What a snapshot of `source` would do (capture/plan.ts): shown before the user confirms. */
export const SnapshotPlan = v.object({
  source: v.string(),
  /** 'native-snapshot' when every read-write mount is read from an LVM snapshot. */
  consistency: v.picklist(['offline', 'native-snapshot', 'frozen-two-pass']),
  isSystem: v.boolean(),
  /** Each read-write mount: 'two-pass' (paused for the last pass), 'two-pass-ro' (read-only for the last pass: NTFS), 'frozen' or 'remount-ro' (paused while read), 'lvm-snapshot' (an instant), 'unsupported'. */
  mounts: v.array(
    v.object({
      mountpoint: v.string(),
      partition: v.optional(v.number()),
      fstype: v.optional(v.string()),
      how: v.picklist(['two-pass', 'two-pass-ro', 'frozen', 'remount-ro', 'lvm-snapshot', 'unsupported']),
      pauseSeconds: v.optional(v.number()),
      holdsRepository: v.boolean(),
    }),
  ),
  /** About how long writers wait (the longest of any mount), an estimate. */
  pauseSeconds: v.number(),
  /** Why the snapshot would be refused, and what to do. */
  problem: v.optional(v.object({ message: v.string(), hint: v.string() })),
});
export type SnapshotPlan = v.InferOutput<typeof SnapshotPlan>;
