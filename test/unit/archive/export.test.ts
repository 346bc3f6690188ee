// export/import: a snapshot of a real GPT disk image (ext4 partition made by mkfs.ext4 -d, a
// partition of random bytes with no filesystem) exported to .tar.zst, unpacked with the system tar
// and restored with the archive's own restore.sh (dd) — byte-identical; checked by `zstd -t`;
// imported into another repository (same chunk ids, dedup) and restored from there; a truncated
// archive is refused with a clear error and leaves the repository unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { Repository } from '../../../imaging/repo/repository';
import { takeSnapshot } from '../../../imaging/snapshot/take';
import { restoreSnapshot } from '../../../imaging/snapshot/restore';
import { exportSnapshot, importSnapshot, zstdFrames } from '../../../imaging/archive/export';
import { DevsnapError } from '../../../imaging/core/errors';
import { devsnap } from '../../helpers/cli';

const log = () => undefined;

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const MiB = 1 << 20;

/** A 64 MiB GPT disk: p1 ext4 (20 MiB, with files), p2 4 MiB of random bytes (no filesystem), free tail. */
function makeDisk(dir: string): string {
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 64 * MiB);
  sh('sfdisk', ['-q', img], { input: 'label: gpt\nstart=2048, size=40960, type=L, name="root"\nstart=43008, size=8192, type=L, name="raw"\n' });
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'home/dev'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'devbox\n');
  fs.writeFileSync(path.join(tree, 'home/dev/random.bin'), crypto.randomBytes(3 * MiB + 123));
  fs.writeFileSync(path.join(tree, 'home/dev/notes.txt'), 'hello devsnap\n'.repeat(50000));
  const p1 = path.join(dir, 'p1.img');
  fs.writeFileSync(p1, '');
  fs.truncateSync(p1, 20 * MiB);
  sh('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', tree, p1]);
  sh('dd', [`if=${p1}`, `of=${img}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
  const p2 = path.join(dir, 'p2.img');
  fs.writeFileSync(p2, crypto.randomBytes(4 * MiB));
  sh('dd', [`if=${p2}`, `of=${img}`, 'bs=512', 'seek=43008', 'conv=notrunc', 'status=none']);
  fs.rmSync(p1);
  fs.rmSync(p2);
  return img;
}

function sameBytes(a: string, b: string): void {
  const r = spawnSync('cmp', [a, b], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cmp ${a} ${b}: ${r.stdout}${r.stderr}`);
}

