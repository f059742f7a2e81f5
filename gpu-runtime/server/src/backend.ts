// The device interface both backends implement: the emulated device (gpu-runtime/emulator, a PTX engine on
// the CPU) and real GPUs (gpu-runtime/cuda, koffi -> libcuda). The server picks one at start-up; nothing
// else in the server knows which it talks to.
//
// Shape: it mirrors the driver API the intercept library forwards, so the CUDA backend is a thin mapping.
// Addresses are JS numbers (CUDA virtual addresses fit in 48 bits). Errors are thrown as CudaError with a
// CUresult code. Stream-ordered operations (`enqueue*`, launch) return at once; their failures become the
// context's deferred error (returned by the next synchronising call) or, for faults such as an illegal
// address, its sticky error, as on a real GPU.

import type { Socket } from 'node:net';
import { CUresult, cuResultName } from '../../protocol/generated/cuResult';

export class CudaError extends Error {
  constructor(readonly code: number, message?: string, options?: { cause?: unknown }) {
    super(message ? `${cuResultName(code)}: ${message}` : cuResultName(code), options);
    this.name = 'CudaError';
  }
}

/** What a device reports: enough for cudart's start-up queries and cudaGetDeviceProperties. */
export interface DeviceInfo {
  /** Pool type name the user asks for, e.g. "T4" or "A100-40GB". */
  type: string;
  /** Marketing name as cuDeviceGetName reports it, e.g. "Tesla T4". */
  name: string;
  totalMem: number;
  /** 16 bytes. */
  uuid: Uint8Array;
  ccMajor: number;
  ccMinor: number;
  /** Indexed by CUdevice_attribute value; 0 where a value is unknown. */
  attributes: number[];
  driverVersion: number;
  pciDomain: number;
  pciBus: number;
  pciDevice: number;
}

export interface KernelParam {
  offset: number;
  size: number;
}

export interface KernelInfo {
  name: string;
  params: KernelParam[];
  /** Total parameter buffer size in bytes. */
  paramSize: number;
  /** CUfunction_attribute values the client answers locally (cuFuncGetAttribute / cuKernelGetAttribute). */
  attrs: {
    maxThreadsPerBlock: number;
    sharedSizeBytes: number;
    constSizeBytes: number;
    localSizeBytes: number;
    numRegs: number;
    ptxVersion: number;
    binaryVersion: number;
    maxDynamicSharedSizeBytes: number;
  };
}

export interface GlobalInfo {
  name: string;
  addr: number;
  size: number;
}

export interface ModuleInfo {
  kernels: KernelInfo[];
  globals: GlobalInfo[];
}

/** Lent to launch() for the duration of the call only: the server refills one object for every launch. */
export interface LaunchConfig {
  grid: [number, number, number];
  block: [number, number, number];
  sharedMem: number;
  /** The packed parameter buffer, laid out as KernelInfo.params says. */
  params: Uint8Array;
  cooperative: boolean;
}

/** An opaque backend stream; `null` means the context's default stream. */
export type BackendStream = unknown;
export type BackendEvent = unknown;

/**
 * One session's context on a device. The server serialises calls per context (one JS task at a time), so
 * implementations need no locking of their own.
 */
/**
 * The memory a texture or surface object reads, resolved by the server: a CUDA array (whose descriptor the
 * server recorded at ARRAY_CREATE), linear memory (tex1Dfetch) or pitched 2D memory.
 */
export interface TextureResource {
  /** CUresourcetype: 0 array, 2 linear, 3 pitch2D (1, mipmapped array, is refused). */
  type: number;
  addr: number;
  /** CUarray_format and channels per element (1, 2 or 4). */
  format: number;
  channels: number;
  /** Elements; height/depth 0 when absent. */
  width: number;
  height: number;
  depth: number;
  /** CUDA_ARRAY3D_* flags of an array (layered, surface load/store). */
  flags: number;
  /** Row pitch in bytes (pitch2D). */
  pitch: number;
  /** Bytes (linear). */
  size: number;
}

/** CUDA_TEXTURE_DESC, as far as a fetch depends on it. */
export interface TextureDesc {
  /** CUaddress_mode per dimension: 0 wrap, 1 clamp, 2 mirror, 3 border. */
  addressMode: [number, number, number];
  /** CUfilter_mode: 0 point, 1 linear. */
  filterMode: number;
  /** CU_TRSF_* (1 read as integer, 2 normalized coordinates, 0x10 sRGB). */
  flags: number;
  borderColor: [number, number, number, number];
}

