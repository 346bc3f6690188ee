// A manifest's JSON with its extent maps read and written as Extents (repo/extents.ts), without the
// millions of small arrays and strings JSON.parse and JSON.stringify would make of them.
//
// Reading: a scan of the bytes finds each `areas[i].extents` array and parses it straight into
// Extents; the rest of the document, with each such array replaced by a marker, goes through
// JSON.parse. The scan only takes what devsnap writes (compact JSON: whole numbers, "f", "z" and
// lowercase chunk ids); for anything else it leaves the array to JSON.parse, and the caller checks
// and converts it as before, with the same messages. Writing gives the bytes of JSON.stringify.
import * as crypto from 'crypto';
import { Extents, ExtentsBuilder, Kind } from './extents';

/** The marker an extent map is replaced by: a string no manifest holds (a random nonce in it). */
const marker = (nonce: string, k: number) => `\u0000${nonce}:${k}`;

/** JSON.parse of a manifest's bytes, its well-formed extent maps already Extents. Throws SyntaxError as JSON.parse does. */
export function parseManifestJson(bytes: Buffer): unknown {
  const found: Found[] = [];
  try {
    scanRoot(bytes, found);
  } catch (err) {
    if (!(err instanceof Unusual)) throw err;
    found.length = 0; // not laid out as devsnap writes it: JSON.parse alone decides
  }
  if (!found.length) return JSON.parse(bytes.toString('utf8'));
  const nonce = crypto.randomBytes(8).toString('hex');
  const parts: Buffer[] = [];
  let pos = 0;
  found.forEach((f, k) => {
    parts.push(bytes.subarray(pos, f.start), Buffer.from(JSON.stringify(marker(nonce, k))));
    pos = f.end;
  });
  parts.push(bytes.subarray(pos));
  const m = JSON.parse(Buffer.concat(parts).toString('utf8'));
  // Each marker is where JSON.parse put that array (a duplicate key keeps the last value, as it would).
  const areas = m && typeof m === 'object' && Array.isArray(m.areas) ? m.areas : [];
  for (const a of areas) {
    if (!a || typeof a !== 'object' || typeof a.extents !== 'string') continue;
    const [n, k] = (a.extents as string).slice(1).split(':');
    if (a.extents.startsWith('\u0000') && n === nonce) a.extents = found[Number(k)].extents;
  }
  return m;
}

/**
 * The bytes of JSON.stringify(value), where Extents are written as their tuples, straight into one
 * buffer (a 1 TB disk's extents are ~45 MB of JSON: no string of them, no second copy), followed by
 * `room` bytes left for the caller.
 */
export function stringifyBytes(value: object, room = 0): Buffer {
  const nonce = crypto.randomBytes(8).toString('hex');
  const lists: Extents[] = [];
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && (v as { extents?: unknown }).extents instanceof Extents) {
      lists.push((v as { extents: Extents }).extents);
      return { ...v, extents: marker(nonce, lists.length - 1) };
    }
    return v;
  });
  // The JSON around the extent maps, and the maps' lengths.
  const texts: Buffer[] = [];
  let pos = 0;
  for (let k = 0; k < lists.length; k++) {
    const text = JSON.stringify(marker(nonce, k));
    const at = json.indexOf(text, pos);
    texts.push(Buffer.from(json.slice(pos, at)));
    pos = at + text.length;
  }
  texts.push(Buffer.from(json.slice(pos)));
  const lengths = lists.map((l) => l.jsonLength());
  const out = Buffer.allocUnsafe(texts.reduce((n, t) => n + t.length, 0) + lengths.reduce((n, l) => n + l, 0) + room);
  let p = 0;
  texts.forEach((t, k) => {
    p += t.copy(out, p);
    if (k < lists.length) {
      lists[k].jsonBytes(out, p);
      p += lengths[k];
    }
  });
  return out;
}

interface Found {
  start: number;
  end: number;
  extents: Extents;
}

/** The document is not laid out as the scan expects: leave it all to JSON.parse. */
class Unusual extends Error {}

const WS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;

function ws(b: Uint8Array, i: number): number {
  while (i < b.length && WS[b[i]]) i++;
  return i;
}

/** After the string that starts at i (its opening quote). */
function skipString(b: Buffer, i: number): number {
  let j = i + 1;
  for (;;) {
    const k = b.indexOf(QUOTE, j);
    if (k < 0) throw new Unusual();
    let slashes = 0;
    for (let p = k - 1; b[p] === BACKSLASH; p--) slashes++;
    if (slashes % 2 === 0) return k + 1;
    j = k + 1;
  }
}

/** After the value that starts at i (not checked: JSON.parse checks what the scan leaves). */
function skipValue(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i);
  if (c === OPEN_OBJ || c === OPEN_ARR) {
    let depth = 0;
    for (let j = i; j < b.length; j++) {
      const d = b[j];
      if (d === QUOTE) j = skipString(b, j) - 1;
      else if (d === OPEN_OBJ || d === OPEN_ARR) depth++;
      else if ((d === CLOSE_OBJ || d === CLOSE_ARR) && --depth === 0) return j + 1;
    }
    throw new Unusual();
  }
  let j = i;
  while (j < b.length && !WS[b[j]] && b[j] !== COMMA && b[j] !== CLOSE_OBJ && b[j] !== CLOSE_ARR) j++;
  if (j === i) throw new Unusual();
  return j;
}

