// One context's device memory: a single ArrayBuffer spanning [globals window | client va window],
// with typed-array views the compiled kernels index directly. Validity is tracked per 256-byte page (the
// client's allocation granularity), so a kernel's bounds check is two compares and one byte load, and no
// access can ever reach another context's buffer.
//
// Growth: the first allocation reserves the whole window at once. A plain ArrayBuffer comes from calloc,
// which maps large blocks fresh and never touches them, so the reservation costs ~5 ms and no RSS: a page
// becomes resident when first written. This replaces doubling, which copied the old heap into fresh memory
// (13-19 us per first-touched page on the dev VM, about 1 s per 256 MiB). A resizable ArrayBuffer would grow
// in place, but V8 11 (Node 20) runs kernel loads/stores over RAB-backed views 3-5x slower (measured), so
// the kernels' views stay on a fixed-size buffer. Doubling remains the fallback when the reservation fails.
//
// With block workers, the buffer and the page map are SharedArrayBuffers (same lazy reservation, same kernel
// speed, measured), so the workers (blockPool.ts) run kernels over this very memory. Once the whole window is reserved the
// buffer never changes (`fixed`), which is what lets a launch run on workers while the server thread goes on.

import { CudaError, CUresult } from '../../server/src/backend';

/** Bytes below va.base reserved for module globals and constants. */
export const GLOBAL_WINDOW = 64 * 1024 * 1024;
export const PAGE_SHIFT = 8;
const PAGE = 1 << PAGE_SHIFT;
/** Offsets must stay below 2^32 so kernels can index with `>>>`. */
const MAX_HEAP = 0xffff0000;

export interface HeapViews {
  buf: ArrayBufferLike;
  u8: Uint8Array; i8: Int8Array; u16: Uint16Array; i16: Int16Array; i32: Int32Array; u32: Uint32Array;
  f32: Float32Array; f64: Float64Array; i64: BigInt64Array;
}

export function makeViews(buf: ArrayBufferLike): HeapViews {
  return {
    buf, u8: new Uint8Array(buf), i8: new Int8Array(buf), u16: new Uint16Array(buf), i16: new Int16Array(buf),
    i32: new Int32Array(buf), u32: new Uint32Array(buf), f32: new Float32Array(buf), f64: new Float64Array(buf),
    i64: new BigInt64Array(buf),
  };
}

/** What a running kernel needs of a heap: the server's DeviceHeap, or a worker's view of the same memory. */
export interface KernelHeap {
  readonly base: number;
  readonly length: number;
  readonly views: HeapViews;
  readonly pages: Uint8Array;
  check(addr: number, size: number): number;
}

function checkIn(h: KernelHeap, addr: number, size: number): number {
  const off = addr - h.base;
  if (!(off >= 0) || off + size > h.length || !Number.isSafeInteger(off)) heapFault(addr, size);
  if (size > 0) {
    const pages = h.pages;
    for (let p = off >>> PAGE_SHIFT, e = (off + size - 1) >>> PAGE_SHIFT; p <= e; p++) if (!pages[p]) heapFault(addr, size);
  }
  return off;
}

function heapFault(addr: number, size: number): never {
  throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `access of ${size} bytes at 0x${addr.toString(16)} is outside every allocation`);
}

/** A worker's view of a context's heap: the same shared buffer and page map, read and written in place. */
export class AttachedHeap implements KernelHeap {
  readonly views: HeapViews;
  readonly pages: Uint8Array;
  readonly length: number;
  constructor(readonly base: number, buf: SharedArrayBuffer, pages: SharedArrayBuffer) {
    this.views = makeViews(buf);
    this.pages = new Uint8Array(pages);
    this.length = buf.byteLength;
  }
  check(addr: number, size: number): number { return checkIn(this, addr, size); }
}

/**
 * Whole shared windows of destroyed contexts, kept for the next context instead of left to the GC (which frees
 * a dead SharedArrayBuffer only at some later major collection; see `Buf` below). `dirty`: how far the old
 * tenant may have written. Nothing of it is readable by the next one: its page map starts empty and every
 * allocation zeroes its pages below `dirty` before marking them. Offered only once nothing can still write to
 * it: EmulatedContext.destroy waits for every block worker that held the heap to exit (BlockPool.forget).
 */
export interface SpareWindow { buf: ArrayBufferLike; pages: ArrayBufferLike; dirty: number }
const spareWindows: SpareWindow[] = [];
const MAX_SPARE_WINDOWS = 2;

