// Serving the registry over JSON-RPC (protocol/rpc.ts), for both servers: `devsnap serve --stdio`,
// the engine as a long-lived process of one client (the extension starts one per window, as the
// user), and the elevated helper (helper/server.ts, over its authenticated socket, with its checks
// in `run`). Keeping the process saves a Node start per call (~1 s) and keeps a file comparison's
// walk for its next pages.
import { CancellationToken, createMessageConnection, MessageConnection, ProgressType, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { toDevsnapError } from '../core/errors';
import { check, ErrorInfo, OP_NAMES, OpCall, OpName, PROTOCOL_VERSION, ProgressEvent, RPC_HELLO, RPC_LOG, RPC_METHOD_NOT_FOUND, RPC_OP_FAILED, RpcLog } from '../protocol';
import { ChangesCache } from './files';
import { EngineContext, runOp } from './registry';

const progressType = new ProgressType<ProgressEvent>();

export interface ServeOptions {
  /** The operations served (default: every one). */
  names?: readonly string[];
  /** Runs one call whose envelope was checked (default: the registry, runOp); `token` is its progress token, for logs. */
  run?: (name: OpName, params: unknown, ctx: EngineContext, token: string | undefined) => Promise<unknown>;
  /** Told of every call before it runs (the helper's idle timer). */
  onCall?: () => void;
  /** Where failures the engine did not expect (INTERNAL) are written with their stack. */
  report?: (line: string) => void;
}

export interface OpServer {
  /** Stops every running operation at a safe point; resolves when all have ended. */
  stopAll(): Promise<void>;
  readonly running: number;
}

/** A refusal or failure as the JSON-RPC error the client turns back into the engine's error. */
export const rpcError = (info: ErrorInfo, code = RPC_OP_FAILED) => new ResponseError(code, info.message, info);

/** Registers every served operation on `connection` (before it listens). */
export function serveOps(connection: MessageConnection, o: ServeOptions = {}): OpServer {
  const names = new Set<string>(o.names ?? OP_NAMES);
  const run = o.run ?? ((name, params, ctx) => runOp(name, params, ctx));
  /** Requests running now: stopped at a safe point when the client goes away. */
  const running = new Set<{ abort: AbortController; done: Promise<unknown> }>();
  // One handler for every method, so an unknown one gets the engine's own clear refusal.
  connection.onRequest(async (method: string, raw: unknown, token: CancellationToken) => {
    if (!names.has(method)) throw rpcError({ code: 'USAGE', message: `Refused a request of unknown type ${JSON.stringify(method)}.` }, RPC_METHOD_NOT_FOUND);
    const call = check(OpCall, raw);
    if (!call.ok) throw rpcError({ code: 'USAGE', message: `Refused the "${method}" request: ${call.problem}.` });
    o.onCall?.();
    const progressToken = call.value.progressToken;
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    // Cancelled before it was dispatched: vscode-jsonrpc then hands over a token that never fires.
    if (token.isCancellationRequested) abort.abort();
    const ctx: EngineContext = {
      signal: abort.signal,
      log: (message) => void connection.sendNotification(RPC_LOG, { ...(progressToken ? { token: progressToken } : {}), message } satisfies RpcLog),
      ...(progressToken ? { onProgress: (ev: ProgressEvent) => void connection.sendProgress(progressType, progressToken, ev) } : {}),
    };
    // Refused parameters reject `done` like any failure (they are checked synchronously).
    const done = (async () => run(method as OpName, call.value.params, ctx, progressToken))();
    const entry = { abort, done };
    running.add(entry);
    try {
      return await done;
    } catch (err) {
      const info = toDevsnapError(err).toInfo();
      if (info.code === 'INTERNAL') (o.report ?? console.error)(`${method} failed: ${(err as Error)?.stack ?? err}`);
      throw rpcError(info);
    } finally {
      sub.dispose();
      running.delete(entry);
    }
  });
  return {
    get running() {
      return running.size;
    },
    async stopAll() {
      for (const r of running) r.abort.abort();
      await Promise.allSettled([...running].map((r) => r.done));
    },
  };
}

export function serveStdio(input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  // stdout carries the protocol only: anything else printed would break the stream.
  console.log = console.info = (...args: unknown[]) => console.error(...args);
  const connection = createMessageConnection(new StreamMessageReader(input), new StreamMessageWriter(output));
  const changesCache = new ChangesCache();
  connection.onRequest(RPC_HELLO, () => ({ protocol: PROTOCOL_VERSION, pid: process.pid }));
  const server = serveOps(connection, { run: (name, params, ctx) => runOp(name, params, { ...ctx, changesCache }) });
  return new Promise<void>((resolve) => {
    // The client is gone (stdin closed): what runs stops at a safe point (a snapshot leaves the
    // repository as it was), then nothing is left to serve.
    const end = () => void server.stopAll().then(() => resolve());
    connection.onClose(end);
    input.on('end', end);
    connection.listen();
  });
}
