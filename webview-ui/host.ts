// Messages from the extension: the snapshots ('init'), a comparison as it streams in (summary,
// pages of changes, partitions, errors per section) and the progress of a file restore.
import { formatBytes } from '../imaging/protocol/format';
import { renderAll, startCompare } from './compare';
import { renderPlan } from './files-restore';
import { rebuildRows, renderTree, scrollTreeTo } from './files-tab';
import { renderSummary } from './header';
import type { HostMessage } from './messages';
import { renderPackages } from './packages-tab';
import { renderPartitions } from './partitions-tab';
import { setStatus } from './render';
import { save, state, store } from './store';
import { renderTabs } from './tabs';

const same = (m: { a: string; b: string }) => !!store.cmp && store.cmp.a === m.a && store.cmp.b === m.b;

export function initHostMessages(): void {
  window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
    const m = ev.data;
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'init': {
        store.snapshots = m.snapshots;
        store.repo = m.repo;
        const valid = (id: string | null) => !!id && store.snapshots.some((s) => s.id === id);
        // The extension's choice wins when it names a pair (a command asked for it); else keep ours.
        if (m.a && m.b) {
          const partition = m.partition ?? null;
          if (m.a !== state.a || m.b !== state.b || partition !== state.partition) state.selected = [];
          state.a = m.a;
          state.b = m.b;
          state.partition = partition;
          if (partition !== null) state.section = 'files';
        }
        if (!valid(state.a) || !valid(state.b)) {
          const sorted = [...store.snapshots].sort((x, y) => (x.created < y.created ? 1 : -1));
          state.b = sorted[0]?.id ?? null;
          state.a = sorted[1]?.id ?? null;
        }
        store.selected = new Set(state.selected);
        save();
        if (state.a && state.b && state.a !== state.b) startCompare();
        else {
          store.cmp = null;
          renderAll();
        }
        if (m.message) setStatus(m.message);
        break;
      }
      case 'compareStarted':
        if (!same(m)) return;
        store.cmp!.status = 'running';
        setStatus('Comparing…', true);
        break;
      case 'progress':
        if (!same(m)) return;
        store.cmp!.progress = m.message;
        setStatus(m.message, true);
        if (!store.cmp!.summary) renderSummary();
        break;
      case 'summary':
        if (!same(m)) return;
        store.cmp!.summary = m;
        if (m.total === 0) store.cmp!.done = true;
        renderSummary();
        renderTabs();
        renderPackages();
        renderTree();
        break;
      case 'changes':
        if (!same(m)) return;
        if (m.offset !== store.cmp!.received) return; // out of order or repeated: the extension re-sends from the start
        store.cmp!.tree.add(m.changes);
        store.cmp!.received += m.changes.length;
        store.cmp!.done = m.done;
        if (m.done) {
          store.cmp!.status = 'done';
          setStatus('');
        }
        rebuildRows();
        if (m.offset === 0 && state.scrollTop) scrollTreeTo(state.scrollTop);
        renderTree();
        break;
      case 'partitions':
        if (!same(m)) return;
        store.cmp!.partitions = m;
        renderPartitions();
        renderTabs();
        break;
      case 'sectionError':
        if (!same(m)) return;
        store.cmp!.errors[m.section] = m.message;
        if (m.section !== 'partitions') {
          store.cmp!.status = 'failed';
          setStatus('');
        }
        renderAll();
        break;
      case 'restorePlan':
        store.plan = m;
        store.restoreStatus = null;
        renderPlan();
        document.getElementById('plan-confirm')?.focus();
        break;
      case 'restoreProgress':
        if (store.plan && m.planId !== store.plan.planId) return;
        store.restoreStatus = { kind: 'progress', text: m.message };
        renderPlan();
        break;
      case 'restoreDone': {
        const t = m.totals;
        store.plan = null;
        store.restoreStatus = {
          kind: 'done',
          text: `Restored into ${m.targetRoot}: ${t.create} created, ${t.replace} replaced, ${t.unchanged} unchanged; ${formatBytes(m.bytesWritten)} written.${m.warnings.length ? ` ${m.warnings.length} warnings (see the output).` : ''}`,
        };
        renderPlan();
        break;
      }
      case 'restoreFailed':
        store.restoreStatus = { kind: 'failed', text: m.message };
        renderPlan();
        break;
      case 'restoreCancelled':
        store.plan = null;
        store.restoreStatus = { kind: 'cancelled', text: 'Restore cancelled.' };
        renderPlan();
        break;
    }
  });
}
