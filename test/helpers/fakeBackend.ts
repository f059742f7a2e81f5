// A memory-only Backend for protocol and server tests until (and besides) the emulator: device memory is a
// Buffer per allocation, every stream op runs at once, and a few kernels are written in JS by name so
// tests can launch, fault and printf without compiling anything.
//   fill_u32(u64 ptr, u32 value, u32 n)   writes value into n u32s at ptr
//   add_one_f32(u64 ptr, u32 n)           adds 1 to n floats at ptr
//   fault()                               breaks the context with CUDA_ERROR_ILLEGAL_ADDRESS
//   say(u32 k)                            printf("hello k\n") once per block (at most 64)
// Images are PTX-like text: `.entry NAME(.param .u64 a, .param .u32 b)` and `.global .u32 NAME[N];`.
import { randomBytes } from 'node:crypto';
import {
  CudaError,
  CUresult,
  type Backend,
  type BackendEvent,
  type BackendStream,
  type Device,
  type DeviceContext,
  type DeviceInfo,
  type KernelInfo,
  type LaunchConfig,
  type ModuleInfo,
} from '../../gpu-runtime/server/src/backend';

export interface FakeDeviceSpec {
  type: string;
  count?: number;
  totalMem?: number;
}

interface FakeModule {
  info: ModuleInfo;
  globals: Map<number, Buffer>;
}

interface FakeEvent {
  t: number;
  recorded: boolean;
}

let vaCounter = 0;

export function parseFakeModule(text: string, globalBase: number): { info: ModuleInfo; globals: Map<number, Buffer> } {
  const kernels: KernelInfo[] = [];
  for (const m of text.matchAll(/\.entry\s+(\w+)\s*\(([^)]*)\)/g)) {
    let off = 0;
    const params = [];
    for (const p of m[2].matchAll(/\.param\s+\.[a-z](\d+)/g)) {
      const size = Number(p[1]) / 8;
      off = Math.ceil(off / size) * size;
      params.push({ offset: off, size });
      off += size;
    }
    kernels.push({
      name: m[1],
      params,
      paramSize: off,
      attrs: { maxThreadsPerBlock: 1024, sharedSizeBytes: 0, constSizeBytes: 0, localSizeBytes: 0, numRegs: 16, ptxVersion: 80, binaryVersion: 80, maxDynamicSharedSizeBytes: 49152 },
    });
  }
  if (kernels.length === 0 && !/\.global/.test(text)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_IMAGE, 'no .entry or .global in the image');
  const globals = new Map<number, Buffer>();
  const ginfo = [];
  let addr = globalBase;
  for (const g of text.matchAll(/\.global\s+\.[a-z](\d+)\s+(\w+)(?:\[(\d+)\])?/g)) {
    const size = (Number(g[1]) / 8) * Number(g[3] ?? 1);
    ginfo.push({ name: g[2], addr, size });
    globals.set(addr, Buffer.alloc(size));
    addr += Math.ceil(size / 256) * 256;
  }
  return { info: { kernels, globals: ginfo }, globals };
}

class FakeContext implements DeviceContext {
  readonly va: { base: number; size: number };
  private readonly mem = new Map<number, Buffer>();
  private readonly modules = new Set<FakeModule>();
  private deferred = 0;
  private sticky = 0;
  private destroyed = false;
  private nextGlobal: number;

  constructor(
    private readonly device: FakeDevice,
    vaSize: number,
  ) {
    // Windows of different contexts never overlap, so a stray address of one session is never another's.
    const base = 2 ** 40 * (1 + (++vaCounter % 200));
    this.va = { base, size: vaSize };
    this.nextGlobal = base - 2 ** 30;
  }

  get stickyError(): number {
    return this.sticky;
  }

