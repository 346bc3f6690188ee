// The typed message protocol shared by the engine's CLI, the extension, the elevated helper and the
// webview. Everything that crosses a process or frame boundary is one of these shapes.
// Keep this file free of imports: it is bundled into the webview too.

export const PROTOCOL_VERSION = 1;

/** Stable error codes; the CLI maps them to exit codes (see EXIT_CODES in core/errors.ts). */
export type ErrorCode =
  | 'USAGE'            // bad command line / request
  | 'NO_REPO'          // repository missing or not a devsnap repository
  | 'REPO_EXISTS'
  | 'BAD_PASSWORD'
  | 'LOCKED'           // another process holds the repository lock
  | 'NOT_FOUND'        // snapshot / source / target does not exist
  | 'PERMISSION'       // no permission to read/write a device or file
  | 'BAD_SOURCE'
  | 'BAD_TARGET'       // too small, mounted, system disk, not a device/file
  | 'DAMAGED'          // hash mismatch, corrupt pack, truncated manifest
  | 'NO_SPACE'
  | 'CANCELLED'
  | 'INTERNAL';

export interface ErrorInfo {
  code: ErrorCode;
  message: string;   // what went wrong, naming the thing
  hint?: string;     // what to do about it
}

/** Emitted (one JSON object per line on stderr with `--progress json`) while long work runs. */
export interface ProgressEvent {
  type: 'progress';
  phase: string;          // e.g. 'scan', 'image', 'restore', 'verify', 'prune'
  bytesDone: number;
  bytesTotal: number;
  rate: number;           // bytes per second, smoothed
  etaSeconds: number | null;
  message?: string;       // e.g. 'partition 2 (ext4)'
}

export interface PartitionInfo {
  index: number;          // 1-based, as in /dev/sdX<N>
  start: number;          // byte offset in the disk
  size: number;           // bytes
  type: string;           // GPT type GUID or MBR type as 0xNN
  typeName?: string;      // 'EFI System', 'Linux filesystem', ...
  name?: string;          // GPT partition name
  uuid?: string;          // GPT partition GUID
  fs?: string;            // 'ext4' | 'vfat' | 'ntfs' | ... | undefined when unknown
  label?: string;         // filesystem label
  fsUuid?: string;        // filesystem UUID
  usedBytes?: number;     // bytes in use in the filesystem (when understood)
}

export interface DiskInfo {
  path: string;           // /dev/sda, /dev/loop3 or an image file
  kind: 'disk' | 'loop' | 'file';
  size: number;
  model?: string;
  table?: 'gpt' | 'mbr' | 'none';
  isSystem: boolean;      // holds the running system's root filesystem
  readOnly?: boolean;
  mountpoints: string[];
  partitions: (PartitionInfo & { path?: string; mountpoints?: string[] })[];
  /** What could not be read or trusted on this disk (a damaged table, a hostile or damaged filesystem): listed, never an abort. */
  notes?: string[];
}

export interface SnapshotStats {
  bytesRead: number;      // bytes actually read from the source
  bytesLogical: number;   // size of the source disk
  bytesUsed: number;      // bytes of data chunks (non-zero, non-free) in the image
  bytesAdded: number;     // compressed bytes this snapshot added to the repository
  chunksNew: number;
  chunksReused: number;
  durationSeconds: number;
}

export type SnapshotState = 'verified' | 'not-verified' | 'damaged';

export interface PointInTime {
  at: string;              // ISO 8601: the instant the image shows (writes paused from here)
  pauseSeconds: number;    // how long writes were paused (the longest pause of any mount)
  rounds: number;          // live catch-up rounds before the pause
  rereadBytes: number;     // bytes read again while paused
  /** Per read-write mount: 'two-pass' (fsfreeze for the last pass), 'two-pass-ro' (read-only for the last pass: NTFS), 'remount-ro' (read-only while read), 'frozen' (fsfreeze while read), 'lvm-snapshot'. */
  methods: { mountpoint: string; partition?: number; how: string }[];
}

