// The read buffers of one direction of the relay. Reads land in a buffer of ours (see socketReads.ts); a read
// large enough to be passed on uncopied lends its buffer to the write, which gives it back once the kernel
// has taken the bytes, and the next read goes to another buffer. Small reads are copied instead: a copy of
// a few KiB costs less than keeping a buffer out per frame.

/** Buffers kept for reuse; more are dropped to the GC (a burst of lent buffers is bounded by backpressure). */
const MAX_FREE = 8;

export class ReadBuffers {
  private cur: Buffer;
  private curLent = false;
  private readonly free: Buffer[] = [];

  constructor(private readonly size: number) {
    this.cur = Buffer.allocUnsafe(size);
  }

  /** onread's buffer(): where the next read lands. */
  readonly next = (): Buffer => {
    if (this.curLent) {
      this.curLent = false;
      this.cur = this.free.pop() ?? Buffer.allocUnsafe(this.size);
    }
    return this.cur;
  };

  /** Lends `buf` (the buffer just read into) to a write; returns the write's callback, which gives it back. */
  lend(buf: Buffer): () => void {
    if (buf === this.cur) this.curLent = true;
    return () => {
      if (this.free.length < MAX_FREE) this.free.push(buf);
    };
  }
}
