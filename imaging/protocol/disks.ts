// Disks and partitions as the engine sees them (`devsnap disks`, the source of a snapshot).
import * as v from 'valibot';

export const PartitionInfo = v.object({
  /** 1-based, as in /dev/sdX<N>. */
  index: v.number(),
  /** Byte offset in the disk. */
  start: v.number(),
  size: v.number(),
  /** GPT type GUID or MBR type as 0xNN. */
  type: v.string(),
  /** 'EFI System', 'Linux filesystem', ... */
  typeName: v.optional(v.string()),
  /** GPT partition name. */
  name: v.optional(v.string()),
  /** GPT partition GUID. */
  uuid: v.optional(v.string()),
  /** 'ext4' | 'vfat' | 'ntfs' | ...; absent when unknown. */
  fs: v.optional(v.string()),
  label: v.optional(v.string()),
  fsUuid: v.optional(v.string()),
  /** Bytes in use in the filesystem (when understood). */
  usedBytes: v.optional(v.number()),
});
export type PartitionInfo = v.InferOutput<typeof PartitionInfo>;

export const PartitionTableKind = v.picklist(['gpt', 'mbr', 'none']);

/**
 * What makes a device virtual: a loop device (over an image file; on Ubuntu every snap package is a
 * mounted squashfs on one), a RAM disk (brd's ram0…), compressed RAM (zram, mostly swap) or an nbd
 * device with nothing connected. Not a drive of this machine: pickers leave them out unless asked.
 */
export const VirtualKind = v.picklist(['loop', 'ram', 'zram', 'nbd']);
export type VirtualKind = v.InferOutput<typeof VirtualKind>;
export const VirtualDevice = v.object({
  kind: VirtualKind,
  /** A loop device's image file (absent when the kernel does not say). */
  backingFile: v.optional(v.string()),
  /** The filesystem on the device itself, when it has no partitions ('squashfs' for a snap). */
  fs: v.optional(v.string()),
});
export type VirtualDevice = v.InferOutput<typeof VirtualDevice>;

export const DiskInfo = v.object({
  /** /dev/sda, /dev/loop3 or an image file. */
  path: v.string(),
  kind: v.picklist(['disk', 'loop', 'file']),
  size: v.number(),
  model: v.optional(v.string()),
  table: v.optional(PartitionTableKind),
  /** Holds the running system's root filesystem. */
  isSystem: v.boolean(),
  readOnly: v.optional(v.boolean()),
  mountpoints: v.array(v.string()),
  partitions: v.array(v.object({ ...PartitionInfo.entries, path: v.optional(v.string()), mountpoints: v.optional(v.array(v.string())) })),
  /** Set on virtual devices (loop, RAM disks, zram, an unconnected nbd); absent on drives (and in results of older engines). */
  virtual: v.optional(VirtualDevice),
  /** What could not be read or trusted on this disk (a damaged table, a hostile or damaged filesystem): listed, never an abort. */
  notes: v.optional(v.array(v.string())),
});
export type DiskInfo = v.InferOutput<typeof DiskInfo>;

export const DisksResult = v.object({ disks: v.array(DiskInfo) });
export type DisksResult = v.InferOutput<typeof DisksResult>;
