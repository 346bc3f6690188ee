// LVM native snapshots for a point-in-time image of a disk whose mounted filesystems live on LVM
// logical volumes (LVs) whose physical volumes (PVs) are partitions of that disk.
//
// UNTESTED ON A REAL DEVICE-MAPPER: the project's machines have no device-mapper, so `lvcreate -s`
// has never run from here. What is tested (test/unit/lvm.test.ts): the command lines (and, where lvm2
// is installed, that real LVM 2.03 accepts them and prints what the parsers read), the report parsers
// on real report text, lvOfDm on constructed sysfs trees, the metadata copy on a loop device, and the
// overlay reader (lvm-overlay.ts) on real files.
//
// The sequence a caller follows (capture/lvm-source.ts wires it into a snapshot):
//  1. lvOfDm for each dm holder of the disk with a read-write mount; lvLayout (segmentsCommand +
//     pvsCommand) — it throws for anything but linear LVs, and the snapshot is refused with the reason.
//  2. For every PV of the VG that is a partition of the disk: readMetadataCopy (its label and
//     metadata area, [0, pe_start)), BEFORE the snapshot exists, so the image's metadata does not
//     list it (its COW extents are free space there); vg_seqno (vgFreeCommand) the same before and
//     after the copies, or they may be torn by a concurrent change: copy again.
//  3. createSnapshot (size from cowSize(vgFree)); LVM suspends the origin, which freezes its
//     filesystem, so the snapshot holds a consistent filesystem.
//  4. Image through overlayReader: the LV's extents on the disk are read from the snapshot device.
//  5. snapshotStatusCommand: the snapshot must still be valid (a full COW area invalidates it).
//  6. remove() in a finally (also registered for process exit).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../core/errors';
import { asRootSync, childCommand } from '../disk/privilege';
import { field, reportRows } from './lvm-report';

export { layeredReader, overlayReader, piecesOnDisk } from './lvm-overlay';
export type { DiskPiece, MetadataRegion } from './lvm-overlay';
export { cowSize, lvLayout, parsePvs, parseSnapshotStatus, parseVgFree, parseVgSeqno, pvMetadataBytes } from './lvm-report';
export type { LvPiece, PvInfo } from './lvm-report';

const MiB = 1 << 20;

// lvm(8) "VALID NAMES": [A-Za-z0-9+_.-], not starting with '-', not "." or "..", at most 127
// characters; some names and substrings are reserved for LVM's internal LVs.
const NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const RESERVED_LV = /_(cdata|cmeta|corig|mlog|mimage|pmspare|rimage|rmeta|tdata|tmeta|vorigin|vdata)/;

function checkName(kind: 'volume group' | 'logical volume', name: string): void {
  const ok = typeof name === 'string' && NAME.test(name) && name !== '.' && name !== '..' && (kind === 'volume group' || (!RESERVED_LV.test(name) && name !== 'snapshot' && name !== 'pvmove'));
  if (!ok) throw new Error(`${JSON.stringify(name)} is not a valid LVM ${kind} name (letters, digits and + _ . - only, not starting with '-').`);
}

const SNAP_PREFIX = 'devsnap-';

function checkSnapName(name: string): void {
  checkName('logical volume', name);
  // Only ever create or remove LVs named by us: a wrong name must not reach lvremove.
  if (!name.startsWith(SNAP_PREFIX) || name.length === SNAP_PREFIX.length) throw new Error(`${JSON.stringify(name)} is not a devsnap snapshot name (devsnap-<id>).`);
}

/** The snapshot LV's name for a devsnap snapshot id. */
export function snapshotName(id: string): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9+_.]{0,63}$/.test(id)) throw new Error(`${JSON.stringify(id)} is not a valid snapshot id for an LVM snapshot name.`);
  const name = `${SNAP_PREFIX}${id}`;
  checkSnapName(name);
  return name;
}

/** Environment for LVM children: without it, LVM warns on stderr about every inherited descriptor. */
export const LVM_ENV: Record<string, string> = { LVM_SUPPRESS_FD_WARNINGS: '1' };

// ---------------------------------------------------------------------------------------------
// Which LV a dm device is

/**
 * Reads one name of a dm name ("vg-lv", '-' doubled inside each): the unescaped name and where the
 * single '-' after it is (-1 at the end).
 */
function dmPart(s: string, from: number): { name: string; next: number } {
  let name = '';
  for (let i = from; i < s.length; i++) {
    if (s[i] !== '-') name += s[i];
    else if (s[i + 1] === '-') name += s[i++];
    else return { name, next: i };
  }
  return { name, next: -1 };
}

