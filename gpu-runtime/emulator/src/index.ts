// The emulated backend: devices that run CUDA kernels from their PTX on the CPU (see ARCHITECTURE.md).
//
// Pipeline: parser.ts (PTX text -> ir.ts) -> codegen.ts with alu.ts / memops.ts / syncops.ts (one JS
// function per kernel; unsupported instructions are refused here, at module load) -> module.ts (globals
// placed in the context's window, ModuleInfo) -> scheduler.ts (runs a grid: fast path for kernels without
// sync points, per-CTA resume scheduler otherwise) over memory.ts (one bounds-checked heap per context).
// device.ts maps all of it onto the server's Device/DeviceContext interface. Set RGPU_EMU_DUMP=<dir> to
// write the generated JS of every loaded kernel there.

import { Backend, Device } from '../../server/src/backend';
import { EmulatedDevice } from './device';
import { instanceInfo } from './profiles';

export interface EmulatedBackendOptions {
  /** Watchdog for one kernel launch (CUDA_ERROR_LAUNCH_TIMEOUT); default 60 s. */
  watchdogMs?: number;
  /** Worker threads for CTA-parallel launches; accepted for the interface, launches currently run inline. */
  workers?: number;
}

export function createEmulatedBackend(spec: { type: string; count: number }[], opts: EmulatedBackendOptions = {}): Backend {
  const devices: Device[] = [];
  const options = { watchdogMs: opts.watchdogMs ?? 60_000, printfLimit: 1 << 20 };
  for (const { type, count } of spec) {
    for (let i = 0; i < count; i++) devices.push(new EmulatedDevice(instanceInfo(type, i), options));
  }
  return {
    kind: 'emulated',
    devices,
    close: async () => undefined,
  };
}

export { EmulatedDevice, EmulatedContext } from './device';
export { loadPtx } from './module';
