// Partition tables: reads MBR and GPT (with header/entry CRC checks and backup-header fallback), and
// moves a GPT's backup structures to the end of a larger disk after an image was restored onto it.

import type { FileHandle } from 'fs/promises';
import * as zlib from 'zlib';
import { writeFully } from '../core/fsutil';
import { DevsnapError } from '../core/errors';
import { guidString } from '../filesystems/bitmap';
import type { ByteReader } from '../filesystems/types';
import type { PartitionInfo } from '../protocol';

const SECTOR = 512;
const GPT_SIGNATURE = 'EFI PART';
const MBR_PROTECTIVE = 0xee;
const MAX_GPT_ENTRIES_BYTES = 1 << 20; // 16 KiB in practice (128 entries of 128 bytes)

export interface GptLayout {
  headerLba: number; // LBA the header in use was read from (1, or the backup's LBA)
  backupLba: number; // that header's alternate LBA
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  firstUsableLba: number;
  lastUsableLba: number;
}

export interface PartitionTable {
  type: 'gpt' | 'mbr' | 'none';
  sectorSize: 512;
  /** GPT disk GUID, or the MBR disk signature as 0xNNNNNNNN (as fdisk shows it). */
  diskId?: string;
  partitions: PartitionInfo[];
  gpt?: GptLayout;
}

/** Random access read/write to a disk, for the few sectors a GPT relocation rewrites. */
export interface SectorDevice {
  read(position: number, length: number): Promise<Buffer>;
  write(buf: Buffer, position: number): Promise<void>;
}

/** A SectorDevice over an open disk or image file. */
export function handleDevice(fh: FileHandle): SectorDevice {
  return {
    read: async (position, length) => {
      const b = Buffer.alloc(length);
      await fh.read(b, 0, length, position);
      return b;
    },
    write: (b, position) => writeFully(fh, b, position),
  };
}

const GPT_TYPES: Record<string, string> = {
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'EFI System',
  '21686148-6449-6e6f-744e-656564454649': 'BIOS boot',
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'Linux filesystem',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'Linux swap',
  'e6d6d379-f507-44c2-a23c-238f2a3df928': 'Linux LVM',
  'a19d880f-05fc-4d3b-a006-743f0f84911e': 'Linux RAID',
  '4f68bce3-e8cd-4db1-96e7-fbcaf984b709': 'Linux root (x86-64)',
  'b921b045-1df0-41c3-af44-4c6f280d3fae': 'Linux root (ARM-64)',
  '933ac7e1-2eb4-4f13-b844-0e14e2aef915': 'Linux home',
  'bc13c2ff-59e6-4262-a352-b275fd6f7172': 'Linux extended boot',
  'ca7d7ccb-63ed-4c53-861c-1742536059cc': 'Linux LUKS',
  'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': 'Microsoft basic data',
  'e3c9e316-0b5c-4db8-817d-f92df00215ae': 'Microsoft reserved',
  'de94bba4-06d1-4d40-a16a-bfd50179d6ac': 'Windows recovery environment',
  '48465300-0000-11aa-aa11-00306543ecac': 'Apple HFS/HFS+',
  '7c3457ef-0000-11aa-aa11-00306543ecac': 'Apple APFS',
};

const MBR_TYPES: Record<number, string> = {
  0x01: 'FAT12',
  0x04: 'FAT16 <32M',
  0x05: 'Extended',
  0x06: 'FAT16',
  0x07: 'HPFS/NTFS/exFAT',
  0x0b: 'W95 FAT32',
  0x0c: 'W95 FAT32 (LBA)',
  0x0e: 'W95 FAT16 (LBA)',
  0x0f: 'W95 Extended (LBA)',
  0x82: 'Linux swap',
  0x83: 'Linux',
  0x85: 'Linux extended',
  0x8e: 'Linux LVM',
  0xee: 'GPT',
  0xef: 'EFI (FAT-12/16/32)',
  0xfd: 'Linux raid autodetect',
};

export function describePartitionType(type: string): string | undefined {
  return type.startsWith('0x') ? MBR_TYPES[parseInt(type, 16)] : GPT_TYPES[type];
}

