// LVM snapshots (imaging/consistency/lvm.ts), which this kernel cannot run (no device-mapper):
// - the command lines, with hostile names refused before any reaches a command;
// - the report parsers on LVM 2.03's JSON as it prints it, including what is not linear;
// - lvOfDm on constructed sysfs trees;
// - the overlay reader on real files (the LV's extents from the "snapshot", the metadata copy);
// - the metadata copy read with O_DIRECT from a loop device;
// - where lvm2 is installed: real LVM on loop devices with inactive LVs (no device-mapper needed), so
//   the parsers read what LVM prints, the copied metadata really hides an LV created after the copy,
//   and lvcreate accepts the snapshot command line up to the point where it needs device-mapper.
import { hasLvm, lvm, lvmConfig, lvNames } from '../../helpers/lvm';
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { DevsnapError } from '../../../imaging/core/errors';
import {
  cowSize,
  createSnapshot,
  createSnapshotCommand,
  dmPath,
  leftoverSnapshotsCommand,
  LVM_LIMITS,
  lvLayout,
  LvPiece,
  lvOfDm,
  overlayReader,
  parseLeftovers,
  parsePvs,
  parseSnapshotStatus,
  parseVgFree,
  parseVgSeqno,
  piecesOnDisk,
  pvMetadataBytes,
  pvsCommand,
  readMetadataCopy,
  removeSnapshotCommand,
  segmentsCommand,
  snapshotName,
  snapshotStatusCommand,
  vgFreeCommand,
} from '../../../imaging/consistency/lvm';
import { attachLoop, cleanup, detachLoop, fileReader, isRoot, prng, seededBytes, sh, tmpDir } from '../../helpers/disks';

after(cleanup);
const MiB = 1 << 20;
const GiB = 1 << 30;
const ID = '0123456789abcdef';
const SNAP = `devsnap-${ID}`;

