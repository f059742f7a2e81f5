// The emulated device and its per-session contexts (the Device/DeviceContext interface of the server).
// Stream model: one FIFO per context. A stream-ordered operation executes when it is enqueued, in call order,
// on the server thread, unless the context has work in flight: a large launch runs on the block workers
// (blockPool.ts) while the server thread goes on serving, and until it completes every later op of the
// context (copies, launches, alloc/free, event records) is queued behind it, in order. Reads, syncs and event
// waits resolve when the queue reaches them; hostView gives no view then (the server falls back to a read).
// Failures of queued ops become the context's sticky error (faults) or its deferred error (the next sync).

import {
  BackendEvent, BackendStream, CudaError, CUresult, Device, DeviceContext, DeviceInfo, LaunchConfig, ModuleInfo,
} from '../../server/src/backend';
import type { TextureDesc, TextureResource } from '../../server/src/backend';
import { texRegistry } from './texture';
import { DeviceHeap, GLOBAL_WINDOW, recycleWindow } from './memory';
import { DEFAULT_DYNAMIC_SHARED, LoadedModule, loadPtx } from './module';
import { runGrid, setMallocHeapSize, type CoopLimits, type GridConfig, type LaunchKernel } from './scheduler';
import type { BlockPool, SplitLaunch } from './blockPool';
import { choosePtx, extractImages } from './fatbin';

export interface EmulatorOptions {
  /** A kernel running longer than this ends with CUDA_ERROR_LAUNCH_TIMEOUT. */
  watchdogMs: number;
  /** Printf text kept per launch (the driver's FIFO default is 1 MiB). */
  printfLimit: number;
  /** Block workers for large launches; none: every launch runs on the server thread. */
  pool?: BlockPool | null;
  /** Launches of at least this many threads (blocks x threads per block) go to the workers. */
  splitMin?: number;
}

/** Below this much work the messages to and from the workers cost more than the parallelism gains. */
export const DEFAULT_SPLIT_MIN = 16384;

const VA_ROOT = 0x7f00_0000_0000;
const VA_STRIDE = 2 ** 36;
const MAX_SLOTS = 100_000;
/** CUfunction_attribute values we honour. */
const FUNC_ATTR_MAX_DYNAMIC_SHARED = 8;
const STICKY = new Set<number>([
  CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, CUresult.CUDA_ERROR_ASSERT,
  CUresult.CUDA_ERROR_LAUNCH_FAILED, CUresult.CUDA_ERROR_LAUNCH_TIMEOUT, CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION,
]);

const freeSlots: number[] = [];
let nextSlot = 0;
function takeSlot(): number {
  const s = freeSlots.pop() ?? nextSlot++;
  if (s >= MAX_SLOTS) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, 'too many emulator contexts');
  return s;
}

class EmuStream {
  destroyed = false;
}
class EmuEvent {
  time: number | null = null;
  /** Set while the record waits in the context's queue. */
  reached: Promise<void> | null = null;
  destroyed = false;
  constructor(readonly flags: number) {}
}

export class EmulatedDevice implements Device {
  private used = 0;
  constructor(readonly info: DeviceInfo, private readonly opts: EmulatorOptions) {}

  createContext(opts: { vaSize: number }): DeviceContext {
    if (!Number.isSafeInteger(opts.vaSize) || opts.vaSize <= 0) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'vaSize must be positive');
    return new EmulatedContext(this, takeSlot(), opts.vaSize, this.opts, (d) => { this.used += d; });
  }

  memUsed(): number { return this.used; }

  attr(i: number, fallback: number): number { return this.info.attributes[i] || fallback; }
}

const posInt = (v: number): boolean => Number.isInteger(v) && v >= 1;

/** Kernels the workers can run: compiled from source, and no texture objects (their registry lives here). */
function splittable(k: LaunchKernel): boolean {
  return k.src !== undefined && !k.crossCta && !k.usesMalloc && !k.src.includes('texRegistry');
}

