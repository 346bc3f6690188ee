// Rendering helpers shared by the tabs: element lookup, HTML escaping, snapshot names, the
// consistency badge, the status line and change badges.
import { consistencyName, describeConsistency } from '../imaging/protocol/format';
import { icon } from './icons';
import type { ChangeKind, PanelSnapshot } from './messages';
import { KIND_LABEL, store } from './store';
import { CHANGE_LETTER } from './tree';

export const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => document.querySelector(sel) as T;
export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const snap = (id: string | null) => store.snapshots.find((s) => s.id === id);
export const snapName = (s: PanelSnapshot | undefined) => (s ? `${s.label || '(no label)'} · ${new Date(s.created).toLocaleString()}` : '?');
/** Not one point in time (consistencyName's "fuzzy read"): marked with a warning icon. */
const isFuzzy = (s: PanelSnapshot) => consistencyName(s) === consistencyName({ consistency: 'fuzzy' });
/** "point in time", "offline", "⚠ fuzzy read"; the sentence of describeConsistency as its tooltip. */
export const consistencyHtml = (s: PanelSnapshot) =>
  `<span class="consistency${isFuzzy(s) ? ' fuzzy' : ''}" title="${esc(describeConsistency(s))}">${isFuzzy(s) ? icon('warning') : ''}${esc(consistencyName(s))}</span>`;

export function setStatus(text: string, busy = false): void {
  $('#status').innerHTML = text ? `${busy ? icon('loading', 'spin') : ''}<span>${esc(text)}</span>` : '';
}

export function badge(kind: ChangeKind): string {
  return `<span class="badge badge-${kind}" title="${KIND_LABEL[kind]}">${CHANGE_LETTER[kind]}</span>`;
}