describe('command lines', () => {
  it('are argv arrays naming the VG, LV and snapshot exactly', () => {
    assert.equal(snapshotName(ID), SNAP);
    assert.deepEqual(createSnapshotCommand('vgubuntu', 'root', SNAP, 2 * GiB), ['lvcreate', '--snapshot', '--name', SNAP, '--size', '2147483648b', 'vgubuntu/root']);
    assert.deepEqual(removeSnapshotCommand('my-vg.x+1', SNAP), ['lvremove', '--yes', `my-vg.x+1/${SNAP}`]);
    assert.deepEqual(segmentsCommand('vg_0', 'root-lv'), [
      'lvs',
      '--reportformat',
      'json',
      '--units',
      'b',
      '--nosuffix',
      '-o',
      'vg_name,lv_name,vg_extent_size,seg_start_pe,seg_size_pe,seg_pe_ranges,segtype',
      '--segments',
      'vg_0/root-lv',
    ]);
    assert.deepEqual(pvsCommand('vg0'), ['pvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'pv_name,vg_name,pe_start,pv_mda_count', '--select', 'vg_name=vg0']);
    assert.deepEqual(vgFreeCommand('vg0'), ['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_free,vg_extent_size,vg_seqno', 'vg0']);
    assert.deepEqual(snapshotStatusCommand('vg0', SNAP), ['lvs', '--reportformat', 'json', '--binary', '-o', 'lv_name,lv_snapshot_invalid,snap_percent', `vg0/${SNAP}`]);
    assert.deepEqual(leftoverSnapshotsCommand(), ['lvs', '--reportformat', 'json', '-o', 'vg_name,lv_name', '--select', 'lv_name=~^devsnap-']);
    assert.equal(dmPath('my-vg', 'root-lv'), '/dev/mapper/my--vg-root--lv');
    assert.match(LVM_LIMITS, /untested/i);
    assert.match(LVM_LIMITS, /lvremove --yes VG\/devsnap-/);
  });

  it('refuse hostile names before building any command', () => {
    const hostile = ['vg 0', '-vg', '--yes', 'vg/0', 'vg\n0', 'vg0\n', '..', '.', '', 'a'.repeat(128), 'vg;rm', '$(id)', 'vg\0', 'é'];
    for (const bad of hostile) {
      const name = JSON.stringify(bad);
      assert.throws(() => createSnapshotCommand(bad, 'root', SNAP, GiB), /not a valid LVM volume group name/, name);
      assert.throws(() => createSnapshotCommand('vg0', bad, SNAP, GiB), /not a valid LVM logical volume name/, name);
      assert.throws(() => removeSnapshotCommand(bad, SNAP), /volume group name/, name);
      assert.throws(() => segmentsCommand('vg0', bad), /logical volume name/, name);
      for (const f of [pvsCommand, vgFreeCommand]) assert.throws(() => f(bad), /volume group name/, name);
      assert.throws(() => snapshotName(bad), /not a valid snapshot id/, name);
    }
    // LVM's reserved LV names, and only devsnap-<id> is ever created or removed.
    for (const lv of ['snapshot', 'pvmove', 'root_rimage_0', 'pool_tmeta']) assert.throws(() => segmentsCommand('vg0', lv), /logical volume name/, lv);
    for (const snap of ['root', 'devsnap-', 'devsnap-a b', `${SNAP}\n`, 'xdevsnap-1', '../devsnap-1']) {
      assert.throws(() => createSnapshotCommand('vg0', 'root', snap, GiB), /devsnap snapshot name|not a valid/, snap);
      assert.throws(() => removeSnapshotCommand('vg0', snap), /devsnap snapshot name|not a valid/, snap);
    }
    for (const size of [0, -512, 1.5, 1000, NaN, Infinity, 2 ** 60]) assert.throws(() => createSnapshotCommand('vg0', 'root', SNAP, size), /COW size/, String(size));
  });
});

// As LVM 2.03 prints them (--reportformat json --units b --nosuffix): numbers are strings, and
// `lvs --segments` reports under "seg".
const SEGS = `  {
      "report": [
          {
              "seg": [
                  {"vg_name":"vgubuntu", "lv_name":"root", "vg_extent_size":"4194304", "seg_start_pe":"0", "seg_size_pe":"2560", "seg_pe_ranges":"/dev/nvme0n1p3:0-2559", "segtype":"linear"},
                  {"vg_name":"vgubuntu", "lv_name":"root", "vg_extent_size":"4194304", "seg_start_pe":"3072", "seg_size_pe":"100", "seg_pe_ranges":"/dev/nvme0n1p3:3584-3683", "segtype":"linear"},
                  {"vg_name":"vgubuntu", "lv_name":"root", "vg_extent_size":"4194304", "seg_start_pe":"2560", "seg_size_pe":"512", "seg_pe_ranges":"/dev/sda1:10-521", "segtype":"linear"}
              ]
          }
      ]
  }
`;
const PVS = `  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/nvme0n1p3", "vg_name":"vgubuntu", "pe_start":"1048576", "pv_mda_count":"1"},
                  {"pv_name":"/dev/sda1", "vg_name":"vgubuntu", "pe_start":"2097152", "pv_mda_count":"1"}
              ]
          }
      ]
  }
`;
const seg = (o: Record<string, string>) => ({ report: [{ seg: [{ vg_name: 'vg', lv_name: 'lv', vg_extent_size: '4194304', seg_start_pe: '0', seg_size_pe: '256', ...o }] }] });
const pvs1 = { report: [{ pv: [{ pv_name: '/dev/sda2', vg_name: 'vg', pe_start: '1048576', pv_mda_count: '1' }] }] };
const E = 4 * MiB;

describe('report parsers', () => {
  it('lvLayout: a multi-segment linear LV across two PVs, segments in any order', () => {
    const expected: LvPiece[] = [
      { lvOffset: 0, pvName: '/dev/nvme0n1p3', pvOffset: MiB, length: 2560 * E },
      { lvOffset: 2560 * E, pvName: '/dev/sda1', pvOffset: 2 * MiB + 10 * E, length: 512 * E },
      { lvOffset: 3072 * E, pvName: '/dev/nvme0n1p3', pvOffset: MiB + 3584 * E, length: 100 * E },
    ];
    assert.deepEqual(lvLayout(SEGS, PVS), expected);
    // Already parsed, and under "lv" (as `lvs` without --segments names its report).
    const asLv = JSON.parse(SEGS.replace('"seg"', '"lv"'));
    assert.deepEqual(lvLayout(asLv, JSON.parse(PVS)), expected);
    // The disk's own pieces, at the PV partition's place on it.
    assert.deepEqual(piecesOnDisk(expected, '/dev/nvme0n1p3', 2048 * 512), [
      { diskOffset: 2048 * 512 + MiB, length: 2560 * E, lvOffset: 0 },
      { diskOffset: 2048 * 512 + MiB + 3584 * E, length: 100 * E, lvOffset: 3072 * E },
    ]);
    assert.throws(() => piecesOnDisk(expected, '/dev/nvme0n1p3', 0, MiB + 3000 * E), /past the end of its partition/);
  });

  it('lvLayout refuses what is not linear, saying what it is', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ seg_pe_ranges: '/dev/sda2:0-127 /dev/sdb1:0-127', segtype: 'striped' }, /is a striped LV/],
      [{ seg_pe_ranges: 'lv_rimage_0:0-255 lv_rimage_1:0-255', segtype: 'raid1' }, /is a RAID \(raid1\) LV/],
      [{ seg_pe_ranges: 'lv_mimage_0:0-255 lv_mimage_1:0-255', segtype: 'mirror' }, /is a mirrored LV/],
      [{ seg_pe_ranges: '', segtype: 'thin' }, /is a thin LV/],
      [{ seg_pe_ranges: 'lv_vdata:0-255', segtype: 'vdo' }, /is a vdo LV/],
      [{ seg_pe_ranges: '/dev/sda2:0-127 /dev/sdb1:0-127' }, /striped or mirrored/], // without segtype
      [{ seg_pe_ranges: '' }, /thin or virtual/],
      [{ seg_pe_ranges: 'pvmove0:0-255', segtype: 'linear' }, /pvmove0, not a device .*pvmove in progress/],
      [{ seg_pe_ranges: '[unknown]:0-255', segtype: 'linear' }, /missing PV/],
      [{ seg_pe_ranges: '/dev/sda2:0-99', segtype: 'linear' }, /spans 100 extents of \/dev\/sda2, not 256/],
      [{ seg_pe_ranges: '/dev/sdq1:0-255', segtype: 'linear' }, /\/dev\/sdq1, which the pvs report does not list/],
      [{ seg_pe_ranges: '/dev/sda2:0-255', seg_start_pe: '10' }, /do not follow each other/],
      [{ seg_pe_ranges: '/dev/sda2:0-255', vg_extent_size: '4.00m' }, /not a whole number .*--units b --nosuffix/],
    ];
    for (const [o, re] of cases) assert.throws(() => lvLayout(seg(o), pvs1), re, JSON.stringify(o));
    assert.deepEqual(lvLayout(seg({ seg_pe_ranges: '/dev/sda2:0-255', segtype: 'striped' }), pvs1), [{ lvOffset: 0, pvName: '/dev/sda2', pvOffset: MiB, length: 256 * E }], 'one stripe is linear');
    assert.throws(() => lvLayout('{"report": [', pvs1), /not JSON/);
    assert.throws(() => lvLayout({ report: [{ seg: [] }] }, pvs1), /no segment/);
    assert.throws(() => lvLayout({ nope: 1 }, pvs1), /no "report" list/);
  });

  it('PVs, free space, metadata revision, snapshot state, leftovers', () => {
    assert.deepEqual(parsePvs(PVS)[1], { pvName: '/dev/sda1', vgName: 'vgubuntu', peStart: 2 * MiB, mdaCount: 1 });
    assert.equal(pvMetadataBytes(parsePvs(PVS)[0]), MiB);
    assert.throws(() => pvMetadataBytes({ pvName: '/dev/sda2', peStart: MiB, mdaCount: 2 }), /2 copies of the LVM metadata/);
    const vgs = '{"report":[{"vg":[{"vg_name":"vgubuntu", "vg_free":"53687091200", "vg_extent_size":"4194304", "vg_seqno":"17"}]}]}';
    assert.equal(parseVgFree(vgs), 50 * GiB);
    assert.equal(parseVgSeqno(vgs), 17);
    assert.throws(() => parseVgFree('{"report":[{"vg":[]}]}'), /lists 0 volume groups/);
    const status = (invalid: string, pct: string) => parseSnapshotStatus({ report: [{ lv: [{ lv_name: SNAP, lv_snapshot_invalid: invalid, snap_percent: pct }] }] });
    assert.deepEqual(status('0', '12.50'), { valid: true, percentFull: 12.5 });
    assert.deepEqual(status('1', '100.00'), { valid: false, percentFull: 100 });
    assert.deepEqual(status('-1', ''), { valid: false, percentFull: null });
    assert.deepEqual(status('0', '100.00'), { valid: false, percentFull: 100 });
    const left = '{"report":[{"lv":[{"vg_name":"vgubuntu", "lv_name":"devsnap-0123456789abcdef"}, {"vg_name":"vg", "lv_name":"devsnap-"}]}]}';
    assert.deepEqual(parseLeftovers(left), [{ vg: 'vgubuntu', name: SNAP, removeCommand: `lvremove --yes vgubuntu/${SNAP}` }]);
  });

  it('cowSize: 10% of the LV, at least 1 GiB, at most the free space; refused under 256 MiB free', () => {
    assert.equal(cowSize(100 * GiB, 50 * GiB), 10 * GiB);
    assert.equal(cowSize(4 * GiB, 50 * GiB), GiB);
    assert.equal(cowSize(100 * GiB, 512 * MiB), 512 * MiB);
    assert.equal(cowSize(10 * GiB + 4 * MiB, 50 * GiB), 1025 * MiB, '10% rounded up to a MiB');
    assert.equal(cowSize(100 * GiB, 256 * MiB), 256 * MiB);
    assert.throws(
      () => cowSize(100 * GiB, 256 * MiB - 1),
      (e: unknown) => e instanceof DevsnapError && /only 255 MiB free/.test(e.message) && /Free extents in the volume group.*another method/.test(e.hint ?? ''),
    );
    assert.throws(() => cowSize(0, GiB), /Bad sizes/);
  });
});

