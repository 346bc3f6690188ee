// Starting a comparison and drawing everything for it: the pickers' and toolbar's actions, and
// renderAll (every part of the panel, after a new comparison or the snapshots changed).
import { renderPlan } from './files-restore';
import { rebuildRows, renderTree } from './files-tab';
import { renderPickers, renderConsistency, renderSummary } from './header';
import { renderPackages } from './packages-tab';
import { renderPartitions } from './partitions-tab';
import { $, setStatus } from './render';
import { renderRestore } from './restore-tab';
import { post, save, state, store } from './store';
import { renderTabs } from './tabs';
import { ChangeTree } from './tree';

export function renderAll(): void {
  const { cmp } = store;
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

export function startCompare(): void {
  if (!state.a || !state.b) return;
  if (state.a === state.b) {
    setStatus('Pick two different snapshots.');
    return;
  }
  store.cmp = { a: state.a, b: state.b, status: 'running', progress: 'Starting…', summary: null, partitions: null, errors: {}, tree: new ChangeTree(), received: 0, done: false };
  store.plan = null;
  store.restoreStatus = null;
  post(state.partition !== null ? { type: 'compare', a: state.a, b: state.b, partition: state.partition } : { type: 'compare', a: state.a, b: state.b });
  renderAll();
}

export function initPickers(): void {
  const pickA = $<HTMLSelectElement>('#pick-a');
  const pickB = $<HTMLSelectElement>('#pick-b');
  pickA.addEventListener('change', () => {
    state.a = pickA.value;
    state.partition = null;
    state.selected = [];
    save();
    renderConsistency();
    startCompare();
  });
  pickB.addEventListener('change', () => {
    state.b = pickB.value;
    state.partition = null;
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
}
