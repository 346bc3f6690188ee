// The user-mode engine service (`devsnap serve --stdio`, imaging/ops/serve.ts) and its client
// (extension/engineClient.ts) speak JSON-RPC 2.0 (vscode-jsonrpc) over the service's stdin/stdout:
//   request   method = the operation's name (protocol/ops.ts), params = ServiceCall
//   $/progress  { token: ServiceCall.progressToken, value: ProgressEvent }   while it runs
//   devsnap/log { token?, message }                                           diagnostics
//   $/cancelRequest                                                           cancellation
// A failed operation answers with a JSON-RPC error whose `data` is the engine's ErrorInfo.
import * as v from 'valibot';

export const ServiceCall = v.strictObject({
  /** The operation's parameters, checked by the service against the operation's schema. */
  params: v.unknown(),
  /** Set to receive $/progress notifications (and its log lines) under this token. */
  progressToken: v.optional(v.pipe(v.string(), v.maxLength(64))),
});
export type ServiceCall = v.InferOutput<typeof ServiceCall>;

export const SERVICE_LOG = 'devsnap/log';
export interface ServiceLog {
  token?: string;
  message: string;
}
/** A request that answers `{ protocol: PROTOCOL_VERSION, pid }`: the client checks it first. */
export const SERVICE_HELLO = 'devsnap/hello';
/** JSON-RPC error code of an operation's failure (its ErrorInfo is the error's data). */
export const SERVICE_OP_FAILED = 1;