describe('lvOfDm on constructed sysfs trees', () => {
  const vgUuid = 'Xk3bQ9zVfJ1pA7cW2mR8nT4yE6uH0sLd';
  const lvUuid = 'b5Gh2Kq8Wn3Rz7Tx1Vc9Mp4Ly6Ds0Fa2';
  it('finds the VG and LV, undoing the doubled dashes; null for anything else', () => {
    const sys = path.join(tmpDir('devsnap-lvm-sysfs-'), 'sys');
    const dm = (n: number, uuid: string, name: string) => {
      // As the kernel lays it out: /sys/block/dm-N is a link into devices/virtual/block.
      const dir = path.join(sys, 'devices/virtual/block', `dm-${n}`);
      fs.mkdirSync(path.join(dir, 'dm'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'dm', 'uuid'), `${uuid}\n`);
      fs.writeFileSync(path.join(dir, 'dm', 'name'), `${name}\n`);
      fs.mkdirSync(path.join(sys, 'block'), { recursive: true });
      fs.symlinkSync(`../devices/virtual/block/dm-${n}`, path.join(sys, 'block', `dm-${n}`));
    };
    const lvm = `LVM-${vgUuid}${lvUuid}`;
    dm(0, lvm, 'vgubuntu-root');
    dm(1, lvm, 'my--vg-root--lv');
    dm(2, lvm, 'a---b');
    dm(3, 'CRYPT-LUKS2-6d3c7f0a2b1e4d5c8f9a0b1c2d3e4f5a-dm_crypt-0', 'dm_crypt-0');
    dm(4, `${lvm}-real`, 'vgubuntu-root-real');
    dm(5, `${lvm}-cow`, `vgubuntu-${SNAP}-cow`);
    dm(6, '', 'plain');
    dm(7, lvm, 'vg-root-extra'); // a layer name without the uuid's suffix: not trusted
    dm(8, lvm, 'nodash');
    dm(9, lvm, 'vg-root lv');
    assert.deepEqual(lvOfDm('dm-0', sys), { vg: 'vgubuntu', lv: 'root' });
    assert.deepEqual(lvOfDm('dm-1', sys), { vg: 'my-vg', lv: 'root-lv' });
    assert.deepEqual(lvOfDm('dm-2', sys), { vg: 'a-', lv: 'b' });
    for (const n of ['dm-3', 'dm-4', 'dm-5', 'dm-6', 'dm-7', 'dm-8', 'dm-9', 'dm-42', '../block/dm-0', 'sda']) assert.equal(lvOfDm(n, sys), null, n);
  });
});

