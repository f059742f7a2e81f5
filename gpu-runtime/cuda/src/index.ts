// Entry point of the CUDA backend (real GPUs through the host's libcuda).

import type { Backend } from '../../server/src/backend';
import { CudaBackend } from './backend';
import { Driver } from './binding';

/**
 * Loads the driver library and enumerates its GPUs. The library is `opts.libraryPath`, else $RGPU_LIBCUDA (so
 * a server started by scripts can be pointed at a fake or another driver build), else "libcuda.so.1" found
 * through the dynamic linker. Throws CudaError when the library cannot be loaded or cuInit fails.
 */
export function createCudaBackend(opts?: { libraryPath?: string }): Backend {
  return new CudaBackend(new Driver(opts?.libraryPath ?? (process.env.RGPU_LIBCUDA || 'libcuda.so.1')));
}

export { CudaBackend, CudaDevice, poolType } from './backend';
