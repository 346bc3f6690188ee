// Undoing an upgrade: between two snapshots BEFORE and AFTER of one filesystem, puts back, on that
// filesystem as it is mounted now, every entry the upgrade changed: files it modified or removed are
// restored from BEFORE (file-restore.ts: owners, modes, times, xattrs, symlinks, hard links), what it
// added is removed, directories it created go when they are empty. The package manager's database is
// files like any other and goes back with them.
//
// Safety: a path is changed only while the target still holds what AFTER holds there (type, size,
// mtime, mode, owner, symlink target); one changed since is a conflict, and any conflict refuses the
// whole undo before anything is written, unless forced. Paths on other filesystems mounted below the
// target and the files of the kernel running now are left alone. The steps are idempotent: an undo
// that stopped half-way is finished by running it again (what is already as in BEFORE is left).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { childCommand } from '../disk/privilege';
import { readMounts } from '../disk/sysfs';
import { EXT_SB_OFFSET, EXT_SB_SIZE, parseExtSuperblock } from '../filesystems/ext/superblock';
import type { ImageFs, ImageStat } from '../filesystems/image-fs/types';
import type { ProgressSink } from '../core/progress';
import type { ChangeDetail, UndoAction, UndoEntry, UndoResult } from '../protocol';
import { diffFiles } from './file-diff';
import { restoreFiles, RestoreFilesOptions } from './file-restore';

export interface UndoOptions {
  /** Where the filesystem of both snapshots is mounted ('/' for the running system). */
  target: string;
  /** The snapshots' ids, for messages. */
  names: { before: string; after: string };
  /** Paths in the filesystem left as they are, with everything below them. */
  exclude: string[];
  dryRun?: boolean;
  force?: boolean;
  deep?: boolean;
  /** Called with the plan of a real undo before anything is changed; throw to stop. */
  confirm?: (plan: UndoOutcome) => Promise<void>;
  /** Checks the destinations of the files put back before they are written (the elevated helper's rules); throw to stop. */
  checkPlan?: RestoreFilesOptions['checkPlan'];
  signal?: AbortSignal;
  onProgress?: ProgressSink;
  log?: (msg: string) => void;
}

export type UndoOutcome = Omit<UndoResult, 'before' | 'after' | 'partition' | 'excluded'>;

interface Item {
  path: string;
  dest: string;
  before: ImageStat | null;
  after: ImageStat | null;
  change: UndoEntry['change'];
  detail: ChangeDetail[];
  action: UndoAction;
  reason?: string;
  /** The type of what the target holds at the path now (null: nothing). */
  now: 'file' | 'dir' | 'symlink' | 'other' | null;
}

const typeOf = (st: fs.Stats) => (st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other');
const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw toDevsnapError(err, p);
  }
}

async function statIn(ifs: ImageFs, p: string): Promise<ImageStat | null> {
  try {
    return await ifs.tryStat(p);
  } catch (err) {
    if (err instanceof DevsnapError && err.code === 'USAGE') return null; // a parent is not a directory there
    throw err;
  }
}

/** Whether the target's entry is the snapshot's (both absent counts). Directories: type, mode and owner (their mtime follows their contents). */
async function holds(cur: fs.Stats | null, st: ImageStat | null, dest: string): Promise<boolean> {
  if (!cur || !st) return !cur && !st;
  if (typeOf(cur) !== st.type || cur.uid !== st.uid || cur.gid !== st.gid) return false;
  if (st.type === 'symlink') return (await fs.promises.readlink(dest)) === st.target;
  if ((cur.mode & 0o7777) !== st.mode) return false;
  return st.type !== 'file' || (cur.size === st.size && Math.abs(cur.mtimeMs - st.mtime) < 1);
}

