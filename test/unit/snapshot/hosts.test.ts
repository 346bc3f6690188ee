// A repository several workstations share: retention keeps each host's N snapshots of each disk,
// however many the others take, and an incremental starts only from a snapshot this host took of
// the disk (another host's disk at the same path, or cloned with the same GUID, is another disk).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Repository } from '../../../imaging/repo/repository';
import { findParent } from '../../../imaging/capture/parent';
import { applyPolicy } from '../../../imaging/snapshot/retention';
import type { SnapshotSummary } from '../../../imaging/protocol';
import { cleanup, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import * as os from 'os';

after(cleanup);

let n = 0;
const snap = (host: string, day: number): SnapshotSummary => ({
  id: `${(++n).toString(16).padStart(16, '0')}`,
  label: '',
  created: new Date(Date.UTC(2026, 10, day, 12)).toISOString(),
  host,
  source: { path: '/dev/nvme0n1', size: 1e12, table: 'gpt', diskId: 'cloned-from-one-image' },
  consistency: 'frozen-two-pass',
  pinned: false,
  state: 'not-verified',
  stats: { bytesRead: 0, bytesLogical: 0, bytesUsed: 0, bytesAdded: 0, chunksNew: 0, chunksReused: 0, durationSeconds: 0 },
  partitions: [],
});

test('retention keeps each host its own snapshots of a disk, even of disks with one GUID', () => {
  const alice = [1, 2, 3, 4, 5].map((d) => snap('alice', d));
  const bob = [6, 7, 8].map((d) => snap('bob', d));
  const { keep, remove } = applyPolicy([...alice, ...bob], { keepLast: 2 });
  assert.deepEqual(keep.map((s) => `${s.host}:${s.created.slice(8, 10)}`).sort(), ['alice:04', 'alice:05', 'bob:07', 'bob:08']);
  assert.equal(remove.length, 4);
});

test("an incremental's parent is a snapshot this host took of the disk, never another host's", async () => {
  const dir = tmpDir('devsnap-hosts-');
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, Buffer.alloc(4 << 20, 7));
  const repoDir = path.join(dir, 'repo');
  const r = devsnap(['snapshot', img, '--repo', repoDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const repo = await Repository.open(repoDir, {}, () => undefined);
  const warn = () => undefined;
  assert.equal((await findParent(repo, img, undefined, warn))?.id, r.json.id, "this host's snapshot is the parent");
  assert.equal(await findParent(repo, img, undefined, warn, `not-${os.hostname()}`), null, "another host's is not");
});

test('an S3 location is a bucket, never a local folder called "s3:https:"; with no server there, the error names it', () => {
  const dir = tmpDir('devsnap-s3loc-');
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, Buffer.alloc(1 << 20));
  // A port nothing listens on: the SDK's retries, then a named failure (exit 11), within seconds.
  const r = devsnap(['snapshot', img, '--repo', 's3:http://127.0.0.1:9/bucket', '--json'], { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }, 120_000);
  assert.equal(r.status, 11, r.stdout + r.stderr);
  assert.match(r.json.error.message, /s3 http:\/\/127\.0\.0\.1:9\/bucket did not serve/);
  assert.ok(!fs.existsSync('s3:http:') && !fs.existsSync(path.join(dir, 's3:http:')), 'a folder was made');
});
