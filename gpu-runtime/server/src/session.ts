// One leased device context and everything a client created on it. The Session is the only owner of a
// client's handles and memory ranges: every op names things through it, so a session can reach nothing of
// another's, and destroy() is the single place that gives it all back.
import { CudaError, CUresult, type BackendEvent, type BackendStream, type DeviceContext, type ModuleInfo } from './backend';
import type { Lane } from './lane';
import type { Lease } from './pool';
import { RangeTable } from './ranges';

export interface Quota {
  /** Device memory bytes (allocations and arrays). */
  memory: number;
  /** Streams + events + modules, and separately the number of allocations. */
  handles: number;
  /** Replies the session may have waiting on the device at once (DTOH copies, syncs). */
  queuedOps: number;
}

export interface LoadedModule {
  handle: unknown;
  info: ModuleInfo;
}

/** Faults that break a context for good, as on a real GPU. */
const STICKY = new Set<number>([
  CUresult.CUDA_ERROR_ILLEGAL_ADDRESS,
  CUresult.CUDA_ERROR_LAUNCH_FAILED,
  CUresult.CUDA_ERROR_ASSERT,
  CUresult.CUDA_ERROR_LAUNCH_TIMEOUT,
  CUresult.CUDA_ERROR_MISALIGNED_ADDRESS,
  714, // HARDWARE_STACK_ERROR
  715, // ILLEGAL_INSTRUCTION
  717, // INVALID_ADDRESS_SPACE
  718, // INVALID_PC
]);

export const isStickyCode = (code: number): boolean => STICKY.has(code);

/** A CUresult from anything a backend or handler may throw. */
export function toCudaError(e: unknown): CudaError {
  if (e instanceof CudaError) return e;
  return new CudaError(CUresult.CUDA_ERROR_UNKNOWN, (e as Error)?.message ?? String(e), { cause: e });
}

const PER_THREAD_STREAM = 1;
/** Counted per op id; ids beyond this share the last slot. */
export const OP_SLOTS = 256;

export class Session {
  readonly allocs = new RangeTable();
  readonly globals = new RangeTable();
  private readonly streams = new Map<number, BackendStream>();
  private readonly events = new Map<number, BackendEvent>();
  private readonly modules = new Map<number, LoadedModule>();
  private deferred: CudaError | null = null;
  private ownSticky: CudaError | null = null;
  private printfText: string[] = [];
  private printfLen = 0;
  private destroyed = false;
  /** Replies waiting on the device. */
  pending = 0;
  /** A request whose reply carries a live view of device memory; no op may run until it is written. */
  readHold: object | null = null;
  /** The session's data lane once the client attached one (LANE_ATTACH), when the server reads it itself. */
  lane: Lane | null = null;
  /** The lane was handed to the context's process (DeviceContext.adoptLane), which reads and writes it. */
  remoteLane = false;
  /** Set by a lane write's handler once the context has been told to take the bytes (remote lanes). */
  laneTaken = false;
  bytesIn = 0;
  bytesOut = 0;
  readonly opCounts = new Float64Array(OP_SLOTS);
  readonly startedAt = Date.now();
  /** Called when printf text piles up past the flush threshold (set by the connection). */
  onPrintfReady: () => void = () => {};

  /** Given to every launch so that no closure is made per launch. */
  readonly onPrintf = (text: string): void => {
    if (this.destroyed || !text) return;
    this.printfText.push(text);
    this.printfLen += text.length;
    if (this.printfLen >= 64 * 1024) this.onPrintfReady();
  };

  constructor(
    readonly id: string,
    readonly lease: Lease,
    readonly ctx: DeviceContext,
    readonly quota: Quota,
  ) {}

  get handleCount(): number {
    return this.streams.size + this.events.size + this.modules.size;
  }

  // --- errors -------------------------------------------------------------------------------------

  /** The sticky error of the context (a fault seen by the backend or by us), or null. */
  get sticky(): CudaError | null {
    if (this.ownSticky) return this.ownSticky;
    const code = this.ctx.stickyError;
    if (code) this.ownSticky = new CudaError(code, 'the context is broken by an earlier fault');
    return this.ownSticky;
  }

  /** Records an error of a no-reply op; the first one wins until a synchronising reply takes it. */
  defer(e: CudaError): void {
    this.noteFault(e);
    if (!this.deferred) this.deferred = e;
  }

  takeDeferred(): CudaError | null {
    const d = this.deferred;
    this.deferred = null;
    return d;
  }

  noteFault(e: CudaError): void {
    if (!this.ownSticky && isStickyCode(e.code)) this.ownSticky = e;
  }

  // --- printf -------------------------------------------------------------------------------------

  takePrintf(): string | null {
    if (this.printfLen === 0 && this.printfText.length === 0) return null;
    const s = this.printfText.join('');
    this.printfText = [];
    this.printfLen = 0;
    return s;
  }

  // --- memory -------------------------------------------------------------------------------------

