// The extension's one client of the engine's protocol (imaging/protocol/rpc.ts), whichever server
// answers: the user-mode engine service (engineClient.ts) or the elevated helper (helperChannel.ts).
// One call: its progress under a token of its own, cancellation as $/cancelRequest, the result
// checked against the operation's schema, a failure as the engine's EngineError.
//
// No `vscode` import: the unit tests run this under plain node.
import { CancellationTokenSource, MessageConnection, ProgressType, ResponseError } from 'vscode-jsonrpc/node';
import { check, ERROR_CODES, ErrorCode, ErrorInfo, OpName, OpParams, OpResult, ProgressEvent, RPC_OP_FAILED } from '../imaging/protocol';
import type { CallOptions } from './engineTypes';
import { checkedResult, EngineError } from './engineError';

/** A connection to one server, and how it ended. */
export interface RpcPeer {
  connection: MessageConnection;
  /** Rejects with why the server ended (a pending call fails with it, not with the symptom). */
  gone: Promise<never>;
  /** 'engine' or 'helper', in messages. */
  name: 'engine' | 'helper';
  log: (line: string) => void;
}

const progressType = new ProgressType<ProgressEvent>();
let nextToken = 1;

/** Sends one operation to `peer` and resolves with its checked result. */
export async function callPeer<K extends OpName>(peer: RpcPeer, op: K, params: OpParams<K> | object, o: CallOptions = {}): Promise<OpResult<K>> {
  const started = Date.now();
  const { connection, log } = peer;
  log(`→ ${peer.name === 'helper' ? 'helper ' : ''}${describeCall(op, params)}`);
  const progressToken = `p${nextToken++}`;
  const progressSub = o.progress
    ? connection.onProgress(progressType, progressToken, (ev) => {
        try {
          o.progress!(ev);
        } catch (err) {
          log(`  (progress listener failed: ${(err as Error).message})`);
        }
      })
    : undefined;
  const cancel = new CancellationTokenSource();
  const cancelSub = o.token?.onCancellationRequested(() => {
    log(`  cancel requested: asking the ${peer.name} to stop ${op} at a safe point`);
    cancel.cancel();
  });
  try {
    const raw = await Promise.race([connection.sendRequest(op, { params, progressToken }, cancel.token), peer.gone]);
    const result = checkedResult(op, raw, peer.name);
    log(`${op}: ${Date.now() - started} ms`);
    return result;
  } catch (err) {
    // A write to a server that is dying (EPIPE): report why it ended, not the symptom.
    const answered = (err instanceof ResponseError && check(ErrorInfo, err.data).ok) || err instanceof EngineError;
    const cause = answered ? err : await Promise.race([peer.gone.catch((x: unknown) => x), delay(1000).then(() => err)]);
    const e = toEngineError(cause, peer.name);
    log(`${op}: error ${e.code}: ${e.toUserMessage()}`);
    throw e;
  } finally {
    progressSub?.dispose();
    cancelSub?.dispose();
    cancel.dispose();
  }
}

/** A call for the log, as flags (`snapshot --repo /r --source /dev/sdb --full-read`); the secrets (password, S3 keys) are left out. */
export function describeCall(op: string, params: object): string {
  const flags = Object.entries(params).flatMap(([k, v]) => {
    const flag = '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    if (k === 'password' || k === 's3Credentials' || v === undefined || v === false) return [];
    if (v === true) return [flag];
    return [flag, quote(typeof v === 'string' ? v : JSON.stringify(v))];
  });
  return [op, ...flags].join(' ');
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function toEngineError(err: unknown, name: string): EngineError {
  if (err instanceof EngineError) return err;
  if (err instanceof ResponseError) {
    const r = check(ErrorInfo, err.data);
    if (r.ok) return new EngineError(r.value.code, r.value.message, r.value.hint);
    const code: ErrorCode = err.code === RPC_OP_FAILED && ERROR_CODES.includes(err.data?.code) ? err.data.code : 'INTERNAL';
    return new EngineError(code, err.message);
  }
  return new EngineError('INTERNAL', `The devsnap ${name} failed: ${(err as Error)?.message ?? err}`);
}
