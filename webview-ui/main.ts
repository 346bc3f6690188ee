// The compare & restore panel (runs inside the webview; bundled by webpack as dist/webview.js).
//
// Plain DOM + VS Code's CSS variables rather than @vscode-elements/elements: the panel needs one
// virtualized tree (100k rows), a table, tabs and a few buttons. The components library (Lit web
// components, ~150 KB minified for the parts we would use) adds no virtualized tree that scales
// that far, and theming through --vscode-* variables is what it does internally anyway; so the
// bundle stays small (measure: `ls -l dist/webview.js`) and every element is ours to make
// keyboard-navigable. Icons are codicons as inline SVG (webview-ui/icons.ts).
//
// State survives hide/show through getState/setState (the panel does not use
// retainContextWhenHidden): on load the webview restores its state and says 'ready'; the extension
// answers 'init' and re-sends a comparison it has cached.
import { consistencyName, describeConsistency, formatBytes } from '../imaging/core/format';
import { icon, IconName } from './icons';
import {
  ChangeKind,
  defaultState,
  FileChange,
  HostMessage,
  minimalPaths,
  PanelSnapshot,
  PanelState,
  PartitionChange,
  reviveState,
  Section,
  WebviewMessage,
} from './messages';
import { filterPackages, packageRows, PackageRow, upgradeSummary } from './packages';
import { canDiff, CHANGE_LETTER, ChangeTree, describeChange, expansionRule, flatten, moveFocus, Row, TreeNode } from './tree';
import { scrollToShow, windowFor } from './virtual';

