// Damaged repositories as a careful tester finds them (issue 10): prune never deletes what a
// snapshot needs, check reports every kind of damage (index, pack chunk lists, extents, misplaced
// packs), garbage lock files do not block forever, and a read-only repository can be read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, seededBytes, sh, tmpDir, withLoop, withMount } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { serializeManifest } from '../../../imaging/repo/manifest';

after(cleanup);
const KiB = 1024;

/** A repository with two snapshots of a 1 MiB random "disk" (16 chunks of 64 KiB in packs of ~256 KiB). */
function twoSnapshots(dir: string): { repo: string; disk: string; ids: string[] } {
  const repo = path.join(dir, 'repo');
  const disk = path.join(dir, 'disk.img');
  assert.equal(devsnap(['init', '--repo', repo, '--chunk-size', String(64 * KiB), '--pack-size', String(256 * KiB)]).status, 0);
  const data = seededBytes(1, 1024 * KiB);
  fs.writeFileSync(disk, data);
  const a = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(a.status, 0, a.stderr);
  seededBytes(2, 256 * KiB).copy(data, 512 * KiB);
  fs.writeFileSync(disk, data);
  const b = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(b.status, 0, b.stderr);
  return { repo, disk, ids: [a.json.id, b.json.id] };
}

const packs = (repo: string) =>
  sh('find', [path.join(repo, 'data'), '-name', '*.pack'])
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .sort();
const indexFiles = (repo: string) => fs.readdirSync(path.join(repo, 'index')).map((n) => path.join(repo, 'index', n));

function flipByte(file: string, fromEnd: number): void {
  const fd = fs.openSync(file, 'r+');
  const pos = fs.fstatSync(fd).size - fromEnd;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, pos);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, pos);
  fs.closeSync(fd);
}

test('prune refuses a repository whose snapshots miss chunks, and never deletes a pack it cannot read', () => {
  const { repo } = twoSnapshots(tmpDir());
  assert.equal(devsnap(['forget', 'latest', '--repo', repo]).status, 0); // garbage for prune to want
  const before = packs(repo);
  for (const f of indexFiles(repo)) fs.rmSync(f); // the index is lost…
  // …and one pack's own chunk list is damaged: first one that only the forgotten snapshot used,
  // then one that the kept snapshot needs.
  const outcome = new Map<string, number>();
  for (const p of before) {
    flipByte(p, 20);
    outcome.set(p, devsnap(['check', '--repo', repo]).status);
    flipByte(p, 20);
  }
  const garbageOnly = before.find((p) => outcome.get(p) === 0);
  const needed = before.find((p) => outcome.get(p) === 8);
  assert.ok(garbageOnly && needed, `packs of both kinds: ${JSON.stringify([...outcome])}`);

  flipByte(needed, 20);
  const c = devsnap(['check', '--repo', repo, '--json']);
  assert.ok(
    c.json.errors.some((e: string) => /chunk\(s\) are missing/.test(e)),
    JSON.stringify(c.json),
  );
  assert.ok(
    c.json.warnings.some((w: string) => w.includes(path.basename(needed, '.pack')) && /prune keeps it/.test(w)),
    JSON.stringify(c.json),
  );
  const p = devsnap(['prune', '--repo', repo, '--json']);
  assert.equal(p.status, 8, p.stdout);
  assert.equal(p.json.error.code, 'DAMAGED');
  assert.match(p.json.error.message, /prune deleted nothing/);
  assert.deepEqual(packs(repo), before, 'every pack is still there');
  flipByte(needed, 20);

  flipByte(garbageOnly, 20);
  const p2 = devsnap(['prune', '--repo', repo, '--json']);
  assert.equal(p2.status, 0, p2.stdout);
  assert.ok(packs(repo).includes(garbageOnly), 'a pack whose chunk list cannot be read is kept, even when nothing seems to need it');
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
});