export interface DeviceContext {
  /** The address window the client allocates in (sent to it in the HELLO reply). */
  readonly va: { base: number; size: number };
  // --- memory: the client chooses addresses inside the va window given at creation -------------------
  alloc(addr: number, size: number): void;
  free(addr: number): void;
  /**
   * Stream-ordered copies; `dst` is owned by the caller until the returned promise settles. `src` of a write
   * may be held until it has been passed on (the worker backend writes it to a pipe): callers hand over
   * buffers they do not change afterwards (the server passes frame bulks, which it never reuses).
   */
  enqueueWrite(stream: BackendStream, dst: number, src: Uint8Array): void;
  enqueueRead(stream: BackendStream, src: number, dst: Uint8Array): Promise<void>;
  /**
   * Optional, for backends whose device memory is host memory executed in call order (the emulator): a
   * live view of [addr, addr+size), or null when the backend cannot give one. Reading the view now is a
   * device-to-host copy at this point of the stream and writing it is a host-to-device copy, so the caller
   * must finish with it before it sends the context any other op. Throws like enqueueRead on a bad range.
   */
  hostView?(stream: BackendStream, addr: number, size: number): Uint8Array | null;
  /**
   * Optional, for backends that run the context in another process (the CUDA worker): takes over the
   * session's data lane socket (LANE_ATTACH), so that copy payloads go between the client and that process
   * without crossing the server. From then on the server announces the lane's bytes in order: laneWrite (the
   * next width*height bytes, packed rows, to `dst` at `dpitch`), laneSkip (the next `size` bytes belong to a
   * refused copy), laneRead (write the rows at `src` on the lane, then resolve). False: not possible now.
   */
  adoptLane?(socket: Socket): boolean;
  laneWrite?(stream: BackendStream, dst: number, dpitch: number, width: number, height: number): void;
  laneSkip?(size: number): void;
  laneRead?(stream: BackendStream, src: number, spitch: number, width: number, height: number): Promise<void>;
  enqueueCopy(stream: BackendStream, dst: number, src: number, size: number): void;
  enqueueWrite2D(stream: BackendStream, dst: number, dpitch: number, src: Uint8Array, width: number, height: number): void;
  enqueueRead2D(stream: BackendStream, src: number, spitch: number, dst: Uint8Array, width: number, height: number): Promise<void>;
  enqueueCopy2D(stream: BackendStream, dst: number, dpitch: number, src: number, spitch: number, width: number, height: number): void;
  enqueueMemset(stream: BackendStream, dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void;

  // --- texture and surface objects (optional: a backend without them answers NOT_SUPPORTED) ------------
  /** Registers client-minted handle `handle`; kernels receive it as a 64-bit parameter. */
  createTexObject?(handle: number, res: TextureResource, desc: TextureDesc): void;
  destroyTexObject?(handle: number): void;
  createSurfObject?(handle: number, res: TextureResource): void;
  destroySurfObject?(handle: number): void;

  // --- modules -----------------------------------------------------------------------------------
  /** image: fatbin bytes (one or more fatbins, wrapper pointers already resolved by the client), PTX text, or a cubin. */
  loadModule(image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin', name: string): { handle: unknown; info: ModuleInfo };
  /**
   * Optional async forms, for backends whose context lives in another process (the CUDA worker backend):
   * when present the server uses them instead of the synchronous calls. Calls made after one of these was
   * issued still reach the context after it, in call order.
   */
  loadModuleAsync?(image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin', name: string): Promise<{ handle: unknown; info: ModuleInfo }>;
  queryAsync?(stream: BackendStream | null): Promise<boolean>;
  queryEventAsync?(e: BackendEvent): Promise<boolean>;
  elapsedAsync?(start: BackendEvent, end: BackendEvent): Promise<number>;
  unloadModule(handle: unknown): void;
  setKernelAttribute(module: unknown, kernel: number, attr: number, value: number): void;
  /** cuCtxSetLimit (CUlimit, value), already checked by the client; absent where no limit means anything yet. */
  setLimit?(limit: number, value: number): void;

  // --- launches: `onPrintf` receives device printf text of this launch when it completes ----------
  launch(stream: BackendStream, module: unknown, kernel: number, cfg: LaunchConfig, onPrintf: (text: string) => void): void;

  // --- streams and events ------------------------------------------------------------------------
  createStream(flags: number, priority: number): BackendStream;
  destroyStream(s: BackendStream): void;
  /** Resolves when the stream (null: everything in the context) is idle; rejects with the deferred/sticky CudaError. */
  synchronize(stream: BackendStream | null): Promise<void>;
  /** true when idle. */
  query(stream: BackendStream | null): boolean;
  createEvent(flags: number): BackendEvent;
  destroyEvent(e: BackendEvent): void;
  recordEvent(e: BackendEvent, stream: BackendStream): void;
  streamWaitEvent(stream: BackendStream, e: BackendEvent): void;
  synchronizeEvent(e: BackendEvent): Promise<void>;
  queryEvent(e: BackendEvent): boolean;
  /** Milliseconds between two completed events (CUDA_ERROR_NOT_READY if either is pending). */
  elapsed(start: BackendEvent, end: BackendEvent): number;

  /** The sticky error, once a fault has broken the context (0 otherwise). */
  readonly stickyError: number;
  /** Frees everything the context holds. Idempotent. */
  destroy(): void;
}

export interface Device {
  readonly info: DeviceInfo;
  /**
   * A context for one session with a window of `vaSize` bytes of device virtual addresses that the backend
   * reserves (on a real GPU: cuMemAddressReserve). The client allocates inside context.va; the backend
   * places module globals outside it and reports their addresses in ModuleInfo.
   */
  createContext(opts: { vaSize: number }): DeviceContext;
  /** Optional async form (a context in a worker process); preferred by the server when present. */
  createContextAsync?(opts: { vaSize: number }): Promise<DeviceContext>;
  /** Bytes of device memory currently allocated on this device (all sessions). */
  memUsed(): number;
}

export interface Backend {
  readonly kind: 'emulated' | 'cuda';
  readonly devices: readonly Device[];
  close(): Promise<void>;
}

export { CUresult };
