// The results of the operations that change or check a repository or a disk.
import * as v from 'valibot';
import { DamagedSnapshot } from './snapshots';

export const RestoreOpResult = v.object({
  ok: v.literal(true),
  dryRun: v.boolean(),
  snapshot: v.string(),
  target: v.string(),
  targetKind: v.picklist(['block', 'file', 'new-file']),
  targetSize: v.number(),
  bytesNeeded: v.number(),
  bytesToWrite: v.number(),
  bytesWritten: v.number(),
  gptRelocated: v.boolean(),
  areas: v.array(
    v.object({
      kind: v.picklist(['raw', 'partition']),
      partition: v.optional(v.number()),
      offset: v.number(),
      size: v.number(),
      mode: v.picklist(['raw', 'used-blocks', 'full']),
    }),
  ),
  /** With newIds: every id that changed, the restored system's files updated, and what kept its id. */
  newIds: v.optional(
    v.object({
      changed: v.array(v.object({ partition: v.nullable(v.number()), what: v.picklist(['disk', 'partition', 'filesystem']), kind: v.optional(v.string()), from: v.string(), to: v.string() })),
      filesUpdated: v.array(v.string()),
      warnings: v.array(v.string()),
    }),
  ),
  /** A whole disk onto a smaller one: each partition's old and new place, and whether its filesystem shrinks. */
  resized: v.optional(
    v.array(
      v.object({ partition: v.number(), fs: v.optional(v.string()), fromStart: v.number(), fromSize: v.number(), start: v.number(), size: v.number(), how: v.picklist(['keep', 'move', 'shrink']) }),
    ),
  ),
});
export type RestoreOpResult = v.InferOutput<typeof RestoreOpResult>;

export const DamageInfo = v.object({
  partition: v.nullable(v.number()),
  offset: v.number(),
  length: v.number(),
  chunk: v.string(),
  message: v.string(),
});
export type DamageInfo = v.InferOutput<typeof DamageInfo>;

/** A snapshot compared with a disk: byte ranges (disk offsets) where a block in use differs. */
export const DiskComparison = v.object({
  source: v.string(),
  equal: v.boolean(),
  bytesCompared: v.number(),
  differingBytes: v.number(),
  /** The first differing ranges (at most 20), merged. */
  differences: v.array(v.object({ partition: v.nullable(v.number()), offset: v.number(), length: v.number() })),
  warnings: v.array(v.string()),
});
export type DiskComparison = v.InferOutput<typeof DiskComparison>;

export const VerifyOpResult = v.object({
  ok: v.boolean(),
  chunksChecked: v.number(),
  bytesChecked: v.number(),
  /** `error`: the snapshot's manifest itself is damaged (its chunks could not be checked). */
  snapshots: v.array(v.object({ id: v.string(), label: v.string(), ok: v.boolean(), damage: v.array(DamageInfo), error: v.optional(v.string()) })),
  /** With `against`: how the snapshot compares with that disk now. */
  disk: v.optional(DiskComparison),
});
export type VerifyOpResult = v.InferOutput<typeof VerifyOpResult>;

export const CheckOpResult = v.object({
  ok: v.boolean(),
  snapshots: v.number(),
  packs: v.number(),
  chunks: v.number(),
  errors: v.array(v.string()),
  warnings: v.array(v.string()),
  unreferencedChunks: v.number(),
  unreferencedBytes: v.number(),
});
export type CheckOpResult = v.InferOutput<typeof CheckOpResult>;

export const DiffOpResult = v.object({
  a: v.string(),
  b: v.string(),
  partitions: v.array(v.object({ index: v.nullable(v.number()), fs: v.optional(v.string()), changedBytes: v.number(), ranges: v.array(v.tuple([v.number(), v.number()])) })),
  totalChangedBytes: v.number(),
});
export type DiffOpResult = v.InferOutput<typeof DiffOpResult>;

export const PruneOpResult = v.object({
  packsRemoved: v.number(),
  packsRewritten: v.number(),
  bytesFreed: v.number(),
  tempFilesRemoved: v.number(),
  dryRun: v.boolean(),
});
export type PruneOpResult = v.InferOutput<typeof PruneOpResult>;

export const ForgetOpResult = v.object({
  removed: v.array(v.string()),
  kept: v.array(v.string()),
  /** Snapshots with damaged manifests that a policy left alone (forget them by id). */
  damaged: v.optional(v.array(DamagedSnapshot)),
  dryRun: v.boolean(),
  prune: v.optional(PruneOpResult),
});
export type ForgetOpResult = v.InferOutput<typeof ForgetOpResult>;

export const RestoreAction = v.picklist(['create', 'replace', 'unchanged', 'conflict', 'skip']);
export type RestoreAction = v.InferOutput<typeof RestoreAction>;

export const RestoreEntry = v.object({
  /** Path in the snapshot. */
  path: v.string(),
  /** Where it goes. */
  dest: v.string(),
  type: v.picklist(['file', 'dir', 'symlink', 'other']),
  action: RestoreAction,
  size: v.number(),
  /** Why for 'conflict' and 'skip'; what differs for 'replace' of an existing entry of the same type. */
  reason: v.optional(v.string()),
});
export type RestoreEntry = v.InferOutput<typeof RestoreEntry>;

export const RestoreFilesResult = v.object({
  dryRun: v.boolean(),
  targetRoot: v.string(),
  inPlace: v.boolean(),
  entries: v.array(RestoreEntry),
  totals: v.object({ create: v.number(), replace: v.number(), unchanged: v.number(), conflict: v.number(), skip: v.number() }),
  /** Bytes of file content to write (create + replace). */
  bytesToWrite: v.number(),
  bytesWritten: v.number(),
  warnings: v.array(v.string()),
});
export type RestoreFilesResult = v.InferOutput<typeof RestoreFilesResult>;
