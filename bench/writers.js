// The writers that run on the mounted root during each devsnap snapshot (bench/writer.js, one process
// per kind), and the check of a restored root against what they had fsync'd before the snapshot's
// point in time.
'use strict';

const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { log, ext4Health } = require('./lib');

const WRITER = path.join(__dirname, 'writer.js');
const live = new Set(); // writer processes still running, for killWriters() on the bench's exit paths

/** Ends every writer still running (they keep files open on the mount, which would then not unmount). */
function killWriters() {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

function spawnWriter(mode, root, rel, logFile) {
  const child = spawn(process.execPath, [WRITER, '--mode', mode, '--root', root, '--path', rel, '--log', logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  let onReady = () => {};
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    if (out.includes('ready\n')) onReady();
  });
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer ${mode} not ready after 30 s: ${err.trim()}`)), 30_000);
    onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`writer ${mode} exited (${code}) before its first write: ${err.trim()}`)); // no-op once ready
    });
  });
  const stop = async () => {
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const last = out.trim().split('\n').pop();
    try {
      return JSON.parse(last);
    } catch {
      throw new Error(`writer ${mode} ended (${code ?? signal}) without a summary: ${err.trim() || out.trim()}`);
    }
  };
  return { child, ready, stop, exited, logFile };
}

/**
 * Starts a file writer and a log appender on the mounted root `mnt` for run `tag`, waits until both
 * have written once and then `preRollMs` more (so that some writes predate the snapshot). Their logs
 * go to `logDir`, outside the mount. `stop()` ends them and returns their summaries.
 */
async function startWriters(mnt, tag, logDir, preRollMs = 1000) {
  fs.mkdirSync(logDir, { recursive: true });
  const files = spawnWriter('files', mnt, `home/dev/devsnap-bench-writer/${tag}`, path.join(logDir, `${tag}-files.jsonl`));
  const appendPath = `var/log/devsnap-bench/${tag}.log`;
  const append = spawnWriter('append', mnt, appendPath, path.join(logDir, `${tag}-append.jsonl`));
  const all = [files, append];
  try {
    await Promise.all(all.map((w) => w.ready));
  } catch (err) {
    for (const w of all) w.child.kill('SIGTERM');
    await Promise.all(all.map((w) => w.exited));
    throw err;
  }
  await new Promise((r) => setTimeout(r, preRollMs));
  return {
    tag,
    appendPath,
    logs: { files: files.logFile, append: append.logFile },
    async stop() {
      const [f, a] = await Promise.all(all.map((w) => w.stop()));
      return { files: f, append: a, maxMs: Math.max(f.maxMs, a.maxMs) };
    },
  };
}

const readJsonl = (file) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

/**
 * Checks the restored root mounted at `restored` against the file writer's log: every file whose
 * write+fsync completed before `cutoffMs` must read back with its sha256. Also returns the appender's
 * lines fsync'd before `cutoffMs`, which the restored log must hold as its prefix.
 */
function checkWriterOutput(restored, logs, cutoffMs) {
  const files = readJsonl(logs.files).filter((e) => e.doneMs < cutoffMs);
  const bad = [];
  let intact = 0;
  for (const e of files) {
    let sum = null;
    try {
      sum = crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(restored, e.name)))
        .digest('hex');
    } catch (err) {
      sum = err.code || 'unreadable';
    }
    if (sum === e.sha256) intact++;
    else bad.push(`${e.name}: ${sum.length === 64 ? 'content differs' : sum}`);
  }
  const lines = readJsonl(logs.append).filter((e) => e.doneMs < cutoffMs);
  return { filesChecked: files.length, filesIntact: intact, bad, lines };
}

/** How many of `lines` (in order) the restored log file at `file` holds, byte for byte, from its start. */
function intactPrefix(file, lines) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return 0;
  }
  let pos = 0;
  let n = 0;
  for (const e of lines) {
    if (text.startsWith(e.line, pos)) {
      pos += e.line.length;
      n++;
    } else break;
  }
  return n;
}

/**
 * The restored root partition `dev` (a read-only loop device): no journal recovery pending
 * (dumpe2fs -h), `e2fsck -fn` clean, and, mounted `ro,noload` at `mnt` (so no journal replay can
 * hide a problem), the writers' fsync'd data intact.
 */
function checkRestoredRoot(devices, dev, mnt, writers, cutoffMs) {
  const result = ext4Health(dev);
  devices.mount(dev, mnt, 'ro,noload');
  try {
    const c = checkWriterOutput(mnt, writers.logs, cutoffMs);
    result.filesChecked = c.filesChecked;
    result.filesIntact = c.filesIntact;
    result.linesChecked = c.lines.length;
    result.linesIntact = intactPrefix(path.join(mnt, writers.appendPath), c.lines);
    result.bad = c.bad.slice(0, 5);
    if (c.bad.length) log(`  ${c.bad.length} fsync'd files not intact, e.g. ${c.bad.slice(0, 3).join('; ')}`);
  } finally {
    devices.umount(mnt);
  }
  return result;
}

module.exports = { startWriters, checkRestoredRoot, killWriters };
