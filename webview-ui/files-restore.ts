// The Files tab's restore bar: which snapshot to restore from, the selection, and the dry run
// ("plan") the extension answers with, shown for confirmation before anything is written.
import { formatBytes } from '../imaging/protocol/format';
import { icon, IconName } from './icons';
import { renderFileTotals, renderTree } from './files-tab';
import { minimalPaths } from './messages';
import { $, esc, snap } from './render';
import { post, save, state, store } from './store';

const ACTION_LABEL: Record<string, string> = { create: 'create', replace: 'replace', unchanged: 'unchanged', conflict: 'conflict', skip: 'skip' };

function planRestore(destination: 'original' | 'folder'): void {
  const id = state.restoreFrom === 'a' ? state.a : state.b;
  if (!id || !store.selected.size) return;
  store.plan = null;
  store.restoreStatus = { kind: 'progress', text: 'Checking what the restore would change (dry run)…' };
  renderPlan();
  post({ type: 'planRestoreFiles', snapshot: id, paths: minimalPaths(store.selected), destination });
}

export function initFileRestore(): void {
  const restoreFrom = $<HTMLSelectElement>('#restore-from');
  restoreFrom.addEventListener('change', () => {
    state.restoreFrom = restoreFrom.value === 'b' ? 'b' : 'a';
    save();
    renderFileTotals();
  });
  $('#clear-selection').addEventListener('click', () => {
    store.selected = new Set();
    state.selected = [];
    save();
    renderTree();
  });
  $('#restore-original').addEventListener('click', () => planRestore('original'));
  $('#restore-folder').addEventListener('click', () => planRestore('folder'));
}

export function renderPlan(): void {
  const { plan, restoreStatus } = store;
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
    if (!store.plan) return;
    store.restoreStatus = { kind: 'progress', text: 'Restoring…' };
    post({ type: 'confirmRestoreFiles', planId: store.plan.planId });
    renderPlan();
  });
  document.getElementById('plan-cancel')?.addEventListener('click', () => {
    if (store.plan) post({ type: 'discardRestorePlan', planId: store.plan.planId });
    store.plan = null;
    store.restoreStatus = null;
    renderPlan();
  });
}