interface VsCodeApi {
  postMessage(msg: WebviewMessage): void;
  getState(): unknown;
  setState(s: PanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const ROW = 22;
const KINDS: ChangeKind[] = ['added', 'removed', 'modified', 'metadata'];
const KIND_LABEL: Record<ChangeKind, string> = { added: 'Added', removed: 'Removed', modified: 'Modified', metadata: 'Metadata only' };

let state: PanelState = reviveState(vscode.getState());
let snapshots: PanelSnapshot[] = [];
let repo: string | null = null;

interface Comparison {
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
let cmp: Comparison | null = null;
let rows: Row[] = [];
let matched = 0;
let focusIndex = -1;
let plan: Extract<HostMessage, { type: 'restorePlan' }> | null = null;
let restoreStatus: { kind: 'progress' | 'done' | 'failed' | 'cancelled'; text: string } | null = null;

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => document.querySelector(sel) as T;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const post = (m: WebviewMessage) => vscode.postMessage(m);

let saveTimer: ReturnType<typeof setTimeout> | undefined;
function save(): void {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => vscode.setState(state), 100);
}

// ---------------------------------------------------------------------------------------------
// Layout

document.body.innerHTML = `
<div id="app">
  <header class="toolbar" role="toolbar" aria-label="Snapshots to compare">
    <label class="picker"><span class="picker-label">Before</span><select id="pick-a" aria-label="Before: the older snapshot"></select><span id="consistency-a" class="dim"></span></label>
    <button id="swap" class="icon-button" title="Swap before and after" aria-label="Swap before and after">${icon('arrow-right')}</button>
    <label class="picker"><span class="picker-label">After</span><select id="pick-b" aria-label="After: the newer snapshot"></select><span id="consistency-b" class="dim"></span></label>
    <button id="refresh" class="icon-button" title="Compare again" aria-label="Compare again">${icon('refresh')}</button>
    <span id="status" class="status" role="status" aria-live="polite"></span>
  </header>
  <section id="summary" class="summary" aria-label="Upgrade summary"></section>
  <div class="tabs" role="tablist" aria-label="Details">
    <button role="tab" id="tab-files" data-section="files" aria-controls="panel-files">${icon('diff')}<span>Files</span><span class="count" id="count-files"></span></button>
    <button role="tab" id="tab-packages" data-section="packages" aria-controls="panel-packages">${icon('package')}<span>Packages</span><span class="count" id="count-packages"></span></button>
    <button role="tab" id="tab-partitions" data-section="partitions" aria-controls="panel-partitions">${icon('layers')}<span>Partitions</span><span class="count" id="count-partitions"></span></button>
    <button role="tab" id="tab-restore" data-section="restore" aria-controls="panel-restore">${icon('history')}<span>Restore</span></button>
  </div>
  <section id="panel-files" class="tabpanel files" role="tabpanel" aria-labelledby="tab-files">
    <div class="filterbar">
      <div class="search">${icon('filter')}<input id="file-filter" type="text" placeholder="Filter changed files (e.g. etc conf)" aria-label="Filter changed files" spellcheck="false"></div>
      <div class="kinds" role="group" aria-label="Kinds of change">
        ${KINDS.map((k) => `<button class="kind kind-${k}" data-kind="${k}" aria-pressed="true" title="${KIND_LABEL[k]}">${CHANGE_LETTER[k]} <span class="kind-n" id="kind-n-${k}"></span></button>`).join('')}
      </div>
      <span id="file-totals" class="totals"></span>
    </div>
    <div class="tree-head" aria-hidden="true"><span class="col-name">Path</span><span class="col-change">Change</span><span class="col-size">Size before → after</span></div>
    <div id="tree" class="tree" role="tree" tabindex="0" aria-label="Changed files" aria-multiselectable="true">
      <div id="tree-spacer" class="tree-spacer"><div id="tree-rows" class="tree-rows"></div></div>
      <div id="tree-empty" class="empty"></div>
    </div>
    <div class="restorebar" role="group" aria-label="Restore selected files">
      <span id="selection-text" class="selection-text"></span>
      <label>from <select id="restore-from" aria-label="Restore from which snapshot"><option value="a">Before</option><option value="b">After</option></select></label>
      <button id="restore-original" class="secondary" title="Put the selected files back where they were (the snapshot's partition where it is mounted)">${icon('history')}<span>To original place…</span></button>
      <button id="restore-folder" class="secondary" title="Restore the selected files into a folder you choose">${icon('folder')}<span>To folder…</span></button>
      <button id="clear-selection" class="link" title="Clear the selection">Clear</button>
    </div>
    <div id="plan" class="plan" hidden></div>
  </section>
  <section id="panel-packages" class="tabpanel packages" role="tabpanel" aria-labelledby="tab-packages" hidden>
    <div class="filterbar"><div class="search">${icon('filter')}<input id="package-filter" type="text" placeholder="Filter packages (name, version, kind:added, manager:dpkg)" aria-label="Filter packages" spellcheck="false"></div><span id="package-totals" class="totals"></span></div>
    <div class="table-wrap"><table class="grid" aria-label="Package changes"><thead><tr><th>Change</th><th>Package</th><th>Manager</th><th>Before</th><th>After</th></tr></thead><tbody id="package-rows"></tbody></table></div>
  </section>
  <section id="panel-partitions" class="tabpanel partitions" role="tabpanel" aria-labelledby="tab-partitions" hidden>
    <div class="table-wrap"><table class="grid" aria-label="Changed bytes per partition"><thead><tr><th>Partition</th><th>Filesystem</th><th>Size</th><th>Changed</th><th class="bar-col"></th></tr></thead><tbody id="partition-rows"></tbody></table></div>
  </section>
  <section id="panel-restore" class="tabpanel restore" role="tabpanel" aria-labelledby="tab-restore" hidden></section>
</div>`;

const treeEl = $('#tree');
const rowsEl = $('#tree-rows');
const spacerEl = $('#tree-spacer');
const fileFilter = $<HTMLInputElement>('#file-filter');
const packageFilter = $<HTMLInputElement>('#package-filter');
const pickA = $<HTMLSelectElement>('#pick-a');
const pickB = $<HTMLSelectElement>('#pick-b');
const restoreFrom = $<HTMLSelectElement>('#restore-from');

// ---------------------------------------------------------------------------------------------
// Helpers

const snap = (id: string | null) => snapshots.find((s) => s.id === id);
const snapName = (s: PanelSnapshot | undefined) => (s ? `${s.label || '(no label)'} · ${new Date(s.created).toLocaleString()}` : '?');
/** Not one point in time (consistencyName's "fuzzy read"): marked with a warning icon. */
const isFuzzy = (s: PanelSnapshot) => consistencyName(s) === consistencyName({ consistency: 'fuzzy' });
/** "point in time", "offline", "⚠ fuzzy read"; the sentence of describeConsistency as its tooltip. */
const consistencyHtml = (s: PanelSnapshot) => `<span class="consistency${isFuzzy(s) ? ' fuzzy' : ''}" title="${esc(describeConsistency(s))}">${isFuzzy(s) ? icon('warning') : ''}${esc(consistencyName(s))}</span>`;

function setStatus(text: string, busy = false): void {
  $('#status').innerHTML = text ? `${busy ? icon('loading', 'spin') : ''}<span>${esc(text)}</span>` : '';
}

function badge(kind: ChangeKind): string {
  return `<span class="badge badge-${kind}" title="${KIND_LABEL[kind]}">${CHANGE_LETTER[kind]}</span>`;
}

function sizeText(n: TreeNode): string {
  const c = n.change;
  if (n.isDir) {
    if (n.bytesBefore === n.bytesAfter) return n.bytesAfter ? formatBytes(n.bytesAfter) : '';
    return `${formatBytes(n.bytesBefore)} → ${formatBytes(n.bytesAfter)}`;
  }
  if (!c) return '';
  if (c.change === 'added') return formatBytes(c.sizeAfter ?? 0);
  if (c.change === 'removed') return formatBytes(c.sizeBefore ?? 0);
  if (c.sizeBefore === c.sizeAfter) return formatBytes(c.sizeAfter ?? 0);
  return `${formatBytes(c.sizeBefore ?? 0)} → ${formatBytes(c.sizeAfter ?? 0)}`;
}

// ---------------------------------------------------------------------------------------------
// Snapshot pickers

function renderPickers(): void {
  const opts = (sel: string | null) =>
    [...snapshots]
      .sort((x, y) => (x.created < y.created ? 1 : -1))
      .map((s) => `<option value="${esc(s.id)}"${s.id === sel ? ' selected' : ''}>${esc(snapName(s))}</option>`)
      .join('');
  pickA.innerHTML = opts(state.a);
  pickB.innerHTML = opts(state.b);
  pickA.disabled = pickB.disabled = snapshots.length < 2;
  renderConsistency();
}

/** Beside each picker: how its snapshot is one point in time (or is not). */
function renderConsistency(): void {
  for (const [el, id] of [[$('#consistency-a'), state.a], [$('#consistency-b'), state.b]] as const) {
    const s = snap(id);
    el.innerHTML = s ? consistencyHtml(s) : '';
  }
}

function startCompare(): void {
  if (!state.a || !state.b) return;
  if (state.a === state.b) {
    setStatus('Pick two different snapshots.');
    return;
  }
  cmp = { a: state.a, b: state.b, status: 'running', progress: 'Starting…', summary: null, partitions: null, errors: {}, tree: new ChangeTree(), received: 0, done: false };
  plan = null;
  restoreStatus = null;
  post({ type: 'compare', a: state.a, b: state.b });
  renderAll();
}

pickA.addEventListener('change', () => {
  state.a = pickA.value;
  state.selected = [];
  save();
  renderConsistency();
  startCompare();
});
pickB.addEventListener('change', () => {
  state.b = pickB.value;
  state.selected = [];
  save();
  renderConsistency();
  startCompare();
});
$('#swap').addEventListener('click', () => {
  [state.a, state.b] = [state.b, state.a];
  save();
  renderPickers();
  startCompare();
});
$('#refresh').addEventListener('click', () => post({ type: 'refresh' }));

// ---------------------------------------------------------------------------------------------
// Summary

function renderSummary(): void {
  const el = $('#summary');
  if (!snapshots.length) {
    el.innerHTML = `<div class="notice">${icon('info')}<span>${esc(repo ? 'There are no snapshots in the repository yet.' : 'No snapshot repository is configured.')}</span></div>`;
    return;
  }
  if (snapshots.length < 2) {
    el.innerHTML = `<div class="notice">${icon('info')}<span>Comparing needs two snapshots: take another one after the next upgrade.</span></div>`;
    return;
  }
  if (!cmp) {
    el.innerHTML = '';
    return;
  }
  if (cmp.errors.compare) {
    el.innerHTML = `<div class="notice error">${icon('error')}<span>${esc(cmp.errors.compare)}</span></div>`;
    return;
  }
  const s = cmp.summary;
  if (!s) {
    el.innerHTML = `<div class="card loading">${icon('loading', 'spin')}<span>Comparing ${esc(snap(cmp.a)?.label ?? cmp.a)} with ${esc(snap(cmp.b)?.label ?? cmp.b)}… ${esc(cmp.progress)}</span></div>`;
    return;
  }
  const cards: string[] = [];
  const arrow = (before: string, after: string, changed: boolean) =>
    changed ? `<span class="before">${esc(before)}</span> ${icon('arrow-right', 'arrow')} <span class="after">${esc(after)}</span>` : `<span>${esc(after)}</span> <span class="dim">(unchanged)</span>`;
  if (s.inventory) {
    const u = upgradeSummary(s.inventory);
    cards.push(`<div class="card" id="card-os"><div class="card-title">${icon('server')} Operating system</div><div class="card-value">${arrow(u.os.before, u.os.after, u.os.changed)}</div><div class="card-sub">Kernel ${arrow(u.kernel.before, u.kernel.after, u.kernel.changed)}</div></div>`);
    cards.push(
      `<div class="card" id="card-packages"><div class="card-title">${icon('package')} Packages</div><div class="card-value nums">` +
        `<span class="num up" title="upgraded"><b>${u.upgraded}</b> upgraded</span>` +
        (u.downgraded ? `<span class="num down" title="downgraded"><b>${u.downgraded}</b> downgraded</span>` : '') +
        `<span class="num added" title="added"><b>${u.added}</b> added</span>` +
        `<span class="num removed" title="removed"><b>${u.removed}</b> removed</span></div>` +
        `<div class="card-sub">${u.unchanged} unchanged${u.extensions.added + u.extensions.removed + u.extensions.updated ? ` · VS Code extensions: ${u.extensions.added} added, ${u.extensions.removed} removed, ${u.extensions.updated} updated` : ''}</div></div>`,
    );
    cards.push(
      `<div class="card" id="card-toolchains"><div class="card-title">${icon('terminal')} Toolchains</div>` +
        (u.toolchains.length
          ? `<ul class="toolchains">${u.toolchains.slice(0, 6).map((t) => `<li><b>${esc(t.name)}</b> ${arrow(t.before, t.after, true)}</li>`).join('')}${u.toolchains.length > 6 ? `<li class="dim">and ${u.toolchains.length - 6} more</li>` : ''}</ul>`
          : `<div class="card-value dim">No version changed</div>`) +
        `</div>`,
    );
  } else {
    cards.push(`<div class="card"><div class="card-title">${icon('server')} Environment</div><div class="card-value dim">No inventory in these snapshots</div></div>`);
  }
  const t = s.totals;
  cards.push(
    `<div class="card" id="card-files"><div class="card-title">${icon('diff')} Files (partition ${s.partition})</div><div class="card-value nums">` +
      `<span class="num added"><b>${t.added}</b> added</span><span class="num removed"><b>${t.removed}</b> removed</span><span class="num modified"><b>${t.modified}</b> modified</span><span class="num metadata"><b>${t.metadata}</b> metadata</span></div>` +
      `<div class="card-sub">+${formatBytes(t.bytesAdded)} · −${formatBytes(t.bytesRemoved)} · ±${formatBytes(t.bytesModified)} · ${t.entriesCompared} entries compared</div></div>`,
  );
  el.innerHTML = cards.join('');
}

// ---------------------------------------------------------------------------------------------
// Tabs

function renderTabs(): void {
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('[role=tab]'))) {
    const on = b.dataset.section === state.section;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
  }
  for (const sec of ['files', 'packages', 'partitions', 'restore'] as Section[]) $(`#panel-${sec}`).hidden = sec !== state.section;
  const s = cmp?.summary;
  $('#count-files').textContent = s ? String(s.total) : '';
  $('#count-packages').textContent = s?.inventory ? String(packageRows(s.inventory).length) : '';
  $('#count-partitions').textContent = cmp?.partitions ? String(cmp.partitions.partitions.filter((p) => p.changedBytes > 0).length) : '';
}

