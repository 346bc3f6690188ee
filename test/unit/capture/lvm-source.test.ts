// LVM snapshots wired into a snapshot (imaging/capture/lvm-source.ts). This kernel has no
// device-mapper, so lvcreate --snapshot, the snapshot device and its status never run here
// (openLvmSession is untested). Tested:
// - the decision (which stacked read-write mounts an LVM snapshot covers, and why not) on a
//   constructed sysfs tree with LVM 2.03's report text, and pauseProblem on its verdicts;
// - the decision on real LVM on loop devices over a disk image file, read through the live sysfs;
// - the metadata copy and its revision check against real LVM, with a real concurrent change;
// - the session's reader on real files: LV extents from the "snapshot", metadata from the copies
//   (the restored image does not list an LV created after the copy), the rest from the disk;
// - the invalid-snapshot verdict, and how the manifest's methods are put into words.
import { hasLvm, lvm, lvNames } from '../../helpers/lvm';
import { makeSysfs as buildSysfs, type SysDev } from '../../helpers/sysfs';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevsnapError } from '../../../imaging/core/errors';
import { BlockLayer, type DeviceInfo, type MountUse } from '../../../imaging/disk/device';
import { pauseProblem } from '../../../imaging/capture/plan';
import { copyMetadata, decideLvm, lvmDecisions, lvPartition, snapshotProblem, snapshotReader, sourcePlace, type LvmDecision, type LvmTarget } from '../../../imaging/capture/lvm-source';
import { createSnapshotCommand, pvsCommand, readMetadataCopy, segmentsCommand } from '../../../imaging/consistency/lvm';
import { describeConsistency } from '../../../imaging/core/format';
import { attachLoop, cleanup, detachLoop, prng, seededBytes, tmpDir } from '../../helpers/disks';

after(cleanup);
const MiB = 1 << 20;
const E = 4 * MiB;

const mount = (mountpoint: string, device: string, offset?: number): MountUse => ({ mountpoint, readOnly: false, devno: '253:9', device, fstype: 'ext4', ...(offset !== undefined ? { offset } : {}) });
const okOf = (d: LvmDecision): LvmTarget => {
  assert.ok(d.ok, d.ok ? '' : d.message);
  return d as LvmTarget;
};
const refusal = (d: LvmDecision) => {
  assert.ok(!d.ok, 'refused');
  return d as { message: string; hint: string };
};

/** A sysfs tree as the kernel lays it out, with block/ links (lvOfDm reads /sys/block/dm-N/dm). */
const makeSysfs = (root: string, devs: SysDev[]) => buildSysfs(root, devs, { blockLinks: true });

// LVM 2.03's JSON (--reportformat json --units b --nosuffix), as lvm.test.ts records it.
const segReport = (vg: string, lv: string, segs: { start: number; size: number; ranges: string; segtype: string }[]) =>
  JSON.stringify(
    {
      report: [
        { seg: segs.map((s) => ({ vg_name: vg, lv_name: lv, vg_extent_size: String(E), seg_start_pe: String(s.start), seg_size_pe: String(s.size), seg_pe_ranges: s.ranges, segtype: s.segtype })) },
      ],
    },
    null,
    2,
  );
const pvReport = (vg: string, pvs: [string, number, number][]) =>
  JSON.stringify({ report: [{ pv: pvs.map(([name, peStart, mda]) => ({ pv_name: name, vg_name: vg, pe_start: String(peStart), pv_mda_count: String(mda) })) }] }, null, 2);

