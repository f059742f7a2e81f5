// The CUDA backend: the server's Backend on the host's real GPUs, through koffi bindings to libcuda.
//
// Device printf: the real driver prints device printf output to the process's stdout when the context
// synchronises; nothing in the driver API hands that text to the caller, and in one process the sessions' output
// would interleave. So this in-process backend (--cuda-in-process) never calls `onPrintf`: device printf goes to
// the server's stdout. The default, workerBackend.ts, runs each context in a process of its own and reads its
// stdout instead.

import { Backend, CudaError, Device, DeviceContext, DeviceInfo } from '../../server/src/backend';
import { getProfile, PROFILE_TYPES } from '../../emulator/src/profiles';
import { Driver } from './binding';
import { CudaContext } from './context';

/** One past the largest CUdevice_attribute in CUDA 13.0. */
const ATTRIBUTE_COUNT = 148;
const CU_DEVICE_ATTRIBUTE_CC_MAJOR = 75;
const CU_DEVICE_ATTRIBUTE_CC_MINOR = 76;
const CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
const CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34;
const CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50;

export class CudaDevice implements Device {
  readonly info: DeviceInfo;
  private readonly contexts = new Set<CudaContext>();

  constructor(private readonly drv: Driver, readonly ordinal: number) {
    this.info = queryDeviceInfo(drv, ordinal);
  }

  createContext(opts: { vaSize: number }): DeviceContext {
    const { drv } = this;
    drv.check(drv.fn.cuCtxCreate_v2(drv.out, 0, this.ordinal), 'cuCtxCreate');
    const ctx = drv.readU64();
    try {
      const c = new CudaContext(drv, ctx, this.ordinal, opts.vaSize, () => this.contexts.delete(c));
      this.contexts.add(c);
      return c;
    } catch (e) {
      drv.fn.cuCtxDestroy_v2(ctx);
      drv.forgetCurrent(ctx);
      throw e;
    }
  }

  memUsed(): number {
    let n = 0;
    for (const c of this.contexts) n += c.mappedBytes;
    return n;
  }

  destroyAll(): void {
    for (const c of [...this.contexts]) c.destroy();
  }
}

export class CudaBackend implements Backend {
  readonly kind = 'cuda' as const;
  readonly devices: readonly CudaDevice[];

  constructor(private readonly drv: Driver) {
    drv.check(drv.fn.cuInit(0), 'cuInit');
    drv.check(drv.fn.cuDeviceGetCount(drv.out), 'cuDeviceGetCount');
    const count = drv.readI32();
    this.devices = Array.from({ length: count }, (_, i) => new CudaDevice(drv, i));
  }

  async close(): Promise<void> {
    for (const d of this.devices) d.destroyAll();
  }
}

function queryDeviceInfo(drv: Driver, ordinal: number): DeviceInfo {
  const f = drv.fn;
  drv.check(f.cuDeviceGet(drv.out, ordinal), 'cuDeviceGet');
  const dev = drv.readI32();
  const nameBuf = Buffer.alloc(256);
  drv.check(f.cuDeviceGetName(nameBuf, nameBuf.length, dev), 'cuDeviceGetName');
  const end = nameBuf.indexOf(0);
  const name = nameBuf.subarray(0, end < 0 ? nameBuf.length : end).toString('latin1');
  drv.check(f.cuDeviceTotalMem_v2(drv.out, dev), 'cuDeviceTotalMem');
  const totalMem = drv.readNum();
  drv.check(f.cuDeviceGetUuid_v2(drv.out, dev), 'cuDeviceGetUuid');
  const uuid = new Uint8Array(drv.out.subarray(0, 16));
  drv.check(f.cuDriverGetVersion(drv.out), 'cuDriverGetVersion');
  const driverVersion = drv.readI32();
  const attributes = new Array<number>(ATTRIBUTE_COUNT).fill(0);
  for (let a = 1; a < ATTRIBUTE_COUNT; a++) {
    // Attributes this driver does not know (older than the header we list) stay 0.
    if (f.cuDeviceGetAttribute(drv.out, a, dev) === 0) attributes[a] = drv.readI32();
  }
  return {
    type: poolType(name), name, totalMem, uuid,
    ccMajor: attributes[CU_DEVICE_ATTRIBUTE_CC_MAJOR], ccMinor: attributes[CU_DEVICE_ATTRIBUTE_CC_MINOR],
    attributes, driverVersion,
    pciDomain: attributes[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID], pciBus: attributes[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID],
    pciDevice: attributes[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID],
  };
}

/** The pool type name for a marketing name: a known profile's type ("Tesla T4" -> "T4"), else a slug of it. */
export function poolType(name: string): string {
  for (const t of PROFILE_TYPES) if (getProfile(t).name === name) return t;
  return name.replace(/^(NVIDIA|Tesla)\s+/, '').trim().replace(/\s+/g, '-');
}

export { CudaError };
