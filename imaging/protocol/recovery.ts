// The recovery kit's operations (imaging/recovery/): write it into a repository or a folder, and say
// whether it is there and up to date.
import * as v from 'valibot';
import { text } from './common';

const Path = v.pipe(text(), v.minLength(1, 'must be a path'));

/** Into the repository `repo` (its recovery/ folder), or into the folder `to` (recovery media). */
export const KitWriteRequest = v.pipe(
  v.strictObject({ repo: v.optional(Path), to: v.optional(Path), /** A Node (Linux x86-64, ≥ 22.15) to put in it instead of the pinned one. */ node: v.optional(Path) }),
  v.check((r) => (r.repo === undefined) !== (r.to === undefined), 'give exactly one of repo and to'),
);
export type KitWriteRequest = v.InferOutput<typeof KitWriteRequest>;

/** The kit of the repository `repo`, or the kit folder `dir`; `deep` hashes every file. */
export const KitStatusRequest = v.pipe(
  v.strictObject({ repo: v.optional(Path), dir: v.optional(Path), deep: v.optional(v.boolean()) }),
  v.check((r) => (r.repo === undefined) !== (r.dir === undefined), 'give exactly one of repo and dir'),
);
export type KitStatusRequest = v.InferOutput<typeof KitStatusRequest>;

export const KitRecord = v.object({
  format: v.literal(1),
  engine: v.string(),
  node: v.string(),
  platform: v.literal('linux-x64'),
  written: v.string(),
  files: v.record(v.string(), v.string()),
});
export type KitRecord = v.InferOutput<typeof KitRecord>;

export const KitStatus = v.object({
  dir: v.string(),
  state: v.picklist(['ok', 'missing', 'outdated', 'damaged']),
  reason: v.optional(v.string()),
  record: v.optional(KitRecord),
});
export type KitStatus = v.InferOutput<typeof KitStatus>;
