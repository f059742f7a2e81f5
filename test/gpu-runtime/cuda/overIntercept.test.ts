// The CUDA backend with the intercept library loaded in place of libcuda: every binding and call sequence of the
// backend runs for real against an emulated T4 server. The server runs in a child process because the backend
// makes blocking driver calls (queries, D2H copies, module loads) on this process's main thread, and the
// intercept answers them by waiting on its socket: a server on the same event loop would never reply.
//
// Each step is its own `it` so a failure names exactly which part of the backend does not hold over the intercept.

import { strict as assert } from 'node:assert';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Backend, CudaError, DeviceContext, ModuleInfo } from '../../../gpu-runtime/server/src/backend';
import { createCudaBackend } from '../../../gpu-runtime/cuda/src/index';
import { ensureIntercept } from '../../cuda/programs';

const REPO = resolve(__dirname, '../../../..');
const LIB = join(REPO, 'gpu-runtime/intercept/build/libcuda.so.1');
const CLI = join(REPO, 'out/gpu-runtime/cli/src/main.js');
const MiB = 1024 * 1024;
const N = 1000;
const CUDA_ERROR_ILLEGAL_ADDRESS = 700;

const KERNELS = `
extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
extern "C" __global__ void axpb(double a, char tag, float *x, long long b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = (float)(a * x[i] + b) + tag;
}
extern "C" __global__ void poke(int *p, unsigned long long off) { p[off] = 1; }
__device__ float g_bias = 0.5f;
extern "C" __global__ void addBias(float *x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += g_bias;
}
`;

/** Starts `rgpu serve` on an ephemeral port and resolves with the child and its port. */
function spawnServer(): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--devices', 'emulated:T4x2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => fail(new Error(`server did not start: ${err}`)), 15000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      const m = /listening on [^\s:]+:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        ok({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => fail(new Error(`server exited (${code}): ${err}`)));
  });
}

const f32 = (xs: ArrayLike<number>) => new Uint8Array(new Float32Array(xs).buffer);
const asF32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.length / 4);

function vaddParams(a: number, b: number, c: number, n: number): Uint8Array {
  const p = Buffer.alloc(28);
  p.writeBigUInt64LE(BigInt(a), 0);
  p.writeBigUInt64LE(BigInt(b), 8);
  p.writeBigUInt64LE(BigInt(c), 16);
  p.writeInt32LE(n, 24);
  return p;
}

