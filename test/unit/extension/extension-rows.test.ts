// Unit tests of the Snapshots view's rows and words (extension/snapshotModel.ts), the engine hints
// as the extension shows them (engineError.ts plainHint), the multi-step flows (steps.ts) and the
// walkthrough's terminal command (walkthrough.ts).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { SnapshotSummary } from '../../../imaging/protocol';
import { plainHint } from '../../../extension/engineError';
import {
  diskContextValue,
  newestPair,
  partitionContextValue,
  readsFiles,
  reusedText,
  selectedPair,
  snapshotContextValue,
  snapshotDescription,
  snapshotTooltipMarkdown,
  stateWords,
} from '../../../extension/snapshotModel';
import { BACK, CANCEL, runSteps, Step, stepCounter } from '../../../extension/steps';

function snap(id: string, created: string, o: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    id,
    label: `before upgrade 2026-11-25 14:03`,
    created,
    host: 'box',
    source: { path: '/dev/nvme0n1', size: 512e9, table: 'gpt', diskId: 'disk-a', model: 'Samsung SSD 970 EVO Plus 500GB' },
    consistency: 'frozen-two-pass',
    pinned: false,
    state: 'not-verified',
    stats: { bytesRead: 1, bytesLogical: 512e9, bytesUsed: 80e9, bytesAdded: 1.2e9, chunksNew: 20, chunksReused: 80, durationSeconds: 3 },
    partitions: [],
    ...o,
  };
}

describe('snapshot rows', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const s = snap('s1', '2026-11-25T10:00:00Z');

  it('the description fits the default sidebar width: the age first, then what it added', () => {
    const d = snapshotDescription(s, now);
    assert.equal(d, '2 h ago · +1.2 GB');
    // The default sidebar is about 300 px: with a default label ("before upgrade YYYY-MM-DD HH:MM",
    // 31 characters) and the icon, some 16 characters of description remain visible.
    assert.ok(d.length <= 18, `${d} (${d.length} characters)`);
    assert.equal(snapshotDescription({ ...s, created: '2026-11-25T11:59:40Z' }, now), 'just now · +1.2 GB');
    assert.equal(snapshotDescription({ ...s, consistency: 'fuzzy' }, now), '2 h ago · +1.2 GB · fuzzy read');
  });

  it('plain words: no "not-verified", no "chunks", no "logical" in what a row or its tooltip says', () => {
    assert.equal(stateWords(s), 'not verified yet');
    assert.equal(stateWords({ ...s, state: 'verified', pinned: true }), 'verified, pinned');
    assert.equal(reusedText(s), '80% of its data was already in the repository');
    assert.equal(reusedText({ ...s, stats: { ...s.stats!, chunksNew: 0, chunksReused: 0 } }), undefined);
    const md = snapshotTooltipMarkdown(s, now);
    assert.match(md, /\| Reused \| 80% of its data was already in the repository \|/);
    for (const word of [/chunk/i, /logical/i, /not-verified/]) assert.doesNotMatch(md, word);
  });

  it('context values: the oldest snapshot of a disk has no Compare with Previous; disks with two snapshots compare them', () => {
    assert.equal(snapshotContextValue(s), 'snapshot');
    assert.equal(snapshotContextValue(s, true), 'snapshot.oldest');
    assert.equal(snapshotContextValue({ ...s, pinned: true }, true), 'snapshot.pinned.oldest');
    // The when clauses of package.json, as VS Code evaluates them.
    const comparePrevious = /^snapshot(\.pinned)?$/;
    const pin = /^snapshot(\.oldest)?$/;
    const unpin = /^snapshot\.pinned/;
    assert.ok(comparePrevious.test(snapshotContextValue(s)) && comparePrevious.test(snapshotContextValue({ ...s, pinned: true })));
    assert.ok(!comparePrevious.test(snapshotContextValue(s, true)) && !comparePrevious.test(snapshotContextValue({ ...s, pinned: true }, true)));
    assert.ok(pin.test(snapshotContextValue(s, true)) && !pin.test(snapshotContextValue({ ...s, pinned: true })));
    assert.ok(unpin.test(snapshotContextValue({ ...s, pinned: true }, true)) && !unpin.test(snapshotContextValue(s)));
    assert.equal(diskContextValue({ snapshots: [s] }), 'disk');
    assert.equal(diskContextValue({ snapshots: [s, s] }), 'disk.pair');
  });

  it('partitions: changed files are offered for filesystems devsnap reads, when there is a snapshot before', () => {
    assert.ok(readsFiles({ fs: 'ext4' }) && readsFiles({ fs: 'vfat' }) && readsFiles({ fs: 'ntfs' }) && !readsFiles({ fs: 'swap' }) && !readsFiles({}));
    assert.equal(partitionContextValue({ fs: 'ext4' }, true), 'partition.files');
    assert.equal(partitionContextValue({ fs: 'ext4' }, false), 'partition');
    assert.equal(partitionContextValue({ fs: 'swap' }, true), 'partition');
  });

  it('Compare Selected takes exactly two snapshots, older first; Compare Newest Two the newest pair', () => {
    const a = snap('a', '2026-11-20T10:00:00Z');
    const b = snap('b', '2026-11-22T10:00:00Z');
    const c = snap('c', '2026-11-24T10:00:00Z');
    assert.deepEqual(
      Object.values(selectedPair([c, a])!).map((x) => x.id),
      ['a', 'c'],
    );
    assert.equal(selectedPair([a]), undefined);
    assert.equal(selectedPair([a, a]), undefined, 'the same snapshot twice is one');
    assert.equal(selectedPair([a, b, c]), undefined);
    assert.deepEqual(
      Object.values(newestPair({ snapshots: [a, c, b] })!).map((x) => x.id),
      ['b', 'c'],
    );
    assert.equal(newestPair({ snapshots: [a] }), undefined);
  });
});

