// LVM native snapshots in a snapshot of a disk: which read-write mounts stacked on the source are
// LVM logical volumes devsnap can snapshot (lvmDecisions, for the plan and the snapshot alike), and a
// session that follows consistency/lvm.ts's sequence and reads the disk as it was at the snapshots.
//
// UNTESTED ON A REAL DEVICE-MAPPER (this project's machines have none): openLvmSession's lvcreate,
// opening the snapshot device and the status check have never run from here. Tested
// (test/unit/lvm-source.test.ts): the decision on constructed sysfs trees and on real LVM on loop
// devices, the metadata copy and its revision check against real LVM, the session's reader on real
// files, and the invalid-snapshot verdict.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { BlockLayer, fileKey, LIVE_SYSTEM, type DeviceInfo, type MountUse } from '../disk/device';
import { openDisk } from '../disk/privilege';
import type { ByteReader } from '../filesystems/types';
import type { SourceRead } from '../disk/source';
import {
  cowSize,
  createSnapshot,
  layeredReader,
  lvLayout,
  lvOfDm,
  parsePvs,
  parseSnapshotStatus,
  parseVgFree,
  parseVgSeqno,
  piecesOnDisk,
  pvMetadataBytes,
  pvsCommand,
  readMetadataCopy,
  runLvm,
  segmentsCommand,
  snapshotStatusCommand,
  vgFreeCommand,
  type DiskPiece,
  type LvmSnapshot,
  type MetadataRegion,
} from '../consistency/lvm';

/** Where the source's bytes are, as BlockLayer.base names places. */
export interface DiskPlace {
  obj: string;
  start: number;
  size: number;
}

export interface LvmTarget {
  mount: MountUse;
  vg: string;
  lv: string;
  lvBytes: number;
  /** Every extent of the LV, at its place on the source (an LV partly elsewhere is refused). */
  pieces: DiskPiece[];
  /** Every PV of the VG on the source: its label and metadata area, copied before the snapshot. */
  pvs: { pvName: string; diskOffset: number; metadataBytes: number }[];
}

export type LvmDecision = ({ ok: true } & LvmTarget) | { ok: false; mount: MountUse; message: string; hint: string };

/** The LVM reports decideLvm reads: stdout of segmentsCommand and pvsCommand. */
export interface LvReports {
  segments: string;
  pvs: string;
}

const OTHER_WAYS = 'Snapshot from a recovery environment, or use --freeze (writes wait for the whole snapshot) or --fuzzy (an image that is not one point in time).';

/** The source's place: a device's base (a partition of a disk is part of it), or an image file. */
export function sourcePlace(info: DeviceInfo, layer: BlockLayer): DiskPlace | null {
  if (info.kind === 'file') return { obj: fileKey(fs.statSync(info.path)), start: 0, size: info.size };
  const d = info.devno ? layer.byDevno.get(info.devno) : undefined;
  return d ? { ...layer.base(d), size: info.size } : null;
}

/** Where a PV device lies on the source (by its sysfs name: /dev/mapper and /dev/disk links resolved), or null when elsewhere. */
export function pvPlace(pvName: string, layer: BlockLayer, source: DiskPlace | null): { diskOffset: number; size: number } | null {
  let real = pvName;
  try {
    real = fs.realpathSync(pvName);
  } catch {
    /* not a node here (a constructed sysfs tree): its name is the kernel's */
  }
  const d = layer.byName.get(path.basename(real));
  if (!d || !source) return null;
  const b = layer.base(d);
  if (b.obj !== source.obj || b.start < source.start || b.start + b.size > source.start + source.size) return null;
  return { diskOffset: b.start - source.start, size: b.size };
}

/**
 * Whether a read-write mount stacked on `sourcePath` can be imaged through an LVM snapshot: an LV
 * (`lv`, from lvOfDm), linear, with every extent on PVs that lie on the source, each PV of the VG
 * on the source with its one metadata area at its start. Pure: everything it reads is given.
 */
