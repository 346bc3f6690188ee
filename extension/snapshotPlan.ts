// What Take Snapshot says before a snapshot starts: how long writes pause (from the engine's
// SnapshotPlan), whether a paused filesystem holds VS Code's own folders (then the editor itself
// waits), and whether this snapshot reads the whole disk (devsnap.fullReadEvery). No `vscode`
// import: unit-tested in test/unit/extension-consistency.test.ts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { SnapshotPlan, SnapshotSummary } from '../imaging/protocol';
import { compareNewestFirst } from './snapshotModel';

/** Above this estimate (seconds) Take Snapshot asks first instead of only saying so. */
export const CONFIRM_PAUSE_SECONDS = 5;

/** One of VS Code's own folders, named as the message names it ("this workspace"). */
export interface EditorPlace {
  name: string;
  path: string;
}

type PlanMount = SnapshotPlan['mounts'][number];

/** The device of `p`, or of its nearest existing ancestor (a storage folder VS Code has not created yet lives there). */
function deviceOf(p: string): number | undefined {
  for (let d = path.resolve(p); ; d = path.dirname(d)) {
    try {
      return fs.statSync(d).dev;
    } catch {
      if (d === path.dirname(d)) return undefined;
    }
  }
}

/**
 * Per paused mountpoint, the names of the places it holds: a place is held when it is on the same
 * filesystem (same st_dev) as the mountpoint. Mounts that are not paused are left out.
 */
export function heldEditorPlaces(mounts: readonly PlanMount[], places: readonly EditorPlace[]): Map<string, string[]> {
  const held = new Map<string, string[]>();
  const placeDevs = places.map((p) => ({ name: p.name, dev: deviceOf(p.path) }));
  for (const m of mounts) {
    if (m.how === 'unsupported' || m.how === 'lvm-snapshot') continue; // an LVM snapshot pauses for an instant only
    let dev: number;
    try {
      dev = fs.statSync(m.mountpoint).dev;
    } catch {
      continue; // unmounted meanwhile: nothing of ours is paused there
    }
    const names = [...new Set(placeDevs.filter((p) => p.dev === dev).map((p) => p.name))];
    if (names.length) held.set(m.mountpoint, names);
  }
  return held;
}

/** "a", "a and b", "a, b and c". */
function listText(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** "0.4 s", "12 s": tenths below 10 s, as describeConsistency words a pause. */
export function pauseText(seconds: number): string {
  const s = Math.max(0.1, seconds);
  return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
}

/**
 * What the user is told before a snapshot of a mounted read-write disk starts, e.g. "Writes to /
 * pause for about 0.4 s near the end, including this workspace and VS Code's settings: the editor
 * may not respond for that moment." One sentence per way of pausing (two-pass, read-only for the
 * last pass, frozen while read, read-only while read). Undefined when nothing pauses (an offline source).
 */
export function pauseNotice(plan: SnapshotPlan, held: ReadonlyMap<string, readonly string[]> = new Map()): string | undefined {
  if (plan.consistency !== 'frozen-two-pass') return undefined;
  const sentences: string[] = [];
  for (const how of ['two-pass', 'two-pass-ro', 'frozen', 'remount-ro'] as const) {
    const group = plan.mounts.filter((m) => m.how === how);
    if (!group.length) continue;
    const where = listText(group.map((m) => m.mountpoint));
    const seconds = pauseText(Math.max(...group.map((m) => m.pauseSeconds ?? plan.pauseSeconds)));
    const one = group.length === 1;
    let text =
      how === 'two-pass'
        ? `Writes to ${where} pause for about ${seconds} near the end`
        : how === 'two-pass-ro'
          ? `${where} ${one ? 'is' : 'are'} read-only for about ${seconds} near the end`
          : how === 'frozen'
            ? `Writes to ${where} pause for about ${seconds} while ${one ? 'it is' : 'they are'} read`
            : `${where} ${one ? 'is' : 'are'} read-only for about ${seconds} while ${one ? 'it is' : 'they are'} read`;
    const ours = [...new Set(group.flatMap((m) => held.get(m.mountpoint) ?? []))];
    if (ours.length) {
      text += `, including ${listText(ours)}: ${how === 'remount-ro' || how === 'two-pass-ro' ? 'VS Code cannot save there for that moment' : 'the editor may not respond for that moment'}`;
    }
    sentences.push(`${text}.`);
  }
  return sentences.length ? sentences.join(' ') : undefined;
}

/** The modal question asked instead of the notice when the pause is long. */
export function pauseQuestion(plan: SnapshotPlan): string {
  return `A snapshot of ${plan.source} pauses writes for about ${pauseText(plan.pauseSeconds)}. Take it now?`;
}

export function needsPauseConfirmation(plan: SnapshotPlan): boolean {
  return plan.consistency === 'frozen-two-pass' && plan.pauseSeconds > CONFIRM_PAUSE_SECONDS;
}

/**
 * The snapshots this host took of `source`, newest first: those of its path, and those of a disk id
 * one of them names (a disk that moved to another path), as the engine picks the parent of an
 * incremental (another workstation's snapshots of its own /dev/sda are not this disk's).
 */
export function snapshotsOfSource(all: readonly SnapshotSummary[], source: string, host = os.hostname()): SnapshotSummary[] {
  const p = path.resolve(source);
  const mine = all.filter((s) => s.host === host);
  const ids = new Set(mine.filter((s) => s.source.path === p && s.source.diskId).map((s) => s.source.diskId));
  return mine.filter((s) => s.source.path === p || (s.source.diskId !== undefined && ids.has(s.source.diskId))).sort(compareNewestFirst);
}

/**
 * devsnap.fullReadEvery: when the last `every` snapshots of this source all read only what changed,
 * the next one reads every used block, so a change made behind the filesystem's back (written to
 * the device directly) does not stay unseen. 0 (or less): never.
 */
export function shouldReadFully(history: readonly SnapshotSummary[], every: number): boolean {
  const n = Math.floor(every);
  if (!(n > 0)) return false;
  const recent = [...history].sort(compareNewestFirst).slice(0, n);
  return recent.length === n && recent.every((s) => s.readMode === 'changes');
}
