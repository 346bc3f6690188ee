// The state of the backups at a glance, as text: the status-bar item, the Snapshots view's header
// (TreeView.description) and summary row, the transient row of a running snapshot, and the warning
// (stale, damaged, drive missing). Pure: every input, the clock included, is passed in.
// No `vscode` import (unit-tested in test/unit/extension/extension-glance.test.ts).
import type { SnapshotSummary } from '../imaging/protocol';
import { formatBytes, formatRelativeDate, formatTimestamp } from '../imaging/core/format';
import type { Activity, ActivityKind } from './activity';
import { FINISHING_TEXT } from './activity';
import { ageDays, shortAge } from './ages';
import type { RepositoryUsage } from './repoInfo';

/** The Snapshots view's repository state (snapshotTree.ts RepositoryState). */
export type GlanceState = 'none' | 'missing' | 'unplugged' | 'empty' | 'ok' | 'error';

/** When the next automatic snapshot runs: the hook for scheduling (undefined: not scheduled). */
export interface NextRun {
  at?: Date;
  /** Said instead of the time, e.g. "before the next apt upgrade". */
  text?: string;
}

export interface GlanceInput {
  state: GlanceState;
  repo?: string;
  snapshots: readonly SnapshotSummary[];
  /** Snapshots whose manifest is damaged (listed apart by the engine). */
  damagedManifests: number;
  usage?: RepositoryUsage;
  activity?: Activity;
  /** Warn when the newest snapshot is older than this many days; 0: never. */
  staleAfterDays: number;
  nextRun?: NextRun;
  now: Date;
}

export type WarningKind = 'unplugged' | 'error' | 'damaged' | 'stale';
export interface GlanceWarning {
  kind: WarningKind;
  /** One sentence for the tooltip. */
  text: string;
  /** A few words for the status bar. */
  short: string;
}

function time(s: SnapshotSummary): number {
  const t = Date.parse(s.created);
  return Number.isNaN(t) ? 0 : t;
}

export function newestSnapshot(snapshots: readonly SnapshotSummary[]): SnapshotSummary | undefined {
  let best: SnapshotSummary | undefined;
  for (const s of snapshots) if (!best || time(s) > time(best)) best = s;
  return best;
}

/** The most recent verification of any snapshot (that found no damage). */
export function lastVerify(snapshots: readonly SnapshotSummary[]): { at: Date; snapshot: SnapshotSummary } | undefined {
  let best: { at: Date; snapshot: SnapshotSummary } | undefined;
  for (const s of snapshots) {
    if (s.state !== 'verified' || !s.verifiedAt) continue;
    const at = new Date(s.verifiedAt);
    if (Number.isNaN(at.getTime())) continue;
    if (!best || at > best.at) best = { at, snapshot: s };
  }
  return best;
}

function damagedCount(g: GlanceInput): number {
  return g.damagedManifests + g.snapshots.filter((s) => s.state === 'damaged').length;
}

/** What needs the user's attention, most urgent first: the drive, an unreadable repository, damage, age. */
export function glanceWarning(g: GlanceInput): GlanceWarning | undefined {
  if (g.state === 'unplugged') {
    return {
      kind: 'unplugged',
      short: 'Backup drive missing',
      text: `The backup drive is not connected: the repository ${g.repo ?? ''} is not there. Connect the drive, or choose another repository.`,
    };
  }
  if (g.state === 'error') return { kind: 'error', short: 'Snapshots unreadable', text: `The repository ${g.repo ?? ''} could not be read: see the devsnap output.` };
  const damaged = damagedCount(g);
  if (damaged) {
    const n = damaged === 1 ? '1 snapshot is' : `${damaged} snapshots are`;
    return { kind: 'damaged', short: damaged === 1 ? 'Snapshot damaged' : `${damaged} snapshots damaged`, text: `${n} damaged and cannot be restored: verify them, and take a new snapshot.` };
  }
  const newest = newestSnapshot(g.snapshots);
  if (g.state === 'ok' && newest && g.staleAfterDays > 0 && ageDays(newest.created, g.now) > g.staleAfterDays) {
    const days = Math.floor(ageDays(newest.created, g.now));
    return {
      kind: 'stale',
      short: `Snapshot ${shortAge(newest.created, g.now)}`,
      text: `The newest snapshot is ${days} day${days === 1 ? '' : 's'} old (the Stale After Days setting is ${g.staleAfterDays}): take a snapshot.`,
    };
  }
  return undefined;
}

const NOUN: Record<ActivityKind, string> = { snapshot: 'Snapshot', restore: 'Restore', verify: 'Verify', undo: 'Undo' };
const DOING: Record<ActivityKind, string> = { snapshot: 'Taking snapshot…', restore: 'Restoring…', verify: 'Verifying…', undo: 'Undoing upgrade…' };

function baseName(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? p;
}

/** The status bar's text, with its codicon: "$(history) Snapshot 2 h ago", "$(sync~spin) Snapshot 42%", "$(warning) Backup drive missing". */
export function statusText(g: GlanceInput): string {
  const a = g.activity;
  if (a) {
    if (a.finishing) return `$(sync~spin) ${NOUN[a.kind]} finishing…`;
    return `$(sync~spin) ${NOUN[a.kind]} ${a.percent !== undefined ? `${a.percent}%` : 'starting…'}`;
  }
  const w = glanceWarning(g);
  if (w) return `$(warning) ${w.short}`;
  const newest = newestSnapshot(g.snapshots);
  if (newest) return `$(history) Snapshot ${shortAge(newest.created, g.now)}`;
  return '$(history) No snapshots yet';
}