test('a damaged index file and a damaged pack chunk list are reported; prune repairs both and the data stays', () => {
  const { repo, ids } = twoSnapshots(tmpDir());
  flipByte(indexFiles(repo)[0], 40);
  const c = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c.status, 8, 'a flipped byte in an index file is an error, not "No errors found"');
  assert.ok(
    c.json.errors.some((e: string) => /index file .* is damaged/.test(e)),
    JSON.stringify(c.json.errors),
  );
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0, 'the packs still hold everything');
  assert.equal(devsnap(['prune', '--repo', repo]).status, 0);
  assert.equal(devsnap(['check', '--repo', repo]).status, 0, 'prune wrote a sound index');

  flipByte(packs(repo)[0], 20); // inside the trailer's entries
  const c2 = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c2.status, 8);
  assert.ok(
    c2.json.errors.some((e: string) => /own chunk list/.test(e)),
    JSON.stringify(c2.json.errors),
  );
  assert.equal(devsnap(['prune', '--repo', repo]).status, 0);
  const c3 = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c3.status, 0, JSON.stringify(c3.json));
  // With the index gone, the packs' own lists rebuild it: nothing was lost.
  for (const f of indexFiles(repo)) fs.rmSync(f);
  assert.equal(devsnap(['verify', '--repo', repo]).status, 0);
  const l = devsnap(['list', '--repo', repo, '--json']);
  assert.deepEqual(l.json.snapshots.map((s: { id: string }) => s.id).sort(), [...ids].sort());
});

test('an extent shorter than its chunk is damage for check and verify, not a pass', () => {
  const { repo, ids } = twoSnapshots(tmpDir());
  const file = path.join(repo, 'snapshots', `${ids[0]}.json`);
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  const area = m.areas.find((a: { extents: [number, number, string][] }) => a.extents.some((e) => e[2].length === 64));
  const ext = area.extents.find((e: [number, number, string]) => e[2].length === 64);
  ext[1] -= 4096; // a consistent but wrong manifest: its checksum is recomputed
  area.extents.splice(area.extents.indexOf(ext) + 1, 0, [ext[0] + ext[1], 4096, 'z']);
  fs.writeFileSync(file, serializeManifest(m));
  const summary = path.join(repo, 'snapshots', `${ids[0]}.summary`);
  fs.rmSync(summary, { force: true });
  const c = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c.status, 8, c.stdout);
  assert.ok(
    c.json.errors.some((e: string) => /do not have the length of the chunk/.test(e)),
    JSON.stringify(c.json.errors),
  );
  const v = devsnap(['verify', ids[0], '--repo', repo, '--json']);
  assert.equal(v.status, 8, v.stdout);
  assert.match(JSON.stringify(v.json), /its chunk holds 65536/);
});

test('garbage or empty lock files and misplaced packs: reported, never "locked forever" or an abort', () => {
  const { repo, disk } = twoSnapshots(tmpDir());
  fs.writeFileSync(path.join(repo, 'locks', '1234-abcd.lock'), '');
  fs.writeFileSync(path.join(repo, 'locks', '5678-ef01.lock'), '{"pid": "garbage"');
  const l = devsnap(['list', '--repo', repo, '--lock-wait', '0']);
  assert.equal(l.status, 0, l.stderr);
  assert.match(l.stderr, /Removed an unreadable lock file locks\/1234-abcd\.lock/);
  assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
  assert.equal(devsnap(['snapshot', disk, '--repo', repo, '--lock-wait', '0']).status, 0);

  const p = packs(repo)[0];
  const name = path.basename(p);
  const wrong = path.join(repo, 'data', name.startsWith('00') ? '01' : '00');
  fs.mkdirSync(wrong, { recursive: true });
  fs.renameSync(p, path.join(wrong, name));
  const c = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c.status, 8, 'the snapshots that need it miss chunks');
  assert.ok(
    c.json.warnings.some((w: string) => w.includes(name) && /not in the folder its name belongs in/.test(w)),
    JSON.stringify(c.json),
  );
  fs.renameSync(path.join(wrong, name), p);
  assert.equal(devsnap(['check', '--repo', repo]).status, 0);
});

