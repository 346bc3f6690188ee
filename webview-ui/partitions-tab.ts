// The Partitions tab: changed bytes per partition (block-level comparison), with a bar each.
import { formatBytes } from '../imaging/protocol/format';
import { icon } from './icons';
import type { PartitionChange } from './messages';
import { $, esc } from './render';
import { store } from './store';

export function renderPartitions(): void {
  const { cmp } = store;
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
