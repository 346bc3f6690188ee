// zstd framing of export archives: the tar stream is compressed as a sequence of independent zstd
// frames (FRAME_INPUT bytes of input each) with the engine's codec, written in order by FrameWriter;
// a concatenation of frames is a standard .zst that `zstd -d` and `tar --zstd` read. Import walks
// an archive's frames by their headers (zstdFrames, without decompressing: memory stays bounded
// and hostile sizes are refused before any buffer is allocated) and decompresses them on the
// worker pool (decompressFrames).
import * as fs from 'fs';
import { DevsnapError } from '../core/errors';
import { WorkerPool } from '../repo/worker-pool';
import { writeFully } from '../core/fsutil';
import { isZero } from '../core/bytes';

export const FRAME_INPUT = 1 << 20; // tar bytes per zstd frame
// devsnap export's frames hold FRAME_INPUT bytes; larger ones (compressed, or stated decompressed) are
// refused rather than buffered (the portable codec cannot decompress frames of more than ~10 MB anyway).
const MAX_FRAME = 8 << 20;

export function notWrittenByExport(file: string, why: string): DevsnapError {
  return new DevsnapError(
    'DAMAGED',
    `${file} was not written by \`devsnap export\` (${why}).`,
    'Unpack it with `tar --zstd -xf` and restore it by hand (see its README.txt), or export the snapshot again with devsnap.',
  );
}

/** Compresses a byte stream as independent frames of FRAME_INPUT bytes, in order, using the worker pool. */
export class FrameWriter {
  private block = Buffer.allocUnsafe(FRAME_INPUT);
  private fill = 0;
  private pending: Promise<Buffer>[] = [];
  private zeroFrame: Promise<Buffer> | null = null;
  position = 0;
  bytesIn = 0;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly pool: WorkerPool,
    private readonly level: number,
  ) {}

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
  contentSize: number | null; // from the frame header; null when the header does not say
  skippable: boolean;
  offset: number; // where the frame starts in the file
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
  const notOurs = (why: string) => notWrittenByExport(file, why);
  const damaged = (why: string) =>
    new DevsnapError(
      'DAMAGED',
      `${file} is truncated or corrupt: ${why} (in the zstd frame that starts at byte ${base}).`,
      'The archive is incomplete or damaged; export the snapshot again, or copy the file again.',
    );
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
      // The decompressed frame is allocated at its stated size: refuse before a hostile one is.
      if (contentSize !== null && contentSize > MAX_FRAME) throw notOurs('a zstd frame states a decompressed size larger than devsnap export writes');
      o += fcsBytes;
      for (;;) {
        if (!(await need(o + 3))) throw damaged('a zstd block header is cut short');
        const bh = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16);
        const last = bh & 1;
        const type = (bh >> 1) & 3;
        const bsize = bh >>> 3;
        if (type === 3) throw damaged('a zstd block has a reserved type');
        o += 3 + (type === 1 ? 1 : bsize);
        if (o > MAX_FRAME) throw notOurs('its zstd frames are too large to import piece by piece');
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
export async function* decompressFrames(frames: AsyncIterable<Frame>, pool: WorkerPool, file: string): AsyncGenerator<Buffer> {
  const window: Promise<Buffer>[] = [];
  for await (const f of frames) {
    if (f.skippable) continue;
    const fail = () =>
      new DevsnapError('DAMAGED', `${file} is corrupt: the zstd frame at byte ${f.offset} does not decompress.`, 'The archive is damaged; export the snapshot again, or copy the file again.');
    // Every frame devsnap writes states its size; decompressing one that does not could not be bounded.
    if (f.contentSize === null) throw notWrittenByExport(file, 'a zstd frame does not state its size');
    const p = pool.decompress(f.data, f.contentSize).then(
      (r) => r.raw,
      () => Promise.reject(fail()),
    );
    p.catch(() => undefined);
    window.push(p);
    if (window.length >= pool.size * 2) yield await window.shift()!;
  }
  while (window.length) yield await window.shift()!;
}
