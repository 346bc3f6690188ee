// The Packages tab: the environment's package changes (the inventory diff) as a filterable table.
// The rows and the filter are pure (webview-ui/packages.ts); this draws them.
import { filterPackages, packageRows, PackageRow } from './packages';
import { $, esc } from './render';
import { save, state, store } from './store';

const PACKAGE_ROW_LIMIT = 2000;
export function renderPackages(): void {
  const { cmp } = store;
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

export function initPackagesTab(): void {
  const packageFilter = $<HTMLInputElement>('#package-filter');
  let packageTimer: ReturnType<typeof setTimeout> | undefined;
  packageFilter.addEventListener('input', () => {
    clearTimeout(packageTimer);
    packageTimer = setTimeout(() => {
      state.packageFilter = packageFilter.value;
      save();
      renderPackages();
    }, 120);
  });
}
