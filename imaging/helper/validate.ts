// Validation of what arrives over the helper's channel, before anything runs: the version, the
// request type, and every field's presence and type. Unknown fields are refused too, so a typo
// (`allowSystemdisk`) cannot silently fall back to the default. Nothing here touches the disk;
// the checks of paths (devices, files, repositories) are in checks.ts.
import { ErrorInfo, HelperOpName, HelperRequest, PROTOCOL_VERSION } from '../protocol';
import { checkSnapshotPath } from '../operations';

type FieldType = 'path' | 'string' | 'text' | 'id' | 'int' | 'level' | 'bool' | 'ids' | 'policy' | 'snapshotPaths';
interface Field { type: FieldType; required?: boolean }
type Schema = Record<string, Field>;

const repo: Schema = { repo: { type: 'path', required: true }, password: { type: 'text' }, allowRootRepository: { type: 'bool' } };

export const SCHEMAS: Record<HelperOpName | 'cancel' | 'shutdown', Schema> = {
  listDisks: {},
  listSnapshots: { ...repo },
  show: { ...repo, snapshot: { type: 'id', required: true } },
  snapshot: { ...repo, source: { type: 'path', required: true }, label: { type: 'text' }, compressionLevel: { type: 'level' }, freeze: { type: 'bool' }, fuzzy: { type: 'bool' }, fullRead: { type: 'bool' } },
  planSnapshot: { ...repo, source: { type: 'path', required: true } },
  restore: {
    ...repo, snapshot: { type: 'id', required: true }, target: { type: 'path', required: true }, partition: { type: 'int' }, dryRun: { type: 'bool' },
    confirmed: { type: 'bool' }, allowSystemDisk: { type: 'bool' },
  },
  verify: { ...repo, snapshot: { type: 'id' } },
  check: { ...repo, readData: { type: 'bool' } },
  diff: { ...repo, a: { type: 'id', required: true }, b: { type: 'id', required: true } },
  forget: { ...repo, ids: { type: 'ids' }, policy: { type: 'policy' }, dryRun: { type: 'bool' }, prune: { type: 'bool' } },
  prune: { ...repo, dryRun: { type: 'bool' } },
  label: { ...repo, snapshot: { type: 'id', required: true }, label: { type: 'text', required: true } },
  pin: { ...repo, snapshot: { type: 'id', required: true }, pinned: { type: 'bool', required: true } },
  // `target` must also be an existing folder the rules allow: checked on disk by checks.ts (resolveFilesTarget).
  restoreFiles: {
    ...repo, snapshot: { type: 'id', required: true }, partition: { type: 'int' }, paths: { type: 'snapshotPaths', required: true },
    target: { type: 'path', required: true }, inPlace: { type: 'bool' }, dryRun: { type: 'bool' }, confirmed: { type: 'bool' },
  },
  cancel: { target: { type: 'id', required: true } },
  shutdown: {},
};

const MAX_TEXT = 4096;
/** restoreFiles: at most this many paths per request, each at most MAX_TEXT characters. */
export const MAX_RESTORE_PATHS = 10000;
const isId = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(v);

function checkField(name: string, f: Field, v: unknown): string | null {
  const str = (max: number) => (typeof v === 'string' && v.length <= max && !v.includes('\0') ? null : `"${name}" must be a string of at most ${max} characters without NUL bytes`);
  switch (f.type) {
    case 'path':
      if (typeof v !== 'string' || !v.startsWith('/')) return `"${name}" must be an absolute path`;
      return str(4096);
    case 'string':
    case 'text':
      return str(MAX_TEXT);
    case 'id':
      return isId(v) ? null : `"${name}" must be a snapshot id or prefix (letters, digits, . _ : -)`;
    case 'int':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? null : `"${name}" must be a whole number`;
    case 'level':
      return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 19 ? null : `"${name}" must be a whole number from 1 to 19`;
    case 'bool':
      return typeof v === 'boolean' ? null : `"${name}" must be true or false`;
    case 'ids':
      return Array.isArray(v) && v.length <= 10000 && v.every(isId) ? null : `"${name}" must be a list of snapshot ids`;
    case 'snapshotPaths': {
      if (!Array.isArray(v) || !v.length || v.length > MAX_RESTORE_PATHS) return `"${name}" must be a list of 1 to ${MAX_RESTORE_PATHS} paths`;
      for (let i = 0; i < v.length; i++) {
        const p = v[i] as unknown;
        if (typeof p !== 'string' || p.length > MAX_TEXT) return `"${name}[${i}]" must be a path inside the snapshot of at most ${MAX_TEXT} characters`;
        const problem = checkSnapshotPath(p);
        if (problem) return `"${name}[${i}]" is ${problem}`;
      }
      return null;
    }
    case 'policy': {
      if (!v || typeof v !== 'object' || Array.isArray(v)) return `"${name}" must be an object`;
      for (const [k, n] of Object.entries(v)) {
        if (!['keepLast', 'keepDaily', 'keepWeekly', 'keepMonthly'].includes(k)) return `"${name}.${k}" is not a retention rule`;
        if (n !== undefined && n !== null && !(Number.isSafeInteger(n) && (n as number) >= 0)) return `"${name}.${k}" must be a whole number`;
      }
      return null;
    }
  }
}

/** A request as sent, or the error to reply with (`id` when the request's id could be read). */
export type Validated = { ok: true; request: HelperRequest } | { ok: false; id: string | null; error: ErrorInfo };

export function validateRequest(msg: unknown): Validated {
  const fail = (id: string | null, message: string, hint?: string): Validated => ({ ok: false, id, error: { code: 'USAGE', message, ...(hint ? { hint } : {}) } });
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return fail(null, 'Refused a message that is not a JSON object.');
  const o = msg as Record<string, unknown>;
  const id = isId(o.id) ? o.id : null;
  if (o.v !== PROTOCOL_VERSION) return fail(id, `Refused a message of protocol version ${JSON.stringify(o.v)}; this helper speaks version ${PROTOCOL_VERSION}.`, 'Restart VS Code so that the extension and its helper come from the same install.');
  if (typeof o.type !== 'string' || !Object.prototype.hasOwnProperty.call(SCHEMAS, o.type)) return fail(id, `Refused a request of unknown type ${JSON.stringify(o.type)}.`);
  if (!id) return fail(null, `Refused a "${o.type}" request without a valid "id".`);
  const schema = SCHEMAS[o.type as keyof typeof SCHEMAS];
  for (const key of Object.keys(o)) {
    if (key === 'v' || key === 'id' || key === 'type') continue;
    if (!schema[key]) return fail(id, `Refused the "${o.type}" request: unknown field "${key}".`);
  }
  for (const [name, f] of Object.entries(schema)) {
    const v = o[name];
    if (v === undefined) {
      if (f.required) return fail(id, `Refused the "${o.type}" request: the field "${name}" is missing.`);
      continue;
    }
    const problem = checkField(name, f, v);
    if (problem) return fail(id, `Refused the "${o.type}" request: ${problem}.`);
  }
  return { ok: true, request: o as unknown as HelperRequest };
}
