// Unit tests of the extension's pure formatting helpers (extension/format.ts).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { defaultSnapshotLabel, formatBytes, formatDuration, formatProgress, formatRate, formatRelativeDate, formatTimestamp, percentOf, ProgressTracker } from '../../../imaging/core/format';
import type { ProgressEvent } from '../../../imaging/protocol';

describe('extension format', () => {
  it('formats byte counts with decimal units and three significant digits', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1000), '1 KB');
    assert.equal(formatBytes(1536), '1.54 KB');
    assert.equal(formatBytes(12_345_678), '12.3 MB');
    assert.equal(formatBytes(512_000_000_000), '512 GB');
    assert.equal(formatBytes(64e9), '64 GB');
    assert.equal(formatBytes(999_999), '1 MB'); // rounding carries into the next unit
    assert.equal(formatBytes(-2_000_000), '-2 MB');
    assert.equal(formatBytes(NaN), '? B');
  });

  it('formats rates', () => {
    assert.equal(formatRate(85_200_000), '85.2 MB/s');
    assert.equal(formatRate(0), '0 B/s');
    assert.equal(formatRate(-5), '0 B/s');
  });

  it('formats durations', () => {
    assert.equal(formatDuration(0), '0 s');
    assert.equal(formatDuration(44.6), '45 s');
    assert.equal(formatDuration(185), '3 min 05 s');
    assert.equal(formatDuration(3600 + 20 * 60), '1 h 20 min');
    assert.equal(formatDuration(2 * 86400 + 3 * 3600), '2 d 3 h');
    assert.equal(formatDuration(-1), '?');
  });

  it('formats timestamps and the default label in local time', () => {
    const d = new Date(2026, 10, 25, 14, 3, 59);
    assert.equal(formatTimestamp(d), '2026-11-25 14:03');
    assert.equal(defaultSnapshotLabel(d), 'before upgrade 2026-11-25 14:03');
  });

  it('formats relative dates', () => {
    const now = new Date(2026, 10, 25, 14, 0, 0);
    const ago = (ms: number) => new Date(now.getTime() - ms);
    assert.equal(formatRelativeDate(ago(10_000), now), 'just now');
    assert.equal(formatRelativeDate(ago(60_000), now), '1 minute ago');
    assert.equal(formatRelativeDate(ago(5 * 60_000), now), '5 minutes ago');
    assert.equal(formatRelativeDate(ago(3600_000), now), '1 hour ago');
    assert.equal(formatRelativeDate(ago(3 * 3600_000).toISOString(), now), '3 hours ago');
    assert.equal(formatRelativeDate(new Date(2026, 10, 24, 9, 0), now), 'yesterday');
    assert.equal(formatRelativeDate(new Date(2026, 10, 22, 9, 0), now), '3 days ago');
    assert.equal(formatRelativeDate(new Date(2026, 10, 11, 9, 0), now), '2 weeks ago');
    assert.equal(formatRelativeDate(new Date(2026, 8, 1, 9, 5), now), '2026-09-01 09:05');
    assert.equal(formatRelativeDate(new Date(2026, 10, 26, 9, 5), now), '2026-11-26 09:05'); // future
    assert.equal(formatRelativeDate('not a date', now), 'not a date');
  });

  it('computes clamped percentages', () => {
    assert.equal(percentOf(50, 200), 25);
    assert.equal(percentOf(5, 0), 0);
    assert.equal(percentOf(300, 200), 100);
  });

  const ev = (o: Partial<ProgressEvent>): ProgressEvent => ({ type: 'progress', phase: 'image', bytesDone: 0, bytesTotal: 100, rate: 0, etaSeconds: null, ...o });

  it('formats a progress line with phase, percent, rate, time left and message', () => {
    assert.equal(formatProgress(ev({ bytesDone: 42, rate: 85_200_000, etaSeconds: 80, message: 'partition 2 (ext4)' })), 'image · 42% · 85.2 MB/s · 1 min 20 s left · partition 2 (ext4)');
    assert.equal(formatProgress(ev({ phase: 'scan', bytesTotal: 0 })), 'scan');
    assert.equal(formatProgress(ev({ bytesDone: 100, etaSeconds: 0 })), 'image · 100%');
  });

  it('turns progress events into non-decreasing increments for the primary phases', () => {
    const t = new ProgressTracker(['image']);
    assert.equal(t.next(ev({ phase: 'scan', bytesDone: 90 })).increment, undefined);
    assert.equal(t.next(ev({ bytesDone: 10 })).increment, 10);
    assert.equal(t.next(ev({ bytesDone: 10 })).increment, undefined);
    assert.equal(t.next(ev({ bytesDone: 35 })).increment, 25);
    assert.equal(t.next(ev({ bytesDone: 20 })).increment, undefined); // never backwards
    assert.equal(t.next(ev({ bytesDone: 100 })).increment, 65);
    assert.match(t.next(ev({ phase: 'scan', bytesDone: 1 })).message, /^scan · 1%/);
    const all = new ProgressTracker();
    assert.equal(all.next(ev({ phase: 'anything', bytesDone: 50 })).increment, 50);
  });
});
