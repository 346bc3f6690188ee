// The open pack files of a repository: reads from packs through a small cache of file handles.
import * as fs from 'fs';
import { DevsnapError } from '../core/errors';
import { readFully } from '../core/fsutil';

export class PackFiles {
  /** Open pack files, most recently used last; `users` counts reads in progress on each. */
  private packHandles = new Map<string, { fh: Promise<fs.promises.FileHandle>; users: number }>();

  constructor(private readonly packPath: (pack: string) => string) {}

  /**
   * Reads from a pack through a small cache of open files (at most 64 idle ones): a file is closed
   * only when no read uses it, and concurrent readers of one pack share its handle.
   */
  async read(pack: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    let entry = this.packHandles.get(pack);
    if (entry)
      this.packHandles.delete(pack); // re-inserted below as the most recently used
    else {
      const fh = fs.promises.open(this.packPath(pack), 'r');
      fh.catch(() => undefined); // awaited below
      entry = { fh, users: 0 };
    }
    this.packHandles.set(pack, entry);
    entry.users++;
    try {
      const fh = await entry.fh.catch((err) => {
        if (this.packHandles.get(pack) === entry) this.packHandles.delete(pack); // nothing to cache: try again next time
        throw new DevsnapError('DAMAGED', `Pack ${pack} is missing or unreadable (${(err as NodeJS.ErrnoException).code}).`, 'Run `devsnap check`.');
      });
      return await readFully(fh, offset, length, into);
    } finally {
      entry.users--;
      this.closeIdlePacks();
    }
  }

  private closeIdlePacks(): void {
    for (const [pack, e] of this.packHandles) {
      if (this.packHandles.size <= 64) break;
      if (e.users > 0) continue;
      this.packHandles.delete(pack);
      e.fh.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    for (const e of this.packHandles.values()) await e.fh.then((fh) => fh.close()).catch(() => undefined);
    this.packHandles.clear();
  }
}