/** The view header (TreeView.description): the newest snapshot's age, or what is wrong. */
export function viewDescription(g: GlanceInput): string | undefined {
  if (g.state === 'unplugged') return 'backup drive not connected';
  const newest = newestSnapshot(g.snapshots);
  return newest ? `newest ${shortAge(newest.created, g.now)}` : undefined;
}

export function nextRunText(next: NextRun | undefined, now: Date): string {
  if (!next || (!next.at && !next.text)) return 'not scheduled';
  if (next.text) return next.text;
  return `${formatTimestamp(next.at!)}${next.at! > now ? '' : ' (due)'}`;
}

function sizeText(u: RepositoryUsage | undefined): string | undefined {
  return u?.sizeBytes !== undefined ? `${u.sizePartial ? 'over ' : ''}${formatBytes(u.sizeBytes)}` : undefined;
}
function freeText(u: RepositoryUsage | undefined): string | undefined {
  return u?.freeBytes !== undefined ? `${formatBytes(u.freeBytes)} free` : undefined;
}
function verifyShort(g: GlanceInput): string {
  const v = lastVerify(g.snapshots);
  return v ? `verified ${shortAge(v.at, g.now)}` : 'never verified';
}

/**
 * The summary row at the top of the Snapshots view (with a single view in its container, VS Code
 * does not show TreeView.description): the repository's name; the newest snapshot's age, its size
 * and its drive's free space, the last verify.
 */
export function summaryRow(g: GlanceInput): { label: string; description: string } | undefined {
  if (g.state !== 'ok' || !g.repo) return undefined;
  const newest = newestSnapshot(g.snapshots);
  const space = [sizeText(g.usage), freeText(g.usage)].filter((x): x is string => !!x).join(', ');
  const parts = [newest ? `newest ${shortAge(newest.created, g.now)}` : '', space, verifyShort(g)].filter((x) => !!x);
  return { label: baseName(g.repo), description: parts.join(' · ') };
}

/** The transient row of a running snapshot, restore or verify: "Taking snapshot… 42%". */
export function activityRow(a: Activity): { label: string; description: string } {
  const what = a.subject ? baseName(a.subject) : '';
  if (a.finishing) return { label: `${DOING[a.kind]} finishing`, description: [what, FINISHING_TEXT[a.kind].replace(/^finishing: /, '')].filter(Boolean).join(' · ') };
  return { label: `${DOING[a.kind]} ${a.percent !== undefined ? `${a.percent}%` : ''}`.trim(), description: [what, a.detail].filter(Boolean).join(' · ') };
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

/** The Markdown of the status bar's and the summary row's tooltip (theme icons on). */
export function glanceTooltip(g: GlanceInput): string {
  const lines: string[] = [];
  const a = g.activity;
  const w = glanceWarning(g);
  if (a) {
    const row = activityRow(a);
    lines.push(`$(sync~spin) **${escapeMd(row.label)}**${row.description ? ` — ${escapeMd(row.description)}` : ''}`, '');
  }
  if (w) lines.push(`$(warning) ${escapeMd(w.text)}`, '');
  const newest = newestSnapshot(g.snapshots);
  if (!g.repo) {
    lines.push('No snapshot repository is configured: choose a folder, ideally on another drive.');
    return lines.join('\n');
  }
  const v = lastVerify(g.snapshots);
  const n = g.snapshots.length;
  const present = g.state !== 'unplugged';
  const rows: [string, string][] = [
    ['Repository', `\`${g.repo.replace(/`/g, "'")}\``],
    ['Size', present ? `${escapeMd(sizeText(g.usage) ?? 'unknown')}${n ? ` in ${n} snapshot${n === 1 ? '' : 's'}` : ''}` : 'drive not connected'],
    [
      'Free on its drive',
      present && g.usage?.freeBytes !== undefined ? `${escapeMd(formatBytes(g.usage.freeBytes))}${g.usage.totalBytes ? ` of ${escapeMd(formatBytes(g.usage.totalBytes))}` : ''}` : 'unknown',
    ],
    [
      'Newest snapshot',
      newest ? `${escapeMd(newest.label || '(no label)')}, ${escapeMd(formatTimestamp(new Date(newest.created)))} (${escapeMd(formatRelativeDate(newest.created, g.now))})` : 'none yet',
    ],
    ['Last verify', v ? `${escapeMd(formatTimestamp(v.at))} (${escapeMd(formatRelativeDate(v.at, g.now))}), ${escapeMd(v.snapshot.label || v.snapshot.id)}` : 'never'],
    ['Next run', escapeMd(nextRunText(g.nextRun, g.now))],
  ];
  lines.push('**Snapshots**', '', '| | |', '|---|---|', ...rows.map(([k, val]) => `| ${k} | ${val} |`));
  return lines.join('\n');
}

/** The status bar item's accessible name. */
export function statusAccessibility(g: GlanceInput): string {
  return statusText(g)
    .replace(/\$\([^)]*\)\s*/g, '')
    .trim();
}
