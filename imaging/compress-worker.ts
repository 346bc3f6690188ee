// Worker thread: compresses chunks, and decompresses + hashes them, off the main thread so imaging
// and restore use every core. Messages are the WorkerRequest/WorkerReply shapes in worker-pool.ts.
import { parentPort } from 'worker_threads';
import * as crypto from 'crypto';
import { loadZstd } from './zstd';
import { toTransferable, type WorkerRequest, type WorkerReply } from './worker-pool';
import { BufferTurnover } from './memory';
import { overlayCell, unpackBlocks } from './capture/overlay';

const codecReady = loadZstd();
const turnover = new BufferTurnover(4, 'major'); // a worker's heap is a few MB: a full collection is cheap

parentPort!.on('message', async (req: WorkerRequest) => {
  const codec = await codecReady;
  let reply: WorkerReply;
  try {
    const input = Buffer.from(req.data);
    if (req.op === 'compress') {
      const out = codec.compress(input, req.level);
      reply = { id: req.id, data: toTransferable(out) };
    } else if (req.op === 'overlay') {
      const base = codec.decompress(input, req.rawLength);
      if (base.length !== req.rawLength) throw new Error(`the base chunk decompresses to ${base.length} bytes, not ${req.rawLength}`);
      const patch = new Map(req.patch ? unpackBlocks(Buffer.from(req.patch), req.patchOffs, req.patchLens) : []);
      const r = overlayCell({ base, patch, blocks: unpackBlocks(Buffer.from(req.blocks), req.offs, req.lens), blockSize: req.blockSize, baseId: req.baseId });
      reply = { id: req.id, kind: r.kind };
      if (r.kind === 'patch') Object.assign(reply, { data: toTransferable(r.data) });
      // A whole cell is built from the base: its hash lets the caller verify the base first.
      if (r.kind === 'cell') Object.assign(reply, { data: toTransferable(r.data), hash: crypto.createHash('sha256').update(base).digest('hex') });
    } else {
      const raw = codec.decompress(input, req.rawLength);
      const hash = req.hash ? crypto.createHash('sha256').update(raw).digest('hex') : undefined;
      reply = { id: req.id, data: toTransferable(raw), hash };
    }
  } catch (err) {
    reply = { id: req.id, error: (err as Error).message };
  }
  parentPort!.postMessage(reply, 'data' in reply && reply.data ? [reply.data] : []);
  turnover.tick(); // the request's buffer is garbage now
});
