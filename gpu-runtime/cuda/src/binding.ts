// koffi bindings to the host's libcuda.so.1: only the driver calls the CUDA backend uses.
//
// Conventions, chosen for a zero-allocation hot path (koffi sync calls cost 30-130 ns; facts/transport-limits K1-K3):
// - Every handle (CUcontext, CUstream, CUmodule, CUfunction, CUevent, CUmemGenericAllocationHandle) and every
//   device address is passed as uint64_t: on x86-64/aarch64 a pointer and a 64-bit integer travel in the same
//   register, so the ABI is identical and koffi does no pointer wrapping.
// - Host pointers to native memory we own (pinned staging, launch arguments) are passed as uint64_t addresses too.
// - Out parameters are `void *`: callers pass a reused scratch Buffer and read the value back (see Driver.out).
// - Blocking waits (cuEventSynchronize) also exist as koffi `.async` variants, which run on a koffi worker thread
//   so the server's event loop never blocks. They take only event handles, which need no current context.

import koffi from 'koffi';
import { CudaError } from '../../server/src/backend';

/** The typed driver entry points. Each returns a CUresult. */
export interface DriverFns {
  cuInit(flags: number): number;
  cuDriverGetVersion(out: Buffer): number;
  cuDeviceGetCount(out: Buffer): number;
  cuDeviceGet(out: Buffer, ordinal: number): number;
  cuDeviceGetName(name: Buffer, len: number, dev: number): number;
  cuDeviceTotalMem_v2(out: Buffer, dev: number): number;
  cuDeviceGetUuid_v2(out: Buffer, dev: number): number;
  cuDeviceGetAttribute(out: Buffer, attr: number, dev: number): number;
  cuCtxCreate_v2(out: Buffer, flags: number, dev: number): number;
  cuCtxDestroy_v2(ctx: bigint): number;
  cuCtxSetCurrent(ctx: bigint): number;
  cuMemGetAllocationGranularity(out: Buffer, prop: Buffer, option: number): number;
  cuMemAddressReserve(out: Buffer, size: number, alignment: number, addr: number, flags: number): number;
  cuMemAddressFree(ptr: number, size: number): number;
  cuMemCreate(out: Buffer, size: number, prop: Buffer, flags: number): number;
  cuMemRelease(handle: bigint): number;
  cuMemMap(ptr: number, size: number, offset: number, handle: bigint, flags: number): number;
  cuMemUnmap(ptr: number, size: number): number;
  cuMemSetAccess(ptr: number, size: number, desc: Buffer, count: number): number;
  cuMemAlloc_v2(out: Buffer, size: number): number;
  cuMemFree_v2(ptr: number): number;
  cuMemGetInfo_v2(free: Buffer, total: Buffer): number;
  cuMemHostAlloc(out: unknown[], size: number, flags: number): number;
  cuMemFreeHost(p: unknown): number;
  cuMemcpyHtoDAsync_v2(dst: number, src: bigint, size: number, stream: bigint): number;
  cuMemcpyDtoHAsync_v2(dst: bigint, src: number, size: number, stream: bigint): number;
  cuMemcpyDtoDAsync_v2(dst: number, src: number, size: number, stream: bigint): number;
  cuMemcpy2DAsync_v2(desc: Buffer, stream: bigint): number;
  cuMemsetD8Async(dst: number, value: number, n: number, stream: bigint): number;
  cuMemsetD16Async(dst: number, value: number, n: number, stream: bigint): number;
  cuMemsetD32Async(dst: number, value: number, n: number, stream: bigint): number;
  cuMemsetD2D8Async(dst: number, pitch: number, value: number, w: number, h: number, stream: bigint): number;
  cuMemsetD2D16Async(dst: number, pitch: number, value: number, w: number, h: number, stream: bigint): number;
  cuMemsetD2D32Async(dst: number, pitch: number, value: number, w: number, h: number, stream: bigint): number;
  cuModuleLoadData(out: Buffer, image: Uint8Array): number;
  cuModuleUnload(mod: bigint): number;
  cuModuleGetFunctionCount(out: Buffer, mod: bigint): number;
  cuModuleEnumerateFunctions(out: Buffer, count: number, mod: bigint): number;
  cuModuleGetGlobal_v2(addr: Buffer, size: Buffer, mod: bigint, name: string): number;
  cuFuncGetName(out: (string | null)[], fn: bigint): number;
  cuFuncGetParamInfo(fn: bigint, index: number, offset: Buffer, size: Buffer): number;
  cuFuncGetAttribute(out: Buffer, attr: number, fn: bigint): number;
  cuFuncSetAttribute(fn: bigint, attr: number, value: number): number;
  cuCtxSetLimit(limit: number, value: number): number;
  cuLaunchKernel(fn: bigint, gx: number, gy: number, gz: number, bx: number, by: number, bz: number,
    shared: number, stream: bigint, kernelParams: bigint, extra: bigint): number;
  cuLaunchCooperativeKernel(fn: bigint, gx: number, gy: number, gz: number, bx: number, by: number, bz: number,
    shared: number, stream: bigint, kernelParams: bigint): number;
  cuStreamCreateWithPriority(out: Buffer, flags: number, priority: number): number;
  cuStreamDestroy_v2(stream: bigint): number;
  cuStreamQuery(stream: bigint): number;
  cuStreamWaitEvent(stream: bigint, event: bigint, flags: number): number;
  cuEventCreate(out: Buffer, flags: number): number;
  cuEventDestroy_v2(event: bigint): number;
  cuEventRecord(event: bigint, stream: bigint): number;
  cuEventQuery(event: bigint): number;
  cuEventSynchronize(event: bigint): number;
  cuEventElapsedTime(out: Buffer, start: bigint, end: bigint): number;
  cuGetErrorName(code: number, out: (string | null)[]): number;
}

