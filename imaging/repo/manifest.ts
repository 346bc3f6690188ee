// The snapshot manifest: everything needed to restore a disk, as one JSON document
// (snapshots/<id>.json). See imaging/FORMAT.md.
//
// A manifest is untrusted input: it may come from an imported archive, a repository on a shared
// drive, or a damaged disk, and its numbers end up in dd commands, file offsets and buffer sizes.
// parseManifest therefore checks every field (types with valibot schemas, then the geometry against
// the disk size by hand, in one pass over the extents) before anything uses it.
import * as crypto from 'crypto';
import * as v from 'valibot';
import type { PartitionInfo, SnapshotSummary } from '../protocol';
import type { PartitionTable } from '../disk/partitions';
import { DevsnapError } from '../core/errors';
import { Extents, ExtentsBuilder, FREE, Kind, ZERO, isChunkId, type Extent } from './extents';
import { parseManifestJson, stringifyBytes } from './manifest-json';

export { Extents, Kind, ZERO, FREE, type Extent, type ExtentRef } from './extents';

/** The stored chunk ids an extent needs: none for zero and free runs, one chunk, or a patch and its base. */
export function extentChunks(e: Extent): string[] {
  if (e.length === 4) return [e[2], e[3]];
  return e[2] === ZERO || e[2] === FREE ? [] : [e[2]];
}

/** How a snapshot reached consistency (FORMAT.md); 'crash-consistent' is the name earlier versions gave a fuzzy read. */
export type Consistency = 'offline' | 'native-snapshot' | 'frozen-two-pass' | 'frozen' | 'fuzzy' | 'crash-consistent';

export interface Area {
  kind: 'raw' | 'partition';
  partition?: number; // PartitionInfo.index for kind 'partition'
  start: number; // byte offset in the disk
  size: number;
  mode: 'raw' | 'used-blocks' | 'full'; // used-blocks: the filesystem told us which blocks matter
  extents: Extents; // held compactly (repo/extents.ts); read as Extent tuples
}

export interface Manifest extends SnapshotSummary {
  format: 'devsnap-snapshot';
  version: 1 | 2;
  chunkSize: number;
  table: PartitionTable;
  areas: Area[];
  inventory: unknown | null; // the environment inventory (compare issue)
  warnings: string[];
  digest?: string; // sha256 of the manifest without this field
}

/** Largest chunk size a manifest may state: import and restore hold whole chunks in memory. */
export const MAX_CHUNK_SIZE = 64 << 20;

// ------------------------------------------------------------------------------------------------
// Schemas. Objects are loose (unknown fields are kept, for manifests of a later devsnap that added
// some); the caller gets the parsed JSON itself, so re-serializing never drops a field.

const SNAPSHOT_ID = /^[0-9a-f]{16}$/;
const CHUNK_ID = /^[0-9a-f]{64}$/;

export const count = v.pipe(v.number('is not a number'), v.safeInteger('is not a whole number'), v.minValue(0, 'is negative'));
const text = v.string('is not a string');
const timestamp = v.pipe(text, v.isoTimestamp('is not an ISO 8601 time'));
export const snapshotId = v.pipe(text, v.regex(SNAPSHOT_ID, 'is not a snapshot id (16 hex digits)'));

const integer = v.pipe(v.number('is not a number'), v.safeInteger('is not a whole number'));

// A partition table may be wrong (an entry past the disk's end, or ending before it starts): the
// manifest records it as found, and only its areas (clamped to the disk) are imaged and restored.
export const PartitionSchema = v.looseObject({
  index: v.pipe(count, v.minValue(1, 'is not a partition number (1 or more)')),
  start: count,
  size: integer,
  type: text,
  typeName: v.optional(text),
  name: v.optional(text),
  uuid: v.optional(text),
  fs: v.optional(text),
  label: v.optional(text),
  fsUuid: v.optional(text),
  usedBytes: v.optional(count),
});

const tableType = v.picklist(['gpt', 'mbr', 'none'], 'is not "gpt", "mbr" or "none"');

export const StatsSchema = v.looseObject({
  bytesRead: count,
  bytesLogical: count,
  bytesUsed: count,
  bytesAdded: count,
  chunksNew: count,
  chunksReused: count,
  durationSeconds: v.pipe(v.number('is not a number'), v.finite('is not a finite number'), v.minValue(0, 'is negative')),
});