describe('the decision on a constructed sysfs tree', () => {
  const lvmUuid = (n: number) => `LVM-Xk3bQ9zVfJ1pA7cW2mR8nT4yE6uH0sLdb5Gh2Kq8Wn3Rz7Tx1Vc9Mp4Ly6Ds0Fa${n}`;
  // nvme0n1 (the source): p1 EFI, p2 and p3 PVs of vgmain; sda1 a third PV of vgmain on another disk;
  // nvme0n1p4 a PV of vgtwo whose metadata has two copies. dm-0 root (p3), dm-1 home (p3 and sda1),
  // dm-2 a LUKS mapping, dm-3 a thin LV, dm-4 srv (p2 then p3), dm-5 data (vgtwo).
  const P2 = 1050624;
  const P3 = 4720640;
  const P4 = 900000000;
  const sys = makeSysfs(tmpDir('devsnap-lvm-source-'), [
    { name: 'nvme0n1', devno: '259:0', sectors: 1000215216 },
    { name: 'nvme0n1p1', devno: '259:1', sectors: 1048576, parent: 'nvme0n1', start: 2048 },
    { name: 'nvme0n1p2', devno: '259:2', sectors: 3670016, parent: 'nvme0n1', start: P2 },
    { name: 'nvme0n1p3', devno: '259:3', sectors: 800000000, parent: 'nvme0n1', start: P3 },
    { name: 'nvme0n1p4', devno: '259:4', sectors: 100000000, parent: 'nvme0n1', start: P4 },
    { name: 'sda', devno: '8:0', sectors: 2097152 },
    { name: 'sda1', devno: '8:1', sectors: 2095104, parent: 'sda', start: 2048 },
    { name: 'dm-0', devno: '253:0', sectors: 20971520, dm: { uuid: lvmUuid(0), name: 'vgmain-root' } },
    { name: 'dm-1', devno: '253:1', sectors: 4194304, dm: { uuid: lvmUuid(1), name: 'vgmain-home' } },
    { name: 'dm-2', devno: '253:2', sectors: 4194304, dm: { uuid: 'CRYPT-LUKS2-6d3c7f0a2b1e4d5c8f9a0b1c2d3e4f5a-luks', name: 'luks' } },
    { name: 'dm-3', devno: '253:3', sectors: 4194304, dm: { uuid: lvmUuid(3), name: 'vgmain-thinvol' } },
    { name: 'dm-4', devno: '253:4', sectors: 4194304, dm: { uuid: lvmUuid(4), name: 'vgmain-srv' } },
    { name: 'dm-5', devno: '253:5', sectors: 4194304, dm: { uuid: lvmUuid(5), name: 'vgtwo-data' } },
  ]);
  const vgmainPvs = pvReport('vgmain', [
    ['/dev/nvme0n1p2', MiB, 1],
    ['/dev/nvme0n1p3', 2 * MiB, 1],
    ['/dev/sda1', MiB, 1],
  ]);
  const reports: Record<string, string> = {
    [segmentsCommand('vgmain', 'root').join(' ')]: segReport('vgmain', 'root', [{ start: 0, size: 2560, ranges: '/dev/nvme0n1p3:10-2569', segtype: 'linear' }]),
    [segmentsCommand('vgmain', 'home').join(' ')]: segReport('vgmain', 'home', [
      { start: 0, size: 100, ranges: '/dev/nvme0n1p3:3000-3099', segtype: 'linear' },
      { start: 100, size: 50, ranges: '/dev/sda1:0-49', segtype: 'linear' },
    ]),
    [segmentsCommand('vgmain', 'thinvol').join(' ')]: segReport('vgmain', 'thinvol', [{ start: 0, size: 256, ranges: '', segtype: 'thin' }]),
    [segmentsCommand('vgmain', 'srv').join(' ')]: segReport('vgmain', 'srv', [
      { start: 0, size: 300, ranges: '/dev/nvme0n1p2:0-299', segtype: 'linear' },
      { start: 300, size: 20, ranges: '/dev/nvme0n1p3:4000-4019', segtype: 'linear' },
    ]),
    [pvsCommand('vgmain').join(' ')]: vgmainPvs,
    [segmentsCommand('vgtwo', 'data').join(' ')]: segReport('vgtwo', 'data', [{ start: 0, size: 10, ranges: '/dev/nvme0n1p4:0-9', segtype: 'linear' }]),
    [pvsCommand('vgtwo').join(' ')]: pvReport('vgtwo', [['/dev/nvme0n1p4', MiB, 2]]),
  };
  const asked: string[] = [];
  const report = (argv: string[]) => {
    asked.push(argv.join(' '));
    const out = reports[argv.join(' ')];
    if (out === undefined) throw new Error(`unexpected command ${argv.join(' ')}`);
    return out;
  };
  const info: DeviceInfo = { path: '/dev/nvme0n1', kind: 'block', size: 1000215216 * 512, devno: '259:0', mounts: [], holders: [], isSystem: true };
  const mounts = {
    root: mount('/', 'dm-0'),
    home: mount('/home', 'dm-1'),
    luks: mount('/secret', 'dm-2'),
    thin: mount('/thin', 'dm-3'),
    srv: mount('/srv', '/dev/dm-4'),
    data: mount('/data', 'dm-5'),
    efi: mount('/boot/efi', 'nvme0n1p1', 2048 * 512),
  };
  const decide = (ms: MountUse[]) => lvmDecisions(ms, info, sys, report);

  it('accepts linear LVs on the disk, with every piece and every PV of the VG on it, at their disk offsets', () => {
    const [root, srv] = decide([mounts.root, mounts.srv]).map(okOf);
    assert.equal(root.mount, mounts.root);
    assert.deepEqual([root.vg, root.lv, root.lvBytes], ['vgmain', 'root', 2560 * E]);
    assert.deepEqual(root.pieces, [{ diskOffset: P3 * 512 + 2 * MiB + 10 * E, length: 2560 * E, lvOffset: 0 }]);
    // sda1 is a PV of vgmain elsewhere, holding none of root: not copied, not refused.
    assert.deepEqual(root.pvs, [
      { pvName: '/dev/nvme0n1p2', diskOffset: P2 * 512, metadataBytes: MiB },
      { pvName: '/dev/nvme0n1p3', diskOffset: P3 * 512, metadataBytes: 2 * MiB },
    ]);
    // srv spans two partitions, and its device was given as a path.
    assert.deepEqual(srv.pieces, [
      { diskOffset: P2 * 512 + MiB, length: 300 * E, lvOffset: 0 },
      { diskOffset: P3 * 512 + 2 * MiB + 4000 * E, length: 20 * E, lvOffset: 300 * E },
    ]);
    const parts = [
      { index: 2, start: P2 * 512, size: 3670016 * 512 },
      { index: 3, start: P3 * 512, size: 800000000 * 512 },
    ];
    assert.equal(lvPartition(root, parts), 3);
    assert.equal(lvPartition(srv, parts), 2, 'the partition holding the start of the volume');
    assert.deepEqual(
      asked.splice(0),
      [segmentsCommand('vgmain', 'root'), pvsCommand('vgmain'), segmentsCommand('vgmain', 'srv'), pvsCommand('vgmain')].map((a) => a.join(' ')),
    );
  });

  it('refuses, saying why: a PV on another disk, LUKS, thin, two metadata copies, no LVM tools', () => {
    const [home, luks, thin, data] = decide([mounts.home, mounts.luks, mounts.thin, mounts.data]).map(refusal);
    assert.match(home.message, /^\/home is on the LVM volume vgmain\/home, which has extents on \/dev\/sda1: that is not a partition of \/dev\/nvme0n1/);
    assert.match(luks.message, /^\/secret is mounted read-write through dm-2, which is not an LVM logical volume/);
    assert.match(thin.message, /^\/thin \(the LVM volume vgmain\/thinvol\) cannot be imaged through an LVM snapshot: .*is a thin LV/);
    assert.match(data.message, /2 copies of the LVM metadata/);
    assert.ok(!asked.some((a) => /luks/.test(a)), 'LVM is not asked about what is not an LV');
    for (const r of [home, luks, thin, data]) assert.match(r.hint, /--freeze/);
    const missing = lvmDecisions([mounts.root], info, sys, () => {
      const r = spawnSync('devsnap-no-such-lvs', []);
      throw new Error(`lvs failed: ${r.error!.message}`); // what runLvm throws when lvs is not installed
    }).map(refusal)[0];
    assert.match(missing.message, /^\/ is on the LVM volume vgmain\/root, but the LVM tools \(lvs, lvcreate\) are not installed\.$/);
    assert.match(missing.hint, /Install the lvm2 package/);
    const broken = lvmDecisions([mounts.root], info, sys, () => {
      throw new Error('lvs failed: Volume group "vgmain" not found');
    }).map(refusal)[0];
    assert.match(broken.message, /LVM could not describe it \(lvs failed: Volume group "vgmain" not found\)/);
  });

  it('from another disk, the same LV is on another disk', () => {
    const sda: DeviceInfo = { ...info, path: '/dev/sda', size: 2097152 * 512, devno: '8:0' };
    assert.match(refusal(lvmDecisions([mounts.root], sda, sys, report)[0]).message, /extents on \/dev\/nvme0n1p3: that is not a partition of \/dev\/sda/);
  });

  it('pauseProblem refuses only what the decision refused, with its message', () => {
    const rw = [mounts.root, mounts.efi, mounts.home];
    const ds = decide(rw.filter((m) => m.offset === undefined));
    const p = pauseProblem(rw, '/media/backup/repo', '8:33', ds);
    assert.equal(p?.code, 'BAD_SOURCE');
    assert.match(p!.message, /^\/home is on the LVM volume vgmain\/home/);
    assert.equal(pauseProblem([mounts.root, mounts.efi], '/media/backup/repo', '8:33', decide([mounts.root])), null);
    // Without decisions (another mode), a stacked mount is refused as before.
    assert.match(pauseProblem([mounts.root], '/media/backup/repo', '8:33')!.message, /mounted read-write through dm-0 \(LVM, LUKS or RAID\)/);
    // The repository on a volume being imaged is still refused.
    assert.equal(pauseProblem([mounts.root], '/srv/repo', mounts.root.devno, decide([mounts.root]))?.code, 'USAGE');
  });
});

