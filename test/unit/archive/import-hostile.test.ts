// Import treats an archive as hostile input, and export never puts stored text into shell: archives
// crafted from a real export of a real GPT disk (ext4 + random bytes) — a manifest whose
// source.size is shell text (issue 10, item 7), path traversal, links, duplicate members, wrong
// member sizes, a huge tar header, a huge member, a zstd frame stating a huge size, a
// devsnap-export.json that contradicts the manifest, a corrupt tar header — are each refused as
// DAMAGED naming the archive, with the repository left exactly as it was. A manifest planted in a
// repository is refused by export, and restore.sh holds no label text.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as tar from 'tar-stream';
import { spawnSync } from 'child_process';
import { Repository } from '../../../imaging/repo/repository';
import { serializeManifest } from '../../../imaging/repo/manifest';
import { takeSnapshot } from '../../../imaging/snapshot/take';
import { exportSnapshot, importSnapshot } from '../../../imaging/archive/export';
import { DevsnapError } from '../../../imaging/core/errors';
import { loadZstd } from '../../../imaging/codec/zstd';
import { cleanup, makeDisk, sh, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const log = () => undefined;

interface Member {
  name: string;
  data: Buffer;
  type?: string;
  linkname?: string;
  size?: number;
}

/** The members of a .tar.zst, in order (decompressed with the zstd tool, read with tar-stream). */
async function readArchive(file: string): Promise<Member[]> {
  const tarBytes = spawnSync('zstd', ['-q', '-d', '-c', file], { maxBuffer: 1 << 30 }).stdout;
  const extract = tar.extract();
  const out: Member[] = [];
  const done = (async () => {
    for await (const entry of extract as AsyncIterable<AsyncIterable<Buffer> & { header: tar.Header }>) {
      const parts: Buffer[] = [];
      for await (const b of entry) parts.push(b);
      out.push({ name: entry.header.name, data: Buffer.concat(parts) });
    }
  })();
  extract.end(tarBytes);
  await done;
  return out;
}

/** A ustar header written by hand, so that tests can say anything a hostile archive could. */
function header(name: string, size: number, typeflag = '0', linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(typeflag, 156);
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function tarOf(members: (Member | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    if (Buffer.isBuffer(m)) {
      parts.push(m); // raw bytes: a crafted header and whatever follows it
      continue;
    }
    const typeflag = m.type === 'symlink' ? '2' : m.type === 'link' ? '1' : '0';
    parts.push(header(m.name, m.size ?? m.data.length, typeflag, m.linkname ?? ''), m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Compresses as devsnap export does: independent zstd frames of 1 MiB of input, each stating its size. */
async function zstdFile(dir: string, name: string, tarBytes: Buffer): Promise<string> {
  const codec = await loadZstd();
  const frames: Buffer[] = [];
  for (let o = 0; o < tarBytes.length; o += MiB) frames.push(codec.compress(tarBytes.subarray(o, o + MiB), 1));
  const out = path.join(dir, `${name}.tar.zst`);
  fs.writeFileSync(out, Buffer.concat(frames));
  return out;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** The members with SHA256SUMS recomputed (a careful forger's archive: only devsnap's own checks can refuse it). */
function resummed(members: Member[]): Member[] {
  const pieces = members.filter((m) => m.name !== 'SHA256SUMS' && m.name !== 'README.txt' && m.name !== 'restore.sh' && m.name !== 'devsnap-export.json');
  const sums = Buffer.from(pieces.map((m) => `${sha(m.data)}  ${m.name}`).join('\n') + '\n');
  return [...members.filter((m) => m.name !== 'SHA256SUMS'), { name: 'SHA256SUMS', data: sums }];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- hostile edits of the parsed JSON (values of the wrong type)
function withManifest(members: Member[], edit: (m: any) => void, editInfo?: (i: any) => void): Member[] {
  return resummed(
    members.map((x) => {
      if (x.name === 'manifest.json') {
        const m = JSON.parse(x.data.toString());
        edit(m);
        return { name: x.name, data: serializeManifest(m) };
      }
      if (x.name === 'devsnap-export.json' && editInfo) {
        const i = JSON.parse(x.data.toString());
        editInfo(i);
        return { name: x.name, data: Buffer.from(JSON.stringify(i)) };
      }
      return x;
    }),
  );
}

async function fixture(label = 'before upgrade') {
  const dir = tmpDir('devsnap-hostile-');
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, {
    table: 'gpt',
    size: 16 * MiB,
    partitions: [
      { size: 8 * MiB, fs: 'ext4', label: 'root' },
      { size: 4 * MiB, fs: 'none' },
    ],
  });
  const repo = await Repository.init(path.join(dir, 'repo'), {}, log);
  await repo.loadIndex();
  const snap = await takeSnapshot(repo, { source: disk, label, log });
  const archive = path.join(dir, 'snap.tar.zst');
  await exportSnapshot(repo, snap.id, archive, { log });
  await repo.close();
  return { dir, disk, snap, archive, repoDir: repo.dir };
}

/** Imports into a fresh repository, expecting DAMAGED matching `expected` and a repository left as it was. */
async function refused(dir: string, archive: string, expected: RegExp, what: string): Promise<void> {
  const repoDir = path.join(dir, `repo-${crypto.randomBytes(4).toString('hex')}`);
  const repo = await Repository.init(repoDir, {}, log);
  await repo.loadIndex();
  const before = sh('find', [repoDir, '-type', 'f', '-printf', '%P %s\n']).stdout.split('\n').sort().join('\n');
  try {
    await assert.rejects(
      importSnapshot(repo, archive, { log }),
      (e: unknown) => {
        assert.ok(e instanceof DevsnapError, `${what}: ${String((e as Error)?.stack ?? e)}`);
        assert.equal(e.code, 'DAMAGED', `${what}: ${e.message}`);
        assert.ok(e.message.includes(archive), `${what}: names the archive: ${e.message}`);
        assert.match(e.message, expected, `${what}: ${e.message}`);
        // eslint-disable-next-line no-control-regex -- the test looks for raw control characters (other than tab and new line) in the message
        assert.ok(!/[\x00-\x08\x0b-\x1f]/.test(e.message), `${what}: no raw control characters`);
        return true;
      },
      what,
    );
  } finally {
    await repo.close();
  }
  const afterList = sh('find', [repoDir, '-type', 'f', '-printf', '%P %s\n']).stdout.split('\n').sort().join('\n');
  assert.equal(afterList, before, `${what}: the repository is unchanged`);
}

test('item 7: a manifest whose source.size is shell text is refused by import, and by export when planted', async () => {
  const { dir, snap, archive, repoDir } = await fixture();
  const members = await readArchive(archive);
  const marker = path.join(dir, 'pwned');
  const injection = `268435456; touch ${marker}; SIZE=268435456`;
  const crafted = await zstdFile(
    dir,
    'injected',
    tarOf(
      withManifest(
        members,
        (m) => (m.source.size = injection),
        (i) => (i.diskSize = injection),
      ),
    ),
  );
  await refused(dir, crafted, /manifest of the archive .* is invalid: source\.size is not a number/, 'source.size injection');

  // Planted straight into a repository (by an older devsnap's import, or anyone who can write there): export refuses it.
  const planted = JSON.parse(fs.readFileSync(path.join(repoDir, 'snapshots', `${snap.id}.json`), 'utf8'));
  planted.source.size = injection;
  fs.writeFileSync(path.join(repoDir, 'snapshots', `${snap.id}.json`), serializeManifest(planted));
  const out = path.join(dir, 'planted.tar.zst');
  const r = devsnap(['export', snap.id, out, '--repo', repoDir, '--json']);
  assert.equal(r.status, 8, r.stderr);
  assert.match(r.json.error.message, /source\.size is not a number/);
  assert.equal(fs.existsSync(out), false, 'no archive (and so no restore.sh) written');
  assert.equal(fs.existsSync(marker), false);
});

test('restore.sh holds no label text and takes its numbers from the manifest only', async () => {
  const { dir, disk, archive, snap, repoDir } = await fixture(`it's "fine"; $(touch PWNED) \`id\`\n rm -rf /tmp/x`);
  const out = path.join(dir, 'unpacked');
  fs.mkdirSync(out);
  sh('tar', ['--zstd', '-xf', archive, '-C', out]);
  const script = fs.readFileSync(path.join(out, 'restore.sh'), 'utf8');
  assert.ok(!script.includes('PWNED') && !script.includes('rm -rf') && !script.includes('fine'), script);
  assert.match(script, /^SIZE=16777216$/m);
  for (const line of script.split('\n').filter((l) => l.startsWith('dd '))) {
    assert.match(line, /^dd if=(raw\/\d+\.bin|partitions\/p\d+\.img) of="\$TARGET" bs=1M seek=\d+ oflag=seek_bytes conv=notrunc,fsync status=none$/);
  }
  const target = path.join(dir, 'by-script.img');
  sh('sh', [path.join(out, 'restore.sh'), target], { cwd: dir });
  sh('cmp', [disk, target]);
  assert.equal(fs.existsSync(path.join(dir, 'PWNED')) || fs.existsSync(path.join(out, 'PWNED')), false);

  // README.txt: the label on one line without control characters; its commands quote an odd archive name.
  const readme = fs.readFileSync(path.join(out, 'README.txt'), 'utf8');
  assert.ok(readme.startsWith(`devsnap snapshot ${snap.id} — it's "fine"; $(touch PWNED) \`id\`? rm -rf /tmp/x\n`), readme.split('\n')[0]);
  const repo = await Repository.open(repoDir, {}, log);
  await repo.loadIndex();
  const odd = path.join(dir, "it's mine $(touch PWNED).tar.zst");
  await exportSnapshot(repo, snap.id, odd, { log });
  await repo.close();
  const out2 = path.join(dir, 'unpacked2');
  fs.mkdirSync(out2);
  sh('tar', ['--zstd', '-xf', odd, '-C', out2]);
  const untar = fs
    .readFileSync(path.join(out2, 'README.txt'), 'utf8')
    .split('\n')
    .find((l) => l.includes('tar --zstd -xf'))!
    .trim();
  sh('sh', ['-c', untar], { cwd: dir }); // as a user would paste it, next to the archive
  assert.ok(fs.existsSync(path.join(dir, 'snapshot', 'restore.sh')), untar);
  assert.equal(fs.existsSync(path.join(dir, 'PWNED')), false, untar);
});

test('hostile archives: traversal, links, duplicates, wrong sizes, huge headers and frames, contradictions, corrupt headers', async () => {
  const { dir, archive } = await fixture();
  const members = await readArchive(archive);
  assert.equal(members[0].name, 'manifest.json');
  const [manifest, ...rest] = members;
  const piece = members.find((m) => m.name === 'partitions/p2.img')!;
  const craft = (name: string, list: (Member | Buffer)[]) => zstdFile(dir, name, tarOf(list));
  const cases: [string, string | Promise<string>, RegExp][] = [
    ['traversal', craft('traversal', [manifest, { name: '../../escaped.txt', data: Buffer.from('x') }, ...rest]), /a member named "\.\.\/\.\.\/escaped\.txt", a path outside the archive/],
    ['absolute path', craft('absolute', [manifest, { name: '/tmp/devsnap-absolute.txt', data: Buffer.from('x') }, ...rest]), /a path outside the archive/],
    [
      'symlink piece',
      craft('symlink', [manifest, members[1], { name: 'partitions/p2.img', data: Buffer.alloc(0), type: 'symlink', linkname: '/etc/shadow' }, ...rest.slice(1)]),
      /"partitions\/p2\.img", which is a symlink, not a file/,
    ],
    ['hard link', craft('hardlink', [manifest, { name: 'README.txt', data: Buffer.alloc(0), type: 'link', linkname: 'manifest.json' }, ...rest]), /which is a link, not a file/],
    ['duplicate manifest', craft('dup-manifest', [manifest, manifest, ...rest]), /holds "manifest\.json" twice/],
    ['duplicate piece', craft('dup-piece', [...members.slice(0, -1), piece, members[members.length - 1]]), /holds "partitions\/p2\.img" twice/],
    [
      'short piece',
      craft(
        'short',
        members.map((m) => (m === piece ? { name: m.name, data: m.data.subarray(0, MiB) } : m)),
      ),
      /holds partitions\/p2\.img with 1048576 bytes, but the manifest says 4194304/,
    ],
    ['huge tar header', craft('pax', [manifest, header('PaxHeader/x', 5 * MiB, 'x'), Buffer.alloc(5 * MiB), ...rest.map((m) => tarOf([m]).subarray(0, -1024))]), /a tar header larger than 4 MiB/],
    ['huge manifest member', craft('huge-manifest', [header('manifest.json', 300 * MiB), manifest.data.subarray(0, 512)]), /a manifest\.json of 314572800 bytes, more than devsnap export writes/],
    [
      'contradicting devsnap-export.json',
      zstdFile(
        dir,
        'contradiction',
        tarOf(
          withManifest(
            members,
            () => undefined,
            (i) => (i.diskSize += 512),
          ),
        ),
      ),
      /devsnap-export\.json that does not match its manifest\.json/,
    ],
    [
      'invalid devsnap-export.json',
      zstdFile(
        dir,
        'bad-info',
        tarOf(
          withManifest(
            members,
            () => undefined,
            (i) => (i.chunkHash = 'none'),
          ),
        ),
      ),
      /invalid devsnap-export\.json: chunkHash is not "sha256" or "hmac-sha256"/,
    ],
    ['extent map gap', zstdFile(dir, 'gap', tarOf(withManifest(members, (m) => (m.areas[1].extents[1][0] += 512)))), /manifest of the archive .* is invalid: areas\[1\]\.extents\[1\] starts at/],
    ['corrupt tar header', craft('corrupt', [manifest, Buffer.concat([Buffer.from('garbage'), Buffer.alloc(505, 0x41)]), ...rest]), /damaged tar header/],
  ];
  // A zstd frame that states a decompressed size of 1 TiB (and holds nothing): refused before anything is allocated.
  const bomb = path.join(dir, 'bomb.tar.zst');
  const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0]);
  fs.writeFileSync(bomb, frame);
  cases.push(['frame stating 1 TiB', bomb, /was not written by `devsnap export` \(a zstd frame states a decompressed size larger than devsnap export writes\)/]);
  for (const [what, file, expected] of cases) await refused(dir, await file, expected, what);
  assert.equal(fs.existsSync(path.join(dir, '..', '..', 'escaped.txt')), false);
  assert.equal(fs.existsSync('/tmp/devsnap-absolute.txt'), false);

  // The untouched archive, re-packed the same way, still imports: the checks refuse only what is wrong.
  const repo = await Repository.init(path.join(dir, 'repo-ok'), {}, log);
  await repo.loadIndex();
  // With a member this devsnap does not know, named with terminal control characters: noted, escaped.
  const notes: string[] = [];
  const ok = await importSnapshot(repo, await craft('repacked', [manifest, { name: 'extra\x1b[2J\x07', data: Buffer.from('x') }, ...rest]), { log: (m) => notes.push(m) });
  assert.ok(ok.chunksNew > 0);
  assert.ok(
    notes.some((n) => n.includes('ignoring "extra\\u001b[2J\\u0007"')),
    notes.join('\n'),
  );
  await repo.close();
});
