// The messages between the compare & restore panel (webview-ui/, runs in the webview) and the
// extension (extension/panel/). Defined once here and imported by both sides. Only `import type`
// from imaging/protocol (erased at build time), so nothing of node's world ends up in the webview bundle.
//
// Flow:
//   webview → 'ready' (after load and after every hide/show: the webview is rebuilt from its saved
//             state, not kept alive) → host 'init' (snapshots, which pair to compare).
//   webview → 'compare' {a, b} → host 'compareStarted', then 'summary' (inventory diff, file totals),
//             'changes' chunks (offset, rows, done) and 'partitions' (or 'sectionError' per part).
//   webview → 'planRestoreFiles' → host runs a dry run → 'restorePlan' → webview shows it →
//             'confirmRestoreFiles' {planId} → 'restoreProgress'… → 'restoreDone' | 'restoreFailed'.
//   'restoreDisk' / 'recoveryCommand' hand over to the extension's restore command and editors;
//   'undoUpgrade' to its undo command (the pair: the older snapshot, then the newer).
import { MAX_RESTORE_PATHS } from '../imaging/protocol/limits';
import type { ChangeKind, DiffTotals, DirectorySummary, FileChange, InventoryDiff, RestoreAction, RestoreEntry, SnapshotSummary } from '../imaging/protocol';

export type { ChangeKind, DiffTotals, DirectorySummary, FileChange, InventoryDiff, RestoreAction, RestoreEntry };

/** What the panel needs to know about a snapshot (a slice of SnapshotSummary). */
export interface PanelSnapshot {
  id: string;
  label: string;
  created: string;
  source: string;
  /** The source disk holds the running system's root: restoring it needs a recovery environment. */
  sourceIsSystem: boolean;
  /** How the image is one point in time (shown with consistencyName / describeConsistency). */
  consistency: SnapshotSummary['consistency'];
  pointInTime?: SnapshotSummary['pointInTime'];
  partitions: { index: number; fs?: string; label?: string; size: number; typeName?: string; mountpoint?: string }[];
}

export interface PartitionChange {
  index: number | null;
  fs?: string;
  label?: string;
  size?: number;
  changedBytes: number;
}

export type Section = 'files' | 'packages' | 'partitions' | 'restore';

// ---------------------------------------------------------------------------------------------
// extension → webview

export type HostMessage =
  | {
      type: 'init';
      snapshots: PanelSnapshot[];
      a: string | null;
      b: string | null;
      repo: string | null;
      message?: string;
      /** Compare this partition's files (a partition's "Show Changed Files"), and show the Files tab. */
      partition?: number;
    }
  | { type: 'compareStarted'; a: string; b: string }
  | { type: 'progress'; a: string; b: string; message: string }
  | {
      type: 'summary';
      a: string;
      b: string;
      /** The partition whose files were compared. */
      partition: number;
      inventory: InventoryDiff | null;
      totals: DiffTotals;
      /** Number of changed entries (rows the 'changes' messages will bring). */
      total: number;
      directories: DirectorySummary[];
    }
  | { type: 'changes'; a: string; b: string; offset: number; changes: FileChange[]; done: boolean }
  | { type: 'partitions'; a: string; b: string; partitions: PartitionChange[]; totalChangedBytes: number }
  | { type: 'sectionError'; a: string; b: string; section: 'files' | 'partitions' | 'compare'; message: string }
  | {
      type: 'restorePlan';
      planId: string;
      snapshot: string;
      targetRoot: string;
      /** Entries that would change (not 'unchanged'), at most PLAN_ENTRY_LIMIT. */
      entries: RestoreEntry[];
      truncated: boolean;
      totals: Record<RestoreAction, number>;
      bytesToWrite: number;
      warnings: string[];
    }
  | { type: 'restoreProgress'; planId: string; message: string; fraction: number | null }
  | { type: 'restoreDone'; planId: string; targetRoot: string; totals: Record<RestoreAction, number>; bytesWritten: number; warnings: string[] }
  | { type: 'restoreFailed'; planId: string | null; message: string }
  | { type: 'restoreCancelled'; planId: string | null };

export const PLAN_ENTRY_LIMIT = 500;
/** Rows per 'changes' message. */
export const CHANGES_CHUNK = 2000;

// ---------------------------------------------------------------------------------------------
// webview → extension

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'compare'; a: string; b: string; partition?: number }
  | { type: 'refresh' }
  | { type: 'openDiff'; path: string; change: ChangeKind }
  | { type: 'planRestoreFiles'; snapshot: string; paths: string[]; destination: 'original' | 'folder' }
  | { type: 'confirmRestoreFiles'; planId: string }
  | { type: 'discardRestorePlan'; planId: string }
  | { type: 'restoreDisk'; snapshot: string; partition?: number }
  | { type: 'recoveryCommand'; snapshot: string; partition?: number }
  | { type: 'undoUpgrade'; before: string; after: string };

