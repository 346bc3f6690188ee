// Reading files inside a snapshot without restoring it and without root.
export * from './types';
export { openImageFs } from './detect';
export { SnapshotDisk, type ChunkSource, type SnapshotDiskOptions } from './snapshot-disk';
export { ExtImageFs, extAclToXattr } from './ext-reader';
export { FatImageFs } from './fat-reader';
export { compareNames, joinPath, normalizePath } from './base';
export { openSnapshotFs, defaultPartition, type OpenedSnapshotFs, type OpenSnapshotFsOptions } from './open';
export { imageFsDigest, type ImageDigestField } from './digest';