  /** Backing store of [addr, addr+len): an allocation or a module global. */
  private view(addr: number, len: number): Buffer {
    for (const [base, buf] of this.mem) if (addr >= base && addr + len <= base + buf.length) return buf.subarray(addr - base, addr - base + len);
    for (const m of this.modules) for (const [base, buf] of m.globals) if (addr >= base && addr + len <= base + buf.length) return buf.subarray(addr - base, addr - base + len);
    throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `fake device: no memory at 0x${addr.toString(16)}+${len}`);
  }

  alloc(addr: number, size: number): void {
    if (this.device.used + size > this.device.info.totalMem) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, 'fake device is full');
    this.mem.set(addr, Buffer.alloc(size));
    this.device.used += size;
  }

  free(addr: number): void {
    const b = this.mem.get(addr);
    if (!b) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'not allocated');
    this.mem.delete(addr);
    this.device.used -= b.length;
  }

  enqueueWrite(_s: BackendStream, dst: number, src: Uint8Array): void {
    this.view(dst, src.length).set(src);
  }

  enqueueRead(_s: BackendStream, src: number, dst: Uint8Array): Promise<void> {
    dst.set(this.view(src, dst.length));
    return Promise.resolve();
  }

  enqueueCopy(_s: BackendStream, dst: number, src: number, size: number): void {
    this.view(dst, size).set(this.view(src, size));
  }

  enqueueWrite2D(_s: BackendStream, dst: number, dpitch: number, src: Uint8Array, width: number, height: number): void {
    for (let r = 0; r < height; r++) this.view(dst + r * dpitch, width).set(src.subarray(r * width, (r + 1) * width));
  }

  enqueueRead2D(_s: BackendStream, src: number, spitch: number, dst: Uint8Array, width: number, height: number): Promise<void> {
    for (let r = 0; r < height; r++) dst.set(this.view(src + r * spitch, width), r * width);
    return Promise.resolve();
  }

  enqueueCopy2D(_s: BackendStream, dst: number, dpitch: number, src: number, spitch: number, width: number, height: number): void {
    for (let r = 0; r < height; r++) this.view(dst + r * dpitch, width).set(this.view(src + r * spitch, width));
  }

  enqueueMemset(_s: BackendStream, dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void {
    for (let r = 0; r < height; r++) {
      const row = this.view(dst + r * pitch, width * elemSize);
      for (let i = 0; i < width; i++) {
        if (elemSize === 1) row.writeUInt8(value & 0xff, i);
        else if (elemSize === 2) row.writeUInt16LE(value & 0xffff, i * 2);
        else row.writeUInt32LE(value >>> 0, i * 4);
      }
    }
  }

  loadModule(image: Uint8Array, _kind: 'fatbin' | 'ptx' | 'cubin', _name: string): { handle: unknown; info: ModuleInfo } {
    const parsed = parseFakeModule(Buffer.from(image).toString('utf8'), this.nextGlobal);
    this.nextGlobal += 2 ** 20;
    const m: FakeModule = parsed;
    this.modules.add(m);
    return { handle: m, info: m.info };
  }

  unloadModule(handle: unknown): void {
    this.modules.delete(handle as FakeModule);
  }

  setKernelAttribute(): void {}

  launch(_s: BackendStream, module: unknown, kernel: number, cfg: LaunchConfig, onPrintf: (text: string) => void): void {
    const k = (module as FakeModule).info.kernels[kernel];
    const p = Buffer.from(cfg.params.buffer, cfg.params.byteOffset, cfg.params.length);
    const arg = (i: number): number => (k.params[i].size === 8 ? Number(p.readBigUInt64LE(k.params[i].offset)) : p.readUInt32LE(k.params[i].offset));
    try {
      switch (k.name) {
        case 'fill_u32': {
          const v = this.view(arg(0), arg(2) * 4);
          for (let i = 0; i < arg(2); i++) v.writeUInt32LE(arg(1), i * 4);
          break;
        }
        case 'add_one_f32': {
          const v = this.view(arg(0), arg(1) * 4);
          for (let i = 0; i < arg(1); i++) v.writeFloatLE(v.readFloatLE(i * 4) + 1, i * 4);
          break;
        }
        case 'fault':
          throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, 'fault() kernel');
        case 'say': {
          // Capped: fuzzed grids can be 2^64 blocks.
          const blocks = Math.min(cfg.grid[0] * cfg.grid[1] * cfg.grid[2], 64);
          for (let b = 0; b < blocks; b++) onPrintf(`hello ${arg(0)}\n`);
          break;
        }
      }
    } catch (e) {
      const code = e instanceof CudaError ? e.code : CUresult.CUDA_ERROR_LAUNCH_FAILED;
      this.sticky = code;
      if (!this.deferred) this.deferred = code;
    }
  }

  createStream(): BackendStream {
    return {};
  }
  destroyStream(): void {}

  synchronize(): Promise<void> {
    const code = this.sticky || this.deferred;
    this.deferred = 0;
    return code ? Promise.reject(new CudaError(code)) : Promise.resolve();
  }

  query(): boolean {
    return true;
  }

  createEvent(): BackendEvent {
    return { t: 0, recorded: false } satisfies FakeEvent;
  }
  destroyEvent(): void {}
  recordEvent(e: BackendEvent): void {
    (e as FakeEvent).t = performance.now();
    (e as FakeEvent).recorded = true;
  }
  streamWaitEvent(): void {}
  synchronizeEvent(): Promise<void> {
    return this.synchronize();
  }
  queryEvent(): boolean {
    return true;
  }
  elapsed(start: BackendEvent, end: BackendEvent): number {
    const a = start as FakeEvent, b = end as FakeEvent;
    if (!a.recorded || !b.recorded) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, 'event not recorded');
    return b.t - a.t;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.mem.values()) this.device.used -= b.length;
    this.mem.clear();
    this.modules.clear();
    this.device.contexts.delete(this);
  }
}

export class FakeDevice implements Device {
  used = 0;
  readonly contexts = new Set<FakeContext>();
  constructor(readonly info: DeviceInfo) {}

  createContext(opts: { vaSize: number }): DeviceContext {
    const c = new FakeContext(this, opts.vaSize);
    this.contexts.add(c);
    return c;
  }

  memUsed(): number {
    return this.used;
  }
}

export class FakeBackend implements Backend {
  readonly kind = 'emulated' as const;
  readonly devices: FakeDevice[] = [];
  closed = false;

  constructor(spec: FakeDeviceSpec[] = [{ type: 'T4', count: 2 }, { type: 'A100-40GB', count: 1 }]) {
    let bus = 1;
    for (const s of spec) {
      for (let i = 0; i < (s.count ?? 1); i++) {
        this.devices.push(
          new FakeDevice({
            type: s.type,
            name: `Fake ${s.type}`,
            totalMem: s.totalMem ?? 64 * 2 ** 20,
            uuid: randomBytes(16),
            ccMajor: 7,
            ccMinor: 5,
            attributes: new Array<number>(140).fill(0),
            driverVersion: 13000,
            pciDomain: 0,
            pciBus: bus++,
            pciDevice: 0,
          }),
        );
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
