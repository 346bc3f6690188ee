// How the extension runs the imaging engine. Everything else in the extension talks to the `Engine`
// interface below. Every engine is an `EngineFacade` over one function, `call(op, params, options)`,
// which runs one operation of the engine's registry (imaging/protocol/ops.ts) and returns its result
// checked against the operation's schema:
//   ServedEngine (servedEngine.ts)  the user-mode engine service, one long-lived process per window
//   HelperEngine (helperClient.ts)  the elevated helper, one per window, started on first need
//   RoutingEngine (below)           per call, the helper when a path of the request needs root, else the user's
//
// No `vscode` import here: the unit tests run this module under plain node, and the cancellation
// token is the structural subset of vscode.CancellationToken that we need.
import * as fs from 'fs';
import * as path from 'path';
import { OPS } from '../imaging/protocol';
import { EngineFacade } from './engineFacade';
import { isS3Repository } from './paths';
import type { OpName, OpParams, OpResult, PathUse } from '../imaging/protocol';
import type { CallOptions, EngineCall, RetentionPolicy, SnapshotFilesEngine } from './engineTypes';
export * from './engineTypes';

/** An engine that can restore files (the user's, and the helper as root). */
export function canRestoreFiles(e: unknown): e is Pick<SnapshotFilesEngine, 'restoreFiles'> {
  return !!e && typeof (e as Partial<SnapshotFilesEngine>).restoreFiles === 'function';
}

export function hasSnapshotFiles(e: unknown): e is SnapshotFilesEngine {
  const o = e as Partial<SnapshotFilesEngine> | null;
  return !!o && typeof o.changes === 'function' && typeof o.readFile === 'function' && typeof o.restoreFiles === 'function';
}

export { EngineError } from './engineError';
export { EngineFacade } from './engineFacade';

/**
 * Splits a byte stream into lines, calling `onLine` per complete line; `flush()` delivers a
 * trailing line without a newline.
 */
export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: string): void {
    const text = this.rest + chunk;
    const lines = text.split(/\r?\n/);
    this.rest = lines.pop() ?? '';
    for (const line of lines) if (line.length) this.onLine(line);
  }
  flush(): void {
    if (this.rest.length) this.onLine(this.rest);
    this.rest = '';
  }
}

/** True when a policy keeps a bounded number of snapshots (i.e. retention is switched on). */
export function retentionEnabled(p: RetentionPolicy): boolean {
  return [p.keepLast, p.keepDaily, p.keepWeekly, p.keepMonthly].some((n) => (n ?? 0) > 0);
}

/** Whether a path needs the elevated helper to be read ('read') or written ('write'). */
export type ElevationProbe = (p: string, mode: 'read' | 'write' | 'repository') => boolean;

/**
 * The default probe: block devices always go through the helper (reading or writing a whole disk
 * is what the helper is for, and a device the user happens to access, e.g. via the `disk` group,
 * still must pass the helper's mounted / system-disk checks); image files and repositories only
 * when the user cannot access them. A path that does not exist yet needs no elevation if its
 * folder is writable.
 */
export function needsElevation(p: string, mode: 'read' | 'write' | 'repository'): boolean {
  if (mode === 'repository' && isS3Repository(p)) return false; // a bucket: reached with keys, not file rights
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    try {
      fs.accessSync(path.dirname(p), fs.constants.W_OK | fs.constants.X_OK);
      return false;
    } catch {
      return true;
    }
  }
  if (st.isBlockDevice()) return mode !== 'repository';
  const want = mode === 'read' ? fs.constants.R_OK : mode === 'write' ? fs.constants.W_OK : fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK;
  try {
    fs.accessSync(p, want);
    return false;
  } catch {
    return true;
  }
}
/** Anything with the engine's `call` (every EngineFacade). */
export interface Callable {
  call: EngineCall;
}

/**
 * Routes each operation: to `elevated` (the helper) when a path of the request needs root (the
 * paths each operation names in protocol/ops.ts, `elevate`: a block device, a file or repository the
 * user cannot access), else to `user`. So opening the Snapshots view or snapshotting an image file
 * never asks for a password; snapshotting or restoring a disk does (once per window: the helper stays
 * for the next request). Operations with `elevate: null` (listing disks, looking inside snapshots)
 * always run as the user.
 */
export class RoutingEngine extends EngineFacade {
  constructor(
    private readonly user: Callable,
    private readonly elevated: Callable,
    private readonly probe: ElevationProbe = needsElevation,
    private readonly log?: (line: string) => void,
  ) {
    super();
  }

  call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>> {
    return this.route(op, params).call(op, params, options);
  }

  private route<K extends OpName>(op: K, params: OpParams<K>): Callable {
    const uses = OPS[op].elevate as Record<string, PathUse> | null;
    if (!uses) return this.user;
    const p = params as Record<string, unknown>;
    const checks: [string, PathUse][] = Object.entries(uses)
      .filter(([field]) => typeof p[field] === 'string')
      .map(([field, use]) => [p[field] as string, use]);
    if (op === 'restoreFiles') checks.push(...restoreFilesChecks(params as OpParams<'restoreFiles'>));
    const hit = checks.find(([path, use]) => this.probe(path, use));
    if (!hit) return this.user;
    this.log?.(`${op.replace(/[A-Z]/g, (c) => ' ' + c.toLowerCase())}: through the elevated helper (${hit[0]} needs root)`);
    return this.elevated;
  }
}

/**
 * What a file restore writes into: the target folder, or (in place) the nearest existing folder of
 * each destination and an existing destination folder itself (e.g. /usr/lib when restoring
 * /usr/lib/x in place under '/').
 */
function restoreFilesChecks(o: OpParams<'restoreFiles'>): [string, PathUse][] {
  const root = path.resolve(o.target);
  if (!(o.inPlace ?? root === '/')) return [[root, 'write']];
  const checks: [string, PathUse][] = [];
  for (const p of o.paths) {
    const dest = path.join(root, path.posix.normalize('/' + p));
    checks.push([existingFolder(path.dirname(dest)), 'write']);
    if (isDirectory(dest)) checks.push([dest, 'write']);
  }
  return checks;
}

/** `dir`, or its nearest ancestor that exists (what a restore creating `dir` writes into). */
export function existingFolder(dir: string): string {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(d) || d === path.dirname(d)) return d;
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