export function decideLvm(m: MountUse, lv: { vg: string; lv: string } | null, reports: LvReports | Error, sourcePath: string, source: DiskPlace | null, layer: BlockLayer): LvmDecision {
  const refuse = (message: string, hint = OTHER_WAYS): LvmDecision => ({ ok: false, mount: m, message, hint });
  if (!lv)
    return refuse(
      `${m.mountpoint} is mounted read-write through ${m.device}, which is not an LVM logical volume (a LUKS mapping or a RAID array?): devsnap cannot pause it for a point-in-time image.`,
    );
  const name = `${lv.vg}/${lv.lv}`;
  if (reports instanceof Error) {
    const missing = /ENOENT/.test(reports.message);
    return refuse(
      `${m.mountpoint} is on the LVM volume ${name}, but ${missing ? 'the LVM tools (lvs, lvcreate) are not installed' : `LVM could not describe it (${reports.message})`}.`,
      missing ? `Install the lvm2 package for an LVM snapshot. ${OTHER_WAYS}` : OTHER_WAYS,
    );
  }
  try {
    const layout = lvLayout(reports.segments, reports.pvs);
    const pvs: LvmTarget['pvs'] = [];
    const pieces: DiskPiece[] = [];
    for (const pv of parsePvs(reports.pvs)) {
      if (pv.vgName !== undefined && pv.vgName !== lv.vg) continue;
      const at = pvPlace(pv.pvName, layer, source);
      if (!at) {
        if (layout.some((p) => p.pvName === pv.pvName)) {
          return refuse(
            `${m.mountpoint} is on the LVM volume ${name}, which has extents on ${pv.pvName}: that is not a partition of ${sourcePath} (another disk, or a LUKS or RAID device), so an image of ${sourcePath} would not hold the whole volume.`,
            `Image the disks of the volume group from a recovery environment, or use --freeze or --fuzzy.`,
          );
        }
        continue; // a PV of the VG elsewhere, without this LV: not in this disk's image
      }
      pvs.push({ pvName: pv.pvName, diskOffset: at.diskOffset, metadataBytes: pvMetadataBytes(pv) });
      pieces.push(...piecesOnDisk(layout, pv.pvName, at.diskOffset, at.size));
    }
    pieces.sort((a, b) => a.diskOffset - b.diskOffset);
    return { ok: true, mount: m, vg: lv.vg, lv: lv.lv, lvBytes: layout.reduce((n, p) => n + p.length, 0), pieces, pvs };
  } catch (err) {
    return refuse(`${m.mountpoint} (the LVM volume ${name}) cannot be imaged through an LVM snapshot: ${(err as Error).message}`);
  }
}

/** decideLvm for each stacked read-write mount of the source, asking LVM (`report`) about the LVs among them. */
export function lvmDecisions(stacked: MountUse[], info: DeviceInfo, sysfsRoot = LIVE_SYSTEM.sys, report: (argv: string[]) => string = runLvm): LvmDecision[] {
  if (!stacked.length) return [];
  const layer = new BlockLayer({ ...LIVE_SYSTEM, sys: sysfsRoot });
  const place = sourcePlace(info, layer);
  return stacked.map((m) => {
    const lv = lvOfDm(path.basename(m.device), sysfsRoot);
    let reports: LvReports | Error = new Error('not an LV');
    if (lv) {
      try {
        reports = { segments: report(segmentsCommand(lv.vg, lv.lv)), pvs: report(pvsCommand(lv.vg)) };
      } catch (err) {
        reports = err as Error;
      }
    }
    return decideLvm(m, lv, reports, info.path, place, layer);
  });
}

/** The partition of the source holding the start of an LV, for the manifest's methods. */
export function lvPartition(t: LvmTarget, partitions: { index: number; start: number; size: number }[]): number | undefined {
  const first = t.pieces.reduce((a, b) => (b.lvOffset < a.lvOffset ? b : a));
  return partitions.find((p) => first.diskOffset >= p.start && first.diskOffset < p.start + p.size)?.index;
}

const COPY_TRIES = 5;

/**
 * Step 2 of lvm.ts: each PV's label and metadata area, copied while the VG's metadata revision
 * (vg_seqno) held still: the same before and after, else copied again (a bounded number of times).
 */
export function copyMetadata(what: string, vg: string, pvs: LvmTarget['pvs'], report: (argv: string[]) => string = runLvm): MetadataRegion[] {
  const hint = `Wait until nothing changes the volume group ${vg} (lvcreate, lvextend, pvmove…), then take the snapshot again.`;
  try {
    let before = parseVgSeqno(report(vgFreeCommand(vg)));
    for (let i = 0; i < COPY_TRIES; i++) {
      const regions = pvs.map((p) => ({ diskOffset: p.diskOffset, bytes: readMetadataCopy(p.pvName, p.metadataBytes) }));
      const after = parseVgSeqno(report(vgFreeCommand(vg)));
      if (after === before) return regions;
      before = after;
    }
  } catch (err) {
    throw new DevsnapError('BAD_SOURCE', `Could not copy the LVM metadata for the snapshot of ${what}: ${(err as Error).message}`, hint);
  }
  throw new DevsnapError('BAD_SOURCE', `The LVM metadata of ${vg} kept changing while devsnap copied it for the snapshot of ${what} (${COPY_TRIES} tries).`, hint);
}

