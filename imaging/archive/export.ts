// `devsnap export`: a snapshot as a self-contained .tar.zst that needs no devsnap to restore (the
// layout is in export-format.ts; `devsnap import` in import.ts reads it back).
//
// What the archive says is read by people (README.txt) and run as root (restore.sh): restore.sh is
// built from validated integers only (the disk size, each piece's offset and partition number) and
// the snapshot id (16 hex digits); no label, name or path from the manifest goes into it.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { once } from 'events';
import * as tar from 'tar-stream';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { Area, Kind, Manifest, serializeManifest } from '../repo/manifest';
import { Logger, Repository } from '../repo/repository';
import { assertChunksStored, ChunkReader } from '../repo/chunk-reader';
import { WorkerPool } from '../repo/worker-pool';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { exists, fsyncDir, removeDeadTemps, tempName } from '../core/fsutil';
import { FRAME_INPUT, FrameWriter } from './zstd-frames';
import { ExportInfo, ExportPiece, piecesOf } from './export-format';
import { assertNotInRepository } from '../disk/device';

export { importSnapshot } from './import';
export type { ImportOptions, ImportResult } from './import';
export { zstdFrames } from './zstd-frames';
export type { ExportInfo, ExportPiece } from './export-format';
export { pieceName, piecesOf } from './export-format';

export interface ExportOptions {
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  log: Logger;
  /** zstd level for the archive (default 3). */
  level?: number;
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
}

export interface ExportResult {
  id: string;
  file: string;
  bytes: number; // archive size
  bytesUncompressed: number;
  pieces: ExportPiece[];
}

const ZEROS = Buffer.alloc(FRAME_INPUT); // free and zero extents, streamed into the tar

// ------------------------------------------------------------------------------------------------
// Texts in the archive

/** A number for restore.sh: only a whole number ever reaches the shell (the manifest was validated; this makes sure). */
function int(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new DevsnapError('INTERNAL', `restore.sh: ${JSON.stringify(n)} is not a whole number.`);
  return String(n);
}

function ddLine(p: ExportPiece, target = '"$TARGET"'): string {
  const file = p.kind === 'partition' && p.partition !== undefined ? `partitions/p${int(p.partition)}.img` : `raw/${int(p.offset)}.bin`;
  return `dd if=${file} of=${target} bs=1M seek=${int(p.offset)} oflag=seek_bytes conv=notrunc,fsync status=progress`;
}