const tablist = $('.tabs');
tablist.addEventListener('click', (e) => {
  const b = (e.target as HTMLElement).closest<HTMLButtonElement>('[role=tab]');
  if (!b) return;
  selectSection(b.dataset.section as Section, false);
});
tablist.addEventListener('keydown', (e) => {
  const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('[role=tab]'));
  const i = tabs.findIndex((t) => t.dataset.section === state.section);
  let j = -1;
  if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
  else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = tabs.length - 1;
  if (j < 0) return;
  e.preventDefault();
  selectSection(tabs[j].dataset.section as Section, true);
});

function selectSection(s: Section, focusTab: boolean): void {
  state.section = s;
  save();
  renderTabs();
  if (s === 'files') renderTree();
  if (focusTab) $(`#tab-${s}`).focus();
}

// ---------------------------------------------------------------------------------------------
// Files: the virtualized tree

let selected = new Set<string>(state.selected);
const expanded = new Set<string>(state.expanded);
const collapsed = new Set<string>(state.collapsed);

function kindsSet(): Set<ChangeKind> {
  return new Set(state.kinds);
}

/** Recomputes the filter and the rows (after data, filter or expansion changes). */
function rebuildRows(): void {
  if (!cmp) {
    rows = [];
    matched = 0;
    return;
  }
  matched = cmp.tree.applyFilter({ text: state.fileFilter, kinds: kindsSet() });
  rows = flatten(cmp.tree, expansionRule(expanded, collapsed, state.fileFilter.trim() !== ''));
  if (state.focused) {
    const i = rows.findIndex((r) => r.node.path === state.focused);
    focusIndex = i >= 0 ? i : Math.min(focusIndex, rows.length - 1);
  } else focusIndex = Math.min(focusIndex, rows.length - 1);
}