describe('overlayReader on real files', () => {
  it('serves the LV pieces from the snapshot and the metadata from its copy, wherever reads fall', async () => {
    const dir = tmpDir('devsnap-lvm-overlay-');
    const diskFile = path.join(dir, 'disk.img');
    const snapFile = path.join(dir, 'snapshot.img');
    const diskBytes = seededBytes(11, 64 * MiB);
    const snapBytes = seededBytes(12, 24 * MiB);
    fs.writeFileSync(diskFile, diskBytes);
    fs.writeFileSync(snapFile, snapBytes);
    // Two PV partitions at odd sector starts; a third piece of the LV is on another disk.
    const p1 = MiB + 3 * 512;
    const p2 = 30 * MiB + 512;
    const layout: LvPiece[] = [
      { lvOffset: 0, pvName: '/dev/sdz1', pvOffset: MiB, length: 8 * MiB },
      { lvOffset: 8 * MiB, pvName: '/dev/sdz2', pvOffset: MiB + 4 * MiB, length: 12 * MiB },
      { lvOffset: 20 * MiB, pvName: '/dev/sdy1', pvOffset: MiB, length: 4 * MiB },
      { lvOffset: 20 * MiB + 4 * MiB - 4096, pvName: '/dev/sdz1', pvOffset: 9 * MiB + 4096, length: 4096 },
    ];
    const pieces = [...piecesOnDisk(layout, '/dev/sdz1', p1), ...piecesOnDisk(layout, '/dev/sdz2', p2)];
    const meta = [
      { diskOffset: p1, bytes: seededBytes(13, MiB) },
      { diskOffset: p2, bytes: seededBytes(14, MiB) },
    ];
    // The reference, by hand: the disk with the LV's pieces and the metadata copies pasted in.
    const ref = Buffer.from(diskBytes);
    snapBytes.copy(ref, p1 + MiB, 0, 8 * MiB);
    snapBytes.copy(ref, p2 + 5 * MiB, 8 * MiB, 20 * MiB);
    snapBytes.copy(ref, p1 + 9 * MiB + 4096, 24 * MiB - 4096, 24 * MiB);
    meta[0].bytes.copy(ref, p1);
    meta[1].bytes.copy(ref, p2);
    const disk = fileReader(diskFile);
    const snap = fileReader(snapFile);
    try {
      const r = overlayReader(disk, pieces, snap, meta);
      assert.equal(r.size, 64 * MiB);
      const check = async (pos: number, len: number) => {
        const got = await r.read(pos, len);
        const want = Buffer.alloc(len);
        if (pos < ref.length) ref.copy(want, 0, pos, Math.min(ref.length, pos + len));
        assert.ok(got.equals(want), `read(${pos}, ${len}) differs from the reference`);
      };
      // Around every edge of every region, and across several regions at once.
      const edges = [p1, p1 + MiB, p1 + 9 * MiB, p1 + 9 * MiB + 4096, p1 + 9 * MiB + 8192, p2, p2 + MiB, p2 + 5 * MiB, p2 + 17 * MiB];
      for (const e of edges) for (const d of [-4097, -512, -1, 0, 1, 511]) for (const len of [1, 512, 4096, 65537]) await check(e + d, len);
      await check(p1 - 1, p2 + 18 * MiB - p1);
      await check(64 * MiB - 1000, 5000); // past the end: zero-filled, like the disk
      const rand = prng(7);
      for (let i = 0; i < 300; i++) await check(Math.floor(rand() * 64 * MiB), 1 + Math.floor(rand() * 3 * MiB));
      // The whole disk in concurrent chunks, as the engine reads it.
      const chunks = await Promise.all(Array.from({ length: 16 }, (_, k) => r.read(k * 4 * MiB, 4 * MiB)));
      assert.ok(Buffer.concat(chunks).equals(ref), 'the whole disk through the overlay');
      // One region alone, and none at all.
      assert.ok((await overlayReader(disk, [], snap, []).read(0, 64 * MiB)).equals(diskBytes));
      assert.ok((await overlayReader(disk, [], snap, meta[1]).read(p2 - 1, MiB + 2)).equals(ref.subarray(p2 - 1, p2 + MiB + 1)));
      // Inconsistent layouts are refused, not read.
      assert.throws(() => overlayReader(disk, [{ diskOffset: p1 + MiB - 512, length: 4096, lvOffset: 0 }], snap, meta), /Overlapping/);
      assert.throws(() => overlayReader(disk, [...pieces, { diskOffset: 50 * MiB, length: 4096, lvOffset: 24 * MiB - 512 }], snap, []), /past the end of the snapshot/);
      assert.throws(() => overlayReader(disk, [{ diskOffset: 64 * MiB - 512, length: 1024, lvOffset: 0 }], snap, []), /past the end of the disk/);
      assert.throws(() => overlayReader(disk, [{ diskOffset: 0, length: 0, lvOffset: 0 }], snap, []), /Bad LV piece/);
      await assert.rejects(r.read(-1, 10), /Bad read/);
    } finally {
      disk.close();
      snap.close();
    }
  });
});

