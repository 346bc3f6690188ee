// Chunk buffers move between threads (postMessage with transfer) by the thousand, and V8 frees a
// moved ArrayBuffer's memory only when a garbage collection finds the object that last held it. Its
// heuristics wait for ~64 MB of such memory per thread before collecting, which alone put a snapshot
// at 200–250 MB. A full collection every few chunks in each worker (whose heap is a few MB, so it is
// cheap) frees what moved through it. (The main thread's own collections keep up there: forcing
// more of them cost time and saved nothing, measured on the bench's disk.) `gc` is reached the way
// Jest reaches it: v8's flag, then a new context.
import * as v8 from 'v8';
import * as vm from 'vm';

type Gc = (options?: { type?: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as Gc;
    } catch {
      gc = null; // a runtime without the flag: only V8's own heuristics then
    }
  }
  return gc;
}

/** Counts handed-over buffers; every `every`th, collects the young generation. */
export class BufferTurnover {
  private n = 0;
  constructor(private readonly every: number, private readonly type: 'minor' | 'major' = 'minor') {}

  tick(): void {
    if (++this.n % this.every === 0) collector()?.({ type: this.type });
  }
}
