// Validation of a call that reached the helper, before anything runs: the operation must be one the
// helper serves, and its parameters must fit the helper's schema of it (protocol/helper.ts: the
// engine's parameters with absolute paths and the helper's switches). Unknown fields are refused
// too, so a typo (`allowSystemdisk`) cannot silently fall back to the default. The JSON-RPC envelope
// was checked before (rpcFrames.ts, ops/serve.ts); nothing here touches the disk: the checks of
// paths (devices, files, repositories) are in checks.ts.
import { check, HELPER_PARAMS, HelperOpName, HelperParams } from '../protocol';
export { MAX_RESTORE_PATHS } from '../protocol';

/** A call as the helper runs it: the operation's name as `type`, and its parameters. */
export type HelperCall = { [K in HelperOpName]: { type: K } & HelperParams<K> }[HelperOpName];

export const HELPER_OP_NAMES = Object.keys(HELPER_PARAMS) as HelperOpName[];

export const isHelperOp = (name: string): name is HelperOpName => Object.prototype.hasOwnProperty.call(HELPER_PARAMS, name);

export type Validated = { ok: true; call: HelperCall } | { ok: false; message: string };

export function validateCall(name: string, params: unknown): Validated {
  if (!isHelperOp(name)) return { ok: false, message: `Refused a request of unknown type ${JSON.stringify(name)}.` };
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params)))
    return { ok: false, message: `Refused the "${name}" request: its parameters must be an object.` };
  const r = check(HELPER_PARAMS[name], params ?? {});
  if (!r.ok) return { ok: false, message: `Refused the "${name}" request: ${r.problem}.` };
  return { ok: true, call: { type: name, ...(r.value as object) } as HelperCall };
}
