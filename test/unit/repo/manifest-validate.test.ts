// Every manifest read is validated: a real snapshot of a real GPT disk (ext4 + a partition of random
// bytes), whose manifest is then edited field by field in the repository — with its digest
// recomputed, so only the validation can notice — must be refused as DAMAGED naming the field, by
// the engine and by the CLI. A manifest copied under another snapshot's id is damaged, not a
// second snapshot, and `forget` of the copy never deletes the original.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Repository } from '../../../imaging/repo/repository';
import { Manifest, parseManifest, serializeManifest } from '../../../imaging/repo/manifest';
import { takeSnapshot } from '../../../imaging/snapshot/take';
import { DevsnapError } from '../../../imaging/core/errors';
import { cleanup, makeDisk, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;
const log = () => undefined;

async function fixture(): Promise<{ dir: string; repoDir: string; disk: string; snap: Manifest }> {
  const dir = tmpDir('devsnap-manifest-');
  const disk = path.join(dir, 'disk.img');
  await makeDisk(disk, {
    table: 'gpt',
    size: 16 * MiB,
    partitions: [
      { size: 8 * MiB, fs: 'ext4', label: 'root' },
      { size: 4 * MiB, fs: 'none' },
    ],
  });
  const repoDir = path.join(dir, 'repo');
  const repo = await Repository.init(repoDir, { chunkSize: 256 << 10 }, log);
  await repo.loadIndex();
  const snap = await takeSnapshot(repo, { source: disk, label: 'original', log });
  await repo.close();
  return { dir, repoDir, disk, snap };
}

/** The manifest file's JSON, edited and written back with a correct digest (as a crafted or buggy writer would). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- hostile edits of the parsed JSON (values of the wrong type)
function rewrite(repoDir: string, fileId: string, m: Manifest, edit: (m: any) => void): void {
  const copy = JSON.parse(JSON.stringify(m));
  edit(copy);
  fs.writeFileSync(path.join(repoDir, 'snapshots', `${fileId}.json`), serializeManifest(copy));
}

async function readBack(repoDir: string, id: string): Promise<Manifest> {
  const repo = await Repository.open(repoDir, {}, log);
  try {
    return await repo.readManifest(id);
  } finally {
    await repo.close();
  }
}

test('each invalid field of a manifest is refused as DAMAGED, naming the field', async () => {
  const { repoDir, snap } = await fixture();
  const dataCount = (i: number) => [...snap.areas[i].extents].filter((e) => e[2].length === 64).length;
  const data = snap.areas.map((_, i) => i).sort((a, b) => dataCount(b) - dataCount(a))[0]; // the random-bytes partition
  const dataExtent = [...snap.areas[data].extents].findIndex((e) => e[2].length === 64);
  const part = snap.areas.findIndex((a) => a.kind === 'partition');
  assert.ok(data >= 0 && part >= 0 && snap.areas[data].extents.length > 2);
  const injection = '268435456; touch /tmp/devsnap-pwned; SIZE=268435456';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- hostile edits of the parsed JSON (values of the wrong type)
  const cases: [string, (m: any) => void, RegExp][] = [
    ['source.size as shell text', (m) => (m.source.size = injection), /source\.size is not a number .*268435456; touch/],
    ['source.size negative', (m) => (m.source.size = -512), /source\.size is negative/],
    ['source.size fractional', (m) => (m.source.size = 16 * MiB + 0.5), /source\.size is not a whole number/],
    ['source.size smaller than the areas', (m) => (m.source.size = 8 * MiB), /ends at byte \d+, past the end of the 8388608-byte disk/],
    ['id not hex', (m) => (m.id = '../../etc/passwd'), /id is not a snapshot id/],
    ['label not a string', (m) => (m.label = { toString: 1 }), /label is not a string/],
    ['created not a time', (m) => (m.created = 'yesterday'), /created is not an ISO 8601 time/],
    ['state unknown', (m) => (m.state = 'fine'), /state is not "verified", "not-verified" or "damaged"/],
    ['parent malformed', (m) => (m.parent = '$(reboot)'), /parent is not a snapshot id/],
    ['partition start fractional', (m) => (m.partitions[0].start = 0.5), /partitions\[0\]\.start is not a whole number/],
    ['partition size not a number', (m) => (m.partitions[1].size = '4M'), /partitions\[1\]\.size is not a number/],
    ['partition listed twice', (m) => m.partitions.push({ ...m.partitions[0] }), /lists partition 1 twice/],
    ['table type differs', (m) => (m.table.type = 'mbr'), /table\.type "mbr" differs from source\.table "gpt"/],
    ['table sector size', (m) => (m.table.sectorSize = 4096), /table\.sectorSize is not 512/],
    ['gpt layout not a number', (m) => (m.table.gpt.entriesLba = '2'), /table\.gpt\.entriesLba is not a number/],
    ['chunk size zero', (m) => (m.chunkSize = 0), /chunkSize is zero/],
    ['chunk size huge', (m) => (m.chunkSize = 2 ** 40), /chunkSize is larger than/],
    ['area kind unknown', (m) => (m.areas[0].kind = 'swap'), /areas\[0\]\.kind is not "raw" or "partition"/],
    ['area mode unknown', (m) => (m.areas[part].mode = 'sparse'), new RegExp(`areas\\[${part}\\]\\.mode is not "raw", "used-blocks" or "full"`)],
    ['area past the disk', (m) => (m.areas[m.areas.length - 1].size += 512), /ends at byte \d+, past the end of the \d+-byte disk/],
    ['areas overlapping', (m) => (m.areas[1].start -= 512), /areas\[1\] starts at byte \d+, inside the area before it/],
    ['area of an unknown partition', (m) => (m.areas[part].partition = 9), /is partition 9, which partitions does not list/],
    [
      'area outside its partition',
      (m) => {
        m.partitions[0].start += 4096;
        m.table.partitions[0].start += 4096;
      },
      /lies outside partition 1/,
    ],
    ['extent gap', (m) => (m.areas[data].extents[1][0] += 512), new RegExp(`areas\\[${data}\\]\\.extents\\[1\\] starts at \\d+, not at \\d+ .*gap`)],
    [
      'extents out of order',
      (m) => {
        const x = m.areas[data].extents;
        [x[0], x[1]] = [x[1], x[0]];
      },
      /extents\[0\] starts at \d+, not at 0/,
    ],
    [
      'extent length zero',
      (m) => {
        const x = m.areas[data].extents;
        x.splice(1, 0, [x[1][0], 0, 'z']);
      },
      /has the length 0, not a positive whole number/,
    ],
    ['extent past its area', (m) => m.areas[data].extents.push([m.areas[data].size, 512, 'z']), /extents\[\d+\] ends at byte \d+ of the area, past its size/],
    ['extents short of the area', (m) => m.areas[data].extents.pop(), /extents cover \d+ of the area's \d+ bytes/],
    ['chunk id malformed', (m) => (m.areas[data].extents[dataExtent][2] = 'q'.repeat(64)), /refers to "q+.*, which is not a chunk id/],
    [
      'data extent longer than a chunk',
      (m) => {
        const x = m.areas[data].extents;
        const e = x[dataExtent];
        const next = x[dataExtent + 1];
        // Take the next extent's bytes into this one: offsets stay contiguous, only the length rule breaks.
        e[1] += next[1];
        x.splice(dataExtent + 1, 1);
      },
      /is a chunk of \d+ bytes, longer than the chunk size \(262144\)/,
    ],
    ['extent not a triple', (m) => (m.areas[data].extents[0] = { offset: 0 }), /extents\[0\] is not \[offset, length, chunk\]/],
    ['warnings not strings', (m) => (m.warnings = [42]), /warnings\[0\] is not a string/],
    ['stats missing', (m) => delete m.stats, /stats .*missing/],
  ];
  for (const [what, edit, expected] of cases) {
    rewrite(repoDir, snap.id, snap, edit);
    await assert.rejects(
      readBack(repoDir, snap.id),
      (e: unknown) => {
        assert.ok(e instanceof DevsnapError, `${what}: ${String(e)}`);
        assert.equal(e.code, 'DAMAGED', what);
        assert.match(e.message, new RegExp(`^The manifest of snapshot ${snap.id} is invalid: `), what);
        assert.match(e.message, expected, `${what}: ${e.message}`);
        // eslint-disable-next-line no-control-regex -- the test looks for raw control characters in the message
        assert.ok(!/[\x00-\x1f]/.test(e.message), `${what}: no raw control characters`);
        return true;
      },
      what,
    );
  }
  // The CLI says the same, with the documented exit code and no stack trace.
  rewrite(repoDir, snap.id, snap, (m) => (m.source.size = injection));
  const show = devsnap(['show', snap.id, '--repo', repoDir, '--json']);
  assert.equal(show.status, 8, show.stderr);
  assert.equal(show.json.error.code, 'DAMAGED');
  assert.match(show.json.error.message, /source\.size is not a number/);
  assert.ok(!show.stderr.includes('    at '), 'no stack trace');
  // Unchanged, the manifest reads back (the validator accepts what snapshot writes).
  rewrite(repoDir, snap.id, snap, () => undefined);
  assert.deepEqual((await readBack(repoDir, snap.id)).areas, snap.areas);
});

test('a manifest copied under another id is damaged, and forget of the copy leaves the original', async () => {
  const { repoDir, snap, dir } = await fixture();
  const copyId = 'ffffffffffffffff';
  fs.copyFileSync(path.join(repoDir, 'snapshots', `${snap.id}.json`), path.join(repoDir, 'snapshots', `${copyId}.json`));
  await assert.rejects(readBack(repoDir, copyId), (e: unknown) => {
    assert.ok(e instanceof DevsnapError);
    assert.equal(e.code, 'DAMAGED');
    assert.match(e.message, new RegExp(`invalid: id is ${snap.id}, but the file is snapshots/${copyId}\\.json`));
    return true;
  });
  assert.equal((await readBack(repoDir, snap.id)).id, snap.id, 'the original still reads');
  // forget of the copy may remove the damaged copy, or refuse; it never removes the original.
  const forget = devsnap(['forget', copyId, '--repo', repoDir, '--json']);
  assert.ok(!forget.stderr.includes('    at '), forget.stderr);
  if (forget.status === 0) assert.equal(fs.existsSync(path.join(repoDir, 'snapshots', `${copyId}.json`)), false);
  assert.ok(fs.existsSync(path.join(repoDir, 'snapshots', `${snap.id}.json`)), 'the original manifest is still there');
  assert.equal((await readBack(repoDir, snap.id)).id, snap.id);
  const restored = path.join(dir, 'restored.img');
  const r = devsnap(['restore', snap.id, restored, '--repo', repoDir]);
  assert.equal(r.status, 0, r.stderr);
});

test('a manifest that readers would refuse is never committed', async () => {
  const { repoDir, snap } = await fixture();
  const repo = await Repository.open(repoDir, {}, log);
  try {
    const before = fs.readdirSync(path.join(repoDir, 'snapshots')).sort();
    const bad = { ...snap, id: '0123456789abcdef', source: { ...snap.source, size: 'a lot' } } as unknown as Manifest;
    await assert.rejects(repo.writeManifest(bad), (e: unknown) => {
      assert.ok(e instanceof DevsnapError);
      assert.equal(e.code, 'INTERNAL');
      assert.match(e.message, /invalid manifest for snapshot 0123456789abcdef \(source\.size is not a number .*\); nothing was committed/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(path.join(repoDir, 'snapshots')).sort(), before, 'no manifest, summary or temporary file');
    await repo.writeManifest({ ...snap, label: 'relabelled' }); // a valid change still commits
    assert.equal((await readBack(repoDir, snap.id)).label, 'relabelled');
  } finally {
    await repo.close();
  }
});

test("the manifest's digest is checked over its bytes as written, or over its JSON in any other layout; a changed byte is damage", async () => {
  const { snap } = await fixture();
  const written = serializeManifest(snap);
  assert.match(written.toString('latin1', written.length - 80), /,"digest":"[0-9a-f]{64}"\}$/, 'the digest is the last field');
  assert.deepEqual(JSON.parse(JSON.stringify(parseManifest(written, snap.id))), JSON.parse(written.toString()));
  // The same manifest with the digest first, or indented: read through its parsed JSON.
  const m = JSON.parse(written.toString()) as Manifest;
  const { digest, ...rest } = m;
  for (const layout of [JSON.stringify({ digest, ...rest }), JSON.stringify(m, null, 2)]) assert.equal(parseManifest(Buffer.from(layout), snap.id).digest, digest);
  // A label changed to another of the same length, the digest left as it was.
  const label = written.indexOf(`"label":"${snap.label}"`);
  assert.ok(label > 0);
  const changed = Buffer.from(written);
  changed[label + 9] ^= 1;
  assert.throws(
    () => parseManifest(changed, snap.id),
    (err: unknown) => err instanceof DevsnapError && err.code === 'DAMAGED' && /checksum does not match/.test(err.message),
  );
});
