// The benchmark's report: the table of every run, the targets of issue 8 (snapshots of the mounted
// root) and issue 2 (block level) with PASS/MISS, printed and written to bench/.work/results*.json.
'use strict';

const fs = require('fs');
const path = require('path');
const { ROOT, WORK, MiB, fmtBytes, table, machineText, cachesText } = require('./lib');

const RSS_LIMIT = 150e6;
const PAUSE_LIMIT_MS = 2000;
// "Full snapshot time and size no worse than today": against the engine issue 8 was filed against
// (32b9ed7074a1), run on the same disk in the same run, offline and mounted (bench/run.js --baseline).
// Without those runs (--baseline none): the figures it measured then at the default scale, 15.6 s and
// 1.46 GB, which only mean something for the same data on the same machine.
const PREVIOUS_FULL = { scale: 3, part: 8, seconds: 15.6, bytes: 1.46e9 };

const s1 = (x) => `${x.toFixed(1)} s`;
const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;

/** The devsnap row each peer row is compared with: the mounted run of the same operation. */
function baseOf(results, r) {
  const op = r.op === 'first backup' ? 'full' : r.op;
  return results.find((x) => x.op === op && x.tool === 'devsnap' && x.source !== 'unmounted' && x !== r) ?? null;
}

/** The `devsnap/peer` cell of a peer's row: devsnap's time over the peer's, and its bytes over the peer's. */
function ratioCell(results, r) {
  const d = r.tool === 'devsnap' ? null : baseOf(results, r);
  if (!d) return '';
  // no size ratio against (almost) nothing: an unchanged backup adds a few kB
  return `${(d.seconds / r.seconds).toFixed(2)}x t` + (r.bytes > 1e6 && d.bytes > 1e6 ? `, ${(d.bytes / r.bytes).toFixed(2)}x B` : '');
}

function targetsIssue8({ o, rows, mounted, restored, results }) {
  const { fullDevsnap: full, incDevsnap: inc, sameDevsnap: same, incFiles } = rows;
  const runs = Object.entries(mounted);
  const pauses = runs.map(([op, m]) => `${op} ${m.detail.writers.maxMs.toFixed(0)} ms`).join(', ');
  const maxPause = Math.max(...runs.map(([, m]) => m.detail.writers.maxMs));
  const fsyncOk = restored.filesChecked > 0 && restored.filesIntact === restored.filesChecked && restored.linesIntact === restored.linesChecked;
  const devsnapRuns = results.filter((r) => r.tool === 'devsnap');
  const noWorse = fullNoWorse(o, rows);
  return [
    { name: `longest writer pause <= ${PAUSE_LIMIT_MS / 1000} s`, pass: maxPause <= PAUSE_LIMIT_MS, value: `${(maxPause / 1000).toFixed(2)} s (${pauses})` },
    {
      name: 'restored root passes e2fsck -fn with no journal replay',
      pass: !restored.needsRecovery && restored.e2fsckExit === 0,
      value: `${restored.needsRecovery ? 'needs_recovery SET' : 'no needs_recovery'}, e2fsck -fn exit ${restored.e2fsckExit}`,
    },
    {
      name: "fsync'd writes intact in the restored incremental",
      pass: fsyncOk,
      value: `${restored.filesChecked} fsync'd files checked, ${restored.filesIntact} intact; ${restored.linesChecked} appended lines checked, ${restored.linesIntact} intact (written before ${restored.cutoffFrom})`,
    },
    {
      name: 'incremental >= 5x faster than devsnap full',
      pass: inc.seconds * 5 <= full.seconds,
      value: `${s1(inc.seconds)} vs ${s1(full.seconds)} (${(full.seconds / inc.seconds).toFixed(2)}x faster)`,
    },
    { name: 'incremental faster than restic backup (files)', pass: inc.seconds < incFiles.restic.seconds, value: `${s1(inc.seconds)} vs ${s1(incFiles.restic.seconds)}` },
    {
      name: 'incremental bytes <= 1.5x restic (files)',
      pass: inc.bytes <= 1.5 * incFiles.restic.bytes,
      value: `${fmtBytes(inc.bytes)} vs ${fmtBytes(incFiles.restic.bytes)} (${(inc.bytes / incFiles.restic.bytes).toFixed(2)}x)`,
    },
    {
      name: "unchanged re-snapshot <= 10% of the full's time",
      pass: same.seconds <= 0.1 * full.seconds,
      value: `${s1(same.seconds)} vs ${s1(full.seconds)} (${((100 * same.seconds) / full.seconds).toFixed(0)}%)`,
    },
    {
      name: `peak RSS <= ${mb(RSS_LIMIT)} (every devsnap run)`,
      pass: devsnapRuns.every((r) => r.rss && r.rss <= RSS_LIMIT),
      value: devsnapRuns.map((r) => `${r.op}${r.source === 'unmounted' ? ' (offline)' : ''} ${mb(r.rss)}`).join(', '),
    },
    noWorse,
  ];
}

