// What Take Snapshot says before and after a snapshot of a running system (extension/snapshotPlan.ts):
// the pause wording, "the paused filesystem holds VS Code's own folders", the devsnap.fullReadEvery
// decision; then the same with the real engine (CliEngine running the CLI) on a disk whose ext4 is
// mounted read-write, as the extension does it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { SnapshotPlan, SnapshotSummary } from '../../../imaging/protocol';
import { EngineClient } from '../../../extension/engineClient';
import { ServedEngine } from '../../../extension/servedEngine';
import { heldEditorPlaces, needsPauseConfirmation, pauseNotice, pauseQuestion, shouldReadFully, snapshotsOfSource } from '../../../extension/snapshotPlan';
import { attachLoop, cleanup, detachLoop, isRoot, makeDisk, makeWorkstationTree, readLayout, tmpDir, withMount } from '../../helpers/disks';
import { CLI } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;

type Mount = SnapshotPlan['mounts'][number];
const mount = (mountpoint: string, how: Mount['how'], pauseSeconds: number): Mount => ({ mountpoint, partition: 2, fstype: 'ext4', how, pauseSeconds, holdsRepository: false });
const plan = (mounts: Mount[]): SnapshotPlan => ({
  source: '/dev/nvme0n1',
  consistency: 'frozen-two-pass',
  isSystem: true,
  mounts,
  pauseSeconds: Math.max(0, ...mounts.map((m) => m.pauseSeconds ?? 0)),
});

describe('Take Snapshot: the pause notice', () => {
  it('says how long writes to which mounts pause, and when', () => {
    assert.equal(pauseNotice(plan([mount('/', 'two-pass', 0.42)])), 'Writes to / pause for about 0.4 s near the end.');
    assert.equal(pauseNotice(plan([mount('/', 'two-pass', 0.02)])), 'Writes to / pause for about 0.1 s near the end.', 'never "0.0 s"');
    assert.equal(
      pauseNotice(plan([mount('/', 'two-pass', 0.4), mount('/home', 'two-pass', 0.7), mount('/boot/efi', 'frozen', 2.34)])),
      'Writes to / and /home pause for about 0.7 s near the end. Writes to /boot/efi pause for about 2.3 s while it is read.',
    );
    assert.equal(pauseNotice(plan([mount('/srv', 'remount-ro', 12.6), mount('/data', 'remount-ro', 3)])), '/srv and /data are read-only for about 13 s while they are read.');
    assert.equal(
      pauseNotice(plan([mount('/', 'two-pass', 0.4), mount('/win', 'two-pass-ro', 0.6)])),
      'Writes to / pause for about 0.4 s near the end. /win is read-only for about 0.6 s near the end.',
    );
  });

  it("says so when a paused filesystem holds this workspace or VS Code's own folders", () => {
    const p = plan([mount('/', 'two-pass', 0.42), mount('/home', 'two-pass', 0.3)]);
    assert.equal(
      pauseNotice(p, new Map([['/home', ['this workspace', "VS Code's settings"]]])),
      "Writes to / and /home pause for about 0.4 s near the end, including this workspace and VS Code's settings: the editor may not respond for that moment.",
    );
    const ro = plan([mount('/', 'two-pass', 0.4), mount('/opt', 'remount-ro', 6)]);
    assert.equal(
      pauseNotice(ro, new Map([['/opt', ["VS Code's extensions"]]])),
      "Writes to / pause for about 0.4 s near the end. /opt is read-only for about 6.0 s while it is read, including VS Code's extensions: VS Code cannot save there for that moment.",
    );
  });

  it('says nothing for an offline source; asks first only above 5 s', () => {
    assert.equal(pauseNotice({ source: '/x.img', consistency: 'offline', isSystem: false, mounts: [], pauseSeconds: 0 }), undefined);
    assert.equal(needsPauseConfirmation(plan([mount('/', 'two-pass', 5)])), false);
    assert.equal(needsPauseConfirmation(plan([mount('/', 'two-pass', 0.4), mount('/srv', 'frozen', 5.2)])), true);
    assert.equal(pauseQuestion(plan([mount('/srv', 'frozen', 5.2)])), 'A snapshot of /dev/nvme0n1 pauses writes for about 5.2 s. Take it now?');
  });
});