/** A short human description of a table's identity, e.g. 'GPT 1b2c…' or 'MBR 0x1234abcd'. */
export function describeDiskId(t: PartitionTable): string {
  if (t.type === 'none') return 'no partition table';
  return `${t.type.toUpperCase()}${t.diskId ? ' ' + t.diskId : ''}`;
}

/** `warn` hears what was damaged and how it was worked around (a damaged GPT header). */
export async function readPartitionTable(disk: ByteReader, warn: (message: string) => void = () => {}): Promise<PartitionTable> {
  const none: PartitionTable = { type: 'none', sectorSize: SECTOR, partitions: [] };
  if (disk.size < 2 * SECTOR) return none;
  const mbr = await disk.read(0, SECTOR);
  const entries = mbrEntries(mbr);
  if (entries?.some((e) => e.type === MBR_PROTECTIVE) || (!entries && (await hasGptSignature(disk, 1)))) {
    return readGpt(disk, warn);
  }
  if (!entries) return none;

  // Logical partitions inside an extended partition are not listed: the extended partition is
  // reported (and imaged raw) as a whole, which includes them and their EBR chain.
  const partitions: PartitionInfo[] = [];
  for (const e of entries) {
    if (e.type === 0) continue;
    const type = '0x' + e.type.toString(16).padStart(2, '0');
    const info: PartitionInfo = { index: e.index, start: e.lba * SECTOR, size: e.sectors * SECTOR, type };
    const typeName = MBR_TYPES[e.type];
    if (typeName) info.typeName = typeName;
    partitions.push(info);
  }
  return { type: 'mbr', sectorSize: SECTOR, diskId: '0x' + mbr.readUInt32LE(440).toString(16).padStart(8, '0'), partitions };
}

interface MbrEntry {
  index: number;
  type: number;
  lba: number;
  sectors: number;
}

/** The four primary entries, or null when sector 0 is not an MBR (no signature, or a filesystem boot sector). */
function mbrEntries(mbr: Buffer): MbrEntry[] | null {
  if (mbr.readUInt16LE(510) !== 0xaa55) return null;
  // A FAT/NTFS boot sector also ends in 55 AA; its boot code overlaps the partition entries.
  const oem = mbr.toString('latin1', 3, 11);
  if (oem === 'NTFS    ' || mbr.toString('latin1', 0x36, 0x39) === 'FAT' || mbr.toString('latin1', 0x52, 0x57) === 'FAT32') return null;
  const entries: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const e = mbr.subarray(446 + 16 * i, 462 + 16 * i);
    if (e[0] !== 0 && e[0] !== 0x80) return null; // boot flag must be 0x00 or 0x80
    entries.push({ index: i + 1, type: e[4], lba: e.readUInt32LE(8), sectors: e.readUInt32LE(12) });
  }
  return entries;
}

/**
 * What is wrong with where each partition lies: past the end of the disk, or overlapping another
 * partition (one table entry written over another, or a hand-edited table). A partition's filesystem
 * describes only its own blocks, so a partition with any of these is imaged in full, never through a
 * free-block map. Keyed by partition index; partitions without problems are absent.
 */
export function layoutProblems(partitions: PartitionInfo[], diskSize: number): Map<number, string> {
  const out = new Map<number, string[]>();
  const add = (i: number, why: string) => out.set(i, [...(out.get(i) ?? []), why]);
  for (const p of partitions) {
    if (p.size <= 0) add(p.index, 'has no bytes (its last sector is before its first)');
    else if (p.start >= diskSize) add(p.index, `starts at byte ${p.start}, past the end of the disk (${diskSize} bytes)`);
    else if (p.start + p.size > diskSize) add(p.index, `ends at byte ${p.start + p.size}, past the end of the disk (${diskSize} bytes)`);
    for (const q of partitions) {
      if (q !== p && p.start < q.start + q.size && q.start < p.start + p.size && p.size > 0 && q.size > 0) {
        add(p.index, `overlaps partition ${q.index} (bytes ${Math.max(p.start, q.start)}–${Math.min(p.start + p.size, q.start + q.size) - 1})`);
      }
    }
  }
  return new Map([...out].map(([i, list]) => [i, list.join('; ')]));
}

