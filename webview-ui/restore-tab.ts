// The Restore tab: undoing the changes between the two snapshots in place (the extension plans,
// confirms and takes a safety snapshot first), restoring a whole disk or one partition of either
// snapshot (the extension asks for the target and confirms), and the recovery route for a snapshot
// of the running system's disk.
import { formatBytes } from '../imaging/protocol/format';
import { icon } from './icons';
import { $, consistencyHtml, esc, snap } from './render';
import { post, state } from './store';

export function renderRestore(): void {
  const el = $('#panel-restore');
  const cards: string[] = [];
  for (const [which, id] of [
    ['Before', state.a],
    ['After', state.b],
  ] as const) {
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
          .map(
            (p) =>
              `<button class="secondary" data-restore="${esc(s.id)}" data-partition="${p.index}"${s.sourceIsSystem ? ' data-system="1"' : ''}>${icon('layers')}<span>Partition ${p.index}${p.fs ? ` (${esc(p.fs)}${p.label ? ` “${esc(p.label)}”` : ''}, ${formatBytes(p.size)})` : ''}…</span></button>`,
          )
          .join('') +
        `</div></div>`,
    );
  }
  const a = snap(state.a);
  const b = snap(state.b);
  // Undo: only for a pair in time order of one disk (the engine checks the filesystem too).
  const undo =
    a && b && a.id !== b.id && a.source === b.source && Date.parse(a.created) < Date.parse(b.created)
      ? `<div class="restore-card"><div class="card-title">${icon('history')} Undo the changes from Before to After</div>` +
        `<p class="hint">Puts back, in place on the mounted filesystem, every file that changed between the two snapshots: changed and removed files restored, added ones removed. You see what it will do first; a snapshot of the disk is taken before anything changes. Files changed after the After snapshot stop it.</p>` +
        `<div class="restore-actions"><button class="secondary" data-undo-before="${esc(a.id)}" data-undo-after="${esc(b.id)}">${icon('history')}<span>Undo This Upgrade…</span></button></div></div>`
      : '';
  el.innerHTML = cards.length
    ? `<p class="hint">Writes a snapshot back onto a disk, a partition or a disk image file. You choose the target next; a confirmation names it and what will be overwritten.</p>${undo}${cards.join('')}`
    : `<p class="dim">Pick snapshots above.</p>`;
}

export function initRestoreTab(): void {
  $('#panel-restore').addEventListener('click', (e) => {
    const t = e.target as HTMLElement;
    const rec = t.closest<HTMLElement>('[data-recovery]');
    if (rec) {
      post({ type: 'recoveryCommand', snapshot: rec.dataset.recovery! });
      return;
    }
    const u = t.closest<HTMLElement>('[data-undo-before]');
    if (u) {
      post({ type: 'undoUpgrade', before: u.dataset.undoBefore!, after: u.dataset.undoAfter! });
      return;
    }
    const b = t.closest<HTMLElement>('[data-restore]');
    if (!b) return;
    const partition = b.dataset.partition ? Number(b.dataset.partition) : undefined;
    post(partition === undefined ? { type: 'restoreDisk', snapshot: b.dataset.restore! } : { type: 'restoreDisk', snapshot: b.dataset.restore!, partition });
  });
}
