// The panel's state: what is saved across hide/show (PanelState, through getState/setState) and
// what lives only as long as the page (the snapshots, the running comparison, the restore plan).
// One mutable `store` object rather than module-level `let`s, so every tab module sees assignments.
import type { ChangeKind, HostMessage, PanelSnapshot, PanelState, WebviewMessage } from './messages';
import { reviveState } from './messages';
import type { ChangeTree } from './tree';

interface VsCodeApi {
  postMessage(msg: WebviewMessage): void;
  getState(): unknown;
  setState(s: PanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
export const ROW = 22;
export const KINDS: ChangeKind[] = ['added', 'removed', 'modified', 'metadata'];
export const KIND_LABEL: Record<ChangeKind, string> = { added: 'Added', removed: 'Removed', modified: 'Modified', metadata: 'Metadata only' };

export const state: PanelState = reviveState(vscode.getState());

export interface Comparison {
  a: string;
  b: string;
  status: 'running' | 'done' | 'failed';
  progress: string;
  summary: Extract<HostMessage, { type: 'summary' }> | null;
  partitions: Extract<HostMessage, { type: 'partitions' }> | null;
  errors: Partial<Record<'files' | 'partitions' | 'compare', string>>;
  tree: ChangeTree;
  received: number;
  done: boolean;
}

export type RestorePlan = Extract<HostMessage, { type: 'restorePlan' }>;
export interface RestoreStatus {
  kind: 'progress' | 'done' | 'failed' | 'cancelled';
  text: string;
}

export const store: {
  snapshots: PanelSnapshot[];
  repo: string | null;
  cmp: Comparison | null;
  plan: RestorePlan | null;
  restoreStatus: RestoreStatus | null;
  /** Paths selected for restore (state.selected as a set). */
  selected: Set<string>;
} = {
  snapshots: [],
  repo: null,
  cmp: null,
  plan: null,
  restoreStatus: null,
  selected: new Set<string>(state.selected),
};

export const post = (m: WebviewMessage) => vscode.postMessage(m);

let saveTimer: ReturnType<typeof setTimeout> | undefined;
export function save(): void {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => vscode.setState(state), 100);
}
