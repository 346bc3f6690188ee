// The elevated helper's channel (imaging/helper/, extension/helperChannel.ts; security model in
// imaging/helper/README.md). Frames: a 4-byte big-endian length, then that many bytes of UTF-8
// JSON, at most HELPER_MAX_MESSAGE.
//
// Handshake (the extension listens, the helper connects; `secret` is the one-time secret):
//   helper    → { v, type: 'hello', nonce: Nh, pid, uid }
//   extension → { v, type: 'challenge', nonce: Ne, mac: HMAC(secret, 'devsnap-extension\0' Nh '\0' Ne) }
//   helper    → { v, type: 'auth', mac: HMAC(secret, 'devsnap-helper\0' Ne '\0' Nh) }   (after checking mac)
//   extension → { v, type: 'ready' }                                                        (after checking mac)
// `v` is PROTOCOL_VERSION: either side drops a peer of another version. Neither side sends the secret.
// Then each frame is one JSON-RPC 2.0 message of the engine's protocol (protocol/rpc.ts), as the
// engine service speaks it: the operations of HELPER_PARAMS, RPC_SHUTDOWN, and RPC_BYE before exit.
import * as v from 'valibot';
import { absolutePath, bool } from './common';
import { OPS, OpParams, OpResult } from './ops';

export const HELPER_MAX_MESSAGE = 1 << 20;

/**
 * The operations the helper serves: the engine's own, with paths that must be absolute and the
 * helper's extra safety switches (imaging/helper/README.md). Looking inside snapshots (inventory,
 * listDir, readFile, changes) stays in the user's own engine process: it needs no root.
 */
const allowRootRepository = v.optional(bool()); // accept a repository folder owned by root (default: only folders the requesting user owns)
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withRepo<E extends v.ObjectEntries, X extends v.ObjectEntries = Record<never, never>>(params: v.StrictObjectSchema<E, any>, extra?: X) {
  return v.strictObject({ ...params.entries, repo: repositoryLocation(), allowRootRepository, ...(extra ?? ({} as X)) });
}

/** A repository folder (absolute), or a bucket as "s3:https://host/bucket/prefix" (checked in full by the helper, storage/location.ts). */
const repositoryLocation = () => {
  const m = 'must be an absolute path or an s3: location';
  return v.pipe(
    v.string(m),
    v.check((s) => s.startsWith('/') || s.startsWith('s3:'), m),
    v.maxLength(4096, 'must be at most 4096 characters'),
    v.check((s) => !s.includes('\0'), 'must not contain NUL bytes'),
  );
};

export const HELPER_PARAMS = {
  listDisks: OPS.listDisks.params,
  listSnapshots: withRepo(OPS.listSnapshots.params),
  show: withRepo(OPS.show.params),
  snapshot: withRepo(OPS.snapshot.params, { source: absolutePath() }),
  planSnapshot: withRepo(OPS.planSnapshot.params, { source: absolutePath() }),
  // New ids (loop devices, mount, tune2fs as root, in the restored system): not through the helper yet.
  restore: withRepo(v.omit(OPS.restore.params, ['newIds']), {
    target: absolutePath(),
    /** The user confirmed overwriting the target (required unless dryRun). */
    confirmed: v.optional(bool()),
    /** Asked explicitly to overwrite the running system's disk: still refused while it runs. */
    allowSystemDisk: v.optional(bool()),
  }),
  verify: withRepo(v.omit(OPS.verify.params, ['against'])), // comparing with a disk: not through the helper yet
  check: withRepo(OPS.check.params),
  diff: withRepo(OPS.diff.params),
  forget: withRepo(OPS.forget.params),
  prune: withRepo(OPS.prune.params),
  label: withRepo(OPS.label.params),
  pin: withRepo(OPS.pin.params),
  /**
   * Restores files of a snapshot into a folder of the user, or in place (inPlace) below a folder
   * such as '/': a folder the user does not own is accepted only for an in-place restore, and a
   * real (not dry-run) one only with `confirmed`. Without `deep`: the helper compares by size,
   * mode and mtime only, so it never reads root's files for the user.
   */
  restoreFiles: withRepo(v.omit(OPS.restoreFiles.params, ['deep']), {
    target: absolutePath(),
    /** The user confirmed restoring in place (required for a real in-place restore into a folder the user does not own). */
    confirmed: v.optional(bool()),
  }),
  /**
   * Undoes an upgrade in place below `target` (the running system's '/'): as restoreFiles in place,
   * a real one only with `confirmed`, and without `deep` (the helper never reads root's files for
   * the user).
   */
  undo: withRepo(v.omit(OPS.undo.params, ['deep']), {
    target: absolutePath(),
    /** The user confirmed the undo (required unless dryRun). */
    confirmed: v.optional(bool()),
  }),
  /**
   * Automatic snapshots (writing /etc, /usr/local/lib/devsnap and starting the timer, as root): only
   * on the running system, root '/', for a user other than root (helper/server.ts refuses any other
   * root: root's files would be written where the user chose). `root` is required: the extension
   * names it, the helper checks it.
   */
  autoInstall: v.strictObject({ ...OPS.autoInstall.params.entries, root: absolutePath() }),
  autoRemove: v.strictObject({ ...OPS.autoRemove.params.entries, root: absolutePath() }),
};

export type HelperOpName = keyof typeof HELPER_PARAMS;
export type HelperParams<K extends HelperOpName> = v.InferOutput<(typeof HELPER_PARAMS)[K]>;
/** Every request the helper serves: its parameters and its result (the engine's). */
export type HelperOps = { [K in HelperOpName]: { params: HelperParams<K>; result: OpResult<K> } };
export type { OpParams };

export type HelperHandshake =
  | { v: number; type: 'hello'; nonce: string; pid: number; uid: number }
  | { v: number; type: 'challenge'; nonce: string; mac: string }
  | { v: number; type: 'auth'; mac: string }
  | { v: number; type: 'ready' };
