// The Files tab: the changed files as a virtualized tree (100k rows: only the rows in view are in
// the DOM), its filter and kinds of change, keyboard navigation, and the selection for restore.
import { formatBytes } from '../imaging/protocol/format';
import { icon, IconName } from './icons';
import type { ChangeKind } from './messages';
import { $, badge, esc, snap } from './render';
import { KIND_LABEL, KINDS, post, ROW, save, state, store } from './store';
import { canDiff, CHANGE_LETTER, describeChange, expansionRule, flatten, moveFocus, Row, TreeNode } from './tree';
import { scrollToShow, windowFor } from './virtual';

let rows: Row[] = [];
let matched = 0;
let focusIndex = -1;
const expanded = new Set<string>(state.expanded);
const collapsed = new Set<string>(state.collapsed);

// The tree's elements, looked up once the layout is mounted (initFilesTab).
let treeEl: HTMLElement;
let rowsEl: HTMLElement;
let spacerEl: HTMLElement;

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

function kindsSet(): Set<ChangeKind> {
  return new Set(state.kinds);
}

/** Recomputes the filter and the rows (after data, filter or expansion changes). */
export function rebuildRows(): void {
  const { cmp } = store;
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
  const { selected } = store;
  if (selected.has(n.path)) return 'yes';
  for (let p = n.parent; p; p = p.parent) if (selected.has(p.path)) return 'implied';
  return 'no';
}

export function renderTree(): void {
  if (state.section !== 'files') return;
  const { cmp } = store;
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
    const counts =
      n.isDir && n.children.length
        ? KINDS.filter((k) => n.counts[k] - (kind === k ? 1 : 0) > 0)
            .map(
              (k) =>
                `<span class="dircount dircount-${k}" title="${n.counts[k] - (kind === k ? 1 : 0)} ${KIND_LABEL[k].toLowerCase()} below">${CHANGE_LETTER[k]}${n.counts[k] - (kind === k ? 1 : 0)}</span>`,
            )
            .join('')
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

export function renderFileTotals(): void {
  const { cmp, selected } = store;
  const s = cmp?.summary;
  for (const k of KINDS) {
    const el = document.getElementById(`kind-n-${k}`);
    if (el) el.textContent = s ? String(s.totals[k]) : '';
  }
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.kind'))) b.setAttribute('aria-pressed', String(state.kinds.includes(b.dataset.kind as ChangeKind)));
  const loaded = cmp ? cmp.received : 0;
  const total = s?.total ?? 0;
  const filtering = state.fileFilter.trim() !== '' || state.kinds.length < 4;
  $('#file-totals').textContent = !s ? '' : `${filtering ? `${matched} of ` : ''}${total} changes${loaded < total ? ` · loading ${Math.round((loaded / Math.max(1, total)) * 100)}%` : ''}`;
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
  const { selected } = store;
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

/** Scrolls the tree (to where it was before a hide/show). */
export function scrollTreeTo(top: number): void {
  treeEl.scrollTop = top;
}

export function initFilesTab(): void {
  treeEl = $('#tree');
  rowsEl = $('#tree-rows');
  spacerEl = $('#tree-spacer');
  const fileFilter = $<HTMLInputElement>('#file-filter');

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
}