test('folders, devices and links where repository files belong: reported as damage, never an endless read or a crash', () => {
  const { repo, disk, ids } = twoSnapshots(tmpDir());
  const run = (args: string[]) => {
    const r = devsnap([...args, '--repo', repo, '--lock-wait', '1'], {}, 60_000);
    assert.doesNotMatch(r.stdout + r.stderr, /Unexpected error|\n\s+at /, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  fs.mkdirSync(path.join(repo, 'locks', '1234-abcd.lock'));
  fs.symlinkSync('/dev/zero', path.join(repo, 'locks', '1234-abce.lock'));
  fs.symlinkSync('/dev/zero', path.join(repo, 'index', `${'0'.repeat(32)}.idx`));
  fs.mkdirSync(path.join(repo, 'data', 'aa'), { recursive: true });
  fs.symlinkSync('/dev/zero', path.join(repo, 'data', 'aa', `aa${'0'.repeat(30)}.pack`));
  fs.symlinkSync('/dev/zero', path.join(repo, 'snapshots', `${ids[1]}.summary.x`)); // not a name devsnap uses: ignored
  fs.rmSync(path.join(repo, 'snapshots', `${ids[1]}.summary`));
  fs.symlinkSync('/dev/zero', path.join(repo, 'snapshots', `${ids[1]}.summary`));
  fs.rmSync(path.join(repo, 'snapshots', `${ids[0]}.json`));
  fs.mkdirSync(path.join(repo, 'snapshots', `${ids[0]}.json`));

  const l = run(['list', '--json']);
  assert.equal(l.status, 8, 'a snapshot whose manifest is a folder is listed as damaged');
  assert.deepEqual(
    l.json.snapshots.map((s: { id: string }) => s.id),
    [ids[1]],
  );
  assert.match(l.json.damaged[0].message, /not a regular file/);
  const c = run(['check', '--json']);
  assert.equal(c.status, 8);
  assert.ok(
    c.json.warnings.some((w: string) => /aa0+\.pack is not a regular file/.test(w)),
    JSON.stringify(c.json),
  );
  assert.equal(run(['verify', ids[1]]).status, 0, 'the other snapshot verifies');
  assert.equal(run(['forget', `id:${ids[0]}`]).status, 0, 'the damaged one can be forgotten');
  assert.equal(run(['snapshot', disk]).status, 0, 'a folder or a link in locks/ does not block writers');
  assert.equal(run(['prune']).status, 0);
  const after = run(['check', '--json']);
  assert.equal(after.status, 0, JSON.stringify(after.json));
  assert.equal(run(['unlock', '--all']).status, 0);
});

test('a repository on read-only media: every command that only reads works; writers say why they cannot', { skip: !isRoot && 'needs root (mount)' }, async () => {
  const dir = tmpDir();
  const fsImage = path.join(dir, 'backup.img');
  fs.writeFileSync(fsImage, '');
  fs.truncateSync(fsImage, 48 << 20);
  sh('mkfs.ext4', ['-q', '-F', fsImage]);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc', 'hostname'), 'before\n');
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, { table: 'gpt', size: 10 << 20, partitions: [{ size: 8 << 20, fs: 'ext4', fromDir: tree }] });
  const ids: string[] = [];
  await withLoop(fsImage, {}, (dev) =>
    withMount(dev, 'ext', {}, async (mnt) => {
      const repo = path.join(mnt, 'repo');
      for (const text of ['before', 'after']) {
        fs.writeFileSync(path.join(tree, 'etc', 'hostname'), `${text}\n`);
        await makeDisk(disk, { table: 'gpt', size: 10 << 20, partitions: [{ size: 8 << 20, fs: 'ext4', fromDir: tree }] });
        const r = devsnap(['snapshot', disk, '--repo', repo, '--label', text, '--json']);
        assert.equal(r.status, 0, r.stderr);
        ids.push(r.json.id);
      }
      fs.rmSync(path.join(repo, 'snapshots', `${ids[0]}.summary`)); // listing must rebuild it, and cannot write it
    }),
  );
  await withLoop(fsImage, { readOnly: true }, (dev) =>
    withMount(dev, 'ext', { readOnly: true }, (mnt) => {
      const repo = path.join(mnt, 'repo');
      const [a, b] = ids;
      const reads: string[][] = [
        ['list'],
        ['show', a],
        ['check'],
        ['verify'],
        ['check', '--read-data'],
        ['diff', a, b],
        ['ls', a, '/etc'],
        ['inventory', a],
        ['changes', a, b],
        ['restore-files', b, '/etc/hostname', '--to', path.join(dir, 'files')],
        ['restore', a, path.join(dir, 'out.img')],
        ['export', a, path.join(dir, 'x.tar.zst')],
      ];
      for (const args of reads) {
        const r = devsnap([...args, '--repo', repo]);
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /read-only here .*without a lock/, args.join(' '));
      }
      assert.equal(devsnap(['cat', b, '/etc/hostname', '--repo', repo]).stdout, 'after\n');
      const restored = sh('find', [path.join(dir, 'files'), '-name', 'hostname']).stdout.trim();
      assert.equal(fs.readFileSync(restored, 'utf8'), 'after\n');
      assert.equal(devsnap(['list', '--repo', repo, '--json']).json.snapshots.length, 2);
      for (const args of [['label', a, 'new'], ['forget', a], ['prune'], ['snapshot', disk]]) {
        const w = devsnap([...args, '--repo', repo, '--json']);
        assert.notEqual(w.status, 0, args.join(' '));
        assert.match(w.json.error.message, /read-only/, args.join(' '));
      }
    }),
  );
});
