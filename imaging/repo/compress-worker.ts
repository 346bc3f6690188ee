// Worker thread: compresses chunks (with their block digests, repo/digests.ts), decompresses and
// hashes them, and writes new blocks over a stored cell (repo/overlay.ts), off the main thread so
// imaging and restore use every core. Messages are the WorkerRequest/WorkerReply shapes in
// worker-pool.ts.
//
// Nothing is allocated per chunk here when the main thread sends pool buffers (core/memory.ts): a
// frame is written back over the raw bytes it came from, raw bytes into the `out` buffer sent for
// them, and the request's other buffers go back as `spare`.
import { parentPort } from 'worker_threads';
import * as crypto from 'crypto';
import { loadZstd } from '../codec/zstd';
import { movable, requestBuffers, type Moved, type WorkerRequest, type WorkerReply } from './worker-pool';
import { overlayCell, unpackBlocks } from './overlay';
import { digestFrame, digestsMatch, digestsOf, loadDigests } from './digests';

const codecReady = loadZstd();
const digestsReady = loadDigests();
const view = (m: Moved) => Buffer.from(m.data, m.offset, m.length);
/** The base chunk of an overlay, decompressed: one buffer for the worker's lifetime (it never leaves). */
let scratch = Buffer.alloc(0);

parentPort!.on('message', async (req: WorkerRequest) => {
  const codec = await codecReady;
  let reply: WorkerReply;
  try {
    const input = view(req);
    if (req.op === 'compress') {
      // The digests before the frame overwrites the raw bytes; then they follow the frame.
      const digests = req.digestsFor ? digestFrame(await digestsReady, req.digestsFor, input) : null;
      // In place: the frame replaces the raw bytes it was made from (the codec copied them first).
      const room = Buffer.from(req.data);
      let frame = codec.compress(input, req.level, room);
      if (digests && frame.buffer === room.buffer && frame.byteOffset + frame.length + digests.length <= room.length) {
        digests.copy(room, frame.byteOffset + frame.length);
        frame = room.subarray(frame.byteOffset, frame.byteOffset + frame.length + digests.length);
      } else if (digests) frame = Buffer.concat([frame, digests]);
      reply = { id: req.id, ...movable(frame), spare: [] };
    } else if (req.op === 'overlay') {
      if (scratch.length < req.rawLength) scratch = Buffer.alloc(req.rawLength);
      const base = codec.decompress(input, req.rawLength, scratch.subarray(0, req.rawLength));
      const patch = new Map(req.patch ? unpackBlocks(view(req.patch), req.patchOffs, req.patchLens) : []);
      const r = overlayCell({ base, patch, blocks: unpackBlocks(view(req.blocks), req.offs, req.lens), blockSize: req.blockSize, baseId: req.baseId });
      reply = { id: req.id, kind: r.kind, spare: [] };
      if (r.kind === 'patch') Object.assign(reply, movable(r.data));
      // A whole cell is built from the base: its hash lets the caller verify the base first.
      if (r.kind === 'cell') Object.assign(reply, movable(r.data), { hash: crypto.createHash('sha256').update(base).digest('hex') });
    } else {
      const raw = codec.decompress(input, req.rawLength, req.out ? Buffer.from(req.out, 0, req.rawLength) : undefined);
      const hash = req.hash ? crypto.createHash('sha256').update(raw).digest('hex') : undefined;
      reply = { id: req.id, ...movable(raw), hash, spare: [] };
      if (req.checkDigests) {
        const d = digestsOf(input, req.checkDigests, req.rawLength);
        reply.digests = typeof d === 'string' ? d : digestsMatch(await digestsReady, d, raw) ? 'ok' : 'wrong';
      }
    }
  } catch (err) {
    reply = { id: req.id, error: (err as Error).message, spare: [] };
  }
  // Every buffer of the request not in the reply goes back, for the main thread's pool.
  reply.spare = requestBuffers(req).filter((ab) => ab !== reply.data);
  parentPort!.postMessage(reply, [...(reply.data ? [reply.data] : []), ...reply.spare]);
});
