// Looking inside snapshots: the environment (inventory), directory listings, file contents and the
// file-level comparison of two snapshots.
import * as v from 'valibot';

export const InventoryPackage = v.object({
  manager: v.picklist(['dpkg', 'rpm', 'pacman', 'snap', 'flatpak', 'brew', 'winget', 'choco']),
  name: v.string(),
  version: v.string(),
  arch: v.optional(v.string()),
});
export type InventoryPackage = v.InferOutput<typeof InventoryPackage>;

export const InventoryToolchain = v.object({ name: v.string(), version: v.string(), path: v.optional(v.string()) });
export type InventoryToolchain = v.InferOutput<typeof InventoryToolchain>;

export const InventoryExtension = v.object({
  id: v.string(),
  version: v.string(),
  /** The home (user) the extension belongs to, when read from a tree. */
  user: v.optional(v.string()),
});
export type InventoryExtension = v.InferOutput<typeof InventoryExtension>;

const OsInfo = v.object({ name: v.string(), version: v.string(), id: v.string(), prettyName: v.optional(v.string()), kernel: v.optional(v.string()) });

export const Inventory = v.object({
  version: v.literal(1),
  source: v.picklist(['image', 'live']),
  collectedAt: v.string(),
  os: OsInfo,
  kernels: v.optional(v.array(v.string())),
  bootMode: v.optional(v.picklist(['uefi', 'bios'])),
  packages: v.array(InventoryPackage),
  toolchains: v.array(InventoryToolchain),
  vscodeExtensions: v.array(InventoryExtension),
  /** Things the inventory could not read (e.g. a binary rpm database). */
  notes: v.array(v.string()),
});
export type Inventory = v.InferOutput<typeof Inventory>;

export const VersionChange = v.object({
  name: v.string(),
  from: v.string(),
  to: v.string(),
  /** 'up' when `to` is newer (dpkg version order), 'down' for a downgrade. */
  direction: v.picklist(['up', 'down', 'same']),
});
export type VersionChange = v.InferOutput<typeof VersionChange>;

export const PackageChange = v.object({ ...VersionChange.entries, manager: InventoryPackage.entries.manager, arch: v.optional(v.string()) });
export type PackageChange = v.InferOutput<typeof PackageChange>;

const Before = v.nullable(v.string());
export const InventoryDiff = v.object({
  os: v.object({ before: v.nullable(OsInfo), after: v.nullable(OsInfo), changed: v.boolean() }),
  kernel: v.object({ before: Before, after: Before, changed: v.boolean() }),
  bootMode: v.object({ before: Before, after: Before, changed: v.boolean() }),
  packages: v.object({ added: v.array(InventoryPackage), removed: v.array(InventoryPackage), upgraded: v.array(PackageChange), unchanged: v.number() }),
  toolchains: v.array(v.object({ name: v.string(), before: Before, after: Before })),
  vscodeExtensions: v.object({
    added: v.array(InventoryExtension),
    removed: v.array(InventoryExtension),
    upgraded: v.array(v.object({ ...VersionChange.entries, id: v.string() })),
  }),
});
export type InventoryDiff = v.InferOutput<typeof InventoryDiff>;

export const ImageFileType = v.picklist(['file', 'dir', 'symlink', 'other']);
export type ImageFileType = v.InferOutput<typeof ImageFileType>;

/** An entry of a snapshot's filesystem as it crosses a boundary: like ImageStat, xattr values in base64. */
export const WireStat = v.object({
  path: v.string(),
  name: v.string(),
  type: ImageFileType,
  special: v.optional(v.picklist(['fifo', 'chardev', 'blockdev', 'socket', 'unknown'])),
  rdev: v.optional(v.tuple([v.number(), v.number()])),
  size: v.number(),
  mode: v.number(),
  uid: v.number(),
  gid: v.number(),
  mtime: v.number(),
  atime: v.number(),
  ctime: v.number(),
  birthtime: v.optional(v.number()),
  nlink: v.number(),
  ino: v.number(),
  target: v.optional(v.string()),
  xattrs: v.record(v.string(), v.string()),
});
export type WireStat = v.InferOutput<typeof WireStat>;

export const ListDirResult = v.object({ partition: v.number(), fs: v.string(), path: v.string(), entries: v.array(WireStat) });
export type ListDirResult = v.InferOutput<typeof ListDirResult>;

/** A file's content, whole (at most the request's maxBytes). */
export const ReadFileResult = v.object({ size: v.number(), base64: v.string() });
export type ReadFileResult = v.InferOutput<typeof ReadFileResult>;

export const ChangeKind = v.picklist(['added', 'removed', 'modified', 'metadata']);
export type ChangeKind = v.InferOutput<typeof ChangeKind>;
/** What differs on an entry present on both sides. */
export const ChangeDetail = v.picklist(['content', 'target', 'rdev', 'mode', 'owner', 'mtime', 'xattrs', 'links']);
export type ChangeDetail = v.InferOutput<typeof ChangeDetail>;

export const FileChange = v.object({
  path: v.string(),
  change: ChangeKind,
  /** The type after (before for 'removed'). */
  type: ImageFileType,
  sizeBefore: v.nullable(v.number()),
  sizeAfter: v.nullable(v.number()),
  /** For 'modified' and 'metadata': what differs. */
  detail: v.array(ChangeDetail),
});
export type FileChange = v.InferOutput<typeof FileChange>;

export const DiffTotals = v.object({
  added: v.number(),
  removed: v.number(),
  modified: v.number(),
  metadata: v.number(),
  /** Bytes of files added / removed, and the size difference of modified files. */
  bytesAdded: v.number(),
  bytesRemoved: v.number(),
  bytesModified: v.number(),
  entriesCompared: v.number(),
});
export type DiffTotals = v.InferOutput<typeof DiffTotals>;

export const DiffPage = v.object({
  changes: v.array(FileChange),
  offset: v.number(),
  limit: v.number(),
  /** Changes in the whole comparison (the page is changes[offset, offset+limit)). */
  total: v.number(),
  totals: DiffTotals,
});
export type DiffPage = v.InferOutput<typeof DiffPage>;

export const DirectorySummary = v.object({
  /** The directory (its first `depth` components). */
  dir: v.string(),
  added: v.number(),
  removed: v.number(),
  modified: v.number(),
  metadata: v.number(),
  bytesBefore: v.number(),
  bytesAfter: v.number(),
});
export type DirectorySummary = v.InferOutput<typeof DirectorySummary>;

/** `changes A B`: the inventory diff, one page of file changes, per-directory totals. */
export const ChangesResult = v.object({
  a: v.string(),
  b: v.string(),
  partition: v.number(),
  inventory: InventoryDiff,
  files: DiffPage,
  directories: v.array(DirectorySummary),
});
export type ChangesResult = v.InferOutput<typeof ChangesResult>;
