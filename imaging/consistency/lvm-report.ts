// Parsers of LVM's JSON reports (`--reportformat json --units b --nosuffix`: {"report":[{"seg":[{...}]}]},
// numbers as strings) and the COW size policy, for lvm.ts (which has the commands that print them).
import { DevsnapError } from '../core/errors';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** Where one byte range of an LV lives: on which PV, at which byte offset of the PV device. */
export interface LvPiece {
  lvOffset: number;
  pvName: string;
  pvOffset: number;
  length: number;
}

/** One PV of a `pvsCommand` report. */
export interface PvInfo {
  pvName: string;
  vgName?: string;
  /** Where the first extent starts on the PV: [0, peStart) is the label and the first metadata area. */
  peStart: number;
  /** Metadata areas on the PV (a second one, at its end, is not handled: see pvMetadataBytes). */
  mdaCount?: number;
}

export type Row = Record<string, unknown>;

/** The rows of an LVM JSON report (text or parsed) under any of `keys` ("seg", "lv", "pv", "vg"). */
export function reportRows(json: unknown, keys: string[], what: string): Row[] {
  let doc = json;
  if (typeof doc === 'string') {
    try {
      doc = JSON.parse(doc);
    } catch {
      throw new Error(`The ${what} report is not JSON.`);
    }
  }
  const report = (doc as { report?: unknown } | null)?.report;
  if (!Array.isArray(report)) throw new Error(`The ${what} report has no "report" list.`);
  const rows: Row[] = [];
  for (const part of report)
    for (const k of keys) {
      const list = (part as Record<string, unknown> | null)?.[k];
      if (Array.isArray(list)) rows.push(...list.filter((r): r is Row => !!r && typeof r === 'object'));
    }
  return rows;
}

