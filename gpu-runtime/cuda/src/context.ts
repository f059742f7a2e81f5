// One session's context on a real GPU (DeviceContext over the driver API).
//
// - Each session gets its OWN CUcontext (cuCtxCreate), not the primary context: a fault is sticky for the
//   context it happens in, so one session's illegal address must not break the others on the same GPU.
// - Every call from the server comes on the main thread; `enter()` makes this context current there (cached,
//   so it costs nothing when one session is busy). Blocking waits run as koffi .async cuEventSynchronize on a
//   worker thread: events need no current context, and the event loop never blocks.
// - The backend's "null" stream is a stream we create per context, so waits never depend on the legacy NULL
//   stream (which only exists relative to a thread's current context). Context-wide synchronisation joins
//   every stream of the context into it with events. The legacy NULL stream's implicit ordering against
//   blocking streams (created without CU_STREAM_NON_BLOCKING) is rebuilt with events in `order`, and costs
//   nothing while a program uses the default stream alone.
// - Device printf: the real driver writes printf output to the process's own stdout at synchronisation points,
//   so `onPrintf` is never called here; the worker backend (workerBackend.ts) runs one context per process and
//   reads that stdout (see the note at the top of backend.ts).

import { BackendEvent, BackendStream, CudaError, DeviceContext, LaunchConfig, ModuleInfo } from '../../server/src/backend';
import { RangeTable } from '../../server/src/ranges';
import { Driver, freeNative } from './binding';
import { LaunchArgs, memcpy2D } from './marshal';
import { loadModule, LoadedModule } from './moduleLoader';
import { StagingPool } from './staging';
import { VaWindow } from './vaWindow';

const CUDA_ERROR_INVALID_VALUE = 1;
const CUDA_ERROR_INVALID_HANDLE = 400;
const CUDA_ERROR_NOT_READY = 600;
const CU_EVENT_DISABLE_TIMING = 2;
const CU_STREAM_NON_BLOCKING = 1;
/** Faults that break a context for good (the driver itself keeps returning them). */
const STICKY = new Set([700, 702, 710, 714, 715, 716, 717, 718, 719]);
/** CUDA's limit on kernel parameter bytes (since 12.1). */
const MAX_PARAM_BYTES = 32764;
const CU_MEMORYTYPE_HOST = 1;
const CU_MEMORYTYPE_DEVICE = 2;

class CudaStream {
  /** Default-stream epoch this stream last waited for (legacy ordering, see `order`). */
  seenEpoch = 0;
  constructor(readonly handle: bigint, readonly syncEvent: bigint, readonly joinEvent: bigint, readonly blocking: boolean) {}
}
class CudaEvent {
  constructor(readonly handle: bigint) {}
}
class CudaModule {
  constructor(readonly loaded: LoadedModule) {}
}

export class CudaContext implements DeviceContext {
  readonly va: { base: number; size: number };
  private readonly window: VaWindow;
  private readonly staging: StagingPool;
  private readonly args = new LaunchArgs();
  private readonly defaultStream: CudaStream;
  private readonly streams = new Set<CudaStream>();
  private readonly events = new Set<CudaEvent>();
  private readonly modules = new Set<CudaModule>();
  /** Device ranges of module globals (outside the window, placed by the driver): valid copy targets too. */
  private readonly globalRanges = new RangeTable();
  /** Blocking streams with work enqueued since the default stream last waited for them. */
  private readonly unjoined = new Set<CudaStream>();
  /** Bumped whenever work goes to the default stream; blocking streams wait for it before their next work. */
  private defaultEpoch = 0;
  private deferred = 0;
  private sticky = 0;
  private destroyed = false;

  constructor(private readonly drv: Driver, readonly ctx: bigint, device: number, vaSize: number, private readonly onDestroy: () => void) {
    drv.setCurrent(ctx);
    this.window = new VaWindow(drv, device, vaSize);
    this.va = { base: this.window.base, size: this.window.size };
    this.staging = new StagingPool(drv);
    this.defaultStream = this.newStream(0, 0);
  }

  get stickyError(): number {
    return this.sticky;
  }

