// MODULE_LOAD/UNLOAD, LAUNCH and FUNC_SET_ATTR. Images are cached by content hash (moduleCache.ts) so a
// client can load a known module without sending it again.
import { CudaError, CUresult, type KernelInfo, type LaunchConfig, type ModuleInfo } from '../backend';
import { unpackArgs, packValue } from '../../../protocol/ts/codec';
import { decodeFuncSetAttrArgs, decodeLaunchArgs, decodeModuleUnloadArgs } from '../../../protocol/generated/ops';
import { HashMismatchError } from '../moduleCache';
import { wireU64 } from '../wire';
import type { HandlerTable } from '../handler';
import type { Session } from '../session';

const KINDS = new Set(['fatbin', 'ptx', 'cubin']);
/** Refilled for every launch (launch() is synchronous and keeps nothing; see LaunchConfig). */
const EMPTY_PARAMS = new Uint8Array(0);
const launchCfg: LaunchConfig = { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: EMPTY_PARAMS, cooperative: false };
const MAX_BLOCK_THREADS = 1024;

function kernelOf(s: Session, module: number, kernel: number): { handle: unknown; info: KernelInfo } {
  const m = s.module(module);
  const k = m.info.kernels[kernel];
  if (!k) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `module ${module} has no kernel ${kernel}`);
  return { handle: m.handle, info: k };
}

/** The MODULE_LOAD reply of contracts.md; addresses as u64 on the wire. */
function moduleReply(info: ModuleInfo): Buffer {
  return packValue({
    kernels: info.kernels.map((k) => ({ name: k.name, params: k.params.map((p) => [p.offset, p.size]), paramSize: k.paramSize, attrs: k.attrs })),
    globals: info.globals.map((g) => ({ name: g.name, addr: wireU64(g.addr), size: wireU64(g.size) })),
  });
}

export const moduleHandlers: HandlerTable = {
  MODULE_LOAD(f, s, env) {
    const a = unpackArgs(f.op, f.body, f.seq);
    const module = a.module, hash = a.hash, kind = a.kind, name = a.name ?? '';
    if (typeof module !== 'number' || !Number.isInteger(module)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'MODULE_LOAD: module must be an integer handle');
    if (typeof hash !== 'string' || typeof kind !== 'string' || typeof name !== 'string') {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'MODULE_LOAD: hash, kind and name must be strings');
    }
    if (!KINDS.has(kind)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `MODULE_LOAD: kind "${kind}" (expected fatbin, ptx or cubin)`);
    s.checkNewModule(module);
    let image: Uint8Array;
    if (f.bulk.length === 0) {
      const hit = env.cache.get(hash, s.id);
      if (!hit) throw new CudaError(CUresult.CUDA_ERROR_FILE_NOT_FOUND, `module ${hash} is not in the server's cache; send the image`);
      if (hit.kind !== kind) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `cached module ${hash} is a ${hit.kind}, not a ${kind}`);
      image = hit.image;
    } else {
      if (typeof a.size === 'number' && a.size !== f.bulk.length) {
        throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `MODULE_LOAD: size says ${a.size} bytes but ${f.bulk.length} were sent`);
      }
      try {
        image = env.cache.put(hash, s.id, f.bulk, kind).image;
      } catch (e) {
        if (e instanceof HashMismatchError) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, e.message, { cause: e });
        throw e;
      }
    }
    const k = kind as 'fatbin' | 'ptx' | 'cubin';
    if (s.ctx.loadModuleAsync) {
      return s.ctx.loadModuleAsync(image, k, name).then((loaded) => {
        // Another MODULE_LOAD of the same handle may have finished while this one was loading.
        if (s.isDestroyed) throw new CudaError(CUresult.CUDA_ERROR_CONTEXT_IS_DESTROYED, 'the session ended');
        try {
          s.checkNewModule(module);
        } catch (e) {
          s.ctx.unloadModule(loaded.handle);
          throw e;
        }
        s.addModule(module, loaded);
        return { body: moduleReply(loaded.info) };
      });
    }
    const loaded = s.ctx.loadModule(image, k, name);
    s.addModule(module, loaded);
    return { body: moduleReply(loaded.info) };
  },

  MODULE_UNLOAD(f, s) {
    s.unloadModule(decodeModuleUnloadArgs(f.body).module);
  },

  LAUNCH(f, s) {
    const a = decodeLaunchArgs(f.body);
    const m = s.module(a.module);
    const k = m.info.kernels[a.kernel];
    if (!k) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `module ${a.module} has no kernel ${a.kernel}`);
    if (!a.gridX || !a.gridY || !a.gridZ || !a.blockX || !a.blockY || !a.blockZ) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `LAUNCH ${k.name}: a grid or block dimension is 0`);
    }
    if (a.gridX > 0x7fffffff || a.gridY > 65535 || a.gridZ > 65535 || a.blockZ > 64) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `LAUNCH ${k.name}: grid (${a.gridX}, ${a.gridY}, ${a.gridZ}) or block z ${a.blockZ} beyond the device limits`);
    }
    const threads = a.blockX * a.blockY * a.blockZ;
    const maxThreads = k.attrs.maxThreadsPerBlock || MAX_BLOCK_THREADS;
    if (threads > maxThreads) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `LAUNCH ${k.name}: ${threads} threads per block exceeds ${maxThreads}`);
    }
    if (f.bulk.length < k.paramSize) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `LAUNCH ${k.name}: ${f.bulk.length} parameter bytes, the kernel takes ${k.paramSize}`);
    }
    const c = launchCfg;
    c.grid[0] = a.gridX; c.grid[1] = a.gridY; c.grid[2] = a.gridZ;
    c.block[0] = a.blockX; c.block[1] = a.blockY; c.block[2] = a.blockZ;
    c.sharedMem = a.sharedMem;
    c.params = f.bulk;
    c.cooperative = (a.launchFlags & 1) !== 0;
    try {
      s.ctx.launch(s.stream(f.stream), m.handle, a.kernel, c, s.onPrintf);
    } finally {
      c.params = EMPTY_PARAMS; // do not keep the frame's chunk alive
    }
  },

  FUNC_SET_ATTR(f, s) {
    const a = decodeFuncSetAttrArgs(f.body);
    const k = kernelOf(s, a.module, a.kernel);
    s.ctx.setKernelAttribute(k.handle, a.kernel, a.attr, a.value);
  },
};
