// A minimal ustar reader/writer for the import target's structure-aware mutations: an export archive
// is taken apart into its members, one member is changed, and the archive is put back together (with
// valid header checksums, so the change reaches devsnap's checks instead of tar-stream's).

export interface TarMember {
  name: string;
  mode: number;
  data: Buffer;
}

function octal(b: Buffer, off: number, len: number): number {
  const s = b
    .toString('latin1', off, off + len)
    .replace(/\0.*$/s, '')
    .trim();
  return s ? parseInt(s, 8) : 0;
}

/** The regular-file members of an uncompressed tar; stops at the end marker or at anything malformed. */
export function readTar(tar: Buffer): TarMember[] {
  const out: TarMember[] = [];
  for (let o = 0; o + 512 <= tar.length;) {
    const h = tar.subarray(o, o + 512);
    if (h.every((x) => x === 0)) break;
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const prefix = h.toString('utf8', 345, 500).replace(/\0.*$/s, '');
    const size = octal(h, 124, 12);
    if (!Number.isSafeInteger(size) || o + 512 + size > tar.length) break;
    out.push({ name: prefix ? `${prefix}/${name}` : name, mode: octal(h, 100, 8), data: Buffer.from(tar.subarray(o + 512, o + 512 + size)) });
    o += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function writeTar(members: TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const h = Buffer.alloc(512);
    h.write(m.name.slice(0, 100), 0, 'utf8');
    h.write(m.mode.toString(8).padStart(7, '0'), 100, 'latin1');
    h.write('0000000', 108, 'latin1');
    h.write('0000000', 116, 'latin1');
    h.write(m.data.length.toString(8).padStart(11, '0'), 124, 'latin1');
    h.write('00000000000', 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write('0', 156, 'latin1');
    h.write('ustar\u000000', 257, 'latin1');
    let sum = 0;
    for (const x of h) sum += x;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    parts.push(h, m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