describe('the invalid-snapshot verdict and its words', () => {
  const t = { vg: 'vgmain', lv: 'root', mount: mount('/', 'dm-0') };
  const status = (invalid: string, pct: string) => ({ report: [{ lv: [{ lv_name: 'devsnap-0123456789abcdef', lv_snapshot_invalid: invalid, snap_percent: pct }] }] });
  it('names the snapshot, the volume and the way out', () => {
    assert.equal(snapshotProblem(t, 'devsnap-0123456789abcdef', status('0', '41.20')), null);
    const full = snapshotProblem(t, 'devsnap-0123456789abcdef', status('1', '100.00'));
    assert.ok(full instanceof DevsnapError);
    assert.match(full.message, /^The LVM snapshot vgmain\/devsnap-0123456789abcdef of vgmain\/root \(\/\) became invalid \(its copy-on-write area filled up/);
    assert.match(full.hint!, /more free extents.*--freeze/);
    assert.match(snapshotProblem(t, 'devsnap-0123456789abcdef', status('-1', ''))!.message, /LVM reports it invalid/);
    assert.match(snapshotProblem(t, 'devsnap-0123456789abcdef', status('0', '100.00'))!.message, /filled up/);
  });
  it('the manifest method reads "from an LVM snapshot", not "paused"', () => {
    const pointInTime = {
      at: '2026-01-02T03:04:05Z',
      pauseSeconds: 0.3,
      rounds: 0,
      rereadBytes: 0,
      methods: [
        { mountpoint: '/', partition: 2, how: 'two-pass' },
        { mountpoint: '/home', partition: 3, how: 'lvm-snapshot' },
      ],
    };
    const s = describeConsistency({ consistency: 'frozen-two-pass', pointInTime });
    assert.match(s, /\(\/home from an LVM snapshot\)\.$/);
    assert.match(describeConsistency({ consistency: 'native-snapshot', pointInTime: { ...pointInTime, methods: [pointInTime.methods[1]] } }), /read from an LVM snapshot/);
  });
});

describe('the session reader on real files', () => {
  it('reads LV pieces from each snapshot, metadata from the copies, the rest from the disk; short reads fail', async () => {
    const dir = tmpDir('devsnap-lvm-reader-');
    const diskFile = path.join(dir, 'disk.img');
    const snapA = path.join(dir, 'a.img');
    const snapB = path.join(dir, 'b.img');
    const diskBytes = seededBytes(41, 48 * MiB);
    fs.writeFileSync(diskFile, diskBytes);
    fs.writeFileSync(snapA, seededBytes(42, 12 * MiB));
    fs.writeFileSync(snapB, seededBytes(43, 4 * MiB));
    // Two LVs of one VG on a PV at 1 MiB + 512 (metadata copy 1 MiB): A in two pieces, B between them.
    const pv = MiB + 512;
    const piecesA = [
      { diskOffset: pv + MiB, length: 8 * MiB, lvOffset: 0 },
      { diskOffset: pv + 13 * MiB, length: 4 * MiB, lvOffset: 8 * MiB },
    ];
    const piecesB = [{ diskOffset: pv + 9 * MiB, length: 4 * MiB, lvOffset: 0 }];
    const meta = [{ diskOffset: pv, bytes: seededBytes(44, MiB) }];
    const ref = Buffer.from(diskBytes);
    const a = fs.readFileSync(snapA);
    a.copy(ref, pv + MiB, 0, 8 * MiB);
    a.copy(ref, pv + 13 * MiB, 8 * MiB, 12 * MiB);
    fs.readFileSync(snapB).copy(ref, pv + 9 * MiB);
    meta[0].bytes.copy(ref, pv);
    const fh = await fs.promises.open(diskFile, 'r');
    const fa = await fs.promises.open(snapA, 'r');
    const fb = await fs.promises.open(snapB, 'r');
    const failures: string[] = [];
    try {
      const view = snapshotReader(
        fh,
        48 * MiB,
        diskFile,
        [
          { what: 'vg/a', pieces: piecesA, device: fa, lvBytes: 12 * MiB },
          { what: 'vg/b', pieces: piecesB, device: fb, lvBytes: 4 * MiB },
        ],
        meta,
        (l, err) => {
          failures.push(l.what);
          return new Error(`snapshot of ${l.what}: ${err.message}`);
        },
      );
      // Positional reads as readRuns does them: into a buffer at an offset, nothing else touched.
      const rand = prng(9);
      for (let i = 0; i < 200; i++) {
        const pos = Math.floor(rand() * (48 * MiB - 1));
        const len = 1 + Math.floor(rand() * Math.min(3 * MiB, 48 * MiB - pos - 1));
        const buf = Buffer.alloc(len + 100, 0xee);
        assert.deepEqual(await view.read(buf, 50, len, pos), { bytesRead: len });
        assert.ok(buf.subarray(50, 50 + len).equals(ref.subarray(pos, pos + len)), `read at ${pos} (${len} bytes)`);
        assert.ok(buf.subarray(0, 50).every((b) => b === 0xee) && buf.subarray(50 + len).every((b) => b === 0xee), 'only [offset, offset+length) is written');
      }
      assert.ok((await view.reader.read(0, 48 * MiB)).equals(ref), 'the whole disk');
      // The disk shorter than said (a removed drive): an error, not zeros.
      await assert.rejects(view.read(Buffer.alloc(MiB), 0, MiB, 48 * MiB - 4096), (e: unknown) => e instanceof DevsnapError && /disk\.img ended early at byte 50331648/.test(e.message));
      // A failing snapshot device is reported through `failed`, naming its LV.
      await fb.close();
      await assert.rejects(view.read(Buffer.alloc(4096), 0, 4096, pv + 10 * MiB), /snapshot of vg\/b: .*EBADF|snapshot of vg\/b: .*closed/);
      assert.deepEqual(failures, ['vg/b']);
    } finally {
      await fh.close();
      await fa.close();
      await fb.close().catch(() => undefined);
    }
  });
});

describe('with the real LVM tools on loop devices over a disk image (inactive LVs: no device-mapper needed)', { skip: hasLvm ? false : 'needs root and lvm2' }, () => {
  it('decides from what LVM prints and sysfs shows, copies the metadata when it holds still, and the image hides what came after', async () => {
    const dir = tmpDir('devsnap-lvm-source-real-');
    const diskFile = path.join(dir, 'disk.img');
    const otherFile = path.join(dir, 'other.img');
    for (const f of [diskFile, otherFile]) {
      fs.writeFileSync(f, '');
      fs.truncateSync(f, 64 * MiB);
    }
    const parts = [
      { start: MiB, size: 24 * MiB },
      { start: 26 * MiB, size: 24 * MiB },
    ];
    const vg = `devsnap-s.${process.pid}`;
    const live = parts.map((p) => attachLoop(diskFile, { offset: p.start, sizeLimit: p.size }));
    const devs = [...live];
    const outLoops: string[] = [];
    try {
      devs.push(attachLoop(otherFile, { offset: 2 * MiB, sizeLimit: 24 * MiB })); // a PV of the VG on another "disk"
      lvm(['pvcreate', ...devs], devs);
      lvm(['vgcreate', '-s', '1M', vg, ...devs], devs);
      lvm(['lvcreate', '-an', '-Zn', '-L', '16M', '-n', 'root', vg, live[0]], devs);
      lvm(['lvcreate', '-an', '-Zn', '-L', '4M', '-n', 'other', vg, live[1]], devs);
      lvm(['lvextend', '-L', '28M', `${vg}/root`, live[1]], devs);
      lvm(['lvcreate', '-an', '-Zn', '-L', '4M', '-n', 'split', vg, live[1]], devs);
      lvm(['lvextend', '-L', '8M', `${vg}/split`, devs[2]], devs);

      const report = (argv: string[]) => lvm(argv, devs).stdout;
      const layer = new BlockLayer(); // the live sysfs: loop devices at offsets of the image file
      const info: DeviceInfo = { path: diskFile, kind: 'file', size: 64 * MiB, mounts: [], holders: [], isSystem: false };
      const place = sourcePlace(info, layer);
      const m = mount('/mnt/root', 'dm-7');
      const root = okOf(decideLvm(m, { vg, lv: 'root' }, { segments: report(segmentsCommand(vg, 'root')), pvs: report(pvsCommand(vg)) }, diskFile, place, layer));
      assert.deepEqual(root.pieces, [
        { diskOffset: 2 * MiB, length: 16 * MiB, lvOffset: 0 },
        { diskOffset: 26 * MiB + 5 * MiB, length: 12 * MiB, lvOffset: 16 * MiB },
      ]);
      assert.deepEqual(
        root.pvs,
        [
          { pvName: live[0], diskOffset: MiB, metadataBytes: MiB },
          { pvName: live[1], diskOffset: 26 * MiB, metadataBytes: MiB },
        ],
        'the PV on the other image is not copied',
      );
      const split = refusal(decideLvm(m, { vg, lv: 'split' }, { segments: report(segmentsCommand(vg, 'split')), pvs: report(pvsCommand(vg)) }, diskFile, place, layer));
      assert.match(split.message, new RegExp(`extents on ${devs[2]}: that is not a partition of ${diskFile.replace(/[.]/g, '\\.')}`));

      // The copy when nothing changes: one revision read before, one after.
      let vgsCalls = 0;
      const counting = (argv: string[]) => {
        if (argv[0] === 'vgs') vgsCalls++;
        return report(argv);
      };
      const plain = copyMetadata(`${vg}/root`, vg, root.pvs, counting);
      assert.equal(vgsCalls, 2);
      assert.deepEqual(
        plain.map((r) => r.diskOffset),
        [MiB, 26 * MiB],
      );
      assert.ok(plain[1].bytes.equals(readMetadataCopy(live[1], MiB)));
      // A change between the copy and the second revision read: the copy is taken again, and holds it.
      vgsCalls = 0;
      const again = copyMetadata(`${vg}/root`, vg, root.pvs, (argv) => {
        if (argv[0] === 'vgs' && vgsCalls === 1) lvm(['lvcreate', '-an', '-Zn', '-L', '1M', '-n', 'late', vg, live[0]], devs);
        return counting(argv);
      });
      assert.equal(vgsCalls, 3);
      assert.ok(again[0].bytes.includes('late'), 'the copy taken after the change lists it');
      assert.ok(!plain[0].bytes.includes('late'), 'the first copy did not');
      // A VG that never holds still: refused after a bounded number of tries, naming the volume.
      let n = 0;
      assert.throws(
        () =>
          copyMetadata(`${vg}/root (/mnt/root)`, vg, root.pvs, (argv) => {
            if (argv[0] === 'vgs') lvm(['lvcreate', '-an', '-Zn', '-L', '1M', '-n', `churn${n++}`, vg, devs[2]], devs);
            return report(argv);
          }),
        (e: unknown) =>
          e instanceof DevsnapError &&
          /kept changing while devsnap copied it for the snapshot of .*\/root \(\/mnt\/root\) \(5 tries\)/.test(e.message) &&
          /Wait until nothing changes/.test(e.hint ?? ''),
      );
      assert.equal(n, 6, 'one revision read before the first copy and one after each of 5');
      for (let i = 0; i < n; i++) lvm(['lvremove', '-y', `${vg}/churn${i}`], devs);
      lvm(['lvremove', '-y', `${vg}/late`], devs);

      // The session's reader over the real image: copy, then the "snapshot" LV (lvcreate -s needs device-mapper).
      const copies = copyMetadata(`${vg}/root`, vg, root.pvs, report);
      assert.match(lvm(createSnapshotCommand(vg, 'root', 'devsnap-0123456789abcdef', 4 * MiB), devs, true).stderr, /device-mapper/);
      lvm(['lvcreate', '-an', '-Zn', '-L', '4M', '-n', 'devsnap-0123456789abcdef', vg, live[0]], devs);
      const snapFile = path.join(dir, 'snapshot.img');
      fs.writeFileSync(snapFile, seededBytes(51, 28 * MiB));
      const outFile = path.join(dir, 'out.img');
      const fh = await fs.promises.open(diskFile, 'r');
      const snap = await fs.promises.open(snapFile, 'r');
      try {
        const view = snapshotReader(fh, 64 * MiB, diskFile, [{ what: `${vg}/root`, pieces: root.pieces, device: snap, lvBytes: root.lvBytes }], copies);
        const out = Buffer.alloc(64 * MiB);
        for (let pos = 0; pos < out.length; pos += 3 * MiB) await view.read(out, pos, Math.min(3 * MiB, out.length - pos), pos);
        fs.writeFileSync(outFile, out);
      } finally {
        await fh.close();
        await snap.close();
      }
      const out = fs.readFileSync(outFile);
      const lvBytes = fs.readFileSync(snapFile);
      assert.ok(out.subarray(2 * MiB, 18 * MiB).equals(lvBytes.subarray(0, 16 * MiB)) && out.subarray(31 * MiB, 43 * MiB).equals(lvBytes.subarray(16 * MiB)), 'the LV from the snapshot');
      const disk = fs.readFileSync(diskFile);
      assert.ok(out.subarray(43 * MiB).equals(disk.subarray(43 * MiB)) && out.subarray(0, MiB).equals(disk.subarray(0, MiB)), 'the rest from the disk');
      for (const p of parts) outLoops.push(attachLoop(outFile, { offset: p.start, sizeLimit: p.size }));
      // The image's PVs alone (the third PV, elsewhere and live, has the newer metadata: not in this image).
      assert.deepEqual(lvNames(vg, outLoops), ['other', 'root', 'split'], 'the image does not list the snapshot LV made after the copy');
      assert.deepEqual(lvNames(vg, live), ['devsnap-0123456789abcdef', 'other', 'root', 'split'], 'the disk itself does');
    } finally {
      for (const l of outLoops) detachLoop(l);
      lvm(['vgremove', '-f', vg], devs, true);
      for (const l of devs) detachLoop(l);
    }
  });
});