/**
 * With the baseline engine measured in this run: the mounted full's time against the baseline's full
 * of the same mounted root with writers (which that engine read live, without a point in time), and
 * the offline full's bytes against the baseline's offline full (the same disk; a mounted run also
 * stores what its writers wrote, which differs between runs). Exact, not rounded.
 */
function fullNoWorse(o, rows) {
  const { fullDevsnap: full, fullOffline: offline, fullBaseline: base, fullBaselineMounted: baseMounted } = rows;
  if (base && baseMounted) {
    const pct = (a, b) => `${a >= b ? '+' : ''}${((100 * (a - b)) / b).toFixed(2)}%`;
    return {
      name: `full no worse than the engine issue 8 was filed against (${base.tool.replace(/^devsnap /, '')}, same disk, this run)`,
      pass: full.seconds <= baseMounted.seconds && offline.bytes <= base.bytes,
      value:
        `time ${s1(full.seconds)} vs ${s1(baseMounted.seconds)} mounted with writers (${pct(full.seconds, baseMounted.seconds)}; offline ${s1(offline.seconds)} vs ${s1(base.seconds)}); ` +
        `size ${(offline.bytes / 1e6).toFixed(1)} MB vs ${(base.bytes / 1e6).toFixed(1)} MB offline (${pct(offline.bytes, base.bytes)})`,
    };
  }
  const name = `full no worse than before (${PREVIOUS_FULL.seconds} s, ${fmtBytes(PREVIOUS_FULL.bytes)})`;
  if (o.scale !== PREVIOUS_FULL.scale || o.part !== PREVIOUS_FULL.part) return { name, pass: null, value: `${s1(full.seconds)}, ${fmtBytes(full.bytes)}; compared only at the default scale` };
  // compared as printed (0.1 s, 0.01 GB), like the figures they are compared with
  const timeOk = Number(full.seconds.toFixed(1)) <= PREVIOUS_FULL.seconds;
  const sizeOk = Number((full.bytes / 1e9).toFixed(2)) <= PREVIOUS_FULL.bytes / 1e9;
  return { name, pass: timeOk && sizeOk, value: `${s1(full.seconds)}, ${fmtBytes(full.bytes)}` };
}

function targetsIssue2({ rows }) {
  const { fullOffline: off, fullPartclone: pc, incDevsnap: inc, resDevsnap: res, resPartclone: rpc, incBlock } = rows;
  return [
    { name: 'offline full time <= partclone+zstd', pass: off.seconds <= pc.seconds, value: `${s1(off.seconds)} vs ${s1(pc.seconds)} (${(off.seconds / pc.seconds).toFixed(2)}x)` },
    { name: 'offline full size <= partclone+zstd', pass: off.bytes <= pc.bytes, value: `${fmtBytes(off.bytes)} vs ${fmtBytes(pc.bytes)} (${(off.bytes / pc.bytes).toFixed(2)}x)` },
    {
      name: 'incremental faster than restic --stdin and borg --read-special',
      pass: inc.seconds < incBlock.restic.seconds && inc.seconds < incBlock.borg.seconds,
      value: `${s1(inc.seconds)} vs ${s1(incBlock.restic.seconds)} and ${s1(incBlock.borg.seconds)}`,
    },
    { name: 'restore <= partclone restore', pass: res.seconds <= rpc.seconds, value: `${s1(res.seconds)} vs ${s1(rpc.seconds)} (${(res.seconds / rpc.seconds).toFixed(2)}x)` },
  ];
}

const OPS = ['full', 'first backup', 'incremental', 'unchanged', 'restore', 'verify (all)'];
const TIERS = ['mounted rw + writers', 'mounted rw', 'unmounted'];
/** Rows grouped by operation; within one, devsnap on the mounted root first, then file-level, then block-level rows. */
function ordered(results) {
  const key = (r) => [OPS.indexOf(r.op), r.tool === 'devsnap' ? 0 : 1, TIERS.indexOf(r.source)];
  return results
    .map((r, i) => ({ r, k: [...key(r), i] }))
    .sort((a, b) => {
      const j = a.k.findIndex((x, n) => x !== b.k[n]);
      return j < 0 ? 0 : a.k[j] - b.k[j];
    })
    .map((x) => x.r);
}

const mark = (p) => (p === null ? 'n/a ' : p ? 'PASS' : 'MISS');