/** What `list` shows of a snapshot (SnapshotSummary in protocol.ts). */
export const SummarySchema = v.looseObject({
  id: snapshotId,
  label: text,
  created: timestamp,
  host: text,
  source: v.looseObject({ path: text, size: count, model: v.optional(text), table: tableType, diskId: v.optional(text) }),
  consistency: v.picklist(
    ['offline', 'native-snapshot', 'frozen-two-pass', 'frozen', 'fuzzy', 'crash-consistent'],
    'is not a known consistency ("offline", "native-snapshot", "frozen-two-pass", "frozen", "fuzzy")',
  ),
  pointInTime: v.optional(
    v.looseObject({
      at: timestamp,
      pauseSeconds: v.pipe(v.number('is not a number'), v.finite('is not a finite number'), v.minValue(0, 'is negative')),
      rounds: count,
      rereadBytes: count,
      methods: v.array(v.looseObject({ mountpoint: text, partition: v.optional(count), how: text }), 'is not a list'),
    }),
  ),
  readMode: v.optional(v.picklist(['all', 'changes'], 'is not "all" or "changes"')),
  parent: v.optional(snapshotId),
  pinned: v.boolean('is not true or false'),
  state: v.picklist(['verified', 'not-verified', 'damaged'], 'is not "verified", "not-verified" or "damaged"'),
  verifiedAt: v.optional(timestamp),
  stats: StatsSchema,
  partitions: v.array(PartitionSchema, 'is not a list'),
});

const AreaSchema = v.looseObject({
  kind: v.picklist(['raw', 'partition'], 'is not "raw" or "partition"'),
  partition: v.optional(PartitionSchema.entries.index),
  start: count,
  size: count,
  mode: v.picklist(['raw', 'used-blocks', 'full'], 'is not "raw", "used-blocks" or "full"'),
  // Checked by hand (toExtents, checkGeometry): millions of extents, and each depends on the one before.
  extents: v.custom<Extents>((x) => x instanceof Extents, 'is not a list'),
});

export const ManifestSchema = v.looseObject({
  ...SummarySchema.entries,
  format: v.literal('devsnap-snapshot'),
  version: v.picklist([1, 2], 'is not 1 or 2'),
  chunkSize: v.pipe(count, v.minValue(1, 'is zero'), v.maxValue(MAX_CHUNK_SIZE, `is larger than ${MAX_CHUNK_SIZE} bytes`)),
  table: v.looseObject({
    type: tableType,
    sectorSize: v.literal(512, 'is not 512'),
    diskId: v.optional(text),
    partitions: v.array(PartitionSchema, 'is not a list'),
    gpt: v.optional(
      v.looseObject({
        headerLba: count,
        backupLba: count,
        entriesLba: count,
        entryCount: count,
        entrySize: count,
        firstUsableLba: count,
        lastUsableLba: count,
      }),
    ),
  }),
  areas: v.array(AreaSchema, 'is not a list'),
  inventory: v.nullable(v.looseObject({}, 'is not an object or null')),
  warnings: v.array(text, 'is not a list'),
  digest: v.pipe(text, v.regex(CHUNK_ID, 'is not a sha256 digest')),
});

// The schema describes the Manifest type: a change to one that the other does not follow fails to compile.
const _schemaMatchesType = (x: v.InferOutput<typeof ManifestSchema>): Manifest => x;
void _schemaMatchesType;

/** `areas[3].extents[7]` from a valibot issue path. */
function fieldName(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  }
  return out || 'the manifest';
}

