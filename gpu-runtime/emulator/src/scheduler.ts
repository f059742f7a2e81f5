// Runs one grid: builds the launch environment E, instantiates the compiled kernel and drives its threads.
// Kernels without sync points run each thread to completion in turn (fast path). Others run per CTA: every
// runnable thread runs to its next sync point, then warp collectives whose lanes have all arrived complete
// (gather every input first, then write every result), then a barrier releases once every live thread waits.

import { CudaError, CUresult } from '../../server/src/backend';
import { DeviceHeap, HeapViews, KernelHeap, makeViews } from './memory';
import { atomic32, atomic64, atomicFloat } from './atomics';
import { LOCAL_WINDOW, SHARED_WINDOW } from './codegen';
import { SPILL_F64, SPILL_I32, SYNC_OPS } from './syncops';
import * as R from './rt';
import { formatPrintf } from './printf';
import { DeviceMalloc, MALLOC_HEAP_BYTES } from './deviceMalloc';

export interface KernelInstance {
  K: (S: ThreadState) => number;
  bind(E: LaunchEnv): void;
}
export type KernelFactory = (rt: typeof R) => KernelInstance;

export interface LaunchKernel {
  name: string;
  factory: KernelFactory;
  hasSync: boolean;
  paramReads: { off: number; type: string }[];
  sharedStatic: number;
  localBytes: number;
  /** Created on first launch and kept, so the optimised code survives across launches. */
  instance?: KernelInstance;
  /** The generated source behind `factory`, for block workers to compile their own copy. */
  src?: string;
  /** Its module orders memory between CTAs (fences, volatile loads): it always runs inline, CTAs in order. */
  crossCta?: boolean;
  /** Its module calls device malloc/free: it runs inline (one allocator, no locks) with the context's arena. */
  usesMalloc?: boolean;
  /** The launch environment, created on first launch and refilled by each later one. */
  env?: GridEnv;
}

export interface ThreadState {
  tx: number; ty: number; tz: number; lin: number; lane: number; lb: number; sp: number; pc: number;
  v: unknown[]; vf: Float64Array; vi: Int32Array; op: number; site: number; k: number; a: unknown; b: number; c: unknown; m: number; r: unknown; rp: boolean;
}

export interface LaunchEnv {
  /** Global atomics must be real Atomics: other workers run blocks of this grid over the same heap. */
  am: boolean;
  at32(op: number, q: number, b: number, c: number, signed: boolean): number;
  atf(op: number, t: number, b: number, double: boolean): number;
  at64(op: number, t: number, b: R.I64, c: R.I64, signed: boolean): R.I64;
  hb: number; hl: number; pg: Uint8Array; g: HeapViews; sh: HeapViews; sl: number; lc: HeapViews; ls: number;
  ntx: number; nty: number; ntz: number; ncx: number; ncy: number; ncz: number; nwarp: number; nsm: number; dynsm: number;
  cx: number; cy: number; cz: number; P: unknown[]; wd: number;
  /** Cooperative workspace address, high and low words (%envreg1/%envreg2); 0 otherwise. */
  env1: number; env2: number;
  /** Loop passes left before a cooperative kernel's thread yields. */
  yc: number;
  /** Per named barrier (0..15) of the running CTA: threads that arrived with bar.arrive and did not wait. */
  ba: Int32Array;
  tick(): void; trap(): never; stackOverflow(): never; badcall(addr: number): never;
  gfault(addr: number, size: number): never; sfault(off: number, size: number): never; lfault(off: number, size: number): never;
  vprintf(S: ThreadState, fmt: number, args: number): number;
  assertfail(S: ThreadState, msg: number, file: number, line: number, func: number): never;
  clock(): number; clock64(): number; gtimer(): number;
}

export interface GridConfig {
  grid: [number, number, number];
  block: [number, number, number];
  sharedMem: number;
  params: Uint8Array;
  smCount: number;
  watchdogMs: number;
  printfLimit: number;
  /** Set for a cooperative launch (LAUNCH launchFlags & 1): every CTA resident at once, grid-wide sync works. */
  cooperative?: CoopLimits;
  /** Run only the CTAs with linear index in [firstBlock, endBlock) (a worker's share); default: all. */
  firstBlock?: number;
  endBlock?: number;
  /** Other threads run CTAs of this grid at the same time: global atomics use Atomics. */
  split?: boolean;
  /** Absolute watchdog deadline (Date.now() ms) shared by the parts of a split launch; default now + watchdogMs. */
  deadline?: number;
  /** Non-zero asks a running split launch to stop (checked with the watchdog). */
  abort?: Int32Array;
}