function isSelected(n: TreeNode): 'yes' | 'implied' | 'no' {
  if (selected.has(n.path)) return 'yes';
  for (let p = n.parent; p; p = p.parent) if (selected.has(p.path)) return 'implied';
  return 'no';
}

function renderTree(): void {
  if (state.section !== 'files') return;
  const viewport = treeEl.clientHeight;
  const w = windowFor(treeEl.scrollTop, viewport, ROW, rows.length);
  spacerEl.style.height = `${w.height}px`;
  rowsEl.style.transform = `translateY(${w.offset}px)`;
  const html: string[] = [];
  for (let i = w.start; i < w.end; i++) {
    const r = rows[i];
    const n = r.node;
    const c = n.change;
    const sel = isSelected(n);
    const kind = c?.change;
    const iconName: IconName = n.isDir ? (r.expanded ? 'chevron-down' : 'chevron-right') : 'file';
    const typeIcon: IconName = n.isDir ? 'folder' : c?.type === 'symlink' ? 'file-symlink-file' : 'file';
    const counts = n.isDir && n.children.length
      ? KINDS.filter((k) => n.counts[k] - (kind === k ? 1 : 0) > 0).map((k) => `<span class="dircount dircount-${k}" title="${n.counts[k] - (kind === k ? 1 : 0)} ${KIND_LABEL[k].toLowerCase()} below">${CHANGE_LETTER[k]}${n.counts[k] - (kind === k ? 1 : 0)}</span>`).join('')
      : '';
    html.push(
      `<div class="row${i === focusIndex ? ' focused' : ''}${sel !== 'no' ? ' selected' : ''}${n.matches ? '' : ' context'}" role="treeitem" id="row-${i}" data-index="${i}" aria-level="${r.depth + 1}"` +
        `${n.isDir && n.children.length ? ` aria-expanded="${r.expanded}"` : ''} aria-selected="${sel !== 'no'}" title="${esc(n.path)}${c ? ` — ${esc(describeChange(c))}` : ''}">` +
        `<span class="check${sel === 'implied' ? ' implied' : ''}" role="checkbox" aria-checked="${sel !== 'no'}" aria-label="Select ${esc(n.name)} for restore" data-check="1">${sel !== 'no' ? icon('check') : ''}</span>` +
        `<span class="indent" data-depth="${r.depth}"></span>` +
        `<span class="twisty">${n.isDir && n.children.length ? icon(iconName) : ''}</span>` +
        `<span class="type-icon${kind ? ` fg-${kind}` : ''}">${icon(typeIcon)}</span>` +
        `<span class="name${kind ? ` fg-${kind}` : ''}">${esc(n.name)}${c?.type === 'dir' || n.isDir ? '/' : ''}</span>` +
        `<span class="counts">${counts}</span>` +
        `<span class="change">${kind ? badge(kind) : ''}<span class="detail">${c && c.detail.length ? esc(c.detail.join(', ')) : ''}</span></span>` +
        `<span class="size">${esc(sizeText(n))}</span>` +
        `</div>`,
    );
  }
  rowsEl.innerHTML = html.join('');
  // Indentation through the CSSOM (the CSP allows no inline style attributes).
  for (const el of Array.from(rowsEl.querySelectorAll<HTMLElement>('.indent'))) el.style.width = `${Number(el.dataset.depth) * 14}px`;
  if (focusIndex >= 0 && focusIndex < rows.length) treeEl.setAttribute('aria-activedescendant', `row-${focusIndex}`);
  else treeEl.removeAttribute('aria-activedescendant');

  const empty = $('#tree-empty');
  if (!cmp) empty.textContent = '';
  else if (cmp.errors.files) empty.innerHTML = `<div class="notice error">${icon('error')}<span>${esc(cmp.errors.files)}</span></div>`;
  else if (!cmp.summary) empty.innerHTML = `<div class="dim">${icon('loading', 'spin')} Comparing files…</div>`;
  else if (cmp.summary.total === 0) empty.innerHTML = `<div class="dim">No files changed between these snapshots.</div>`;
  else if (!rows.length) empty.innerHTML = cmp.done ? `<div class="dim">No changed file matches the filter.</div>` : `<div class="dim">${icon('loading', 'spin')} Loading changes…</div>`;
  else empty.textContent = '';
  renderFileTotals();
}

