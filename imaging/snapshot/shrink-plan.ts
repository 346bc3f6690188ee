// Where each partition goes when a whole disk is restored onto a smaller one: the partitions keep
// their order, their table entries (type, GUID, name, attributes) and the bytes before the first one
// (the table, the boot code and the post-MBR gap); ext2/3/4 and NTFS filesystems shrink (resize2fs,
// ntfsresize) to fit, FAT ones (the EFI system partition) only when the disk is too small otherwise
// (they are made anew and their files copied), and every other partition (swap, BIOS boot, Btrfs,
// unknown contents) keeps its size. The shrinkable ones give up space in proportion to their free
// space, never below what they use plus a margin. A layout that cannot fit is refused with what it needs.
import { DevsnapError } from '../core/errors';
import type { PartitionInfo } from '../protocol';

const MiB = 1 << 20;
/** Filesystems devsnap can shrink, with the tool that does it. */
export const SHRINKABLE: Record<string, 'resize2fs' | 'ntfsresize' | 'mkfs.fat'> = { ext2: 'resize2fs', ext3: 'resize2fs', ext4: 'resize2fs', ntfs: 'ntfsresize', vfat: 'mkfs.fat' };
/** An EFI system partition stays at least this large (Windows asks for 100 MiB). */
const ESP_MIN = 100 * MiB;
const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';
/** Room left in a shrunk filesystem beyond its data: its own metadata grows little, but a full filesystem is unusable. */
export const MARGIN_FRACTION = 0.1;
export const MARGIN_MIN = 64 * MiB;
/** The end of a GPT disk holds the backup entries and header (33 sectors); MBR needs nothing, a MiB is kept either way. */
const TAIL = MiB;

export interface PlacedPartition {
  index: number;
  fs?: string;
  oldStart: number;
  oldSize: number;
  newStart: number;
  newSize: number;
  /** 'keep': written where it was; 'move': its bytes written at newStart; 'shrink': its filesystem shrunk to newSize. */
  how: 'keep' | 'move' | 'shrink';
}

export interface ShrinkPlan {
  targetSize: number;
  /** What the smallest target could be. */
  minimumSize: number;
  partitions: PlacedPartition[];
}

const alignUp = (n: number, a = MiB) => Math.ceil(n / a) * a;
const alignDown = (n: number, a = MiB) => Math.floor(n / a) * a;

/** The smallest size a partition's filesystem can be given: its data plus the margin, or all of it when it cannot shrink (or `fat` is false for FAT). */
export function minimumPartitionSize(p: PartitionInfo, fat = true): number {
  if (!p.fs || !SHRINKABLE[p.fs] || p.usedBytes === undefined || (p.fs === 'vfat' && !fat)) return p.size;
  const min = alignUp(p.usedBytes + Math.max(MARGIN_MIN, p.usedBytes * MARGIN_FRACTION));
  return Math.min(p.size, p.type.toLowerCase() === ESP_TYPE ? Math.max(min, ESP_MIN) : min);
}

/**
 * The layout of `partitions` (of a disk with table `table`) on a disk of
 * `targetSize` bytes, or DevsnapError BAD_TARGET saying how much is needed.
 */
export function planShrink(partitions: readonly PartitionInfo[], table: 'gpt' | 'mbr' | 'none', targetSize: number): ShrinkPlan {
  if (table === 'none')
    throw new DevsnapError(
      'BAD_TARGET',
      `The target (${fmt(targetSize)}) is too small: this snapshot has no partition table, so its filesystem cannot be moved or shrunk onto a smaller disk.`,
      'Restore it onto a disk at least as large as the source.',
    );
  const parts = [...partitions].filter((p) => p.size > 0).sort((a, b) => a.start - b.start);
  if (!parts.length)
    throw new DevsnapError(
      'BAD_TARGET',
      `The target (${fmt(targetSize)}) is too small, and this snapshot has no partitions to fit onto a smaller disk.`,
      'Restore it onto a disk at least as large as the source.',
    );
  if (table === 'mbr' && parts.some((p) => p.index > 4))
    throw new DevsnapError(
      'BAD_TARGET',
      `The target (${fmt(targetSize)}) is too small, and this MBR disk has logical partitions: devsnap moves and shrinks primary partitions only.`,
      'Restore it onto a disk at least as large as the source.',
    );
  const head = parts[0].start;
  const gaps = parts.length * MiB; // alignment of each start
  const need = (m: number[]) => head + m.reduce((a, b) => a + b, 0) + gaps + TAIL;
  // FAT filesystems are made anew to shrink: only when the rest shrunk does not make room.
  let mins = parts.map((p) => minimumPartitionSize(p, false));
  if (need(mins) > targetSize) mins = parts.map((p) => minimumPartitionSize(p, true));
  const minimumSize = need(mins);
  if (targetSize < minimumSize) {
    const used = parts.map((p, i) => `partition ${p.index} (${p.fs ?? 'unknown contents'}) ${mins[i] === p.size ? `${fmt(p.size)}, kept whole` : `at least ${fmt(mins[i])}`}`).join('; ');
    throw new DevsnapError(
      'BAD_TARGET',
      `The target (${fmt(targetSize)}) is too small for this snapshot even with its filesystems shrunk: it needs at least ${fmt(minimumSize)} (${used}).`,
      'Choose a larger disk, or delete files before the next snapshot.',
    );
  }
  // Space beyond the minimum goes to the shrinkable partitions, in proportion to what they could give up.
  const spare = targetSize - minimumSize;
  const give = parts.map((p, i) => p.size - mins[i]);
  const totalGive = give.reduce((a, b) => a + b, 0);
  const placed: PlacedPartition[] = [];
  let at = head;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const start = i === 0 ? p.start : Math.max(alignUp(at), 0);
    const share = totalGive ? alignDown((spare * give[i]) / totalGive) : 0;
    const size = Math.min(p.size, mins[i] + share);
    placed.push({
      index: p.index,
      ...(p.fs ? { fs: p.fs } : {}),
      oldStart: p.start,
      oldSize: p.size,
      newStart: start,
      newSize: size,
      how: size < p.size ? 'shrink' : start === p.start ? 'keep' : 'move',
    });
    at = start + size;
  }
  if (at + TAIL > targetSize) throw new DevsnapError('INTERNAL', `The smaller-disk layout overruns the target (${at + TAIL} > ${targetSize}).`);
  return { targetSize, minimumSize, partitions: placed };
}

function fmt(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}
