// Length-prefixed JSON frames: a 4-byte big-endian payload length, then the UTF-8 JSON payload.
// The decoder never buffers more than one maximal frame: a longer one is skipped byte by byte
// (its content never parsed) and reported, so one bad frame does not desynchronise the stream.
import { HELPER_MAX_MESSAGE } from '../protocol';

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > HELPER_MAX_MESSAGE) throw new Error(`message of ${body.length} bytes exceeds the ${HELPER_MAX_MESSAGE}-byte limit`);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

export type FrameProblem = { kind: 'oversized'; length: number } | { kind: 'malformed'; reason: string };

export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private skipping = 0;

  constructor(
    private readonly onMessage: (message: unknown) => void,
    private readonly onProblem: (problem: FrameProblem) => void,
    private readonly max = HELPER_MAX_MESSAGE,
  ) {}

  push(chunk: Buffer): void {
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
      if (!chunk.length) return;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > this.max) {
        const have = this.buf.length - 4;
        this.skipping = Math.max(0, len - have);
        this.buf = this.buf.subarray(Math.min(this.buf.length, 4 + len));
        this.onProblem({ kind: 'oversized', length: len });
        continue;
      }
      if (this.buf.length < 4 + len) return;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      let value: unknown;
      try {
        value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
      } catch (err) {
        this.onProblem({ kind: 'malformed', reason: (err as Error).message });
        continue;
      }
      this.onMessage(value);
    }
  }
}
