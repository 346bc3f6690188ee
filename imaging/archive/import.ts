// `devsnap import`: reads an archive written by `devsnap export` (export-format.ts) into the
// repository, frame by frame (memory stays bounded), re-chunking each piece along the manifest's own
// extent boundaries, so the imported snapshot has the same chunk ids and deduplicates with data the
// repository already holds.
//
// An archive is hostile input until proven otherwise: the manifest goes through the same validation
// as every manifest the repository reads (parseManifest), devsnap-export.json through its schema;
// members must be plain files with names inside the archive, each at most once, of the sizes the
// manifest states; and nothing is committed until every piece matched its hashes. On any error the
// repository is left as it was.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { once } from 'events';
import * as tar from 'tar-stream';
import * as v from 'valibot';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { Area, FREE, Kind, Manifest, ZERO, parseManifest, shown } from '../repo/manifest';
import { ExtentsBuilder } from '../repo/extents';
import { Logger, Repository } from '../repo/repository';
import { WorkerPool } from '../repo/worker-pool';
import { ChunkSaver } from '../repo/chunk-saver';
import { ProgressMeter, ProgressSink } from '../core/progress';
import { isZero } from '../core/bytes';
import { decompressFrames, zstdFrames } from './zstd-frames';
import { ExportInfo, ExportInfoSchema, pieceName, piecesOf } from './export-format';

type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };

export interface ImportOptions {
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  log: Logger;
  level?: number;
}

export interface ImportResult {
  id: string;
  label: string;
  file: string;
  chunksNew: number;
  chunksReused: number;
  bytesAdded: number;
}

const MANIFEST_LIMIT = 256 << 20; // manifest.json (a 2 TB disk's is about 160 MB)
const SMALL_LIMIT = 16 << 20; // devsnap-export.json, SHA256SUMS

function cancelled(what: string): DevsnapError {
  return new DevsnapError('CANCELLED', `${what} cancelled.`);
}

/** Pulls exact byte counts out of a tar entry's stream. */
class Taker {
  private it: AsyncIterator<Buffer>;
  private rest: Buffer = Buffer.alloc(0);
  constructor(
    stream: AsyncIterable<Buffer>,
    private readonly hash: crypto.Hash,
    private readonly short: () => DevsnapError,
  ) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Calls fn with consecutive pieces that together make n bytes. */
  async each(n: number, fn: (b: Buffer) => void): Promise<void> {
    while (n > 0) {
      if (!this.rest.length) {
        const r = await this.it.next();
        if (r.done) throw this.short();
        this.rest = r.value;
      }
      const k = Math.min(n, this.rest.length);
      const b = this.rest.subarray(0, k);
      this.rest = this.rest.subarray(k);
      this.hash.update(b);
      fn(b);
      n -= k;
    }
  }

  async take(n: number): Promise<Buffer> {
    if (this.rest.length >= n) {
      let out!: Buffer;
      await this.each(n, (b) => (out = Buffer.from(b)));
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    await this.each(n, (b) => {
      b.copy(out, o);
      o += b.length;
    });
    return out;
  }

  async drain(): Promise<void> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
    }
  }
}

/** A small member read whole (its size is known from the tar header, so a huge one is refused before reading). */
async function readSmall(entry: TarEntry, name: string, limit: number, damaged: (why: string) => DevsnapError): Promise<Buffer> {
  if (entry.header.size! > limit) throw damaged(`holds a ${name} of ${entry.header.size} bytes, more than devsnap export writes`);
  const parts: Buffer[] = [];
  for await (const b of entry) parts.push(b);
  return Buffer.concat(parts);
}

/** A member name that is neither absolute nor leads out of the archive's folder ('..'). */
function safeMemberName(name: string): boolean {
  return name.length > 0 && !name.startsWith('/') && !name.includes('\0') && !name.split('/').includes('..');
}

/** tar-stream's own messages, as what they mean for the archive. */
function describeTarError(why: string, readBytes: number, size: number): string {
  if (/unexpected end/i.test(why)) return `is truncated: the tar archive inside ends in the middle of a file (after ${readBytes} bytes)`;
  if (/exceeds max size/i.test(why)) return 'holds a tar header larger than 4 MiB: it is damaged or not an archive written by devsnap export';
  if (/invalid( tar)? header|unknown format/i.test(why)) return `has a damaged tar header (at byte ${readBytes} of ${size})`;
  return `is not a valid archive (${why}; at byte ${readBytes} of ${size})`;
}

/**
 * Reads an archive written by exportSnapshot into the repository: the snapshot keeps its id, label
 * and creation time. Refuses (REPO_EXISTS) when the repository already holds a snapshot with that id.
 * Every piece is checked (chunk hashes where the source repository used plain sha256 ids, and the
 * archive's SHA256SUMS) before the manifest is committed; on any error nothing is committed.
 */
