// Every chunk a repository holds, by id: where it is stored (pack, offset, lengths). Every snapshot,
// restore, verify and prune loads the whole of it, so it is kept compact: entries in typed-array
// pages outside the JS heap (52 bytes: id 32, pack number 4, offset 8, lengths 4 + 4) and an open-
// addressing table of entry numbers (4 bytes a slot, at most 3/4 full). About 60 bytes a chunk in all,
// where a Map of hex strings to objects took ~190 (and ~310 at its peak while index files were parsed):
// a 2 TB disk's 2 million chunks in ~120 MB instead of ~600 (bench/index-scale.js).
import * as crypto from 'crypto';
import type { ChunkLocation } from './index-file';
import { ENTRY_SIZE } from './pack';

const PAGE_BITS = 16;
const PAGE = 1 << PAGE_BITS; // entries a page
const ID = 32;
/** Pack number of a deleted entry (its slot is gone; the entry stays as a hole). */
const DEAD = 0xffffffff;
const MIN_SLOTS = 1 << 10;
const CHUNK_ID = /^[0-9a-f]{64}$/;

export class ChunkIndex {
  private ids: Buffer[] = [];
  private packNos: Uint32Array[] = [];
  private offsets: Float64Array[] = [];
  private lengths: Uint32Array[] = [];
  private raws: Uint32Array[] = [];
  /** Entries appended (deleted ones included): entry numbers are 0 … appended - 1. */
  private appended = 0;
  private live = 0;
  /** Entry number + 1 of each slot (0: empty). */
  private slots = new Uint32Array(MIN_SLOTS);
  private packs: string[] = [];
  private packNumbers = new Map<string, number>();
  private readonly key = Buffer.alloc(ID);
  // Ids are hashes (random), but unencrypted ones can be chosen by whoever writes the files being
  // imaged: a per-process seed keeps crafted ids from piling into one run of slots.
  private readonly seed = crypto.randomBytes(8);
  private readonly seed0 = this.seed.readUInt32LE(0) | 1;
  private readonly seed1 = this.seed.readUInt32LE(4) | 1;

  get size(): number {
    return this.live;
  }

  /** An upper bound of entry numbers (entry(n) for n below it), for arrays indexed by entry. */
  get entryCount(): number {
    return this.appended;
  }

  has(id: string): boolean {
    return this.find(id) >= 0;
  }

  get(id: string): ChunkLocation | undefined {
    const n = this.find(id);
    return n < 0 ? undefined : this.location(n);
  }

  /** The entry number of a chunk, -1 when the index does not hold it. */
  find(id: string): number {
    // Ids are lowercase hex, as a Map's string keys were: "ABC…" is not "abc…" (Buffer.write would take both).
    if (!CHUNK_ID.test(id)) return -1;
    this.key.write(id, 0, ID, 'hex');
    return this.lookup(this.key, 0);
  }

  /** The entry number of the chunk whose id is the 32 bytes at id[o…], -1 when the index does not hold it. */
  findBytes(id: Buffer, o: number): number {
    return this.lookup(id, o);
  }

  /** Where entry n is stored; undefined for a deleted entry. */
  location(n: number): ChunkLocation | undefined {
    const p = n >>> PAGE_BITS;
    const i = n & (PAGE - 1);
    const pack = this.packNos[p][i];
    if (pack === DEAD) return undefined;
    return { pack: this.packs[pack], offset: this.offsets[p][i], length: this.lengths[p][i], rawLength: this.raws[p][i] };
  }

  /** The stored length of entry n, without making a location object (for loops over every reference). */
  storedLength(n: number): number {
    return this.lengths[n >>> PAGE_BITS][n & (PAGE - 1)];
  }

  /** The id of entry n (hex). */
  idOf(n: number): string {
    const o = (n & (PAGE - 1)) * ID;
    return this.ids[n >>> PAGE_BITS].toString('hex', o, o + ID);
  }

  set(id: string, loc: ChunkLocation): this {
    if (!CHUNK_ID.test(id)) throw new Error(`not a chunk id: ${id}`);
    this.key.write(id, 0, ID, 'hex');
    this.put(this.key, 0, this.packNumber(loc.pack), loc.offset, loc.length, loc.rawLength);
    return this;
  }

  /** Adds a pack's entries as index files and pack trailers encode them (pack.ts), without decoding them into objects. */
  addEncoded(pack: string, entries: Buffer): void {
    const no = this.packNumber(pack);
    for (let o = 0; o + ENTRY_SIZE <= entries.length; o += ENTRY_SIZE) {
      const offset = entries.readUInt32LE(o + ID) + entries.readUInt32LE(o + ID + 4) * 2 ** 32;
      this.put(entries, o, no, offset, entries.readUInt32LE(o + ID + 8), entries.readUInt32LE(o + ID + 12));
    }
  }

