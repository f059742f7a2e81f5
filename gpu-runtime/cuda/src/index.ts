// Entry point of the CUDA backend (real GPUs through the host's libcuda).

import type { Backend } from '../../server/src/backend';
import { CudaBackend } from './backend';
import { Driver } from './binding';

/**
 * Loads the driver library (default "libcuda.so.1", found through the dynamic linker) and enumerates its GPUs.
 * Throws CudaError when the library cannot be loaded or cuInit fails (e.g. CUDA_ERROR_NO_DEVICE).
 */
export function createCudaBackend(opts?: { libraryPath?: string }): Backend {
  return new CudaBackend(new Driver(opts?.libraryPath ?? 'libcuda.so.1'));
}

export { CudaBackend, CudaDevice, poolType } from './backend';
