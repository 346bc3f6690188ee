// `devsnap export` / `devsnap import`: a snapshot as a self-contained .tar.zst that needs no devsnap
// to restore. The archive holds, in this order:
//   manifest.json           the snapshot's manifest, as in the repository
//   devsnap-export.json     what the archive holds: format, snapshot id, chunk hash, the pieces
//   README.txt              how to restore by hand with tar and dd
//   restore.sh              does exactly that: `sh restore.sh /dev/sdX` (or an image file)
//   raw/<offset>.bin        each raw area (partition table, boot code, gaps, GPT backup) in full
//   partitions/p<N>.img     each partition's bytes; free space (not imaged) as zeros
//   SHA256SUMS              sha256 of every piece (`sha256sum -c SHA256SUMS`)
// Each piece is the exact bytes of the disk at its offset, so `dd ... seek=<offset>` of every piece
// rebuilds the disk. The tar stream is compressed as a sequence of independent zstd frames (1 MiB
// of input each) with the engine's codec; a concatenation of frames is a standard .zst that
// `zstd -d` and `tar --zstd` read.
//
// Import reads the archive back frame by frame (memory stays bounded) and re-chunks each piece along
// the manifest's own extent boundaries, so the imported snapshot has the same chunk ids and
// deduplicates with data the repository already holds.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { once } from 'events';
import * as tar from 'tar-stream';
import { DevsnapError, toDevsnapError } from './errors';
import { Area, FREE, Manifest, ZERO, parseManifest, serializeManifest } from './repo/manifest';
import { Logger, Repository } from './repo/repository';
import { assertChunksStored, ChunkReader } from './chunk-reader';
import { WorkerPool } from './worker-pool';
import { ChunkSaver } from './chunk-saver';
import { ProgressMeter, ProgressSink } from './progress';
import { exists, fsyncDir, tempName, writeFully } from './fsutil';
import { loadZstd } from './zstd';
import { isZero } from './bytes';

type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };

export interface ExportOptions {
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  log: Logger;
  /** zstd level for the archive (default 3). */
  level?: number;
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
}

export interface ImportOptions {
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  log: Logger;
  level?: number;
}

export interface ExportPiece {
  file: string;
  kind: Area['kind'];
  partition?: number;
  offset: number;   // byte offset in the disk
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

export interface ExportResult {
  id: string;
  file: string;
  bytes: number;          // archive size
  bytesUncompressed: number;
  pieces: ExportPiece[];
}

export interface ImportResult {
  id: string;
  label: string;
  file: string;
  chunksNew: number;
  chunksReused: number;
  bytesAdded: number;
}

const FRAME_INPUT = 1 << 20;            // tar bytes per zstd frame
const ZEROS = Buffer.alloc(FRAME_INPUT); // free and zero extents, streamed into the tar
const MAX_FRAME = 64 << 20;             // larger frames are not from devsnap export: refuse rather than buffer them
const META_LIMIT = 256 << 20;           // manifest.json and the small files

export function pieceName(a: Area): string {
  return a.kind === 'partition' && a.partition !== undefined ? `partitions/p${a.partition}.img` : `raw/${a.start}.bin`;
}

export function piecesOf(m: Manifest): ExportPiece[] {
  return m.areas.map((a) => ({ file: pieceName(a), kind: a.kind, ...(a.partition !== undefined ? { partition: a.partition } : {}), offset: a.start, size: a.size }));
}

// ------------------------------------------------------------------------------------------------
// Texts in the archive

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function ddLine(p: ExportPiece, target = '"$TARGET"'): string {
  return `dd if=${p.file} of=${target} bs=1M seek=${p.offset} oflag=seek_bytes conv=notrunc,fsync status=progress`;
}

function readmeText(m: Manifest, pieces: ExportPiece[], archiveName: string): string {
  const parts = m.partitions
    .map((p) => `  partition ${p.index}: ${p.size} bytes at byte ${p.start}${p.fs ? `, ${p.fs}` : ''}${p.label ? ` "${p.label}"` : ''}${p.name ? ` (${p.name})` : ''}`)
    .join('\n');
  return `devsnap snapshot ${m.id} — ${m.label}
Taken ${m.created} on ${m.host} from ${m.source.path} (${m.source.size} bytes, ${m.source.table.toUpperCase()} partition table).
${parts ? `Partitions:\n${parts}\n` : ''}
This archive holds the whole disk as plain pieces; each piece is the exact bytes of the disk
starting at its offset. Free space of the filesystems was not imaged and is stored as zeros.

RESTORE WITHOUT DEVSNAP
  1. Unpack (GNU tar 1.31+ or bsdtar; or zstd -d then tar -x):
       mkdir snapshot && tar --zstd -xf ${archiveName} -C snapshot && cd snapshot
       (or: zstd -dc ${archiveName} | tar -x)
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
       devsnap import ${archiveName} --repo DIR
       devsnap restore ${m.id} /dev/sdX --repo DIR
`;
}

function restoreScript(m: Manifest, pieces: ExportPiece[]): string {
  return `#!/bin/sh
# Restores devsnap snapshot ${m.id} (${m.label.replace(/[\r\n]/g, ' ')}) onto a disk or an image file.
# Usage: sh restore.sh TARGET [--yes]      (TARGET: /dev/sdX, or an image file, created if missing)
set -eu
cd "$(dirname "$0")"
if [ $# -lt 1 ]; then
  echo "usage: sh restore.sh TARGET [--yes]   (TARGET: a disk such as /dev/sdX, or an image file)" >&2
  exit 2
fi
TARGET="$1"
SIZE=${m.source.size}
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
${m.source.table === 'gpt' ? `if [ -b "$TARGET" ] && [ "$HAVE" -gt "$SIZE" ]; then
  echo "The target is larger than the source: move the GPT backup header to its end with: sgdisk -e $TARGET"
fi
` : ''}`;
}

// ------------------------------------------------------------------------------------------------
// zstd framing

/** Compresses a byte stream as independent frames of FRAME_INPUT bytes, in order, using the worker pool. */
class FrameWriter {
  private block = Buffer.allocUnsafe(FRAME_INPUT);
  private fill = 0;
  private pending: Promise<Buffer>[] = [];
  private zeroFrame: Promise<Buffer> | null = null;
  position = 0;
  bytesIn = 0;

