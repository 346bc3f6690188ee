// The one protocol of both engine servers: the user-mode engine service (`devsnap serve --stdio`,
// imaging/ops/serve.ts, over its stdin/stdout with Content-Length headers) and the elevated helper
// (imaging/helper/, over its authenticated socket in length-prefixed frames, protocol/helper.ts).
// JSON-RPC 2.0 (vscode-jsonrpc on both ends); the extension has one client for both
// (extension/engineRpc.ts):
//   request         method = the operation's name (protocol/ops.ts), params = OpCall
//   $/progress      { token: OpCall.progressToken, value: ProgressEvent }   while it runs
//   devsnap/log     { token?, message }                                     diagnostics
//   $/cancelRequest { id }                                                  stop at a safe point
// A failed operation answers with a JSON-RPC error of code RPC_OP_FAILED whose `data` is the
// engine's ErrorInfo (a refused message too, with its JSON-RPC code).
import * as v from 'valibot';

export const OpCall = v.strictObject({
  /** The operation's parameters, checked by the server against the operation's schema. */
  params: v.optional(v.unknown()),
  /** Set to receive $/progress notifications (and its log lines) under this token. */
  progressToken: v.optional(v.pipe(v.string(), v.maxLength(64))),
});
export type OpCall = v.InferOutput<typeof OpCall>;

export const RPC_LOG = 'devsnap/log';
export interface RpcLog {
  token?: string;
  message: string;
}
/** The engine service's first request: answers `{ protocol: PROTOCOL_VERSION, pid }`, which the client checks. */
export const RPC_HELLO = 'devsnap/hello';
/** The helper's: stop everything at a safe point and exit (answers `{ stopping: true }`, then RPC_BYE). */
export const RPC_SHUTDOWN = 'devsnap/shutdown';
/** The helper is about to exit (idle, shutdown, client gone): `{ reason }`. */
export const RPC_BYE = 'devsnap/bye';
/** JSON-RPC error code of an operation's failure (its ErrorInfo is the error's data). */
export const RPC_OP_FAILED = 1;
/** JSON-RPC's own codes for messages refused before any operation ran. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
