// Runs one grid: builds the launch environment E, instantiates the compiled kernel and drives its threads.
// Kernels without sync points run each thread to completion in turn (fast path). Others run per CTA: every
// runnable thread runs to its next sync point, then warp collectives whose lanes have all arrived complete
// (gather every input first, then write every result), then a barrier releases once every live thread waits.

import { CudaError, CUresult } from '../../server/src/backend';
import { DeviceHeap, HeapViews, makeViews } from './memory';
import { LOCAL_WINDOW, SHARED_WINDOW } from './codegen';
import { SPILL_F64, SYNC_OPS } from './syncops';
import * as R from './rt';
import { formatPrintf } from './printf';

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
}

export interface ThreadState {
  tx: number; ty: number; tz: number; lin: number; lane: number; lb: number; sp: number; pc: number;
  v: unknown[]; vf: Float64Array; op: number; site: number; k: number; a: unknown; b: number; c: unknown; m: number; r: unknown; rp: boolean;
}

export interface LaunchEnv {
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
const coopWorkspace = new WeakMap<DeviceHeap, number>();
const COOP_WS_BYTES = 64;

const WD_CHUNK = 1 << 20;

function newThread(): ThreadState {
  return { tx: 0, ty: 0, tz: 0, lin: 0, lane: 0, lb: 0, sp: 0, pc: 0, v: [], vf: new Float64Array(SPILL_F64), op: 0, site: 0, k: 0, a: 0, b: 0, c: 0, m: 0, r: 0, rp: false };
}

/** Decodes the kernel-param reads the compiled code uses, from the packed param buffer. */
function decodeParams(buf: Uint8Array, reads: { off: number; type: string }[]): unknown[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return reads.map(({ off, type }) => {
    const size = type.endsWith('64') ? 8 : type.endsWith('16') ? 2 : type.endsWith('8') ? 1 : 4;
    if (off + size > buf.length) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `kernel parameter buffer is ${buf.length} bytes; the kernel reads ${size} bytes at offset ${off}`);
    switch (type) {
      case 'u8': case 'b8': return dv.getUint8(off);
      case 's8': return dv.getInt8(off);
      case 'u16': case 'b16': case 'f16': return dv.getUint16(off, true);
      case 's16': return dv.getInt16(off, true);
      case 'f32': return dv.getFloat32(off, true);
      case 'f64': return dv.getFloat64(off, true);
      case 'u64': case 's64': case 'b64': return R.pack64(dv.getInt32(off, true), dv.getInt32(off + 4, true));
      default: return dv.getInt32(off, true);
    }
  });
}

export function runGrid(k: LaunchKernel, heap: DeviceHeap, cfg: GridConfig): string {
  const [ntx, nty, ntz] = cfg.block;
  const [ncx, ncy, ncz] = cfg.grid;
  const nthreads = ntx * nty * ntz;
  const sl = k.sharedStatic + cfg.sharedMem;
  const ls = Math.ceil(Math.max(k.localBytes, 16) / 16) * 16;
  const sh = makeViews(new ArrayBuffer(Math.ceil(Math.max(sl, 16) / 16) * 16));
  const lc = makeViews(new ArrayBuffer(ls * (k.hasSync ? nthreads : 1)));
  // Before E captures the heap views: the first allocation may grow the heap.
  if (cfg.cooperative && !coopWorkspace.has(heap)) coopWorkspace.set(heap, heap.allocGlobal(COOP_WS_BYTES, 64));
  const deadline = Date.now() + cfg.watchdogMs;
  let out = '';
  const t0 = process.hrtime.bigint();
  const genericBytes = (S: ThreadState, addr: number, n: number): { u8: Uint8Array; off: number } => {
    if (addr >= SHARED_WINDOW && addr < SHARED_WINDOW + 2 ** 32) {
      const off = addr - SHARED_WINDOW;
      if (off + n > sl) E.sfault(off, n);
      return { u8: E.sh.u8, off };
    }
    if (addr >= LOCAL_WINDOW && addr < LOCAL_WINDOW + 2 ** 32) {
      const off = addr - LOCAL_WINDOW;
      if (off + n > ls) E.lfault(off, n);
      return { u8: lc.u8, off: S.lb + off };
    }
    return { u8: heap.views.u8, off: heap.check(addr, n) };
  };
  const cstring = (S: ThreadState, addr: number): string => {
    let s = '';
    for (let i = 0; i < 4096; i++) {
      const { u8, off } = genericBytes(S, addr + i, 1);
      if (u8[off] === 0) break;
      s += String.fromCharCode(u8[off]);
    }
    return s;
  };
  const E: LaunchEnv = {
    hb: heap.base, hl: heap.length, pg: heap.pages, g: heap.views, sh, sl, lc, ls,
    ntx, nty, ntz, ncx, ncy, ncz, nwarp: Math.ceil(nthreads / 32), nsm: cfg.smCount, dynsm: cfg.sharedMem,
    cx: 0, cy: 0, cz: 0, P: decodeParams(cfg.params, k.paramReads), wd: WD_CHUNK, env1: 0, env2: 0, yc: 0, ba: new Int32Array(16),
    tick() {
      if (Date.now() > deadline) throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_TIMEOUT, `kernel ${k.name} exceeded the ${cfg.watchdogMs} ms watchdog`);
      E.wd = WD_CHUNK;
    },
    trap() { throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, `kernel ${k.name} executed trap`); },
    badcall(addr) { throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION, `kernel ${k.name}: indirect call through 0x${addr.toString(16)}, which is not a function of this module`); },
    stackOverflow() { throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${k.name}: per-thread stack overflow`); },
    gfault(addr, size) {
      if (typeof addr === 'number' && addr % size !== 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${k.name}: misaligned ${size}-byte global access at 0x${addr.toString(16)}`);
      throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${k.name}: ${size}-byte global access at 0x${addr.toString(16)} is outside every allocation`);
    },
    sfault(off, size) {
      if (off % size !== 0 && off >= 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${k.name}: misaligned ${size}-byte shared access at ${off}`);
      throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${k.name}: shared access at ${off} outside the ${sl}-byte block`);
    },
    lfault(off, size) {
      if (off % size !== 0 && off >= 0) throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `kernel ${k.name}: misaligned ${size}-byte local access at ${off}`);
      throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `kernel ${k.name}: local access at ${off} outside the ${ls}-byte frame`);
    },
    vprintf(S, fmt, args) {
      let cur = args;
      const text = formatPrintf(cstring(S, fmt), (size) => {
        cur = Math.ceil(cur / size) * size;
        const { u8, off } = genericBytes(S, cur, size);
        cur += size;
        return new DataView(u8.buffer, u8.byteOffset + off, size);
      }, (a) => cstring(S, a));
      if (out.length < cfg.printfLimit) out += text;
      return text.length;
    },
    assertfail(S, msg, file, line, func) {
      out += `${cstring(S, file)}:${line}: ${cstring(S, func)}: block: [${E.cx},${E.cy},${E.cz}], thread: [${S.tx},${S.ty},${S.tz}] Assertion \`${cstring(S, msg)}\` failed.\n`;
      throw new CudaError(CUresult.CUDA_ERROR_ASSERT, `device-side assert in kernel ${k.name}`);
    },
    clock() { return Number((process.hrtime.bigint() - t0) & 0x7fffffffn); },
    clock64() { return Number(process.hrtime.bigint() - t0); },
    gtimer() { return Number(process.hrtime.bigint() & 0xfffffffffffffn); },
  };
  const inst = k.instance ?? (k.instance = k.factory(R));
  inst.bind(E);
  const K = inst.K;
  try {
    if (cfg.cooperative) {
      const nblocks = ncx * ncy * ncz;
      const cap = coopCapacity(cfg.smCount, cfg.cooperative, nthreads, sl);
      if (nblocks > cap) throw new CudaError(CUresult.CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, `cooperative grid of ${nblocks} blocks exceeds the ${cap} blocks of ${nthreads} threads the device holds at once`);
      const ws = coopWorkspace.get(heap)!;
      heap.views.u8.fill(0, ws - heap.base, ws - heap.base + COOP_WS_BYTES);
      E.env1 = Math.floor(ws / 2 ** 32); E.env2 = ws >>> 0;
      runCooperative(inst, E, nthreads, sl, ls);
    } else if (k.hasSync) runSync(K, E, nthreads);
    else runFast(K, E);
  } catch (e) {
    throw toCudaError(e, k.name, out);
  }
  return out;
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