/** The target must be where the snapshots' filesystem is mounted: refused (unless forced) when it is not, warned when it cannot be told. */
async function checkTarget(root: string, ifs: ImageFs, o: UndoOptions, warn: (m: string) => void): Promise<void> {
  const refuse = (message: string, hint: string) => {
    if (!o.force) throw new DevsnapError('BAD_TARGET', message, hint);
    warn(`${message} Undone anyway (--force).`);
  };
  const mount = readMounts()
    .filter((m) => m.mountpoint === root)
    .pop();
  if (!mount) return refuse(`${root} is not where a filesystem is mounted.`, "Give the folder where the snapshots' filesystem is mounted (--target; / for the running system).");
  let uuid: string | undefined;
  if (mount.source.startsWith('/dev/') && ifs.uuid) {
    try {
      const fh = await fs.promises.open(mount.source, 'r');
      try {
        const { buffer } = await fh.read(Buffer.alloc(EXT_SB_SIZE), 0, EXT_SB_SIZE, EXT_SB_OFFSET);
        uuid = parseExtSuperblock(buffer)?.uuid;
      } finally {
        await fh.close();
      }
    } catch {
      /* unreadable: told below */
    }
  }
  if (!uuid) return warn(`Could not confirm that ${root} (${mount.source}) holds the snapshots' filesystem; only paths still as in snapshot ${o.names.after} are changed.`);
  if (uuid !== ifs.uuid)
    refuse(
      `${root} holds another filesystem (${mount.source}, UUID ${uuid}) than the snapshots (UUID ${ifs.uuid}).`,
      "Give the folder where the snapshots' filesystem is mounted (--target), or two snapshots of the filesystem mounted there.",
    );
}

/** `ifs` with only `selected` paths in its walk from '/' (and the directories leading to them walked through, not listed). */
function selectedView(ifs: ImageFs, selected: Set<string>): ImageFs {
  const through = new Set<string>();
  for (const p of selected) for (let d = path.posix.dirname(p); !through.has(d); d = path.posix.dirname(d)) through.add(d);
  async function* walk(dir: string): AsyncGenerator<ImageStat> {
    for (const st of await ifs.list(dir)) {
      if (selected.has(st.path)) yield st;
      if (st.type === 'dir' && through.has(st.path)) yield* walk(st.path);
    }
  }
  return {
    fs: ifs.fs,
    label: ifs.label,
    uuid: ifs.uuid,
    readdir: (p) => ifs.readdir(p),
    stat: (p) => ifs.stat(p),
    tryStat: (p) => ifs.tryStat(p),
    readFile: (p) => ifs.readFile(p),
    read: (p, pos, n) => ifs.read(p, pos, n),
    createReadStream: (p, opts) => ifs.createReadStream(p, opts),
    readlink: (p) => ifs.readlink(p),
    list: (p) => ifs.list(p),
    walk: (root = '/') => (root === '/' ? walk('/') : ifs.walk(root)),
  };
}

/** Runs setfattr; its complaints, if any. */
function setfattr(args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const c = childCommand('setfattr', ['-h', ...args]);
    const child = spawn(c.file, c.args, { stdio: ['ignore', 'ignore', 'pipe'], env: c.env });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve(`setfattr could not run (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'install the attr package' : e.message})`));
    child.on('close', (code) => resolve(code === 0 ? null : err.trim() || `setfattr failed (exit ${code})`));
  });
}

/** Xattrs of an entry that kept its inode (file-restore sets a restored entry's xattrs, but does not remove those the upgrade added). */
async function putBackXattrs(dest: string, before: Record<string, Buffer>, after: Record<string, Buffer>): Promise<string[]> {
  const problems: (string | null)[] = [];
  // Already gone (an undo run again) is what is wanted.
  for (const k of Object.keys(after)) if (!(k in before)) problems.push((await setfattr(['-x', k, dest]))?.replace(/^.*No such attribute.*$/s, '') || null);
  for (const [k, val] of Object.entries(before)) if (!after[k]?.equals(val)) problems.push(await setfattr(['-n', k, '-v', val.length ? '0x' + val.toString('hex') : '""', dest]));
  return problems.filter((p): p is string => !!p).map((p) => `${dest}: xattrs not put back: ${p}`);
}