export function field(row: Row, name: string, what: string): string {
  const v = row[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new Error(`The ${what} report has no ${name}.`);
}

function count(row: Row, name: string, what: string): number {
  const s = field(row, name, what).trim();
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new Error(`The ${what} report's ${name} is ${JSON.stringify(s)}, not a whole number (was --units b --nosuffix given?).`);
  return n;
}

export function parsePvs(json: unknown): PvInfo[] {
  return reportRows(json, ['pv'], 'pvs').map((r) => ({
    pvName: field(r, 'pv_name', 'pvs'),
    ...(typeof r.vg_name === 'string' ? { vgName: r.vg_name } : {}),
    peStart: count(r, 'pe_start', 'pvs'),
    ...(r.pv_mda_count !== undefined ? { mdaCount: count(r, 'pv_mda_count', 'pvs') } : {}),
  }));
}

/**
 * How many bytes at the start of a PV hold its label and metadata (what readMetadataCopy reads).
 * A PV with a second metadata area (at its end, `pvcreate --pvmetadatacopies 2`) is refused: that
 * copy would list the snapshot in the image.
 */
export function pvMetadataBytes(pv: PvInfo): number {
  if ((pv.mdaCount ?? 1) > 1) {
    throw new Error(`The PV ${pv.pvName} keeps ${pv.mdaCount} copies of the LVM metadata (one at its end): an LVM snapshot image is supported only with the usual single copy at its start.`);
  }
  if (pv.peStart <= 0 || pv.peStart % 512 !== 0) throw new Error(`The PV ${pv.pvName} reports pe_start ${pv.peStart}, not a positive number of sectors.`);
  return pv.peStart;
}

/** What a segment is when it is not a plain linear mapping (null when it is). */
function notLinear(segtype: string | undefined, ranges: string[]): string | null {
  if (segtype === undefined) {
    if (ranges.length === 0) return 'thin or virtual (no physical extents)';
    return ranges.length > 1 ? 'striped or mirrored' : null;
  }
  if (segtype === 'linear' || (segtype === 'striped' && ranges.length === 1)) return null;
  if (segtype === 'striped') return 'striped';
  if (segtype === 'mirror') return 'mirrored';
  if (segtype.startsWith('raid')) return `RAID (${segtype})`;
  if (segtype.startsWith('thin')) return 'thin';
  return segtype;
}

/** Where each byte range of the LV lives on which PV, from the segmentsCommand and pvsCommand reports. */
export function lvLayout(lvsJson: unknown, pvsJson: unknown): LvPiece[] {
  const segs = reportRows(lvsJson, ['seg', 'lv'], 'lvs');
  if (!segs.length) throw new Error('The lvs report lists no segment.');
  const vg = field(segs[0], 'vg_name', 'lvs');
  const lv = field(segs[0], 'lv_name', 'lvs');
  const peStart = new Map<string, number>();
  for (const pv of parsePvs(pvsJson)) if (pv.vgName === undefined || pv.vgName === vg) peStart.set(pv.pvName, pv.peStart);
  const rows = segs
    .map((r) => {
      if (field(r, 'vg_name', 'lvs') !== vg || field(r, 'lv_name', 'lvs') !== lv) throw new Error(`The lvs report mixes ${vg}/${lv} with other LVs.`);
      return { r, start: count(r, 'seg_start_pe', 'lvs') };
    })
    .sort((a, b) => a.start - b.start);
  const pieces: LvPiece[] = [];
  let next = 0;
  for (const { r, start } of rows) {
    const extent = count(r, 'vg_extent_size', 'lvs');
    const size = count(r, 'seg_size_pe', 'lvs');
    const ranges = field(r, 'seg_pe_ranges', 'lvs').trim().split(/\s+/).filter(Boolean);
    const kind = notLinear(typeof r.segtype === 'string' ? r.segtype : undefined, ranges);
    if (kind) throw new Error(`${vg}/${lv} is a ${kind} LV: devsnap snapshots only linear LVs through LVM.`);
    if (extent <= 0 || size <= 0) throw new Error(`${vg}/${lv} has an empty segment at extent ${start}.`);
    if (start !== next) throw new Error(`${vg}/${lv}'s segments do not follow each other (extent ${start}, expected ${next}).`);
    const m = /^(.+):(\d+)-(\d+)$/.exec(ranges[0]);
    if (!m) throw new Error(`${vg}/${lv} has a segment on ${JSON.stringify(ranges[0])}, not a PV range.`);
    const [pvName, first, last] = [m[1], Number(m[2]), Number(m[3])];
    if (!pvName.startsWith('/')) {
      throw new Error(`${vg}/${lv} has a segment on ${pvName}, not a device (a missing PV, a pvmove in progress or an internal LV).`);
    }
    if (last - first + 1 !== size) throw new Error(`${vg}/${lv}'s segment at extent ${start} spans ${last - first + 1} extents of ${pvName}, not ${size}.`);
    const pe = peStart.get(pvName);
    if (pe === undefined) throw new Error(`${vg}/${lv} is on ${pvName}, which the pvs report does not list.`);
    pieces.push({ lvOffset: start * extent, pvName, pvOffset: pe + first * extent, length: size * extent });
    next = start + size;
  }
  return pieces;
}

function oneVg(json: unknown): Row {
  const rows = reportRows(json, ['vg'], 'vgs');
  if (rows.length !== 1) throw new Error(`The vgs report lists ${rows.length} volume groups, not one.`);
  return rows[0];
}

export function parseVgFree(json: unknown): number {
  return count(oneVg(json), 'vg_free', 'vgs');
}

/** The VG's metadata revision (vg_seqno): the same before and after the metadata copy, or the copy may be torn. */
export function parseVgSeqno(json: unknown): number {
  return count(oneVg(json), 'vg_seqno', 'vgs');
}

/** The snapshot's state: valid only when LVM says so ("0" with --binary) and the COW area is not full. */
export function parseSnapshotStatus(json: unknown): { valid: boolean; percentFull: number | null } {
  const rows = reportRows(json, ['lv'], 'lvs');
  if (rows.length !== 1) throw new Error(`The lvs report lists ${rows.length} LVs, not the snapshot.`);
  const pct = String(rows[0].snap_percent ?? '').trim();
  const percentFull = pct === '' || !Number.isFinite(Number(pct)) ? null : Number(pct);
  return { valid: String(rows[0].lv_snapshot_invalid ?? '') === '0' && percentFull !== null && percentFull < 100, percentFull };
}

/** The COW area's size: 10% of the LV, at least 1 GiB, at most the VG's free space (which must be ≥ 256 MiB). */
export function cowSize(lvBytes: number, vgFreeBytes: number): number {
  if (!Number.isSafeInteger(lvBytes) || lvBytes <= 0 || !Number.isSafeInteger(vgFreeBytes) || vgFreeBytes < 0) throw new Error(`Bad sizes for the COW area: LV ${lvBytes}, free ${vgFreeBytes}.`);
  if (vgFreeBytes < 256 * MiB) {
    throw new DevsnapError(
      'BAD_SOURCE',
      `The volume group has only ${Math.floor(vgFreeBytes / MiB)} MiB free: an LVM snapshot needs at least 256 MiB of free extents to hold what changes while the disk is read.`,
      'Free extents in the volume group (vgextend it with another disk, or shrink a volume that has room to spare), or use another method (--freeze, or imaging from a live system).',
    );
  }
  const want = Math.max(GiB, Math.ceil(lvBytes / 10 / MiB) * MiB);
  return Math.min(want, vgFreeBytes - (vgFreeBytes % 512));
}