describe('Take Snapshot: devsnap.fullReadEvery', () => {
  let n = 0;
  const snap = (source: string, readMode: SnapshotSummary['readMode'], diskId?: string): SnapshotSummary => ({
    id: `s${++n}`,
    label: '',
    created: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
    host: 'box',
    source: { path: source, size: 1e9, table: 'gpt', ...(diskId ? { diskId } : {}) },
    consistency: 'frozen-two-pass',
    ...(readMode ? { readMode } : {}),
    pinned: false,
    state: 'not-verified',
    stats: { bytesRead: 0, bytesLogical: 1e9, bytesUsed: 0, bytesAdded: 0, chunksNew: 0, chunksReused: 0, durationSeconds: 0 },
    partitions: [],
  });

  it('reads the whole disk after N snapshots in a row that read only what changed', () => {
    const history = [snap('/dev/sda', 'all'), snap('/dev/sda', 'changes'), snap('/dev/sda', 'changes'), snap('/dev/sda', 'changes')];
    assert.equal(shouldReadFully(history, 3), true);
    assert.equal(shouldReadFully([...history].reverse(), 3), true, 'order of the list does not matter');
    assert.equal(shouldReadFully(history, 4), false, 'the first snapshot read everything');
    assert.equal(shouldReadFully(history, 10), false, 'fewer snapshots than N');
    assert.equal(shouldReadFully(history, 0), false, '0: never');
    assert.equal(shouldReadFully(history, 2.9), true, 'a fraction counts as its whole part');
    assert.equal(shouldReadFully([...history, snap('/dev/sda', 'all')], 1), false, 'the last one read everything');
    assert.equal(shouldReadFully([...history, snap('/dev/sda', undefined)], 1), false, 'an older snapshot without a read mode breaks the run');
    assert.equal(shouldReadFully([], 1), false);
  });

  it('counts the snapshots this host took of this source: by path, and by the disk id they name when the disk moved', () => {
    const a1 = snap('/dev/sdb', 'changes', 'disk-a');
    const other = snap('/dev/sdc', 'all', 'disk-b');
    const a2 = snap('/dev/sdc', 'changes', 'disk-a'); // disk A now at /dev/sdc; disk B was there before
    const theirs = { ...snap('/dev/sdc', 'changes', 'disk-a'), host: 'colleague' }; // the same GUID: a disk cloned from one image
    const mine = snapshotsOfSource([a1, other, a2, theirs], '/dev/sdc', 'box');
    assert.deepEqual(
      mine.map((s) => s.id),
      [a2.id, other.id, a1.id],
      'newest first',
    );
    assert.deepEqual(
      snapshotsOfSource([a1, other], '/dev/sdb', 'box').map((s) => s.id),
      [a1.id],
    );
    assert.deepEqual(snapshotsOfSource([a1], 'relative.img', 'box'), [], 'paths are compared resolved');
    assert.deepEqual(snapshotsOfSource([theirs], '/dev/sdc', 'box'), [], "another host's snapshots are not this disk's");
  });
});

