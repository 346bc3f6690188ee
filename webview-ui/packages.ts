// The packages table of the compare panel: the inventory diff's packages as rows, filtered and
// sorted. Pure: test/unit/webview-packages.test.ts.
import type { InventoryDiff } from './messages';

export type PackageRowKind = 'added' | 'removed' | 'upgraded' | 'downgraded';

export interface PackageRow {
  kind: PackageRowKind;
  manager: string;
  name: string;
  arch?: string;
  before: string | null;
  after: string | null;
}

const ORDER: Record<PackageRowKind, number> = { upgraded: 0, downgraded: 1, added: 2, removed: 3 };

export function packageRows(d: InventoryDiff | null): PackageRow[] {
  if (!d) return [];
  const p = d.packages;
  const rows: PackageRow[] = [
    ...p.upgraded.map((u): PackageRow => ({ kind: u.direction === 'down' ? 'downgraded' : 'upgraded', manager: u.manager, name: u.name, arch: u.arch, before: u.from, after: u.to })),
    ...p.added.map((a): PackageRow => ({ kind: 'added', manager: a.manager, name: a.name, arch: a.arch, before: null, after: a.version })),
    ...p.removed.map((r): PackageRow => ({ kind: 'removed', manager: r.manager, name: r.name, arch: r.arch, before: r.version, after: null })),
  ];
  return rows.sort((x, y) => ORDER[x.kind] - ORDER[y.kind] || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/**
 * Filters rows: every word must occur in the name, manager, versions or kind; a word like
 * `kind:added` or `manager:dpkg` (or `is:removed`) matches that field exactly.
 */
export function filterPackages(rows: readonly PackageRow[], text: string): PackageRow[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [...rows];
  return rows.filter((r) =>
    words.every((w) => {
      const m = /^(kind|is|manager):(.+)$/.exec(w);
      if (m) return m[1] === 'manager' ? r.manager === m[2] : r.kind === m[2];
      return `${r.name} ${r.manager} ${r.before ?? ''} ${r.after ?? ''} ${r.kind} ${r.arch ?? ''}`.toLowerCase().includes(w);
    }),
  );
}

export interface UpgradeSummary {
  os: { before: string; after: string; changed: boolean };
  kernel: { before: string; after: string; changed: boolean };
  added: number;
  removed: number;
  upgraded: number;
  downgraded: number;
  unchanged: number;
  toolchains: { name: string; before: string; after: string }[];
  extensions: { added: number; removed: number; updated: number };
}

const osName = (o: InventoryDiff['os']['before']) => (o ? (o.prettyName ?? (`${o.name} ${o.version}`.trim() || o.id)) : 'unknown');

/** The at-a-glance lines of the summary. */
export function upgradeSummary(d: InventoryDiff): UpgradeSummary {
  const p = d.packages;
  const down = p.upgraded.filter((u) => u.direction === 'down').length;
  return {
    os: { before: osName(d.os.before), after: osName(d.os.after), changed: d.os.changed },
    kernel: { before: d.kernel.before ?? 'none', after: d.kernel.after ?? 'none', changed: d.kernel.changed },
    added: p.added.length,
    removed: p.removed.length,
    upgraded: p.upgraded.length - down,
    downgraded: down,
    unchanged: p.unchanged,
    toolchains: d.toolchains.map((t) => ({ name: t.name, before: t.before ?? 'none', after: t.after ?? 'none' })),
    extensions: { added: d.vscodeExtensions.added.length, removed: d.vscodeExtensions.removed.length, updated: d.vscodeExtensions.upgraded.length },
  };
}
