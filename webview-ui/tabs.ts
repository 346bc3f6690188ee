// The tab strip (Files, Packages, Partitions, Restore): which tabpanel shows, the counts on the
// tabs, and arrow-key navigation between tabs.
import { renderTree } from './files-tab';
import type { Section } from './messages';
import { packageRows } from './packages';
import { $ } from './render';
import { save, state, store } from './store';

export function renderTabs(): void {
  const { cmp } = store;
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

export function initTabs(): void {
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
}

function selectSection(s: Section, focusTab: boolean): void {
  state.section = s;
  save();
  renderTabs();
  if (s === 'files') renderTree();
  if (focusTab) $(`#tab-${s}`).focus();
}