export { MAX_RESTORE_PATHS };
const CHANGE_KINDS: readonly ChangeKind[] = ['added', 'removed', 'modified', 'metadata'];

const isId = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(v);
/** An absolute path inside a snapshot: '/'-rooted, no NUL, no '..' component. */
export function isSnapshotPath(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 4096 && v.startsWith('/') && !v.includes('\0') && !v.split('/').includes('..');
}
const isPartition = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 256;

/**
 * Checks a message from the webview (which is treated as untrusted input: it only ever names
 * snapshots and paths, never commands or files of this machine). Returns it typed, or null.
 */
export function parseWebviewMessage(raw: unknown): WebviewMessage | null {
  if (!raw || typeof raw !== 'object') return null;
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
    case 'refresh':
      return { type: m.type };
    case 'compare':
      if (!isId(m.a) || !isId(m.b)) return null;
      if (m.partition !== undefined && !isPartition(m.partition)) return null;
      return m.partition !== undefined ? { type: 'compare', a: m.a, b: m.b, partition: m.partition } : { type: 'compare', a: m.a, b: m.b };
    case 'openDiff':
      return isSnapshotPath(m.path) && CHANGE_KINDS.includes(m.change as ChangeKind) ? { type: 'openDiff', path: m.path, change: m.change as ChangeKind } : null;
    case 'planRestoreFiles': {
      if (!isId(m.snapshot) || !Array.isArray(m.paths) || !m.paths.length || m.paths.length > MAX_RESTORE_PATHS) return null;
      if (!m.paths.every(isSnapshotPath)) return null;
      if (m.destination !== 'original' && m.destination !== 'folder') return null;
      return { type: 'planRestoreFiles', snapshot: m.snapshot, paths: [...new Set(m.paths as string[])], destination: m.destination };
    }
    case 'confirmRestoreFiles':
    case 'discardRestorePlan':
      return isId(m.planId) ? { type: m.type, planId: m.planId } : null;
    case 'undoUpgrade':
      return isId(m.before) && isId(m.after) ? { type: 'undoUpgrade', before: m.before, after: m.after } : null;
    case 'restoreDisk':
    case 'recoveryCommand':
      if (!isId(m.snapshot)) return null;
      if (m.partition !== undefined && !isPartition(m.partition)) return null;
      return m.partition === undefined ? { type: m.type, snapshot: m.snapshot } : { type: m.type, snapshot: m.snapshot, partition: m.partition as number };
    default:
      return null;
  }
}

/** The smallest set of paths to restore: a selected folder covers everything below it. */
export function minimalPaths(paths: Iterable<string>): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    const covered = out.some((q) => q === '/' || p === q || p.startsWith(q + '/'));
    if (!covered) out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The webview's saved state (vscode.getState/setState): what it needs to look the same after
// being hidden and shown again.

export interface PanelState {
  a: string | null;
  b: string | null;
  /** The partition whose files are compared (null: the engine's choice, the root filesystem). */
  partition: number | null;
  section: Section;
  fileFilter: string;
  kinds: ChangeKind[];
  packageFilter: string;
  expanded: string[];
  collapsed: string[];
  selected: string[];
  restoreFrom: 'a' | 'b';
  scrollTop: number;
  focused: string | null;
}

export function defaultState(): PanelState {
  return {
    a: null,
    b: null,
    partition: null,
    section: 'files',
    fileFilter: '',
    kinds: [...CHANGE_KINDS],
    packageFilter: '',
    expanded: [],
    collapsed: [],
    selected: [],
    restoreFrom: 'a',
    scrollTop: 0,
    focused: null,
  };
}

/** A saved state as read back (older versions, partial or damaged): every field checked. */
export function reviveState(raw: unknown): PanelState {
  const d = defaultState();
  if (!raw || typeof raw !== 'object') return d;
  const s = raw as Record<string, unknown>;
  const strs = (v: unknown, max = 100000) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, max) : []);
  const sections: Section[] = ['files', 'packages', 'partitions', 'restore'];
  return {
    a: isId(s.a) ? s.a : null,
    b: isId(s.b) ? s.b : null,
    partition: isPartition(s.partition) ? s.partition : null,
    section: sections.includes(s.section as Section) ? (s.section as Section) : d.section,
    fileFilter: typeof s.fileFilter === 'string' ? s.fileFilter.slice(0, 500) : '',
    kinds: Array.isArray(s.kinds) ? CHANGE_KINDS.filter((k) => (s.kinds as unknown[]).includes(k)) : d.kinds,
    packageFilter: typeof s.packageFilter === 'string' ? s.packageFilter.slice(0, 500) : '',
    expanded: strs(s.expanded),
    collapsed: strs(s.collapsed),
    selected: strs(s.selected, MAX_RESTORE_PATHS),
    restoreFrom: s.restoreFrom === 'b' ? 'b' : 'a',
    scrollTop: typeof s.scrollTop === 'number' && s.scrollTop >= 0 ? s.scrollTop : 0,
    focused: typeof s.focused === 'string' ? s.focused : null,
  };
}