/**
 * Offers a released window (DeviceHeap.releaseAll) to the next context; call only once nothing can write to it.
 * The newest are kept: the next context most likely has the size of the last ones, and spares of another size
 * held the places while every window of the new size went to the GC (a run of 4 GiB contexts after a few of
 * 1 GiB then piled up and fork failed with ENOMEM, depending on when the GC ran).
 */
export function recycleWindow(w: SpareWindow): void {
  if (spareWindows.length >= MAX_SPARE_WINDOWS) spareWindows.shift();
  spareWindows.push(w);
}

export class DeviceHeap implements KernelHeap {
  /** Device address of heap offset 0. */
  readonly base: number;
  readonly vaBase: number;
  readonly vaSize: number;
  views: HeapViews;
  /** 1 where the 256-byte page belongs to a live allocation or global. */
  pages: Uint8Array;
  private allocs = new Map<number, number>();
  private globalsTop = 0;
  private used = 0;
  /** Heap bytes below this may hold old data; above it the buffer is still as calloc gave it (zero). */
  private dirtyTop = 0;
  /** The whole window is reserved: `views` and `pages` will not be replaced until releaseAll. */
  fixed = false;

  /**
   * SharedArrayBuffer only when block workers may run kernels over this heap. V8 frees a dead plain
   * ArrayBuffer promptly (it counts its bytes as external memory and collects), but a dead SAB only at some
   * later GC: a test run's destroyed contexts piled up whole 4 GiB windows, the kernel merged them into one
   * mapping larger than RAM, and every fork (spawn) of the process then failed with ENOMEM (measured).
   */
  private readonly Buf: new (n: number) => ArrayBufferLike;

  constructor(vaBase: number, vaSize: number, private readonly onUsage: (delta: number) => void, shared = false) {
    this.vaBase = vaBase;
    this.vaSize = Math.min(vaSize, MAX_HEAP - GLOBAL_WINDOW);
    this.base = vaBase - GLOBAL_WINDOW;
    this.Buf = shared ? SharedArrayBuffer : ArrayBuffer;
    this.views = makeViews(new this.Buf(1 << 20));
    this.pages = new Uint8Array(new this.Buf((1 << 20) >>> PAGE_SHIFT));
  }

  get length(): number { return this.views.buf.byteLength; }
  get bytesUsed(): number { return this.used; }