/** The LV behind a dm device, from sysfs (dm/uuid "LVM-<vg uuid><lv uuid>", dm/name "vg-lv"); null when not an LVM LV. */
export function lvOfDm(dmName: string, sysfsRoot = '/sys'): { vg: string; lv: string } | null {
  if (!/^dm-\d+$/.test(dmName)) return null;
  const dir = path.join(sysfsRoot, 'block', dmName, 'dm');
  let uuid: string;
  let name: string;
  try {
    uuid = fs.readFileSync(path.join(dir, 'uuid'), 'utf8').trim();
    name = fs.readFileSync(path.join(dir, 'name'), 'utf8').trim();
  } catch {
    return null;
  }
  // A visible LV has exactly the two 32-character uuids; LVM's hidden layers carry a suffix
  // ("-real", "-cow" under a snapshot, "-tpool" of a thin pool…) and are not LVs to snapshot.
  if (!/^LVM-[A-Za-z0-9]{64}$/.test(uuid)) return null;
  const vg = dmPart(name, 0);
  if (vg.next < 0) return null;
  const lv = dmPart(name, vg.next + 1);
  if (lv.next >= 0) return null; // a layer suffix in the name too
  try {
    checkName('volume group', vg.name);
    checkName('logical volume', lv.name);
  } catch {
    return null;
  }
  return { vg: vg.name, lv: lv.name };
}

/** /dev/mapper's name of an LV ('-' doubled in each name, joined by one '-'). */
export function dmPath(vg: string, lv: string): string {
  checkName('volume group', vg);
  checkName('logical volume', lv);
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

// ---------------------------------------------------------------------------------------------
// Command lines (argv arrays, program first: never a shell)

export function createSnapshotCommand(vg: string, lv: string, snapName: string, cowBytes: number): string[] {
  checkName('volume group', vg);
  checkName('logical volume', lv);
  checkSnapName(snapName);
  if (!Number.isSafeInteger(cowBytes) || cowBytes <= 0 || cowBytes % 512 !== 0) throw new Error(`COW size ${cowBytes} is not a positive number of 512-byte sectors.`);
  return ['lvcreate', '--snapshot', '--name', snapName, '--size', `${cowBytes}b`, `${vg}/${lv}`];
}

export function removeSnapshotCommand(vg: string, snapName: string): string[] {
  checkName('volume group', vg);
  checkSnapName(snapName);
  return ['lvremove', '--yes', `${vg}/${snapName}`];
}

const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];

/** The LV's segments. `segtype` is asked for too: it names what is not linear. */
export function segmentsCommand(vg: string, lv: string): string[] {
  checkName('volume group', vg);
  checkName('logical volume', lv);
  return ['lvs', ...REPORT, '-o', 'vg_name,lv_name,vg_extent_size,seg_start_pe,seg_size_pe,seg_pe_ranges,segtype', '--segments', `${vg}/${lv}`];
}

/** The VG's PVs (pvs takes PV names as arguments, not a VG: a selection picks the VG's). */
export function pvsCommand(vg: string): string[] {
  checkName('volume group', vg);
  return ['pvs', ...REPORT, '-o', 'pv_name,vg_name,pe_start,pv_mda_count', '--select', `vg_name=${vg}`];
}

/** The VG's free space (and its metadata revision, to tell a concurrent change around the metadata copy). */
export function vgFreeCommand(vg: string): string[] {
  checkName('volume group', vg);
  return ['vgs', ...REPORT, '-o', 'vg_name,vg_free,vg_extent_size,vg_seqno', vg];
}

/** Whether the snapshot is still valid, and how full its COW area is. */
export function snapshotStatusCommand(vg: string, snapName: string): string[] {
  checkName('volume group', vg);
  checkSnapName(snapName);
  return ['lvs', '--reportformat', 'json', '--binary', '-o', 'lv_name,lv_snapshot_invalid,snap_percent', `${vg}/${snapName}`];
}

/** What to tell the user to remove a snapshot left by a killed run. */
export function removalHint(vg: string, snapName: string): string {
  return removeSnapshotCommand(vg, snapName).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Running the commands

function run(argv: string[], opts: { maxBuffer?: number } = {}): { status: number | null; stdout: Buffer; stderr: string; error?: Error } {
  const c = childCommand(argv[0], argv.slice(1), LVM_ENV);
  const r = asRootSync(() => spawnSync(c.file, c.args, { env: c.env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: opts.maxBuffer ?? 64 * MiB }));
  return { status: r.status, stdout: r.stdout ?? Buffer.alloc(0), stderr: (r.stderr ?? Buffer.alloc(0)).toString('utf8'), error: r.error };
}

/** Runs an LVM report or change command; its stdout, or an Error with LVM's message. */
export function runLvm(argv: string[]): string {
  const r = run(argv);
  if (r.status !== 0) {
    const why = (r.error?.message ?? r.stderr)
      .trim()
      .split('\n')
      .filter((l) => !/^\s*WARNING: /.test(l))
      .join(' ')
      .replace(/\s+/g, ' ');
    throw new Error(`${argv[0]} failed: ${why || `exit ${r.status}`}`);
  }
  return r.stdout.toString('utf8');
}

/**
 * The first `bytes` of a PV device (its label and metadata area), read with O_DIRECT through the PV
 * device itself: LVM writes it that way, and the whole disk's page cache may hold an older copy.
 */
export function readMetadataCopy(pvPath: string, bytes: number): Buffer {
  if (!path.isAbsolute(pvPath) || /[\n\0]/.test(pvPath)) throw new Error(`${JSON.stringify(pvPath)} is not a device path.`);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % 512 !== 0) throw new Error(`${bytes} is not a positive number of 512-byte sectors.`);
  // O_DIRECT needs whole logical blocks: 4096 suits every disk when the size allows it.
  const bs = bytes % 4096 === 0 ? 4096 : 512;
  const r = run(['dd', `if=${pvPath}`, 'iflag=direct', `bs=${bs}`, `count=${bytes / bs}`, 'status=none'], { maxBuffer: bytes + 4096 });
  if (r.status !== 0 || r.stdout.length !== bytes) {
    throw new Error(`Could not read the LVM metadata area of ${pvPath} (${bytes} bytes): ${(r.error?.message ?? r.stderr).trim() || `got ${r.stdout.length} bytes`}.`);
  }
  return r.stdout;
}