async function hasGptSignature(disk: ByteReader, lba: number): Promise<boolean> {
  return (await disk.read(lba * SECTOR, 8)).toString('latin1') === GPT_SIGNATURE;
}

interface GptHeader {
  layout: GptLayout;
  diskGuid: string;
  entriesCrc: number;
  raw: Buffer;
}

/** Parses and validates a GPT header read from `lba`; null when invalid. */
function parseGptHeader(sector: Buffer, lba: number): GptHeader | null {
  if (sector.toString('latin1', 0, 8) !== GPT_SIGNATURE) return null;
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < 92 || headerSize > SECTOR) return null;
  if (sector.readUInt32LE(16) !== headerCrc(sector)) return null;
  const layout: GptLayout = {
    headerLba: Number(sector.readBigUInt64LE(24)),
    backupLba: Number(sector.readBigUInt64LE(32)),
    firstUsableLba: Number(sector.readBigUInt64LE(40)),
    lastUsableLba: Number(sector.readBigUInt64LE(48)),
    entriesLba: Number(sector.readBigUInt64LE(72)),
    entryCount: sector.readUInt32LE(80),
    entrySize: sector.readUInt32LE(84),
  };
  // Entries are 128 × 2^n bytes (UEFI 5.3.3); the array is bounded so a crafted header cannot make us allocate gigabytes.
  const { entrySize, entryCount } = layout;
  if (layout.headerLba !== lba || entrySize < 128 || entrySize > 4096 || (entrySize & (entrySize - 1)) !== 0 || entryCount * entrySize > MAX_GPT_ENTRIES_BYTES) return null;
  return { layout, diskGuid: guidString(sector.subarray(56, 72)), entriesCrc: sector.readUInt32LE(88), raw: sector };
}

/** CRC32 of the header with its own CRC field taken as zero. */
function headerCrc(sector: Buffer): number {
  const h = Buffer.from(sector.subarray(0, sector.readUInt32LE(12)));
  h.writeUInt32LE(0, 16);
  return zlib.crc32(h);
}

/**
 * What in a header whose CRC holds points beyond a disk whose last sector is `lastLba`: a crafted header,
 * or a disk image cut short. `wild` when a value is no whole number a manifest can hold (above 2^53; 2^64 − 1
 * read into a double is not even an integer): such a header is unusable, not just describing a larger disk.
 */
function gptLayoutProblem(h: GptHeader, lastLba: number): { problem: string; wild: boolean } | null {
  const fields: [string, number][] = [
    ['alternate LBA', 32],
    ['first usable LBA', 40],
    ['last usable LBA', 48],
    ['partition entries LBA', 72],
  ];
  let beyond: string | null = null;
  for (const [name, off] of fields) {
    const v = h.raw.readBigUInt64LE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return { problem: `its ${name} is ${v}, beyond any disk`, wild: true };
    if (v > BigInt(lastLba)) beyond ??= `its ${name} ${v} is beyond the disk's last sector ${lastLba}`;
  }
  return beyond ? { problem: beyond, wild: false } : null;
}

interface GptRead {
  header: GptHeader;
  entries: Buffer | null;
  problem: { problem: string; wild: boolean } | null;
}

/** The header at `lba` (null when its signature or CRC is bad), its entries (null when their CRC fails or the header is wild), and what is wrong with its values. */
async function readGptAt(disk: ByteReader, lba: number, lastLba: number): Promise<GptRead | null> {
  if ((lba + 1) * SECTOR > disk.size) return null;
  const header = parseGptHeader(await disk.read(lba * SECTOR, SECTOR), lba);
  if (!header) return null;
  const problem = gptLayoutProblem(header, lastLba);
  if (problem?.wild) return { header, entries: null, problem };
  const { entriesLba, entryCount, entrySize } = header.layout;
  const entries = await disk.read(entriesLba * SECTOR, entryCount * entrySize);
  return { header, entries: zlib.crc32(entries) === header.entriesCrc ? entries : null, problem };
}

