// Pinned host staging buffers for stream-ordered copies.
//
// Why: cuMemcpy*Async on pageable (JS heap) memory is synchronous with respect to the stream (the driver waits
// for earlier work before it can copy), which would block the server's event loop behind running kernels.
// Copies through page-locked memory are truly asynchronous: a write copies the caller's bytes into a staging
// buffer and enqueues the DMA; a read enqueues the DMA into a staging buffer and hands the bytes over once an
// event recorded after it completes. A buffer is reusable once the event recorded after its last copy is done.

import { Driver, viewNative, NativeBuffer } from './binding';

const CU_MEMHOSTALLOC_PORTABLE = 1;
const CU_EVENT_DISABLE_TIMING = 2;
const CUDA_ERROR_NOT_READY = 600;

export interface Staging extends NativeBuffer {
  readonly size: number;
  /** Recorded after the last copy that used the buffer. */
  readonly event: bigint;
}

/** Buffers of one fixed size are pooled; larger requests get a dedicated buffer freed on release. */
export class StagingPool {
  private readonly free: Staging[] = [];
  private readonly busy = new Set<Staging>();
  private readonly leaked: Staging[] = [];

  constructor(private readonly drv: Driver, readonly chunk = 4 * 1024 * 1024, private readonly maxPooled = 16) {}

  /** A buffer of at least `size` bytes that no pending copy uses, owned by the caller until `releaseAfter`/`releaseIdle`. */
  acquire(size: number): Staging {
    this.reclaim();
    let s: Staging | undefined;
    if (size <= this.chunk) s = this.free.pop();
    return s ?? this.create(Math.max(size, this.chunk));
  }

  /** Records the buffer's event on `stream` (after the copy just enqueued) and lets it be reused once done. */
  releaseAfter(s: Staging, stream: bigint): void {
    const rc = this.drv.fn.cuEventRecord(s.event, stream);
    if (rc !== 0) {
      // Without the event we cannot know when the copy is done; never reuse the buffer (it is leaked
      // deliberately until the pool is destroyed, when the context has been synchronised).
      this.leaked.push(s);
      this.drv.check(rc, 'cuEventRecord');
    }
    this.busy.add(s);
  }

  /** Returns a buffer the caller knows to be idle (its copy completed, its bytes consumed). */
  releaseIdle(s: Staging): void {
    this.recycle(s);
  }

  /** Moves busy buffers whose last copy completed back to the free list. */
  private reclaim(): void {
    for (const s of this.busy) {
      const rc = this.drv.fn.cuEventQuery(s.event);
      if (rc === CUDA_ERROR_NOT_READY) continue;
      this.busy.delete(s);
      this.recycle(s);
    }
  }

  private recycle(s: Staging): void {
    if (s.size === this.chunk && this.free.length < this.maxPooled) this.free.push(s);
    else this.destroyOne(s);
  }

  private create(size: number): Staging {
    const { drv } = this;
    const out: unknown[] = [null];
    drv.check(drv.fn.cuMemHostAlloc(out, size, CU_MEMHOSTALLOC_PORTABLE), 'cuMemHostAlloc');
    const rc = drv.fn.cuEventCreate(drv.out, CU_EVENT_DISABLE_TIMING);
    if (rc !== 0) {
      drv.fn.cuMemFreeHost(out[0]);
      drv.check(rc, 'cuEventCreate');
    }
    return { ...viewNative(out[0], size), size, event: drv.readU64() };
  }

  private destroyOne(s: Staging): void {
    this.drv.fn.cuEventDestroy_v2(s.event);
    this.drv.fn.cuMemFreeHost(s.ptr);
  }

  /** Frees every buffer; callers have synchronised the context first. Idempotent. */
  destroy(): void {
    for (const s of this.free) this.destroyOne(s);
    for (const s of this.busy) this.destroyOne(s);
    for (const s of this.leaked) this.destroyOne(s);
    this.free.length = 0;
    this.leaked.length = 0;
    this.busy.clear();
  }
}
