// What a package manager is about to do, from what its hook receives, as the label of the snapshot
// taken before it: "before apt: install foo 1.2, upgrade bar 2.0-1".
import * as fs from 'fs';
import * as path from 'path';
import type { Manager } from './config';

export type ChangeKind = 'install' | 'upgrade' | 'downgrade' | 'reinstall' | 'remove' | 'configure';

export interface PackageChange {
  kind?: ChangeKind;
  name: string;
  version?: string;
}

/** Labels are shown in one row of a list: at most this long, the rest counted. */
export const MAX_LABEL = 200;

/**
 * apt's Pre-Install-Pkgs input, version 3 (or 2): "VERSION 3", apt's configuration up to an empty
 * line, then one line per package: `name old-ver old-arch old-multiarch direction new-ver new-arch
 * new-multiarch action` (version 2 has no arch and multiarch fields), '-' for no version, direction
 * one of < > =, action the .deb file, **CONFIGURE** or **REMOVE**.
 */
export function parseAptInput(text: string): PackageChange[] {
  const lines = text.split('\n');
  const version = /^VERSION (\d+)$/.exec(lines[0]?.trim() ?? '')?.[1];
  if (version !== '2' && version !== '3') return [];
  const start = lines.indexOf('', 1);
  if (start < 0) return [];
  const byName = new Map<string, PackageChange>();
  for (const line of lines.slice(start + 1)) {
    const f = line.trim().split(/\s+/);
    const [name, oldVer, dir, newVer, action] = f.length === 9 ? [f[0], f[1], f[4], f[5], f[8]] : f.length === 5 ? f : [];
    if (!name || !action) continue;
    const kind: ChangeKind =
      action === '**REMOVE**' ? 'remove' : oldVer === '-' ? 'install' : dir === '<' ? 'upgrade' : dir === '>' ? 'downgrade' : action === '**CONFIGURE**' ? 'configure' : 'reinstall';
    // An unpacked package is also listed to be configured: the first line says what happens to it.
    if (!byName.has(name)) byName.set(name, { kind, name, version: kind === 'remove' ? undefined : newVer });
  }
  return [...byName.values()];
}

/** pacman's NeedsTargets input: one package name per line. */
export function parsePacmanInput(text: string): PackageChange[] {
  return [...new Set(text.split('\n').map((l) => l.trim()))].filter(Boolean).map((name) => ({ name }));
}

/** The label of a snapshot taken before `changes`: grouped by kind in the order first seen, the rest counted. */
export function changesLabel(manager: Manager, changes: PackageChange[]): string {
  const groups = new Map<ChangeKind | undefined, string[]>();
  for (const c of changes) groups.set(c.kind, [...(groups.get(c.kind) ?? []), c.version ? `${c.name} ${c.version}` : c.name]);
  const parts = [...groups].flatMap(([kind, items], g) => items.map((item, i) => (i ? ', ' : `${g ? '; ' : ''}${kind ? `${kind} ` : ''}`) + item));
  let label = `before ${manager}: `;
  let shown = 0;
  for (const part of parts) {
    const more = parts.length - shown - 1;
    if ((label + part).length + (more ? ` (+${more} more)`.length : 0) > MAX_LABEL) break;
    label += part;
    shown++;
  }
  if (!parts.length) return `${label}transaction`;
  return shown < parts.length ? `${label}${shown ? ' ' : ''}(${shown ? '+' : ''}${parts.length - shown}${shown ? ' more' : ' packages'})` : label;
}

/** The label from the package manager's own command line (dnf: its plugin passes no package list). */
export function commandLineLabel(manager: Manager, argv: string[] | null): string {
  const words = (argv ?? []).filter((a) => !a.startsWith('-'));
  const text = words.join(' ');
  if (!text) return `before ${manager}: transaction`;
  const label = `before ${manager}: ${text}`;
  return label.length <= MAX_LABEL ? label : `${label.slice(0, MAX_LABEL - 1)}…`;
}

const PROGRAMS: Record<Manager, string[]> = { apt: ['apt', 'apt-get', 'aptitude'], pacman: ['pacman'], dnf: ['dnf', 'dnf-3', 'dnf5', 'yum'] };

/**
 * The arguments the package manager was started with, found among this process's ancestors
 * (/proc; dnf is a Python script, so its name may be argv[1]); null when none is one.
 */
export function managerArguments(manager: Manager, pid = process.ppid, depth = 8): string[] | null {
  for (let i = 0; i < depth && pid > 1; i++) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
      const at = argv.slice(0, 2).findIndex((a) => PROGRAMS[manager].includes(path.basename(a)));
      if (at >= 0) return argv.slice(at + 1);
      // The parent is the 4th field of /proc/PID/stat, after the command name in parentheses.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return null;
    }
  }
  return null;
}
