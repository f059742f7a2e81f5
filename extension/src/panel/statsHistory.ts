import { RingBuffer } from '../common/ringBuffer';
import type { Sample } from './messages';

const FIELDS = ['t', 'h2d', 'd2h', 'ops', 'p50', 'p99', 'queue'] as const;

/** The last `capacity` samples, column-wise in ring buffers: what a freshly opened panel starts from. */
export class StatsHistory {
  private readonly cols: Record<(typeof FIELDS)[number], RingBuffer>;

  constructor(readonly capacity: number) {
    this.cols = Object.fromEntries(FIELDS.map((f) => [f, new RingBuffer(capacity)])) as StatsHistory['cols'];
  }

  get length(): number { return this.cols.t.length; }

  push(s: Sample): void { for (const f of FIELDS) this.cols[f].push(s[f]); }

  samples(): Sample[] {
    const n = this.length;
    const out: Sample[] = new Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = { t: this.cols.t.at(i), h2d: this.cols.h2d.at(i), d2h: this.cols.d2h.at(i), ops: this.cols.ops.at(i), p50: this.cols.p50.at(i), p99: this.cols.p99.at(i), queue: this.cols.queue.at(i) };
    }
    return out;
  }
}