  private ensure(end: number): void {
    if (end <= this.length) return;
    if (end > MAX_HEAP) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, 'emulated device memory window exhausted');
    const window = Math.min(Math.ceil((GLOBAL_WINDOW + this.vaSize) / (1 << 20)) * (1 << 20), MAX_HEAP);
    let buf: ArrayBufferLike | null = null;
    let len = window;
    let recycled: SpareWindow | null = null;
    const i = this.Buf === SharedArrayBuffer && end <= window ? spareWindows.findIndex((w) => w.buf.byteLength === window) : -1;
    if (i >= 0) {
      const w = spareWindows.splice(i, 1)[0];
      buf = w.buf;
      recycled = w;
    } else if (end <= window) {
      try { buf = new this.Buf(window); } catch { /* no address space for the whole window: grow by doubling */ }
    }
    this.fixed = buf !== null;
    if (!buf) {
      len = Math.max(end, Math.min(this.length * 2, MAX_HEAP));
      len = Math.min(Math.ceil(len / (1 << 20)) * (1 << 20), MAX_HEAP);
      try { buf = new this.Buf(len); } catch (e) {
        throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `cannot grow emulated device memory to ${len} bytes`, { cause: e });
      }
    }
    // Only the written prefix needs copying; the rest of the old buffer is zero, as is the new one.
    if (this.dirtyTop > 0) new Uint8Array(buf, 0, this.dirtyTop).set(this.views.u8.subarray(0, this.dirtyTop));
    this.views = makeViews(buf);
    const pages = recycled ? new Uint8Array(recycled.pages).fill(0) : new Uint8Array(new this.Buf(len >>> PAGE_SHIFT));
    pages.set(this.pages);
    this.pages = pages;
    if (recycled) this.dirtyTop = Math.max(this.dirtyTop, recycled.dirty);
  }

  /**
   * New memory reads as zero, as the emulator always promised (real cudaMalloc does not, but tests and
   * programs may lean on it). Only a range that earlier allocations may have written needs clearing: the
   * untouched part is calloc's zero, and writing it would fault in every page for nothing.
   */
  private zero(off: number, end: number): void {
    // Whole pages: the page map lets a kernel touch the rest of an allocation's last page too.
    end = Math.min(Math.ceil(end / PAGE) * PAGE, this.length);
    if (off < this.dirtyTop) this.views.u8.fill(0, off, Math.min(end, this.dirtyTop));
    if (end > this.dirtyTop) this.dirtyTop = end;
  }

  private mark(off: number, size: number, v: number): void {
    this.pages.fill(v, off >>> PAGE_SHIFT, (off + size + PAGE - 1) >>> PAGE_SHIFT);
  }

  alloc(addr: number, size: number): void {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(size) || size <= 0 || addr % PAGE !== 0) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `alloc(${addr}, ${size}): address must be 256-byte aligned and size positive`);
    }
    if (addr < this.vaBase || addr + size > this.vaBase + this.vaSize) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `alloc(0x${addr.toString(16)}, ${size}) lies outside the context's va window`);
    }
    const off = addr - this.base;
    const pages = this.pages;
    for (let p = off >>> PAGE_SHIFT, e = (off + size + PAGE - 1) >>> PAGE_SHIFT; p < e && p < pages.length; p++) {
      if (pages[p]) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `alloc(0x${addr.toString(16)}, ${size}) overlaps a live allocation`);
    }
    this.ensure(off + size);
    this.zero(off, off + size);
    this.mark(off, size, 1);
    this.allocs.set(addr, size);
    this.used += size;
    this.onUsage(size);
  }

  free(addr: number): void {
    const size = this.allocs.get(addr);
    if (size === undefined) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `free(0x${addr.toString(16)}): not an allocation`);
    this.allocs.delete(addr);
    this.mark(addr - this.base, size, 0);
    this.used -= size;
    this.onUsage(-size);
  }

  /**
   * Drops every allocation (context teardown) and gives the memory back. Returns the whole shared window when it
   * can serve another context (see recycleWindow), else null.
   */
  releaseAll(): SpareWindow | null {
    this.onUsage(-this.used);
    this.used = 0;
    this.allocs.clear();
    const spare = this.fixed && this.Buf === SharedArrayBuffer ? { buf: this.views.buf, pages: this.pages.buffer, dirty: this.dirtyTop } : null;
    this.views = makeViews(new ArrayBuffer(0));
    this.pages = new Uint8Array(0);
    this.dirtyTop = 0;
    this.fixed = false;
    return spare;
  }

  /** Places a module variable in the globals window; returns its device address. */
  allocGlobal(size: number, align: number): number {
    const a = Math.max(align, PAGE);
    const off = Math.ceil(this.globalsTop / a) * a;
    const sz = Math.max(size, 1);
    if (off + sz > GLOBAL_WINDOW) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, 'module globals exceed the emulator globals window');
    this.ensure(off + sz);
    this.zero(off, off + sz);
    this.mark(off, sz, 1);
    this.globalsTop = off + sz;
    return this.base + off;
  }

  releaseGlobal(addr: number, size: number): void {
    this.mark(addr - this.base, Math.max(size, 1), 0);
  }

  /** Heap offset of [addr, addr+size) or throws ILLEGAL_ADDRESS; used by host copies and slow paths. */
  check(addr: number, size: number): number { return checkIn(this, addr, size); }

  fault(addr: number, size: number): never { heapFault(addr, size); }

  write(addr: number, src: Uint8Array): void {
    const off = this.check(addr, src.length);
    this.views.u8.set(src, off);
  }
  read(addr: number, dst: Uint8Array): void {
    const off = this.check(addr, dst.length);
    dst.set(this.views.u8.subarray(off, off + dst.length));
  }
  copy(dst: number, src: number, size: number): void {
    const d = this.check(dst, size);
    const s = this.check(src, size);
    this.views.u8.copyWithin(d, s, s + size);
  }
  memset(dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void {
    const rowBytes = width * elemSize;
    for (let y = 0; y < height; y++) {
      const a = dst + y * pitch;
      const off = this.check(a, rowBytes);
      if (elemSize === 1) this.views.u8.fill(value & 0xff, off, off + rowBytes);
      else {
        if (off % elemSize) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'memset destination is misaligned');
        if (elemSize === 2) this.views.u16.fill(value & 0xffff, off >>> 1, (off + rowBytes) >>> 1);
        else this.views.u32.fill(value >>> 0, off >>> 2, (off + rowBytes) >>> 2);
      }
    }
  }

  /** Reads a NUL-terminated string (printf formats and %s arguments), capped. */
  readCString(addr: number, max = 4096): string {
    let s = '';
    for (let i = 0; i < max; i++) {
      const off = this.check(addr + i, 1);
      const b = this.views.u8[off];
      if (b === 0) break;
      s += String.fromCharCode(b);
    }
    return s;
  }
}
