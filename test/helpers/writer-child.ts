// The adversarial writer (spawned by writers.ts as its own process): a loop of modifications of a mounted
// filesystem, each logged as it begins and again once it is durable (after fsync of the file and, for
// namespace changes, of its directory), until SIGTERM or a stop file. The log (JSON lines, outside the
// filesystem) is what checkImage() compares a point-in-time image with.
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { prng } from './disks';
import { monoNow, WRITER_KINDS, type WriterConfig, type WriterKind } from './writers';

const cfg = JSON.parse(process.argv[2]) as WriterConfig;
const rand = prng(cfg.seed);
const logFd = fs.openSync(cfg.log, 'a');
const BS = 4096;
const SLOTS = 4; // files per kind
let stopping = false;
process.on('SIGTERM', () => (stopping = true));

const now = () => ({ wall: Date.now(), mono: monoNow() });
const abs = (rel: string) => path.join(cfg.dir, rel);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)];
let counter = 0;

function seeded(n: number): Buffer {
  const key = crypto.createHash('sha256').update(`writer-${cfg.seed}-${counter++}`).digest();
  const c = crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(n));
}

function log(entry: object): void {
  fs.writeSync(logFd, JSON.stringify(entry) + '\n'); // unbuffered: the parent may read it at any time
}

function begin(...rels: string[]): void {
  const t = now();
  for (const p of rels) log({ path: p, beginWall: t.wall, beginMono: t.mono });
}

