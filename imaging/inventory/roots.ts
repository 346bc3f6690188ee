// Where a tree inventory reads from: an ImageFs (a snapshot's partition) or a directory of this machine,
// behind one small interface (inventory.ts describes what is read).
import * as fsp from 'fs/promises';
import * as path from 'path';
import type { ImageFs } from '../filesystems/image-fs/types';

/** What the inventory reads from: a tree (absolute paths inside it). */
export interface InventoryRoot {
  readFile(p: string): Promise<Buffer | null>;
  /** Names in a directory, or null when it is missing / not a directory. */
  readdir(p: string): Promise<string[] | null>;
  exists(p: string): Promise<boolean>;
}

/** An ImageFs (a snapshot's partition) as an inventory root. */
export function imageFsRoot(fs: ImageFs): InventoryRoot {
  return {
    readFile: async (p) => {
      try {
        return await fs.readFile(p);
      } catch {
        return null;
      }
    },
    readdir: async (p) => {
      try {
        return (await fs.readdir(p)).map((e) => e.name);
      } catch {
        return null;
      }
    },
    exists: async (p) => (await fs.tryStat(p).catch(() => null)) !== null,
  };
}

/** A directory of this machine (a mounted filesystem) as an inventory root; absolute symlinks stay inside it only approximately. */
export function directoryRoot(dir: string): InventoryRoot {
  const at = (p: string) => path.join(dir, p);
  return {
    readFile: async (p) => fsp.readFile(at(p)).catch(() => null),
    readdir: async (p) => fsp.readdir(at(p)).catch(() => null),
    exists: async (p) =>
      fsp.lstat(at(p)).then(
        () => true,
        () => false,
      ),
  };
}

/** The home folders of a tree: /root and each /home/<user>. */
export async function homes(root: InventoryRoot): Promise<string[]> {
  const out = ['/root'];
  for (const n of (await root.readdir('/home')) ?? []) out.push(`/home/${n}`);
  return out;
}
