/**
 * Fixed-capacity ring of numbers on a Float64Array: pushing never allocates, so a statistics view left open for
 * hours holds exactly `capacity` samples per series. Hand-written because the hot part (push once per second per
 * series, snapshot per render) is tiny and no library keeps the typed-array, no-allocation property.
 */
export class RingBuffer {
  private readonly data: Float64Array;
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.data = new Float64Array(capacity);
  }

  get length(): number { return this.count; }

  push(v: number): void {
    const end = (this.start + this.count) % this.capacity;
    this.data[end] = v;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** i-th oldest sample (0 = oldest). */
  at(i: number): number {
    if (i < 0 || i >= this.count) return NaN;
    return this.data[(this.start + i) % this.capacity];
  }

  last(): number { return this.count ? this.at(this.count - 1) : NaN; }

  /** Oldest-first copy; `into` is reused when given and big enough. */
  toArray(into?: number[]): number[] {
    const out = into ?? new Array<number>(this.count);
    out.length = this.count;
    for (let i = 0; i < this.count; i++) out[i] = this.data[(this.start + i) % this.capacity];
    return out;
  }

  clear(): void { this.start = 0; this.count = 0; }
}
