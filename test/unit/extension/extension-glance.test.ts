// Unit tests of the at-a-glance texts (extension/glanceModel.ts) and of the repository's presence
// and size (extension/repoInfo.ts) on real folders.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { SnapshotSummary } from '../../../imaging/protocol';
import type { Activity } from '../../../extension/activity';
import { activityRow, glanceTooltip, glanceWarning, GlanceInput, lastVerify, nextRunText, statusText, summaryRow, viewDescription } from '../../../extension/glanceModel';
import { folderSize, repositoryPresence, repositoryUsage } from '../../../extension/repoInfo';
import { livePlaces } from '../../../extension/drives';

const HOUR = 3_600_000;
const now = new Date(2026, 10, 25, 14, 0, 0);

function snap(id: string, hoursAgo: number, o: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    id,
    label: `label ${id}`,
    created: new Date(now.getTime() - hoursAgo * HOUR).toISOString(),
    host: 'box',
    source: { path: '/dev/sda', size: 64e9, table: 'gpt' },
    consistency: 'offline',
    pinned: false,
    state: 'not-verified',
    stats: { bytesRead: 1, bytesLogical: 64e9, bytesUsed: 10e9, bytesAdded: 1.2e9, chunksNew: 1, chunksReused: 2, durationSeconds: 3 },
    partitions: [],
    ...o,
  };
}

function input(o: Partial<GlanceInput> = {}): GlanceInput {
  return {
    state: 'ok',
    repo: '/media/me/Backup/devsnap',
    snapshots: [snap('a', 50), snap('b', 2)],
    damagedManifests: 0,
    usage: { sizeBytes: 3.2e9, freeBytes: 40e9, totalBytes: 100e9 },
    staleAfterDays: 7,
    now,
    ...o,
  };
}

const running = (o: Partial<Activity> = {}): Activity => ({ seq: 1, kind: 'snapshot', subject: '/dev/sda', startedAt: 0, finishing: false, done: false, ...o });

describe('extension glance texts', () => {
  it('the status bar says the newest snapshot age, and the view header too', () => {
    assert.equal(statusText(input()), '$(history) Snapshot 2 h ago');
    assert.equal(viewDescription(input()), 'newest 2 h ago');
    assert.equal(glanceWarning(input()), undefined);
  });

  it('warns when the newest snapshot is stale, and not when the setting is 0', () => {
    const old = input({ snapshots: [snap('a', 24 * 9)] });
    assert.equal(glanceWarning(old)?.kind, 'stale');
    assert.equal(statusText(old), '$(warning) Snapshot 1 week ago');
    assert.match(glanceWarning(old)!.text, /9 days old/);
    assert.equal(glanceWarning({ ...old, staleAfterDays: 0 }), undefined);
    assert.equal(glanceWarning({ ...old, staleAfterDays: 10 }), undefined);
  });

  it('warns of damage and of a missing drive, the drive first', () => {
    assert.equal(statusText(input({ damagedManifests: 1 })), '$(warning) Snapshot damaged');
    assert.equal(statusText(input({ snapshots: [snap('a', 1, { state: 'damaged' }), snap('b', 2, { state: 'damaged' })] })), '$(warning) 2 snapshots damaged');
    const gone = input({ state: 'unplugged', snapshots: [], damagedManifests: 1 });
    assert.equal(statusText(gone), '$(warning) Backup drive missing');
    assert.equal(viewDescription(gone), 'backup drive not connected');
    assert.match(glanceTooltip(gone), /drive not connected/);
  });

  it('shows a running snapshot instead: percent, then finishing', () => {
    assert.equal(statusText(input({ activity: running() })), '$(sync~spin) Snapshot starting…');
    assert.equal(statusText(input({ activity: running({ percent: 42 }) })), '$(sync~spin) Snapshot 42%');
    assert.equal(statusText(input({ activity: running({ percent: 100, finishing: true }) })), '$(sync~spin) Snapshot finishing…');
    assert.deepEqual(activityRow(running({ percent: 42, detail: '85 MB/s' })), { label: 'Taking snapshot… 42%', description: 'sda · 85 MB/s' });
    assert.equal(activityRow(running({ kind: 'verify', subject: 'all snapshots', finishing: true })).label, 'Verifying… finishing');
  });

  it('summarises the repository: size, free space, last verify, next run', () => {
    const verified = input({ snapshots: [snap('a', 50, { state: 'verified', verifiedAt: new Date(now.getTime() - 26 * HOUR).toISOString() }), snap('b', 2)] });
    assert.deepEqual(summaryRow(verified), { label: 'devsnap', description: 'newest 2 h ago · 3.2 GB, 40 GB free · verified yesterday' });
    assert.equal(summaryRow(input())?.description, 'newest 2 h ago · 3.2 GB, 40 GB free · never verified');
    assert.equal(summaryRow(input({ state: 'empty', snapshots: [] })), undefined);
    assert.equal(lastVerify(verified.snapshots)?.snapshot.id, 'a');
    const tip = glanceTooltip(verified);
    for (const want of [
      '| Repository | `/media/me/Backup/devsnap` |',
      '| Size | 3\\.2 GB in 2 snapshots |',
      '| Free on its drive | 40 GB of 100 GB |',
      'label b',
      '| Last verify | 2026\\-11\\-24 12:00 (yesterday), label a |',
      '| Next run | not scheduled |',
    ]) {
      assert.ok(tip.includes(want), `${want} in ${tip}`);
    }
    assert.equal(nextRunText({ at: new Date(2026, 10, 26, 3, 0) }, now), '2026-11-26 03:00');
    assert.equal(nextRunText({ text: 'before the next apt upgrade' }, now), 'before the next apt upgrade');
  });

  it('without a repository or snapshots it says so plainly', () => {
    assert.equal(statusText(input({ state: 'none', repo: undefined, snapshots: [] })), '$(history) No snapshots yet');
    assert.match(glanceTooltip(input({ state: 'none', repo: undefined, snapshots: [] })), /No snapshot repository is configured/);
  });
});

