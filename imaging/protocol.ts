// The typed message protocol shared by the engine's CLI, the extension, the elevated helper and the
// webview. Everything that crosses a process or frame boundary is one of these shapes.
// Keep this file free of imports: it is bundled into the webview too.

export const PROTOCOL_VERSION = 1;

/** Stable error codes; the CLI maps them to exit codes (see EXIT_CODES in errors.ts). */
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

/** What `devsnap list --json` returns per snapshot (the manifest without its extent maps). */
export interface SnapshotSummary {
  id: string;
  label: string;
  created: string;        // ISO 8601
  host: string;
  source: { path: string; size: number; model?: string; table: 'gpt' | 'mbr' | 'none'; diskId?: string };
  consistency: 'offline' | 'frozen' | 'crash-consistent';
  parent?: string;
  pinned: boolean;
  state: SnapshotState;
  verifiedAt?: string;
  stats: SnapshotStats;
  partitions: PartitionInfo[];
}