/** Why a snapshot is no longer usable (from a snapshotStatusCommand report), or null while it is valid. */
export function snapshotProblem(t: Pick<LvmTarget, 'vg' | 'lv' | 'mount'>, snapName: string, statusJson: unknown): DevsnapError | null {
  const s = parseSnapshotStatus(statusJson);
  if (s.valid) return null;
  const why =
    s.percentFull !== null && s.percentFull >= 100 ? 'its copy-on-write area filled up: more was written to the volume while the disk was read than the area holds' : 'LVM reports it invalid';
  return new DevsnapError(
    'BAD_SOURCE',
    `The LVM snapshot ${t.vg}/${snapName} of ${t.vg}/${t.lv} (${t.mount.mountpoint}) became invalid (${why}), so the image would not be one point in time; nothing was committed.`,
    `Take the snapshot again when less is written to ${t.mount.mountpoint}, or give the volume group ${t.vg} more free extents (the area is 10% of the volume, at least 1 GiB, at most what is free), or use --freeze.`,
  );
}

/** A ByteReader over positional reads in which a short read is an error (a removed drive), not zeros. */
function strictReader(fh: SourceRead, size: number, ended: (at: number) => Error): ByteReader {
  return {
    size,
    async read(position, length) {
      const buf = Buffer.allocUnsafe(length);
      for (let done = 0; done < length;) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (!bytesRead) throw ended(position + done);
        done += bytesRead;
      }
      return buf;
    },
  };
}

export interface SnapshotLayer {
  /** "vg/lv", for messages. */
  what: string;
  pieces: DiskPiece[];
  device: SourceRead;
  lvBytes: number;
}

/**
 * The disk as of the snapshots, as a ByteReader and as positional reads (what capture/reads.ts
 * takes): the LVs' extents from their snapshot devices, the PVs' metadata areas from their copies,
 * the rest from the disk. A failed snapshot read goes through `failed` (which may say why better).
 */
export function snapshotReader(
  disk: SourceRead,
  size: number,
  source: string,
  layers: SnapshotLayer[],
  metadata: MetadataRegion[],
  failed: (l: SnapshotLayer, err: Error) => Error = (_, e) => e,
): { reader: ByteReader; read: SourceRead['read'] } {
  const hint = 'Was the drive removed? Check it and try again.';
  const base = strictReader(disk, size, (at) => new DevsnapError('BAD_SOURCE', `${source} ended early at byte ${at}.`, hint));
  const reader = layeredReader(
    base,
    layers.map((l) => {
      const dev = strictReader(l.device, l.lvBytes, (at) => new DevsnapError('BAD_SOURCE', `The LVM snapshot of ${l.what} ended early at byte ${at}.`, hint));
      return { pieces: l.pieces, snapshot: { size: l.lvBytes, read: (p: number, n: number) => dev.read(p, n).catch((err: Error) => Promise.reject(failed(l, err))) } };
    }),
    metadata,
  );
  return {
    reader,
    async read(buf, offset, length, position) {
      (await reader.read(position, length)).copy(buf, offset);
      return { bytesRead: length };
    },
  };
}

export interface LvmSession extends SourceRead {
  /** The same bytes as read(), as a ByteReader. */
  reader: ByteReader;
  /** When the first snapshot was made (ISO 8601). */
  at: string;
  methods: { mountpoint: string; partition?: number; how: 'lvm-snapshot' }[];
  /** Throws a DevsnapError when a snapshot is no longer valid (its COW area filled). Call after the last read. */
  assertValid(): void;
  /** Closes the snapshot devices and removes the snapshots (once; createSnapshot also arranges it at exit). */
  close(): Promise<void>;
}

/**
 * Steps 2–3 and 5–6 of lvm.ts for every target: per VG, the metadata copies, then each LV's
 * snapshot, opened read-only. UNTESTED: needs device-mapper (the parts it calls are tested).
 */