/** Per-SM residency limits that bound a cooperative grid (device attributes 106, 39, 81). */
export interface CoopLimits {
  maxBlocksPerSm: number;
  maxThreadsPerSm: number;
  sharedPerSm: number;
}

/** How many CTAs of this shape can be resident at once: the largest cooperative grid the device accepts. */
export function coopCapacity(smCount: number, lim: CoopLimits, blockThreads: number, sharedPerBlock: number): number {
  let perSm = Math.min(lim.maxBlocksPerSm, Math.floor(lim.maxThreadsPerSm / blockThreads));
  if (sharedPerBlock > 0) perSm = Math.min(perSm, Math.floor(lim.sharedPerSm / sharedPerBlock));
  return smCount * Math.max(perSm, 0);
}

/** One small zeroed global block per heap for the grid barrier counter, reused by every cooperative launch. */
const coopWorkspace = new WeakMap<KernelHeap, number>();
/** Each context's device-malloc arena, made at the first launch of a kernel whose module calls malloc/free. */
const mallocArena = new WeakMap<KernelHeap, DeviceMalloc>();
/** cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE) per context; like the driver's, it only counts before the arena exists. */
const mallocHeapSize = new WeakMap<KernelHeap, number>();
export function setMallocHeapSize(heap: KernelHeap, bytes: number): void {
  if (!mallocArena.has(heap)) mallocHeapSize.set(heap, bytes);
}
const COOP_WS_BYTES = 64;

const WD_CHUNK = 1 << 20;

function newThread(): ThreadState {
  return { tx: 0, ty: 0, tz: 0, lin: 0, lane: 0, lb: 0, sp: 0, pc: 0, v: [], vf: new Float64Array(SPILL_F64), vi: new Int32Array(SPILL_I32), op: 0, site: 0, k: 0, a: 0, b: 0, c: 0, m: 0, r: 0, rp: false };
}

const enum ParamKind { U8, S8, U16, S16, F32, F64, I64, I32 }
interface ParamRead { off: number; size: number; kind: ParamKind }

/** Classifies the kernel's param reads once per kernel, so a launch only reads bytes. */
function planParams(reads: { off: number; type: string }[]): ParamRead[] {
  return reads.map(({ off, type }) => {
    const size = type.endsWith('64') ? 8 : type.endsWith('16') ? 2 : type.endsWith('8') ? 1 : 4;
    let kind: ParamKind;
    switch (type) {
      case 'u8': case 'b8': kind = ParamKind.U8; break;
      case 's8': kind = ParamKind.S8; break;
      case 'u16': case 'b16': case 'f16': kind = ParamKind.U16; break;
      case 's16': kind = ParamKind.S16; break;
      case 'f32': kind = ParamKind.F32; break;
      case 'f64': kind = ParamKind.F64; break;
      case 'u64': case 's64': case 'b64': kind = ParamKind.I64; break;
      default: kind = ParamKind.I32; break;
    }
    return { off, size, kind };
  });
}

// Scratch for reassembling float params byte by byte: no DataView per launch.
const scratch = new Uint8Array(8);
const scratchF32 = new Float32Array(scratch.buffer, 0, 1);
const scratchF64 = new Float64Array(scratch.buffer, 0, 1);

function le32(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24);
}

/** Decodes the kernel-param reads the compiled code uses, from the packed param buffer, into `P`. */
function decodeParams(buf: Uint8Array, reads: ParamRead[], P: unknown[]): void {
  for (let i = 0; i < reads.length; i++) {
    const { off, size, kind } = reads[i];
    if (off + size > buf.length) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `kernel parameter buffer is ${buf.length} bytes; the kernel reads ${size} bytes at offset ${off}`);
    switch (kind) {
      case ParamKind.U8: P[i] = buf[off]; break;
      case ParamKind.S8: P[i] = (buf[off] << 24) >> 24; break;
      case ParamKind.U16: P[i] = buf[off] | (buf[off + 1] << 8); break;
      case ParamKind.S16: P[i] = ((buf[off] | (buf[off + 1] << 8)) << 16) >> 16; break;
      case ParamKind.F32:
        for (let j = 0; j < 4; j++) scratch[j] = buf[off + j];
        P[i] = scratchF32[0];
        break;
      case ParamKind.F64:
        for (let j = 0; j < 8; j++) scratch[j] = buf[off + j];
        P[i] = scratchF64[0];
        break;
      case ParamKind.I64: P[i] = R.pack64(le32(buf, off), le32(buf, off + 4)); break;
      default: P[i] = le32(buf, off); break;
    }
  }
}

