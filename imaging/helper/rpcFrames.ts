// The helper's channel after its handshake: JSON-RPC 2.0 (protocol/rpc.ts) in the length-prefixed
// frames of framing.ts, as a vscode-jsonrpc MessageReader and MessageWriter, so that the helper and
// the engine service are one protocol served by one dispatcher (ops/serve.ts). The frame limit
// stays: an oversized frame is skipped unread, and every frame must hold one JSON-RPC message of
// the kind its side accepts (a server takes requests and notifications, a client responses and
// notifications); anything else is refused here, before vscode-jsonrpc sees it.
import type { Duplex } from 'stream';
import * as v from 'valibot';
import { AbstractMessageReader, AbstractMessageWriter, DataCallback, Disposable, Message, MessageReader, MessageWriter } from 'vscode-jsonrpc/node';
import { check, HELPER_MAX_MESSAGE, RPC_INVALID_REQUEST, RPC_OP_FAILED, RPC_PARSE_ERROR } from '../protocol';
import { encodeFrame, FrameDecoder, FrameProblem } from './framing';

/**
 * A socket that carries frames for its whole life: the handshake's messages first, then JSON-RPC.
 * One decoder throughout, so that frames arriving right behind the handshake's last are not lost.
 */
export class FramedSocket {
  private readonly decoder: FrameDecoder;
  onMessage: (message: unknown) => void = () => undefined;
  onProblem: (problem: FrameProblem) => void = () => undefined;

  constructor(
    readonly socket: Duplex,
    max = HELPER_MAX_MESSAGE,
  ) {
    this.decoder = new FrameDecoder(
      (m) => this.onMessage(m),
      (p) => this.onProblem(p),
      max,
    );
    socket.on('data', (d: Buffer) => this.decoder.push(d));
  }

  send(message: unknown): void {
    if (this.socket.writable) this.socket.write(encodeFrame(message));
  }
}

const id = v.union([v.pipe(v.string(), v.maxLength(128)), v.pipe(v.number(), v.safeInteger())]);
const method = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const params = v.optional(v.union([v.looseObject({}), v.array(v.unknown())]));
const Request = v.strictObject({ jsonrpc: v.literal('2.0'), id, method, params });
const Notification = v.strictObject({ jsonrpc: v.literal('2.0'), method, params });
const Response = v.union([
  v.strictObject({ jsonrpc: v.literal('2.0'), id: v.nullable(id), result: v.unknown() }),
  v.strictObject({
    jsonrpc: v.literal('2.0'),
    id: v.nullable(id),
    error: v.looseObject({ code: v.pipe(v.number(), v.safeInteger()), message: v.string(), data: v.optional(v.unknown()) }),
  }),
]);

/** What a message was refused for, with the request's id when it could be read (to answer it). */
export interface Refusal {
  id: string | number | null;
  code: number;
  message: string;
}

/** Checks one decoded frame: a message this side accepts, or why not. */
export function vetMessage(msg: unknown, side: 'server' | 'client'): { ok: true; message: Message } | { ok: false; refusal: Refusal } {
  const o = (msg && typeof msg === 'object' && !Array.isArray(msg) ? msg : {}) as Record<string, unknown>;
  const msgId = check(id, o.id).ok ? (o.id as string | number) : null;
  const refuse = (message: string) => ({ ok: false as const, refusal: { id: msgId, code: RPC_INVALID_REQUEST, message } });
  if (o.jsonrpc !== '2.0') return refuse('Refused a message that is not JSON-RPC 2.0.');
  if (side === 'server') {
    if ('id' in o && check(Request, o).ok) return { ok: true, message: o as unknown as Message };
    if (!('id' in o) && check(Notification, o).ok) {
      // Of the notifications, a server takes only cancellation: a request sent without an id would
      // otherwise run unanswered.
      if (o.method === '$/cancelRequest') return { ok: true, message: o as unknown as Message };
      return refuse(`Refused a "${String(o.method)}" request without a valid "id".`);
    }
    return refuse(
      typeof o.method === 'string' && 'id' in o && msgId === null ? `Refused a "${o.method}" request without a valid "id".` : 'Refused a message that is not a well-formed JSON-RPC request.',
    );
  }
  if ((!('id' in o) && check(Notification, o).ok) || check(Response, o).ok) return { ok: true, message: o as unknown as Message };
  return refuse('Refused a message that is not a well-formed JSON-RPC response or notification.');
}

/** The refusal of a frame that never became a message. */
export function frameRefusal(p: FrameProblem): Refusal {
  return p.kind === 'oversized'
    ? { id: null, code: RPC_INVALID_REQUEST, message: `Refused a message of ${p.length} bytes: the limit is 1 MiB.` }
    : { id: null, code: RPC_PARSE_ERROR, message: `Refused a malformed message (not JSON: ${p.reason}).` };
}

/** JSON-RPC messages from the frames of `framed`, vetted for `side`; `onRefused` hears the rest. */
export class FrameMessageReader extends AbstractMessageReader implements MessageReader {
  private callback: DataCallback | undefined;
  private readonly early: Message[] = [];

  constructor(framed: FramedSocket, side: 'server' | 'client', onRefused: (r: Refusal) => void) {
    super();
    framed.onMessage = (m) => {
      const r = vetMessage(m, side);
      if (!r.ok) return onRefused(r.refusal);
      if (this.callback) this.callback(r.message);
      else this.early.push(r.message);
    };
    framed.onProblem = (p) => onRefused(frameRefusal(p));
    framed.socket.on('close', () => this.fireClose());
    framed.socket.on('error', (err) => this.fireError(err));
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    for (const m of this.early.splice(0)) callback(m);
    return Disposable.create(() => (this.callback = undefined));
  }
}

/**
 * JSON-RPC messages into frames. A response too large for a frame is answered with an error in its
 * place, so that the request still ends (a listing of a huge repository, say).
 */
export class FrameMessageWriter extends AbstractMessageWriter implements MessageWriter {
  constructor(private readonly framed: FramedSocket) {
    super();
  }

  async write(msg: Message): Promise<void> {
    const m = msg as unknown as Record<string, unknown>;
    try {
      this.framed.send(m);
    } catch (err) {
      if (!('id' in m) || 'method' in m) throw err;
      const message = `The answer is larger than the helper's channel carries (1 MiB): ${(err as Error).message}.`;
      this.framed.send({ jsonrpc: '2.0', id: m.id, error: { code: RPC_OP_FAILED, message, data: { code: 'INTERNAL', message } } });
    }
  }

  end(): void {
    /* the socket is ended by its owner */
  }
}