  constructor(private readonly fh: fs.promises.FileHandle, private readonly pool: WorkerPool, private readonly level: number) {}

  async write(buf: Buffer): Promise<void> {
    this.bytesIn += buf.length;
    let o = 0;
    while (o < buf.length) {
      const n = Math.min(buf.length - o, FRAME_INPUT - this.fill);
      buf.copy(this.block, this.fill, o, o + n);
      this.fill += n;
      o += n;
      if (this.fill === FRAME_INPUT) await this.flushBlock();
    }
  }

  private async flushBlock(): Promise<void> {
    if (!this.fill) return;
    const raw = this.block.subarray(0, this.fill);
    let frame: Promise<Buffer>;
    if (this.fill === FRAME_INPUT && isZero(raw)) {
      this.zeroFrame ??= this.pool.compress(Buffer.alloc(FRAME_INPUT), this.level);
      frame = this.zeroFrame;
    } else {
      frame = this.pool.compress(raw, this.level); // compress() copies the bytes out
    }
    frame.catch(() => undefined);
    this.pending.push(frame);
    this.block = Buffer.allocUnsafe(FRAME_INPUT);
    this.fill = 0;
    while (this.pending.length >= this.pool.size * 2) await this.writeOne();
  }

  private async writeOne(): Promise<void> {
    const frame = await this.pending.shift()!;
    await writeFully(this.fh, frame, this.position);
    this.position += frame.length;
  }

  async end(): Promise<void> {
    await this.flushBlock();
    while (this.pending.length) await this.writeOne();
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.pending);
    this.pending = [];
  }
}