/** A file name for a command line in README.txt that users copy: quoted when the shell would read it otherwise. */
const shArg = (s: string) => (/^[A-Za-z0-9._/+:@%=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Text from the manifest for README.txt: one line, no control characters (a `cat` of it cannot drive the terminal). */
// eslint-disable-next-line no-control-regex -- control characters are what this removes
const plain = (s: string) => s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');

function readmeText(m: Manifest, pieces: ExportPiece[], archiveName: string): string {
  const parts = m.partitions
    .map((p) => `  partition ${p.index}: ${p.size} bytes at byte ${p.start}${p.fs ? `, ${plain(p.fs)}` : ''}${p.label ? ` "${plain(p.label)}"` : ''}${p.name ? ` (${plain(p.name)})` : ''}`)
    .join('\n');
  const archive = shArg(plain(archiveName));
  return `devsnap snapshot ${m.id} — ${plain(m.label)}
Taken ${m.created} on ${plain(m.host)} from ${plain(m.source.path)} (${m.source.size} bytes, ${m.source.table.toUpperCase()} partition table).
${parts ? `Partitions:\n${parts}\n` : ''}
This archive holds the whole disk as plain pieces; each piece is the exact bytes of the disk
starting at its offset. Free space of the filesystems was not imaged and is stored as zeros.

RESTORE WITHOUT DEVSNAP
  1. Unpack (GNU tar 1.31+ or bsdtar; or zstd -d then tar -x):
       mkdir snapshot && tar --zstd -xf ${archive} -C snapshot && cd snapshot
       (or: zstd -dc ${archive} | tar -x)
  2. Check the pieces:      sha256sum -c SHA256SUMS
  3. Write them to the target disk (ALL DATA ON IT IS OVERWRITTEN; make sure nothing on it is mounted,
     and that it is not the disk you are running from — use a live USB to restore a system disk):
       sh restore.sh /dev/sdX
     or run the dd commands yourself (TARGET is the disk, e.g. /dev/sdX, or an image file of at least
     ${m.source.size} bytes):
${pieces.map((p) => `       ${ddLine(p, 'TARGET')}`).join('\n')}
     Every offset is a multiple of 512; a dd without oflag=seek_bytes (busybox) can use
       dd if=PIECE of=TARGET bs=512 seek=$((OFFSET / 512)) conv=notrunc
  4. ${m.source.table === 'gpt' ? 'The target is larger than the source? The GPT backup header is then not at the end of the disk:\n     run `sgdisk -e /dev/sdX` (or gdisk: x, e, w) to move it there.' : 'Run `sync` before removing the target disk.'}

A single partition can be restored onto a partition of the same size or larger:
       dd if=partitions/pN.img of=/dev/sdXN bs=1M conv=fsync

RESTORE WITH DEVSNAP
       devsnap import ${archive} --repo DIR
       devsnap restore ${m.id} /dev/sdX --repo DIR
`;
}

function restoreScript(m: Manifest, pieces: ExportPiece[]): string {
  if (!/^[0-9a-f]{16}$/.test(m.id)) throw new DevsnapError('INTERNAL', `restore.sh: ${JSON.stringify(m.id)} is not a snapshot id.`);
  const size = int(m.source.size);
  return `#!/bin/sh
# Restores devsnap snapshot ${m.id} onto a disk or an image file.
# Usage: sh restore.sh TARGET [--yes]      (TARGET: /dev/sdX, or an image file, created if missing)
set -eu
cd "$(dirname "$0")"
if [ $# -lt 1 ]; then
  echo "usage: sh restore.sh TARGET [--yes]   (TARGET: a disk such as /dev/sdX, or an image file)" >&2
  exit 2
fi
TARGET="$1"
SIZE=${size}
if [ -b "$TARGET" ]; then
  HAVE=$(blockdev --getsize64 "$TARGET")
  if [ "$HAVE" -lt "$SIZE" ]; then
    echo "$TARGET is too small: it has $HAVE bytes, the snapshot needs $SIZE." >&2
    exit 1
  fi
  if grep -q "^$(readlink -f "$TARGET")" /proc/mounts; then
    echo "$TARGET has mounted filesystems; unmount them first." >&2
    exit 1
  fi
  if [ "\${2:-}" != "--yes" ]; then
    printf 'All data on %s will be overwritten. Type yes to continue: ' "$TARGET"
    read -r ANSWER
    [ "$ANSWER" = yes ] || { echo "Nothing was written."; exit 1; }
  fi
else
  if [ ! -e "$TARGET" ] || [ "$(stat -c %s "$TARGET")" -lt "$SIZE" ]; then
    truncate -s "$SIZE" "$TARGET"
  fi
fi
${pieces.map((p) => ddLine(p).replace(' status=progress', ' status=none')).join('\n')}
sync
echo "Restored snapshot ${m.id} onto $TARGET."
${
  m.source.table === 'gpt'
    ? `if [ -b "$TARGET" ] && [ "$HAVE" -gt "$SIZE" ]; then
  echo "The target is larger than the source: move the GPT backup header to its end with: sgdisk -e $TARGET"
fi
`
    : ''
}`;
}

// ------------------------------------------------------------------------------------------------
// Export

function cancelled(what: string): DevsnapError {
  return new DevsnapError('CANCELLED', `${what} cancelled.`);
}

/** The bytes of one area, in order: data chunks read (hash-verified) ahead, free and zero ranges as zeros. */
async function* areaBytes(a: Area, reader: ChunkReader, ahead: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const extents = a.extents;
  const prefetch = new Map<number, Promise<Buffer>>();
  let next = 0;
  const fillWindow = (from: number) => {
    while (prefetch.size < ahead && next < extents.length) {
      const k = extents.kind(next);
      if (next >= from && k !== Kind.Zero && k !== Kind.Free) {
        const p = reader.readExtent(extents.at(next));
        p.catch(() => undefined);
        prefetch.set(next, p);
      }
      next++;
    }
  };
  let pos = 0;
  for (let i = 0; i < extents.length; i++) {
    if (signal?.aborted) throw cancelled('Export');
    fillWindow(i);
    const [off, len, kind] = [extents.offset(i), extents.size(i), extents.kind(i)];
    if (off !== pos)
      throw new DevsnapError(
        'DAMAGED',
        `The manifest's extent map of ${a.kind === 'partition' ? `partition ${a.partition}` : `the raw area at byte ${a.start}`} has a gap or overlap at byte ${a.start + off}.`,
      );
    if (kind === Kind.Zero || kind === Kind.Free) {
      for (let o = 0; o < len; o += ZEROS.length) yield ZEROS.subarray(0, Math.min(ZEROS.length, len - o));
    } else {
      const raw = await prefetch.get(i)!;
      prefetch.delete(i);
      yield raw;
    }
    pos += len;
  }
  if (pos !== a.size)
    throw new DevsnapError('DAMAGED', `The manifest's extent map of ${a.kind === 'partition' ? `partition ${a.partition}` : `the raw area at byte ${a.start}`} covers ${pos} of its ${a.size} bytes.`);
}

/** Writes one tar entry from a buffer or a stream of buffers, respecting back-pressure. */
async function tarEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, body: Buffer | AsyncIterable<Buffer>, onChunk?: (b: Buffer) => void): Promise<void> {
  let done!: () => void;
  let failed!: (e: unknown) => void;
  const finished = new Promise<void>((res, rej) => {
    done = res;
    failed = rej;
  });
  finished.catch(() => undefined);
  const size = Buffer.isBuffer(body) ? body.length : header.size;
  const entry = pack.entry({ ...header, size }, (err) => (err ? failed(err) : done()));
  // A destroyed archive stream (the other side failed) must wake this side, not leave it waiting.
  entry.on('error', (err: Error) => failed(err));
  entry.on('close', () => failed(new DevsnapError('INTERNAL', 'The archive stream was closed early.')));
  const chunks: AsyncIterable<Buffer> | Iterable<Buffer> = Buffer.isBuffer(body) ? [body] : body;
  for await (const b of chunks) {
    onChunk?.(b);
    if (!entry.write(b)) await Promise.race([once(entry as unknown as NodeJS.EventEmitter, 'drain'), finished]);
  }
  (entry as unknown as { end(): void }).end();
  await finished;
}

/** Writes snapshot `id` of `repo` as a .tar.zst archive at `outFile` (written aside, renamed when complete). */
export async function exportSnapshot(repo: Repository, id: string, outFile: string, opts: ExportOptions): Promise<ExportResult> {
  const m = await repo.readManifest(id);
  const target = path.resolve(outFile);
  // The repository holds only what devsnap wrote there: an archive in it would be a stray file (or overwrite one of its own).
  assertNotInRepository(outFile, repo.dir, undefined, 'writing the archive there would change the repository');
  if (!opts.overwrite && (await exists(target))) {
    throw new DevsnapError('BAD_TARGET', `${outFile} already exists.`, 'Choose another file name, or delete the file first.');
  }
  if (!(await exists(path.dirname(target)))) throw new DevsnapError('BAD_TARGET', `The folder ${path.dirname(target)} does not exist.`);
  assertChunksStored(repo, m, m.areas, 'export');
  if (repo.cipher.encrypted) opts.log(`note: the archive is not encrypted; snapshot ${m.id}'s data is readable by whoever has the file.`);

  const pieces = piecesOf(m);
  const info: ExportInfo = { format: 'devsnap-export', version: 1, snapshot: m.id, exported: new Date().toISOString(), chunkHash: repo.config.chunkHash, diskSize: m.source.size, pieces };
  const archiveName = path.basename(target);
  for (const f of await removeDeadTemps(target)) opts.log(`Removed ${f}, left by an export that was killed.`);
  const tmp = tempName(target);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'wx', 0o600);
  } catch (err) {
    throw toDevsnapError(err, `the archive ${outFile}`);
  }
  const pool = new WorkerPool();
  const reader = new ChunkReader(repo, pool);
  const frames = new FrameWriter(fh, pool, opts.level ?? 3);
  const meter = new ProgressMeter(
    'export',
    pieces.reduce((n, p) => n + p.size, 0),
    opts.onProgress,
  );
  const pack = tar.pack();
  pack.on('error', () => undefined); // reported through the iteration below
  const mtime = new Date(m.created);
  const sums: string[] = [];
  const consume = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) await frames.write(chunk);
    await frames.end();
  })();
  consume.catch((err) => pack.destroy(err));
  try {
    const produce = async () => {
      const manifestBytes = serializeManifest(m);
      await tarEntry(pack, { name: 'manifest.json', mode: 0o644, mtime }, manifestBytes);
      sums.push(`${crypto.createHash('sha256').update(manifestBytes).digest('hex')}  manifest.json`);
      await tarEntry(pack, { name: 'devsnap-export.json', mode: 0o644, mtime }, Buffer.from(JSON.stringify(info, null, 2) + '\n'));
      await tarEntry(pack, { name: 'README.txt', mode: 0o644, mtime }, Buffer.from(readmeText(m, pieces, archiveName)));
      await tarEntry(pack, { name: 'restore.sh', mode: 0o755, mtime }, Buffer.from(restoreScript(m, pieces)));
      const ahead = pool.size * 3;
      for (let i = 0; i < m.areas.length; i++) {
        const a = m.areas[i];
        meter.setMessage(a.kind === 'partition' ? `partition ${a.partition}` : 'partition table and boot areas');
        const hash = crypto.createHash('sha256');
        await tarEntry(pack, { name: pieces[i].file, mode: 0o644, mtime, size: a.size }, areaBytes(a, reader, ahead, opts.signal), (b) => {
          hash.update(b);
          meter.add(b.length);
        });
        sums.push(`${hash.digest('hex')}  ${pieces[i].file}`);
      }
      await tarEntry(pack, { name: 'SHA256SUMS', mode: 0o644, mtime }, Buffer.from(sums.join('\n') + '\n'));
      pack.finalize();
    };
    const producing = produce();
    producing.catch((err) => pack.destroy(err));
    await Promise.all([producing, consume]);
    if (opts.signal?.aborted) throw cancelled('Export');
    await fh.truncate(frames.position);
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, target);
    await fsyncDir(path.dirname(target));
    meter.finish();
    return { id: m.id, file: target, bytes: frames.position, bytesUncompressed: frames.bytesIn, pieces };
  } catch (err) {
    pack.destroy();
    await consume.catch(() => undefined);
    await frames.abort();
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw toDevsnapError(err, `the archive ${outFile}`);
  } finally {
    await pool.close();
  }
}