/** A value for a message: JSON (no raw control characters from hostile input), shortened. */
export function shown(x: unknown): string {
  let s: string;
  try {
    s = x === undefined ? 'missing' : (JSON.stringify(x) ?? String(x));
  } catch {
    s = String(x);
  }
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

/** Everything the schema cannot say: ids, geometry against the disk size, and the extent maps. */
function checkGeometry(m: Manifest, fileId: string | null): string | null {
  if (fileId !== null && m.id !== fileId) return `id is ${m.id}, but the file is snapshots/${fileId}.json (a copy of another snapshot's manifest?)`;
  const disk = m.source.size;
  if (m.table.type !== m.source.table) return `table.type ${shown(m.table.type)} differs from source.table ${shown(m.source.table)}`;
  const unique = (list: PartitionInfo[], name: string): string | null => {
    const seen = new Set<number>();
    for (const p of list) {
      if (seen.has(p.index)) return `${name} lists partition ${p.index} twice`;
      seen.add(p.index);
    }
    return null;
  };
  const why = unique(m.partitions, 'partitions') ?? unique(m.table.partitions, 'table.partitions');
  if (why) return why;
  const chunk = m.chunkSize;
  let end = 0; // areas are in disk order and never overlap: restore and export write each byte once
  const imaged = new Set<number>();
  for (const [i, a] of m.areas.entries()) {
    const name = `areas[${i}]`;
    if (a.start < end) return `${name} starts at byte ${a.start}, inside the area before it (which ends at ${end})`;
    end = a.start + a.size;
    if (end > disk) return `${name} ends at byte ${end}, past the end of the ${disk}-byte disk`;
    if ((a.kind === 'partition') !== (a.partition !== undefined)) return `${name} is of kind ${a.kind} ${a.partition === undefined ? 'without' : 'with'} a partition number`;
    if (a.partition !== undefined) {
      const p = m.partitions.find((x) => x.index === a.partition);
      if (!p) return `${name} is partition ${a.partition}, which partitions does not list`;
      if (a.start < p.start || end > p.start + p.size) return `${name} (bytes ${a.start}-${end}) lies outside partition ${p.index} (bytes ${p.start}-${p.start + p.size})`;
      if (imaged.has(a.partition)) return `partition ${a.partition} has two areas`;
      imaged.add(a.partition);
    }
    const ex = a.extents;
    let pos = 0;
    for (let j = 0; j < ex.length; j++) {
      const [off, len, kind] = [ex.offset(j), ex.size(j), ex.kind(j)];
      if (kind === Kind.Patch && m.version < 2) return `${name}.extents[${j}] is not [offset, length, chunk]: ${shown(ex.at(j))}`;
      if (off !== pos) return `${name}.extents[${j}] starts at ${shown(off)}, not at ${pos} where the extent before it ends (a gap, an overlap or out of order)`;
      if (!Number.isSafeInteger(len) || len <= 0) return `${name}.extents[${j}] has the length ${shown(len)}, not a positive whole number`;
      if ((kind === Kind.Chunk || kind === Kind.Patch) && len > chunk) return `${name}.extents[${j}] is a chunk of ${len} bytes, longer than the chunk size (${chunk})`;
      pos += len;
      if (pos > a.size) return `${name}.extents[${j}] ends at byte ${pos} of the area, past its size (${a.size})`;
    }
    if (pos !== a.size) return `${name}.extents cover ${pos} of the area's ${a.size} bytes`;
  }
  return null;
}

function digestOf(m: Manifest): string {
  const { digest: _omit, ...rest } = m;
  return crypto.createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** `,"digest":"<hex>"}`: how a manifest devsnap writes ends (the digest is its last field). */
const digestTail = (digest: string) => `,"digest":"${digest}"}`;

export function serializeManifest(m: Manifest): Buffer {
  const { digest: _omit, ...rest } = m;
  // The digest is of this JSON; the file is the same JSON with the digest added last, so a reader
  // checks it over the bytes as they are (digestHolds) without serializing the manifest again.
  // Written into one buffer with room for the digest (extent maps straight from Extents).
  const room = digestTail('0'.repeat(64)).length - 1; // the tail replaces the closing brace
  const out = stringifyBytes(rest, room);
  const json = out.subarray(0, out.length - room);
  const digest = crypto.createHash('sha256').update(json).digest('hex');
  if (json.length === 2) return Buffer.from('{"digest":"' + digest + '"}'); // {}
  out.write(digestTail(digest), json.length - 1, 'latin1');
  return out;
}

/**
 * Whether the manifest's digest is that of its JSON without it. Checked over the file's own bytes
 * when the digest is its last field (as devsnap writes it: tens of MB are not serialized again);
 * otherwise over the parsed manifest serialized again (a file written with another field order).
 */
function digestHolds(bytes: Buffer, m: Manifest): boolean {
  if (typeof m.digest !== 'string') return false;
  const tail = digestTail(m.digest);
  if (bytes.length > tail.length + 1 && bytes.toString('latin1', bytes.length - tail.length) === tail) {
    const h = crypto
      .createHash('sha256')
      .update(bytes.subarray(0, bytes.length - tail.length))
      .update('}');
    if (h.digest('hex') === m.digest) return true;
  }
  return m.digest === digestOf(m);
}

/**
 * Parses and validates a manifest. `fileId` is the id in its file name (snapshots/<id>.json), which
 * the manifest's own id must equal; null for a manifest that has no file yet (one being imported,
 * `subject` then names where it comes from). Anything invalid is DAMAGED, naming the field.
 */
export function parseManifest(bytes: Buffer, fileId: string | null, subject = `snapshot ${fileId}`): Manifest {
  const hint =
    fileId === null
      ? 'The archive is damaged or was not written by `devsnap export`; export the snapshot again.'
      : 'This snapshot cannot be used: restore from another snapshot, and run `devsnap check`.';
  let m: Manifest;
  try {
    m = parseManifestJson(bytes) as Manifest;
  } catch {
    throw new DevsnapError('DAMAGED', `The manifest of ${subject} is truncated or corrupt.`, hint);
  }
  if (m === null || typeof m !== 'object' || m.format !== 'devsnap-snapshot') throw new DevsnapError('DAMAGED', `The manifest of ${subject} is not a devsnap snapshot manifest.`, hint);
  if (m.version !== 1 && m.version !== 2)
    throw new DevsnapError('DAMAGED', `Snapshot ${fileId ?? shown(m.id)} has manifest version ${shown(m.version)}, which this devsnap does not know.`, 'Update devsnap.');
  if (!digestHolds(bytes, m)) throw new DevsnapError('DAMAGED', `The manifest of ${subject} is corrupt (its checksum does not match).`, hint);
  const why = toExtents(m) ?? invalidity(m, fileId);
  if (why) throw new DevsnapError('DAMAGED', `The manifest of ${subject} is invalid: ${why}.`, hint);
  return m;
}

/**
 * Extent maps still plain JSON arrays (not laid out as devsnap writes them) made Extents: what is
 * wrong with the first extent that is not a well-formed tuple, or null.
 */
function toExtents(m: Manifest): string | null {
  if (!Array.isArray(m.areas)) return null; // the schema says so
  for (const [i, a] of (m.areas as unknown[]).entries()) {
    const list = (a as { extents?: unknown } | null)?.extents;
    if (!Array.isArray(list)) continue;
    const out = new ExtentsBuilder(list.length);
    for (const [j, e] of list.entries()) {
      const why = shapeProblem(e, m.version >= 2);
      if (why) return `areas[${i}].extents[${j}] ${why}`;
      out.pushTuple(e as Extent);
    }
    (a as Area).extents = out.finish();
  }
  return null;
}

/** What is wrong with the shape of one extent as JSON, or null. */
function shapeProblem(e: unknown, patches: boolean): string | null {
  if (!Array.isArray(e) || (e.length !== 3 && (e.length !== 4 || !patches)) || typeof e[0] !== 'number' || typeof e[1] !== 'number')
    return `is not [offset, length, chunk]${patches ? ' or [offset, length, patch, base]' : ''}: ${shown(e)}`;
  const [, , ref] = e;
  if (e.length === 4 && !(isChunkId(e[3]) && isChunkId(ref))) return `is a patch whose patch or base ${shown([ref, e[3]])} is not a chunk id (64 hex digits)`;
  if (e.length === 3 && ref !== ZERO && ref !== FREE && !isChunkId(ref)) return `refers to ${shown(ref)}, which is not a chunk id (64 hex digits), "z" or "f"`;
  return null;
}

/** What is wrong with a manifest (the first thing found), or null. */
function invalidity(m: Manifest, fileId: string | null): string | null {
  const r = v.safeParse(ManifestSchema, m, { abortEarly: true });
  return r.success ? checkGeometry(m, fileId) : `${fieldName(r.issues[0])} ${r.issues[0].message} (it is ${shown(r.issues[0].input)})`;
}

/**
 * Refuses to commit a manifest that readers would refuse: a snapshot, import or label change must
 * fail with nothing written rather than commit a snapshot that cannot be read back.
 */
export function checkManifest(m: Manifest): void {
  const why = invalidity({ ...m, digest: '0'.repeat(64) }, m.id);
  if (why) throw new DevsnapError('INTERNAL', `devsnap built an invalid manifest for snapshot ${m.id} (${why}); nothing was committed.`, 'Please report this with the output of the command.');
}

/** The summary the extension and `list --json` show: the manifest without its extent maps. */
export function summarize(m: Manifest): SnapshotSummary {
  const { format: _f, version: _v, chunkSize: _c, table: _t, areas: _a, inventory: _i, warnings: _w, digest: _d, ...summary } = m;
  return summary;
}

export function partitionOf(m: Manifest, index: number): PartitionInfo {
  const p = m.partitions.find((x) => x.index === index);
  if (!p) throw new DevsnapError('NOT_FOUND', `Snapshot ${m.id} has no partition ${index}.`, `It has partitions ${m.partitions.map((x) => x.index).join(', ') || '(none)'}.`);
  return p;
}

/** Every data chunk id the manifest references (patches and their bases), as [ids, offset of the 32 bytes]. */
export function* chunkIdBytes(m: Manifest): Generator<[Buffer, number]> {
  for (const a of m.areas) for (let i = 0; i < a.extents.length; i++) for (const at of a.extents.idsAt(i)) yield [a.extents.idBytes, at];
}

/** Every data chunk id the manifest references (patches and their bases). */
export function* chunkRefs(m: Manifest): Generator<string> {
  for (const [ids, at] of chunkIdBytes(m)) yield ids.toString('hex', at, at + 32);
}