export interface Frame {
  data: Buffer;
  contentSize: number | null;  // from the frame header; null when the header does not say
  skippable: boolean;
  offset: number;              // where the frame starts in the file
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Splits a .zst byte stream into its frames by walking frame and block headers (RFC 8878 §3.1),
 * without decompressing. Throws DAMAGED on a truncated or malformed stream.
 */
export async function* zstdFrames(input: AsyncIterable<Buffer>, file: string): AsyncGenerator<Frame> {
  let buf: Buffer = Buffer.alloc(0);
  let base = 0; // file offset of buf[0]
  let eof = false;
  const it = input[Symbol.asyncIterator]();
  const damaged = (why: string) =>
    new DevsnapError('DAMAGED', `${file} is truncated or corrupt: ${why} (in the zstd frame that starts at byte ${base}).`, 'The archive is incomplete or damaged; export the snapshot again, or copy the file again.');
  /** Makes at least n bytes available; false at a clean end of input. */
  const need = async (n: number): Promise<boolean> => {
    while (buf.length < n && !eof) {
      const r = await it.next();
      if (r.done) eof = true;
      else buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
    }
    return buf.length >= n;
  };
  for (;;) {
    if (!(await need(1))) return;
    if (!(await need(8))) throw damaged('the last zstd frame is cut short');
    const magic = buf.readUInt32LE(0);
    let size: number;
    let contentSize: number | null = null;
    let skippable = false;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      skippable = true;
      size = 8 + buf.readUInt32LE(4);
    } else if (magic === ZSTD_MAGIC) {
      const fhd = buf[4];
      const fcsFlag = fhd >> 6;
      const single = (fhd >> 5) & 1;
      const checksum = (fhd >> 2) & 1;
      const dictFlag = fhd & 3;
      if (fhd & 0x08) throw damaged('a zstd frame header has its reserved bit set');
      let o = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag];
      const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag];
      if (!(await need(o + fcsBytes + 3))) throw damaged('a zstd frame header is cut short');
      if (fcsBytes === 1) contentSize = buf[o];
      else if (fcsBytes === 2) contentSize = buf.readUInt16LE(o) + 256;
      else if (fcsBytes === 4) contentSize = buf.readUInt32LE(o);
      else if (fcsBytes === 8) contentSize = Number(buf.readBigUInt64LE(o));
      o += fcsBytes;
      for (;;) {
        if (!(await need(o + 3))) throw damaged('a zstd block header is cut short');
        const bh = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16);
        const last = bh & 1;
        const type = (bh >> 1) & 3;
        const bsize = bh >>> 3;
        if (type === 3) throw damaged('a zstd block has a reserved type');
        o += 3 + (type === 1 ? 1 : bsize);
        if (o > MAX_FRAME) {
          throw new DevsnapError('DAMAGED', `${file} was not written by \`devsnap export\` (its zstd frames are too large to import piece by piece).`, 'Unpack it with `tar --zstd -xf` and restore it by hand (see its README.txt), or export the snapshot again with devsnap.');
        }
        if (last) break;
      }
      size = o + (checksum ? 4 : 0);
    } else {
      throw damaged(base === 0 ? 'it is not a zstd file' : 'unexpected bytes between zstd frames');
    }
    if (size > MAX_FRAME) throw damaged('a zstd frame is too large');
    if (!(await need(size))) throw damaged('the last zstd frame is cut short');
    const data = Buffer.from(buf.subarray(0, size));
    buf = buf.subarray(size);
    yield { data, contentSize, skippable, offset: base };
    base += size;
  }
}

