// Sorted, merged block runs collected in any order (the ext change scan's output lists).
import type { BlockRuns } from './state-types';

/** Block runs collected in any order; toRuns() sorts and merges them. */
export class RunList {
  private starts = new Float64Array(256);
  private ends = new Float64Array(256);
  private n = 0;

  add(start: number, count: number): void {
    if (!(count > 0)) return;
    const end = start + count;
    const last = this.n - 1;
    // Most runs arrive in order: extend the last one in place.
    if (last >= 0 && start >= this.starts[last] && start <= this.ends[last]) {
      if (end > this.ends[last]) this.ends[last] = end;
      return;
    }
    if (this.n === this.starts.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
    }
    this.starts[this.n] = start;
    this.ends[this.n++] = end;
  }

  toRuns(): BlockRuns {
    const order = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    order.sort((a, b) => this.starts[a] - this.starts[b]);
    const out: Array<[number, number]> = [];
    let s = -1;
    let e = -1;
    for (const i of order) {
      if (s >= 0 && this.starts[i] <= e) e = Math.max(e, this.ends[i]);
      else {
        if (s >= 0) out.push([s, e - s]);
        s = this.starts[i];
        e = this.ends[i];
      }
    }
    if (s >= 0) out.push([s, e - s]);
    return out;
  }
}