function sharedBytes(sl: number): number { return Math.ceil(Math.max(sl, 16) / 16) * 16; }

/**
 * The launch environment E of one kernel, kept across its launches: launches run to completion one at a
 * time, so every field is refilled here per launch instead of building buffers, views and closures anew
 * (the per-launch allocations dominated small launches). Buffers are reused only at the same size and are
 * zeroed on reuse, so a launch sees exactly what fresh buffers gave it.
 */
class GridEnv implements LaunchEnv {
  am = false;
  /** Linear CTA range of this launch. */
  b0 = 0; b1 = 0;
  private abort: Int32Array | undefined;
  hb = 0; hl = 0; pg!: Uint8Array; g!: HeapViews; sh!: HeapViews; sl = 0; lc!: HeapViews; ls = 0;
  ntx = 0; nty = 0; ntz = 0; ncx = 0; ncy = 0; ncz = 0; nwarp = 0; nsm = 0; dynsm = 0;
  cx = 0; cy = 0; cz = 0; P: unknown[]; wd = WD_CHUNK; env1 = 0; env2 = 0; yc = 0; ba = new Int32Array(16);
  out = '';
  heap!: KernelHeap;
  private deadline = 0;
  private watchdogMs = 0;
  private printfLimit = 0;
  private t0 = 0n;
  /** Shared and local buffers of the last launch, reused when the next launch needs the same sizes. */
  private shBuf: HeapViews | null = null;
  private lcBuf: HeapViews | null = null;
  readonly reads: ParamRead[];
  /** Thread states reused by the fast path (one) and by runSync (one per thread of the block). */
  readonly fastThread = newThread();
  readonly threads: ThreadState[] = [];
  status = new Uint8Array(0);

  constructor(private readonly name: string, paramReads: { off: number; type: string }[]) {
    this.reads = planParams(paramReads);
    this.P = new Array(this.reads.length).fill(0);
  }

  /** Refills E for one launch (a cooperative launch then swaps in its own per-CTA buffers). */
  reset(k: LaunchKernel, heap: KernelHeap, cfg: GridConfig, nthreads: number, sl: number, ls: number): void {
    const [ntx, nty, ntz] = cfg.block;
    const [ncx, ncy, ncz] = cfg.grid;
    decodeParams(cfg.params, this.reads, this.P);
    this.heap = heap;
    this.hb = heap.base; this.hl = heap.length; this.pg = heap.pages; this.g = heap.views;
    const shLen = sharedBytes(sl);
    if (this.shBuf && this.shBuf.buf.byteLength === shLen) this.shBuf.u8.fill(0);
    else this.shBuf = makeViews(new ArrayBuffer(shLen));
    const lcLen = ls * (k.hasSync ? nthreads : 1);
    if (this.lcBuf && this.lcBuf.buf.byteLength === lcLen) this.lcBuf.u8.fill(0);
    else this.lcBuf = makeViews(new ArrayBuffer(lcLen));
    this.sh = this.shBuf; this.lc = this.lcBuf; this.sl = sl; this.ls = ls;
    this.ntx = ntx; this.nty = nty; this.ntz = ntz; this.ncx = ncx; this.ncy = ncy; this.ncz = ncz;
    this.b0 = cfg.firstBlock ?? 0; this.b1 = cfg.endBlock ?? ncx * ncy * ncz;
    this.am = cfg.split === true; this.abort = cfg.abort;
    this.nwarp = Math.ceil(nthreads / 32); this.nsm = cfg.smCount; this.dynsm = cfg.sharedMem;
    this.cx = 0; this.cy = 0; this.cz = 0; this.wd = WD_CHUNK; this.env1 = 0; this.env2 = 0; this.yc = 0;
    this.ba.fill(0);
    this.out = '';
    this.watchdogMs = cfg.watchdogMs; this.printfLimit = cfg.printfLimit;
    this.deadline = cfg.deadline ?? Date.now() + cfg.watchdogMs;
    this.t0 = process.hrtime.bigint();
  }