async function readGpt(disk: ByteReader, warn: (message: string) => void): Promise<PartitionTable> {
  const lastLba = Math.floor(disk.size / SECTOR) - 1;
  const sound = (r: GptRead | null): r is GptRead & { entries: Buffer } => !!r?.entries && !r.problem;
  const primary = await readGptAt(disk, 1, lastLba);
  const backup = sound(primary) ? null : await readGptAt(disk, lastLba, lastLba);
  let found: (GptRead & { entries: Buffer }) | null = sound(primary) ? primary : sound(backup) ? backup : null;
  const problem = primary?.problem?.problem ?? backup?.problem?.problem;
  if (found && found === backup) {
    warn(
      `The primary GPT header is damaged (${primary?.problem?.problem ?? 'bad signature or CRC, or damaged partition entries'}); the backup header at the end of the disk is used. Repair the table with gdisk on the source.`,
    );
  } else if (!found && primary?.entries && primary.problem && !primary.problem.wild) {
    // A disk cut short (an image copied to a smaller file): the table is read as it is; partitions past
    // the end are imaged in full (layoutProblems).
    found = primary as GptRead & { entries: Buffer };
    warn(`The GPT header describes a disk larger than this one (${problem}) and there is no backup header at the end: the table is read as it is. Was the disk (image) cut short?`);
  } else if (!found && problem) {
    // A header whose CRC holds but whose numbers fit no disk: no layout can be trusted, so the disk is
    // imaged as if it had no table (every byte), rather than refused.
    warn(`The GPT partition table is damaged (${problem}) and there is no sound backup header: the disk is imaged in full as if it had no partition table. Repair the table with gdisk on the source.`);
    return { type: 'none', sectorSize: SECTOR, partitions: [] };
  }
  if (!found) {
    throw new DevsnapError(
      'BAD_SOURCE',
      'The disk has a GPT partition table, but both its primary and backup headers are damaged (bad signature or CRC).',
      'Repair the table with gdisk (it can rebuild from either copy), or image the disk raw.',
    );
  }
  const { header, entries } = found;
  const partitions: PartitionInfo[] = [];
  for (let i = 0; i < header.layout.entryCount; i++) {
    const e = entries.subarray(i * header.layout.entrySize, (i + 1) * header.layout.entrySize);
    if (e.subarray(0, 16).every((b) => b === 0)) continue; // unused entry
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    const type = guidString(e.subarray(0, 16));
    // An entry that ends before it starts has no bytes (layoutProblems reports it).
    const info: PartitionInfo = { index: i + 1, start: first * SECTOR, size: Math.max(0, last - first + 1) * SECTOR, type, uuid: guidString(e.subarray(16, 32)) };
    const typeName = GPT_TYPES[type];
    if (typeName) info.typeName = typeName;
    const name = utf16z(e.subarray(56, 128));
    if (name) info.name = name;
    partitions.push(info);
  }
  return { type: 'gpt', sectorSize: SECTOR, diskId: header.diskGuid, partitions, gpt: header.layout };
}

function utf16z(b: Buffer): string {
  let end = 0;
  while (end + 1 < b.length && (b[end] || b[end + 1])) end += 2;
  return b.toString('utf16le', 0, end);
}

/**
 * After a GPT disk image was written to a disk of `diskSize` bytes (usually larger), puts the backup
 * partition entries and backup header at the new end, points the primary header at them (alternate
 * LBA, last usable LBA, CRCs) and resizes the protective MBR entry. No-op when already in place.
 */