describe('Take Snapshot with the real engine', { skip: !isRoot && 'needs root (loop devices, mount)' }, () => {
  const dir = tmpDir('devsnap-ext-pit-');
  const disk = path.join(dir, 'disk.img');
  const engine = new ServedEngine(new EngineClient({ cliPath: CLI, nodePath: process.execPath }));

  it("plans a mounted disk: the pause, VS Code's folders on it, the repository on it refused", async () => {
    const tree = path.join(dir, 'tree');
    makeWorkstationTree(tree, { scale: 2 * MiB });
    await makeDisk(disk, { table: 'gpt', size: 42 * MiB, partitions: [{ size: 40 * MiB, fs: 'ext4', fromDir: tree }] });
    const part = readLayout(disk)[0];
    const outside = path.join(dir, 'repo');
    // Unmounted: nothing pauses, nothing is said.
    const offline = await engine.planSnapshot(outside, disk);
    assert.equal(offline.consistency, 'offline');
    assert.equal(pauseNotice(offline, heldEditorPlaces(offline.mounts, [])), undefined);

    const dev = attachLoop(disk, { offset: part.start, sizeLimit: part.size });
    try {
      await withMount(dev, 'ext', {}, async (mnt) => {
        fs.mkdirSync(path.join(mnt, 'ws'));
        fs.mkdirSync(path.join(mnt, 'user'));
        const places = [
          { name: 'this workspace', path: path.join(mnt, 'ws') },
          // Not created yet: its nearest existing folder decides.
          { name: "VS Code's settings", path: path.join(mnt, 'user', 'globalStorage', 'devsnap.devsnap') },
          { name: "VS Code's extensions", path: dir },
        ];
        const p = await engine.planSnapshot(outside, disk);
        assert.equal(p.consistency, 'frozen-two-pass');
        assert.equal(p.problem, undefined, JSON.stringify(p.problem));
        assert.deepEqual(
          p.mounts.map((m) => [m.mountpoint, m.how]),
          [[mnt, 'two-pass']],
        );
        const held = heldEditorPlaces(p.mounts, places);
        assert.deepEqual([...held], [[mnt, ['this workspace', "VS Code's settings"]]]);
        const notice = pauseNotice(p, held)!;
        const esc = mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        assert.match(
          notice,
          new RegExp(`^Writes to ${esc} pause for about \\d+\\.\\d s near the end, including this workspace and VS Code's settings: the editor may not respond for that moment\\.$`),
        );
        assert.equal(pauseNotice(p, heldEditorPlaces(p.mounts, places.slice(2))), notice.replace(/, including.*\./, '.'), 'extensions elsewhere: not named');

        // A repository on the filesystem being imaged: the plan says why it would be refused.
        const inside = path.join(mnt, 'repo');
        fs.mkdirSync(inside);
        const refused = await engine.planSnapshot(inside, disk);
        assert.ok(refused.problem, 'no problem reported for a repository on the imaged disk');
        assert.match(refused.problem.message, /repository/i);
        assert.ok(refused.problem.hint.length > 0);
        assert.equal(refused.mounts[0].holdsRepository, true);
      });
    } finally {
      detachLoop(dev);
    }
  });

  it('passes fullRead when the last N snapshots read only what changed: the engine then reads every used block', async () => {
    const repo = path.join(dir, 'repo-full');
    const logged: string[] = [];
    const logging = new ServedEngine(new EngineClient({ cliPath: CLI, nodePath: process.execPath, log: (l) => logged.push(l) }));
    const take = async (label: string, every: number) => {
      const fullRead = shouldReadFully(snapshotsOfSource(await logging.listSnapshots(repo).catch(() => []), disk), every);
      return { fullRead, snap: (await logging.snapshot({ repo, source: disk, label, ...(fullRead ? { fullRead } : {}) })).snapshot };
    };
    const first = await take('first', 1);
    assert.deepEqual([first.fullRead, first.snap.readMode], [false, 'all']);
    const second = await take('second', 1);
    assert.deepEqual([second.fullRead, second.snap.readMode], [false, 'changes'], 'an incremental after the first');
    const third = await take('third', 1);
    assert.deepEqual([third.fullRead, third.snap.readMode], [true, 'all'], 'after 1 incremental, a full read');
    assert.ok(
      logged.some((l) => l.includes('snapshot') && l.includes('--full-read')),
      logged.join('\n'),
    );
    const fourth = await take('fourth', 0);
    assert.deepEqual([fourth.fullRead, fourth.snap.readMode], [false, 'changes'], '0: never');
  });
});