function runFast(K: (S: ThreadState) => number, E: LaunchEnv): void {
  const S = newThread();
  const { ntx, nty, ntz, ncx, ncy, ncz } = E;
  const shu8 = E.sh.u8;
  for (let cz = 0; cz < ncz; cz++) for (let cy = 0; cy < ncy; cy++) for (let cx = 0; cx < ncx; cx++) {
    E.cx = cx; E.cy = cy; E.cz = cz;
    // Loop-free kernels never reach a back-edge check: charge each CTA's threads to the watchdog budget.
    if ((E.wd -= ntx * nty * ntz) < 0) E.tick();
    if (E.sl > 0) shu8.fill(0);
    let lin = 0;
    for (let tz = 0; tz < ntz; tz++) for (let ty = 0; ty < nty; ty++) for (let tx = 0; tx < ntx; tx++, lin++) {
      S.tx = tx; S.ty = ty; S.tz = tz; S.lin = lin; S.lane = lin & 31; S.pc = 0;
      try { K(S); } catch (e) { if (e !== R.EXIT) throw e; }
    }
  }
}

const RUN = 0, WAIT = 1, DONE = 2;

function runSync(K: (S: ThreadState) => number, E: LaunchEnv, n: number): void {
  const threads: ThreadState[] = [];
  for (let tz = 0, lin = 0; tz < E.ntz; tz++) for (let ty = 0; ty < E.nty; ty++) for (let tx = 0; tx < E.ntx; tx++, lin++) {
    const S = newThread();
    S.tx = tx; S.ty = ty; S.tz = tz; S.lin = lin; S.lane = lin & 31; S.lb = lin * E.ls;
    threads.push(S);
  }
  const status = new Uint8Array(n);
  const nwarps = Math.ceil(n / 32);
  for (let cz = 0; cz < E.ncz; cz++) for (let cy = 0; cy < E.ncy; cy++) for (let cx = 0; cx < E.ncx; cx++) {
    E.cx = cx; E.cy = cy; E.cz = cz;
    E.sh.u8.fill(0);
    E.ba.fill(0);
    for (let i = 0; i < n; i++) { threads[i].pc = 0; status[i] = RUN; }
    let live = n;
    for (;;) {
      let ran = 0;
      for (let i = 0; i < n; i++) {
        if (status[i] !== RUN) continue;
        ran++;
        let r = 0;
        try { r = K(threads[i]); } catch (e) { if (e !== R.EXIT) throw e; }
        if (r === 0) { status[i] = DONE; live--; } else if (threads[i].op !== SYNC_OPS.YIELD) status[i] = WAIT;
      }
      if (live === 0) break;
      if (--E.wd < 0) E.tick();
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
        let r = 0;
        try { r = K(ts[i]); } catch (e) { if (e !== R.EXIT) throw e; }
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