/** Decompresses frames in order, several at a time on the worker pool. */
async function* decompressFrames(frames: AsyncIterable<Frame>, pool: WorkerPool, file: string): AsyncGenerator<Buffer> {
  const codec = await loadZstd();
  const window: Promise<Buffer>[] = [];
  for await (const f of frames) {
    if (f.skippable) continue;
    const fail = () => new DevsnapError('DAMAGED', `${file} is corrupt: the zstd frame at byte ${f.offset} does not decompress.`, 'The archive is damaged; export the snapshot again, or copy the file again.');
    let p: Promise<Buffer>;
    if (f.contentSize !== null) {
      p = pool.decompress(f.data, f.contentSize).then((r) => r.raw, () => Promise.reject(fail()));
    } else if (codec.name === 'node:zlib') {
      // Native zstd needs no size. The portable codec does; every frame devsnap writes states it.
      try {
        p = Promise.resolve(codec.decompress(f.data, 0));
      } catch {
        p = Promise.reject(fail());
      }
    } else {
      throw new DevsnapError('DAMAGED', `${file} was not written by \`devsnap export\` (a zstd frame does not state its size).`, 'Unpack it with `tar --zstd -xf` and restore it by hand (see its README.txt), or export the snapshot again with devsnap.');
    }
    p.catch(() => undefined);
    window.push(p);
    if (window.length >= pool.size * 2) yield await window.shift()!;
  }
  while (window.length) yield await window.shift()!;
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
      const e = extents[next];
      if (next >= from && e[2] !== ZERO && e[2] !== FREE) {
        const p = reader.read(e[2]);
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
    const [off, len, ref] = extents[i];
    if (off !== pos) throw new DevsnapError('DAMAGED', `The manifest's extent map of ${a.kind === 'partition' ? `partition ${a.partition}` : `the raw area at byte ${a.start}`} has a gap or overlap at byte ${a.start + off}.`);
    if (ref === ZERO || ref === FREE) {
      for (let o = 0; o < len; o += ZEROS.length) yield ZEROS.subarray(0, Math.min(ZEROS.length, len - o));
    } else {
      const raw = await prefetch.get(i)!;
      prefetch.delete(i);
      if (raw.length !== len) throw new DevsnapError('DAMAGED', `Chunk ${ref.slice(0, 12)}… has ${raw.length} bytes where the manifest expects ${len}.`);
      yield raw;
    }
    pos += len;
  }
  if (pos !== a.size) throw new DevsnapError('DAMAGED', `The manifest's extent map of ${a.kind === 'partition' ? `partition ${a.partition}` : `the raw area at byte ${a.start}`} covers ${pos} of its ${a.size} bytes.`);
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
  if (!opts.overwrite && (await exists(target))) {
    throw new DevsnapError('BAD_TARGET', `${outFile} already exists.`, 'Choose another file name, or delete the file first.');
  }
  if (!(await exists(path.dirname(target)))) throw new DevsnapError('BAD_TARGET', `The folder ${path.dirname(target)} does not exist.`);
  assertChunksStored(repo, m, m.areas, 'export');
  if (repo.cipher.encrypted) opts.log(`note: the archive is not encrypted; snapshot ${m.id}'s data is readable by whoever has the file.`);

  const pieces = piecesOf(m);
  const info: ExportInfo = { format: 'devsnap-export', version: 1, snapshot: m.id, exported: new Date().toISOString(), chunkHash: repo.config.chunkHash, diskSize: m.source.size, pieces };
  const archiveName = path.basename(target);
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
  const meter = new ProgressMeter('export', pieces.reduce((n, p) => n + p.size, 0), opts.onProgress);
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

// ------------------------------------------------------------------------------------------------
// Import

/** Pulls exact byte counts out of a tar entry's stream. */
class Taker {
  private it: AsyncIterator<Buffer>;
  private rest: Buffer = Buffer.alloc(0);
  constructor(stream: AsyncIterable<Buffer>, private readonly hash: crypto.Hash, private readonly short: () => DevsnapError) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Calls fn with consecutive pieces that together make n bytes. */
  async each(n: number, fn: (b: Buffer) => void): Promise<void> {
    while (n > 0) {
      if (!this.rest.length) {
        const r = await this.it.next();
        if (r.done) throw this.short();
        this.rest = r.value;
      }
      const k = Math.min(n, this.rest.length);
      const b = this.rest.subarray(0, k);
      this.rest = this.rest.subarray(k);
      this.hash.update(b);
      fn(b);
      n -= k;
    }
  }

  async take(n: number): Promise<Buffer> {
    if (this.rest.length >= n) {
      let out!: Buffer;
      await this.each(n, (b) => (out = Buffer.from(b)));
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    await this.each(n, (b) => {
      b.copy(out, o);
      o += b.length;
    });
    return out;
  }

  async drain(): Promise<void> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
    }
  }
}