// C prototypes, in the conventions above. Kept as text so they read like cuda.h.
const PROTOTYPES: Record<keyof DriverFns, string> = {
  cuInit: 'int cuInit(unsigned int flags)',
  cuDriverGetVersion: 'int cuDriverGetVersion(void *out)',
  cuDeviceGetCount: 'int cuDeviceGetCount(void *out)',
  cuDeviceGet: 'int cuDeviceGet(void *out, int ordinal)',
  cuDeviceGetName: 'int cuDeviceGetName(void *name, int len, int dev)',
  cuDeviceTotalMem_v2: 'int cuDeviceTotalMem_v2(void *out, int dev)',
  cuDeviceGetUuid_v2: 'int cuDeviceGetUuid_v2(void *out, int dev)',
  cuDeviceGetAttribute: 'int cuDeviceGetAttribute(void *out, int attr, int dev)',
  cuCtxCreate_v2: 'int cuCtxCreate_v2(void *out, unsigned int flags, int dev)',
  cuCtxDestroy_v2: 'int cuCtxDestroy_v2(uint64_t ctx)',
  cuCtxSetCurrent: 'int cuCtxSetCurrent(uint64_t ctx)',
  cuMemGetAllocationGranularity: 'int cuMemGetAllocationGranularity(void *out, void *prop, int option)',
  cuMemAddressReserve: 'int cuMemAddressReserve(void *out, size_t size, size_t alignment, uint64_t addr, uint64_t flags)',
  cuMemAddressFree: 'int cuMemAddressFree(uint64_t ptr, size_t size)',
  cuMemCreate: 'int cuMemCreate(void *out, size_t size, void *prop, uint64_t flags)',
  cuMemRelease: 'int cuMemRelease(uint64_t handle)',
  cuMemMap: 'int cuMemMap(uint64_t ptr, size_t size, size_t offset, uint64_t handle, uint64_t flags)',
  cuMemUnmap: 'int cuMemUnmap(uint64_t ptr, size_t size)',
  cuMemSetAccess: 'int cuMemSetAccess(uint64_t ptr, size_t size, void *desc, size_t count)',
  cuMemAlloc_v2: 'int cuMemAlloc_v2(void *out, size_t size)',
  cuMemFree_v2: 'int cuMemFree_v2(uint64_t ptr)',
  cuMemGetInfo_v2: 'int cuMemGetInfo_v2(void *free, void *total)',
  cuMemHostAlloc: 'int cuMemHostAlloc(_Out_ void **pp, size_t size, unsigned int flags)',
  cuMemFreeHost: 'int cuMemFreeHost(void *p)',
  cuMemcpyHtoDAsync_v2: 'int cuMemcpyHtoDAsync_v2(uint64_t dst, uint64_t src, size_t size, uint64_t stream)',
  cuMemcpyDtoHAsync_v2: 'int cuMemcpyDtoHAsync_v2(uint64_t dst, uint64_t src, size_t size, uint64_t stream)',
  cuMemcpyDtoDAsync_v2: 'int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t size, uint64_t stream)',
  cuMemcpy2DAsync_v2: 'int cuMemcpy2DAsync_v2(void *desc, uint64_t stream)',
  cuMemsetD8Async: 'int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t n, uint64_t stream)',
  cuMemsetD16Async: 'int cuMemsetD16Async(uint64_t dst, uint16_t value, size_t n, uint64_t stream)',
  cuMemsetD32Async: 'int cuMemsetD32Async(uint64_t dst, uint32_t value, size_t n, uint64_t stream)',
  cuMemsetD2D8Async: 'int cuMemsetD2D8Async(uint64_t dst, size_t pitch, uint8_t value, size_t w, size_t h, uint64_t stream)',
  cuMemsetD2D16Async: 'int cuMemsetD2D16Async(uint64_t dst, size_t pitch, uint16_t value, size_t w, size_t h, uint64_t stream)',
  cuMemsetD2D32Async: 'int cuMemsetD2D32Async(uint64_t dst, size_t pitch, uint32_t value, size_t w, size_t h, uint64_t stream)',
  cuModuleLoadData: 'int cuModuleLoadData(void *out, void *image)',
  cuModuleUnload: 'int cuModuleUnload(uint64_t mod)',
  cuModuleGetFunctionCount: 'int cuModuleGetFunctionCount(void *out, uint64_t mod)',
  cuModuleEnumerateFunctions: 'int cuModuleEnumerateFunctions(void *out, unsigned int count, uint64_t mod)',
  cuModuleGetGlobal_v2: 'int cuModuleGetGlobal_v2(void *addr, void *size, uint64_t mod, const char *name)',
  cuFuncGetName: 'int cuFuncGetName(_Out_ const char **name, uint64_t fn)',
  cuFuncGetParamInfo: 'int cuFuncGetParamInfo(uint64_t fn, size_t index, void *offset, void *size)',
  cuFuncGetAttribute: 'int cuFuncGetAttribute(void *out, int attr, uint64_t fn)',
  cuFuncSetAttribute: 'int cuFuncSetAttribute(uint64_t fn, int attr, int value)',
  cuCtxSetLimit: 'int cuCtxSetLimit(int limit, size_t value)',
  cuLaunchKernel: 'int cuLaunchKernel(uint64_t fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, uint64_t stream, uint64_t kernelParams, uint64_t extra)',
  cuLaunchCooperativeKernel: 'int cuLaunchCooperativeKernel(uint64_t fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, uint64_t stream, uint64_t kernelParams)',
  cuStreamCreateWithPriority: 'int cuStreamCreateWithPriority(void *out, unsigned int flags, int priority)',
  cuStreamDestroy_v2: 'int cuStreamDestroy_v2(uint64_t stream)',
  cuStreamQuery: 'int cuStreamQuery(uint64_t stream)',
  cuStreamWaitEvent: 'int cuStreamWaitEvent(uint64_t stream, uint64_t event, unsigned int flags)',
  cuEventCreate: 'int cuEventCreate(void *out, unsigned int flags)',
  cuEventDestroy_v2: 'int cuEventDestroy_v2(uint64_t event)',
  cuEventRecord: 'int cuEventRecord(uint64_t event, uint64_t stream)',
  cuEventQuery: 'int cuEventQuery(uint64_t event)',
  cuEventSynchronize: 'int cuEventSynchronize(uint64_t event)',
  cuEventElapsedTime: 'int cuEventElapsedTime(void *out, uint64_t start, uint64_t end)',
  cuGetErrorName: 'int cuGetErrorName(int code, _Out_ const char **name)',
};