function renderFileTotals(): void {
  const s = cmp?.summary;
  for (const k of KINDS) {
    const el = document.getElementById(`kind-n-${k}`);
    if (el) el.textContent = s ? String(s.totals[k]) : '';
  }
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.kind'))) b.setAttribute('aria-pressed', String(state.kinds.includes(b.dataset.kind as ChangeKind)));
  const loaded = cmp ? cmp.received : 0;
  const total = s?.total ?? 0;
  const filtering = state.fileFilter.trim() !== '' || state.kinds.length < 4;
  $('#file-totals').textContent = !s
    ? ''
    : `${filtering ? `${matched} of ` : ''}${total} changes${loaded < total ? ` · loading ${Math.round((loaded / Math.max(1, total)) * 100)}%` : ''}`;
  const n = selected.size;
  $('#selection-text').textContent = n ? `${n} selected` : 'Select files or folders (Space) to restore them';
  for (const id of ['#restore-original', '#restore-folder']) ($(id) as HTMLButtonElement).disabled = n === 0;
  ($('#clear-selection') as HTMLButtonElement).hidden = n === 0;
  const from = snap(state.restoreFrom === 'a' ? state.a : state.b);
  const mounted = from?.partitions.find((p) => p.index === cmp?.summary?.partition)?.mountpoint;
  const orig = $('#restore-original') as HTMLButtonElement;
  if (!mounted) {
    orig.disabled = true;
    orig.title = `The snapshot's partition ${cmp?.summary?.partition ?? ''} is not mounted on this machine: restore into a folder instead.`;
  } else {
    orig.title = `Put the selected files back under ${mounted} (where the snapshot's partition is mounted)`;
  }
}

function setFocus(i: number, reveal = true): void {
  if (!rows.length) return;
  focusIndex = Math.max(0, Math.min(rows.length - 1, i));
  state.focused = rows[focusIndex].node.path;
  save();
  if (reveal) {
    const top = scrollToShow(focusIndex, treeEl.scrollTop, treeEl.clientHeight, ROW);
    if (top !== treeEl.scrollTop) treeEl.scrollTop = top;
  }
  renderTree();
}

function toggleExpand(n: TreeNode, open?: boolean): void {
  const isOpen = rows.find((r) => r.node === n)?.expanded ?? false;
  const want = open ?? !isOpen;
  if (want === isOpen) return;
  if (want) {
    expanded.add(n.path);
    collapsed.delete(n.path);
  } else {
    collapsed.add(n.path);
    expanded.delete(n.path);
  }
  state.expanded = [...expanded];
  state.collapsed = [...collapsed];
  save();
  rebuildRows();
  renderTree();
}

function toggleSelect(n: TreeNode): void {
  if (selected.has(n.path)) selected.delete(n.path);
  else {
    selected.add(n.path);
    // A folder covers its contents: drop selections below it.
    for (const p of [...selected]) if (p.startsWith(n.path + '/')) selected.delete(p);
  }
  state.selected = [...selected];
  save();
  renderTree();
}

function activate(n: TreeNode): void {
  if (n.isDir && n.children.length) toggleExpand(n);
  else if (canDiff(n) && n.change) post({ type: 'openDiff', path: n.path, change: n.change.change });
}

treeEl.addEventListener('scroll', () => {
  state.scrollTop = treeEl.scrollTop;
  save();
  renderTree();
});
new ResizeObserver(() => renderTree()).observe(treeEl);

rowsEl.addEventListener('click', (e) => {
  const target = e.target as HTMLElement;
  const rowEl = target.closest<HTMLElement>('.row');
  if (!rowEl) return;
  const i = Number(rowEl.dataset.index);
  const r = rows[i];
  if (!r) return;
  focusIndex = i;
  state.focused = r.node.path;
  treeEl.focus({ preventScroll: true });
  if (target.closest('[data-check]')) toggleSelect(r.node);
  else if (target.closest('.twisty')) toggleExpand(r.node);
  else if (e.ctrlKey || e.metaKey) toggleSelect(r.node);
  else activate(r.node);
  renderTree();
});

// A press on a row focuses that row: done at mousedown, before the tree takes focus (a focus
// handler that re-rendered the rows would swallow the click).
rowsEl.addEventListener('mousedown', (e) => {
  const rowEl = (e.target as HTMLElement).closest<HTMLElement>('.row');
  if (rowEl && rows[Number(rowEl.dataset.index)]) {
    focusIndex = Number(rowEl.dataset.index);
    state.focused = rows[focusIndex].node.path;
  }
});
treeEl.addEventListener('focus', () => {
  if (focusIndex < 0 && rows.length) setFocus(0);
});

