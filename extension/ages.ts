// Relative ages that stay true: the short form the status bar shows ("2 h ago"), and when the text
// of an age next changes, so that the tree and the status bar re-render exactly then (and not every
// second). No `vscode` import (unit-tested in test/unit/extension/extension-ages.test.ts).
import { formatRelativeDate } from '../imaging/core/format';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

function ms(date: string | Date): number {
  return date instanceof Date ? date.getTime() : Date.parse(date);
}

function startOfDay(t: number): number {
  const d = new Date(t);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Calendar days between `created` and `now` (as formatRelativeDate counts them). */
export function calendarDays(created: string | Date, now: Date): number {
  return Math.round((startOfDay(now.getTime()) - startOfDay(ms(created))) / DAY);
}

/**
 * The age as the status bar says it: "just now", "5 min ago", "1 h ago", "yesterday", "3 days ago",
 * "2 weeks ago", "40 days ago". It changes at the same moments as the tree's formatRelativeDate
 * ("5 minutes ago"), so the two never disagree.
 */
export function shortAge(created: string | Date, now: Date = new Date()): string {
  const t = ms(created);
  if (Number.isNaN(t)) return String(created);
  const long = formatRelativeDate(new Date(t), now);
  if (now.getTime() - t >= 23.5 * HOUR) {
    const days = calendarDays(new Date(t), now);
    if (days >= 28) return `${days} days ago`;
  }
  return long.replace(/ minutes? ago$/, ' min ago').replace(/ hours? ago$/, ' h ago');
}

/**
 * Milliseconds from `now` until formatRelativeDate(created) (and shortAge) next reads differently,
 * or undefined when it never will by itself (a date far in the future). At least 1.
 */
export function msUntilAgeChanges(created: string | Date, now: Date = new Date()): number | undefined {
  const t = ms(created);
  if (Number.isNaN(t)) return undefined;
  const n = now.getTime();
  const elapsed = n - t;
  let at: number; // the absolute time of the next change
  if (elapsed < -MINUTE) at = t - MINUTE;
  else if (elapsed < 45_000) at = t + 45_000;
  else if (Math.round(elapsed / MINUTE) < 60) at = t + (Math.round(elapsed / MINUTE) + 0.5) * MINUTE;
  else if (Math.round(elapsed / HOUR) < 24) at = t + (Math.round(elapsed / HOUR) + 0.5) * HOUR;
  else {
    const d = new Date(n);
    at = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime(); // calendar days change at midnight
  }
  return Math.max(1, Math.ceil(at - n));
}

/**
 * When to re-render ages next: the soonest change among `dates`, but at least `minMs` and at most
 * `maxMs` away (a computer that slept wakes to a timer that is late; the cap puts it right soon).
 */
export function nextAgeRefresh(dates: readonly (string | Date)[], now: Date = new Date(), maxMs = MINUTE, minMs = 250): number {
  let next = maxMs;
  for (const d of dates) {
    const m = msUntilAgeChanges(d, now);
    if (m !== undefined && m < next) next = m;
  }
  return Math.min(maxMs, Math.max(minMs, next));
}

/** Whole days (fractional) since `created`. */
export function ageDays(created: string | Date, now: Date = new Date()): number {
  return (now.getTime() - ms(created)) / DAY;
}