describe('engine hints in the extension', () => {
  it('leave out the CLI options and keep what to do', () => {
    assert.equal(
      plainHint('Snapshot from a recovery environment, or use --freeze (writes wait for the whole snapshot) or --fuzzy (an image that is not one point in time).'),
      'Snapshot from a recovery environment.',
    );
    assert.equal(plainHint('Run `ntfsfix -n` on it (or chkdsk from Windows); meanwhile use --fuzzy for an image that is not one point in time.'), 'Run `ntfsfix -n` on it (or chkdsk from Windows).');
    assert.equal(
      plainHint(
        'Export the pool first (`zpool export tank`), or snapshot from a recovery environment; `zfs snapshot` and `zfs send` copy its datasets at a point in time. --fuzzy reads it live (not a point in time).',
      ),
      'Export the pool first (`zpool export tank`), or snapshot from a recovery environment; `zfs snapshot` and `zfs send` copy its datasets at a point in time.',
    );
    assert.equal(plainHint('Use --force.'), '');
    assert.equal(plainHint('List them.'), 'List them.');
    assert.equal(plainHint('Free 1.5 GB on the drive, then try again.'), 'Free 1.5 GB on the drive, then try again.');
  });
});

describe('multi-step flows', () => {
  it('Back shows the step before again; the step number counts the steps taken', async () => {
    const shown: string[] = [];
    let backs = 1;
    const second: Step = async (n) => {
      shown.push(`second ${n}`);
      if (backs-- > 0) throw BACK;
    };
    const first: Step = async (n) => {
      shown.push(`first ${n}`);
      return second;
    };
    assert.equal(await runSteps(first), 'done');
    assert.deepEqual(shown, ['first 1', 'second 2', 'first 1', 'second 2']);
  });

  it('Escape ends the flow; Back on the first step shows it again; other errors end it too', async () => {
    let n = 0;
    const cancelled: Step = async () => {
      throw CANCEL;
    };
    assert.equal(await runSteps(cancelled), 'cancelled');
    const firstBack: Step = async () => {
      if (n++ === 0) throw BACK;
    };
    assert.equal(await runSteps(firstBack), 'done');
    assert.equal(n, 2);
    await assert.rejects(
      runSteps(async () => {
        throw new Error('engine failed');
      }),
      /engine failed/,
    );
  });

  it('the counter: none for a single step, never fewer steps than the one shown', () => {
    assert.deepEqual(stepCounter(1, 1), {});
    assert.deepEqual(stepCounter(1, 2), { step: 1, totalSteps: 2 });
    assert.deepEqual(stepCounter(3, 2), { step: 3, totalSteps: 3 });
  });
});
