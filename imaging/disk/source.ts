// Byte access to a source disk and to one of its partitions.
import * as fs from 'fs';
import type { ByteReader } from '../filesystems/types';
import { readFully } from '../core/fsutil';

/** What the engine's readers need of the source: positional reads, as a FileHandle (or an LVM session, capture/lvm-source.ts) does them. */
export interface SourceRead {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export function fileReader(fh: fs.promises.FileHandle, size: number): ByteReader {
  return { size, read: (position, length, into) => readFully(fh, position, length, into?.subarray(0, length)) };
}

export function sliceReader(base: ByteReader, start: number, size: number): ByteReader {
  return { size, read: (position, length, into) => base.read(start + position, length, into) };
}
