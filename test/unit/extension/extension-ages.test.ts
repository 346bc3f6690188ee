// Unit tests of relative ages that stay true (extension/ages.ts): the status bar's short form, and
// the moment an age next reads differently (checked against formatRelativeDate itself).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { formatRelativeDate } from '../../../imaging/core/format';
import { ageDays, msUntilAgeChanges, nextAgeRefresh, shortAge } from '../../../extension/ages';

const MIN = 60_000;
const HOUR = 60 * MIN;
const now = new Date(2026, 10, 25, 14, 0, 0); // local time: calendar days count at local midnight
const ago = (ms: number) => new Date(now.getTime() - ms);

describe('extension ages', () => {
  it('says the short age as the status bar shows it', () => {
    assert.equal(shortAge(ago(10_000), now), 'just now');
    assert.equal(shortAge(ago(MIN), now), '1 min ago');
    assert.equal(shortAge(ago(6 * MIN), now), '6 min ago');
    assert.equal(shortAge(ago(HOUR), now), '1 h ago');
    assert.equal(shortAge(ago(2 * HOUR), now), '2 h ago');
    assert.equal(shortAge(new Date(2026, 10, 24, 12, 0), now), 'yesterday');
    assert.equal(shortAge(new Date(2026, 10, 21, 12, 0), now), '4 days ago');
    assert.equal(shortAge(new Date(2026, 10, 11, 12, 0), now), '2 weeks ago');
    // Past four weeks the tree shows a date; the status bar keeps counting days.
    assert.equal(shortAge(new Date(2026, 9, 1, 12, 0), now), '55 days ago');
    assert.equal(shortAge('not a date', now), 'not a date');
  });

  it('a snapshot six minutes old never reads "1 minute ago"', () => {
    assert.equal(formatRelativeDate(ago(6 * MIN), now), '6 minutes ago');
    assert.equal(shortAge(ago(6 * MIN), now), '6 min ago');
  });

  it('knows when the text next changes: unchanged just before, changed at that moment', () => {
    const created = [
      ago(0),
      ago(10_000),
      ago(44_999),
      ago(45_000),
      ago(89_000),
      ago(6 * MIN + 1234),
      ago(59 * MIN),
      ago(59.6 * MIN),
      ago(HOUR + 17_000),
      ago(23 * HOUR),
      ago(23.6 * HOUR),
      ago(3 * 24 * HOUR + 5 * HOUR),
      new Date(now.getTime() + 30_000), // a clock a little behind
    ];
    for (const c of created) {
      const m = msUntilAgeChanges(c, now);
      assert.ok(m !== undefined && m >= 1, `no change time for ${c.toISOString()}`);
      const before = new Date(now.getTime() + m - 1);
      const at = new Date(now.getTime() + m);
      assert.equal(formatRelativeDate(c, before), formatRelativeDate(c, now), `${c.toISOString()}: changed before ${m} ms`);
      assert.notEqual(formatRelativeDate(c, at), formatRelativeDate(c, now), `${c.toISOString()}: not changed after ${m} ms`);
      assert.notEqual(shortAge(c, at), shortAge(c, now), `${c.toISOString()}: short form not changed after ${m} ms`);
    }
  });

  it('a snapshot 42 s old turns "1 min ago" in 3 s', () => {
    assert.equal(msUntilAgeChanges(ago(42_000), now), 3000);
    assert.equal(shortAge(ago(42_000), new Date(now.getTime() + 3000)), '1 min ago');
  });

  it('refreshes at the soonest change, within its bounds', () => {
    assert.equal(nextAgeRefresh([], now), 60_000);
    assert.equal(nextAgeRefresh([ago(2 * HOUR), ago(42_000)], now), 3000);
    assert.equal(nextAgeRefresh([ago(44_990)], now), 250);
    assert.equal(nextAgeRefresh([ago(5 * HOUR)], now, 60_000), 60_000);
    assert.equal(msUntilAgeChanges('garbage', now), undefined);
  });

  it('counts age in days', () => {
    assert.equal(ageDays(ago(36 * HOUR), now), 1.5);
  });
});