describe('the metadata copy, for real', { skip: isRoot ? false : 'needs root (loop devices)' }, () => {
  it('reads the first bytes of a PV device with O_DIRECT, and refuses a short read', () => {
    const dir = tmpDir('devsnap-lvm-mda-');
    const file = path.join(dir, 'pv.img');
    fs.writeFileSync(file, seededBytes(21, 8 * MiB));
    const loop = attachLoop(file, { offset: MiB, sizeLimit: 6 * MiB });
    try {
      assert.ok(readMetadataCopy(loop, MiB).equals(fs.readFileSync(file).subarray(MiB, 2 * MiB)));
      assert.ok(readMetadataCopy(loop, 1536).equals(fs.readFileSync(file).subarray(MiB, MiB + 1536)));
      // A change written through the device since is what the next copy holds.
      const fresh = seededBytes(22, 4096);
      sh('dd', [`of=${loop}`, 'oflag=direct', 'bs=4096', 'seek=16', 'conv=notrunc', 'status=none'], { input: fresh });
      assert.ok(
        readMetadataCopy(loop, 20 * 4096)
          .subarray(16 * 4096, 17 * 4096)
          .equals(fresh),
      );
      assert.throws(() => readMetadataCopy(loop, 7 * MiB), /Could not read the LVM metadata area/);
      assert.throws(() => readMetadataCopy('dev/loop0', MiB), /not a device path/);
      assert.throws(() => readMetadataCopy(loop, 1000), /512-byte sectors/);
    } finally {
      detachLoop(loop);
    }
  });
});

