// The emulated backend: devices that run CUDA kernels from their PTX on the CPU (see ARCHITECTURE.md).
//
// Pipeline: parser.ts (PTX text -> ir.ts) -> codegen.ts with alu.ts / memops.ts / syncops.ts (one JS
// function per kernel; unsupported instructions are refused here, at module load) -> module.ts (globals
// placed in the context's window, ModuleInfo) -> scheduler.ts (runs a grid: fast path for kernels without
// sync points, per-CTA resume scheduler otherwise) over memory.ts (one bounds-checked heap per context).
// device.ts maps all of it onto the server's Device/DeviceContext interface. Set RGPU_EMU_DUMP=<dir> to
// write the generated JS of every loaded kernel there.

import * as os from 'node:os';
import { Backend, Device } from '../../server/src/backend';
import { EmulatedDevice } from './device';
import { instanceInfo } from './profiles';
import { BlockPool } from './blockPool';

export interface EmulatedBackendOptions {
  /** Watchdog for one kernel launch (CUDA_ERROR_LAUNCH_TIMEOUT); default 60 s. */
  watchdogMs?: number;
  /**
   * Block workers (threads) that run large launches in parallel off the server thread (blockPool.ts); 0 runs
   * every launch inline. Default: RGPU_EMU_WORKERS, else one per CPU the host has (at most 4), none on one CPU.
   */
  workers?: number;
  /** Threads per launch (blocks x block size) from which a launch goes to the workers; RGPU_EMU_SPLIT_MIN. */
  splitMin?: number;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** A multi-core host runs large launches' blocks on all its cores; one core gains nothing from a second thread. */
function defaultWorkers(): number {
  const n = os.availableParallelism();
  return n > 1 ? Math.min(n, 4) : 0;
}

export function createEmulatedBackend(spec: { type: string; count: number }[], opts: EmulatedBackendOptions = {}): Backend {
  const devices: Device[] = [];
  const pool = BlockPool.create(opts.workers ?? envInt('RGPU_EMU_WORKERS') ?? defaultWorkers());
  const options = { watchdogMs: opts.watchdogMs ?? 60_000, printfLimit: 1 << 20, pool, splitMin: opts.splitMin ?? envInt('RGPU_EMU_SPLIT_MIN') };
  for (const { type, count } of spec) {
    for (let i = 0; i < count; i++) devices.push(new EmulatedDevice(instanceInfo(type, i), options));
  }
  return {
    kind: 'emulated',
    devices,
    close: async () => { await pool?.close(); },
  };
}

export { EmulatedDevice, EmulatedContext } from './device';
export { loadPtx } from './module';
