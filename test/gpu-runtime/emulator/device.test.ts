// The emulated backend as the server sees it: module kinds, refusal of what it cannot run, launch validation,
// memory isolation between contexts, globals, streams/events and teardown.

import { strict as assert } from 'node:assert';
import { CudaError, CUresult } from '../../../gpu-runtime/server/src/backend';
import { createEmulatedBackend } from '../../../gpu-runtime/emulator/src/index';
import { Session, hasNvcc, nvccBuild } from './harness';

const code = (c: number) => (e: unknown): boolean => e instanceof CudaError && e.code === c;

/** store.u32 out[tid] = tid * k; shared array to give the kernel a static shared size. */
const STORE_PTX = `
.version 8.0
.target sm_75
.address_size 64
.visible .entry store(.param .u64 out, .param .u32 k)
{
  .reg .b32 %r<6>; .reg .b64 %rd<6>;
  .shared .align 4 .b8 buf[1024];
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [k];
  mov.u32 %r2, %tid.x;
  mul.lo.s32 %r3, %r2, %r1;
  mul.wide.u32 %rd2, %r2, 4;
  add.s64 %rd3, %rd1, %rd2;
  st.global.u32 [%rd3], %r3;
  ret;
}
`;

describe('emulator: device and contexts', () => {
  it('loads PTX, reports the param layout and runs it', async () => {
    const s = new Session();
    const m = s.load(STORE_PTX);
    assert.deepEqual(m.info.kernels[0].params, [{ offset: 0, size: 8 }, { offset: 8, size: 4 }]);
    assert.equal(m.info.kernels[0].paramSize, 12);
    assert.equal(m.info.kernels[0].attrs.sharedSizeBytes, 1024);
    const out = s.alloc(64 * 4);
    s.launch(m, 'store', 1, 64, [out, 3]);
    const got = await s.download(out, new Uint32Array(64));
    assert.deepEqual(Array.from(got), Array.from({ length: 64 }, (_, i) => i * 3));
  });

  it('lays out params with .align and arrays exactly as the driver does', () => {
    const s = new Session();
    const m = s.load(`.version 8.0\n.target sm_75\n.address_size 64
.visible .entry mixed(.param .u8 a, .param .align 8 .b8 b[16], .param .align 16 .b8 c[16], .param .f64 d, .param .u16 e, .param .u64 f)
{ ret; }`);
    const k = m.info.kernels[0];
    assert.deepEqual(k.params.map((p) => [p.offset, p.size]), [[0, 1], [8, 16], [32, 16], [48, 8], [56, 2], [64, 8]]);
    assert.equal(k.paramSize, 72);
  });

  it('refuses an unsupported instruction at load, naming it', () => {
    const s = new Session();
    const ptx = STORE_PTX.replace('mul.lo.s32 %r3, %r2, %r1;', 'sad.u64 %r3, %r2, %r1, %r2;');
    assert.throws(() => s.load(ptx), (e: unknown) => code(CUresult.CUDA_ERROR_NOT_SUPPORTED)(e) && /sad\.u64/.test((e as Error).message));
    assert.throws(() => s.load('.version 8.0\n.target sm_75\n.entry broken( { ret; }'), code(CUresult.CUDA_ERROR_INVALID_PTX));
  });

  it('launches a kernel that reads the cooperative workspace (%envreg1/2) without the flag, and both ways through the context', () => {
    const s = new Session();
    const m = s.load(`.version 8.0\n.target sm_75\n.address_size 64
.visible .entry gs(.param .u64 p)
{ .reg .b32 %r<3>; mov.u32 %r1, %envreg1; mov.u32 %r2, %envreg2; ret; }`);
    s.launch(m, 'gs', 2, 32, [0]);
    s.ctx.launch(null, m.handle, 0, { grid: [2, 1, 1], block: [32, 1, 1], sharedMem: 0, params: new Uint8Array(8), cooperative: true }, () => undefined);
    assert.equal(s.ctx.stickyError, 0);
  });

  it('asks for PTX when given a cubin', () => {
    const s = new Session();
    assert.throws(() => s.ctx.loadModule(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]), 'cubin', 'k.cubin'),
      (e: unknown) => code(CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU)(e) && /PTX/.test((e as Error).message));
  });

  it('validates launches like the driver (block, grid, shared memory, params)', () => {
    const s = new Session();
    const m = s.load(STORE_PTX);
    const out = s.alloc(4096);
    const inval = code(CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.throws(() => s.launch(m, 'store', 1, 1025, [out, 1]), inval);
    assert.throws(() => s.launch(m, 'store', 1, [1, 1, 65], [out, 1]), inval);
    assert.throws(() => s.launch(m, 'store', [1, 65536, 1], 1, [out, 1]), inval);
    assert.throws(() => s.launch(m, 'store', 1, 1, [out, 1], 48 * 1024), inval);
    // With the attribute set, dynamic shared memory up to the T4's opt-in limit (64 KiB) is allowed.
    s.ctx.setKernelAttribute(m.handle, 0, 8, 60 * 1024);
    s.launch(m, 'store', 1, 1, [out, 1], 60 * 1024);
    assert.throws(() => s.ctx.launch(null, m.handle, 0, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: new Uint8Array(4), cooperative: false }, () => undefined), inval);
    assert.throws(() => s.ctx.launch(null, m.handle, 5, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: new Uint8Array(12), cooperative: false }, () => undefined),
      code(CUresult.CUDA_ERROR_INVALID_HANDLE));
    assert.equal(s.ctx.stickyError, 0);
  });

  it('keeps contexts apart: disjoint windows, and one context cannot touch another one\'s memory', () => {
    const be = createEmulatedBackend([{ type: 'T4', count: 2 }]);
    const a = be.devices[0].createContext({ vaSize: 1 << 28 });
    const b = be.devices[1].createContext({ vaSize: 1 << 28 });
    assert.ok(a.va.base + a.va.size <= b.va.base || b.va.base + b.va.size <= a.va.base);
    a.alloc(a.va.base, 4096);
    assert.throws(() => b.enqueueWrite(null, a.va.base, new Uint8Array(4)), code(CUresult.CUDA_ERROR_INVALID_VALUE));
    const sb = new Session();
    const m = sb.load(STORE_PTX);
    sb.launch(m, 'store', 1, 1, [a.va.base, 1]);
    assert.equal(sb.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    assert.equal(a.stickyError, 0);
    a.destroy(); b.destroy();
  });

  it('faults on memory that was freed, and host copies outside allocations fail without breaking the context', () => {
    const s = new Session();
    const m = s.load(STORE_PTX);
    const p = s.alloc(256);
    assert.throws(() => s.ctx.enqueueWrite(null, p + 200, new Uint8Array(100)), code(CUresult.CUDA_ERROR_INVALID_VALUE));
    assert.equal(s.ctx.stickyError, 0);
    s.ctx.free(p);
    s.launch(m, 'store', 1, 1, [p, 1]);
    assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
  });

  it('tracks device memory use and frees it on destroy', () => {
    const be = createEmulatedBackend([{ type: 'A100-40GB', count: 1 }]);
    const dev = be.devices[0];
    assert.equal(dev.info.name.includes('A100'), true);
    const c = dev.createContext({ vaSize: 1 << 26 });
    c.alloc(c.va.base, 10000);
    c.alloc(c.va.base + 16384, 5000);
    assert.equal(dev.memUsed(), 15000);
    c.free(c.va.base);
    assert.equal(dev.memUsed(), 5000);
    c.destroy();
    c.destroy();
    assert.equal(dev.memUsed(), 0);
  });

  it('streams and events: order, elapsed time, errors for unknown handles', async () => {
    const s = new Session();
    const st = s.ctx.createStream(0, 0);
    const e1 = s.ctx.createEvent(0), e2 = s.ctx.createEvent(0);
    assert.throws(() => s.ctx.elapsed(e1, e2), code(CUresult.CUDA_ERROR_NOT_READY));
    s.ctx.recordEvent(e1, st);
    const m = s.load(STORE_PTX);
    const out = s.alloc(256);
    s.ctx.launch(st, m.handle, 0, { grid: [1, 1, 1], block: [64, 1, 1], sharedMem: 0, params: paramsOf(out, 2), cooperative: false }, () => undefined);
    s.ctx.recordEvent(e2, st);
    await s.ctx.synchronizeEvent(e2);
    assert.ok(s.ctx.queryEvent(e2));
    assert.ok(s.ctx.elapsed(e1, e2) >= 0);
    await s.ctx.synchronize(st);
    assert.equal((await s.download(out, new Uint32Array(64)))[63], 126);
    s.ctx.destroyStream(st);
    assert.throws(() => s.ctx.query(st), code(CUresult.CUDA_ERROR_INVALID_HANDLE));
  });

  describe('with nvcc', function () {
    this.timeout(60_000);
    before(function () { if (!hasNvcc()) this.skip(); });

    it('loads a fatbin carrying PTX, with module globals and constants at reported addresses', async () => {
      const src = `
__device__ int table[4] = {10, 20, 30, 40};
__constant__ float scale = 0.5f;
extern "C" __global__ void apply(float* out) { out[threadIdx.x] = table[threadIdx.x & 3] * scale; }
`;
      const fatbin = nvccBuild(src, ['-fatbin', '-gencode', 'arch=compute_75,code=compute_75'], 'fatbin');
      const s = new Session();
      const m = s.ctx.loadModule(new Uint8Array(fatbin), 'fatbin', 'apply.fatbin');
      const table = m.info.globals.find((g) => g.name === 'table')!;
      const scale = m.info.globals.find((g) => g.name === 'scale')!;
      assert.equal(table.size, 16);
      assert.deepEqual(Array.from(await s.download(table.addr, new Int32Array(4))), [10, 20, 30, 40]);
      // cudaMemcpyToSymbol: the host writes the constant, the kernel sees it.
      s.ctx.enqueueWrite(null, scale.addr, new Uint8Array(new Float32Array([2]).buffer));
      const out = s.alloc(8 * 4);
      s.launch(m, 'apply', 1, 8, [out]);
      assert.deepEqual(Array.from(await s.download(out, new Float32Array(8))), [20, 40, 60, 80, 20, 40, 60, 80]);
      const elfOnly = nvccBuild(src, ['-fatbin', '-gencode', 'arch=compute_75,code=sm_75'], 'fatbin');
      assert.throws(() => s.ctx.loadModule(new Uint8Array(elfOnly), 'fatbin', 'sass-only.fatbin'), code(CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU));
    });
  });
});

function paramsOf(ptr: number, k: number): Uint8Array {
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt(ptr), true);
  dv.setInt32(8, k, true);
  return b;
}