describe('with the real LVM tools on loop devices (inactive LVs: no device-mapper needed)', { skip: hasLvm ? false : 'needs root and lvm2' }, () => {
  it('parses what LVM prints, and the metadata copied before a change hides the LV that change created', async () => {
    const dir = tmpDir('devsnap-lvm-real-');
    const diskFile = path.join(dir, 'disk.img');
    fs.writeFileSync(diskFile, '');
    fs.truncateSync(diskFile, 64 * MiB);
    const parts = [
      { start: MiB, size: 24 * MiB },
      { start: 26 * MiB, size: 24 * MiB },
    ];
    const vg = `devsnap-t.${process.pid}+x`; // dots, dashes and a plus: the selection and dm escaping see them
    const live = parts.map((p) => attachLoop(diskFile, { offset: p.start, sizeLimit: p.size }));
    const outLoops: string[] = [];
    try {
      lvm(['pvcreate', ...live], live);
      lvm(['vgcreate', '-s', '1M', vg, ...live], live);
      lvm(['lvcreate', '-an', '-Zn', '-L', '16M', '-n', 'root-lv', vg, live[0]], live);
      lvm(['lvcreate', '-an', '-Zn', '-L', '4M', '-n', 'other', vg, live[1]], live);
      lvm(['lvextend', '-L', '28M', `${vg}/root-lv`, live[1]], live);

      const layout = lvLayout(lvm(segmentsCommand(vg, 'root-lv'), live).stdout, lvm(pvsCommand(vg), live).stdout);
      assert.deepEqual(layout, [
        { lvOffset: 0, pvName: live[0], pvOffset: MiB, length: 16 * MiB },
        { lvOffset: 16 * MiB, pvName: live[1], pvOffset: MiB + 4 * MiB, length: 12 * MiB },
      ]);
      const pvs = parsePvs(lvm(pvsCommand(vg), live).stdout);
      assert.deepEqual(
        pvs.map((p) => [p.pvName, p.vgName, p.mdaCount]),
        [
          [live[0], vg, 1],
          [live[1], vg, 1],
        ],
      );
      const vgs = lvm(vgFreeCommand(vg), live).stdout;
      assert.equal(parseVgFree(vgs), (23 + 23 - 28 - 4) * MiB);
      assert.throws(() => cowSize(28 * MiB, parseVgFree(vgs)), /only 14 MiB free/);
      const seqno = parseVgSeqno(vgs);

      // The copy, then the change (a plain LV named like the snapshot: lvcreate -s needs device-mapper).
      const copies = pvs.map((p, i) => ({ diskOffset: parts[i].start, bytes: readMetadataCopy(p.pvName, pvMetadataBytes(p)) }));
      const snap = lvm(createSnapshotCommand(vg, 'root-lv', SNAP, 4 * MiB), live, true);
      assert.notEqual(snap.status, 0);
      assert.match(snap.stderr, /Can't create snapshot without using device-mapper/, 'lvcreate accepted the command line up to device-mapper');
      lvm(['lvcreate', '-an', '-Zn', '-L', '4M', '-n', SNAP, vg], live);
      assert.deepEqual(lvNames(vg, live), [SNAP, 'other', 'root-lv']);
      assert.deepEqual(parseLeftovers(lvm(leftoverSnapshotsCommand(), live).stdout), [{ vg, name: SNAP, removeCommand: `lvremove --yes ${vg}/${SNAP}` }]);

      // The image: the disk with the LV from a "snapshot" file and the metadata as it was before.
      const snapFile = path.join(dir, 'snapshot.img');
      fs.writeFileSync(snapFile, seededBytes(31, 28 * MiB));
      const disk = fileReader(diskFile);
      const snapReader = fileReader(snapFile);
      const outFile = path.join(dir, 'out.img');
      try {
        const pieces = live.flatMap((pv, i) => piecesOnDisk(layout, pv, parts[i].start, parts[i].size));
        const r = overlayReader(disk, pieces, snapReader, copies);
        const fd = fs.openSync(outFile, 'w');
        for (let pos = 0; pos < r.size; pos += 4 * MiB) fs.writeSync(fd, await r.read(pos, 4 * MiB), 0, 4 * MiB, pos);
        fs.closeSync(fd);
      } finally {
        disk.close();
        snapReader.close();
      }
      const out = fs.readFileSync(outFile);
      const lvBytes = fs.readFileSync(snapFile);
      assert.ok(out.subarray(2 * MiB, 18 * MiB).equals(lvBytes.subarray(0, 16 * MiB)), 'first segment from the snapshot');
      assert.ok(out.subarray(31 * MiB, 43 * MiB).equals(lvBytes.subarray(16 * MiB, 28 * MiB)), 'second segment from the snapshot');

      for (const p of parts) outLoops.push(attachLoop(outFile, { offset: p.start, sizeLimit: p.size }));
      assert.deepEqual(lvNames(vg, outLoops), ['other', 'root-lv'], 'the image does not list the LV created after the copy');
      assert.equal(parseVgSeqno(lvm(vgFreeCommand(vg), outLoops).stdout), seqno);
      assert.deepEqual(
        lvLayout(lvm(segmentsCommand(vg, 'root-lv'), outLoops).stdout, lvm(pvsCommand(vg), outLoops).stdout).map((p) => p.pvOffset),
        [MiB, 5 * MiB],
      );

      for (const l of outLoops.splice(0)) detachLoop(l);
      lvm(removeSnapshotCommand(vg, SNAP), live);
      assert.deepEqual(lvNames(vg, live), ['other', 'root-lv']);

      // createSnapshot itself (its own lvm, told through LVM_SYSTEM_DIR to see only this disk's PVs):
      // lvcreate fails here, and nothing is left registered for exit.
      const confDir = path.join(dir, 'lvm-conf');
      fs.mkdirSync(confDir);
      fs.writeFileSync(path.join(confDir, 'lvm.conf'), `${lvmConfig(live)}\n`);
      const listeners = process.listenerCount('exit');
      process.env.LVM_SYSTEM_DIR = confDir;
      try {
        assert.throws(() => createSnapshot(vg, 'root-lv', ID, 4 * MiB), /lvcreate failed: .*device-mapper/);
      } finally {
        delete process.env.LVM_SYSTEM_DIR;
      }
      assert.equal(process.listenerCount('exit'), listeners);
      assert.deepEqual(lvNames(vg, live), ['other', 'root-lv']);
    } finally {
      for (const l of outLoops) detachLoop(l);
      lvm(['vgremove', '-f', vg], live, true);
      for (const l of live) detachLoop(l);
    }
  });
});