function report(ctx) {
  const { o, engine, versions, started, info, rootP, rootUsed, efiUsed, up, results, profile, mounted, restored } = ctx;
  const rows = ordered(results).map((r) => [
    r.op,
    r.tool,
    r.source,
    r.seconds.toFixed(1),
    r.mbps ? r.mbps.toFixed(0) : '-',
    fmtBytes(r.bytes),
    r.rss ? `${(r.rss / MiB).toFixed(0)} MiB` : '-',
    ratioCell(results, r),
  ]);
  const t8 = targetsIssue8(ctx);
  const t2 = targetsIssue2(ctx);
  const machine = machineText();
  const caches = cachesText(o.dropCaches);
  const out = [''];
  out.push(`devsnap benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
  out.push(`engine: ${engine}`);
  out.push(
    `disk: GPT ${fmtBytes(info.diskSize)}, EFI vfat 256 MiB (~${fmtBytes(efiUsed)} used), ext4 root ${fmtBytes(rootP.size)} with ${fmtBytes(rootUsed)} used (${info.treeFiles} files); upgrade: ${up.modified} modified, ${up.added} added, ${up.removed} removed`,
  );
  out.push(`page cache: ${caches}. Times are wall clock and include a final sync. MB/s = root used bytes (${fmtBytes(rootUsed)}) / seconds.`);
  out.push(
    `devsnap zstd level 3 (Node ${process.version}: ${typeof require('zlib').zstdCompressSync === 'function' ? 'node:zlib native zstd' : 'zstd-codec WASM, no native zstd in this Node'}); repo unencrypted. restic: repository password set (restic always encrypts), compression auto; borg: init -e none, --compression zstd,3.`,
  );
  out.push(
    '"mounted rw + writers": devsnap images the whole disk while its root is mounted read-write (noatime) and two writers fsync into it every ~20 ms. "mounted rw": restic/borg back up the mounted root\'s files (no writers running). "unmounted": restic --stdin / borg --read-special read the root partition device (every byte, free space included); devsnap and partclone the used blocks.',
  );
  out.push('');
  out.push(table(rows, ['operation', 'tool', 'source', 'seconds', 'MB/s', 'bytes', 'peak RSS', 'devsnap/peer'], 3));
  out.push('');
  out.push('devsnap on the mounted root:');
  for (const [op, m] of Object.entries(mounted)) {
    const d = m.detail;
    const p = d.pointInTime;
    const w = d.writers;
    const st = d.stats ?? {};
    out.push(
      `  ${op}: consistency ${d.consistency}; ${p ? `point in time ${p.at}, pause ${Number(p.pauseSeconds).toFixed(2)} s, ${p.rounds} rounds, ${fmtBytes(p.rereadBytes)} reread` : 'no pointInTime reported'}; read ${fmtBytes(st.bytesRead)}, added ${fmtBytes(st.bytesAdded)}`,
    );
    out.push(
      `    writers: ${w.files.count} files (longest ${w.files.maxMs.toFixed(0)} ms, p99 ${(w.files.p99Ms ?? 0).toFixed(0)} ms, ${w.files.errors} errors), ${w.append.count} appends (longest ${w.append.maxMs.toFixed(0)} ms, p99 ${(w.append.p99Ms ?? 0).toFixed(0)} ms, ${w.append.errors} errors)`,
    );
  }
  out.push(
    `  restored incremental: ${restored.needsRecovery ? 'needs_recovery set' : 'no needs_recovery'}, e2fsck -fn exit ${restored.e2fsckExit}; ${restored.filesChecked} fsync'd files checked, ${restored.filesIntact} intact; ${restored.linesChecked} appended lines checked, ${restored.linesIntact} intact`,
  );
  if (restored.e2fsckTail)
    out.push(
      restored.e2fsckTail
        .split('\n')
        .map((l) => `    | ${l}`)
        .join('\n'),
    );
  for (const b of restored.bad ?? []) out.push(`    not intact: ${b}`);
  out.push('');
  out.push('targets (issue 8: snapshots of the mounted root):');
  for (const tg of t8) out.push(`  ${mark(tg.pass)}  ${tg.name}: ${tg.value}`);
  out.push('targets (issue 2: block level, informative):');
  for (const tg of t2) out.push(`  ${mark(tg.pass)}  ${tg.name}: ${tg.value}`);
  if (profile) {
    out.push('');
    out.push('CPU profile of a full devsnap snapshot (node --cpu-prof, warm page cache): self time per thread');
    for (const th of profile) {
      out.push(`  ${th.thread} (${th.seconds.toFixed(1)} s):`);
      for (const p of th.top) out.push(`    ${p.pct.toFixed(1).padStart(5)}%  ${p.name}`);
    }
  }
  out.push('');
  out.push(`total bench time ${((Date.now() - started) / 60000).toFixed(1)} min; results in ${path.relative(ROOT, path.join(WORK, 'results.json'))}`);
  console.log(out.join('\n'));
  const mountedJson = Object.fromEntries(Object.entries(mounted).map(([op, m]) => [op, { ...m.detail, cutoffFrom: m.cutoffFrom }]));
  const json = JSON.stringify(
    {
      date: new Date().toISOString(),
      machine,
      engine,
      options: o,
      versions,
      pageCache: caches,
      disk: { ...info, rootUsed, efiUsed },
      upgrade: up,
      results,
      mounted: mountedJson,
      restored,
      targets: t8,
      targetsIssue2: t2,
      profile,
    },
    null,
    2,
  );
  fs.writeFileSync(path.join(WORK, 'results.json'), json);
  fs.writeFileSync(path.join(WORK, `results-s${o.scale}.json`), json); // the latest run of each scale, kept side by side
}

module.exports = { report, ratioCell, mark, RSS_LIMIT };
