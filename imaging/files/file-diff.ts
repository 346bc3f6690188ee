// File-level differences between two filesystems (two snapshots' partitions, read through ImageFs):
// a merge walk of both trees, one directory at a time in sorted order, so memory grows with the
// size of the directories on the current path, not with the size of the tree.
//
// Content: entries whose size and mtime are equal count as unchanged (like rsync) unless `deep`;
// when sizes are equal and mtimes differ the contents are compared as streams. ctime, atime and
// inode numbers are not compared (they change on every copy or read).
import { DevsnapError } from '../core/errors';
import { compareNames, joinPath, normalizePath } from '../filesystems/image-fs/base';
import type { ImageFs, ImageStat } from '../filesystems/image-fs/types';
import type { ChangeKind, ChangeDetail, FileChange, DiffTotals, DiffPage, DirectorySummary } from '../protocol';
export type { ChangeKind, ChangeDetail, FileChange, DiffTotals, DiffPage, DirectorySummary };

export interface DiffOptions {
  /** Only this subtree (a directory or a single entry). Default '/'. */
  root?: string;
  /** Compare the contents of files whose size and mtime are equal too. */
  deep?: boolean;
  /** Leave out paths for which this returns true (and, for directories, everything below). */
  exclude?: (path: string) => boolean;
  signal?: AbortSignal;
  /** Called every 1000 entries with the number of entries compared so far. */
  onProgress?: (entries: number, bytesCompared: number) => void;
}

const BLOCK = 1 << 20;
/** Directory listings read ahead of their turn, per level (Differ.prefetch). */
const PREFETCH = 8;

function xattrsEqual(a: Record<string, Buffer>, b: Record<string, Buffer>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k] !== undefined && a[k].equals(b[k]));
}

class Differ {
  entries = 0;
  bytesCompared = 0;
  constructor(
    private readonly a: ImageFs,
    private readonly b: ImageFs,
    private readonly o: DiffOptions,
  ) {}

  private tick(): void {
    if (this.o.signal?.aborted) throw new DevsnapError('CANCELLED', 'Comparison cancelled.');
    if (++this.entries % 1000 === 0) this.o.onProgress?.(this.entries, this.bytesCompared);
  }

  private async sameContent(path: string, size: number): Promise<boolean> {
    for (let pos = 0; pos < size; pos += BLOCK) {
      if (this.o.signal?.aborted) throw new DevsnapError('CANCELLED', 'Comparison cancelled.');
      const n = Math.min(BLOCK, size - pos);
      const [x, y] = await Promise.all([this.a.read(path, pos, n), this.b.read(path, pos, n)]);
      this.bytesCompared += n;
      if (!x.equals(y)) return false;
    }
    return true;
  }

  /** The change between two entries of the same type at the same path, or null. */
  async compare(sa: ImageStat, sb: ImageStat): Promise<FileChange | null> {
    const detail: ChangeDetail[] = [];
    let modified = false;
    if (sa.type === 'file') {
      if (sa.size !== sb.size) modified = true;
      else if ((sa.mtime !== sb.mtime || this.o.deep) && !(await this.sameContent(sa.path, sa.size))) modified = true;
      if (modified) detail.push('content');
    } else if (sa.type === 'symlink') {
      if (sa.target !== sb.target) {
        modified = true;
        detail.push('target');
      }
    } else if (sa.type === 'other') {
      if (sa.special !== sb.special || String(sa.rdev) !== String(sb.rdev)) {
        modified = true;
        detail.push('rdev');
      }
    }
    if (sa.mode !== sb.mode) detail.push('mode');
    if (sa.uid !== sb.uid || sa.gid !== sb.gid) detail.push('owner');
    if (sa.mtime !== sb.mtime) detail.push('mtime');
    if (!xattrsEqual(sa.xattrs, sb.xattrs)) detail.push('xattrs');
    if (sa.type !== 'dir' && sa.nlink !== sb.nlink) detail.push('links');
    if (!detail.length) return null;
    return { path: sb.path, change: modified ? 'modified' : 'metadata', type: sb.type, sizeBefore: sa.size, sizeAfter: sb.size, detail };
  }

  private async *whole(fs: ImageFs, path: string, change: 'added' | 'removed'): AsyncGenerator<FileChange> {
    for await (const st of fs.walk(path)) {
      if (this.o.exclude?.(st.path)) continue;
      this.tick();
      const size = st.type === 'dir' ? 0 : st.size;
      yield { path: st.path, change, type: st.type, sizeBefore: change === 'removed' ? size : null, sizeAfter: change === 'added' ? size : null, detail: [] };
    }
  }

  async *pair(sa: ImageStat | null, sb: ImageStat | null, path: string): AsyncGenerator<FileChange> {
    if (this.o.exclude?.(path)) return;
    if (sa && !sb) return yield* this.whole(this.a, path, 'removed');
    if (!sa && sb) return yield* this.whole(this.b, path, 'added');
    if (!sa || !sb) return;
    if (sa.type !== sb.type) {
      // A type change: the old entry (and its subtree) is removed, the new one added.
      yield* this.whole(this.a, path, 'removed');
      yield* this.whole(this.b, path, 'added');
      return;
    }
    this.tick();
    const c = await this.compare(sa, sb);
    if (c) yield c;
    if (sa.type === 'dir') yield* this.dir(path);
  }