/**
 * PTX that orders memory between CTAs (fences, volatile/relaxed/acquire loads, sleeps in wait loops): such a
 * kernel may wait for another CTA (a look-back scan, a last-block reduction, a lock). Inline, earlier CTAs
 * have always finished; on workers the wait would hang on a load the compiled code does not re-read.
 */
const CROSS_CTA = /\b(?:membar|fence|nanosleep)\b|\bld\.(?:volatile|relaxed|acquire)\b|\.acquire\b|\.acq_rel\b/;
/** The module declares device malloc or free (what new/delete become too). */
const USES_MALLOC = /\.extern\s+\.func\s*(?:\([^)]*\)\s*)?(?:malloc|free)\b/;
/** CUlimit: the device malloc heap's size. */
const CU_LIMIT_MALLOC_HEAP_SIZE = 2;
function bad(msg: string): never {
  throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, msg);
}

export class EmulatedContext implements DeviceContext {
  readonly va: { base: number; size: number };
  private heap: DeviceHeap | null;
  private sticky = 0;
  private modules = new Set<LoadedModule>();
  private streams = new Set<EmuStream>();
  private readonly grid: GridConfig;
  /** Per-SM residency limits (max blocks, threads, shared memory per SM) that bound a cooperative grid. */
  private readonly coopLimits: CoopLimits;
  /** The end of the context's queue while work is in flight; null when idle (ops then run at once). */
  private tail: Promise<void> | null = null;
  private queued = 0;
  /** The first failure of a queued op that is not a fault; the next synchronize reports it. */
  private asyncErr: CudaError | null = null;
  /** Abort cell of the split launch running now (destroy stops it). */
  private running: Int32Array | null = null;
  private readonly pool: BlockPool | null;
  private readonly splitMin: number;

  constructor(private readonly dev: EmulatedDevice, private readonly slot: number, vaSize: number,
    private readonly opts: EmulatorOptions, onUsage: (d: number) => void) {
    const base = VA_ROOT + slot * VA_STRIDE + GLOBAL_WINDOW;
    this.heap = new DeviceHeap(base, Math.min(vaSize, VA_STRIDE - GLOBAL_WINDOW), onUsage, !!opts.pool);
    this.va = { base, size: this.heap.vaSize };
    this.grid = {
      grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: new Uint8Array(0),
      smCount: dev.attr(16, 1), watchdogMs: opts.watchdogMs, printfLimit: opts.printfLimit,
    };
    this.coopLimits = { maxBlocksPerSm: dev.attr(106, 16), maxThreadsPerSm: dev.attr(39, 1024), sharedPerSm: dev.attr(81, 65536) };
    this.pool = opts.pool ?? null;
    this.splitMin = opts.splitMin ?? DEFAULT_SPLIT_MIN;
  }

  /** Queues `op` behind the work in flight; a failure becomes the sticky error (faults) or the deferred one. */
  private after(op: () => void | Promise<void>): void {
    this.queued++;
    // The context is idle again the moment its last op ends, before whoever awaited that op resumes.
    const done = (): void => { if (--this.queued === 0) this.tail = null; };
    const run = (): void | Promise<void> => {
      let r: void | Promise<void>;
      try {
        r = op();
      } catch (e) {
        this.failed(e);
        return done();
      }
      if (r) return r.then(done, (e: unknown) => { this.failed(e); done(); });
      done();
    };
    this.tail = (this.tail ?? Promise.resolve()).then(run);
  }