  tick(): void {
    if (this.abort && this.abort[0] !== 0) throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, `kernel ${this.name}: stopped (another part of the grid failed or the context went away)`);
    if (Date.now() > this.deadline) throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_TIMEOUT, `kernel ${this.name} exceeded the ${this.watchdogMs} ms watchdog`);
    this.wd = WD_CHUNK;
  }
  at32(op: number, q: number, b: number, c: number, signed: boolean): number { return atomic32(this.g.i32, op, q, b, c, signed); }
  atf(op: number, t: number, b: number, double: boolean): number { return atomicFloat(this.g.i32, this.g.i64, op, t, b, double); }
  at64(op: number, t: number, b: R.I64, c: R.I64, signed: boolean): R.I64 { return atomic64(this.g.i64, op, t, b, c, signed); }
  trap(): never { throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, `kernel ${this.name} executed trap`); }
  badcall(addr: number): never { throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION, `kernel ${this.name}: indirect call through 0x${addr.toString(16)}, which is not a function of this module`); }
  stackOverflow(): never { throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${this.name}: per-thread stack overflow`); }
  gfault(addr: number, size: number): never {
    if (typeof addr === 'number' && addr % size !== 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${this.name}: misaligned ${size}-byte global access at 0x${addr.toString(16)}`);
    throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${this.name}: ${size}-byte global access at 0x${addr.toString(16)} is outside every allocation`);
  }
  sfault(off: number, size: number): never {
    if (off % size !== 0 && off >= 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${this.name}: misaligned ${size}-byte shared access at ${off}`);
    throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${this.name}: shared access at ${off} outside the ${this.sl}-byte block`);
  }
  lfault(off: number, size: number): never {
    if (off % size !== 0 && off >= 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${this.name}: misaligned ${size}-byte local access at ${off}`);
    throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${this.name}: local access at ${off} outside the ${this.ls}-byte frame`);
  }
  private genericBytes(S: ThreadState, addr: number, n: number): { u8: Uint8Array; off: number } {
    if (addr >= SHARED_WINDOW && addr < SHARED_WINDOW + 2 ** 32) {
      const off = addr - SHARED_WINDOW;
      if (off + n > this.sl) this.sfault(off, n);
      return { u8: this.sh.u8, off };
    }
    if (addr >= LOCAL_WINDOW && addr < LOCAL_WINDOW + 2 ** 32) {
      const off = addr - LOCAL_WINDOW;
      if (off + n > this.ls) this.lfault(off, n);
      return { u8: this.lc.u8, off: S.lb + off };
    }
    return { u8: this.heap.views.u8, off: this.heap.check(addr, n) };
  }
  private cstring(S: ThreadState, addr: number): string {
    let s = '';
    for (let i = 0; i < 4096; i++) {
      const { u8, off } = this.genericBytes(S, addr + i, 1);
      if (u8[off] === 0) break;
      s += String.fromCharCode(u8[off]);
    }
    return s;
  }
  vprintf(S: ThreadState, fmt: number, args: number): number {
    let cur = args;
    const text = formatPrintf(this.cstring(S, fmt), (size) => {
      cur = Math.ceil(cur / size) * size;
      const { u8, off } = this.genericBytes(S, cur, size);
      cur += size;
      return new DataView(u8.buffer, u8.byteOffset + off, size);
    }, (a) => this.cstring(S, a));
    if (this.out.length < this.printfLimit) this.out += text;
    return text.length;
  }
  assertfail(S: ThreadState, msg: number, file: number, line: number, func: number): never {
    this.out += `${this.cstring(S, file)}:${line}: ${this.cstring(S, func)}: block: [${this.cx},${this.cy},${this.cz}], thread: [${S.tx},${S.ty},${S.tz}] Assertion \`${this.cstring(S, msg)}\` failed.\n`;
    throw new CudaError(CUresult.CUDA_ERROR_ASSERT, `device-side assert in kernel ${this.name}`);
  }
  malloc(S: ThreadState, size: number): number {
    return mallocArena.get(this.heap)?.malloc(Number(size)) ?? 0;
  }
  free(S: ThreadState, at: number): void {
    mallocArena.get(this.heap)?.release(Number(at));
  }
  clock(): number { return Number((process.hrtime.bigint() - this.t0) & 0x7fffffffn); }
  clock64(): number { return Number(process.hrtime.bigint() - this.t0); }
  gtimer(): number { return Number(process.hrtime.bigint() & 0xfffffffffffffn); }
}