describe('cuda backend over the intercept library (emulated T4 server)', function () {
  this.timeout(30000);
  let dir = '';
  let server: ChildProcess | undefined;
  let backend: Backend;
  let ctx: DeviceContext;
  let ptx = '';
  let fatbin: Uint8Array;
  let ptxMod: { handle: unknown; info: ModuleInfo };
  let fatMod: { handle: unknown; info: ModuleInfo };
  let a = 0;
  let b = 0;
  let c = 0;
  const savedServerEnv = process.env.REMOTE_GPU_SERVER;
  const hostA = Array.from({ length: N }, (_, i) => i * 0.5);
  const hostB = Array.from({ length: N }, (_, i) => 1000 - i);

  before(async function () {
    this.timeout(60000);
    ensureIntercept();
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -p . first`);
    dir = mkdtempSync(join(tmpdir(), 'rgpu-cuda-over-intercept-'));
    const src = join(dir, 'k.cu');
    writeFileSync(src, KERNELS);
    const run = promisify(execFile);
    const [started] = await Promise.all([
      spawnServer(),
      run('nvcc', ['-ptx', '-arch=sm_75', '-o', join(dir, 'k.ptx'), src]),
      run('nvcc', ['-fatbin', '-gencode', 'arch=compute_75,code=[sm_75,compute_75]', '-o', join(dir, 'k.fatbin'), src]),
    ]);
    server = started.child;
    ptx = readFileSync(join(dir, 'k.ptx'), 'utf8');
    fatbin = readFileSync(join(dir, 'k.fatbin'));
    // The intercept connects in cuInit, which createCudaBackend calls: the address must be set before.
    process.env.REMOTE_GPU_SERVER = `tcp://127.0.0.1:${started.port}`;
    backend = createCudaBackend({ libraryPath: LIB });
  });

  after(async () => {
    try {
      await backend?.close();
    } finally {
      server?.kill('SIGTERM');
      // Child processes of later tests inherit the environment; the intercept would dial a dead server.
      if (savedServerEnv === undefined) delete process.env.REMOTE_GPU_SERVER;
      else process.env.REMOTE_GPU_SERVER = savedServerEnv;
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('enumerates the emulated devices with their names, memory and attributes', () => {
    assert.equal(backend.kind, 'cuda');
    // The intercept leases ONE GPU of the server per process (its HELLO session), so the server's T4x2 shows
    // up as a single device.
    assert.equal(backend.devices.length, 1);
    const info = backend.devices[0].info;
    assert.equal(info.name, 'Tesla T4');
    assert.equal(info.type, 'T4');
    assert.ok(info.totalMem > 14 * 1024 * MiB && info.totalMem < 16 * 1024 * MiB, `totalMem ${info.totalMem}`);
    assert.deepEqual([info.ccMajor, info.ccMinor], [7, 5]);
    assert.equal(info.attributes[1], 1024); // MAX_THREADS_PER_BLOCK
    assert.equal(info.attributes[16], 40); // MULTIPROCESSOR_COUNT
    assert.equal(info.attributes[10], 32); // WARP_SIZE
    assert.ok(info.driverVersion >= 12040, `driver version ${info.driverVersion}`);
    assert.equal(info.uuid.length, 16);
    assert.ok(info.uuid.some((x) => x !== 0));
  });

  it('creates a context with a device address window', () => {
    ctx = backend.devices[0].createContext({ vaSize: 64 * MiB });
    assert.ok(ctx.va.base > 0);
    assert.ok(ctx.va.size >= 8 * MiB, `window ${ctx.va.size}`);
    assert.equal(ctx.stickyError, 0);
  });

  it('allocates at client-chosen addresses and frees', () => {
    a = ctx.va.base;
    b = a + 4096;
    c = b + 4096;
    ctx.alloc(a, N * 4);
    ctx.alloc(b, N * 4);
    ctx.alloc(c, N * 4);
    assert.throws(() => ctx.alloc(a + 256, 16), (e: unknown) => e instanceof CudaError && e.code === 1);
    const t = c + 4096;
    ctx.alloc(t, 256);
    ctx.free(t);
    assert.throws(() => ctx.free(t), (e: unknown) => e instanceof CudaError && e.code === 1);
  });

  it('reads complete before a later event query reports completion (intercept/server reply order)', async () => {
    // enqueueRead = async DtoH into staging, event record, then a wait whose fast path is cuEventQuery. A
    // "complete" answer must imply the read's bytes have arrived. Writes of distinct values followed by reads
    // catch a query reply that overtakes the read's.
    const stale: number[] = [];
    for (let i = 0; i < 8; i++) {
      ctx.enqueueWrite(null, a, f32([i + 1]));
      const back = new Uint8Array(4);
      await ctx.enqueueRead(null, a, back);
      if (asF32(back)[0] !== i + 1) stale.push(i);
    }
    // The server may answer EVENT_QUERY (stream 0) before an earlier MEMCPY_DTOH on another stream; the
    // intercept must still not report completion before that read's bytes have landed.
    assert.deepEqual(stale, [], 'reads returned stale bytes after the event query said complete');
  });

  it('round-trips bytes through enqueueWrite / enqueueRead', async () => {
    ctx.enqueueWrite(null, a, f32(hostA));
    ctx.enqueueWrite(null, b, f32(hostB));
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(null, a, back);
    assert.deepEqual([...asF32(back)], hostA);
    await ctx.enqueueRead(null, b, back);
    assert.deepEqual([...asF32(back)], hostB);
  });

  it('shrinks a window larger than the driver can reserve (or, without VMM, allocate) to what it can', async () => {
    // The intercept reports ~15 GB free but places everything within a ~4 GiB address window: the backend must
    // halve its way down instead of trusting cuMemGetInfo.
    const big = backend.devices[0].createContext({ vaSize: 64 * 1024 * MiB });
    try {
      assert.ok(big.va.size >= 256 * MiB && big.va.size < 64 * 1024 * MiB, `window ${big.va.size}`);
      const last = big.va.base + big.va.size - 4096;
      big.alloc(last, 4096);
      assert.ok(backend.devices[0].memUsed() >= 4096);
      big.enqueueWrite(null, last, f32([42]));
      const back = new Uint8Array(4);
      await big.enqueueRead(null, last, back);
      assert.equal(asF32(back)[0], 42);
    } finally {
      big.destroy();
    }
  });

  it('memsets 8, 16 and 32 bit, 1D and 2D', async () => {
    ctx.enqueueMemset(null, c, 0xab, 1, 16, 1, 0);
    ctx.enqueueMemset(null, c + 16, 0x1234, 2, 8, 1, 0);
    ctx.enqueueMemset(null, c + 32, 0xdeadbeef, 4, 4, 1, 0);
    ctx.enqueueMemset(null, c + 64, 0x7, 1, 4, 3, 16); // 3 rows of 4 bytes, pitch 16
    const back = Buffer.alloc(112);
    await ctx.enqueueRead(null, c, back);
    assert.ok(back.subarray(0, 16).every((x) => x === 0xab));
    for (let i = 0; i < 8; i++) assert.equal(back.readUInt16LE(16 + 2 * i), 0x1234);
    for (let i = 0; i < 4; i++) assert.equal(back.readUInt32LE(32 + 4 * i), 0xdeadbeef);
    for (let r = 0; r < 3; r++) assert.deepEqual([...back.subarray(64 + 16 * r, 64 + 16 * r + 4)], [7, 7, 7, 7]);
  });

  it('copies device to device', async () => {
    ctx.enqueueCopy(null, c, a, N * 4);
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(null, c, back);
    assert.deepEqual([...asF32(back)], hostA);
  });

  it('loads PTX compiled by nvcc and reads parameter layouts from cuFuncGetParamInfo', () => {
    ptxMod = ctx.loadModule(Buffer.from(ptx + '\0'), 'ptx', 'k.ptx');
    const byName = new Map(ptxMod.info.kernels.map((k) => [k.name, k]));
    assert.deepEqual([...byName.keys()].sort(), ['addBias', 'axpb', 'poke', 'vadd']);
    const vadd = byName.get('vadd')!;
    assert.deepEqual(vadd.params, [{ offset: 0, size: 8 }, { offset: 8, size: 8 }, { offset: 16, size: 8 }, { offset: 24, size: 4 }]);
    assert.equal(vadd.paramSize, 28);
    const axpb = byName.get('axpb')!;
    assert.deepEqual(axpb.params, [{ offset: 0, size: 8 }, { offset: 8, size: 1 }, { offset: 16, size: 8 }, { offset: 24, size: 8 }, { offset: 32, size: 4 }]);
    assert.ok(vadd.attrs.maxThreadsPerBlock >= 256);
  });

  it('loads a fatbin with the same kernels', () => {
    fatMod = ctx.loadModule(fatbin, 'fatbin', 'k.fatbin');
    assert.deepEqual(fatMod.info.kernels.map((k) => k.name).sort(), ['addBias', 'axpb', 'poke', 'vadd']);
    const vadd = fatMod.info.kernels.find((k) => k.name === 'vadd')!;
    assert.equal(vadd.paramSize, 28);
  });

  it('launches vadd from both modules and matches the CPU reference', async () => {
    for (const mod of [ptxMod, fatMod]) {
      ctx.enqueueMemset(null, c, 0, 4, N, 1, 0);
      const k = mod.info.kernels.findIndex((x) => x.name === 'vadd');
      ctx.launch(null, mod.handle, k, { grid: [Math.ceil(N / 128), 1, 1], block: [128, 1, 1], sharedMem: 0, params: vaddParams(a, b, c, N), cooperative: false }, () => {});
      const back = new Uint8Array(N * 4);
      await ctx.enqueueRead(null, c, back);
      const got = asF32(back);
      for (let i = 0; i < N; i++) assert.equal(got[i], Math.fround(hostA[i] + hostB[i]), `c[${i}]`);
    }
  });

  it('launches a kernel with mixed parameter sizes laid out as reported', async () => {
    const k = ptxMod.info.kernels.find((x) => x.name === 'axpb')!;
    const p = Buffer.alloc(k.paramSize);
    p.writeDoubleLE(2, k.params[0].offset);
    p.writeInt8(3, k.params[1].offset);
    p.writeBigUInt64LE(BigInt(a), k.params[2].offset);
    p.writeBigInt64LE(-5n, k.params[3].offset);
    p.writeInt32LE(N, k.params[4].offset);
    ctx.launch(null, ptxMod.handle, ptxMod.info.kernels.indexOf(k), { grid: [8, 1, 1], block: [128, 1, 1], sharedMem: 0, params: p, cooperative: false }, () => {});
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(null, a, back);
    const got = asF32(back);
    for (let i = 0; i < N; i++) assert.equal(got[i], Math.fround(Math.fround(2 * hostA[i] - 5) + 3), `x[${i}]`);
    ctx.enqueueWrite(null, a, f32(hostA));
  });

  it('finds module globals, writes one and launches a kernel that reads it', async () => {
    const g = ptxMod.info.globals.find((x) => x.name === 'g_bias');
    assert.ok(g, `globals: ${ptxMod.info.globals.map((x) => x.name).join(', ')}`);
    assert.equal(g.size, 4);
    const init = new Uint8Array(4);
    await ctx.enqueueRead(null, g.addr, init);
    assert.equal(asF32(init)[0], 0.5);
    ctx.enqueueWrite(null, g.addr, f32([2.25]));
    ctx.enqueueWrite(null, c, f32(hostA));
    const p = Buffer.alloc(12);
    p.writeBigUInt64LE(BigInt(c), 0);
    p.writeInt32LE(N, 8);
    ctx.launch(null, ptxMod.handle, ptxMod.info.kernels.findIndex((x) => x.name === 'addBias'), { grid: [8, 1, 1], block: [128, 1, 1], sharedMem: 0, params: p, cooperative: false }, () => {});
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(null, c, back);
    const got = asF32(back);
    for (let i = 0; i < N; i++) assert.equal(got[i], Math.fround(hostA[i] + 2.25), `x[${i}]`);
  });

  it('sets a kernel attribute and launches cooperatively', async () => {
    const k = ptxMod.info.kernels.findIndex((x) => x.name === 'vadd');
    ctx.setKernelAttribute(ptxMod.handle, k, 8, 1024); // MAX_DYNAMIC_SHARED_SIZE_BYTES
    ctx.enqueueMemset(null, c, 0, 4, N, 1, 0);
    ctx.launch(null, ptxMod.handle, k, { grid: [8, 1, 1], block: [128, 1, 1], sharedMem: 1024, params: vaddParams(a, b, c, N), cooperative: true }, () => {});
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(null, c, back);
    const got = asF32(back);
    for (let i = 0; i < N; i++) assert.equal(got[i], Math.fround(hostA[i] + hostB[i]), `c[${i}]`);
  });

  it('passes cudaLimitMallocHeapSize down the chain: a 16 MiB device malloc fits a 24 MiB heap', async function () {
    this.timeout(60000);
    const src = join(dir, 'heap.cu');
    writeFileSync(src, 'extern "C" __global__ void big(unsigned long long *ok) { void *p = malloc(16u << 20); ok[0] = p != 0; free(p); }\n');
    await promisify(execFile)('nvcc', ['-ptx', '-arch=sm_75', '-o', join(dir, 'heap.ptx'), src]);
    const heap = backend.devices[0].createContext({ vaSize: 64 * MiB });
    try {
      heap.setLimit!(2, 24 * MiB); // CU_LIMIT_MALLOC_HEAP_SIZE, before the first launch that uses malloc
      const m = heap.loadModule(new TextEncoder().encode(readFileSync(join(dir, 'heap.ptx'), 'utf8') + '\0'), 'ptx', 'heap');
      const out = heap.va.base;
      heap.alloc(out, 8);
      const p = Buffer.alloc(8);
      p.writeBigUInt64LE(BigInt(out), 0);
      heap.launch(null, m.handle, 0, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: p, cooperative: false }, () => {});
      const back = new Uint8Array(8);
      await heap.enqueueRead(null, out, back);
      assert.equal(Buffer.from(back).readBigUInt64LE(0), 1n, 'the default 8 MiB heap would have said NULL');
    } finally {
      heap.destroy();
    }
  });

  it('copies pitched 2D regions host-to-device, device-to-device and back', async () => {
    const w = 12;
    const h = 5;
    const pitch = 32;
    const src = Uint8Array.from({ length: w * h }, (_, i) => (i * 7 + 3) & 0xff);
    ctx.enqueueMemset(null, c, 0xee, 1, pitch * h * 2, 1, 0);
    ctx.enqueueWrite2D(null, c, pitch, src, w, h);
    ctx.enqueueCopy2D(null, c + pitch * h, pitch, c, pitch, w, h);
    const back = new Uint8Array(w * h);
    await ctx.enqueueRead2D(null, c + pitch * h, pitch, back, w, h);
    assert.deepEqual([...back], [...src]);
    const raw = new Uint8Array(pitch * h);
    await ctx.enqueueRead(null, c, raw);
    for (let r = 0; r < h; r++) {
      assert.deepEqual([...raw.subarray(r * pitch, r * pitch + w)], [...src.subarray(r * w, (r + 1) * w)], `row ${r}`);
      assert.ok(raw.subarray(r * pitch + w, (r + 1) * pitch).every((x) => x === 0xee), `padding of row ${r} untouched`);
    }
  });

  it('orders work on created streams, queries and synchronizes them', async () => {
    const s1 = ctx.createStream(1, 0); // non-blocking
    const s2 = ctx.createStream(0, 0);
    const k = ptxMod.info.kernels.findIndex((x) => x.name === 'vadd');
    ctx.enqueueMemset(s1, c, 0, 4, N, 1, 0);
    ctx.launch(s1, ptxMod.handle, k, { grid: [8, 1, 1], block: [128, 1, 1], sharedMem: 0, params: vaddParams(a, b, c, N), cooperative: false }, () => {});
    const e = ctx.createEvent(0);
    ctx.recordEvent(e, s1);
    ctx.streamWaitEvent(s2, e);
    ctx.enqueueCopy(s2, a, c, N * 4); // a := a + b, only correct if it waits for s1
    await ctx.synchronize(s2);
    assert.equal(ctx.query(s2), true);
    await ctx.synchronize(null);
    assert.equal(ctx.query(null), true);
    const back = new Uint8Array(N * 4);
    await ctx.enqueueRead(s1, a, back);
    const got = asF32(back);
    for (let i = 0; i < N; i++) assert.equal(got[i], Math.fround(hostA[i] + hostB[i]), `a[${i}]`);
    ctx.destroyEvent(e);
    ctx.destroyStream(s1);
    ctx.destroyStream(s2);
    ctx.enqueueWrite(null, a, f32(hostA));
  });

  it('times work between two events', async () => {
    const start = ctx.createEvent(0);
    const end = ctx.createEvent(0);
    const k = fatMod.info.kernels.findIndex((x) => x.name === 'vadd');
    ctx.recordEvent(start, null);
    ctx.launch(null, fatMod.handle, k, { grid: [8, 1, 1], block: [128, 1, 1], sharedMem: 0, params: vaddParams(a, b, c, N), cooperative: false }, () => {});
    ctx.recordEvent(end, null);
    await ctx.synchronizeEvent(end);
    assert.equal(ctx.queryEvent(end), true);
    const ms = ctx.elapsed(start, end);
    assert.ok(Number.isFinite(ms) && ms >= 0 && ms < 10000, `elapsed ${ms} ms`);
    ctx.destroyEvent(start);
    ctx.destroyEvent(end);
  });

  it('unloads a module', () => {
    ctx.unloadModule(fatMod.handle);
    const k = fatMod.info.kernels.findIndex((x) => x.name === 'vadd');
    assert.throws(() => ctx.launch(null, fatMod.handle, k, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: vaddParams(a, b, c, N), cooperative: false }, () => {}), CudaError);
  });

  it('reports a failed launch at the next synchronisation, once, without breaking the context', async () => {
    const k = ptxMod.info.kernels.findIndex((x) => x.name === 'vadd');
    ctx.launch(null, ptxMod.handle, k, { grid: [1, 1, 1], block: [2048, 1, 1], sharedMem: 0, params: vaddParams(a, b, c, N), cooperative: false }, () => {});
    await assert.rejects(ctx.synchronize(null), (e: unknown) => e instanceof CudaError && (e.code === 1 || e.code === 9)); // INVALID_VALUE / INVALID_CONFIGURATION
    await ctx.synchronize(null);
    assert.equal(ctx.stickyError, 0);
  });

  it('makes an out-of-bounds kernel a sticky ILLEGAL_ADDRESS', async () => {
    const k = ptxMod.info.kernels.findIndex((x) => x.name === 'poke');
    const p = Buffer.alloc(16);
    p.writeBigUInt64LE(BigInt(a), 0);
    p.writeBigUInt64LE(1n << 36n, 8); // 256 GiB past the allocation
    ctx.launch(null, ptxMod.handle, k, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: p, cooperative: false }, () => {});
    await assert.rejects(ctx.synchronize(null), (e: unknown) => e instanceof CudaError && e.code === CUDA_ERROR_ILLEGAL_ADDRESS);
    assert.equal(ctx.stickyError, CUDA_ERROR_ILLEGAL_ADDRESS);
    assert.throws(() => ctx.alloc(c + 4096, 256), (e: unknown) => e instanceof CudaError && e.code === CUDA_ERROR_ILLEGAL_ADDRESS);
  });

  it('gives a new context after a fault a clean slate', async function () {
    ctx.destroy();
    // The real driver confines a fault to the faulting context; the intercept gives a context created after a
    // fault a fresh remote session (its README, "Faults").
    const other = backend.devices[0].createContext({ vaSize: 16 * MiB });
    try {
      other.alloc(other.va.base, 64);
      other.enqueueWrite(null, other.va.base, f32([1, 2, 3]));
      const back = new Uint8Array(12);
      await other.enqueueRead(null, other.va.base, back);
      assert.deepEqual([...asF32(back)], [1, 2, 3]);
    } finally {
      other.destroy();
    }
  });
});