export async function relocateGptBackup(dev: SectorDevice, diskSize: number, always = false): Promise<void> {
  const lastLba = Math.floor(diskSize / SECTOR) - 1;
  const primary = parseGptHeader(await dev.read(SECTOR, SECTOR), 1);
  if (!primary) throw new DevsnapError('BAD_TARGET', 'The restored disk has no valid primary GPT header to update.', 'Check the image with `devsnap check`; repair the table with gdisk.');
  const { layout } = primary;
  if (layout.backupLba === lastLba && !always) return;

  const entryBytes = layout.entryCount * layout.entrySize;
  const entries = await dev.read(layout.entriesLba * SECTOR, entryBytes);
  const backupEntriesLba = lastLba - Math.ceil(entryBytes / SECTOR);
  const lastUsable = backupEntriesLba - 1;
  let highest = 0;
  for (let i = 0; i < layout.entryCount; i++) {
    const e = entries.subarray(i * layout.entrySize, (i + 1) * layout.entrySize);
    if (!e.subarray(0, 16).every((b) => b === 0)) highest = Math.max(highest, Number(e.readBigUInt64LE(40)));
  }
  if (highest > lastUsable) {
    throw new DevsnapError('BAD_TARGET', `The target disk (${diskSize} bytes) is too small for the partitions of this GPT disk.`, 'Restore to a disk at least as large as the source.');
  }

  const hdr = Buffer.from(primary.raw);
  hdr.writeBigUInt64LE(BigInt(lastLba), 32);
  hdr.writeBigUInt64LE(BigInt(lastUsable), 48);
  hdr.writeUInt32LE(headerCrc(hdr), 16);

  const backup = Buffer.from(hdr);
  backup.writeBigUInt64LE(BigInt(lastLba), 24);
  backup.writeBigUInt64LE(1n, 32);
  backup.writeBigUInt64LE(BigInt(backupEntriesLba), 72);
  backup.writeUInt32LE(headerCrc(backup), 16);

  const oldBackupLba = layout.backupLba;
  await dev.write(entries, backupEntriesLba * SECTOR);
  await dev.write(backup, lastLba * SECTOR);
  await dev.write(hdr, SECTOR);
  // The old backup header now lies inside the usable area; erase it so no tool mistakes it for current.
  if (oldBackupLba < lastLba && oldBackupLba > layout.lastUsableLba) await dev.write(Buffer.alloc(SECTOR), oldBackupLba * SECTOR);

  const mbr = await dev.read(0, SECTOR);
  for (let i = 0; i < 4; i++) {
    const off = 446 + 16 * i;
    if (mbr[off + 4] === MBR_PROTECTIVE) {
      mbr.writeUInt32LE(Math.min(lastLba, 0xffffffff), off + 12);
      await dev.write(mbr, 0);
      break;
    }
  }
}

/**
 * After the first sectors of a disk image (its table) were written to a disk of `diskSize` bytes,
 * moves and resizes partitions in that table: `ranges` maps a partition's index to its new start and
 * size in bytes (sector multiples). A GPT keeps every entry's type, GUID, name and attributes (only the
 * first and last LBA change; the entries' and headers' CRCs are recomputed) and gets its backup at the
 * disk's new end; an MBR's primary entries get the new LBA and sector count.
 */