  delete(id: string): boolean {
    if (!CHUNK_ID.test(id)) return false;
    this.key.write(id, 0, ID, 'hex');
    const mask = this.slots.length - 1;
    let i = this.home(this.key, 0);
    for (; this.slots[i] !== 0; i = (i + 1) & mask) if (this.sameId(this.slots[i] - 1, this.key, 0)) break;
    if (this.slots[i] === 0) return false;
    const n = this.slots[i] - 1;
    this.packNos[n >>> PAGE_BITS][n & (PAGE - 1)] = DEAD;
    this.live--;
    // Backward-shift deletion: move later entries of the run into the hole, so lookups never stop early.
    for (let j = (i + 1) & mask; this.slots[j] !== 0; j = (j + 1) & mask) {
      const h = this.homeOfEntry(this.slots[j] - 1);
      if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
        this.slots[i] = this.slots[j];
        i = j;
      }
    }
    this.slots[i] = 0;
    return true;
  }

  clear(): void {
    this.ids = [];
    this.packNos = [];
    this.offsets = [];
    this.lengths = [];
    this.raws = [];
    this.appended = 0;
    this.live = 0;
    this.slots = new Uint32Array(MIN_SLOTS);
    this.packs = [];
    this.packNumbers = new Map();
  }

  /** [id, location] of every chunk, in the order they were first added. */
  *[Symbol.iterator](): IterableIterator<[string, ChunkLocation]> {
    for (let n = 0; n < this.appended; n++) {
      const loc = this.location(n);
      if (loc) yield [this.idOf(n), loc];
    }
  }

  entries(): IterableIterator<[string, ChunkLocation]> {
    return this[Symbol.iterator]();
  }

  *keys(): IterableIterator<string> {
    for (const [id] of this) yield id;
  }

  *values(): IterableIterator<ChunkLocation> {
    for (let n = 0; n < this.appended; n++) {
      const loc = this.location(n);
      if (loc) yield loc;
    }
  }

  // ---- the table

  private packNumber(pack: string): number {
    let no = this.packNumbers.get(pack);
    if (no === undefined) {
      no = this.packs.push(pack) - 1;
      this.packNumbers.set(pack, no);
    }
    return no;
  }

  private hash(id: Buffer, o: number): number {
    let h = Math.imul(id.readUInt32LE(o) ^ this.seed1, 0x9e3779b1) ^ Math.imul(id.readUInt32LE(o + 4) ^ this.seed0, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae3d);
    return (h ^ (h >>> 13)) >>> 0;
  }

  private home(id: Buffer, o: number): number {
    return this.hash(id, o) & (this.slots.length - 1);
  }

  private homeOfEntry(n: number): number {
    return this.home(this.ids[n >>> PAGE_BITS], (n & (PAGE - 1)) * ID);
  }

  private sameId(n: number, id: Buffer, o: number): boolean {
    const page = this.ids[n >>> PAGE_BITS];
    const at = (n & (PAGE - 1)) * ID;
    return page.readUInt32LE(at) === id.readUInt32LE(o) && page.compare(id, o, o + ID, at, at + ID) === 0;
  }

  private lookup(id: Buffer, o: number): number {
    const mask = this.slots.length - 1;
    for (let i = this.hash(id, o) & mask; this.slots[i] !== 0; i = (i + 1) & mask) {
      const n = this.slots[i] - 1;
      if (this.sameId(n, id, o)) return n;
    }
    return -1;
  }

  /** Adds or replaces the entry of the id at id[o … o+32]. */
  private put(id: Buffer, o: number, pack: number, offset: number, length: number, rawLength: number): void {
    let n = this.lookup(id, o);
    if (n < 0) {
      if ((this.live + 1) * 4 > this.slots.length * 3) this.grow();
      n = this.appended++;
      if ((n & (PAGE - 1)) === 0) {
        this.ids.push(Buffer.alloc(PAGE * ID));
        this.packNos.push(new Uint32Array(PAGE));
        this.offsets.push(new Float64Array(PAGE));
        this.lengths.push(new Uint32Array(PAGE));
        this.raws.push(new Uint32Array(PAGE));
      }
      id.copy(this.ids[n >>> PAGE_BITS], (n & (PAGE - 1)) * ID, o, o + ID);
      this.insertSlot(n);
      this.live++;
    }
    const p = n >>> PAGE_BITS;
    const i = n & (PAGE - 1);
    this.packNos[p][i] = pack;
    this.offsets[p][i] = offset;
    this.lengths[p][i] = length;
    this.raws[p][i] = rawLength;
  }

  private insertSlot(n: number): void {
    const mask = this.slots.length - 1;
    let i = this.homeOfEntry(n);
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = n + 1;
  }

  private grow(): void {
    this.slots = new Uint32Array(this.slots.length * 2);
    for (let n = 0; n < this.appended; n++) if (this.packNos[n >>> PAGE_BITS][n & (PAGE - 1)] !== DEAD) this.insertSlot(n);
  }
}