describe('extension repository presence and size', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-glance-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('tells an unplugged drive from a new folder', () => {
    const drive = path.join(tmp, 'drive');
    const repo = path.join(drive, 'devsnap');
    assert.equal(repositoryPresence(repo, false), 'new', 'a new folder on an existing drive');
    assert.equal(repositoryPresence(repo, true), 'unplugged', 'a repository seen before is gone');
    fs.mkdirSync(repo, { recursive: true });
    assert.equal(repositoryPresence(repo, true), 'unplugged', 'an empty folder where a repository was: an empty mount point');
    fs.writeFileSync(path.join(repo, 'config.json'), '{}');
    assert.equal(repositoryPresence(repo, true), 'present');
    // Never seen, but on a drive that is not mounted (an /etc/fstab mount point here): the commands' rule.
    const places = { ...livePlaces(), fstab: [path.join(tmp, 'media', 'Backup')] };
    assert.equal(repositoryPresence(path.join(tmp, 'media', 'Backup', 'devsnap'), false, places), 'unplugged');
    assert.equal(repositoryPresence(path.join(tmp, 'elsewhere', 'Backup', 'devsnap'), false, places), 'new');
  });

  it('measures the size of the files and the free space of the drive', async () => {
    const repo = path.join(tmp, 'sized');
    fs.mkdirSync(path.join(repo, 'data', 'ab'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'config.json'), 'x'.repeat(100));
    fs.writeFileSync(path.join(repo, 'data', 'ab', 'pack'), Buffer.alloc(5000));
    fs.symlinkSync('/usr', path.join(repo, 'link')); // not followed
    assert.deepEqual(await folderSize(repo), { bytes: 5100, partial: false });
    assert.equal((await folderSize(repo, 2))?.partial, true);
    const u = await repositoryUsage(repo);
    assert.equal(u.sizeBytes, 5100);
    assert.ok(u.freeBytes! > 0 && u.totalBytes! >= u.freeBytes!, JSON.stringify(u));
    const missing = await repositoryUsage(path.join(tmp, 'nope', 'repo'));
    assert.equal(missing.sizeBytes, undefined, 'no size for a folder that is not there');
    assert.ok(missing.freeBytes! > 0, 'the free space of the drive it would go on');
  });
});