/** What undoing files cannot put back, in plain words, from the paths the upgrade changed. */
function limits(items: Item[], root: string, kernel: string, below: string[]): string[] {
  const changed = (dirs: string[]) => items.some((i) => dirs.some((d) => under(i.path, d)));
  const out: string[] = [];
  if (changed(['/boot']))
    out.push(
      "The upgrade changed /boot: its files are put back, but the kernel running now runs until you restart, and what a boot loader keeps outside this filesystem (code in the disk's first sectors or the EFI partition, firmware boot entries) is not undone; if the upgrade updated the boot loader, run update-grub (or your boot loader's tool) after the undo.",
    );
  if (changed(['/lib/modules', '/usr/lib/modules'])) out.push('Kernel modules changed: modules loaded already stay loaded until you restart.');
  if (items.some((i) => i.reason?.startsWith('belongs to the kernel running now')))
    out.push(`Files of the kernel running now (${kernel}) are left as they are: boot another kernel, then run the undo again (or undo them with --force).`);
  if (changed(['/lib/firmware', '/usr/lib/firmware'])) out.push('Firmware files changed: firmware loaded into devices already stays until you restart.');
  if (below.length)
    out.push(`Only the filesystem mounted at ${root} is undone, not the others mounted below it: ${below.join(', ')} (an ext one is undone on its own with --partition N --target DIR).`);
  out.push('Programs running now keep the files they opened: restart the services the upgrade touched (or the computer) once the undo is done.');
  return out;
}

/**
 * Names in BEFORE of the restored files' other hard links that are not restored themselves (unchanged
 * by the upgrade): restoring them with the rest keeps the files linked. One walk of BEFORE, only when needed.
 */
async function otherLinkNames(before: ImageFs, restored: Set<string>, items: Map<string, Item>): Promise<ImageStat[]> {
  const missing = new Map<number, number>();
  for (const p of restored) {
    const st = items.get(p)!.before!;
    if (st.type === 'file' && st.nlink > 1) missing.set(st.ino, (missing.get(st.ino) ?? st.nlink) - 1);
  }
  for (const [ino, n] of missing) if (n <= 0) missing.delete(ino);
  const found: ImageStat[] = [];
  if (!missing.size) return found;
  for await (const st of before.walk('/')) {
    const n = st.type === 'file' ? missing.get(st.ino) : undefined;
    if (n === undefined || restored.has(st.path)) continue;
    found.push(st);
    if (n > 1) missing.set(st.ino, n - 1);
    else if (missing.delete(st.ino) && !missing.size) break;
  }
  return found;
}