/** What `devsnap list --json` returns per snapshot (the manifest without its extent maps). */
export interface SnapshotSummary {
  id: string;
  label: string;
  created: string;        // ISO 8601
  host: string;
  source: { path: string; size: number; model?: string; table: 'gpt' | 'mbr' | 'none'; diskId?: string };
  /**
   * How the image is one point in time: 'offline' (nothing mounted read-write), 'native-snapshot'
   * (LVM), 'frozen-two-pass' (read live, then the changes re-read with writes paused briefly),
   * 'frozen' (writes paused for the whole snapshot), 'fuzzy' (read live without a point in time, only
   * when forced); 'crash-consistent' is what earlier versions called a fuzzy read.
   */
  consistency: 'offline' | 'native-snapshot' | 'frozen-two-pass' | 'frozen' | 'fuzzy' | 'crash-consistent';
  /** For a running system: when writes were paused, for how long, and how each mount was handled. */
  pointInTime?: PointInTime;
  /** 'changes': ext filesystems were read only where they changed since the parent; 'all': every used block was read. */
  readMode?: 'all' | 'changes';
  parent?: string;
  pinned: boolean;
  state: SnapshotState;
  verifiedAt?: string;
  stats: SnapshotStats;
  partitions: PartitionInfo[];
}

// ---------------------------------------------------------------------------------------------
// Operations (imaging/operations.ts): one typed request and one typed result per engine command,
// shared by the CLI (which parses arguments into a request and prints the result) and the
// elevated helper (which receives the request over its channel and sends the result back).

export interface RepoRequest {
  repo: string;
  /** Password of an encrypted repository. */
  password?: string;
}
export interface SnapshotRequest extends RepoRequest {
  source: string;
  label?: string;
  compressionLevel?: number;
  freeze?: boolean;
  /** Read a mounted read-write source live, without a point in time. */
  fuzzy?: boolean;
  /** Read every used block, not only what changed since the parent snapshot. */
  fullRead?: boolean;
}
export interface PlanSnapshotRequest extends RepoRequest {
  source: string;
}
/** What a snapshot of `source` would do (capture/plan.ts): shown before the user confirms. */
export interface SnapshotPlan {
  source: string;
  /** 'native-snapshot' when every read-write mount is read from an LVM snapshot. */
  consistency: 'offline' | 'native-snapshot' | 'frozen-two-pass';
  isSystem: boolean;
  /** Each read-write mount: 'two-pass' (paused for the last pass), 'two-pass-ro' (read-only for the last pass: NTFS), 'frozen' or 'remount-ro' (paused while read), 'lvm-snapshot' (an instant), 'unsupported'. */
  mounts: { mountpoint: string; partition?: number; fstype?: string; how: 'two-pass' | 'two-pass-ro' | 'frozen' | 'remount-ro' | 'lvm-snapshot' | 'unsupported'; pauseSeconds?: number; holdsRepository: boolean }[];
  /** About how long writers wait (the longest of any mount), an estimate. */
  pauseSeconds: number;
  /** Why the snapshot would be refused, and what to do. */
  problem?: { message: string; hint: string };
}
export interface RestoreRequest extends RepoRequest {
  snapshot: string;       // id, unique prefix or 'latest'
  target: string;
  partition?: number;
  dryRun?: boolean;
}
export interface VerifyRequest extends RepoRequest {
  snapshot?: string;      // all snapshots when omitted
  /** Also compare the snapshot (one, required) with this disk as it is now (snapshot/verify-disk.ts). */
  against?: string;
}
/** A snapshot compared with a disk: byte ranges (disk offsets) where a block in use differs. */
export interface DiskComparison {
  source: string;
  equal: boolean;
  bytesCompared: number;
  differingBytes: number;
  /** The first differing ranges (at most 20), merged. */
  differences: { partition: number | null; offset: number; length: number }[];
  warnings: string[];
}
export interface CheckRequest extends RepoRequest {
  readData?: boolean;
}
export interface ShowRequest extends RepoRequest {
  snapshot: string;
}
export interface DiffRequest extends RepoRequest {
  a: string;
  b: string;
}
export interface RetentionRules {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
}
export interface ForgetRequest extends RepoRequest {
  /** Snapshots to remove; when empty or omitted, `policy` decides. */
  ids?: string[];
  policy?: RetentionRules;
  dryRun?: boolean;
  prune?: boolean;
}
export interface PruneRequest extends RepoRequest {
  dryRun?: boolean;
}
export interface LabelRequest extends RepoRequest {
  snapshot: string;
  label: string;
}
export interface PinRequest extends RepoRequest {
  snapshot: string;
  pinned: boolean;
}

