// Reading files inside a filesystem image without restoring it and without root (the image of a
// snapshot: repo/snapshot-disk.ts; a snapshot's filesystem opened: files/open.ts).
export * from './types';
export { openImageFs } from './detect';
export { ExtImageFs, extAclToXattr } from '../ext/reader';
export { FatImageFs } from '../fat/reader';
export { NtfsImageFs } from '../ntfs/reader';
export { compareNames, joinPath, normalizePath } from './base';
export { imageFsDigest, type ImageDigestField } from './digest';