  /**
   * Listings of directories about to be compared, started ahead of their turn: reading a directory
   * waits on its chunks (read, checked, decompressed in the workers), so the next ones are read
   * meanwhile. At most PREFETCH per directory level are ahead, so memory stays bounded.
   */
  private readonly ahead = new Map<string, Promise<[ImageStat[], ImageStat[]]>>();

  private listBoth(path: string): Promise<[ImageStat[], ImageStat[]]> {
    const have = this.ahead.get(path);
    if (have) {
      this.ahead.delete(path);
      return have;
    }
    return Promise.all([this.a.list(path), this.b.list(path)]);
  }

  private prefetch(path: string): void {
    if (this.ahead.has(path) || this.o.exclude?.(path)) return;
    const p = Promise.all([this.a.list(path), this.b.list(path)]);
    p.catch(() => undefined); // reported when (and if) its turn comes
    this.ahead.set(path, p);
  }

  async *dir(path: string): AsyncGenerator<FileChange> {
    const [la, lb] = await this.listBoth(path);
    // The entries in name order: [before, after, path] (one side null when only the other has it).
    const steps: [ImageStat | null, ImageStat | null, string][] = [];
    let i = 0;
    let j = 0;
    while (i < la.length || j < lb.length) {
      const c = i >= la.length ? 1 : j >= lb.length ? -1 : compareNames(la[i].name, lb[j].name);
      if (c < 0) steps.push([la[i], null, la[i++].path]);
      else if (c > 0) steps.push([null, lb[j], lb[j++].path]);
      else steps.push([la[i], lb[j++], joinPath(path, la[i++].name)]);
    }
    const isDirPair = (k: number) => steps[k][0]?.type === 'dir' && steps[k][1]?.type === 'dir';
    let next = 0; // the first step not yet prefetched
    for (let k = 0; k < steps.length; k++) {
      for (; next < steps.length && next <= k + PREFETCH; next++) if (isDirPair(next)) this.prefetch(steps[next][2]);
      yield* this.pair(steps[k][0], steps[k][1], steps[k][2]);
    }
  }
}

/** Every changed entry, depth-first in name order (a directory before its contents). */
export async function* diffFiles(a: ImageFs, b: ImageFs, opts: DiffOptions = {}): AsyncGenerator<FileChange> {
  const root = normalizePath(opts.root ?? '/');
  const d = new Differ(a, b, opts);
  const [sa, sb] = await Promise.all([a.tryStat(root), b.tryStat(root)]);
  if (!sa && !sb) throw new DevsnapError('NOT_FOUND', `${root} exists in neither snapshot.`);
  if (sa && sb && sa.type === 'dir' && sb.type === 'dir') {
    const c = root === '/' ? null : await d.compare(sa, sb);
    if (c) yield c;
    yield* d.dir(root);
  } else yield* d.pair(sa, sb, root);
  opts.onProgress?.(d.entries, d.bytesCompared);
}

export function emptyTotals(): DiffTotals {
  return { added: 0, removed: 0, modified: 0, metadata: 0, bytesAdded: 0, bytesRemoved: 0, bytesModified: 0, entriesCompared: 0 };
}

export function addToTotals(t: DiffTotals, c: FileChange): void {
  t[c.change]++;
  if (c.type === 'dir') return;
  if (c.change === 'added') t.bytesAdded += c.sizeAfter ?? 0;
  else if (c.change === 'removed') t.bytesRemoved += c.sizeBefore ?? 0;
  else if (c.change === 'modified') t.bytesModified += Math.abs((c.sizeAfter ?? 0) - (c.sizeBefore ?? 0));
}

/**
 * One page of the changes, with totals over all of them. The whole comparison runs (for the
 * totals), but only the page is kept in memory.
 */
export async function diffPage(a: ImageFs, b: ImageFs, opts: DiffOptions & { offset?: number; limit?: number; filter?: (c: FileChange) => boolean } = {}): Promise<DiffPage> {
  const offset = opts.offset ?? 0;
  const limit = opts.limit ?? 1000;
  const totals = emptyTotals();
  const changes: FileChange[] = [];
  let n = 0;
  let entries = 0;
  const onProgress = (e: number, bytes: number) => {
    entries = e;
    opts.onProgress?.(e, bytes);
  };
  for await (const c of diffFiles(a, b, { ...opts, onProgress })) {
    if (opts.filter && !opts.filter(c)) continue;
    addToTotals(totals, c);
    if (n >= offset && n < offset + limit) changes.push(c);
    n++;
  }
  totals.entriesCompared = entries;
  return { changes, offset, limit, total: n, totals };
}

/** Groups changes by their directory cut to `depth` components ('/usr/lib' at depth 2), sorted by path. */
export function summarizeByDirectory(changes: Iterable<FileChange>, depth = 2): DirectorySummary[] {
  const out = new Map<string, DirectorySummary>();
  for (const c of changes) {
    const parts = c.path.split('/').filter(Boolean);
    const parent = parts.slice(0, c.type === 'dir' ? parts.length : parts.length - 1);
    const dir = '/' + parent.slice(0, depth).join('/');
    let s = out.get(dir);
    if (!s) out.set(dir, (s = { dir, added: 0, removed: 0, modified: 0, metadata: 0, bytesBefore: 0, bytesAfter: 0 }));
    s[c.change]++;
    if (c.type !== 'dir') {
      s.bytesBefore += c.sizeBefore ?? 0;
      s.bytesAfter += c.sizeAfter ?? 0;
    }
  }
  return [...out.values()].sort((x, y) => compareNames(x.dir, y.dir));
}