export async function openLvmSession(
  targets: LvmTarget[],
  o: { source: string; fh: SourceRead; size: number; partitions: { index: number; start: number; size: number }[]; log: (m: string) => void },
): Promise<LvmSession> {
  const made: { t: LvmTarget; snap: LvmSnapshot; fh?: fs.promises.FileHandle }[] = [];
  const metadata: MetadataRegion[] = [];
  const what = (t: LvmTarget) => `${t.vg}/${t.lv} (${t.mount.mountpoint})`;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const errors: Error[] = [];
      for (const m of [...made].reverse()) {
        await m.fh?.close().catch((err: Error) => errors.push(err));
        try {
          m.snap.remove(); // a DevsnapError whose hint is the lvremove to run
        } catch (err) {
          errors.push(err as Error);
        }
      }
      if (errors.length) throw errors.find((e) => e instanceof DevsnapError) ?? errors[0];
    })());
  let at: string | undefined;
  try {
    for (const vg of [...new Set(targets.map((t) => t.vg))]) {
      // One snapshot per LV, however many mounts it has (bind mounts).
      const ts = [...new Map(targets.filter((t) => t.vg === vg).map((t) => [t.lv, t])).values()];
      const pvs = [...new Map(ts.flatMap((t) => t.pvs).map((p) => [p.diskOffset, p])).values()];
      metadata.push(...copyMetadata(ts.map(what).join(', '), vg, pvs));
      for (const t of ts) {
        let snap: LvmSnapshot;
        try {
          const cow = cowSize(t.lvBytes, parseVgFree(runLvm(vgFreeCommand(vg))));
          at ??= new Date().toISOString();
          snap = createSnapshot(vg, t.lv, crypto.randomBytes(8).toString('hex'), cow);
          o.log(`Made the LVM snapshot ${vg}/${snap.name} of ${what(t)}, with ${Math.round(cow / (1 << 20))} MiB for what changes meanwhile.`);
        } catch (err) {
          const e = err as Error;
          throw new DevsnapError('BAD_SOURCE', `Could not make an LVM snapshot of ${what(t)}: ${e.message}`, e instanceof DevsnapError && e.hint ? e.hint : OTHER_WAYS);
        }
        const entry: (typeof made)[number] = { t, snap };
        made.push(entry);
        entry.fh = await openDisk(snap.device, 'r').catch((err: Error) =>
          Promise.reject(new DevsnapError('BAD_SOURCE', `Could not open the LVM snapshot ${snap.device} of ${what(t)}: ${err.message}.`, OTHER_WAYS)),
        );
      }
    }
  } catch (err) {
    await close().catch((ce: DevsnapError) => o.log(`${ce.message}${ce.hint ? ` ${ce.hint}` : ''}`));
    throw err;
  }
  const check = (m: (typeof made)[number]) => {
    let json: string;
    try {
      json = runLvm(snapshotStatusCommand(m.t.vg, m.snap.name));
    } catch (err) {
      throw new DevsnapError(
        'BAD_SOURCE',
        `Could not check the LVM snapshot ${m.t.vg}/${m.snap.name} of ${what(m.t)}: ${(err as Error).message}`,
        'Take the snapshot again; if this persists, use --freeze.',
      );
    }
    const problem = snapshotProblem(m.t, m.snap.name, json);
    if (problem) throw problem;
  };
  const layers = made.map((m) => ({ what: what(m.t), pieces: m.t.pieces, device: m.fh!, lvBytes: m.t.lvBytes, m }));
  const view = snapshotReader(o.fh, o.size, o.source, layers, metadata, (l, err) => {
    try {
      check((l as (typeof layers)[number]).m); // an invalidated snapshot fails its reads: say why
    } catch (e) {
      return e as Error;
    }
    return new DevsnapError('BAD_SOURCE', `Reading the LVM snapshot of ${l.what} failed: ${err.message}`, 'Check the drive (dmesg may say more) and take the snapshot again.');
  });
  return {
    reader: view.reader,
    read: view.read,
    at: at ?? new Date().toISOString(),
    methods: targets.map((t) => {
      const partition = lvPartition(t, o.partitions);
      return { mountpoint: t.mount.mountpoint, ...(partition !== undefined ? { partition } : {}), how: 'lvm-snapshot' as const };
    }),
    assertValid: () => made.forEach(check),
    close,
  };
}
