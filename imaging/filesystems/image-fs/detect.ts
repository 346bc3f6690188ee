import type { ByteReader } from '../types';
import { ExtImageFs } from '../ext/reader';
import { FatImageFs } from '../fat/reader';
import { NtfsImageFs } from '../ntfs/reader';
import type { ImageFs } from './types';

/** The filesystem on `reader` (ext2/3/4, FAT12/16/32 or NTFS), or null when none is recognised. */
export async function openImageFs(reader: ByteReader): Promise<ImageFs | null> {
  return (await ExtImageFs.open(reader)) ?? (await FatImageFs.open(reader)) ?? (await NtfsImageFs.open(reader));
}
