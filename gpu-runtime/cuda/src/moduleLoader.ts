// Module loading on the real driver and the metadata the client needs (contracts: MODULE_LOAD reply):
// kernel names and parameter layouts from the driver itself (cuModuleEnumerateFunctions, cuFuncGetName,
// cuFuncGetParamInfo: exact for every arch and for PTX JIT), function attributes, and the module's globals.
// The driver cannot enumerate globals, so their names come from the image (ELF symbols or PTX declarations)
// and their addresses from cuModuleGetGlobal.

import { CudaError, GlobalInfo, KernelInfo, ModuleInfo } from '../../server/src/backend';
import { extractImages, FatbinError, sniffImage } from '../../emulator/src/fatbin';
import { Driver } from './binding';

const CUDA_ERROR_INVALID_VALUE = 1;
const CUDA_ERROR_INVALID_IMAGE = 200;
/** CUfunction_attribute values in the order of KernelInfo.attrs. */
const FUNC_ATTRS = {
  maxThreadsPerBlock: 0, sharedSizeBytes: 1, constSizeBytes: 2, localSizeBytes: 3, numRegs: 4,
  ptxVersion: 5, binaryVersion: 6, maxDynamicSharedSizeBytes: 8,
} as const;
/** A kernel has at most 32764 bytes of parameters, so at most that many parameters: bounds the probe loop. */
const MAX_PARAMS = 32764;

export interface LoadedModule {
  handle: bigint;
  functions: bigint[];
  info: ModuleInfo;
}

/** Loads an image into the current context. Throws CudaError (INVALID_IMAGE for malformed input). */
export function loadModule(drv: Driver, image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin'): LoadedModule {
  const { data, symbolSources } = prepareImage(image, kind);
  drv.check(drv.fn.cuModuleLoadData(drv.out, data), 'cuModuleLoadData');
  const handle = drv.readU64();
  try {
    const functions = enumerateFunctions(drv, handle);
    const kernels = functions.map((fn) => describeKernel(drv, fn));
    const globals = findGlobals(drv, handle, symbolSources);
    return { handle, functions, info: { kernels, globals } };
  } catch (e) {
    drv.fn.cuModuleUnload(handle);
    throw e;
  }
}

/** The bytes the driver gets, and the images to read global names from. */
function prepareImage(image: Uint8Array, kind: string): { data: Buffer; symbolSources: { kind: 'ptx' | 'elf'; data: Uint8Array }[] } {
  const sniffed = sniffImage(image);
  const expected = kind === 'cubin' ? 'cubin' : kind;
  if (sniffed !== expected) throw new CudaError(CUDA_ERROR_INVALID_IMAGE, `image is not a ${kind} (looks like: ${sniffed})`);
  if (kind === 'ptx') {
    // The driver reads PTX as a NUL-terminated string.
    const data = Buffer.alloc(image.length + 1);
    data.set(image);
    return { data, symbolSources: [{ kind: 'ptx', data: image }] };
  }
  if (kind === 'cubin') return { data: Buffer.from(image), symbolSources: [{ kind: 'elf', data: image }] };
  try {
    // Only the first fatbin goes to the driver: the prelinked fatbins of a v2 wrapper that follow it are for
    // device linking, which this backend does not do (the linked image comes first).
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    const first = view.getUint16(6, true) + Number(view.getBigUint64(8, true));
    const images = extractImages(image.subarray(0, first));
    return { data: Buffer.from(image.subarray(0, first)), symbolSources: images };
  } catch (e) {
    throw new CudaError(CUDA_ERROR_INVALID_IMAGE, e instanceof FatbinError ? e.message : 'malformed fatbin', { cause: e });
  }
}

function enumerateFunctions(drv: Driver, mod: bigint): bigint[] {
  drv.check(drv.fn.cuModuleGetFunctionCount(drv.out, mod), 'cuModuleGetFunctionCount');
  const count = drv.out.readUInt32LE(0);
  if (count === 0) return [];
  const buf = Buffer.alloc(8 * count);
  drv.check(drv.fn.cuModuleEnumerateFunctions(buf, count, mod), 'cuModuleEnumerateFunctions');
  return Array.from({ length: count }, (_, i) => buf.readBigUInt64LE(8 * i));
}