export interface DisksResult { disks: DiskInfo[] }
export interface SnapshotOpResult { id: string; snapshot: SnapshotSummary; warnings: string[] }
/** A snapshot as `list` shows it: its summary, and how many warnings its manifest holds. */
export interface ListedSnapshot extends SnapshotSummary {
  warningCount: number;
}
/** A snapshot whose manifest cannot be used (corrupt, truncated, tampered with, or another snapshot's copied under this id). */
export interface DamagedSnapshot {
  id: string;             // its file name in snapshots/: how to name it (e.g. to forget it)
  message: string;
  hint?: string;
  label?: string;         // what its last summary said, when there was one
  created?: string;
}
export interface ListResult {
  snapshots: ListedSnapshot[];
  /** Listed, never left out: `list` exits with DAMAGED's code when there is any. */
  damaged: DamagedSnapshot[];
}
export interface ShowResult { snapshot: SnapshotSummary; warnings: string[] }
export interface SnapshotRefResult { snapshot: SnapshotSummary }
export interface RestoreOpResult {
  ok: true;
  dryRun: boolean;
  snapshot: string;
  target: string;
  targetKind: 'block' | 'file' | 'new-file';
  targetSize: number;
  bytesNeeded: number;
  bytesToWrite: number;
  bytesWritten: number;
  gptRelocated: boolean;
  areas: { kind: 'raw' | 'partition'; partition?: number; offset: number; size: number; mode: 'raw' | 'used-blocks' | 'full' }[];
}
export interface DamageInfo {
  partition: number | null;
  offset: number;
  length: number;
  chunk: string;
  message: string;
}
export interface VerifyOpResult {
  ok: boolean;
  chunksChecked: number;
  bytesChecked: number;
  /** `error`: the snapshot's manifest itself is damaged (its chunks could not be checked). */
  snapshots: { id: string; label: string; ok: boolean; damage: DamageInfo[]; error?: string }[];
  /** With `against`: how the snapshot compares with that disk now. */
  disk?: DiskComparison;
}
export interface CheckOpResult {
  ok: boolean;
  snapshots: number;
  packs: number;
  chunks: number;
  errors: string[];
  warnings: string[];
  unreferencedChunks: number;
  unreferencedBytes: number;
}
export interface DiffOpResult {
  a: string;
  b: string;
  partitions: { index: number | null; fs?: string; changedBytes: number; ranges: [number, number][] }[];
  totalChangedBytes: number;
}
export interface PruneOpResult {
  packsRemoved: number;
  packsRewritten: number;
  bytesFreed: number;
  tempFilesRemoved: number;
  dryRun: boolean;
}
export interface ForgetOpResult {
  removed: string[];
  kept: string[];
  /** Snapshots with damaged manifests that a policy left alone (forget them by id). */
  damaged?: DamagedSnapshot[];
  dryRun: boolean;
  prune?: PruneOpResult;
}

