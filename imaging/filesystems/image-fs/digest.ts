// A listing of a filesystem inside an image in the same format as test/helpers/disks.ts treeDigest
// (path, type, mode, owner, size + sha256 / symlink target, mtime in seconds, hard-link group, xattrs),
// so a snapshot's tree can be compared with the source directory it was made from.
import * as crypto from 'crypto';
import type { ImageFs } from './types';

export type ImageDigestField = 'mode' | 'owner' | 'mtime' | 'xattrs' | 'links' | 'dirs';

export async function imageFsDigest(fs: ImageFs, opts: { root?: string; fields?: ImageDigestField[]; ignore?: string[] } = {}): Promise<string> {
  const f = new Set(opts.fields ?? ['mode', 'owner', 'mtime', 'xattrs', 'links', 'dirs']);
  const ignore = new Set(opts.ignore ?? ['lost+found']);
  const root = opts.root && opts.root !== '/' ? opts.root.replace(/\/+$/, '') : '';
  const linkGroup = new Map<number, string>();
  const lines: string[] = [];
  let skip: string | null = null;
  for await (const st of fs.walk(root || '/')) {
    if (st.path === (root || '/')) continue;
    const r = st.path.slice(root.length + 1);
    if (skip && (r === skip || r.startsWith(skip + '/'))) continue;
    if (!r.includes('/') && ignore.has(r)) {
      skip = r;
      continue;
    }
    const type = st.type === 'dir' ? 'd' : st.type === 'symlink' ? 'l' : st.type === 'file' ? 'f' : 'o';
    const cols = [r, type];
    if (f.has('mode')) cols.push(st.mode.toString(8));
    if (f.has('owner')) cols.push(`${st.uid}:${st.gid}`);
    if (type === 'f') {
      const h = crypto.createHash('sha256');
      for await (const chunk of fs.createReadStream(st.path)) h.update(chunk as Buffer);
      cols.push(String(st.size), h.digest('hex'));
    }
    if (type === 'l') cols.push(`-> ${st.target}`);
    if (f.has('mtime') && (type !== 'd' || f.has('dirs'))) cols.push(`t=${Math.floor(st.mtime / 1000)}`);
    if (f.has('links') && type === 'f' && st.nlink > 1) {
      if (!linkGroup.has(st.ino)) linkGroup.set(st.ino, r);
      cols.push(`hl=${linkGroup.get(st.ino)}`);
    }
    if (f.has('xattrs')) {
      const xa = Object.entries(st.xattrs)
        .map(([k, v]) => `${k}=0x${v.toString('hex')}`)
        .sort();
      if (xa.length) cols.push(`x{${xa.join(';')}}`);
    }
    lines.push(cols.join('\t'));
  }
  return lines.join('\n') + '\n';
}