  alloc(addr: number, size: number): void {
    const va = this.ctx.va;
    if (size <= 0) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'allocation of 0 bytes');
    if (addr < va.base || addr + size > va.base + va.size) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `allocation [0x${addr.toString(16)}, +${size}) is outside the session's va window`);
    }
    if (this.allocs.bytes + size > this.quota.memory) {
      throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `memory quota of ${this.quota.memory} bytes exceeded (${this.allocs.bytes} in use, ${size} asked)`);
    }
    if (this.allocs.count >= this.quota.handles) {
      throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `allocation count quota of ${this.quota.handles} reached`);
    }
    if (!this.allocs.add(addr, size)) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `allocation at 0x${addr.toString(16)} overlaps an existing one`);
    }
    try {
      this.ctx.alloc(addr, size);
    } catch (e) {
      this.allocs.remove(addr);
      throw e;
    }
  }

  free(addr: number): void {
    if (this.allocs.remove(addr) < 0) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `0x${addr.toString(16)} is not an allocation of this session`);
    this.ctx.free(addr);
  }

  /** Throws INVALID_VALUE unless [addr, addr+len) lies in one allocation or module global of this session. */
  checkRange(addr: number, len: number, what: string): void {
    if (this.allocs.contains(addr, len) || this.globals.contains(addr, len)) return;
    throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${what} range [0x${addr.toString(16)}, +${len}) is not inside one allocation of this session`);
  }

  /** Like checkRange for `height` rows of `rowBytes`, `pitch` apart. */
  checkRange2D(addr: number, pitch: number, rowBytes: number, height: number, what: string): void {
    if (height === 0 || rowBytes === 0) return;
    if (height > 1 && pitch < rowBytes) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${what}: pitch ${pitch} is smaller than the row (${rowBytes} bytes)`);
    this.checkRange(addr, (height - 1) * pitch + rowBytes, what);
  }

  // --- handles ------------------------------------------------------------------------------------

  private checkHandleQuota(): void {
    if (this.handleCount >= this.quota.handles) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `handle quota of ${this.quota.handles} reached`);
  }

  /** Backend stream of a client handle: 0 → the context's default stream, 1 → per-thread default stream. */
  stream(h: number): BackendStream {
    if (h === 0) return null;
    const s = this.streams.get(h);
    if (s !== undefined) return s;
    if (h === PER_THREAD_STREAM) {
      // Made on first use: most programs never touch it.
      const pt = this.ctx.createStream(0, 0);
      this.streams.set(h, pt);
      return pt;
    }
    throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `stream ${h} is not a stream of this session`);
  }

  createStream(h: number, flags: number, priority: number): void {
    if (h < 2) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `stream handle ${h} is reserved (created streams are >= 2)`);
    if (this.streams.has(h)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `stream handle ${h} is already in use`);
    this.checkHandleQuota();
    this.streams.set(h, this.ctx.createStream(flags, priority));
  }

  destroyStream(h: number): void {
    const s = this.streams.get(h);
    if (s === undefined || h < 2) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `stream ${h} is not a created stream of this session`);
    this.streams.delete(h);
    this.ctx.destroyStream(s);
  }

  event(h: number): BackendEvent {
    const e = this.events.get(h);
    if (e === undefined) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `event ${h} is not an event of this session`);
    return e;
  }

  createEvent(h: number, flags: number): void {
    if (h < 1) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'event handle 0 is reserved');
    if (this.events.has(h)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `event handle ${h} is already in use`);
    this.checkHandleQuota();
    this.events.set(h, this.ctx.createEvent(flags));
  }

  destroyEvent(h: number): void {
    const e = this.event(h);
    this.events.delete(h);
    this.ctx.destroyEvent(e);
  }

  module(h: number): LoadedModule {
    const m = this.modules.get(h);
    if (!m) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `module ${h} is not a module of this session`);
    return m;
  }

  /** Checks that handle h may name a new module (before the image is compiled). */
  checkNewModule(h: number): void {
    if (h < 1) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'module handle 0 is reserved');
    if (this.modules.has(h)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `module handle ${h} is already in use`);
    this.checkHandleQuota();
  }

  addModule(h: number, m: LoadedModule): void {
    this.modules.set(h, m);
    for (const g of m.info.globals) if (g.size > 0) this.globals.add(g.addr, g.size);
  }

  unloadModule(h: number): void {
    const m = this.module(h);
    this.modules.delete(h);
    for (const g of m.info.globals) this.globals.remove(g.addr);
    this.ctx.unloadModule(m.handle);
  }

  // --- end ----------------------------------------------------------------------------------------

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Frees everything on the device. Idempotent; the caller releases the lease. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      this.ctx.destroy();
    } finally {
      this.streams.clear();
      this.events.clear();
      this.modules.clear();
      this.allocs.clear();
      this.globals.clear();
      this.printfText = [];
    }
  }

  stats(): Record<string, unknown> {
    return {
      session: this.id,
      type: this.lease.device.type,
      device: this.lease.device.index,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      memUsed: this.allocs.bytes,
      allocations: this.allocs.count,
      streams: this.streams.size,
      events: this.events.size,
      modules: this.modules.size,
      pending: this.pending,
      uptimeMs: Date.now() - this.startedAt,
    };
  }
}
