// Loading one PTX image into a context: parse, place .global/.const variables in the context's globals
// window with their initialisers, compile every kernel (refusing unsupported instructions here, at load,
// never at run time), and describe it as ModuleInfo.

import { CudaError, CUresult, GlobalInfo, KernelInfo, ModuleInfo } from '../../server/src/backend';
import { FuncDecl, PtxModule, VarDecl, typeSize } from './ir';
import { PtxParseError, paramLayout, parsePtx } from './parser';
import { compileModule, functionAddrs } from './codegen';
import { UnsupportedError, clsOf, literal } from './values';
import { DeviceHeap } from './memory';
import { KernelFactory, LaunchKernel } from './scheduler';
import * as R from './rt';
import * as fs from 'fs';
import * as path from 'path';

export interface LoadedKernel extends LaunchKernel {
  gridSync: boolean;
  info: KernelInfo;
  maxThreads: number;
  maxDynamicShared: number;
}

export interface LoadedModule {
  kernels: LoadedKernel[];
  globals: GlobalInfo[];
  info: ModuleInfo;
  unloaded: boolean;
}

/** Default dynamic shared memory a kernel may use without cuFuncSetAttribute (the driver's 48 KiB). */
export const DEFAULT_DYNAMIC_SHARED = 48 * 1024;

export function loadPtx(text: string, heap: DeviceHeap): LoadedModule {
  let ptx: PtxModule;
  try {
    ptx = parsePtx(text);
  } catch (e) {
    throw asLoadError(e);
  }
  const globals = placeGlobals(ptx, heap);
  const addrs = new Map(globals.map((g) => [g.name, g.addr]));
  try {
    const codes = compileModule(ptx, { global: addrs });
    const kernels: LoadedKernel[] = codes.map((c) => {
      const decl = ptx.funcs.find((f) => f.name === c.name && f.kind === 'entry')!;
      let factory: KernelFactory;
      // Debugging aid: RGPU_EMU_DUMP=<dir> writes each generated kernel for reading and stepping through.
      if (process.env.RGPU_EMU_DUMP) fs.writeFileSync(path.join(process.env.RGPU_EMU_DUMP, `${c.name}.js`), c.src);
      try {
        factory = new Function('R', c.src) as KernelFactory;
      } catch (e) {
        throw new CudaError(CUresult.CUDA_ERROR_INVALID_PTX, `kernel ${c.name}: emulator code generation failed: ${(e as Error).message}`, { cause: e });
      }
      const info = kernelInfo(ptx, decl, c.sharedStatic, c.localBytes);
      return { ...c, factory, info, maxThreads: info.attrs.maxThreadsPerBlock, maxDynamicShared: DEFAULT_DYNAMIC_SHARED - c.sharedStatic };
    });
    return { kernels, globals, info: { kernels: kernels.map((k) => k.info), globals }, unloaded: false };
  } catch (e) {
    for (const g of globals) heap.releaseGlobal(g.addr, g.size);
    throw asLoadError(e);
  }
}

/** Every load failure is a CudaError: malformed input must never surface as an internal exception. */
function asLoadError(e: unknown): CudaError {
  if (e instanceof CudaError) return e;
  if (e instanceof UnsupportedError) return new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, e.message, { cause: e });
  if (e instanceof PtxParseError) return new CudaError(CUresult.CUDA_ERROR_INVALID_PTX, e.message, { cause: e });
  return new CudaError(CUresult.CUDA_ERROR_INVALID_PTX, `malformed PTX: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

function kernelInfo(ptx: PtxModule, k: FuncDecl, shared: number, local: number): KernelInfo {
  const { offsets, total } = paramLayout(k.params);
  const dims = k.reqntid ?? k.maxntid;
  const maxThreads = dims ? Math.min(1024, dims.reduce((a, b) => a * b, 1)) : 1024;
  const constBytes = ptx.vars.filter((v) => v.space === 'const').reduce((s, v) => s + varSize(v), 0);
  const sm = parseInt(/sm_(\d+)/.exec(ptx.target)?.[1] ?? '75', 10);
  return {
    name: k.name,
    params: k.params.map((p, i) => ({ offset: offsets[i], size: p.size })),
    paramSize: total,
    attrs: {
      maxThreadsPerBlock: maxThreads,
      sharedSizeBytes: shared,
      constSizeBytes: constBytes,
      localSizeBytes: local,
      numRegs: Math.min(255, k.regs.length),
      ptxVersion: Math.round(ptx.version * 10),
      binaryVersion: sm,
      maxDynamicSharedSizeBytes: DEFAULT_DYNAMIC_SHARED - shared,
    },
  };
}

function varSize(v: VarDecl): number {
  return typeSize(v.type) * v.vec * Math.max(v.count, 0);
}

function placeGlobals(ptx: PtxModule, heap: DeviceHeap): GlobalInfo[] {
  const out: GlobalInfo[] = [];
  const vars = ptx.vars.filter((v) => (v.space === 'global' || v.space === 'const') && !v.extern);
  for (const v of vars) {
    const size = varSize(v);
    out.push({ name: v.name, addr: heap.allocGlobal(size, v.align), size });
  }
  const addr = new Map(out.map((g) => [g.name, g.addr]));
  // Function-pointer tables (`.global .u64 table[] = {f, g}`) hold the addresses indirect calls switch on.
  for (const [n, a] of functionAddrs(ptx)) if (!addr.has(n)) addr.set(n, a);
  try {
    vars.forEach((v, i) => { if (v.init) writeInit(v, out[i].addr, heap, addr); });
  } catch (e) {
    for (const g of out) heap.releaseGlobal(g.addr, g.size);
    const msg = e instanceof Error ? e.message : String(e);
    throw new CudaError(CUresult.CUDA_ERROR_INVALID_PTX, `bad initialiser: ${msg}`, { cause: e });
  }
  return out;
}

function writeInit(v: VarDecl, base: number, heap: DeviceHeap, addrs: Map<string, number>): void {
  const es = typeSize(v.type);
  const dv = new DataView(heap.views.buf);
  const off0 = base - heap.base;
  const limit = varSize(v);
  v.init!.forEach((text, i) => {
    if (i * es + es > limit) throw new Error(`${v.name}: too many initialiser elements`);
    const off = off0 + i * es;
    let value: number | bigint;
    const sym = /^([A-Za-z_$][\w$]*)(?:\+(\d+))?$/.exec(text);
    if (sym) {
      const a = addrs.get(sym[1]);
      if (a === undefined) throw new Error(`${v.name}: unknown symbol ${sym[1]} in initialiser`);
      value = a + (sym[2] ? parseInt(sym[2], 10) : 0);
    } else {
      // Evaluate the literal exactly as the compiler would as an instruction operand of this type.
      value = new Function('R', `return ${literal(text, v.type)};`)(R) as number | bigint;
    }
    const c = clsOf(v.type);
    if (c === 'f') dv.setFloat32(off, Number(value), true);
    else if (c === 'd') dv.setFloat64(off, Number(value), true);
    else if (es === 8) dv.setBigInt64(off, BigInt(value), true);
    else if (es === 4) dv.setInt32(off, Number(value) | 0, true);
    else if (es === 2) dv.setInt16(off, Number(value) << 16 >> 16, true);
    else dv.setInt8(off, Number(value) << 24 >> 24);
  });
}