  get mappedBytes(): number {
    return this.destroyed ? 0 : this.window.mappedBytes;
  }

  // --- memory ------------------------------------------------------------------------------------
  alloc(addr: number, size: number): void {
    this.enter();
    this.window.alloc(addr, size);
  }

  free(addr: number): void {
    this.enter();
    this.window.free(addr);
  }

  enqueueWrite(stream: BackendStream, dst: number, src: Uint8Array): void {
    const s = this.enterStream(stream);
    this.checkRange(dst, src.length);
    const chunk = this.staging.chunk;
    for (let off = 0; off < src.length; off += chunk) {
      const n = Math.min(chunk, src.length - off);
      const buf = this.staging.acquire(n);
      buf.bytes.set(src.subarray(off, off + n));
      this.record(this.drv.fn.cuMemcpyHtoDAsync_v2(dst + off, buf.addr, n, s.handle));
      this.staging.releaseAfter(buf, s.handle);
    }
  }

  async enqueueRead(stream: BackendStream, src: number, dst: Uint8Array): Promise<void> {
    const s = this.enterStream(stream);
    this.checkRange(src, dst.length);
    const bufs = [];
    try {
      for (let off = 0; off < dst.length; off += this.staging.chunk) {
        const n = Math.min(this.staging.chunk, dst.length - off);
        const buf = this.staging.acquire(n);
        bufs.push({ buf, off, n });
        this.record(this.drv.fn.cuMemcpyDtoHAsync_v2(buf.addr, src + off, n, s.handle));
      }
      await this.waitStream(s);
      for (const { buf, off, n } of bufs) dst.set(buf.bytes.subarray(0, n), off);
    } finally {
      for (const { buf } of bufs) this.staging.releaseIdle(buf);
    }
  }

  enqueueCopy(stream: BackendStream, dst: number, src: number, size: number): void {
    const s = this.enterStream(stream);
    this.checkRange(dst, size);
    this.checkRange(src, size);
    this.record(this.drv.fn.cuMemcpyDtoDAsync_v2(dst, src, size, s.handle));
  }

  enqueueWrite2D(stream: BackendStream, dst: number, dpitch: number, src: Uint8Array, width: number, height: number): void {
    const s = this.enterStream(stream);
    this.check2D(dst, dpitch, width, height, src.length);
    const buf = this.staging.acquire(width * height);
    buf.bytes.set(src.subarray(0, width * height));
    this.record(this.drv.fn.cuMemcpy2DAsync_v2(memcpy2D(CU_MEMORYTYPE_HOST, buf.addr, 0, width, CU_MEMORYTYPE_DEVICE, 0n, dst, dpitch, width, height), s.handle));
    this.staging.releaseAfter(buf, s.handle);
  }

  async enqueueRead2D(stream: BackendStream, src: number, spitch: number, dst: Uint8Array, width: number, height: number): Promise<void> {
    const s = this.enterStream(stream);
    this.check2D(src, spitch, width, height, dst.length);
    const buf = this.staging.acquire(width * height);
    try {
      this.record(this.drv.fn.cuMemcpy2DAsync_v2(memcpy2D(CU_MEMORYTYPE_DEVICE, 0n, src, spitch, CU_MEMORYTYPE_HOST, buf.addr, 0, width, width, height), s.handle));
      await this.waitStream(s);
      dst.set(buf.bytes.subarray(0, width * height));
    } finally {
      this.staging.releaseIdle(buf);
    }
  }

  enqueueCopy2D(stream: BackendStream, dst: number, dpitch: number, src: number, spitch: number, width: number, height: number): void {
    const s = this.enterStream(stream);
    this.check2D(dst, dpitch, width, height, width * height);
    this.check2D(src, spitch, width, height, width * height);
    this.record(this.drv.fn.cuMemcpy2DAsync_v2(memcpy2D(CU_MEMORYTYPE_DEVICE, 0n, src, spitch, CU_MEMORYTYPE_DEVICE, 0n, dst, dpitch, width, height), s.handle));
  }

