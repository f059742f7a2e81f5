// --devices SPEC → Backends. The emulator and the CUDA binding are colleagues' packages loaded lazily, so
// a server that only uses one never loads (or needs) the other, and a missing one is a clear start-up
// error rather than a crash at import time.
import type { Backend } from './backend';
import { ServerError } from './errors';

export interface EmulatedSpec {
  type: string;
  count: number;
}

export interface DeviceSpec {
  cuda: boolean;
  emulated: EmulatedSpec[];
}

/** `cuda`, `emulated:T4x2,emulated:A100-40GB`, or both, comma-separated. */
export function parseDeviceSpec(spec: string): DeviceSpec {
  const out: DeviceSpec = { cuda: false, emulated: [] };
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    if (part === 'cuda') {
      out.cuda = true;
      continue;
    }
    const m = /^emulated:(.+?)(?:x(\d+))?$/.exec(part);
    if (!m || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m[1])) {
      throw new ServerError('RGPU_ERR_BAD_DEVICE_SPEC', `--devices: cannot parse "${part}" (expected cuda or emulated:TYPE[xCOUNT], e.g. emulated:T4x2)`);
    }
    const count = m[2] === undefined ? 1 : Number(m[2]);
    if (count < 1 || count > 64) throw new ServerError('RGPU_ERR_BAD_DEVICE_SPEC', `--devices: count of ${m[1]} must be 1..64`);
    const same = out.emulated.find((e) => e.type === m[1]);
    if (same) same.count += count;
    else out.emulated.push({ type: m[1], count });
  }
  if (!out.cuda && out.emulated.length === 0) throw new ServerError('RGPU_ERR_BAD_DEVICE_SPEC', '--devices: no devices given');
  return out;
}

// Paths kept in variables so that tsc does not resolve them: the packages may not exist in this build.
const EMULATOR_MODULE = '../../emulator/src/index';
const CUDA_MODULE = '../../cuda/src/index';
const FATBIN_MODULE = '../../emulator/src/fatbin';

async function loadFactory<T>(path: string, exportName: string, what: string): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(path)) as Record<string, unknown>;
  } catch (e) {
    throw new ServerError('RGPU_ERR_BACKEND_UNAVAILABLE', `the ${what} backend is not available in this build (${(e as Error).message.split('\n')[0]})`, { cause: e });
  }
  const f = mod[exportName];
  if (typeof f !== 'function') throw new ServerError('RGPU_ERR_BACKEND_UNAVAILABLE', `the ${what} backend does not export ${exportName}()`);
  return f as T;
}

export async function loadBackends(spec: DeviceSpec, opts: { watchdogMs?: number; workers?: number; cudaInProcess?: boolean } = {}): Promise<Backend[]> {
  const backends: Backend[] = [];
  try {
    if (spec.cuda) {
      // By default each session runs in its own worker process (device printf per session, crash isolation).
      const create = opts.cudaInProcess
        ? await loadFactory<() => Backend | Promise<Backend>>(CUDA_MODULE, 'createCudaBackend', 'CUDA')
        : await loadFactory<() => Promise<Backend>>(CUDA_MODULE, 'createCudaWorkerBackend', 'CUDA');
      const b = await create();
      if (b.devices.length === 0) throw new ServerError('RGPU_ERR_BACKEND_UNAVAILABLE', '--devices cuda: no CUDA GPU found on this host');
      backends.push(b);
    }
    if (spec.emulated.length) {
      const create = await loadFactory<(s: EmulatedSpec[], o?: object) => Backend>(EMULATOR_MODULE, 'createEmulatedBackend', 'emulator');
      backends.push(create(spec.emulated, opts));
      // The emulator parses untrusted fatbins; its bounded (wasm) zstd decoder loads asynchronously, and no
      // client may be served by the unbounded fallback.
      const fatbin = (await import(FATBIN_MODULE)) as { fatbinReady?: Promise<void> };
      await fatbin.fatbinReady;
    }
  } catch (e) {
    await Promise.allSettled(backends.map((b) => b.close()));
    if (e instanceof ServerError) throw e;
    throw new ServerError('RGPU_ERR_BACKEND_UNAVAILABLE', `cannot start the devices: ${(e as Error).message}`, { cause: e });
  }
  return backends;
}
