// Issue 10, item 12. A CLI restore to a new image file (and an export) killed with -9 leaves its
// temporary file, as large as the disk; the next run removes it (the pid in its name no longer
// runs) and says so. As root, the kernel refusing a target (a read-only loop device, an immutable
// file) is reported as what it is, not as "run devsnap as root".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, makeDisk, onCleanup, sh, tmpDir, withLoop } from '../../helpers/disks';
import { devsnap, devsnapChild } from '../../helpers/cli';

after(cleanup);
const MiB = 1 << 20;

async function fixture(size: number) {
  const dir = tmpDir('devsnap-leftovers-');
  const disk = path.join(dir, 'disk.img');
  // A partition of pseudo-random bytes: every chunk is data, so restore and export take a moment.
  await makeDisk(disk, { table: 'gpt', size, partitions: [{ fs: 'none' }] });
  const repo = path.join(dir, 'repo');
  const snap = devsnap(['snapshot', disk, '--repo', repo, '--json']);
  assert.equal(snap.status, 0, snap.stderr);
  return { dir, disk, repo, id: snap.json.id as string };
}

const temps = (dir: string, base: string) => fs.readdirSync(dir).filter((n) => n.startsWith(`${base}.`) && n.endsWith('.tmp'));

/** Runs the CLI and kills it with -9 at its first progress event (it is writing its temporary file then). */
async function killedAtFirstProgress(args: string[]): Promise<void> {
  const { child, exited } = devsnapChild([...args, '--progress', 'json']);
  child.stderr!.on('data', (d: Buffer) => {
    if (d.toString().includes('"type":"progress"')) child.kill('SIGKILL');
  });
  const r = await exited;
  assert.equal(r.signal, 'SIGKILL', `killed while running (exit ${r.code}): ${r.stderr}`);
}

test('kill -9 of a restore to a new image file, and of an export: the next run removes the leftover', async () => {
  const { dir, disk, repo, id } = await fixture(96 * MiB);
  const target = path.join(dir, 'restored.img');
  await killedAtFirstProgress(['restore', id, target, '--repo', repo]);
  const left = temps(dir, 'restored.img');
  assert.equal(left.length, 1, `the killed restore left its temporary file: ${fs.readdirSync(dir).join(', ')}`);
  assert.equal(fs.existsSync(target), false, 'the target itself was never created');

  // A leftover of a process that still runs is kept (it may still be writing).
  const live = `restored.img.${process.pid}.0badcafe.tmp`;
  fs.writeFileSync(path.join(dir, live), 'in use');
  // A dry run writes nothing, not even a cleanup.
  assert.equal(devsnap(['restore', id, target, '--repo', repo, '--dry-run']).status, 0);
  assert.ok(fs.existsSync(path.join(dir, left[0])));

  const r = devsnap(['restore', id, target, '--repo', repo]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`Removed .*${left[0].replace(/\./g, '\\.')}, left by a restore that was killed`));
  assert.deepEqual(temps(dir, 'restored.img'), [live], "only the live process's file is left");
  sh('cmp', [disk, target]);

  const archive = path.join(dir, 'snap.tar.zst');
  await killedAtFirstProgress(['export', id, archive, '--repo', repo]);
  const leftExport = temps(dir, 'snap.tar.zst');
  assert.equal(leftExport.length, 1, 'the killed export left its temporary file');
  const e = devsnap(['export', id, archive, '--repo', repo]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, /left by an export that was killed/);
  assert.deepEqual(temps(dir, 'snap.tar.zst'), []);
});

test('as root, a target the kernel refuses is reported as such, not as "run as root"', { skip: !isRoot && 'needs root (loop devices, chattr)' }, async () => {
  const { dir, repo, id } = await fixture(8 * MiB);
  const refusedAsRoot = (r: ReturnType<typeof devsnap>, target: string) => {
    assert.equal(r.status, 6, r.stderr);
    assert.equal(r.json.error.code, 'PERMISSION');
    assert.match(r.json.error.message, new RegExp(`The system refused access to the target ${target} \\(EPERM\\), although devsnap runs as root`));
    assert.doesNotMatch(`${r.json.error.message} ${r.json.error.hint}`, /[Rr]un devsnap as root/);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  };
  // A read-only (write-protected) device: opening it works, the first write is refused.
  const backing = path.join(dir, 'ro-backing.img');
  fs.writeFileSync(backing, '');
  fs.truncateSync(backing, 8 * MiB);
  await withLoop(backing, { readOnly: true }, (dev) => {
    const r = devsnap(['restore', id, dev, '--repo', repo, '--yes', '--json']);
    refusedAsRoot(r, dev);
    assert.match(r.json.error.hint, /blockdev --getro/);
  });
  // An immutable image file.
  const immutable = path.join(dir, 'immutable.img');
  fs.writeFileSync(immutable, '');
  fs.truncateSync(immutable, 8 * MiB);
  sh('chattr', ['+i', immutable]);
  onCleanup(() => sh('chattr', ['-i', immutable], { allowFail: true }));
  const r = devsnap(['restore', id, immutable, '--repo', repo, '--json']);
  refusedAsRoot(r, immutable);
  assert.match(r.json.error.hint, /chattr -i/);
  sh('chattr', ['-i', immutable]);
});