export function runGrid(k: LaunchKernel, heap: KernelHeap, cfg: GridConfig): string {
  const nthreads = cfg.block[0] * cfg.block[1] * cfg.block[2];
  const sl = k.sharedStatic + cfg.sharedMem;
  const ls = Math.ceil(Math.max(k.localBytes, 16) / 16) * 16;
  // Before E captures the heap views: the first allocation may grow the heap.
  if (cfg.cooperative && !coopWorkspace.has(heap)) coopWorkspace.set(heap, (heap as DeviceHeap).allocGlobal(COOP_WS_BYTES, 64));
  if (k.usesMalloc && !mallocArena.has(heap)) {
    const bytes = mallocHeapSize.get(heap) ?? MALLOC_HEAP_BYTES;
    let at: number;
    try {
      at = (heap as DeviceHeap).allocGlobal(bytes, 256);
    } catch {
      throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `a device malloc heap of ${bytes} bytes (cudaLimitMallocHeapSize) does not fit the emulator's 64 MiB globals window beside this context's module globals`);
    }
    mallocArena.set(heap, new DeviceMalloc(at, bytes));
  }
  // Keyed by the heap it was last filled from: a kernel object is per context today, but an env must never carry
  // one context's buffers into another's launch should kernels ever be shared.
  let E = k.env;
  if (!E || E.heap !== heap) E = k.env = new GridEnv(k.name, k.paramReads);
  const inst = k.instance ?? (k.instance = k.factory(R));
  try {
    E.reset(k, heap, cfg, nthreads, sl, ls);
    inst.bind(E);
    if (cfg.cooperative) {
      const nblocks = E.ncx * E.ncy * E.ncz;
      const cap = coopCapacity(cfg.smCount, cfg.cooperative, nthreads, sl);
      if (nblocks > cap) throw new CudaError(CUresult.CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, `cooperative grid of ${nblocks} blocks exceeds the ${cap} blocks of ${nthreads} threads the device holds at once`);
      const ws = coopWorkspace.get(heap)!;
      heap.views.u8.fill(0, ws - heap.base, ws - heap.base + COOP_WS_BYTES);
      E.env1 = Math.floor(ws / 2 ** 32); E.env2 = ws >>> 0;
      runCooperative(inst, E, nthreads, sl, ls);
    } else if (k.hasSync) runSync(inst.K, E, nthreads);
    else runFast(inst.K, E);
  } catch (e) {
    throw toCudaError(e, k.name, E.out);
  }
  return E.out;
}