/** The members of the object at i, each value handed to `value(key, at)` which returns where it ends; after the object. */
function eachMember(b: Buffer, i: number, value: (key: string | null, at: number) => number): number {
  if (b[i] !== OPEN_OBJ) throw new Unusual();
  i = ws(b, i + 1);
  if (b[i] === CLOSE_OBJ) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) throw new Unusual();
    const end = skipString(b, i);
    const raw = b.toString('latin1', i + 1, end - 1);
    i = ws(b, end);
    if (b[i] !== COLON) throw new Unusual();
    i = ws(b, value(raw.includes('\\') ? null : raw, ws(b, i + 1)));
    if (b[i] === COMMA) i = ws(b, i + 1);
    else if (b[i] === CLOSE_OBJ) return i + 1;
    else throw new Unusual();
  }
}

function scanRoot(b: Buffer, found: Found[]): void {
  eachMember(b, ws(b, 0), (key, at) => (key === 'areas' && b[at] === OPEN_ARR ? scanAreas(b, at, found) : skipValue(b, at)));
}

function scanAreas(b: Buffer, i: number, found: Found[]): number {
  i = ws(b, i + 1);
  if (b[i] === CLOSE_ARR) return i + 1;
  for (;;) {
    i = ws(b, b[i] === OPEN_OBJ ? eachMember(b, i, (key, at) => (key === 'extents' ? scanExtents(b, at, found) : skipValue(b, at))) : skipValue(b, i));
    if (b[i] === COMMA) i = ws(b, i + 1);
    else if (b[i] === CLOSE_ARR) return i + 1;
    else throw new Unusual();
  }
}

function scanExtents(b: Buffer, at: number, found: Found[]): number {
  const r = b[at] === OPEN_ARR ? parseExtents(b, at) : null;
  if (!r) return skipValue(b, at);
  found.push({ start: at, end: r.end, extents: r.extents });
  return r.end;
}

/** A whole number as JSON writes it (at most 15 digits: exact in a double), or null; `end` after it. */
function parseWhole(b: Uint8Array, i: number, out: { end: number }): number | null {
  let j = i;
  const neg = b[j] === 0x2d;
  if (neg) j++;
  const first = j;
  let n = 0;
  while (j < b.length && b[j] >= 0x30 && b[j] <= 0x39) n = n * 10 + (b[j++] - 0x30);
  const digits = j - first;
  if (digits === 0 || digits > 15 || (digits > 1 && b[first] === 0x30)) return null;
  if (b[j] === 0x2e || b[j] === 0x65 || b[j] === 0x45) return null; // a fraction or exponent: JSON.parse's
  out.end = j;
  return neg ? -n : n;
}

/** `"f"`, `"z"` or a quoted 64-digit id at i: its kind and where its digits start; null otherwise. */
function parseRef(b: Uint8Array, i: number): { kind: Kind; at: number; end: number } | null {
  if (b[i] !== QUOTE) return null;
  if (b[i + 2] === QUOTE && (b[i + 1] === 0x66 || b[i + 1] === 0x7a)) return { kind: b[i + 1] === 0x66 ? Kind.Free : Kind.Zero, at: -1, end: i + 3 };
  if (b[i + 65] !== QUOTE) return null;
  return { kind: Kind.Chunk, at: i + 1, end: i + 66 };
}

/** The extent map at i (`[[offset, length, ref(, base)], ...]`), or null when it is not one the scan reads. */
function parseExtents(b: Buffer, i: number): { extents: Extents; end: number } | null {
  const out = new ExtentsBuilder(1024);
  const num = { end: 0 };
  i = ws(b, i + 1);
  if (b[i] === CLOSE_ARR) return { extents: out.finish(), end: i + 1 };
  for (;;) {
    if (b[i] !== OPEN_ARR) return null;
    const off = parseWhole(b, ws(b, i + 1), num);
    if (off === null) return null;
    i = ws(b, num.end);
    if (b[i] !== COMMA) return null;
    const len = parseWhole(b, ws(b, i + 1), num);
    if (len === null) return null;
    i = ws(b, num.end);
    if (b[i] !== COMMA) return null;
    const ref = parseRef(b, ws(b, i + 1));
    if (!ref) return null;
    i = ws(b, ref.end);
    let kind = ref.kind;
    let baseAt = -1;
    if (b[i] === COMMA) {
      const base = parseRef(b, ws(b, i + 1));
      if (!base || base.kind !== Kind.Chunk || ref.kind !== Kind.Chunk) return null;
      kind = Kind.Patch;
      baseAt = base.at;
      i = ws(b, base.end);
    }
    if (b[i] !== CLOSE_ARR) return null;
    if (!out.pushHexFrom(off, len, kind, b, ref.at, baseAt)) return null;
    i = ws(b, i + 1);
    if (b[i] === COMMA) i = ws(b, i + 1);
    else if (b[i] === CLOSE_ARR) return { extents: out.finish(), end: i + 1 };
    else return null;
  }
}