async function readSmall(entry: AsyncIterable<Buffer>, what: string, file: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const b of entry) {
    n += b.length;
    if (n > META_LIMIT) throw new DevsnapError('DAMAGED', `${file}: ${what} is implausibly large; this is not an archive written by devsnap export.`);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

function checkManifestShape(m: Manifest, file: string): void {
  const bad = (why: string) => new DevsnapError('DAMAGED', `The manifest in ${file} is not valid: ${why}.`, 'Export the snapshot again.');
  if (!/^[0-9a-f]{16}$/.test(m.id)) throw bad('its snapshot id is malformed');
  if (!Array.isArray(m.areas)) throw bad('it has no areas');
  const names = new Set<string>();
  for (const a of m.areas) {
    if (!Number.isSafeInteger(a.start) || !Number.isSafeInteger(a.size) || a.start < 0 || a.size < 0) throw bad('an area has an invalid offset or size');
    const name = pieceName(a);
    if (names.has(name)) throw bad(`two areas would both be ${name}`);
    names.add(name);
    let pos = 0;
    for (const e of a.extents) {
      if (!Array.isArray(e) || e[0] !== pos || !Number.isSafeInteger(e[1]) || e[1] <= 0 || e[1] > 1 << 30) throw bad(`the extent map of ${name} has a gap, overlap or invalid length at byte ${a.start + pos}`);
      if (e[2] !== ZERO && e[2] !== FREE && !/^[0-9a-f]{64}$/.test(e[2])) throw bad(`the extent map of ${name} has an invalid chunk id`);
      pos += e[1];
    }
    if (pos !== a.size) throw bad(`the extent map of ${name} does not cover the area`);
  }
}

/**
 * Reads an archive written by exportSnapshot into the repository: the snapshot keeps its id, label
 * and creation time. Refuses (REPO_EXISTS) when the repository already holds a snapshot with that id.
 * Every piece is checked (chunk hashes where the source repository used plain sha256 ids, and the
 * archive's SHA256SUMS) before the manifest is committed; on any error nothing is committed.
 */
export async function importSnapshot(repo: Repository, file: string, opts: ImportOptions): Promise<ImportResult> {
  let input: fs.ReadStream;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
    input = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  } catch (err) {
    throw toDevsnapError(err, `the archive ${file}`);
  }
  const st = await fs.promises.stat(file);
  const pool = new WorkerPool();
  const writer = repo.newPackWriter();
  const extract = tar.extract();
  extract.on('error', () => undefined); // reported through the iteration in consume()
  const level = opts.level ?? repo.config.compression.level;
  const damaged = (why: string) => new DevsnapError('DAMAGED', `${file} ${why}.`, 'The archive is incomplete or damaged; export the snapshot again, or copy the file again.');
  const meter = new ProgressMeter('import', st.size, opts.onProgress);
  let readBytes = 0;

  // Feed: file -> frames -> decompressed tar bytes -> extract (with back-pressure).
  const feed = async () => {
    const counted = (async function* () {
      for await (const b of input as AsyncIterable<Buffer>) {
        readBytes += b.length;
        meter.add(b.length);
        yield b;
      }
    })();
    for await (const raw of decompressFrames(zstdFrames(counted, file), pool, file)) {
      if (opts.signal?.aborted) throw cancelled('Import');
      if (!extract.write(raw)) await once(extract as unknown as NodeJS.EventEmitter, 'drain');
    }
    (extract as unknown as { end(): void }).end();
  };

  let manifest: Manifest | null = null;
  let info: ExportInfo | null = null;
  const byName = new Map<string, Area>();
  const seen = new Map<string, string>(); // piece -> sha256
  let sums: Map<string, string> | null = null;
  const saver = new ChunkSaver(writer, pool, level, repo.dir);
  const stats = saver.stats;
  const newAreas: Area[] = [];
  let stopped = false;

  const importPiece = async (name: string, a: Area, entry: TarEntry): Promise<void> => {
    if (entry.header.size !== a.size) throw damaged(`holds ${name} with ${entry.header.size} bytes, but the manifest says ${a.size}`);
    const hash = crypto.createHash('sha256');
    const taker = new Taker(entry as AsyncIterable<Buffer>, hash, () => damaged(`ends in the middle of ${name}`));
    const extents: Area['extents'] = [];
    const verifyIds = info!.chunkHash === 'sha256';
    for (const [off, len, ref] of a.extents) {
      if (opts.signal?.aborted) throw cancelled('Import');
      saver.check();
      if (ref === FREE) {
        await taker.each(len, () => undefined);
        extents.push([off, len, ref]);
      } else if (ref === ZERO) {
        let zero = true;
        await taker.each(len, (b) => (zero &&= isZero(b)));
        if (!zero) throw damaged(`holds non-zero bytes in ${name} at byte ${a.start + off}, where the snapshot has zeros`);
        extents.push([off, len, ref]);
      } else {
        const raw = await taker.take(len);
        const sha = crypto.createHash('sha256').update(raw).digest('hex');
        if (verifyIds && sha !== ref) throw damaged(`holds bytes in ${name} at ${a.start + off}-${a.start + off + len} that do not match the snapshot (chunk ${ref.slice(0, 12)}…)`);
        const id = repo.cipher.encrypted ? repo.cipher.chunkId(raw) : sha;
        extents.push([off, len, id]);
        if (stopped) throw cancelled('Import');
        await saver.save(id, raw);
      }
    }
    await taker.drain();
    seen.set(name, hash.digest('hex'));
    newAreas[manifest!.areas.indexOf(a)] = { ...a, extents };
  };

  const consume = async () => {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      (entry as unknown as NodeJS.EventEmitter).on('error', () => undefined); // surfaces through its iteration
      const name = entry.header.name.replace(/^\.\//, '');
      if (name === 'manifest.json') {
        const bytes = await readSmall(entry as AsyncIterable<Buffer>, name, file);
        const m = parseManifest(bytes, `in ${path.basename(file)}`);
        checkManifestShape(m, file);
        if (await exists(repo.manifestPath(m.id))) {
          throw new DevsnapError('REPO_EXISTS', `The repository ${repo.dir} already holds snapshot ${m.id} ("${m.label}"); nothing was imported.`, 'It was imported (or taken) here before. To import it again, remove it first with `devsnap forget ' + m.id + '`.');
        }
        manifest = m;
        for (const a of m.areas) byName.set(pieceName(a), a);
        seen.set(name, crypto.createHash('sha256').update(bytes).digest('hex'));
      } else if (name === 'devsnap-export.json') {
        try {
          info = JSON.parse((await readSmall(entry as AsyncIterable<Buffer>, name, file)).toString('utf8'));
        } catch (err) {
          if (err instanceof DevsnapError) throw err;
          throw damaged('has a corrupt devsnap-export.json');
        }
        if (info?.format !== 'devsnap-export') throw damaged('is not an archive written by devsnap export (devsnap-export.json is not one)');
        if (info.version !== 1) throw new DevsnapError('DAMAGED', `${file} was written by a newer devsnap (export format ${info.version}).`, 'Update devsnap.');
      } else if (name === 'SHA256SUMS') {
        sums = new Map();
        for (const line of (await readSmall(entry as AsyncIterable<Buffer>, name, file)).toString('utf8').split('\n')) {
          const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
          if (m) sums.set(m[2], m[1]);
        }
      } else if (byName.has(name)) {
        if (!info) throw damaged('is not an archive written by devsnap export (devsnap-export.json is missing or out of order)');
        await importPiece(name, byName.get(name)!, entry);
      } else {
        if (!manifest && name !== 'README.txt' && name !== 'restore.sh') {
          throw damaged(`is not an archive written by devsnap export (it starts with ${name}, not manifest.json)`);
        }
        if (name !== 'README.txt' && name !== 'restore.sh') opts.log(`note: ${file}: ignoring ${name}, which this devsnap does not know`);
        for await (const _ of entry as AsyncIterable<Buffer>) void _;
      }
    }
  };

  try {
    const feeding = feed();
    feeding.catch((err) => extract.destroy(err));
    const consuming = consume();
    consuming.catch(() => undefined);
    await Promise.all([feeding, consuming]);
    await saver.drain();
    if (opts.signal?.aborted) throw cancelled('Import');
    const m = manifest as Manifest | null;
    if (!m) throw damaged('holds no manifest.json: it is empty or not an archive written by devsnap export');
    const missing = m.areas.map(pieceName).filter((n) => !seen.has(n));
    if (missing.length) throw damaged(`is incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`);
    const s = sums as Map<string, string> | null;
    if (!s) throw damaged('is incomplete: SHA256SUMS, the last file, is missing');
    for (const [name, hex] of seen) {
      if (s.get(name) !== hex) throw damaged(`holds a ${name} whose sha256 does not match SHA256SUMS`);
    }
    await writer.finish();
    const parentKnown = m.parent !== undefined && (await exists(repo.manifestPath(m.parent)));
    const { verifiedAt: _v, parent: _p, ...rest } = m;
    const imported: Manifest = {
      ...rest,
      ...(parentKnown ? { parent: m.parent } : {}),
      state: 'not-verified',
      areas: newAreas,
      stats: { ...m.stats, bytesAdded: writer.bytesWritten, chunksNew: stats.chunksNew, chunksReused: stats.chunksReused },
      warnings: [...(m.warnings ?? []), `Imported from ${path.basename(file)} on ${new Date().toISOString()}.`],
    };
    delete imported.digest;
    await repo.writeManifest(imported);
    meter.finish();
    return { id: m.id, label: m.label, file, chunksNew: stats.chunksNew, chunksReused: stats.chunksReused, bytesAdded: writer.bytesWritten };
  } catch (err) {
    stopped = true;
    input.destroy();
    extract.destroy();
    await saver.settle();
    await writer.abandon().catch(() => undefined);
    if (err instanceof DevsnapError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e?.code && /^E[A-Z]+$/.test(e.code)) throw toDevsnapError(err, e.path === file ? `the archive ${file}` : `the repository ${repo.dir}`);
    // tar-stream's own errors ("Unexpected end of data", "Invalid tar header"): the archive is damaged.
    const why = (err as Error)?.message ?? String(err);
    if (/unexpected end/i.test(why)) throw damaged(`is truncated: the tar archive inside ends in the middle of a file (after ${readBytes} bytes)`);
    throw damaged(`is not a valid archive (${why}; at byte ${readBytes} of ${st.size})`);
  } finally {
    await pool.close();
  }
}