/** The loaded driver: typed calls plus the few helpers every caller needs. */
export class Driver {
  readonly fn: DriverFns;
  /** Scratch for out parameters of sync calls; valid until the next call that uses it. */
  readonly out = Buffer.alloc(64);
  private readonly eventSyncAsync: (event: bigint, cb: (err: unknown, rc: number) => void) => void;
  private currentCtx = 0n;
  /** Waits currently blocking a thread-pool thread (see eventSynchronize). */
  private blockingWaits = 0;

  constructor(readonly libraryPath: string, private readonly maxBlockingWaits = 2) {
    let lib: ReturnType<typeof koffi.load>;
    try {
      lib = koffi.load(libraryPath);
    } catch (e) {
      throw new CudaError(CUresultNotInitialized, `cannot load ${libraryPath}: ${(e as Error).message}`, { cause: e });
    }
    const fns: Record<string, unknown> = {};
    for (const [name, proto] of Object.entries(PROTOTYPES)) {
      try {
        fns[name] = lib.func(proto);
      } catch (e) {
        // A missing symbol surfaces only when the call is made, as the real driver would report it.
        fns[name] = () => CUresultNotFound;
      }
    }
    this.fn = fns as unknown as DriverFns;
    const sync = fns.cuEventSynchronize as { async?: DriverBlockingAsync };
    this.eventSyncAsync = sync.async ? sync.async.bind(sync) : (ev, cb) => cb(null, this.fn.cuEventSynchronize(ev));
  }