  enqueueMemset(stream: BackendStream, dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void {
    const s = this.enterStream(stream);
    const f = this.drv.fn;
    if (height <= 1) {
      this.checkRange(dst, width * elemSize);
      const set = elemSize === 1 ? f.cuMemsetD8Async : elemSize === 2 ? f.cuMemsetD16Async : f.cuMemsetD32Async;
      this.record(set(dst, value, width, s.handle));
      return;
    }
    this.check2D(dst, pitch, width * elemSize, height, Infinity);
    const set2D = elemSize === 1 ? f.cuMemsetD2D8Async : elemSize === 2 ? f.cuMemsetD2D16Async : f.cuMemsetD2D32Async;
    this.record(set2D(dst, pitch, value, width, height, s.handle));
  }

  // --- modules -----------------------------------------------------------------------------------
  loadModule(image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin', _name: string): { handle: unknown; info: ModuleInfo } {
    this.enter();
    const loaded = loadModule(this.drv, image, kind);
    const mod = new CudaModule(loaded);
    this.modules.add(mod);
    for (const g of loaded.info.globals) this.globalRanges.add(g.addr, g.size);
    return { handle: mod, info: loaded.info };
  }

  unloadModule(handle: unknown): void {
    this.enter();
    const mod = this.module(handle);
    this.modules.delete(mod);
    for (const g of mod.loaded.info.globals) this.globalRanges.remove(g.addr);
    this.drv.check(this.drv.fn.cuModuleUnload(mod.loaded.handle), 'cuModuleUnload');
  }

  setLimit(limit: number, value: number): void {
    this.enter();
    this.drv.check(this.drv.fn.cuCtxSetLimit(limit, value), 'cuCtxSetLimit');
  }

  setKernelAttribute(module: unknown, kernel: number, attr: number, value: number): void {
    this.enter();
    this.drv.check(this.drv.fn.cuFuncSetAttribute(this.fn(module, kernel), attr, value), 'cuFuncSetAttribute');
  }

  launch(stream: BackendStream, module: unknown, kernel: number, cfg: LaunchConfig, _onPrintf: (text: string) => void): void {
    const s = this.enterStream(stream);
    const fn = this.fn(module, kernel);
    const info = this.module(module).loaded.info.kernels[kernel];
    // Clients may send a padded buffer; the driver wants exactly the kernel's parameter size.
    const params = cfg.params.length > info.paramSize ? cfg.params.subarray(0, info.paramSize) : cfg.params;
    if (params.length > MAX_PARAM_BYTES) throw new CudaError(CUDA_ERROR_INVALID_VALUE, `${params.length} parameter bytes`);
    const a = this.args;
    a.setParams(params);
    // Indexing, not destructuring: array destructuring goes through the iterator protocol on this hot path.
    const g = cfg.grid;
    const b = cfg.block;
    if (cfg.cooperative) {
      // cuLaunchCooperativeKernel takes no `extra`: pass a pointer per parameter into the packed buffer.
      a.setPointers(info.params);
      this.record(this.drv.fn.cuLaunchCooperativeKernel(fn, g[0], g[1], g[2], b[0], b[1], b[2], cfg.sharedMem, s.handle, a.pointersAddr));
    } else {
      this.record(this.drv.fn.cuLaunchKernel(fn, g[0], g[1], g[2], b[0], b[1], b[2], cfg.sharedMem, s.handle, 0n, a.extraAddr));
    }
  }

  // --- streams and events ------------------------------------------------------------------------
  createStream(flags: number, priority: number): BackendStream {
    this.enter();
    const s = this.newStream(flags, priority);
    this.streams.add(s);
    return s;
  }

  destroyStream(stream: BackendStream): void {
    this.enter();
    const s = this.stream(stream);
    if (s === this.defaultStream) throw new CudaError(CUDA_ERROR_INVALID_HANDLE, 'cannot destroy the default stream');
    // Keep the default stream ordered after the stream's last work before it goes.
    if (this.unjoined.has(s)) this.order(this.defaultStream);
    this.streams.delete(s);
    // The driver defers the destruction until the stream's work is done.
    this.drv.fn.cuStreamDestroy_v2(s.handle);
    this.drv.fn.cuEventDestroy_v2(s.syncEvent);
    this.drv.fn.cuEventDestroy_v2(s.joinEvent);
  }

  async synchronize(stream: BackendStream | null): Promise<void> {
    if (stream !== null) return this.waitStream(this.enterStream(stream, false));
    this.enter();
    const f = this.drv.fn;
    // Join every stream into the default one, then wait for that.
    for (const s of this.streams) {
      this.record(f.cuEventRecord(s.syncEvent, s.handle));
      this.record(f.cuStreamWaitEvent(this.defaultStream.handle, s.syncEvent, 0));
    }
    return this.waitStream(this.defaultStream);
  }

  query(stream: BackendStream | null): boolean {
    this.enter();
    const all = stream === null ? [this.defaultStream, ...this.streams] : [this.stream(stream)];
    return all.every((s) => this.drv.fn.cuStreamQuery(s.handle) !== CUDA_ERROR_NOT_READY);
  }

  createEvent(flags: number): BackendEvent {
    this.enter();
    this.drv.check(this.drv.fn.cuEventCreate(this.drv.out, flags), 'cuEventCreate');
    const e = new CudaEvent(this.drv.readU64());
    this.events.add(e);
    return e;
  }

  destroyEvent(e: BackendEvent): void {
    this.enter();
    const ev = this.event(e);
    this.events.delete(ev);
    this.drv.fn.cuEventDestroy_v2(ev.handle);
  }

  recordEvent(e: BackendEvent, stream: BackendStream): void {
    const s = this.enterStream(stream);
    this.record(this.drv.fn.cuEventRecord(this.event(e).handle, s.handle));
  }

  streamWaitEvent(stream: BackendStream, e: BackendEvent): void {
    const s = this.enterStream(stream);
    this.record(this.drv.fn.cuStreamWaitEvent(s.handle, this.event(e).handle, 0));
  }

  async synchronizeEvent(e: BackendEvent): Promise<void> {
    this.enter();
    await this.settle(await this.drv.eventSynchronize(this.event(e).handle));
  }

  queryEvent(e: BackendEvent): boolean {
    this.enter();
    return this.drv.fn.cuEventQuery(this.event(e).handle) !== CUDA_ERROR_NOT_READY;
  }

  elapsed(start: BackendEvent, end: BackendEvent): number {
    this.enter();
    this.drv.check(this.drv.fn.cuEventElapsedTime(this.drv.out, this.event(start).handle, this.event(end).handle), 'cuEventElapsedTime');
    return this.drv.out.readFloatLE(0);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const f = this.drv.fn;
    // Through the cache, so that forgetCurrent below leaves it truthful for the other contexts.
    try {
      this.drv.setCurrent(this.ctx);
    } catch {
      // A faulted context still gets destroyed; the calls below report nothing we could act on.
    }
    // Teardown may wait for running work (the driver synchronises in unmap and context destruction).
    this.window.destroy();
    this.staging.destroy();
    freeNative(this.args.native);
    f.cuCtxDestroy_v2(this.ctx);
    this.drv.forgetCurrent(this.ctx);
    this.onDestroy();
  }

  // --- helpers -----------------------------------------------------------------------------------
  private enter(): void {
    if (this.destroyed) throw new CudaError(201, 'context destroyed');
    if (this.sticky) throw new CudaError(this.sticky, 'the context has faulted');
    this.drv.setCurrent(this.ctx);
  }

  /** The stream to enqueue on, ordered as the legacy NULL stream would order it unless `ordered` is false. */
  private enterStream(stream: BackendStream, ordered = true): CudaStream {
    this.enter();
    const s = stream === null ? this.defaultStream : this.stream(stream);
    if (ordered) this.order(s);
    return s;
  }

  /**
   * Legacy default-stream semantics: work on the default stream waits for all earlier work on blocking
   * streams, and work on a blocking stream waits for all earlier work on the default stream.
   */
  private order(s: CudaStream): void {
    const f = this.drv.fn;
    if (s === this.defaultStream) {
      this.defaultEpoch++;
      if (this.unjoined.size === 0) return; // the common case: no iterator allocated
      for (const b of this.unjoined) {
        this.record(f.cuEventRecord(b.joinEvent, b.handle));
        this.record(f.cuStreamWaitEvent(s.handle, b.joinEvent, 0));
      }
      this.unjoined.clear();
      return;
    }
    if (!s.blocking) return;
    if (s.seenEpoch !== this.defaultEpoch) {
      const d = this.defaultStream;
      this.record(f.cuEventRecord(d.joinEvent, d.handle));
      this.record(f.cuStreamWaitEvent(s.handle, d.joinEvent, 0));
      s.seenEpoch = this.defaultEpoch;
    }
    this.unjoined.add(s);
  }

  /** A stream-ordered call's result: failures become the deferred (or sticky) error. */
  private record(rc: number): void {
    if (rc === 0) return;
    if (STICKY.has(rc)) this.sticky ||= rc;
    else this.deferred ||= rc;
  }

  private async waitStream(s: CudaStream): Promise<void> {
    this.record(this.drv.fn.cuEventRecord(s.syncEvent, s.handle));
    await this.settle(await this.drv.eventSynchronize(s.syncEvent));
  }

  /** After a wait: reject with the sticky error, the wait's own error, or the deferred one (then cleared). */
  private async settle(rc: number): Promise<void> {
    this.record(rc);
    if (this.sticky) throw new CudaError(this.sticky, this.drv.errorName(this.sticky));
    const code = this.deferred;
    this.deferred = 0;
    if (code) throw new CudaError(code, this.drv.errorName(code));
  }

  private newStream(flags: number, priority: number): CudaStream {
    const { drv } = this;
    drv.check(drv.fn.cuStreamCreateWithPriority(drv.out, flags, priority), 'cuStreamCreateWithPriority');
    const handle = drv.readU64();
    const events: bigint[] = [];
    for (let i = 0; i < 2; i++) {
      const rc = drv.fn.cuEventCreate(drv.out, CU_EVENT_DISABLE_TIMING);
      if (rc !== 0) {
        for (const e of events) drv.fn.cuEventDestroy_v2(e);
        drv.fn.cuStreamDestroy_v2(handle);
        drv.check(rc, 'cuEventCreate');
      }
      events.push(drv.readU64());
    }
    const blocking = (flags & CU_STREAM_NON_BLOCKING) === 0;
    const s = new CudaStream(handle, events[0], events[1], blocking);
    s.seenEpoch = this.defaultEpoch;
    return s;
  }

  private stream(s: BackendStream): CudaStream {
    if (s instanceof CudaStream && (s === this.defaultStream || this.streams.has(s))) return s;
    throw new CudaError(CUDA_ERROR_INVALID_HANDLE, 'unknown stream');
  }

  private event(e: BackendEvent): CudaEvent {
    if (e instanceof CudaEvent && this.events.has(e)) return e;
    throw new CudaError(CUDA_ERROR_INVALID_HANDLE, 'unknown event');
  }

  private module(m: unknown): CudaModule {
    if (m instanceof CudaModule && this.modules.has(m)) return m;
    throw new CudaError(CUDA_ERROR_INVALID_HANDLE, 'unknown module');
  }

  private fn(module: unknown, kernel: number): bigint {
    const fn = this.module(module).loaded.functions[kernel];
    if (fn === undefined) throw new CudaError(CUDA_ERROR_INVALID_HANDLE, `no kernel #${kernel}`);
    return fn;
  }

  private checkRange(addr: number, size: number): void {
    if (size === 0 || this.window.contains(addr, size) || this.globalRanges.contains(addr, size)) return;
    throw new CudaError(CUDA_ERROR_INVALID_VALUE, `[0x${addr.toString(16)}, +${size}) is not inside an allocation of this session`);
  }

  private check2D(addr: number, pitch: number, width: number, height: number, hostBytes: number): void {
    if (height === 0 || width === 0) return;
    if (pitch < width || hostBytes < width * height) throw new CudaError(CUDA_ERROR_INVALID_VALUE, 'bad 2D copy geometry');
    this.checkRange(addr, pitch * (height - 1) + width);
  }
}