export async function importSnapshot(repo: Repository, file: string, opts: ImportOptions): Promise<ImportResult> {
  let input: fs.ReadStream;
  let st: fs.Stats;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
    st = await fs.promises.stat(file);
    if (st.isDirectory()) throw new DevsnapError('BAD_SOURCE', `${file} is a folder, not an archive.`, 'Give the .tar.zst file that `devsnap export` wrote.');
    input = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  } catch (err) {
    throw toDevsnapError(err, `the archive ${file}`);
  }
  const pool = new WorkerPool();
  const writer = repo.newPackWriter();
  let commitId: string | undefined; // set once the manifest's commit starts
  const extract = tar.extract();
  extract.on('error', () => undefined); // reported through the iteration in consume()
  const level = opts.level ?? repo.config.compression.level;
  const damaged = (why: string) => new DevsnapError('DAMAGED', `${file} ${why}.`, 'The archive is incomplete or damaged; export the snapshot again, or copy the file again.');
  const meter = new ProgressMeter('import', st.size, opts.onProgress);
  let readBytes = 0;

  // Feed: file -> frames -> decompressed tar bytes -> extract (with back-pressure).
  const feed = async () => {
    const counted = (async function* () {
      for await (const b of input as AsyncIterable<Buffer>) {
        readBytes += b.length;
        meter.add(b.length);
        yield b;
      }
    })();
    for await (const raw of decompressFrames(zstdFrames(counted, file), pool, file)) {
      if (opts.signal?.aborted) throw cancelled('Import');
      if (!extract.write(raw)) await once(extract as unknown as NodeJS.EventEmitter, 'drain');
    }
    (extract as unknown as { end(): void }).end();
  };

  let manifest: Manifest | null = null;
  let info: ExportInfo | null = null;
  const byName = new Map<string, Area>();
  const seen = new Map<string, string>(); // piece -> sha256
  let sums: Map<string, string> | null = null;
  const saver = new ChunkSaver(writer, pool, level, repo.dir);
  const stats = saver.stats;
  const newAreas: Area[] = [];
  let stopped = false;

  const importPiece = async (name: string, a: Area, entry: TarEntry): Promise<void> => {
    if (entry.header.size !== a.size) throw damaged(`holds ${name} with ${entry.header.size} bytes, but the manifest says ${a.size}`);
    const hash = crypto.createHash('sha256');
    const taker = new Taker(entry as AsyncIterable<Buffer>, hash, () => damaged(`ends in the middle of ${name}`));
    const extents = new ExtentsBuilder();
    const verifyIds = info!.chunkHash === 'sha256';
    for (const e of a.extents) {
      const [off, len, ref] = e;
      if (opts.signal?.aborted) throw cancelled('Import');
      saver.check();
      if (ref === FREE) {
        await taker.each(len, () => undefined);
        extents.push(off, len, Kind.Free);
      } else if (ref === ZERO) {
        let zero = true;
        await taker.each(len, (b) => (zero &&= isZero(b)));
        if (!zero) throw damaged(`holds non-zero bytes in ${name} at byte ${a.start + off}, where the snapshot has zeros`);
        extents.push(off, len, Kind.Zero);
      } else {
        const raw = await taker.take(len);
        const sha = crypto.createHash('sha256').update(raw).digest('hex');
        // A patched cell's bytes have no id of their own in the manifest (the whole piece's hash covers them).
        if (verifyIds && e.length === 3 && sha !== ref) throw damaged(`holds bytes in ${name} at ${a.start + off}-${a.start + off + len} that do not match the snapshot (chunk ${ref.slice(0, 12)}…)`);
        const id = repo.cipher.encrypted ? repo.cipher.chunkId(raw) : sha;
        extents.push(off, len, Kind.Chunk, id);
        if (stopped) throw cancelled('Import');
        await saver.save(id, raw);
      }
    }
    await taker.drain();
    seen.set(name, hash.digest('hex'));
    newAreas[manifest!.areas.indexOf(a)] = { ...a, extents: extents.finish() };
  };

  const members = new Set<string>();
  const consume = async () => {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      (entry as unknown as NodeJS.EventEmitter).on('error', () => undefined); // surfaces through its iteration
      const name = entry.header.name.replace(/^\.\//, '');
      // Nothing is ever written under a member's name, but such members are not from devsnap export.
      if (!safeMemberName(name)) throw damaged(`holds a member named ${shown(name)}, a path outside the archive: it was not written by devsnap export`);
      if (entry.header.type !== 'file') throw damaged(`holds ${shown(name)}, which is a ${entry.header.type ?? 'member of unknown type'}, not a file: it was not written by devsnap export`);
      if (members.has(name)) throw damaged(`holds ${shown(name)} twice`);
      members.add(name);
      if (name === 'manifest.json') {
        const bytes = await readSmall(entry, name, MANIFEST_LIMIT, damaged);
        const m = parseManifest(bytes, null, `the archive ${file}`);
        if ((await repo.storage.stat(repo.manifestName(m.id))) !== null) {
          throw new DevsnapError(
            'REPO_EXISTS',
            `The repository ${repo.dir} already holds snapshot ${m.id} (${shown(m.label)}); nothing was imported.`,
            'It was imported (or taken) here before. To import it again, remove it first with `devsnap forget ' + m.id + '`.',
          );
        }
        manifest = m;
        for (const a of m.areas) byName.set(pieceName(a), a);
        seen.set(name, crypto.createHash('sha256').update(bytes).digest('hex'));
      } else if (name === 'devsnap-export.json') {
        if (!manifest) throw damaged('is not an archive written by devsnap export (devsnap-export.json comes before manifest.json)');
        let raw: unknown;
        try {
          raw = JSON.parse((await readSmall(entry, name, SMALL_LIMIT, damaged)).toString('utf8'));
        } catch (err) {
          if (err instanceof DevsnapError) throw err;
          throw damaged('has a corrupt devsnap-export.json');
        }
        const r = raw as Partial<ExportInfo> | null;
        if (r?.format !== 'devsnap-export') throw damaged('is not an archive written by devsnap export (devsnap-export.json is not one)');
        if (r.version !== 1) throw new DevsnapError('DAMAGED', `${file} was written by a newer devsnap (export format ${shown(r.version)}).`, 'Update devsnap.');
        const checked = v.safeParse(ExportInfoSchema, raw, { abortEarly: true });
        if (!checked.success) {
          const issue = checked.issues[0];
          throw damaged(`has an invalid devsnap-export.json: ${v.getDotPath(issue) ?? 'it'} ${issue.message} (it is ${shown(issue.input)})`);
        }
        const m = manifest as Manifest;
        const i = checked.output as ExportInfo;
        // What the archive says it holds must be what its manifest says.
        if (
          i.snapshot !== m.id ||
          i.diskSize !== m.source.size ||
          JSON.stringify(i.pieces.map((p) => [p.file, p.offset, p.size])) !== JSON.stringify(piecesOf(m).map((p) => [p.file, p.offset, p.size]))
        ) {
          throw damaged('has a devsnap-export.json that does not match its manifest.json');
        }
        info = i;
      } else if (name === 'SHA256SUMS') {
        sums = new Map();
        for (const line of (await readSmall(entry, name, SMALL_LIMIT, damaged)).toString('utf8').split('\n')) {
          const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
          if (m) sums.set(m[2], m[1]);
        }
      } else if (byName.has(name)) {
        if (!info) throw damaged('is not an archive written by devsnap export (devsnap-export.json is missing or out of order)');
        await importPiece(name, byName.get(name)!, entry);
      } else {
        if (!manifest && name !== 'README.txt' && name !== 'restore.sh') {
          throw damaged(`is not an archive written by devsnap export (it starts with ${shown(name)}, not manifest.json)`);
        }
        if (name !== 'README.txt' && name !== 'restore.sh') opts.log(`note: ${file}: ignoring ${shown(name)}, which this devsnap does not know`);
        for await (const _ of entry as AsyncIterable<Buffer>) void _;
      }
    }
  };

  try {
    const feeding = feed();
    feeding.catch((err) => extract.destroy(err));
    const consuming = consume();
    consuming.catch(() => undefined);
    await Promise.all([feeding, consuming]);
    await saver.drain();
    if (opts.signal?.aborted) throw cancelled('Import');
    const m = manifest as Manifest | null;
    if (!m) throw damaged('holds no manifest.json: it is empty or not an archive written by devsnap export');
    const missing = m.areas.map(pieceName).filter((n) => !seen.has(n));
    if (missing.length) throw damaged(`is incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`);
    const s = sums as Map<string, string> | null;
    if (!s) throw damaged('is incomplete: SHA256SUMS, the last file, is missing');
    for (const [name, hex] of seen) {
      if (s.get(name) !== hex) throw damaged(`holds a ${name} whose sha256 does not match SHA256SUMS`);
    }
    await writer.finish();
    const parentKnown = m.parent !== undefined && (await repo.storage.stat(repo.manifestName(m.parent))) !== null;
    const { verifiedAt: _v, parent: _p, ...rest } = m;
    const imported: Manifest = {
      ...rest,
      ...(parentKnown ? { parent: m.parent } : {}),
      state: 'not-verified',
      areas: newAreas,
      stats: { ...m.stats, bytesAdded: writer.bytesWritten, chunksNew: stats.chunksNew, chunksReused: stats.chunksReused },
      warnings: [...(m.warnings ?? []), `Imported from ${path.basename(file)} on ${new Date().toISOString()}.`],
    };
    delete imported.digest;
    commitId = imported.id;
    await repo.commitManifest(imported);
    meter.finish();
    return { id: m.id, label: m.label, file, chunksNew: stats.chunksNew, chunksReused: stats.chunksReused, bytesAdded: writer.bytesWritten };
  } catch (err) {
    stopped = true;
    input.destroy();
    extract.destroy();
    await saver.settle();
    await writer.abandonUnlessCommitted(commitId).catch(() => undefined);
    if (err instanceof DevsnapError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e?.code && /^E[A-Z]+$/.test(e.code)) throw toDevsnapError(err, e.path === file ? `the archive ${file}` : `the repository ${repo.dir}`);
    // tar-stream's own errors ("Unexpected end of data", "Invalid tar header"): the archive is damaged.
    throw damaged(describeTarError((err as Error)?.message ?? String(err), readBytes, st.size));
  } finally {
    await pool.close();
  }
}
