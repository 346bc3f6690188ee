// Validation of what arrives over the helper's channel, before anything runs: the version, the
// request type, and every field against the operation's schema (protocol/helper.ts: the engine's
// parameters with absolute paths and the helper's switches). Unknown fields are refused too, so a
// typo (`allowSystemdisk`) cannot silently fall back to the default. Nothing here touches the disk;
// the checks of paths (devices, files, repositories) are in checks.ts.
import * as v from 'valibot';
import { check, ErrorInfo, HELPER_PARAMS, HelperRequest, PROTOCOL_VERSION, snapshotName } from '../protocol';
export { MAX_RESTORE_PATHS } from '../protocol';

/** The requests that control the channel itself. */
const CONTROL = {
  cancel: v.strictObject({ target: snapshotName() }),
  shutdown: v.strictObject({}),
};
const SCHEMAS: Record<string, v.GenericSchema> = { ...HELPER_PARAMS, ...CONTROL };

const isId = (x: unknown): x is string => typeof x === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(x);

/** A request as sent, or the error to reply with (`id` when the request's id could be read). */
export type Validated = { ok: true; request: HelperRequest } | { ok: false; id: string | null; error: ErrorInfo };

export function validateRequest(msg: unknown): Validated {
  const fail = (id: string | null, message: string, hint?: string): Validated => ({ ok: false, id, error: { code: 'USAGE', message, ...(hint ? { hint } : {}) } });
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return fail(null, 'Refused a message that is not a JSON object.');
  const { v: version, id: rawId, type, ...params } = msg as Record<string, unknown>;
  const id = isId(rawId) ? rawId : null;
  if (version !== PROTOCOL_VERSION)
    return fail(
      id,
      `Refused a message of protocol version ${JSON.stringify(version)}; this helper speaks version ${PROTOCOL_VERSION}.`,
      'Restart VS Code so that the extension and its helper come from the same install.',
    );
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(SCHEMAS, type)) return fail(id, `Refused a request of unknown type ${JSON.stringify(type)}.`);
  if (!id) return fail(null, `Refused a "${type}" request without a valid "id".`);
  const r = check(SCHEMAS[type], params);
  if (!r.ok) return fail(id, `Refused the "${type}" request: ${r.problem}.`);
  return { ok: true, request: { v: version, id, type, ...(r.value as object) } as HelperRequest };
}
