// Unit tests of the Snapshots tree's pure logic (extension/snapshotModel.ts, extension/paths.ts).
import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { DiskInfo, SnapshotSummary } from '../../../imaging/protocol';
import { resolveRepositorySetting, resolveSettingPath } from '../../../extension/paths';
import { tableWords } from '../../../imaging/core/format';
import {
  diskDescription,
  diskUsedBytes,
  groupSnapshots,
  isFuzzy,
  overwriteSummary,
  partitionDescription,
  partitionLabel,
  previousSnapshot,
  snapshotContextValue,
  snapshotDescription,
  snapshotDoneMessage,
  snapshotIconKind,
  snapshotTooltipMarkdown,
  sortDisks,
} from '../../../extension/snapshotModel';

function snap(id: string, created: string, o: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    id,
    label: `label ${id}`,
    created,
    host: 'box',
    source: { path: '/dev/sda', size: 64e9, table: 'gpt', diskId: 'disk-a' },
    consistency: 'offline',
    pinned: false,
    state: 'not-verified',
    stats: { bytesRead: 1, bytesLogical: 64e9, bytesUsed: 10e9, bytesAdded: 1.2e9, chunksNew: 1, chunksReused: 2, durationSeconds: 3 },
    partitions: [
      { index: 2, start: 2e6, size: 40e9, type: 'x', fs: 'ext4', label: 'root', usedBytes: 12e9 },
      { index: 1, start: 1e6, size: 5e8, type: 'y', fs: 'vfat' },
    ],
    ...o,
  };
}