  /** Throws a CudaError naming the call unless rc is CUDA_SUCCESS. */
  check(rc: number, what: string): void {
    if (rc !== 0) throw new CudaError(rc, `${what} failed (${this.errorName(rc)})`);
  }

  errorName(rc: number): string {
    const name: (string | null)[] = [null];
    return this.fn.cuGetErrorName(rc, name) === 0 && name[0] ? name[0] : `CUresult ${rc}`;
  }

  /** Makes ctx current on the calling (main) thread; a no-op when it already is. */
  setCurrent(ctx: bigint): void {
    if (this.currentCtx === ctx) return;
    this.check(this.fn.cuCtxSetCurrent(ctx), 'cuCtxSetCurrent');
    this.currentCtx = ctx;
  }

  /** Forgets the cached current context (after the context is destroyed). */
  forgetCurrent(ctx: bigint): void {
    if (this.currentCtx === ctx) this.currentCtx = 0n;
  }

  /**
   * Waits for an event without blocking the event loop; resolves with its CUresult.
   *
   * koffi runs `.async` calls on the libuv thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise),
   * which fs, dns and crypto share. A blocking cuEventSynchronize holds a pool thread for the whole kernel, so
   * at most `maxBlockingWaits` waits block there; the others poll cuEventQuery with a backoff (1 ms up to
   * 16 ms) and move to a thread when one frees. An event that is already complete costs one query, no thread.
   */
  eventSynchronize(event: bigint): Promise<number> {
    const rc = this.fn.cuEventQuery(event);
    if (rc !== CUresultNotReady) return Promise.resolve(rc);
    return new Promise((resolve, reject) => {
      let delay = 1;
      const attempt = (): void => {
        if (this.blockingWaits < this.maxBlockingWaits) {
          this.blockingWaits++;
          this.eventSyncAsync(event, (err, r) => {
            this.blockingWaits--;
            if (err) reject(err);
            else resolve(r);
          });
          return;
        }
        const q = this.fn.cuEventQuery(event);
        if (q !== CUresultNotReady) return resolve(q);
        setTimeout(attempt, delay);
        delay = Math.min(delay * 2, 16);
      };
      attempt();
    });
  }

  readU64(off = 0): bigint {
    return this.out.readBigUInt64LE(off);
  }

  readNum(off = 0): number {
    return Number(this.out.readBigUInt64LE(off));
  }

  readI32(off = 0): number {
    return this.out.readInt32LE(off);
  }
}

type DriverBlockingAsync = (event: bigint, cb: (err: unknown, rc: number) => void) => void;

const CUresultNotInitialized = 3;
const CUresultNotFound = 500;
const CUresultNotReady = 600;

/** Native (non-JS-heap) memory for addresses handed to the driver: the address stays valid until freed. */
export interface NativeBuffer {
  readonly ptr: unknown;
  readonly addr: bigint;
  readonly bytes: Uint8Array;
}

export function allocNative(size: number): NativeBuffer {
  const ptr = koffi.alloc('uint8_t', size);
  return { ptr, addr: koffi.address(ptr), bytes: new Uint8Array(koffi.view(ptr, size)) };
}

export function freeNative(buf: NativeBuffer): void {
  koffi.free(buf.ptr);
}

/** Views driver-allocated host memory (cuMemHostAlloc) from JS. */
export function viewNative(ptr: unknown, size: number): NativeBuffer {
  return { ptr, addr: koffi.address(ptr), bytes: new Uint8Array(koffi.view(ptr, size)) };
}