/** Restoring selected files and folders of a snapshot's filesystem (imaging/files/file-restore.ts). */
export interface RestoreFilesRequest extends RepoRequest {
  snapshot: string;       // id, unique prefix or 'latest'
  /** The partition whose filesystem is read (default: the root, the largest ext partition). */
  partition?: number;
  /** Paths inside the snapshot's filesystem: absolute, or relative to its root; no '..'. */
  paths: string[];
  /** The folder to restore into; with inPlace each path goes below it at its full path ('/' = the original place). */
  target: string;
  /** Default: true when target is '/'. */
  inPlace?: boolean;
  dryRun?: boolean;
  /** Compare contents (not only size and mtime) to decide that an existing file is unchanged. */
  deep?: boolean;
}
export type RestoreAction = 'create' | 'replace' | 'unchanged' | 'conflict' | 'skip';
export interface RestoreEntry {
  /** Path in the snapshot. */
  path: string;
  /** Where it goes. */
  dest: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  action: RestoreAction;
  size: number;
  /** Why for 'conflict' and 'skip'; what differs for 'replace' of an existing entry of the same type. */
  reason?: string;
}
export interface RestoreFilesResult {
  dryRun: boolean;
  targetRoot: string;
  inPlace: boolean;
  entries: RestoreEntry[];
  totals: Record<RestoreAction, number>;
  /** Bytes of file content to write (create + replace). */
  bytesToWrite: number;
  bytesWritten: number;
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// The elevated helper's channel (imaging/helper/, extension/helperClient.ts; security model in
// imaging/helper/README.md). Frames: a 4-byte big-endian length, then that many bytes of UTF-8
// JSON, at most HELPER_MAX_MESSAGE. Every message carries `v: PROTOCOL_VERSION`.
//
// Handshake (the extension listens, the helper connects; `secret` is the one-time secret):
//   helper    → { v, type: 'hello', nonce: Nh, pid, uid }
//   extension → { v, type: 'challenge', nonce: Ne, mac: HMAC(secret, 'devsnap-extension\0' Nh '\0' Ne) }
//   helper    → { v, type: 'auth', mac: HMAC(secret, 'devsnap-helper\0' Ne '\0' Nh) }   (after checking mac)
//   extension → { v, type: 'ready' }                                                        (after checking mac)
// Neither side sends the secret. Then the extension sends requests; the helper answers each with
// 'progress' events, 'log' lines and finally one 'result' or 'error' carrying the request's id.

export const HELPER_MAX_MESSAGE = 1 << 20;

/** Extra safety switches the helper honours (see imaging/helper/README.md). */
export interface HelperRepoOptions {
  /** Accept a repository folder owned by root (default: only folders the requesting user owns). */
  allowRootRepository?: boolean;
}

/** Every request the helper serves: its parameters and its result. */
export interface HelperOps {
  listDisks: { params: Record<string, never>; result: DisksResult };
  listSnapshots: { params: RepoRequest & HelperRepoOptions; result: ListResult };
  show: { params: ShowRequest & HelperRepoOptions; result: ShowResult };
  snapshot: { params: SnapshotRequest & HelperRepoOptions; result: SnapshotOpResult };
  planSnapshot: { params: PlanSnapshotRequest & HelperRepoOptions; result: SnapshotPlan };
  restore: {
    params: RestoreRequest & HelperRepoOptions & {
      /** The user confirmed overwriting the target (required unless dryRun). */
      confirmed?: boolean;
      /** Asked explicitly to overwrite the running system's disk: still refused while it runs. */
      allowSystemDisk?: boolean;
    };
    result: RestoreOpResult;
  };
  verify: { params: VerifyRequest & HelperRepoOptions; result: VerifyOpResult };
  check: { params: CheckRequest & HelperRepoOptions; result: CheckOpResult };
  diff: { params: DiffRequest & HelperRepoOptions; result: DiffOpResult };
  forget: { params: ForgetRequest & HelperRepoOptions; result: ForgetOpResult };
  prune: { params: PruneRequest & HelperRepoOptions; result: PruneOpResult };
  label: { params: LabelRequest & HelperRepoOptions; result: SnapshotRefResult };
  pin: { params: PinRequest & HelperRepoOptions; result: SnapshotRefResult };
  /**
   * Restores files of a snapshot into a folder of the user, or in place (inPlace) below a folder
   * such as '/': a folder the user does not own is accepted only for an in-place restore, and a
   * real (not dry-run) one only with `confirmed` (imaging/helper/README.md). Without `deep`: the
   * helper compares by size, mode and mtime only, so it never reads root's files for the user.
   */
  restoreFiles: {
    params: Omit<RestoreFilesRequest, 'deep'> & HelperRepoOptions & {
      /** The user confirmed restoring in place (required for a real in-place restore into a folder the user does not own). */
      confirmed?: boolean;
    };
    result: RestoreFilesResult;
  };
}
export type HelperOpName = keyof HelperOps;
export type HelperOpRequest = { [K in HelperOpName]: { v: number; id: string; type: K } & HelperOps[K]['params'] }[HelperOpName];
/** Stop the request `target` at a safe point (it then ends with a CANCELLED error). */
export interface HelperCancel { v: number; id: string; type: 'cancel'; target: string }
/** Stop everything at a safe point and exit. */
export interface HelperShutdown { v: number; id: string; type: 'shutdown' }
export type HelperRequest = HelperOpRequest | HelperCancel | HelperShutdown;

export type HelperHandshake =
  | { v: number; type: 'hello'; nonce: string; pid: number; uid: number }
  | { v: number; type: 'challenge'; nonce: string; mac: string }
  | { v: number; type: 'auth'; mac: string }
  | { v: number; type: 'ready' };

export type HelperEvent =
  | { v: number; type: 'progress'; id: string; event: ProgressEvent }
  | { v: number; type: 'log'; id?: string; message: string }
  | { v: number; type: 'result'; id: string; result: unknown }
  /** id null: a message that could not be tied to a request (malformed, oversized, ...). */
  | { v: number; type: 'error'; id: string | null; error: ErrorInfo }
  /** The helper is about to exit (idle, shutdown, client gone). */
  | { v: number; type: 'bye'; reason: string };
