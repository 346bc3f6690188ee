// What the ext, FAT and NTFS readers share: path resolution (following symlinks inside the image),
// directory caching, walking and streaming. A reader supplies nodes, their children, stat and data.
import { Readable } from 'stream';
import { DevsnapError } from '../../core/errors';
import type { ImageDirEntry, ImageFileType, ImageFs, ImageStat, ReadStreamOptions } from './types';

export interface ChildEntry<N> {
  name: string;
  ino: number;
  type?: ImageFileType;
  node: N;
}

const MAX_SYMLINKS = 40;
const DIR_CACHE = 64;

/** Sort order of names everywhere (walk, list, diff): JavaScript string order, as treeDigest's sort(). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function normalizePath(p: string): string {
  const parts = p.split('/').filter((s) => s && s !== '.');
  return '/' + parts.join('/');
}

function notFound(path: string, why = 'does not exist'): DevsnapError {
  return new DevsnapError('NOT_FOUND', `${path} ${why} in the snapshot's filesystem.`);
}

export abstract class BaseImageFs<N> implements ImageFs {
  abstract readonly fs: ImageFs['fs'];
  label?: string;
  uuid?: string;
  private dirCache = new Map<number, Map<string, ChildEntry<N>>>();

  protected abstract rootNode(): Promise<N>;
  protected abstract nodeIno(node: N): number;
  protected abstract nodeType(node: N): Promise<ImageFileType>;
  protected abstract children(dir: N): Promise<ChildEntry<N>[]>;
  protected abstract statNode(node: N, path: string, name: string): Promise<ImageStat>;
  protected abstract nodeSize(node: N): Promise<number>;
  /** Bytes [pos, pos+len) of a file, clipped to its size. */
  protected abstract readNode(node: N, pos: number, len: number): Promise<Buffer>;
  protected abstract readlinkNode(node: N): Promise<string>;
  /** What identifies a directory's content (two entries with one key list the same children). */
  protected dirKey(node: N): number | string {
    return this.nodeIno(node);
  }

  private async childMap(dir: N): Promise<Map<string, ChildEntry<N>>> {
    const ino = this.nodeIno(dir);
    let m = this.dirCache.get(ino);
    if (m) {
      this.dirCache.delete(ino);
      this.dirCache.set(ino, m);
      return m;
    }
    m = new Map((await this.children(dir)).map((c) => [c.name, c]));
    this.dirCache.set(ino, m);
    if (this.dirCache.size > DIR_CACHE) this.dirCache.delete(this.dirCache.keys().next().value as number);
    return m;
  }

  /** The node at `path` (following symlinks in the middle, and at the end when followLast). */
  protected async resolve(path: string, followLast: boolean): Promise<N> {
    const root = await this.rootNode();
    let stack: N[] = [root];
    const todo = path.split('/').filter((s) => s && s !== '.');
    let links = 0;
    while (todo.length) {
      const name = todo.shift()!;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const dir = stack[stack.length - 1];
      if ((await this.nodeType(dir)) !== 'dir') throw notFound(path, 'is not a directory path');
      const child = (await this.childMap(dir)).get(name);
      if (!child) throw notFound(path);
      const last = todo.length === 0;
      if ((!last || followLast) && (await this.nodeType(child.node)) === 'symlink') {
        if (++links > MAX_SYMLINKS) throw notFound(path, 'has too many levels of symbolic links');
        const target = await this.readlinkNode(child.node);
        if (target.startsWith('/')) stack = [root];
        todo.unshift(...target.split('/').filter((s) => s && s !== '.'));
        continue;
      }
      stack.push(child.node);
    }
    return stack[stack.length - 1];
  }

  /** The resolved path and node of `path` without following the last component. */
  private async lookup(path: string): Promise<{ node: N; path: string; name: string }> {
    const norm = normalizePath(path);
    if (norm === '/') return { node: await this.rootNode(), path: '/', name: '' };
    const slash = norm.lastIndexOf('/');
    const parentPath = norm.slice(0, slash) || '/';
    const name = norm.slice(slash + 1);
    const parent = await this.resolve(parentPath, true);
    if ((await this.nodeType(parent)) !== 'dir') throw notFound(norm, 'is not a directory path');
    const child = (await this.childMap(parent)).get(name);
    if (!child) throw notFound(norm);
    return { node: child.node, path: norm, name };
  }

  async stat(path: string): Promise<ImageStat> {
    const { node, path: p, name } = await this.lookup(path);
    return this.statNode(node, p, name);
  }

  async tryStat(path: string): Promise<ImageStat | null> {
    try {
      return await this.stat(path);
    } catch (err) {
      if (err instanceof DevsnapError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  async readdir(path: string): Promise<ImageDirEntry[]> {
    const dir = await this.resolve(path, true);
    if ((await this.nodeType(dir)) !== 'dir') throw new DevsnapError('USAGE', `${normalizePath(path)} is not a directory in the snapshot's filesystem.`);
    return [...(await this.childMap(dir)).values()].map((c) => ({ name: c.name, ino: c.ino, ...(c.type ? { type: c.type } : {}) })).sort((a, b) => compareNames(a.name, b.name));
  }

  private async fileNode(path: string): Promise<N> {
    const node = await this.resolve(path, true);
    const t = await this.nodeType(node);
    if (t === 'dir') throw new DevsnapError('USAGE', `${normalizePath(path)} is a directory in the snapshot's filesystem.`);
    return node;
  }

  async readFile(path: string): Promise<Buffer> {
    const node = await this.fileNode(path);
    const size = await this.nodeSize(node);
    if (size > 1 << 30) throw new DevsnapError('USAGE', `${path} is too large to read at once (${size} bytes).`, 'Stream it instead.');
    return this.readNode(node, 0, size);
  }

  async read(path: string, position: number, length: number): Promise<Buffer> {
    return this.readNode(await this.fileNode(path), position, length);
  }

  async readlink(path: string): Promise<string> {
    const { node, path: p } = await this.lookup(path);
    if ((await this.nodeType(node)) !== 'symlink') throw new DevsnapError('USAGE', `${p} is not a symbolic link.`);
    return this.readlinkNode(node);
  }

  createReadStream(path: string, opts: ReadStreamOptions = {}): Readable {
    const block = opts.blockSize ?? 1 << 20;
    const gen = async function* (this: BaseImageFs<N>): AsyncGenerator<Buffer> {
      const node = await this.fileNode(path);
      const size = await this.nodeSize(node);
      const end = Math.min(opts.end ?? size, size);
      for (let pos = opts.start ?? 0; pos < end; pos += block) yield await this.readNode(node, pos, Math.min(block, end - pos));
    };
    return Readable.from(gen.call(this), { objectMode: false });
  }

  /** Children with their stat and node, sorted by name. */
  protected async listNode(dir: N, dirPath: string): Promise<{ stat: ImageStat; node: N }[]> {
    const kids = [...(await this.childMap(dir)).values()].sort((a, b) => compareNames(a.name, b.name));
    const out: { stat: ImageStat; node: N }[] = [];
    for (const c of kids) out.push({ stat: await this.statNode(c.node, joinPath(dirPath, c.name), c.name), node: c.node });
    return out;
  }

  async list(path: string): Promise<ImageStat[]> {
    const norm = normalizePath(path);
    const dir = await this.resolve(norm, true);
    if ((await this.nodeType(dir)) !== 'dir') throw new DevsnapError('USAGE', `${norm} is not a directory in the snapshot's filesystem.`);
    return (await this.listNode(dir, norm)).map((x) => x.stat);
  }

  async *walk(root = '/'): AsyncGenerator<ImageStat> {
    const { node, path, name } = await this.lookup(root);
    const st = await this.statNode(node, path, name);
    yield st;
    if (st.type === 'dir') yield* this.walkDir(node, path, new Set([this.dirKey(node)]));
  }

  private async *walkDir(dir: N, dirPath: string, walked: Set<number | string>): AsyncGenerator<ImageStat> {
    // Only this directory's listing is held while its subtrees are walked (memory ~ depth x dir size).
    for (const { stat, node } of await this.listNode(dir, dirPath)) {
      yield stat;
      if (stat.type !== 'dir') continue;
      // A damaged (or hostile) filesystem can link a directory twice, even into its own subtree:
      // walking it again would never end (or overflow the stack).
      const key = this.dirKey(node);
      if (walked.has(key)) {
        throw new DevsnapError(
          'DAMAGED',
          `${stat.path} is a directory the filesystem links from two places (a loop in its directory tree): the filesystem is damaged.`,
          'Restore the partition and run fsck on it.',
        );
      }
      walked.add(key);
      yield* this.walkDir(node, stat.path, walked);
    }
  }
}