function describeKernel(drv: Driver, fn: bigint): KernelInfo {
  const name: (string | null)[] = [null];
  drv.check(drv.fn.cuFuncGetName(name, fn), 'cuFuncGetName');
  const params = paramLayout(drv, fn);
  const last = params[params.length - 1];
  const attrs = {} as KernelInfo['attrs'];
  for (const [key, attr] of Object.entries(FUNC_ATTRS)) {
    drv.check(drv.fn.cuFuncGetAttribute(drv.out, attr, fn), `cuFuncGetAttribute(${key})`);
    attrs[key as keyof KernelInfo['attrs']] = drv.readI32();
  }
  return { name: name[0] ?? '', params, paramSize: last ? last.offset + last.size : 0, attrs };
}

/** cuFuncGetParamInfo for i = 0, 1, ... until CUDA_ERROR_INVALID_VALUE (the documented end marker). */
export function paramLayout(drv: Driver, fn: bigint): { offset: number; size: number }[] {
  const params: { offset: number; size: number }[] = [];
  const offset = drv.out.subarray(0, 8);
  const size = drv.out.subarray(8, 16);
  for (let i = 0; i < MAX_PARAMS; i++) {
    const rc = drv.fn.cuFuncGetParamInfo(fn, i, offset, size);
    if (rc === CUDA_ERROR_INVALID_VALUE) return params;
    drv.check(rc, 'cuFuncGetParamInfo');
    params.push({ offset: Number(offset.readBigUInt64LE(0)), size: Number(size.readBigUInt64LE(0)) });
  }
  throw new CudaError(CUDA_ERROR_INVALID_VALUE, 'cuFuncGetParamInfo never reported the end of the parameters');
}

function findGlobals(drv: Driver, mod: bigint, sources: { kind: 'ptx' | 'elf'; data: Uint8Array }[]): GlobalInfo[] {
  const names = new Set<string>();
  for (const s of sources) for (const n of s.kind === 'elf' ? elfObjectSymbols(s.data) : ptxGlobalNames(s.data)) names.add(n);
  const globals: GlobalInfo[] = [];
  const addr = drv.out.subarray(0, 8);
  const size = drv.out.subarray(8, 16);
  for (const name of names) {
    // Names the driver does not know (static, optimised away) are simply not globals of this module.
    if (drv.fn.cuModuleGetGlobal_v2(addr, size, mod, name) !== 0) continue;
    globals.push({ name, addr: Number(addr.readBigUInt64LE(0)), size: Number(size.readBigUInt64LE(0)) });
  }
  return globals;
}

/** Names declared `.global` / `.const` at module scope (not `.extern`) in PTX text. */
export function ptxGlobalNames(ptx: Uint8Array): string[] {
  const text = new TextDecoder('latin1').decode(ptx);
  const re = /^[ \t]*(?:\.visible[ \t]+|\.weak[ \t]+)?\.(?:global|const)[ \t]+(?:\.align[ \t]+\d+[ \t]+)?(?:\.v\d[ \t]+)?\.\w+[ \t]+([A-Za-z_$][\w$]*)/gm;
  return [...text.matchAll(re)].map((m) => m[1]);
}

/** STT_OBJECT symbols (__device__/__constant__ variables) of an ELF64 cubin; [] when the ELF is malformed (the driver judges it). */
export function elfObjectSymbols(elf: Uint8Array): string[] {
  try {
    const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
    const shoff = Number(v.getBigUint64(0x28, true));
    const shentsize = v.getUint16(0x3a, true);
    const shnum = v.getUint16(0x3c, true);
    if (shentsize < 64) return [];
    const names: string[] = [];
    for (let i = 0; i < shnum; i++) {
      const sh = shoff + i * shentsize;
      if (v.getUint32(sh + 4, true) !== 2) continue; // SHT_SYMTAB
      const symOff = Number(v.getBigUint64(sh + 24, true));
      const symSize = Number(v.getBigUint64(sh + 32, true));
      const strSh = shoff + v.getUint32(sh + 40, true) * shentsize;
      const strOff = Number(v.getBigUint64(strSh + 24, true));
      const strEnd = strOff + Number(v.getBigUint64(strSh + 32, true));
      if (symOff + symSize > elf.length || strEnd > elf.length) return [];
      for (let s = symOff; s + 24 <= symOff + symSize; s += 24) {
        // STT_OBJECT of any binding: whole-program builds make __device__ variables LOCAL, and the driver
        // still finds them by name (cudart's cudaMemcpyToSymbol relies on that).
        if ((v.getUint8(s + 4) & 0xf) !== 1) continue;
        let p = strOff + v.getUint32(s, true);
        const start = p;
        while (p < strEnd && elf[p] !== 0) p++;
        if (p > start) names.push(new TextDecoder('latin1').decode(elf.subarray(start, p)));
      }
    }
    return names;
  } catch {
    return []; // RangeError from DataView on a truncated ELF
  }
}