treeEl.addEventListener('keydown', (e) => {
  const page = Math.max(1, Math.floor(treeEl.clientHeight / ROW));
  const next = moveFocus(e.key, Math.max(0, focusIndex), rows.length, page);
  if (next !== null) {
    e.preventDefault();
    setFocus(next);
    return;
  }
  const r = rows[focusIndex];
  if (!r) return;
  const n = r.node;
  if (e.key === 'ArrowRight') {
    e.preventDefault();
    if (n.isDir && n.children.length && !r.expanded) toggleExpand(n, true);
    else if (r.expanded) setFocus(focusIndex + 1);
  } else if (e.key === 'ArrowLeft') {
    e.preventDefault();
    if (r.expanded) toggleExpand(n, false);
    else if (n.parent && n.parent.depth >= 0) setFocus(rows.findIndex((x) => x.node === n.parent));
  } else if (e.key === 'Enter') {
    e.preventDefault();
    activate(n);
  } else if (e.key === ' ') {
    e.preventDefault();
    toggleSelect(n);
  }
});

let filterTimer: ReturnType<typeof setTimeout> | undefined;
fileFilter.addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    state.fileFilter = fileFilter.value;
    save();
    treeEl.scrollTop = 0;
    rebuildRows();
    renderTree();
  }, 120);
});
fileFilter.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowDown') {
    e.preventDefault();
    treeEl.focus();
    setFocus(0);
  }
});

for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.kind'))) {
  b.addEventListener('click', () => {
    const k = b.dataset.kind as ChangeKind;
    state.kinds = state.kinds.includes(k) ? state.kinds.filter((x) => x !== k) : KINDS.filter((x) => x === k || state.kinds.includes(x));
    save();
    rebuildRows();
    renderTree();
  });
}

// ---------------------------------------------------------------------------------------------
// Restoring files

restoreFrom.addEventListener('change', () => {
  state.restoreFrom = restoreFrom.value === 'b' ? 'b' : 'a';
  save();
  renderFileTotals();
});
$('#clear-selection').addEventListener('click', () => {
  selected = new Set();
  state.selected = [];
  save();
  renderTree();
});
function planRestore(destination: 'original' | 'folder'): void {
  const id = state.restoreFrom === 'a' ? state.a : state.b;
  if (!id || !selected.size) return;
  plan = null;
  restoreStatus = { kind: 'progress', text: 'Checking what the restore would change (dry run)…' };
  renderPlan();
  post({ type: 'planRestoreFiles', snapshot: id, paths: minimalPaths(selected), destination });
}
$('#restore-original').addEventListener('click', () => planRestore('original'));
$('#restore-folder').addEventListener('click', () => planRestore('folder'));

const ACTION_LABEL: Record<string, string> = { create: 'create', replace: 'replace', unchanged: 'unchanged', conflict: 'conflict', skip: 'skip' };

function renderPlan(): void {
  const el = $('#plan');
  if (!plan && !restoreStatus) {
    el.hidden = true;
    el.innerHTML = '';
    return;
  }
  el.hidden = false;
  const parts: string[] = [];
  if (plan) {
    const t = plan.totals;
    const s = snap(plan.snapshot);
    parts.push(
      `<div class="plan-head">${icon('info')}<span><b>Dry run</b>: restoring from <b>${esc(s?.label ?? plan.snapshot)}</b> into <code>${esc(plan.targetRoot)}</code> would create ${t.create}, replace ${t.replace}, leave ${t.unchanged} unchanged` +
        `${t.conflict ? `, <span class="fg-removed">${t.conflict} conflicts</span>` : ''}${t.skip ? `, skip ${t.skip}` : ''}; ${formatBytes(plan.bytesToWrite)} to write.</span></div>`,
    );
    if (plan.entries.length) {
      parts.push(
        `<ul class="plan-list" aria-label="What the restore would change">${plan.entries
          .map((e) => `<li><span class="action action-${e.action}">${ACTION_LABEL[e.action]}</span><code>${esc(e.dest)}</code>${e.reason ? ` <span class="dim">(${esc(e.reason)})</span>` : ''}</li>`)
          .join('')}${plan.truncated ? '<li class="dim">…and more</li>' : ''}</ul>`,
      );
    }
    for (const w of plan.warnings) parts.push(`<div class="notice warning">${icon('warning')}<span>${esc(w)}</span></div>`);
    const nothing = t.create + t.replace === 0;
    if (!restoreStatus || restoreStatus.kind !== 'progress')
      parts.push(
        `<div class="plan-actions"><button id="plan-confirm"${nothing ? ' disabled' : ''}>${icon('history')}<span>Restore ${t.create + t.replace} ${t.create + t.replace === 1 ? 'entry' : 'entries'}</span></button><button id="plan-cancel" class="secondary">Cancel</button></div>`,
      );
  }
  if (restoreStatus) {
    const ic: IconName = restoreStatus.kind === 'done' ? 'check' : restoreStatus.kind === 'failed' ? 'error' : restoreStatus.kind === 'cancelled' ? 'info' : 'loading';
    parts.push(`<div class="restore-status ${restoreStatus.kind}" role="status">${icon(ic, restoreStatus.kind === 'progress' ? 'spin' : '')}<span>${esc(restoreStatus.text)}</span></div>`);
  }
  el.innerHTML = parts.join('');
  document.getElementById('plan-confirm')?.addEventListener('click', () => {
    if (!plan) return;
    restoreStatus = { kind: 'progress', text: 'Restoring…' };
    post({ type: 'confirmRestoreFiles', planId: plan.planId });
    renderPlan();
  });
  document.getElementById('plan-cancel')?.addEventListener('click', () => {
    if (plan) post({ type: 'discardRestorePlan', planId: plan.planId });
    plan = null;
    restoreStatus = null;
    renderPlan();
  });
}

