// The layout of an export archive (`devsnap export` writes it, `devsnap import` reads it back):
//   manifest.json           the snapshot's manifest, as in the repository
//   devsnap-export.json     what the archive holds: format, snapshot id, chunk hash, the pieces
//   README.txt              how to restore by hand with tar and dd
//   restore.sh              does exactly that: `sh restore.sh /dev/sdX` (or an image file)
//   raw/<offset>.bin        each raw area (partition table, boot code, gaps, GPT backup) in full
//   partitions/p<N>.img     each partition's bytes; free space (not imaged) as zeros
//   SHA256SUMS              sha256 of every piece (`sha256sum -c SHA256SUMS`)
// Each piece is the exact bytes of the disk at its offset, so `dd ... seek=<offset>` of every piece
// rebuilds the disk. The tar stream is compressed as independent zstd frames (zstd-frames.ts).
import * as v from 'valibot';
import type { Area, Manifest } from '../repo/manifest';
import { count, snapshotId } from '../repo/manifest';

export interface ExportPiece {
  file: string;
  kind: Area['kind'];
  partition?: number;
  offset: number; // byte offset in the disk
  size: number;
}

/** devsnap-export.json */
export interface ExportInfo {
  format: 'devsnap-export';
  version: 1;
  snapshot: string;
  exported: string;
  /** How the manifest's chunk ids were computed ('hmac-sha256' ids cannot be checked without the source repository's key). */
  chunkHash: 'sha256' | 'hmac-sha256';
  diskSize: number;
  pieces: ExportPiece[];
}

export const ExportInfoSchema = v.looseObject({
  format: v.literal('devsnap-export'),
  version: v.literal(1),
  snapshot: snapshotId,
  exported: v.string('is not a string'),
  chunkHash: v.picklist(['sha256', 'hmac-sha256'], 'is not "sha256" or "hmac-sha256"'),
  diskSize: count,
  pieces: v.array(
    v.looseObject({
      file: v.string('is not a string'),
      kind: v.picklist(['raw', 'partition'], 'is not "raw" or "partition"'),
      partition: v.optional(count),
      offset: count,
      size: count,
    }),
    'is not a list',
  ),
});

const _schemaMatchesType = (x: v.InferOutput<typeof ExportInfoSchema>): ExportInfo => x;
void _schemaMatchesType;

/** An area's file in the archive: built from validated integers only (the name goes into restore.sh). */
export function pieceName(a: Pick<Area, 'kind' | 'partition' | 'start'>): string {
  const n = a.kind === 'partition' && a.partition !== undefined ? a.partition : a.start;
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`pieceName: ${String(n)} is not a whole number`);
  return a.kind === 'partition' && a.partition !== undefined ? `partitions/p${n}.img` : `raw/${n}.bin`;
}

export function piecesOf(m: Manifest): ExportPiece[] {
  return m.areas.map((a) => ({ file: pieceName(a), kind: a.kind, ...(a.partition !== undefined ? { partition: a.partition } : {}), offset: a.start, size: a.size }));
}