export async function undoChanges(before: ImageFs, after: ImageFs, o: UndoOptions): Promise<UndoOutcome> {
  const { names } = o;
  if (before.fs !== after.fs || (before.uuid && after.uuid && before.uuid !== after.uuid))
    throw new DevsnapError(
      'USAGE',
      `Snapshots ${names.before} and ${names.after} hold different filesystems (${before.fs} ${before.uuid ?? ''} and ${after.fs} ${after.uuid ?? ''}).`,
      'Give two snapshots of the same disk (and partition): the one taken before the upgrade, then the one taken after it (`devsnap list`).',
    );
  const root = await fs.promises.realpath(o.target).catch((err) => {
    throw toDevsnapError(err, `the target ${o.target}`);
  });
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.log?.(`warning: ${m}`);
  };
  const cancelled = () => {
    if (o.signal?.aborted) throw new DevsnapError('CANCELLED', 'Undo cancelled.', 'Run the same undo again to finish it: what is already put back is left as it is.');
  };
  await checkTarget(root, before, o, warn);
  const mounts = readMounts();
  const mountsBelow = [...new Set(mounts.map((m) => m.mountpoint).filter((m) => m !== root && under(m, root)))].sort((a, b) => b.length - a.length);
  const onOtherFs = (dest: string) => mountsBelow.find((m) => under(dest, m));
  const disksBelow = [...new Set(mounts.filter((m) => m.source.startsWith('/dev/') && m.mountpoint !== root && under(m.mountpoint, root)).map((m) => m.mountpoint))].sort();
  const kernel = os.release();
  const ofRunningKernel = (p: string) => under(p, `/lib/modules/${kernel}`) || under(p, `/usr/lib/modules/${kernel}`) || (p.startsWith('/boot/') && p.endsWith(`-${kernel}`));
  const excluded = (p: string) => o.exclude.some((e) => under(p, e));

  // ---- what the upgrade changed
  const items = new Map<string, Item>();
  let last = 0;
  for await (const c of diffFiles(before, after, {
    deep: o.deep,
    signal: o.signal,
    exclude: excluded,
    onProgress: (entries) => {
      if (Date.now() - last < 500) return;
      last = Date.now();
      o.onProgress?.({ type: 'progress', phase: 'compare', bytesDone: entries, bytesTotal: 0, rate: 0, etaSeconds: null, message: `${entries} entries compared` });
    },
  })) {
    if (items.has(c.path)) continue; // a type change: reported removed, then added; one item
    const [sb, sa] = await Promise.all([statIn(before, c.path), statIn(after, c.path)]);
    const change = sb && sa && sb.type !== sa.type ? 'replaced' : c.change;
    items.set(c.path, { path: c.path, dest: path.join(root, c.path), before: sb, after: sa, change, detail: c.detail, action: 'skip', now: null });
  }

  // ---- what the target holds now, path by path (depth-first: a directory before its contents)
  const restoringDirs = new Set<string>();
  const isDir = new Map<string, boolean>();
  const dirOnTarget = async (p: string) => {
    if (!isDir.has(p)) isDir.set(p, (await lstatOrNull(path.join(root, p)))?.isDirectory() ?? false);
    return isDir.get(p)!;
  };
  for (const it of items.values()) {
    cancelled();
    const mount = onOtherFs(it.dest);
    if (mount) {
      it.reason = `on another filesystem (mounted at ${mount})`;
      continue;
    }
    if (ofRunningKernel(it.path) && !o.force) {
      it.reason = `belongs to the kernel running now (${kernel})`;
      continue;
    }
    const cur = await lstatOrNull(it.dest);
    it.now = cur && typeOf(cur);
    const parent = path.posix.dirname(it.path);
    if (it.before?.type === 'dir' && (await holds(cur, it.before, it.dest)) && Math.abs(cur!.mtimeMs - it.before.mtime) < 1) it.action = 'unchanged';
    else if (await holds(cur, it.after, it.dest)) it.action = it.before ? 'restore' : 'remove';
    else if (await holds(cur, it.before, it.dest)) it.action = it.before?.type === 'dir' ? 'restore' : 'unchanged';
    else {
      it.action = 'conflict';
      it.reason = !cur ? `removed since snapshot ${names.after}` : !it.after ? `created since snapshot ${names.after}` : `changed since snapshot ${names.after}`;
    }
    if (it.action !== 'remove' && it.before && !restoringDirs.has(parent) && !(await dirOnTarget(parent))) {
      it.action = 'conflict';
      it.reason = `its folder ${path.join(root, parent)} is missing or no folder`;
    }
    if (it.action === 'conflict' && o.force) {
      it.action = it.before ? 'restore' : 'remove';
      it.reason = `${it.reason}; undone anyway (--force)`;
    }
    if (it.action === 'restore' && it.before?.type === 'other') {
      it.action = 'skip';
      it.reason = 'device files, FIFOs and sockets are not restored';
    }
    if (it.action === 'restore' && it.before?.type === 'dir') restoringDirs.add(it.path);
  }
  const all = [...items.values()];
  const outcome = (bytesWritten: number): UndoOutcome => {
    const totals = { restore: 0, remove: 0, unchanged: 0, conflict: 0, skip: 0 };
    let bytesToWrite = 0;
    const entries = all.map((i): UndoEntry => {
      totals[i.action]++;
      const size = i.action === 'restore' && i.before?.type === 'file' ? i.before.size : 0;
      bytesToWrite += size;
      return { path: i.path, change: i.change, type: (i.before ?? i.after)!.type, action: i.action, size, ...(i.reason ? { reason: i.reason } : {}) };
    });
    return { target: root, dryRun: !!o.dryRun, entries, totals, bytesToWrite, bytesWritten, cannotUndo: limits(all, root, kernel, disksBelow), warnings };
  };
  const conflicts = all.filter((i) => i.action === 'conflict');
  if (o.dryRun) return outcome(0);
  if (conflicts.length)
    throw new DevsnapError(
      'BAD_TARGET',
      `${conflicts.length} path${conflicts.length > 1 ? 's' : ''} on ${root} changed since snapshot ${names.after} was taken, and undoing would overwrite or delete that: ${conflicts
        .slice(0, 5)
        .map((i) => `${i.path} (${i.reason})`)
        .join(', ')}${conflicts.length > 5 ? ` and ${conflicts.length - 5} more` : ''}.`,
      'Nothing was changed. Copy away what you want to keep, or leave those paths out (--exclude PATH); --dry-run lists them all; --force undoes over them.',
    );
  const todo = all.filter((i) => i.action === 'restore' || i.action === 'remove');
  if (!todo.length) return outcome(0);
  await o.confirm?.({ ...outcome(0), dryRun: true });

  // Times of directories go back last: removing and writing entries changes them. Those undone take
  // BEFORE's; parents of changed entries theirs too, unless they changed since AFTER.
  const times = new Map<string, ImageStat>();
  for (const i of todo) {
    const p = path.posix.dirname(i.path);
    const it = items.get(p);
    if (times.has(p) || (it && it.action !== 'unchanged')) continue;
    if (it) {
      if (it.before?.type === 'dir') times.set(p, it.before); // already as in BEFORE: its time too
      continue;
    }
    const [sb, sa, cur] = await Promise.all([statIn(before, p), statIn(after, p), lstatOrNull(path.join(root, p))]);
    if (sb?.type === 'dir' && sa && cur?.isDirectory() && Math.abs(cur.mtimeMs - sa.mtime) < 1) times.set(p, sb);
  }

  let bytesWritten = 0;
  try {
    // ---- remove what the upgrade put there (contents before their directory), then restore what it changed
    for (const i of [...todo].reverse()) {
      if (!i.now || (i.action === 'restore' && i.now === i.before!.type)) continue;
      cancelled();
      try {
        await (i.now === 'dir' ? fs.promises.rmdir(i.dest) : fs.promises.unlink(i.dest));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EBUSY') throw err;
        i.action = 'skip';
        i.reason = code === 'EBUSY' ? 'in use (a mount point)' : `not empty: it holds entries that were not in snapshot ${names.after}; left as it is`;
      }
    }
    const selected = new Set(todo.filter((i) => i.action === 'restore').map((i) => i.path));
    for (const st of await otherLinkNames(before, selected, items)) {
      const dest = path.join(root, st.path);
      if (await holds(await lstatOrNull(dest), st, dest)) selected.add(st.path);
      else warn(`${dest} changed since snapshot ${names.after}: it stays apart from the other names of its file (hard links), which are put back`);
    }
    if (selected.size) {
      const r = await restoreFiles(selectedView(before, selected), ['/'], root, {
        inPlace: true,
        deep: o.deep,
        checkPlan: o.checkPlan,
        signal: o.signal,
        onProgress: o.onProgress,
        log: o.log,
      });
      bytesWritten = r.bytesWritten;
      for (const w of r.warnings) warn(w);
      for (const e of r.entries) {
        const i = items.get(e.path);
        if (!i) continue; // another name of a restored hard link
        if (e.action === 'conflict' || e.action === 'skip') Object.assign(i, { action: 'skip', reason: e.reason });
        else if ((e.action === 'unchanged' || e.type === 'dir') && i.detail.includes('xattrs') && i.after && i.now === e.type)
          for (const w of await putBackXattrs(e.dest, i.before!.xattrs, i.after.xattrs)) warn(w);
        // A symlink keeps its inode when only its time changed: file-restore leaves it as it is.
        if (e.action === 'unchanged' && e.type === 'symlink') await fs.promises.lutimes(e.dest, i.before!.atime / 1000, i.before!.mtime / 1000);
      }
    }
    for (const i of todo) if (i.action === 'restore' && i.before!.type === 'dir') times.set(i.path, i.before!);
    // Deepest first (a longer path is never an ancestor of a shorter one).
    for (const [p, st] of [...times].sort((a, b) => b[0].length - a[0].length)) await fs.promises.utimes(path.join(root, p), st.atime / 1000, st.mtime / 1000);
  } catch (err) {
    const e = toDevsnapError(err);
    if (e.code === 'CANCELLED') throw e;
    throw new DevsnapError(
      e.code,
      `The undo stopped part way: ${e.message}`,
      `${e.hint ? e.hint + ' ' : ''}Then run the same undo again: it finishes what is left (what is already put back is recognized).`,
    );
  }
  return outcome(bytesWritten);
}