function sha(rel: string): string {
  return crypto
    .createHash('sha256')
    .update(fs.readFileSync(abs(rel)))
    .digest('hex');
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Logs the durable state of each path: its content hash now, or deleted. Call after the fsyncs. */
function durable(...rels: string[]): void {
  const t = now();
  for (const p of rels) {
    const gone = !fs.existsSync(abs(p));
    log({ path: p, ...(gone ? { deleted: true } : { sha256: sha(p) }), fsyncDoneWall: t.wall, fsyncDoneMono: t.mono });
  }
}

function writeFileDurably(rel: string, data: Buffer): void {
  const fd = fs.openSync(abs(rel), 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

// Python's mmap module: writes through a shared mapping, msync, fsync.
const MMAP_PY = `
import mmap, os, sys, random
p, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
fd = os.open(p, os.O_RDWR)
m = mmap.mmap(fd, 0)
for _ in range(r.randint(1, 4)):
    n = r.randint(1, 9000); off = r.randint(0, len(m) - n)
    m[off:off + n] = r.randbytes(n)
m.flush(); m.close(); os.fsync(fd); os.close(fd)
`;

// Per-kind state: names relative to the mount.
const slot = (kind: string, i: number) => `w/${kind}/f${i}`;
const bigNames: string[] = [];
const reuseGen = new Array<number>(SLOTS).fill(0);
const linkSide: ('a' | 'b')[] = new Array(SLOTS).fill('a');
let bigGen = 0;
const counts: Record<string, number> = {};

function setup(kind: WriterKind): void {
  fs.mkdirSync(abs(`w/${kind}`), { recursive: true });
  const created: string[] = [];
  for (let i = 0; i < SLOTS && kind !== 'bigdir'; i++) {
    const rel = kind === 'hardlink' ? `w/hardlink/a${i}` : kind === 'reuse' ? `w/reuse/f${i}.0` : slot(kind, i);
    const size = kind === 'mmap' ? 128 * 1024 : kind === 'direct' ? 256 * 1024 : kind === 'append' ? 0 : int(16, 256) * 1024;
    writeFileDurably(rel, seeded(size));
    created.push(rel);
  }
  fsyncPath(abs(`w/${kind}`));
  fsyncPath(abs('w'));
  durable(...created);
  if (kind === 'bigdir') bigNames.push(...fs.readdirSync(abs(cfg.bigDir!)).map((n) => `${cfg.bigDir}/${n}`));
}

function op(kind: WriterKind): void {
  const i = int(0, SLOTS - 1);
  const rel = slot(kind, i);
  const dir = abs(`w/${kind}`);
  switch (kind) {
    case 'mmap': {
      begin(rel);
      run(cfg.python!, ['-c', MMAP_PY, abs(rel), String(int(0, 2 ** 31))]);
      return durable(rel);
    }
    case 'direct': {
      // O_DIRECT overwrite of a few aligned blocks, data from a file outside the filesystem.
      const blocks = int(1, 8);
      begin(rel);
      run('dd', [
        `if=${cfg.directSource}`,
        `of=${abs(rel)}`,
        `bs=${BS}`,
        `count=${blocks}`,
        `skip=${int(0, 63 - blocks)}`,
        `seek=${int(0, 64 - blocks)}`,
        'oflag=direct',
        'conv=notrunc,fsync',
        'status=none',
      ]);
      return durable(rel);
    }
    case 'overwrite': {
      const size = fs.statSync(abs(rel)).size;
      const n = int(1, size);
      begin(rel);
      const fd = fs.openSync(abs(rel), 'r+');
      fs.writeSync(fd, seeded(n), 0, n, rand() < 0.3 ? 0 : int(0, size - n));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return durable(rel);
    }
    case 'truncate': {
      // Shrink (often to an unaligned size), make that durable, then extend by a write or a sparse tail.
      const size = fs.statSync(abs(rel)).size;
      begin(rel);
      const fd = fs.openSync(abs(rel), 'r+');
      fs.ftruncateSync(fd, int(0, size));
      fs.fsyncSync(fd);
      durable(rel);
      begin(rel);
      const to = int(16, 384) * 1024 + int(0, BS);
      const cur = fs.fstatSync(fd).size;
      if (rand() < 0.5 && to > cur) fs.writeSync(fd, seeded(to - cur), 0, to - cur, cur);
      else fs.ftruncateSync(fd, Math.max(to, cur + 1));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return durable(rel);
    }
    case 'punch': {
      // fallocate: punch a hole, zero a range, collapse or insert a range (extents move), or refill.
      const size = fs.statSync(abs(rel)).size;
      const blocks = Math.floor(size / BS);
      const off = int(0, Math.max(0, blocks - 2)) * BS;
      const len = int(1, Math.max(1, Math.min(8, blocks - off / BS - 1))) * BS;
      const r = rand();
      begin(rel);
      if (size < 8 * BS || size > 512 * 1024 || r < 0.15) {
        const fd = fs.openSync(abs(rel), 'w');
        fs.writeSync(fd, seeded(int(16, 256) * 1024));
        fs.closeSync(fd);
      } else if (r < 0.55) run('fallocate', ['-p', '-o', String(off), '-l', String(len), abs(rel)]);
      else if (r < 0.7) run('fallocate', ['-z', '-o', String(off), '-l', String(len), abs(rel)]);
      else if (r < 0.85) run('fallocate', ['-c', '-o', String(off), '-l', String(len), abs(rel)]);
      else run('fallocate', ['-i', '-o', String(off), '-l', String(len), abs(rel)]);
      fsyncPath(abs(rel));
      return durable(rel);
    }
    case 'rename': {
      // Write a new version beside the file, then rename it over the file.
      const tmp = `w/rename/.new${i}`;
      begin(tmp);
      writeFileDurably(tmp, seeded(int(1, 128) * 1024 + int(0, 100)));
      fsyncPath(dir);
      durable(tmp);
      begin(tmp, rel);
      fs.renameSync(abs(tmp), abs(rel));
      fsyncPath(dir);
      return durable(tmp, rel);
    }
    case 'hardlink': {
      // One inode, two names: link it under the other name, unlink the first, now and then rewrite it.
      const from = `w/hardlink/${linkSide[i]}${i}`;
      const to = `w/hardlink/${linkSide[i] === 'a' ? 'b' : 'a'}${i}`;
      if (fs.existsSync(abs(to))) {
        // Left by an operation a read-only moment cut short (after the link, before the unlink).
        begin(to);
        fs.unlinkSync(abs(to));
        fsyncPath(dir);
        durable(to);
      }
      begin(to);
      fs.linkSync(abs(from), abs(to));
      fsyncPath(dir);
      durable(to);
      if (rand() < 0.3) {
        begin(from, to);
        const fd = fs.openSync(abs(to), 'r+');
        fs.writeSync(fd, seeded(BS), 0, BS, 0);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        durable(from, to);
      }
      begin(from);
      fs.unlinkSync(abs(from));
      fsyncPath(dir);
      linkSide[i] = linkSide[i] === 'a' ? 'b' : 'a';
      return durable(from);
    }
    case 'reuse': {
      // Delete a file and at once create another: its freed blocks and inode are likely reused.
      const old = `w/reuse/f${i}.${reuseGen[i]}`;
      const next = `w/reuse/f${i}.${++reuseGen[i]}`;
      // (`old` is missing when a read-only moment cut the operation that was to create it short.)
      if (fs.existsSync(abs(old))) {
        begin(old);
        fs.unlinkSync(abs(old));
        fsyncPath(dir);
        durable(old);
      }
      begin(next);
      writeFileDurably(next, seeded(int(16, 256) * 1024));
      fsyncPath(dir);
      return durable(next);
    }
    case 'append': {
      // A growing log, rotated (renamed over the previous one) at 2 MiB.
      if (!fs.existsSync(abs(rel))) {
        // A rotation a read-only moment cut short (after the rename): the new log is started now.
        begin(rel);
        writeFileDurably(rel, Buffer.alloc(0));
        fsyncPath(dir);
        return durable(rel);
      }
      if (fs.statSync(abs(rel)).size > 2 << 20) {
        const old = `${rel}.1`;
        begin(rel, old);
        fs.renameSync(abs(rel), abs(old));
        writeFileDurably(rel, Buffer.alloc(0));
        fsyncPath(dir);
        return durable(rel, old);
      }
      begin(rel);
      const fd = fs.openSync(abs(rel), 'a');
      fs.writeSync(fd, seeded(int(100, 16384)));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return durable(rel);
    }
    case 'bigdir': {
      // Keep a directory of tens of thousands of entries changing, so its htree leaves split and merge.
      const big = abs(cfg.bigDir!);
      const r = rand();
      if (r < 0.45 || bigNames.length < 100) {
        // A burst of long names: leaves fill up and split.
        const names = Array.from({ length: int(1, 12) }, () => `${cfg.bigDir}/new-${cfg.seed}-${bigGen++}-${seeded(16).toString('hex')}`);
        begin(...names);
        for (const name of names) writeFileDurably(name, seeded(int(0, 3) * 100));
        fsyncPath(big);
        bigNames.push(...names);
        return durable(...names);
      }
      const k = int(0, bigNames.length - 1);
      const victim = bigNames[k];
      bigNames[k] = bigNames[bigNames.length - 1];
      bigNames.pop();
      if (r < 0.75) {
        begin(victim);
        fs.unlinkSync(abs(victim));
        fsyncPath(big);
        return durable(victim);
      }
      const target = pick(bigNames);
      begin(victim, target);
      fs.renameSync(abs(victim), abs(target));
      fsyncPath(big);
      return durable(victim, target);
    }
  }
}

async function main(): Promise<void> {
  const kinds = cfg.kinds.filter((k) => WRITER_KINDS.includes(k));
  for (const k of kinds) setup(k);
  process.stdout.write('ready\n');
  while (!stopping && !fs.existsSync(cfg.stopFile)) {
    const k = pick(kinds);
    try {
      op(k);
    } catch (err) {
      // A filesystem made read-only for a moment (an NTFS snapshot's last pass): its paths stay
      // undetermined (begun, never durable) until a later operation makes them durable again.
      // A fallocate mode the filesystem lacks (btrfs: collapse and insert range): the file is as it was.
      if (/Operation not supported/.test((err as Error).message)) {
        counts.unsupported = (counts.unsupported ?? 0) + 1;
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EROFS' && !/Read-only file system/.test((err as Error).message)) throw err; // (python's, for mmap)
      counts.readOnly = (counts.readOnly ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    counts[k] = (counts[k] ?? 0) + 1;
    await new Promise((r) => setImmediate(r)); // lets SIGTERM's handler run
  }
  process.stdout.write(JSON.stringify({ ops: counts }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`writer failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