test('export, restore by hand with tar + dd, zstd -t, import, restore, truncated archive', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-export-'));
  try {
    const img = makeDisk(dir);
    const repo = await Repository.init(path.join(dir, 'repo'), {}, log);
    await repo.loadIndex();
    const snap = await takeSnapshot(repo, { source: img, label: 'before export', log });
    assert.ok(
      snap.areas.some((a) => a.mode === 'used-blocks'),
      'the ext4 partition is imaged used-blocks only',
    );

    const archive = path.join(dir, 'snap.tar.zst');
    const events: number[] = [];
    const res = await exportSnapshot(repo, snap.id, archive, { log, onProgress: (e) => events.push(e.bytesDone) });
    await repo.close();
    assert.equal(res.bytes, fs.statSync(archive).size);
    assert.ok(res.bytes < 16 * MiB, `archive is compressed (${res.bytes} bytes)`);
    assert.ok(events.length > 0);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    // Cancelled: CANCELLED, no file and no temporary file left.
    const ac = new AbortController();
    ac.abort();
    const cancelledFile = path.join(dir, 'cancelled.tar.zst');
    await assert.rejects(exportSnapshot(repo, snap.id, cancelledFile, { log, signal: ac.signal }), (e: unknown) => e instanceof DevsnapError && e.code === 'CANCELLED');
    assert.equal(fs.existsSync(cancelledFile), false);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
    );

    // Refuses to overwrite.
    await assert.rejects(exportSnapshot(repo, snap.id, archive, { log }), (e: unknown) => e instanceof DevsnapError && e.code === 'BAD_TARGET');

    // (b) the standard zstd tool accepts it
    sh('zstd', ['-q', '-t', archive]);

    // (a) unpack with the system tar, restore with the archive's own script (dd), compare
    const out = path.join(dir, 'unpacked');
    fs.mkdirSync(out);
    sh('tar', ['--zstd', '-xf', archive, '-C', out]);
    const names = sh('tar', ['--zstd', '-tf', archive]).trim().split('\n');
    assert.equal(names[0], 'manifest.json');
    assert.equal(names[names.length - 1], 'SHA256SUMS');
    assert.ok(
      names.includes('partitions/p1.img') && names.includes('partitions/p2.img') && names.includes('raw/0.bin') && names.includes('README.txt') && names.includes('restore.sh'),
      names.join(','),
    );
    assert.equal(fs.statSync(path.join(out, 'partitions/p1.img')).size, 20 * MiB);
    sh('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: out });
    assert.match(fs.readFileSync(path.join(out, 'README.txt'), 'utf8'), /dd if=partitions\/p1\.img of=TARGET bs=1M seek=1048576 oflag=seek_bytes conv=notrunc,fsync/);
    const byHand = path.join(dir, 'by-hand.img');
    sh('sh', [path.join(out, 'restore.sh'), byHand]);
    sameBytes(img, byHand);
    // The manual dd lines of the README, against an existing file of the same size.
    const byReadme = path.join(dir, 'by-readme.img');
    fs.writeFileSync(byReadme, '');
    fs.truncateSync(byReadme, 64 * MiB);
    const ddLines = fs
      .readFileSync(path.join(out, 'README.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('dd if=') && l.includes('of=TARGET') && l.includes('seek_bytes'));
    assert.equal(ddLines.length, snap.areas.length);
    for (const l of ddLines) sh('sh', ['-c', l.replace('of=TARGET', `of=${byReadme}`).replace('status=progress', 'status=none')], { cwd: out });
    sameBytes(img, byReadme);
    fs.rmSync(out, { recursive: true });

    // (c) import into a fresh repository: same id, label, created and chunk ids; restore is byte-identical
    const repo2 = await Repository.init(path.join(dir, 'repo2'), {}, log);
    await repo2.loadIndex();
    const imp = await importSnapshot(repo2, archive, { log });
    assert.equal(imp.id, snap.id);
    assert.ok(imp.chunksNew > 0);
    const m2 = await repo2.readManifest(snap.id);
    assert.equal(m2.label, snap.label);
    assert.equal(m2.created, snap.created);
    assert.deepEqual(m2.areas, snap.areas, 'same extents and chunk ids');
    const restored = path.join(dir, 'restored.img');
    await restoreSnapshot(repo2, { id: snap.id, target: restored, log });
    sameBytes(img, restored);
    // A second import of the same snapshot is refused.
    await assert.rejects(importSnapshot(repo2, archive, { log }), (e: unknown) => e instanceof DevsnapError && e.code === 'REPO_EXISTS' && /already holds snapshot/.test(e.message));
    await repo2.close();

    // Dedup: a repository that already holds a snapshot of the same disk stores nothing new.
    const repo3 = await Repository.init(path.join(dir, 'repo3'), {}, log);
    await repo3.loadIndex();
    await takeSnapshot(repo3, { source: img, log });
    const packsBefore = (await repo3.listPacks()).length;
    const imp3 = await importSnapshot(repo3, archive, { log });
    assert.equal(imp3.chunksNew, 0);
    assert.equal(imp3.bytesAdded, 0);
    assert.equal((await repo3.listPacks()).length, packsBefore);
    await repo3.close();

    // (d) truncated archives: a clear DAMAGED error, nothing committed, no leftovers
    const full = fs.readFileSync(archive);
    for (const cut of [Math.floor(full.length / 2), full.length - 5, 100]) {
      const bad = path.join(dir, `cut-${cut}.tar.zst`);
      fs.writeFileSync(bad, full.subarray(0, cut));
      const repo4 = await Repository.init(path.join(dir, `repo-cut-${cut}`), {}, log);
      await repo4.loadIndex();
      await assert.rejects(importSnapshot(repo4, bad, { log }), (e: unknown) => {
        assert.ok(e instanceof DevsnapError, String(e));
        assert.equal(e.code, 'DAMAGED');
        assert.match(e.message, /truncated|incomplete|corrupt|ends in the middle/);
        assert.ok(e.message.includes(bad), e.message);
        return true;
      });
      assert.deepEqual(await repo4.listSnapshotIds(), []);
      assert.deepEqual(await repo4.listPacks(), []);
      assert.deepEqual(await repo4.leftovers(), []);
      await repo4.close();
    }
    // Cut at a zstd frame boundary: every frame is whole, the tar stream inside is not.
    const frames: Buffer[] = [];
    for await (const f of zstdFrames(
      (async function* () {
        yield full;
      })(),
      archive,
    ))
      frames.push(f.data);
    assert.ok(frames.length > 4, `${frames.length} frames`);
    assert.equal(Buffer.concat(frames).length, full.length);
    for (const keep of [Math.floor(frames.length / 2), frames.length - 1]) {
      const bad = path.join(dir, `frames-${keep}.tar.zst`);
      fs.writeFileSync(bad, Buffer.concat(frames.slice(0, keep)));
      const repo4 = await Repository.init(path.join(dir, `repo-frames-${keep}`), {}, log);
      await repo4.loadIndex();
      await assert.rejects(importSnapshot(repo4, bad, { log }), (e: unknown) => {
        assert.ok(e instanceof DevsnapError, String(e));
        assert.equal(e.code, 'DAMAGED');
        assert.match(e.message, /incomplete|ends in the middle|not a valid archive/);
        return true;
      });
      assert.deepEqual(await repo4.listSnapshotIds(), []);
      assert.deepEqual(await repo4.listPacks(), []);
      await repo4.close();
    }
    // A flipped byte inside the data: found, nothing committed.
    const flipped = Buffer.from(full);
    flipped[Math.floor(full.length * 0.75)] ^= 0x40;
    const badFlip = path.join(dir, 'flipped.tar.zst');
    fs.writeFileSync(badFlip, flipped);
    const repo6 = await Repository.init(path.join(dir, 'repo6'), {}, log);
    await repo6.loadIndex();
    await assert.rejects(importSnapshot(repo6, badFlip, { log }), (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED');
    assert.deepEqual(await repo6.listSnapshotIds(), []);
    assert.deepEqual(await repo6.listPacks(), []);
    await repo6.close();

    // Not an archive at all.
    const junk = path.join(dir, 'junk.tar.zst');
    fs.writeFileSync(junk, 'this is not zstd');
    const repo5 = await Repository.init(path.join(dir, 'repo5'), {}, log);
    await assert.rejects(importSnapshot(repo5, junk, { log }), (e: unknown) => e instanceof DevsnapError && e.code === 'DAMAGED' && /not a zstd file/.test(e.message));
    await assert.rejects(importSnapshot(repo5, path.join(dir, 'missing.tar.zst'), { log }), (e: unknown) => e instanceof DevsnapError && e.code === 'NOT_FOUND');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('encrypted repositories: export decrypts, import re-keys chunk ids, restores are byte-identical', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-export-enc-'));
  try {
    const img = makeDisk(dir);
    const enc = await Repository.init(path.join(dir, 'enc'), { password: 'secret one' }, log);
    await enc.loadIndex();
    const snap = await takeSnapshot(enc, { source: img, log });
    const archive = path.join(dir, 'enc.tar.zst');
    const notes: string[] = [];
    await exportSnapshot(enc, snap.id, archive, { log: (m) => notes.push(m) });
    await enc.close();
    assert.ok(
      notes.some((n) => /not encrypted/.test(n)),
      notes.join('\n'),
    );

    // Into a plain repository: chunk ids become sha256 ids; the data is the same.
    const plain = await Repository.init(path.join(dir, 'plain'), {}, log);
    await plain.loadIndex();
    await importSnapshot(plain, archive, { log });
    const mp = await plain.readManifest(snap.id);
    assert.notDeepEqual(mp.areas, snap.areas);
    const out1 = path.join(dir, 'out1.img');
    await restoreSnapshot(plain, { id: snap.id, target: out1, log });
    sameBytes(img, out1);
    // Plain -> another encrypted repository (a different key).
    const archive2 = path.join(dir, 'plain.tar.zst');
    await exportSnapshot(plain, snap.id, archive2, { log });
    await plain.close();
    const enc2 = await Repository.init(path.join(dir, 'enc2'), { password: 'secret two' }, log);
    await enc2.loadIndex();
    await importSnapshot(enc2, archive2, { log });
    const out2 = path.join(dir, 'out2.img');
    await restoreSnapshot(enc2, { id: snap.id, target: out2, log });
    sameBytes(img, out2);
    await enc2.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an export file inside the repository is refused (by path, through a symbolic link, or overwriting a pack)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-export-in-repo-'));
  try {
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, crypto.randomBytes(MiB));
    const repo = path.join(dir, 'repo');
    const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
    assert.equal(snap.status, 0, snap.stderr);
    const id = snap.json.id as string;
    fs.symlinkSync(repo, path.join(dir, 'alias'));
    const files = () => sh('find', [repo, '-type', 'f', '-printf', '%P %s %T@\\n']).split('\n').sort().join('\n');
    const before = files();
    const pack = sh('find', [path.join(repo, 'data'), '-type', 'f']).split('\n')[0];
    const refused = /inside the repository .*writing the archive there would change the repository/;
    for (const out of [path.join(repo, 'data', 'x.tar.zst'), path.join(dir, 'alias', 'x.tar.zst')]) {
      const r = devsnap(['export', id, out, '--repo', repo, '--json']);
      assert.equal(r.status, 7, `${out}: ${r.stdout}${r.stderr}`);
      assert.equal(r.json.error.code, 'BAD_TARGET');
      assert.match(r.json.error.message, refused);
    }
    // The API's overwrite option (the extension's "replace" answer) onto one of the repository's own files.
    const opened = await Repository.open(repo, {}, log);
    try {
      await assert.rejects(exportSnapshot(opened, id, pack, { log, overwrite: true }), (e: unknown) => e instanceof DevsnapError && e.code === 'BAD_TARGET' && refused.test(e.message));
    } finally {
      await opened.close();
    }
    assert.equal(files(), before, 'nothing in the repository changed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
