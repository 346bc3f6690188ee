// Parsers shared by both sources of an inventory (a tree and the live system): os-release, dpkg's
// status file, pacman's desc files, and version strings.
import type { Inventory, InventoryPackage } from '../protocol';

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1]] = v;
  }
  return out;
}

export function osFrom(rel: Record<string, string>): Inventory['os'] {
  return {
    name: rel.NAME ?? 'Linux',
    version: rel.VERSION_ID ?? rel.VERSION ?? rel.BUILD_ID ?? '',
    id: rel.ID ?? 'linux',
    ...(rel.PRETTY_NAME ? { prettyName: rel.PRETTY_NAME } : {}),
  };
}

/** dpkg's status file: the packages whose Status is "install ok installed". */
export function parseDpkgStatus(text: string): InventoryPackage[] {
  const out: InventoryPackage[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f[m[1].toLowerCase()] = m[2].trim();
    }
    if (!f.package || !f.version) continue;
    if (f.status && !/\sinstalled$/.test(' ' + f.status)) continue;
    out.push({ manager: 'dpkg', name: f.package, version: f.version, ...(f.architecture ? { arch: f.architecture } : {}) });
  }
  return out;
}

/** pacman's local database entry (desc file). */
export function parsePacmanDesc(text: string): InventoryPackage | null {
  const f: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^%([A-Z]+)%$/.exec(lines[i]);
    if (m && i + 1 < lines.length) f[m[1]] = lines[i + 1].trim();
  }
  return f.NAME && f.VERSION ? { manager: 'pacman', name: f.NAME, version: f.VERSION, ...(f.ARCH ? { arch: f.ARCH } : {}) } : null;
}

export const KERNEL_RE = /^\d+\.\d+[\w.+~-]*$/;

/** Compares two kernel-ish / dpkg-ish versions (dpkg's algorithm: epoch, upstream, revision). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const e = /^(\d+):/.exec(v);
    const epoch = e ? Number(e[1]) : 0;
    const rest = e ? v.slice(e[0].length) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, up: dash >= 0 ? rest.slice(0, dash) : rest, rev: dash >= 0 ? rest.slice(dash + 1) : '' };
  };
  const order = (c: string | undefined) => (c === undefined ? 0 : c === '~' ? -1 : /\d/.test(c) ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  const verrevcmp = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      let first = 0;
      while ((i < x.length && !/\d/.test(x[i])) || (j < y.length && !/\d/.test(y[j]))) {
        const ac = order(x[i]);
        const bc = order(y[j]);
        if (ac !== bc) return ac - bc;
        i++;
        j++;
      }
      while (x[i] === '0') i++;
      while (y[j] === '0') j++;
      while (i < x.length && /\d/.test(x[i]) && j < y.length && /\d/.test(y[j])) {
        if (!first) first = x.charCodeAt(i) - y.charCodeAt(j);
        i++;
        j++;
      }
      if (i < x.length && /\d/.test(x[i])) return 1;
      if (j < y.length && /\d/.test(y[j])) return -1;
      if (first) return first;
    }
    return 0;
  };
  const A = split(a);
  const B = split(b);
  return Math.sign(A.epoch - B.epoch || verrevcmp(A.up, B.up) || verrevcmp(A.rev, B.rev));
}

export function firstVersion(s: string): string | null {
  return /(\d+\.\d+(?:\.\d+)?(?:[-+.~][\w.+~-]*)?)/.exec(s)?.[1] ?? /(\d+)/.exec(s)?.[1] ?? null;
}