export interface LvmSnapshot {
  vg: string;
  name: string;
  /** The snapshot's device, to read the LV's content as it was when the snapshot was made. */
  device: string;
  /**
   * Removes the snapshot LV (once; also run at process exit). Close the snapshot device first: LVM
   * refuses to remove an open LV. Throws a DevsnapError whose hint is the lvremove command to run by hand.
   */
  remove(): void;
}

/** Creates the snapshot LV and arranges its removal at process exit (the caller also removes it in a finally). */
export function createSnapshot(vg: string, lv: string, id: string, cowBytes: number): LvmSnapshot {
  const name = snapshotName(id);
  runLvm(createSnapshotCommand(vg, lv, name, cowBytes));
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    process.removeListener('exit', onExit);
    try {
      runLvm(removeSnapshotCommand(vg, name));
    } catch (e) {
      throw new DevsnapError('INTERNAL', `Could not remove the LVM snapshot ${vg}/${name}: ${(e as Error).message}.`, `Remove it with: ${removalHint(vg, name)}`);
    }
  };
  // At exit nothing can be thrown to anyone: say what is left and how to remove it.
  const onExit = () => {
    try {
      remove();
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n${(e as DevsnapError).hint ?? ''}\n`);
    }
  };
  process.once('exit', onExit);
  return { vg, name, device: dmPath(vg, name), remove };
}

/** Lists devsnap snapshot LVs in every VG: leftovers of a killed run when no devsnap is running. */
export function leftoverSnapshotsCommand(): string[] {
  return ['lvs', '--reportformat', 'json', '-o', 'vg_name,lv_name', '--select', `lv_name=~^${SNAP_PREFIX}`];
}

/** The leftovers of a leftoverSnapshotsCommand report, each with the command that removes it. */
export function parseLeftovers(json: unknown): { vg: string; name: string; removeCommand: string }[] {
  return reportRows(json, ['lv'], 'lvs').flatMap((r) => {
    const vg = field(r, 'vg_name', 'lvs');
    const name = field(r, 'lv_name', 'lvs');
    try {
      return [{ vg, name, removeCommand: removalHint(vg, name) }];
    } catch {
      return []; // not one of ours after all (the selection is a regular expression)
    }
  });
}

/** What LVM snapshots do and do not cover, for the README. */
export const LVM_LIMITS = `LVM snapshots (untested: the project's test machines have no device-mapper; the command lines, \
report parsing and the image overlay are tested, \`lvcreate --snapshot\` itself has never run in a test).
- Supported: linear LVs (one or more segments, possibly on several PVs) whose PVs are partitions of \
the disk being imaged; the parts of an LV on other disks are not in the image of this disk. Striped, \
mirrored, RAID, thin, cache and VDO LVs, LVs being moved by pvmove and PVs with a second metadata copy \
at their end are refused with a message saying why (--freeze, --fuzzy or a recovery environment remain).
- The volume group needs free extents for the snapshot's copy-on-write area: 10% of the LV, at least \
1 GiB, at most what is free; with less than 256 MiB free, devsnap refuses and asks you to free extents \
in the volume group or use another method. If more than that changes while the disk is read, the \
snapshot becomes invalid and the image fails rather than being inconsistent.
- The image holds the LVM metadata as it was just before the snapshot was created, so a restored disk \
does not list the snapshot (its extents are free space there). A change to the volume group by another \
program in the instant between that copy and the snapshot is not seen.
- The snapshot LV is named devsnap-<snapshot id>. It is removed when imaging ends (in a finally) and \
when the process exits; a run killed outright (SIGKILL, power loss) leaves it behind. The next \
snapshot names such leftovers with the command that removes each, such as: \
lvremove --yes VG/devsnap-0123456789abcdef (\`lvs -S 'lv_name=~^devsnap-'\` lists them).`;
