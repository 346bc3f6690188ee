// The top of the panel: the two snapshot pickers (with how each snapshot is one point in time) and
// the upgrade summary cards (OS, kernel, packages, toolchains, files).
import { formatBytes } from '../imaging/protocol/format';
import { icon } from './icons';
import { upgradeSummary } from './packages';
import { $, consistencyHtml, esc, snap, snapName } from './render';
import { state, store } from './store';

// ---------------------------------------------------------------------------------------------
// Snapshot pickers

export function renderPickers(): void {
  const { snapshots } = store;
  const pickA = $<HTMLSelectElement>('#pick-a');
  const pickB = $<HTMLSelectElement>('#pick-b');
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
export function renderConsistency(): void {
  for (const [el, id] of [
    [$('#consistency-a'), state.a],
    [$('#consistency-b'), state.b],
  ] as const) {
    const s = snap(id);
    el.innerHTML = s ? consistencyHtml(s) : '';
  }
}

// ---------------------------------------------------------------------------------------------
// Summary

export function renderSummary(): void {
  const { snapshots, repo, cmp } = store;
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
    cards.push(
      `<div class="card" id="card-os"><div class="card-title">${icon('server')} Operating system</div><div class="card-value">${arrow(u.os.before, u.os.after, u.os.changed)}</div><div class="card-sub">Kernel ${arrow(u.kernel.before, u.kernel.after, u.kernel.changed)}</div></div>`,
    );
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
          ? `<ul class="toolchains">${u.toolchains
              .slice(0, 6)
              .map((t) => `<li><b>${esc(t.name)}</b> ${arrow(t.before, t.after, true)}</li>`)
              .join('')}${u.toolchains.length > 6 ? `<li class="dim">and ${u.toolchains.length - 6} more</li>` : ''}</ul>`
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
