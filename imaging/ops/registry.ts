// Every engine operation, implemented once. The contract (name, parameter and result schemas, when
// it needs root) is in protocol/ops.ts; here each name gets its implementation. The CLI, the
// user-mode service (serve.ts) and the elevated helper (helper/server.ts, which adds its checks of
// paths and identities first) all run operations from here.
import { DevsnapError } from '../core/errors';
import { check, OPS, OpName, OpParams, OpResult } from '../protocol';
import * as ops from './operations';
import { ChangesCache, changesOp, inventoryOp, listDirOp, readFileOp } from './files';
import { undoOp } from './undo';
import { initOp, usageOp } from './usage';
import { type AutomationContext, autoInstallOp, autoRemoveOp, autoStatusOp } from './automation';
import { kitStatusOp, kitWriteOp } from './recovery';

/** What an operation may use besides its parameters. */
export interface EngineContext extends ops.OpContext, AutomationContext {
  /** Kept by a long-lived process: later pages of a file comparison are slices of one walk. */
  changesCache?: ChangesCache;
}

type Implementations = { [K in OpName]: (params: OpParams<K>, ctx: EngineContext) => Promise<OpResult<K>> };

export const IMPLEMENTATIONS: Implementations = {
  listDisks: () => ops.disksOp(),
  listSnapshots: ops.listOp,
  show: ops.showOp,
  snapshot: ops.snapshotOp,
  planSnapshot: (p) => ops.planSnapshotOp(p),
  restore: ops.restoreOp,
  verify: ops.verifyOp,
  check: ops.checkOp,
  diff: ops.diffOp,
  forget: ops.forgetOp,
  prune: ops.pruneOp,
  label: ops.labelOp,
  pin: ops.pinOp,
  restoreFiles: ops.restoreFilesOp,
  inventory: inventoryOp,
  listDir: listDirOp,
  readFile: readFileOp,
  changes: changesOp,
  undo: undoOp,
  usage: usageOp,
  init: initOp,
  autoInstall: autoInstallOp,
  autoRemove: autoRemoveOp,
  autoStatus: autoStatusOp,
  kitWrite: kitWriteOp,
  kitStatus: (p) => kitStatusOp(p),
};

/** Checks `params` against the operation's schema (USAGE naming the field when they do not fit). */
export function checkParams<K extends OpName>(name: K, params: unknown): OpParams<K> {
  const r = check(OPS[name].params, params ?? {});
  if (!r.ok) throw new DevsnapError('USAGE', `Refused the "${name}" request: ${r.problem}.`);
  return r.value as OpParams<K>;
}

/** Runs one operation by name, its parameters checked first. */
export function runOp<K extends OpName>(name: K, params: unknown, ctx: EngineContext): Promise<OpResult<K>> {
  return IMPLEMENTATIONS[name](checkParams(name, params), ctx);
}