function toCudaError(e: unknown, name: string, out: string): CudaError {
  let err: CudaError;
  if (e instanceof CudaError) err = e;
  else if (e instanceof TypeError && /BigInt/.test(e.message)) err = new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${name}: address outside the 53-bit range`);
  else if (e instanceof RangeError) err = new CudaError(CUresult.CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, `kernel ${name}: call stack too deep`);
  else err = new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, `kernel ${name}: emulator fault: ${(e as Error)?.message ?? e}`, { cause: e });
  (err as CudaError & { printf?: string }).printf = out;
  return err;
}

/**
 * CTA coordinates of linear block b, the same arithmetic for every block: a branch taken only at the end of
 * a row (cy++, cz++) is first reached after V8 has optimised the scheduler loop, and costs a deoptimisation
 * and a recompile in every fresh block worker.
 */
function setCta(E: LaunchEnv, b: number, ncx: number, ncy: number): void {
  const row = Math.floor(b / ncx);
  E.cx = b - row * ncx;
  E.cy = row % ncy;
  E.cz = Math.floor(row / ncy);
}

function runFast(K: (S: ThreadState) => number, E: GridEnv): void {
  // One state serves every thread in turn, as before; across launches too, so only the ids are reset.
  const S = E.fastThread;
  S.lb = 0; S.sp = 0;
  const { ntx, nty, ntz, ncx, ncy } = E;
  const shu8 = E.sh.u8;
  for (let b = E.b0; b < E.b1; b++) {
    setCta(E, b, ncx, ncy);
    // Loop-free kernels never reach a back-edge check: charge each CTA's threads to the watchdog budget.
    if ((E.wd -= ntx * nty * ntz) < 0) E.tick();
    if (E.sl > 0) shu8.fill(0);
    let lin = 0;
    for (let tz = 0; tz < ntz; tz++) for (let ty = 0; ty < nty; ty++) for (let tx = 0; tx < ntx; tx++, lin++) {
      S.tx = tx; S.ty = ty; S.tz = tz; S.lin = lin; S.lane = lin & 31; S.pc = 0;
      runThread(K, S);
    }
  }
}

const RUN = 0, WAIT = 1, DONE = 2;

/** K(S); 0 when the thread exits through a called function (R.EXIT). */
function runThread(K: (S: ThreadState) => number, S: ThreadState): number {
  try { return K(S); } catch (e) { if (e !== R.EXIT) throw e; return 0; }
}

/** Threads that ended in the last runRound. */
let roundEnded = 0;

/**
 * Runs every runnable thread of the CTA once, in index order, to its next sync point or its end; returns how
 * many parked at a plain __syncthreads() (and leaves how many ended in roundEnded).
 */
function runRound(K: (S: ThreadState) => number, threads: ThreadState[], status: Uint8Array, n: number): number {
  let plain = 0, ended = 0;
  for (let i = 0; i < n; i++) {
    if (status[i] !== RUN) continue;
    const S = threads[i];
    const r = runThread(K, S);
    if (r === 0) { status[i] = DONE; ended++; } else if (S.op !== SYNC_OPS.YIELD) {
      status[i] = WAIT;
      if (S.op === SYNC_OPS.BAR && S.a === 0 && S.b === 0) plain++;
    }
  }
  roundEnded = ended;
  return plain;
}

function runSync(K: (S: ThreadState) => number, E: GridEnv, n: number): void {
  // Thread states persist across CTAs (only pc is reset per CTA), so reusing them across launches is the same.
  const threads = E.threads;
  while (threads.length < n) threads.push(newThread());
  for (let tz = 0, lin = 0; tz < E.ntz; tz++) for (let ty = 0; ty < E.nty; ty++) for (let tx = 0; tx < E.ntx; tx++, lin++) {
    const S = threads[lin];
    S.tx = tx; S.ty = ty; S.tz = tz; S.lin = lin; S.lane = lin & 31; S.lb = lin * E.ls; S.sp = 0;
  }
  if (E.status.length !== n) E.status = new Uint8Array(n);
  const status = E.status;
  const nwarps = Math.ceil(n / 32);
  const { ncx, ncy } = E;
  for (let b = E.b0; b < E.b1; b++) {
    setCta(E, b, ncx, ncy);
    E.sh.u8.fill(0);
    E.ba.fill(0);
    for (let i = 0; i < n; i++) { threads[i].pc = 0; status[i] = RUN; }
    let live = n;
    for (;;) {
      const plain = runRound(K, threads, status, n);
      live -= roundEnded;
      if (live === 0) break;
      if (--E.wd < 0) E.tick();
      // Every live thread reached __syncthreads() in this round (so none waits on anything else): release them
      // without the scans below, which would find nothing else to do.
      if (plain === live) {
        for (let i = 0; i < n; i++) if (status[i] === WAIT) status[i] = RUN;
        E.ba[0] = 0;
        continue;
      }
      if (resolveWarps(threads, status, n, nwarps, false)) continue;
      if (resolveBarriers(threads, status, n, live, E.ba)) continue;
      if (status.includes(RUN)) continue; // yielded threads
      if (resolveWarps(threads, status, n, nwarps, true)) continue;
      throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, 'deadlock: threads wait at barriers or warp collectives that can never complete');
    }
  }
}

/**
 * A cooperative grid: every CTA resident at once (own shared memory, local frames and thread states). CTAs
 * take turns; in a turn each runnable thread runs to its next sync point or loop yield, then the CTA's warp
 * collectives and barriers resolve. A thread spinning on another CTA yields, so that CTA gets its turn.
 */
function runCooperative(inst: KernelInstance, E: LaunchEnv, n: number, sl: number, ls: number): void {
  const K = inst.K;
  const nb = E.ncx * E.ncy * E.ncz;
  E.lc = makeViews(new ArrayBuffer(ls * n * nb));
  const shs: HeapViews[] = [];
  const threads: ThreadState[][] = [];
  const status: Uint8Array[] = [];
  const live = new Int32Array(nb);
  const bas: Int32Array[] = [];
  for (let b = 0; b < nb; b++) {
    bas.push(new Int32Array(16));
    shs.push(makeViews(new ArrayBuffer(Math.ceil(Math.max(sl, 16) / 16) * 16)));
    const ts: ThreadState[] = [];
    for (let tz = 0, lin = 0; tz < E.ntz; tz++) for (let ty = 0; ty < E.nty; ty++) for (let tx = 0; tx < E.ntx; tx++, lin++) {
      const S = newThread();
      S.tx = tx; S.ty = ty; S.tz = tz; S.lin = lin; S.lane = lin & 31; S.lb = (b * n + lin) * ls;
      ts.push(S);
    }
    threads.push(ts);
    status.push(new Uint8Array(n));
    live[b] = n;
  }
  const nwarps = Math.ceil(n / 32);
  let remaining = nb;
  while (remaining > 0) {
    for (let b = 0; b < nb; b++) {
      if (live[b] === 0) continue;
      E.cx = b % E.ncx; E.cy = Math.floor(b / E.ncx) % E.ncy; E.cz = Math.floor(b / (E.ncx * E.ncy));
      E.sh = shs[b];
      E.ba = bas[b];
      inst.bind(E);
      const ts = threads[b], st = status[b];
      let yielded = 0;
      for (let i = 0; i < n; i++) {
        if (st[i] !== RUN) continue;
        const r = runThread(K, ts[i]);
        if (r === 0) { st[i] = DONE; live[b]--; } else if (ts[i].op === SYNC_OPS.YIELD) yielded++; else st[i] = WAIT;
      }
      if (live[b] === 0) { remaining--; continue; }
      if (--E.wd < 0) E.tick();
      if (resolveWarps(ts, st, n, nwarps, false) || resolveBarriers(ts, st, n, live[b], E.ba) || yielded > 0) continue;
      if (resolveWarps(ts, st, n, nwarps, true)) continue;
      throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, 'deadlock: threads wait at barriers or warp collectives that can never complete');
    }
  }
}

function resolveBarriers(threads: ThreadState[], status: Uint8Array, n: number, live: number, arrived: Int32Array): boolean {
  let waiting = 0;
  let plain = true;
  for (let i = 0; i < n; i++) {
    if (status[i] !== WAIT || threads[i].op >= 10) continue;
    waiting++;
    const S = threads[i];
    if (S.op !== SYNC_OPS.BAR || S.b !== 0 || S.a !== 0) plain = false;
  }
  if (waiting === 0) return false;
  // The common case, __syncthreads(): everyone alive waits at barrier 0.
  if (plain && waiting === live) {
    for (let i = 0; i < n; i++) if (status[i] === WAIT) status[i] = RUN;
    arrived[0] = 0;
    return true;
  }
  // A counted barrier (bar.sync id, count) may release a subset; otherwise every live thread must wait.
  const byId = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (status[i] !== WAIT || threads[i].op >= 10) continue;
    const id = Number(threads[i].a);
    let l = byId.get(id);
    if (!l) { l = []; byId.set(id, l); }
    l.push(i);
  }
  for (const ids of byId.values()) {
    const need = threads[ids[0]].b;
    const id = Number(threads[ids[0]].a) & 15;
    // bar.arrive threads count toward the barrier's thread count without waiting (producer/consumer).
    const have = ids.length + arrived[id];
    if ((have >= (need > 0 ? need : n)) || (waiting === live && byId.size === 1)) {
      arrived[id] = Math.max(0, have - (need > 0 ? need : n));
      const op = threads[ids[0]].op;
      let popc = 0, all = true, any = false;
      for (const i of ids) { const p = Boolean(threads[i].c); if (p) popc++; all &&= p; any ||= p; }
      for (const i of ids) {
        const S = threads[i];
        S.r = op === SYNC_OPS.BAR_POPC ? popc : op === SYNC_OPS.BAR_AND ? all : any;
        status[i] = RUN;
      }
      return true;
    }
  }
  if (waiting === live) {
    // Different barrier ids with everyone waiting: release them all rather than deadlock.
    for (const ids of byId.values()) for (const i of ids) status[i] = RUN;
    return true;
  }
  return false;
}

const group: number[] = [];
const vals: unknown[] = new Array(32);

function resolveWarps(threads: ThreadState[], status: Uint8Array, n: number, nwarps: number, force: boolean): boolean {
  let progress = false;
  for (let w = 0; w < nwarps; w++) {
    const base = w * 32;
    const end = Math.min(n, base + 32);
    for (let i = base; i < end; i++) {
      if (status[i] !== WAIT || threads[i].op < 10) continue;
      const site = threads[i].site;
      const mask = threads[i].m | 0;
      group.length = 0;
      let gmask = 0;
      for (let j = base; j < end; j++) {
        if (status[j] === WAIT && threads[j].op >= 10 && threads[j].site === site) { group.push(j); gmask |= 1 << (j - base); }
      }
      let complete = threads[i].op === SYNC_OPS.ACTIVEMASK || force;
      if (!complete) {
        complete = true;
        for (let j = base; j < end; j++) {
          const bit = 1 << (j - base);
          if ((mask & bit) && !(gmask & bit) && status[j] !== DONE) { complete = false; break; }
        }
      }
      if (!complete) continue;
      completeWarpOp(threads, base, gmask);
      for (const j of group) status[j] = RUN;
      progress = true;
      if (force) return true;
    }
  }
  return progress;
}

function completeWarpOp(threads: ThreadState[], base: number, gmask: number): void {
  const first = threads[group[0]];
  for (const j of group) vals[j - base] = threads[j].a;
  switch (first.op) {
    case SYNC_OPS.SHFL:
      for (const j of group) {
        const S = threads[j];
        const lane = j - base;
        const b = S.b & 31;
        const c = Number(S.c);
        const seg = (c >>> 8) & 31;
        const maxLane = (lane & seg) | (c & 31 & ~seg);
        const minLane = lane & seg;
        let src: number;
        let ok: boolean;
        switch (S.k) {
          case 0: src = lane - b; ok = src >= maxLane; break;
          case 1: src = lane + b; ok = src <= maxLane; break;
          case 2: src = lane ^ b; ok = src <= maxLane; break;
          default: src = minLane | (b & ~seg); ok = src <= maxLane; break;
        }
        if (!ok) src = lane;
        S.r = gmask & (1 << src) ? vals[src] : S.a;
        S.rp = ok;
      }
      break;
    case SYNC_OPS.VOTE: {
      let ballot = 0, all = true, any = false;
      for (const j of group) { const p = Boolean(threads[j].a); if (p) ballot |= 1 << (j - base); all &&= p; any ||= p; }
      for (const j of group) {
        const S = threads[j];
        S.r = S.k === 0 ? all : S.k === 1 ? any : S.k === 2 ? all || !any : ballot | 0;
      }
      break;
    }
    case SYNC_OPS.ACTIVEMASK:
      for (const j of group) threads[j].r = gmask | 0;
      break;
    case SYNC_OPS.MATCH_ANY:
      for (const j of group) {
        let m = 0;
        for (const o of group) if (vals[o - base] === vals[j - base]) m |= 1 << (o - base);
        threads[j].r = m | 0;
      }
      break;
    case SYNC_OPS.MATCH_ALL: {
      const same = group.every((o) => vals[o - base] === vals[group[0] - base]);
      for (const j of group) { threads[j].r = same ? gmask | 0 : 0; threads[j].rp = same; }
      break;
    }
    case SYNC_OPS.REDUX: {
      const signed = Boolean(first.c);
      let acc = Number(vals[group[0] - base]) | 0;
      for (let x = 1; x < group.length; x++) {
        const v = Number(vals[group[x] - base]) | 0;
        switch (first.k) {
          case 0: acc = (acc + v) | 0; break;
          case 1: acc = signed ? Math.min(acc, v) : ((acc >>> 0) < (v >>> 0) ? acc : v); break;
          case 2: acc = signed ? Math.max(acc, v) : ((acc >>> 0) > (v >>> 0) ? acc : v); break;
          case 3: acc &= v; break;
          case 4: acc |= v; break;
          default: acc ^= v; break;
        }
      }
      for (const j of group) threads[j].r = acc;
      break;
    }
    default: // WARPSYNC
      break;
  }
}
