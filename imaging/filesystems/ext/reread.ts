// Which blocks to read again on a filesystem now in a known state: global metadata always, every block
// of each changed inode, and the journal (state.ts explains why this is enough).
import { hasSuperBackup } from './superblock';
import { ExtDamage, inodeChecksumOk, inodeLocation, openExtFs, readRawInode, readRuns, walkInode, type ExtFs } from './inodes';
import { layoutKey, mmpBlock } from './layout';
import { RunList } from './run-list';
import type { BlockRuns, ExtState, Reread } from './state-types';
import type { ByteReader } from '../types';

/** What to read again on `p` (now in state `after`); throws an Error saying what did not hold. */
export async function blocksToReread(p: ByteReader, after: ExtState, changed: Uint32Array, alsoInUse?: Uint32Array): Promise<Reread> {
  try {
    return await reread(p, after, changed, alsoInUse ?? new Uint32Array(0));
  } catch (e) {
    if (e instanceof ExtDamage || e instanceof RangeError) throw new Error(`ext change scan: ${e.message}`);
    throw e;
  }
}

async function reread(p: ByteReader, after: ExtState, changed: Uint32Array, alsoInUse: Uint32Array): Promise<Reread> {
  if (!(after.xattrBlocks instanceof Float64Array)) throw new ExtDamage('the state has no xattr block list (not made by readExtState)');
  const fs = await openExtFs(p);
  if (typeof fs === 'string') throw new ExtDamage(`the filesystem cannot be followed: ${fs}`);
  const { s } = fs;
  if (s.uuid !== after.uuid || s.blocksCount !== after.blocksCount || s.inodesCount !== after.inodesCount || layoutKey(fs) !== after.layoutKey) {
    throw new ExtDamage('the filesystem is not the one (or no longer laid out as) the state describes');
  }
  const meta = new RunList();
  const groupStart = (g: number) => s.firstDataBlock + g * s.blocksPerGroup;
  const sbAndGdt = 1 + s.gdtBlocks + s.reservedGdtBlocks;
  meta.add(0, s.firstDataBlock + sbAndGdt);
  for (let g = 1; g < s.groupCount; g++) if (hasSuperBackup(s, g)) meta.add(groupStart(g), Math.min(sbAndGdt, s.blocksCount - groupStart(g)));
  for (const gd of fs.groups) {
    meta.add(gd.blockBitmap, 1);
    meta.add(gd.inodeBitmap, 1);
  }
  // Inode-table blocks of inodes in use now or earlier (a freed inode's slot changed too).
  for (let i = 0, j = 0; i < after.inos.length || j < alsoInUse.length;) {
    const a = i < after.inos.length ? after.inos[i] : Infinity;
    const b = j < alsoInUse.length ? alsoInUse[j] : Infinity;
    const ino = Math.min(a, b);
    if (a === ino) i++;
    if (b === ino) j++;
    meta.add(inodeLocation(fs, ino).block, 1);
  }
  const mmp = mmpBlock(fs);
  if (mmp) {
    if (mmp <= s.firstDataBlock || mmp >= s.blocksCount) throw new ExtDamage(`the MMP block ${mmp} is outside the filesystem`);
    meta.add(mmp, 1);
  }
  for (const b of after.xattrBlocks) meta.add(b, 1);
  const metaSink = { data: (_l: number, pblk: number, len: number) => meta.add(pblk, len), map: (pblk: number) => meta.add(pblk, 1) };
  for (const ino of specialInodes(fs)) await walkInode(fs, ino, await readRawInode(fs, ino), metaSink);

  const jSuper = new RunList();
  const jLog = new RunList();
  if (s.journalInode) {
    await walkInode(fs, s.journalInode, await readRawInode(fs, s.journalInode), {
      data: (lblk, pblk, len) => {
        if (lblk === 0) {
          jSuper.add(pblk, 1);
          jLog.add(pblk + 1, len - 1);
        } else jLog.add(pblk, len);
      },
      map: (pblk) => jLog.add(pblk, 1),
    });
  }
  return { metadata: meta.toRuns(), changed: await changedBlocks(fs, changed), journalSuper: jSuper.toRuns(), journalLog: jLog.toRuns() };
}

/** Every block of each changed inode, its raw inode read again (in batches of table blocks) from `p`. */
async function changedBlocks(fs: ExtFs, changed: Uint32Array): Promise<BlockRuns> {
  const out = new RunList();
  const sink = { data: (_l: number, pblk: number, len: number) => out.add(pblk, len), map: (pblk: number) => out.add(pblk, 1) };
  // One run per table block; first[r]..first[r+1] are its changed inodes.
  const starts: number[] = [];
  const first: number[] = [];
  for (let i = 0; i < changed.length; i++) {
    if (i && changed[i] <= changed[i - 1]) throw new ExtDamage('the changed inode list is not ascending');
    const blk = inodeLocation(fs, changed[i]).block;
    if (!starts.length || starts[starts.length - 1] !== blk) {
      starts.push(blk);
      first.push(i);
    }
  }
  first.push(changed.length);
  await readRuns(
    fs.p,
    fs.s.blockSize,
    starts,
    starts.map(() => 1),
    async (r, bytes) => {
      for (let i = first[r]; i < first[r + 1]; i++) {
        const ino = changed[i];
        if (ino === fs.s.journalInode) continue; // in journalSuper/journalLog
        const at = inodeLocation(fs, ino).offset;
        const raw = bytes.subarray(at, at + fs.s.inodeSize);
        if (!inodeChecksumOk(fs, ino, raw)) throw new ExtDamage(`inode ${ino} fails its checksum`);
        await walkInode(fs, ino, raw, sink);
      }
    },
  );
  return out.toRuns();
}

/** Reserved inodes (except the journal), the quota inodes and the orphan file: always read again. */
function specialInodes(fs: ExtFs): number[] {
  const sb = fs.sb;
  const list = new Set<number>();
  for (let i = 1; i < fs.firstIno; i++) list.add(i);
  for (const off of [0x240, 0x244, 0x26c, 0x280]) {
    const ino = sb.readUInt32LE(off);
    if (ino) list.add(ino);
  }
  list.delete(fs.s.journalInode);
  for (const ino of list) if (ino > fs.s.inodesCount) throw new ExtDamage(`special inode ${ino} is past the last inode`);
  return [...list].sort((a, b) => a - b);
}