  private failed(e: unknown): void {
    const err = e instanceof CudaError ? e : new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, `emulator: ${(e as Error)?.message ?? e}`, { cause: e });
    if (STICKY.has(err.code)) { if (!this.sticky) this.sticky = err.code; } else if (!this.asyncErr) this.asyncErr = err;
  }

  /** What a synchronising call reports once the queue is drained. */
  private settle(): void {
    this.live();
    const e = this.asyncErr;
    if (e) { this.asyncErr = null; throw e; }
  }

  get stickyError(): number { return this.sticky; }

  private live(): DeviceHeap {
    if (!this.heap) throw new CudaError(CUresult.CUDA_ERROR_CONTEXT_IS_DESTROYED, 'context destroyed');
    if (this.sticky) throw new CudaError(this.sticky, 'the context is broken by an earlier fault');
    return this.heap;
  }

  /** Host copies with a bad device range fail like the driver's (INVALID_VALUE), synchronously. */
  private hostOp(f: (h: DeviceHeap) => void): void {
    const h = this.live();
    try {
      f(h);
    } catch (e) {
      if (e instanceof CudaError && e.code === CUresult.CUDA_ERROR_ILLEGAL_ADDRESS) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, e.message);
      throw e;
    }
  }

  private checkStream(s: BackendStream | null): void {
    if (s !== null && s !== undefined && (!(s instanceof EmuStream) || s.destroyed || !this.streams.has(s))) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, 'unknown stream');
    }
  }

  // With work in flight an op waits its turn, and a device range it names may only become valid (or stop
  // being so) through the queued ops before it: so it is checked when it runs, and a failure is deferred.
  alloc(addr: number, size: number): void {
    const h = this.live();
    if (this.tail) this.after(() => this.live().alloc(addr, size));
    else h.alloc(addr, size);
  }
  free(addr: number): void {
    const h = this.live();
    if (this.tail) this.after(() => this.live().free(addr));
    else h.free(addr);
  }

  /** Runs a host copy now, or queues it (the caller's buffers are its own again when this returns: copy them first). */
  private hostOrQueue(f: (h: DeviceHeap) => void): void {
    if (this.tail) { this.live(); this.after(() => this.hostOp(f)); } else this.hostOp(f);
  }
  /** A read resolves when the queue reaches it; the caller keeps `dst` until then. */
  private readOp(f: (h: DeviceHeap) => void): Promise<void> {
    if (!this.tail) {
      this.hostOp(f);
      return Promise.resolve();
    }
    this.live();
    return new Promise<void>((resolve, reject) => this.after(() => {
      try { this.hostOp(f); resolve(); } catch (e) { reject(e); }
    }));
  }

  enqueueWrite(stream: BackendStream, dst: number, src: Uint8Array): void {
    this.checkStream(stream);
    const data = this.tail ? src.slice() : src;
    this.hostOrQueue((h) => h.write(dst, data));
  }
  enqueueRead(stream: BackendStream, src: number, dst: Uint8Array): Promise<void> {
    try {
      this.checkStream(stream);
      return this.readOp((h) => h.read(src, dst));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  hostView(stream: BackendStream, addr: number, size: number): Uint8Array | null {
    this.checkStream(stream);
    // Memory a launch in flight may be writing has no stable view: the caller reads or writes through the queue.
    if (this.tail) { this.live(); return null; }
    let off = 0;
    this.hostOp((h) => { off = h.check(addr, size); });
    // Every op ran when enqueued, so the heap at this moment is exactly what the stream order says.
    return this.heap!.views.u8.subarray(off, off + size);
  }
  enqueueCopy(stream: BackendStream, dst: number, src: number, size: number): void {
    this.checkStream(stream);
    this.hostOrQueue((h) => h.copy(dst, src, size));
  }
  enqueueWrite2D(stream: BackendStream, dst: number, dpitch: number, src: Uint8Array, width: number, height: number): void {
    this.checkStream(stream);
    if (src.length < width * height) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'host buffer smaller than width*height');
    const data = this.tail ? src.slice(0, width * height) : src;
    this.hostOrQueue((h) => { for (let y = 0; y < height; y++) h.write(dst + y * dpitch, data.subarray(y * width, (y + 1) * width)); });
  }
  enqueueRead2D(stream: BackendStream, src: number, spitch: number, dst: Uint8Array, width: number, height: number): Promise<void> {
    try {
      this.checkStream(stream);
      if (dst.length < width * height) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'host buffer smaller than width*height');
      return this.readOp((h) => { for (let y = 0; y < height; y++) h.read(src + y * spitch, dst.subarray(y * width, (y + 1) * width)); });
    } catch (e) {
      return Promise.reject(e);
    }
  }
  enqueueCopy2D(stream: BackendStream, dst: number, dpitch: number, src: number, spitch: number, width: number, height: number): void {
    this.checkStream(stream);
    this.hostOrQueue((h) => { for (let y = 0; y < height; y++) h.copy(dst + y * dpitch, src + y * spitch, width); });
  }
  enqueueMemset(stream: BackendStream, dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void {
    this.checkStream(stream);
    this.hostOrQueue((h) => h.memset(dst, value, elemSize, width, height, pitch));
  }

  createTexObject(handle: number, res: TextureResource, desc: TextureDesc): void { texRegistry(this.live()).createTex(handle, res, desc); }
  destroyTexObject(handle: number): void { texRegistry(this.live()).destroyTex(handle); }
  createSurfObject(handle: number, res: TextureResource): void { texRegistry(this.live()).createSurf(handle, res); }
  destroySurfObject(handle: number): void { texRegistry(this.live()).destroySurf(handle); }

  loadModule(image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin', name: string): { handle: unknown; info: ModuleInfo } {
    const heap = this.live();
    let text: string;
    if (kind === 'cubin') {
      throw new CudaError(CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU, `${name}: the emulated device runs PTX; rebuild with PTX (e.g. -gencode arch=compute_75,code=compute_75)`);
    } else if (kind === 'fatbin') {
      let images;
      try {
        images = extractImages(image);
      } catch (e) {
        throw new CudaError(CUresult.CUDA_ERROR_INVALID_IMAGE, `${name}: ${(e as Error).message}`, { cause: e });
      }
      const sm = this.dev.info.ccMajor * 10 + this.dev.info.ccMinor;
      const ptx = choosePtx(images, sm);
      if (!ptx) {
        throw new CudaError(CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU, `${name}: the fatbin has no PTX for sm_${sm} or lower; the emulated device needs PTX (compile with -gencode arch=compute_XX,code=compute_XX)`);
      }
      text = Buffer.from(ptx.data.buffer, ptx.data.byteOffset, ptx.data.byteLength).toString('latin1');
    } else {
      let end = image.length;
      while (end > 0 && image[end - 1] === 0) end--;
      text = Buffer.from(image.buffer, image.byteOffset, end).toString('latin1');
    }
    const mod = loadPtx(text, heap);
    if (CROSS_CTA.test(text)) for (const k of mod.kernels) k.crossCta = true;
    if (USES_MALLOC.test(text)) for (const k of mod.kernels) k.usesMalloc = true;
    this.modules.add(mod);
    return { handle: mod, info: mod.info };
  }

  private module(handle: unknown): LoadedModule {
    const m = handle as LoadedModule;
    if (!this.modules.has(m)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, 'unknown module');
    return m;
  }

  unloadModule(handle: unknown): void {
    const m = this.module(handle);
    this.modules.delete(m);
    const release = (): void => {
      for (const g of m.globals) this.heap?.releaseGlobal(g.addr, g.size);
      this.pool?.forget(m.kernels, null);
    };
    if (this.tail) this.after(release); else release();
  }

  /** CU_LIMIT_MALLOC_HEAP_SIZE sizes the device-malloc arena, made at the first launch that needs it. */
  setLimit(limit: number, value: number): void {
    if (limit === CU_LIMIT_MALLOC_HEAP_SIZE && this.heap) setMallocHeapSize(this.heap, value);
  }

  setKernelAttribute(module: unknown, kernel: number, attr: number, value: number): void {
    const k = this.module(module).kernels[kernel];
    if (!k) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `kernel index ${kernel}`);
    if (attr === FUNC_ATTR_MAX_DYNAMIC_SHARED) {
      const optin = this.dev.attr(97, DEFAULT_DYNAMIC_SHARED);
      if (value < 0 || value + k.sharedStatic > optin) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `max dynamic shared memory ${value} exceeds the device's ${optin}`);
      k.maxDynamicShared = value;
      k.info.attrs.maxDynamicSharedSizeBytes = value;
    }
  }

  launch(stream: BackendStream, module: unknown, kernel: number, cfg: LaunchConfig, onPrintf: (text: string) => void): void {
    const heap = this.live();
    this.checkStream(stream);
    const k = this.module(module).kernels[kernel];
    if (!k) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `kernel index ${kernel}`);
    this.validate(k.maxThreads, k.sharedStatic, k.maxDynamicShared, k.info.paramSize, cfg);
    const nblocks = cfg.grid[0] * cfg.grid[1] * cfg.grid[2];
    if (this.pool && !cfg.cooperative && heap.fixed && nblocks > 1 && nblocks * cfg.block[0] * cfg.block[1] * cfg.block[2] >= this.splitMin && splittable(k)) {
      this.launchSplit(this.pool, k, heap, cfg, onPrintf);
      return;
    }
    // A cooperative launch keeps every CTA resident (runGrid refuses a grid larger than the device holds at
    // once); a grid-sync kernel launched without the flag traps, as on hardware.
    const cooperative = cfg.cooperative ? this.coopLimits : undefined;
    if (this.tail) {
      // Queued: the caller's config and params are reused by its next launch.
      const g: GridConfig = { ...this.grid, grid: [...cfg.grid], block: [...cfg.block], sharedMem: cfg.sharedMem, params: cfg.params.slice(), cooperative };
      this.after(() => { if (this.heap && !this.sticky) this.runInline(k, this.heap, g, onPrintf); });
      return;
    }
    // One config object per context, refilled per launch: runGrid runs to completion before returning.
    const g = this.grid;
    g.grid = cfg.grid; g.block = cfg.block; g.sharedMem = cfg.sharedMem; g.params = cfg.params;
    g.cooperative = cooperative;
    this.runInline(k, heap, g, onPrintf);
  }

  /** Hands a large launch to the block workers; the context's later ops queue behind it. */
  private launchSplit(pool: BlockPool, k: LaunchKernel, heap: DeviceHeap, cfg: LaunchConfig, onPrintf: (text: string) => void): void {
    const abort = new Int32Array(new SharedArrayBuffer(4));
    const L: SplitLaunch = {
      kernel: k, heap, grid: [...cfg.grid], block: [...cfg.block], sharedMem: cfg.sharedMem, params: cfg.params.slice(),
      smCount: this.grid.smCount, watchdogMs: this.opts.watchdogMs, printfLimit: this.opts.printfLimit, abort,
    };
    this.after(() => {
      if (!this.heap || this.sticky) return undefined;
      this.running = abort;
      return pool.run(L).then((text) => {
        this.running = null;
        if (text) onPrintf(text);
      }, (e: CudaError & { printf?: string }) => {
        this.running = null;
        if (e.printf) onPrintf(e.printf);
        throw e;
      });
    });
  }

  private runInline(k: LaunchKernel, heap: DeviceHeap, g: GridConfig, onPrintf: (text: string) => void): void {
    try {
      const text = runGrid(k, heap, g);
      if (text) onPrintf(text);
    } catch (e) {
      const printed = (e as { printf?: string }).printf;
      if (printed) onPrintf(printed);
      if (e instanceof CudaError && STICKY.has(e.code)) { this.sticky = e.code; return; }
      throw e;
    }
  }

  private validate(maxThreads: number, staticShared: number, maxDyn: number, paramSize: number, cfg: LaunchConfig): void {
    const bx = cfg.block[0], by = cfg.block[1], bz = cfg.block[2];
    const gx = cfg.grid[0], gy = cfg.grid[1], gz = cfg.grid[2];
    const d = this.dev;
    if (!(posInt(bx) && posInt(by) && posInt(bz) && posInt(gx) && posInt(gy) && posInt(gz))) bad('grid and block dimensions must be positive integers');
    if (bx > d.attr(2, 1024) || by > d.attr(3, 1024) || bz > d.attr(4, 64)) bad(`block (${bx},${by},${bz}) exceeds the device's block dimensions`);
    if (bx * by * bz > Math.min(d.attr(1, 1024), maxThreads)) bad(`block of ${bx * by * bz} threads exceeds the limit of ${Math.min(d.attr(1, 1024), maxThreads)}`);
    if (gx > d.attr(5, 2147483647) || gy > d.attr(6, 65535) || gz > d.attr(7, 65535)) bad(`grid (${gx},${gy},${gz}) exceeds the device's grid dimensions`);
    if (!Number.isInteger(cfg.sharedMem) || cfg.sharedMem < 0 || cfg.sharedMem > maxDyn) bad(`dynamic shared memory ${cfg.sharedMem} exceeds the kernel's limit of ${maxDyn}`);
    if (staticShared + cfg.sharedMem > d.attr(97, DEFAULT_DYNAMIC_SHARED)) bad('shared memory exceeds the device limit');
    if (cfg.params.length < paramSize) bad(`parameter buffer is ${cfg.params.length} bytes; the kernel takes ${paramSize}`);
  }

  createStream(): BackendStream {
    this.live();
    const s = new EmuStream();
    this.streams.add(s);
    return s;
  }
  destroyStream(s: BackendStream): void {
    this.checkStream(s);
    (s as EmuStream).destroyed = true;
    this.streams.delete(s as EmuStream);
  }

  synchronize(stream: BackendStream | null): Promise<void> {
    try {
      this.checkStream(stream);
      this.live();
      if (this.tail) return this.tail.then(() => this.settle());
      this.settle();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
  query(stream: BackendStream | null): boolean {
    this.checkStream(stream);
    this.live();
    return this.tail === null;
  }

  createEvent(flags: number): BackendEvent { this.live(); return new EmuEvent(flags); }
  private event(e: BackendEvent): EmuEvent {
    if (!(e instanceof EmuEvent) || e.destroyed) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, 'unknown event');
    return e;
  }
  destroyEvent(e: BackendEvent): void { this.event(e).destroyed = true; }
  recordEvent(e: BackendEvent, stream: BackendStream): void {
    this.checkStream(stream);
    this.live();
    const ev = this.event(e);
    if (!this.tail) {
      ev.time = performance.now();
      ev.reached = null;
      return;
    }
    // Reached when the work queued before it is done (callbacks on the tail run before later ops start).
    ev.time = null;
    const r: Promise<void> = this.tail.then(() => {
      ev.time = performance.now();
      if (ev.reached === r) ev.reached = null;
    });
    ev.reached = r;
  }
  streamWaitEvent(stream: BackendStream, e: BackendEvent): void { this.checkStream(stream); this.event(e); }
  synchronizeEvent(e: BackendEvent): Promise<void> {
    try {
      const ev = this.event(e);
      this.live();
      if (ev.reached) return ev.reached.then(() => { this.live(); });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
  queryEvent(e: BackendEvent): boolean { const ev = this.event(e); this.live(); return ev.reached === null; }
  elapsed(start: BackendEvent, end: BackendEvent): number {
    const a = this.event(start), b = this.event(end);
    if (a.time === null || b.time === null) throw new CudaError(CUresult.CUDA_ERROR_NOT_READY, 'event not recorded');
    if (a.flags & 2 || b.flags & 2) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, 'event created with CU_EVENT_DISABLE_TIMING');
    return b.time - a.time;
  }

  destroy(): void {
    if (!this.heap) return;
    const heap = this.heap;
    const mods = [...this.modules];
    this.modules.clear();
    this.heap = null;
    // A launch in flight stops at its next watchdog check; the memory and the slot are given back after it.
    if (this.running) Atomics.store(this.running, 0, 1);
    const release = (): void => {
      for (const m of mods) for (const g of m.globals) heap.releaseGlobal(g.addr, g.size);
      const workersGone = this.pool?.forget(mods.flatMap((m) => m.kernels), heap) ?? null;
      const spare = heap.releaseAll();
      if (spare && workersGone) void workersGone.then(() => recycleWindow(spare));
      else if (spare) recycleWindow(spare);
      freeSlots.push(this.slot);
    };
    if (this.tail) void this.tail.then(release); else release();
  }
}
