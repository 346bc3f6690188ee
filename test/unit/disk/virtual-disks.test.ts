// listDisks marks virtual devices (loop devices here: the kernel makes them, so a test can too) with
// `virtual`, their kind and a loop's image file; drives carry no mark; `devsnap disks` lists the
// virtual ones apart, below the drives, and its --json result fits the protocol's schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v from 'valibot';
import { listDisks } from '../../../imaging/disk/disks';
import { DisksResult } from '../../../imaging/protocol';
import { devsnap } from '../../helpers/cli';
import { sh, withLoop, withMount } from '../../helpers/disks';

const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;

/** A 16 MiB GPT image with one ext4 partition, and a 8 MiB ext4 filesystem without a table (as a snap's squashfs has none). */
function makeImages(dir: string): { gpt: string; bare: string } {
  const gpt = path.join(dir, 'disk with space.img');
  fs.writeFileSync(gpt, '');
  fs.truncateSync(gpt, 16 * MiB);
  sh('sfdisk', ['-q', gpt], { input: 'label: gpt\nstart=2048, size=28672, type=L\n' });
  sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, gpt, '14M']);
  const bare = path.join(dir, 'app.img');
  fs.writeFileSync(bare, '');
  fs.truncateSync(bare, 8 * MiB);
  sh('mkfs.ext4', ['-q', '-F', '-L', 'app', bare]);
  return { gpt, bare };
}

test('drives carry no virtual mark; the system disk is not virtual', async () => {
  const disks = await listDisks({ probe: false });
  const system = disks.find((d) => d.isSystem);
  assert.ok(system, 'a system disk is listed');
  if (!/^\/dev\/loop/.test(system.path)) assert.equal(system.virtual, undefined, JSON.stringify(system));
  for (const d of disks) {
    if (/^\/dev\/loop\d+$/.test(d.path)) assert.equal(d.virtual?.kind, 'loop', JSON.stringify(d));
    else if (/^\/dev\/zram\d+$/.test(d.path)) assert.equal(d.virtual?.kind, 'zram', JSON.stringify(d));
    else if (/^\/dev\/ram\d+$/.test(d.path)) assert.equal(d.virtual?.kind, 'ram', JSON.stringify(d));
    else if (!/^\/dev\/nbd/.test(d.path)) assert.equal(d.virtual, undefined, `${d.path} is a drive: ${JSON.stringify(d.virtual)}`);
  }
});

test('a loop device is marked virtual with its image file, a mounted one also with its filesystem', { skip: !isRoot && 'needs root for losetup' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-virtual-'));
  try {
    const { gpt, bare } = makeImages(dir);
    await withLoop(gpt, {}, async (gptDev) => {
      await withLoop(bare, { readOnly: true }, async (bareDev) => {
        await withMount(bareDev, 'ext', { readOnly: true }, async (mnt) => {
          for (const probe of [true, false]) {
            const disks = await listDisks({ probe });
            const withTable = disks.find((d) => d.path === gptDev);
            const mounted = disks.find((d) => d.path === bareDev);
            assert.ok(withTable && mounted, `${gptDev} and ${bareDev} are listed (${disks.map((d) => d.path).join(', ')})`);
            assert.deepEqual(withTable.virtual, { kind: 'loop', backingFile: fs.realpathSync(gpt) }, `probe ${probe}`);
            assert.equal(withTable.kind, 'loop');
            assert.equal(withTable.isSystem, false);
            assert.equal(mounted.virtual?.kind, 'loop');
            assert.equal(mounted.virtual?.backingFile, fs.realpathSync(bare));
            assert.deepEqual(mounted.mountpoints, [mnt]);
            // The filesystem on the device itself (no partitions), when lsblk can tell it.
            if (mounted.virtual?.fs !== undefined) assert.equal(mounted.virtual.fs, 'ext4');
            if (probe) assert.equal(withTable.partitions[0]?.fs, 'ext4', 'a virtual device is still described');
          }

          const json = devsnap(['disks', '--json']);
          assert.equal(json.status, 0, json.stderr);
          const parsed = v.safeParse(DisksResult, json.json);
          assert.ok(parsed.success, `devsnap disks --json fits DisksResult: ${JSON.stringify(parsed.issues?.[0]?.message)}`);
          const listed = parsed.output.disks.find((d) => d.path === gptDev);
          assert.deepEqual(listed?.virtual, { kind: 'loop', backingFile: fs.realpathSync(gpt) });
          // A result of an older engine (no field) still fits.
          assert.ok(v.safeParse(DisksResult, { disks: parsed.output.disks.map(({ virtual: _, ...d }) => d) }).success);

          const text = devsnap(['disks']);
          assert.equal(text.status, 0, text.stderr);
          const [drives, virtual] = text.stdout.split('Virtual devices');
          assert.ok(virtual !== undefined, `a section of virtual devices:\n${text.stdout}`);
          assert.ok(!drives.includes(gptDev) && !drives.includes(bareDev), `the loop devices are not among the drives:\n${drives}`);
          const row = virtual.split('\n').find((l) => l.startsWith(`${gptDev} `));
          assert.ok(row, `${gptDev} is listed apart:\n${virtual}`);
          assert.match(row, new RegExp(`loop device over ${fs.realpathSync(gpt).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
          const mountedRow = virtual.split('\n').find((l) => l.startsWith(`${bareDev} `));
          assert.ok(mountedRow?.includes(`mounted at ${mnt}`), `the mounted one says where: ${mountedRow}`);
        });
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