// ---------------------------------------------------------------------------------------------
// Packages

let packageTimer: ReturnType<typeof setTimeout> | undefined;
packageFilter.addEventListener('input', () => {
  clearTimeout(packageTimer);
  packageTimer = setTimeout(() => {
    state.packageFilter = packageFilter.value;
    save();
    renderPackages();
  }, 120);
});

const PACKAGE_ROW_LIMIT = 2000;
function renderPackages(): void {
  const body = $('#package-rows');
  const inv = cmp?.summary?.inventory ?? null;
  const all: PackageRow[] = packageRows(inv);
  const shown = filterPackages(all, state.packageFilter);
  $('#package-totals').textContent = cmp?.summary ? `${shown.length === all.length ? '' : `${shown.length} of `}${all.length} changed packages` : '';
  if (!cmp?.summary) {
    body.innerHTML = `<tr><td colspan="5" class="dim">${cmp ? 'Comparing…' : ''}</td></tr>`;
    return;
  }
  if (!inv) {
    body.innerHTML = `<tr><td colspan="5" class="dim">These snapshots carry no package inventory.</td></tr>`;
    return;
  }
  if (!shown.length) {
    body.innerHTML = `<tr><td colspan="5" class="dim">${all.length ? 'No package matches the filter.' : 'No package changed.'}</td></tr>`;
    return;
  }
  const kindClass = { added: 'added', removed: 'removed', upgraded: 'modified', downgraded: 'metadata' } as const;
  body.innerHTML =
    shown
      .slice(0, PACKAGE_ROW_LIMIT)
      .map(
        (r) =>
          `<tr><td><span class="pill fg-${kindClass[r.kind]}">${r.kind}</span></td><td class="mono">${esc(r.name)}${r.arch ? `<span class="dim">:${esc(r.arch)}</span>` : ''}</td><td>${esc(r.manager)}</td><td class="mono">${esc(r.before ?? '—')}</td><td class="mono">${esc(r.after ?? '—')}</td></tr>`,
      )
      .join('') + (shown.length > PACKAGE_ROW_LIMIT ? `<tr><td colspan="5" class="dim">${shown.length - PACKAGE_ROW_LIMIT} more: refine the filter</td></tr>` : '');
}

// ---------------------------------------------------------------------------------------------
// Partitions

function renderPartitions(): void {
  const body = $('#partition-rows');
  if (!cmp) {
    body.innerHTML = '';
    return;
  }
  if (cmp.errors.partitions) {
    body.innerHTML = `<tr><td colspan="5"><div class="notice error">${icon('error')}<span>${esc(cmp.errors.partitions)}</span></div></td></tr>`;
    return;
  }
  const p = cmp.partitions;
  if (!p) {
    body.innerHTML = `<tr><td colspan="5" class="dim">${icon('loading', 'spin')} Comparing blocks…</td></tr>`;
    return;
  }
  const max = Math.max(1, ...p.partitions.map((x) => x.changedBytes));
  const name = (x: PartitionChange) => (x.index === null ? 'Outside partitions' : `Partition ${x.index}${x.label ? ` “${x.label}”` : ''}`);
  body.innerHTML =
    p.partitions
      .map(
        (x, i) =>
          `<tr><td>${esc(name(x))}</td><td>${esc(x.fs ?? '')}</td><td>${x.size !== undefined ? formatBytes(x.size) : ''}</td><td class="${x.changedBytes ? '' : 'dim'}">${x.changedBytes ? formatBytes(x.changedBytes) : 'unchanged'}</td><td class="bar-col"><div class="bar"><div class="bar-fill" data-i="${i}"></div></div></td></tr>`,
      )
      .join('') + `<tr class="total"><td colspan="3">Total</td><td>${formatBytes(p.totalChangedBytes)}</td><td></td></tr>`;
  for (const el of Array.from(body.querySelectorAll<HTMLElement>('.bar-fill'))) el.style.width = `${(p.partitions[Number(el.dataset.i)].changedBytes / max) * 100}%`;
}

// ---------------------------------------------------------------------------------------------
// Restore (disks and partitions)

function renderRestore(): void {
  const el = $('#panel-restore');
  const cards: string[] = [];
  for (const [which, id] of [['Before', state.a], ['After', state.b]] as const) {
    const s = snap(id);
    if (!s) continue;
    const parts = [...s.partitions].sort((x, y) => x.index - y.index);
    cards.push(
      `<div class="restore-card"><div class="card-title">${icon('history')} ${which}: <b>${esc(s.label || '(no label)')}</b> <span class="dim">${esc(new Date(s.created).toLocaleString())} · ${esc(s.source)} · </span>${consistencyHtml(s)}</div>` +
        (s.sourceIsSystem
          ? `<div class="notice warning">${icon('warning')}<div><b>This snapshot is of the disk this system runs from.</b> A disk cannot be overwritten while the system on it runs: start a recovery environment (a live USB stick with Node.js 20+), make the repository's drive available there and run the restore from it. <button class="link" data-recovery="${esc(s.id)}">Write the command to run from a live system</button><br>To roll back a broken environment without rebooting, restore files instead (Files tab: select, then <i>To original place…</i>).</div></div>`
          : '') +
        `<div class="restore-actions"><button class="secondary" data-restore="${esc(s.id)}"${s.sourceIsSystem ? ' data-system="1"' : ''}>${icon('server')}<span>Restore whole disk…</span></button>` +
        parts
          .map((p) => `<button class="secondary" data-restore="${esc(s.id)}" data-partition="${p.index}"${s.sourceIsSystem ? ' data-system="1"' : ''}>${icon('layers')}<span>Partition ${p.index}${p.fs ? ` (${esc(p.fs)}${p.label ? ` “${esc(p.label)}”` : ''}, ${formatBytes(p.size)})` : ''}…</span></button>`)
          .join('') +
        `</div></div>`,
    );
  }
  el.innerHTML = cards.length
    ? `<p class="hint">Writes a snapshot back onto a disk, a partition or a disk image file. You choose the target next; a confirmation names it and what will be overwritten.</p>${cards.join('')}`
    : `<p class="dim">Pick snapshots above.</p>`;
}