export async function rewritePartitionRanges(dev: SectorDevice, diskSize: number, type: 'gpt' | 'mbr', ranges: Map<number, { start: number; size: number }>): Promise<void> {
  for (const [i, r] of ranges) if (r.start % SECTOR || r.size % SECTOR || r.size <= 0) throw new DevsnapError('INTERNAL', `Partition ${i}: a new range must be whole sectors (${r.start}+${r.size}).`);
  if (type === 'mbr') {
    const mbr = await dev.read(0, SECTOR);
    for (const [index, r] of ranges) {
      if (index < 1 || index > 4) throw new DevsnapError('BAD_TARGET', `Partition ${index} is not a primary MBR partition; it cannot be moved.`);
      const off = 446 + 16 * (index - 1);
      if (r.start / SECTOR > 0xffffffff || r.size / SECTOR > 0xffffffff) throw new DevsnapError('BAD_TARGET', `Partition ${index} would lie beyond what an MBR can address (2 TiB).`);
      mbr.writeUInt32LE(r.start / SECTOR, off + 8);
      mbr.writeUInt32LE(r.size / SECTOR, off + 12);
      // CHS fields: the "beyond CHS" values every current tool writes and reads past.
      mbr.fill(0xfe, off + 1, off + 2);
      mbr.fill(0xff, off + 2, off + 4);
      mbr.fill(0xfe, off + 5, off + 6);
      mbr.fill(0xff, off + 6, off + 8);
    }
    await dev.write(mbr, 0);
    return;
  }
  const primary = parseGptHeader(await dev.read(SECTOR, SECTOR), 1);
  if (!primary) throw new DevsnapError('BAD_TARGET', 'The restored disk has no valid primary GPT header to update.', 'Check the image with `devsnap check`; repair the table with gdisk.');
  const { layout } = primary;
  const entries = await dev.read(layout.entriesLba * SECTOR, layout.entryCount * layout.entrySize);
  for (const [index, r] of ranges) {
    if (index < 1 || index > layout.entryCount) throw new DevsnapError('INTERNAL', `The GPT has no entry ${index}.`);
    const e = entries.subarray((index - 1) * layout.entrySize, index * layout.entrySize);
    e.writeBigUInt64LE(BigInt(r.start / SECTOR), 32);
    e.writeBigUInt64LE(BigInt((r.start + r.size) / SECTOR - 1), 40);
  }
  const hdr = Buffer.from(primary.raw);
  hdr.writeUInt32LE(zlib.crc32(entries), 88);
  // The backup now lies beyond a smaller disk: the primary names the new end (relocateGptBackup moves it there).
  hdr.writeBigUInt64LE(BigInt(Math.min(layout.backupLba, Math.floor(diskSize / SECTOR) - 1)), 32);
  hdr.writeUInt32LE(headerCrc(hdr), 16);
  await dev.write(entries, layout.entriesLba * SECTOR);
  await dev.write(hdr, SECTOR);
  await relocateGptBackup(dev, diskSize, true);
}

/** A GUID string (as guidString prints it) in GPT's mixed-endian bytes. */
function guidBytes(g: string): Buffer {
  const h = g.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(h)) throw new DevsnapError('INTERNAL', `Not a GUID: ${g}`);
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
}

/**
 * Gives a GPT disk a new disk GUID and its partitions (by index) new unique GUIDs, in the primary
 * header and entries (CRCs recomputed) and in the backup at the disk's end. Returns what changed.
 */
export async function rewriteGptIds(
  dev: SectorDevice,
  diskSize: number,
  diskGuid: string,
  partGuids: Map<number, string>,
): Promise<{ disk: { from: string; to: string }; partitions: Map<number, { from: string; to: string }> }> {
  const primary = parseGptHeader(await dev.read(SECTOR, SECTOR), 1);
  if (!primary) throw new DevsnapError('BAD_TARGET', 'The restored disk has no valid primary GPT header to update.', 'Check the image with `devsnap check`; repair the table with gdisk.');
  const { layout } = primary;
  const entries = await dev.read(layout.entriesLba * SECTOR, layout.entryCount * layout.entrySize);
  const partitions = new Map<number, { from: string; to: string }>();
  for (const [index, g] of partGuids) {
    if (index < 1 || index > layout.entryCount) continue;
    const e = entries.subarray((index - 1) * layout.entrySize, index * layout.entrySize);
    if (e.subarray(0, 16).every((b) => b === 0)) continue; // an unused entry
    partitions.set(index, { from: guidString(e.subarray(16, 32)), to: g.toLowerCase() });
    guidBytes(g).copy(e, 16);
  }
  const hdr = Buffer.from(primary.raw);
  const from = guidString(hdr.subarray(56, 72));
  guidBytes(diskGuid).copy(hdr, 56);
  hdr.writeUInt32LE(zlib.crc32(entries), 88);
  hdr.writeUInt32LE(headerCrc(hdr), 16);
  await dev.write(entries, layout.entriesLba * SECTOR);
  await dev.write(hdr, SECTOR);
  await relocateGptBackup(dev, diskSize, true); // the backup copies the new primary
  return { disk: { from, to: diskGuid.toLowerCase() }, partitions };
}
