// The elevated helper as an Engine (engine.ts, EngineFacade): one helper per window, started on
// first need, reused, started afresh after it exited or crashed. The channel itself (launch,
// handshake, requests) is helperChannel.ts.
//
// No `vscode` import: the unit tests run this under plain node.
import * as fs from 'fs';
import { isHelperOp } from '../imaging/helper/validate';
import { HelperOpName, OpName, OpParams, OpResult } from '../imaging/protocol';
import type { CallOptions } from './engine';
import { EngineError, EngineFacade, existingFolder } from './engine';
import { HelperClient, HelperClientOptions } from './helperChannel';
import { isS3Repository } from './paths';

export { acceptAuthenticatedPeer, HelperClient } from './helperChannel';
export type { HelperClientOptions } from './helperChannel';

export interface HelperEngineOptions extends HelperClientOptions {
  /**
   * Told when a helper died on its own (not idle, not asked to stop), with its last messages;
   * `failedRequests` > 0 when running requests were rejected with that error (their callers report it).
   */
  onCrash?: (err: EngineError, failedRequests: number) => void;
}

/**
 * The `Engine` backed by the elevated helper: the engine's operations (those the helper serves,
 * protocol/helper.ts), with what the helper asks on top of the user's request: that a root-owned
 * repository was named explicitly, and that the user confirmed a restore.
 */
export class HelperEngine extends EngineFacade {
  private client: HelperClient | null = null;
  private starting: Promise<HelperClient> | null = null;
  /** How many helpers this engine started (tests). */
  starts = 0;

  constructor(private readonly opts: HelperEngineOptions) {
    super();
  }

  get helperPid(): number | undefined {
    return this.client?.alive ? this.client.helperPid : undefined;
  }

  private async helper(): Promise<HelperClient> {
    if (this.client?.alive) return this.client;
    if (!this.starting) {
      this.starts++;
      this.starting = HelperClient.start(this.opts).then(
        (c) => {
          this.client = c;
          this.starting = null;
          c.onClose = (crash, failed) => {
            if (this.client === c) this.client = null;
            if (crash) this.opts.onCrash?.(crash, failed);
          };
          return c;
        },
        (err) => {
          this.starting = null;
          throw err;
        },
      );
    }
    return this.starting;
  }

  async call<K extends OpName>(op: K, params: OpParams<K>, options: CallOptions = {}): Promise<OpResult<K>> {
    if (!isHelperOp(op)) throw new EngineError('INTERNAL', `The devsnap helper does not serve "${op}": it needs no administrator rights.`);
    if (options.token?.isCancellationRequested) throw new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.');
    const c = await this.helper();
    return c.call(op, helperParams(op, params) as never, options) as Promise<OpResult<K>>;
  }

  /** Stops the helper (at a safe point) if one runs. */
  async dispose(): Promise<void> {
    const c = this.client ?? (await this.starting?.catch(() => null)) ?? null;
    this.client = null;
    await c?.dispose();
  }
}

/** The user's request as the helper takes it (imaging/helper/README.md). */
function helperParams(op: HelperOpName, params: object): object {
  const p = { ...params } as Record<string, unknown>;
  if (typeof p.repo === 'string') {
    // The helper accepts a repository that does not exist yet only for 'snapshot': plan with the
    // folder the snapshot will create it in (whether that is on the imaged disk is what matters).
    if (op === 'planSnapshot' && !isS3Repository(p.repo)) p.repo = existingFolder(p.repo);
    // A repository owned by root is used only when it is the one the user configured (named explicitly).
    if (ownedByRoot(p.repo as string)) p.allowRootRepository = true;
  }
  // The commands confirm with the user before a real restore (a modal dialog; the compare panel
  // shows a file restore's dry-run plan first).
  if ((op === 'restore' || op === 'restoreFiles' || op === 'undo') && !p.dryRun) p.confirmed = true;
  return p;
}

function ownedByRoot(p: string): boolean {
  try {
    return fs.statSync(p).uid === 0;
  } catch {
    return false; // a new repository
  }
}
