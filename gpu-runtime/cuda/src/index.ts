// Entry point of the CUDA backend (real GPUs through the host's libcuda).

import type { Backend } from '../../server/src/backend';
import { CudaBackend } from './backend';
import { Driver } from './binding';

/**
 * One Driver per library: the driver's current context is per thread and process-wide, and Driver caches it,
 * so two Drivers over the same library in one process would each trust a stale cache.
 */
const drivers = new Map<string, Driver>();

/**
 * Loads the driver library and enumerates its GPUs. The library is `opts.libraryPath`, else $RGPU_LIBCUDA (so
 * a server started by scripts can be pointed at a fake or another driver build), else "libcuda.so.1" found
 * through the dynamic linker. Throws CudaError when the library cannot be loaded or cuInit fails.
 */
export function createCudaBackend(opts?: { libraryPath?: string }): Backend {
  const path = opts?.libraryPath ?? (process.env.RGPU_LIBCUDA || 'libcuda.so.1');
  let drv = drivers.get(path);
  if (!drv) {
    drv = new Driver(path);
    drivers.set(path, drv);
  }
  return new CudaBackend(drv);
}

export { CudaBackend, CudaDevice, poolType } from './backend';
export { createCudaWorkerBackend } from './workerBackend';
