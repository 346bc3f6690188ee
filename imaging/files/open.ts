// Opens the filesystem of one partition of a snapshot straight from the repository's chunks.
import { ChunkReader } from '../repo/chunk-reader';
import { DevsnapError } from '../core/errors';
import type { Manifest } from '../repo/manifest';
import type { Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { openImageFs } from '../filesystems/image-fs/detect';
import { ChunkCache, SnapshotDisk } from '../repo/snapshot-disk';
import type { ImageFs } from '../filesystems/image-fs/types';

export interface OpenedSnapshotFs {
  fs: ImageFs;
  disk: SnapshotDisk;
  partition: number;
  /** Stops the decompression workers (when this call created them). */
  close(): Promise<void>;
}

export interface OpenSnapshotFsOptions {
  /** Share a pool (and its workers) between several open filesystems; otherwise one is created and closed by close(). */
  pool?: WorkerPool;
  cacheChunks?: number;
  /** Share decompressed chunks with other open snapshots of the repository (comparing two: most chunks are the same). */
  cache?: ChunkCache;
}

const EXT = new Set(['ext2', 'ext3', 'ext4']);

/**
 * The partition to open when none is given: the largest ext partition (the root); on a disk without one
 * (Windows alone), the largest NTFS partition rather than the EFI partition; else the largest with a known filesystem.
 */
export function defaultPartition(m: Manifest): number {
  const byFs = (pred: (fs: string | undefined) => boolean) => m.partitions.filter((p) => pred(p.fs)).sort((a, b) => b.size - a.size)[0];
  const p = byFs((f) => !!f && EXT.has(f)) ?? byFs((f) => f === 'ntfs') ?? byFs((f) => f === 'vfat') ?? byFs(() => true);
  if (!p) throw new DevsnapError('NOT_FOUND', `Snapshot ${m.id} has no partitions.`);
  return p.index;
}

export async function openSnapshotFs(repo: Repository, m: Manifest, partition?: number, opts: OpenSnapshotFsOptions = {}): Promise<OpenedSnapshotFs> {
  const index = partition ?? defaultPartition(m);
  const pool = opts.pool ?? new WorkerPool(2);
  const own = !opts.pool;
  try {
    const disk = new SnapshotDisk(new ChunkReader(repo, pool), m, index, { cacheChunks: opts.cacheChunks, cache: opts.cache });
    const fs = await openImageFs(disk);
    if (!fs) {
      const p = m.partitions.find((x) => x.index === index);
      throw new DevsnapError(
        'BAD_SOURCE',
        `Partition ${index} of snapshot ${m.id} holds ${p?.fs ? `a ${p.fs} filesystem, which devsnap cannot read files from` : 'no filesystem devsnap can read'}.`,
        'Files can be read from ext2/3/4, FAT and NTFS partitions; choose one with --partition.',
      );
    }
    return { fs, disk, partition: index, close: async () => (own ? pool.close() : undefined) };
  } catch (err) {
    if (own) await pool.close();
    throw err;
  }
}
