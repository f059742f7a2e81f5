// Device-side malloc/free (and new/delete, which nvcc lowers to them): a first-fit allocator over one arena
// per context, placed in the context's globals window at the first launch of a module that calls them.
// Kernels of such a module run inline, never split across block workers, so one JS allocator needs no locks.

/** cudaLimitMallocHeapSize's default on NVIDIA's driver. */
export const MALLOC_HEAP_BYTES = 8 * 1024 * 1024;
/** CUDA's malloc returns 16-byte aligned pointers. */
const ALIGN = 16;

export class DeviceMalloc {
  /** Free extents, sorted by address, never adjacent (merged on free). */
  private readonly free: { at: number; size: number }[];
  private readonly used = new Map<number, number>();

  constructor(readonly base: number, readonly size: number) {
    this.free = [{ at: base, size }];
  }

  /** The address of `bytes` fresh bytes, or 0 (NULL) when the arena cannot hold them, as on a GPU. */
  malloc(bytes: number): number {
    if (!(bytes > 0)) return 0;
    const need = Math.ceil(bytes / ALIGN) * ALIGN;
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size < need) continue;
      const at = f.at;
      if (f.size === need) this.free.splice(i, 1);
      else { f.at += need; f.size -= need; }
      this.used.set(at, need);
      return at;
    }
    return 0;
  }

  /** Frees what malloc returned; NULL and pointers it never returned are ignored. */
  release(at: number): void {
    const size = this.used.get(at);
    if (size === undefined) return;
    this.used.delete(at);
    let i = 0;
    while (i < this.free.length && this.free[i].at < at) i++;
    this.free.splice(i, 0, { at, size });
    const next = this.free[i + 1];
    if (next && at + size === next.at) { this.free[i].size += next.size; this.free.splice(i + 1, 1); }
    const prev = this.free[i - 1];
    if (prev && prev.at + prev.size === at) { prev.size += this.free[i].size; this.free.splice(i, 1); }
  }

  /** Bytes handed out and not freed. */
  get inUse(): number {
    let n = 0;
    for (const s of this.used.values()) n += s;
    return n;
  }
}