$('#panel-restore').addEventListener('click', (e) => {
  const t = e.target as HTMLElement;
  const rec = t.closest<HTMLElement>('[data-recovery]');
  if (rec) {
    post({ type: 'recoveryCommand', snapshot: rec.dataset.recovery! });
    return;
  }
  const b = t.closest<HTMLElement>('[data-restore]');
  if (!b) return;
  const partition = b.dataset.partition ? Number(b.dataset.partition) : undefined;
  post(partition === undefined ? { type: 'restoreDisk', snapshot: b.dataset.restore! } : { type: 'restoreDisk', snapshot: b.dataset.restore!, partition });
});

// ---------------------------------------------------------------------------------------------
// Messages from the extension

function renderAll(): void {
  renderPickers();
  renderSummary();
  renderTabs();
  rebuildRows();
  renderTree();
  renderPackages();
  renderPartitions();
  renderRestore();
  renderPlan();
  if (cmp?.status === 'running') setStatus(cmp.progress, true);
  else setStatus('');
}

const same = (m: { a: string; b: string }) => !!cmp && cmp.a === m.a && cmp.b === m.b;

window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'init': {
      snapshots = m.snapshots;
      repo = m.repo;
      const valid = (id: string | null) => !!id && snapshots.some((s) => s.id === id);
      // The extension's choice wins when it names a pair (a command asked for it); else keep ours.
      if (m.a && m.b) {
        if (m.a !== state.a || m.b !== state.b) state.selected = [];
        state.a = m.a;
        state.b = m.b;
      }
      if (!valid(state.a) || !valid(state.b)) {
        const sorted = [...snapshots].sort((x, y) => (x.created < y.created ? 1 : -1));
        state.b = sorted[0]?.id ?? null;
        state.a = sorted[1]?.id ?? null;
      }
      selected = new Set(state.selected);
      save();
      if (state.a && state.b && state.a !== state.b) startCompare();
      else {
        cmp = null;
        renderAll();
      }
      if (m.message) setStatus(m.message);
      break;
    }
    case 'compareStarted':
      if (!same(m)) return;
      cmp!.status = 'running';
      setStatus('Comparing…', true);
      break;
    case 'progress':
      if (!same(m)) return;
      cmp!.progress = m.message;
      setStatus(m.message, true);
      if (!cmp!.summary) renderSummary();
      break;
    case 'summary':
      if (!same(m)) return;
      cmp!.summary = m;
      if (m.total === 0) cmp!.done = true;
      renderSummary();
      renderTabs();
      renderPackages();
      renderTree();
      break;
    case 'changes':
      if (!same(m)) return;
      if (m.offset !== cmp!.received) return; // out of order or repeated: the extension re-sends from the start
      cmp!.tree.add(m.changes);
      cmp!.received += m.changes.length;
      cmp!.done = m.done;
      if (m.done) {
        cmp!.status = 'done';
        setStatus('');
      }
      rebuildRows();
      if (m.offset === 0 && state.scrollTop) treeEl.scrollTop = state.scrollTop;
      renderTree();
      break;
    case 'partitions':
      if (!same(m)) return;
      cmp!.partitions = m;
      renderPartitions();
      renderTabs();
      break;
    case 'sectionError':
      if (!same(m)) return;
      cmp!.errors[m.section] = m.message;
      if (m.section !== 'partitions') {
        cmp!.status = 'failed';
        setStatus('');
      }
      renderAll();
      break;
    case 'restorePlan':
      plan = m;
      restoreStatus = null;
      renderPlan();
      document.getElementById('plan-confirm')?.focus();
      break;
    case 'restoreProgress':
      if (plan && m.planId !== plan.planId) return;
      restoreStatus = { kind: 'progress', text: m.message };
      renderPlan();
      break;
    case 'restoreDone': {
      const t = m.totals;
      plan = null;
      restoreStatus = { kind: 'done', text: `Restored into ${m.targetRoot}: ${t.create} created, ${t.replace} replaced, ${t.unchanged} unchanged; ${formatBytes(m.bytesWritten)} written.${m.warnings.length ? ` ${m.warnings.length} warnings (see the output).` : ''}` };
      renderPlan();
      break;
    }
    case 'restoreFailed':
      restoreStatus = { kind: 'failed', text: m.message };
      renderPlan();
      break;
    case 'restoreCancelled':
      plan = null;
      restoreStatus = { kind: 'cancelled', text: 'Restore cancelled.' };
      renderPlan();
      break;
  }
});

// Restore the saved view, then ask for data.
fileFilter.value = state.fileFilter;
packageFilter.value = state.packageFilter;
restoreFrom.value = state.restoreFrom;
renderAll();
post({ type: 'ready' });