describe('extension snapshot model', () => {
  const a1 = snap('a1', '2026-11-20T10:00:00Z');
  const a2 = snap('a2', '2026-11-25T10:00:00Z');
  const b1 = snap('b1', '2026-11-22T10:00:00Z', { source: { path: '/tmp/demo.img', size: 1e9, table: 'mbr' } });
  const a0 = snap('a0', '2026-11-01T10:00:00Z');

  it('groups by source disk, newest first, groups ordered by their newest snapshot', () => {
    const groups = groupSnapshots([a0, a1, b1, a2]);
    assert.deepEqual(
      groups.map((g) => g.label),
      ['/dev/sda', 'demo.img'],
    );
    assert.deepEqual(
      groups[0].snapshots.map((s) => s.id),
      ['a2', 'a1', 'a0'],
    );
    assert.equal(groups[0].description, '64 GB · 3 snapshots');
    assert.equal(groups[1].description, '1 GB · 1 snapshot');
    assert.deepEqual(groupSnapshots([]), []);
  });

  it('groups a moved disk by its disk id, not its path', () => {
    const moved = snap('a3', '2026-11-26T10:00:00Z', { source: { path: '/dev/sdb', size: 64e9, table: 'gpt', diskId: 'disk-a', model: 'Disk A' } });
    const groups = groupSnapshots([a1, moved]);
    assert.equal(groups.length, 1);
    assert.equal(groups[0].label, 'Disk A (/dev/sdb)');
  });

  it("groups another host's disk apart, even with the same GUID, and names the host when there are several", () => {
    const theirs = snap('c1', '2026-11-24T10:00:00Z', { host: 'colleague' });
    const groups = groupSnapshots([a1, a2, theirs]);
    assert.deepEqual(
      groups.map((g) => `${g.label} ${g.description}`),
      ['/dev/sda on box · 64 GB · 2 snapshots', '/dev/sda on colleague · 64 GB · 1 snapshot'],
    );
    assert.equal(previousSnapshot([a1, a2, theirs], a2)?.id, 'a1', "the previous one is this host's");
  });

  it('finds the previous snapshot of the same disk', () => {
    const all = [a0, a1, b1, a2];
    assert.equal(previousSnapshot(all, a2)?.id, 'a1');
    assert.equal(previousSnapshot(all, a1)?.id, 'a0');
    assert.equal(previousSnapshot(all, a0), undefined);
    assert.equal(previousSnapshot(all, b1), undefined);
  });

  it('describes snapshots: age, size added, state icon, context value, tooltip', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    assert.equal(snapshotDescription(a2, now), '2 h ago · +1.2 GB');
    assert.equal(snapshotIconKind(a2), 'not-verified');
    assert.equal(snapshotIconKind({ ...a2, state: 'verified' }), 'verified');
    assert.equal(snapshotIconKind({ ...a2, state: 'verified', pinned: true }), 'pinned');
    assert.equal(snapshotIconKind({ ...a2, state: 'damaged', pinned: true }), 'damaged');
    assert.equal(snapshotContextValue(a2), 'snapshot');
    assert.equal(snapshotContextValue({ ...a2, pinned: true }), 'snapshot.pinned');
    const md = snapshotTooltipMarkdown({ ...a2, label: 'a *b*' }, now);
    assert.match(md, /\*\*a \\\*b\\\*\*\*/);
    assert.match(md, /Added to repository \| 1\.2 GB/);
    assert.equal(
      snapshotDoneMessage(a2),
      "Snapshot 'label a2' added 1.2 GB to the repository (a 64 GB disk). Offline: no filesystem of the disk was mounted read-write, so the image is the disk as it was.",
    );
  });

  it('says how each snapshot is one point in time: tooltip sentence, fuzzy reads marked in the description', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    const pit = { at: '2026-11-25T10:00:00Z', pauseSeconds: 0.42, rounds: 2, rereadBytes: 1e6, methods: [{ mountpoint: '/', partition: 2, how: 'two-pass' }] };
    const live = { ...a2, consistency: 'frozen-two-pass' as const, pointInTime: pit, readMode: 'changes' as const };
    // A point in time and an offline image read as usual: nothing added to the description.
    assert.equal(snapshotDescription(live, now), '2 h ago · +1.2 GB');
    assert.equal(snapshotDescription(a2, now), '2 h ago · +1.2 GB');
    const md = snapshotTooltipMarkdown(live, now);
    assert.match(md, /\| Consistency \| Point in time at .*writes paused for 0\\\.4 s\\\. \|/);
    assert.match(md, /\| Read \| what changed since the previous snapshot \|/);
    assert.match(snapshotTooltipMarkdown(a2, now), /\| Consistency \| Offline: no filesystem/);
    assert.doesNotMatch(snapshotTooltipMarkdown(a2, now), /\| Read \|/, 'no read mode recorded: no row');
    assert.match(snapshotDoneMessage(live), /^Snapshot 'label a2' added 1\.2 GB to the repository \(a 64 GB disk\)\. Point in time at .*paused for 0\.4 s\.$/);
    // The rare bad case stands out: a fuzzy read (forced, or by an earlier devsnap) says so.
    for (const consistency of ['fuzzy', 'crash-consistent'] as const) {
      const fuzzy = { ...a2, consistency };
      assert.equal(isFuzzy(fuzzy), true);
      assert.equal(snapshotDescription(fuzzy, now), '2 h ago · +1.2 GB · fuzzy read');
      assert.match(snapshotTooltipMarkdown(fuzzy, now), /\| Consistency \| Fuzzy read/);
    }
    for (const consistency of ['offline', 'native-snapshot', 'frozen-two-pass', 'frozen'] as const) assert.equal(isFuzzy({ consistency }), false, consistency);
  });

  it('describes partitions', () => {
    assert.equal(partitionLabel(a1.partitions[0]), '2 · ext4 “root”');
    assert.equal(partitionDescription(a1.partitions[0]), '12 GB used of 40 GB');
    assert.equal(partitionDescription(a1.partitions[1]), '500 MB');
  });

  const disk = (p: string, o: Partial<DiskInfo> = {}): DiskInfo => ({
    path: p,
    kind: 'disk',
    size: 512e9,
    table: 'gpt',
    isSystem: false,
    mountpoints: [],
    partitions: [
      { index: 1, start: 0, size: 1e9, type: 'x', fs: 'vfat', label: 'EFI', usedBytes: 1e8, mountpoints: ['/boot/efi'] },
      { index: 2, start: 1e9, size: 500e9, type: 'y', fs: 'ext4', usedBytes: 120e9 },
    ],
    ...o,
  });

  it('sorts the system drive first and describes disks', () => {
    const sorted = sortDisks([disk('/dev/sdb'), disk('/dev/sda'), disk('/dev/nvme0n1', { isSystem: true })]);
    assert.deepEqual(
      sorted.map((d) => d.path),
      ['/dev/nvme0n1', '/dev/sda', '/dev/sdb'],
    );
    assert.equal(diskUsedBytes(disk('/dev/sda')), 120.1e9);
    assert.equal(diskUsedBytes(disk('/dev/sda', { partitions: [] })), undefined);
    assert.equal(diskDescription(disk('/dev/sda')), '512 GB · 120 GB used · GPT, 2 partitions');
    // A filesystem or raw data from the first byte: no "NONE", no partition count.
    assert.equal(
      diskDescription(disk('/dev/sdc', { table: 'none', partitions: [{ index: 1, start: 0, size: 512e9, type: '', fs: 'ext4', usedBytes: 1e9 }] })),
      '512 GB · 1 GB used · no partition table',
    );
    assert.equal(tableWords('mbr'), 'MBR');
  });

  it('names what a restore overwrites', () => {
    assert.equal(overwriteSummary(disk('/dev/sdb')), 'partitions 1 (vfat “EFI” mounted at /boot/efi), 2 (ext4)');
    assert.equal(overwriteSummary(disk('/dev/sdb'), 2), 'partition 2 (ext4)');
    assert.equal(overwriteSummary(undefined), 'everything on it');
    assert.equal(overwriteSummary(undefined, 3), 'partition 3');
  });

  it('resolves setting paths', () => {
    const home = '/home/u';
    assert.equal(resolveSettingPath('', '/ws', home), undefined);
    assert.equal(resolveSettingPath('  ', '/ws', home), undefined);
    assert.equal(resolveSettingPath(42, '/ws', home), undefined);
    assert.equal(resolveSettingPath('~', '/ws', home), home);
    assert.equal(resolveSettingPath('~/snaps', '/ws', home), '/home/u/snaps');
    assert.equal(resolveSettingPath('${workspaceFolder}/repo', '/ws', home), '/ws/repo');
    assert.equal(resolveSettingPath('repo', '/ws', home), '/ws/repo');
    assert.equal(resolveSettingPath('repo', undefined, home), '/home/u/repo');
    assert.equal(resolveSettingPath('/abs/./x/', undefined, home), path.normalize('/abs/x/'));
    assert.equal(resolveSettingPath('~/x')?.startsWith(os.homedir()), true);
    // The repository: an S3 location is kept as written (the engine names it), never made a folder of the workspace.
    assert.equal(resolveRepositorySetting(' s3:https://host/bucket/devsnap ', '/ws', home), 's3:https://host/bucket/devsnap');
    assert.equal(resolveRepositorySetting('repo', '/ws', home), '/ws/repo');
  });
});
