// `devsnap stats` (the `usage` operation) on real repositories made by the real CLI: the space only
// one snapshot uses adds up with what snapshots share to the repository's total, and deleting a
// snapshot (forget + prune) frees exactly what it predicted; an encrypted repository's usage needs
// its password and says so clearly without it; `init` (what the extension creates repositories with).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { cleanup, makeDisk, readLayout, seededBytes, tmpDir, writeAt } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { runOp } from '../../../imaging/ops/registry';

after(cleanup);
const MiB = 1 << 20;
// Each chunk's entry in its pack's own chunk list (FORMAT.md, "Packs"): freed with the chunk's bytes.
const PACK_ENTRY = 48;

/** A disk whose one partition (no filesystem: imaged in full) holds 8 MiB of incompressible bytes. */
async function disk(dir: string): Promise<{ file: string; start: number }> {
  const file = path.join(dir, 'disk.img');
  await makeDisk(file, { table: 'gpt', size: 12 * MiB, partitions: [{ fs: 'none', size: 8 * MiB }] });
  const start = readLayout(file)[0].start;
  writeAt(file, start, seededBytes(1, 8 * MiB));
  return { file, start };
}

function ok(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = devsnap([...args, '--json'], env);
  assert.equal(r.status, 0, `devsnap ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.json;
}

test('unique sizes add up, and forget + prune frees what they predicted', async () => {
  const dir = tmpDir('devsnap-usage-');
  const { file, start } = await disk(dir);
  const repo = path.join(dir, 'repo');
  const a = ok(['snapshot', file, '--repo', repo, '--label', 'A']).id as string;
  writeAt(file, start + 2 * MiB, seededBytes(2, 2 * MiB)); // two chunks change; six stay shared
  const b = ok(['snapshot', file, '--repo', repo, '--label', 'B']).id as string;

  const u = ok(['stats', '--repo', repo]);
  assert.deepEqual(
    u.snapshots.map((s: { id: string }) => s.id),
    [a, b],
  );
  const [ua, ub] = u.snapshots;
  assert.equal(ua.uniqueChunks, 2, JSON.stringify(u));
  assert.equal(ub.uniqueChunks, 2, JSON.stringify(u));
  assert.ok(ua.uniqueBytes > 2 * MiB && ub.uniqueBytes > 2 * MiB, 'incompressible chunks store at least their size');
  // Every stored byte is either one snapshot's own or shared; nothing is garbage yet.
  assert.equal(u.total.unreferencedBytes, 0);
  assert.equal(ua.uniqueBytes + ub.uniqueBytes + u.total.sharedBytes, u.total.storedBytes);
  assert.equal(ua.referencedBytes, ua.uniqueBytes + u.total.sharedBytes);
  assert.equal(ub.referencedBytes, ub.uniqueBytes + u.total.sharedBytes);
  assert.equal(u.missingChunks, 0);

  // Both together free everything; one alone frees its unique bytes.
  assert.equal(ok(['stats', a, b, '--repo', repo]).forget.freedBytes, u.total.storedBytes);
  const predicted = ok(['stats', 'label:A', '--repo', repo]).forget;
  assert.equal(predicted.freedBytes, ua.uniqueBytes);

  ok(['forget', a, '--repo', repo]);
  const pruned = ok(['prune', '--repo', repo]);
  // The packs shrink by the chunks' stored bytes and their chunk-list entries, exactly.
  assert.equal(pruned.bytesFreed, ua.uniqueBytes + PACK_ENTRY * ua.uniqueChunks, JSON.stringify(pruned));
  const after = ok(['stats', '--repo', repo]);
  assert.equal(after.total.storedBytes, u.total.storedBytes - ua.uniqueBytes);
  assert.equal(after.snapshots.length, 1);
  assert.equal(after.snapshots[0].uniqueBytes, after.total.storedBytes, 'the last snapshot owns everything left');

  // The text output names the freed size.
  const text = devsnap(['stats', '--repo', repo]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /ONLY IN IT/);
  assert.match(text.stdout, /used by none/);
});

test('an encrypted repository: usage with the password, a clear refusal without it', async () => {
  const dir = tmpDir('devsnap-usage-enc-');
  const { file, start } = await disk(dir);
  const repo = path.join(dir, 'repo');
  const env = { DEVSNAP_PASSWORD: 'correct horse battery staple' };
  ok(['init', '--encrypt', '--repo', repo], env);
  ok(['snapshot', file, '--repo', repo, '--label', 'one'], env);
  writeAt(file, start, seededBytes(3, MiB));
  ok(['snapshot', file, '--repo', repo, '--label', 'two'], env);
  const u = ok(['stats', '--repo', repo], env);
  assert.equal(u.snapshots.length, 2);
  assert.equal(u.snapshots[0].uniqueChunks, 1);
  assert.equal(u.snapshots[1].uniqueChunks, 1);
  assert.equal(u.snapshots[0].uniqueBytes + u.snapshots[1].uniqueBytes + u.total.sharedBytes, u.total.storedBytes);

  const none = devsnap(['stats', '--repo', repo, '--json'], { DEVSNAP_PASSWORD: '' });
  assert.equal(none.status, 3, none.stderr);
  assert.equal(none.json.error.code, 'BAD_PASSWORD');
  assert.match(none.json.error.message, /encrypted and needs its password/);
  const wrong = devsnap(['stats', '--repo', repo, '--json'], { DEVSNAP_PASSWORD: 'wrong' });
  assert.equal(wrong.status, 3);
  assert.equal(wrong.json.error.code, 'BAD_PASSWORD');
  assert.match(wrong.json.error.message, /password for this repository is wrong/);
  // Through the operation, as the extension calls it.
  const r = await runOp('usage', { repo, password: env.DEVSNAP_PASSWORD }, { log: () => undefined });
  assert.equal(r.total.storedBytes, u.total.storedBytes);
  await assert.rejects(runOp('usage', { repo }, { log: () => undefined }), (e: Error & { code?: string }) => e.code === 'BAD_PASSWORD');
});

test('init: creates an encrypted repository, opens an existing one only with its password', async () => {
  const dir = tmpDir('devsnap-init-op-');
  const repo = path.join(dir, 'new');
  const log = () => undefined;
  assert.deepEqual(await runOp('init', { repo, password: 'pw-1' }, { log }), { repository: repo, encrypted: true });
  assert.deepEqual(await runOp('init', { repo, password: 'pw-1' }, { log }), { repository: repo, encrypted: true });
  await assert.rejects(runOp('init', { repo, password: 'pw-2' }, { log }), (e: Error & { code?: string }) => e.code === 'BAD_PASSWORD');
  await assert.rejects(runOp('init', { repo }, { log }), (e: Error & { code?: string }) => e.code === 'BAD_PASSWORD');
  const plain = path.join(dir, 'plain');
  assert.deepEqual(await runOp('init', { repo: plain }, { log }), { repository: plain, encrypted: false });
  // A password for an unencrypted repository is refused (never stored in plain text).
  await assert.rejects(runOp('init', { repo: plain, password: 'pw' }, { log }), (e: Error & { code?: string }) => e.code === 'USAGE');
  // The CLI lists the new encrypted repository with the password.
  assert.deepEqual(ok(['list', '--repo', repo], { DEVSNAP_PASSWORD: 'pw-1' }).snapshots, []);
});
