// What changed between two inventories (packages, toolchains, VS Code extensions, OS, kernel, boot
// mode), and a short human summary of it.
import type { Inventory, InventoryDiff, InventoryPackage, PackageChange, VersionChange } from '../protocol';
import { compareVersions } from './parsers';

const direction = (from: string, to: string): VersionChange['direction'] => {
  const c = compareVersions(to, from);
  return c > 0 ? 'up' : c < 0 ? 'down' : 'same';
};

/** What changed between two inventories (either may be null: everything added / removed). */
export function diffInventory(a: Inventory | null, b: Inventory | null): InventoryDiff {
  const pkA = new Map((a?.packages ?? []).map((p) => [`${p.manager}/${p.name}/${p.arch ?? ''}`, p]));
  const pkB = new Map((b?.packages ?? []).map((p) => [`${p.manager}/${p.name}/${p.arch ?? ''}`, p]));
  const added: InventoryPackage[] = [];
  const removed: InventoryPackage[] = [];
  const upgraded: PackageChange[] = [];
  let unchanged = 0;
  for (const [k, p] of pkA) {
    const q = pkB.get(k);
    if (!q) removed.push(p);
    else if (q.version !== p.version)
      upgraded.push({ manager: p.manager, name: p.name, ...(p.arch ? { arch: p.arch } : {}), from: p.version, to: q.version, direction: direction(p.version, q.version) });
    else unchanged++;
  }
  for (const [k, q] of pkB) if (!pkA.has(k)) added.push(q);

  // Toolchains: by name, comparing the sorted version lists.
  const tc = (inv: Inventory | null) => {
    const m = new Map<string, string[]>();
    for (const t of inv?.toolchains ?? []) m.set(t.name, [...(m.get(t.name) ?? []), t.version]);
    return m;
  };
  const ta = tc(a);
  const tb = tc(b);
  const toolchains: InventoryDiff['toolchains'] = [];
  for (const name of [...new Set([...ta.keys(), ...tb.keys()])].sort()) {
    const x = (ta.get(name) ?? []).sort(compareVersions).join(', ') || null;
    const y = (tb.get(name) ?? []).sort(compareVersions).join(', ') || null;
    if (x !== y) toolchains.push({ name, before: x, after: y });
  }

  const exA = new Map((a?.vscodeExtensions ?? []).map((e) => [`${e.user ?? ''}/${e.id}`, e]));
  const exB = new Map((b?.vscodeExtensions ?? []).map((e) => [`${e.user ?? ''}/${e.id}`, e]));
  const ext: InventoryDiff['vscodeExtensions'] = { added: [], removed: [], upgraded: [] };
  for (const [k, e] of exA) {
    const f = exB.get(k);
    if (!f) ext.removed.push(e);
    else if (f.version !== e.version) ext.upgraded.push({ id: e.id, name: e.id, from: e.version, to: f.version, direction: direction(e.version, f.version) });
  }
  for (const [k, f] of exB) if (!exA.has(k)) ext.added.push(f);

  const osKey = (o: Inventory['os'] | undefined) => (o ? `${o.id}/${o.name}/${o.version}` : '');
  const ka = a?.os.kernel ?? null;
  const kb = b?.os.kernel ?? null;
  return {
    os: { before: a?.os ?? null, after: b?.os ?? null, changed: osKey(a?.os) !== osKey(b?.os) },
    kernel: { before: ka, after: kb, changed: ka !== kb },
    bootMode: { before: a?.bootMode ?? null, after: b?.bootMode ?? null, changed: (a?.bootMode ?? null) !== (b?.bootMode ?? null) },
    packages: { added, removed, upgraded, unchanged },
    toolchains,
    vscodeExtensions: ext,
  };
}

/** A one-paragraph human summary of an inventory diff. */
export function describeInventoryDiff(d: InventoryDiff): string {
  const lines: string[] = [];
  const osName = (o: Inventory['os'] | null) => (o ? (o.prettyName ?? `${o.name} ${o.version}`.trim()) : 'unknown');
  lines.push(d.os.changed ? `OS: ${osName(d.os.before)} → ${osName(d.os.after)}` : `OS: ${osName(d.os.after)} (unchanged)`);
  if (d.kernel.changed) lines.push(`Kernel: ${d.kernel.before ?? 'none'} → ${d.kernel.after ?? 'none'}`);
  else if (d.kernel.after) lines.push(`Kernel: ${d.kernel.after} (unchanged)`);
  const p = d.packages;
  lines.push(
    `Packages: ${p.added.length} added, ${p.removed.length} removed, ${p.upgraded.length} upgraded (${p.upgraded.filter((u) => u.direction === 'down').length} downgraded), ${p.unchanged} unchanged`,
  );
  for (const t of d.toolchains) lines.push(`  ${t.name}: ${t.before ?? 'none'} → ${t.after ?? 'none'}`);
  const e = d.vscodeExtensions;
  if (e.added.length + e.removed.length + e.upgraded.length) lines.push(`VS Code extensions: ${e.added.length} added, ${e.removed.length} removed, ${e.upgraded.length} updated`);
  return lines.join('\n');
}
