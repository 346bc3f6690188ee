// `devsnap serve --stdio`: the engine as a long-lived process of one client (the extension starts
// one per window). Every operation of the registry, over JSON-RPC (protocol/service.ts), as the user
// who started it; several requests may run at once (the repository's locks order them). Keeping the
// process saves a Node start per call (~1 s) and keeps a file comparison's walk for its next pages.
import { CancellationToken, createMessageConnection, ProgressType, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { toDevsnapError } from '../core/errors';
import { check, OP_NAMES, PROTOCOL_VERSION, ProgressEvent, SERVICE_HELLO, SERVICE_LOG, SERVICE_OP_FAILED, ServiceCall, ServiceLog } from '../protocol';
import { ChangesCache } from './files';
import { runOp } from './registry';

const progressType = new ProgressType<ProgressEvent>();

export function serveStdio(input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  // stdout carries the protocol only: anything else printed would break the stream.
  console.log = console.info = (...args: unknown[]) => console.error(...args);
  const connection = createMessageConnection(new StreamMessageReader(input), new StreamMessageWriter(output));
  const changesCache = new ChangesCache();
  /** Requests running now: stopped at a safe point when the client goes away. */
  const running = new Set<{ abort: AbortController; done: Promise<unknown> }>();
  connection.onRequest(SERVICE_HELLO, () => ({ protocol: PROTOCOL_VERSION, pid: process.pid }));
  for (const name of OP_NAMES) {
    connection.onRequest(name, async (raw: unknown, token: CancellationToken) => {
      const call = check(ServiceCall, raw);
      if (!call.ok) throw new ResponseError(SERVICE_OP_FAILED, `Refused the "${name}" request: ${call.problem}.`, { code: 'USAGE', message: `Refused the "${name}" request: ${call.problem}.` });
      const progressToken = call.value.progressToken;
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      // Refused parameters reject `done` like any failure (runOp checks them synchronously).
      const done = (async () =>
        runOp(name, call.value.params, {
          signal: abort.signal,
          changesCache,
          log: (message) => void connection.sendNotification(SERVICE_LOG, { token: progressToken, message } satisfies ServiceLog),
          ...(progressToken ? { onProgress: (ev: ProgressEvent) => void connection.sendProgress(progressType, progressToken, ev) } : {}),
        }))();
      const entry = { abort, done };
      running.add(entry);
      try {
        return await done;
      } catch (err) {
        const info = toDevsnapError(err).toInfo();
        if (info.code === 'INTERNAL') console.error(`${name} failed: ${(err as Error)?.stack ?? err}`);
        throw new ResponseError(SERVICE_OP_FAILED, info.message, info);
      } finally {
        sub.dispose();
        running.delete(entry);
      }
    });
  }
  return new Promise<void>((resolve) => {
    // The client is gone (stdin closed): what runs stops at a safe point (a snapshot leaves the
    // repository as it was), then nothing is left to serve.
    const end = () => {
      for (const r of running) r.abort.abort();
      void Promise.allSettled([...running].map((r) => r.done)).then(() => resolve());
    };
    connection.onClose(end);
    input.on('end', end);
    connection.listen();
  });
}
