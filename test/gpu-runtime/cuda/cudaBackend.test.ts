// The CUDA backend against a fake libcuda (fake_libcuda.c, compiled here with gcc): driver call sequences,
// argument marshalling (launch `extra`, CUDA_MEMCPY2D, VMM mapping of client-chosen addresses), parameter
// layouts and error mapping. The fake's "device memory" is host memory, so copies and vadd move real bytes.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import koffi from 'koffi';
import { Backend, CudaError, DeviceContext } from '../../../gpu-runtime/server/src/backend';
import { createCudaBackend } from '../../../gpu-runtime/cuda/src/index';
import { elfObjectSymbols, ptxGlobalNames } from '../../../gpu-runtime/cuda/src/moduleLoader';

const FAKE_SRC = resolve(__dirname, '../../../../test/gpu-runtime/cuda/fake_libcuda.c');
const MiB = 1024 * 1024;

/** A minimal fatbin holding one uncompressed PTX entry. */
function tinyFatbin(ptx: string): Uint8Array {
  const text = Buffer.from(ptx + '\0');
  const padded = Math.ceil(text.length / 8) * 8;
  const b = Buffer.alloc(16 + 64 + padded);
  b.writeUInt32LE(0xba55ed50, 0);
  b.writeUInt16LE(1, 4);
  b.writeUInt16LE(16, 6);
  b.writeBigUInt64LE(BigInt(64 + padded), 8);
  b.writeUInt16LE(1, 16); // PTX
  b.writeUInt32LE(64, 16 + 4);
  b.writeBigUInt64LE(BigInt(padded), 16 + 8);
  b.writeUInt32LE(75, 16 + 28);
  b.writeUInt32LE(0x11, 16 + 40);
  text.copy(b, 16 + 64);
  return b;
}

const PTX = '.version 9.0\n.target sm_75\n.address_size 64\n.visible .global .align 4 .f32 g_scale = 0f40000000;\n.global .align 4 .u32 g_missing;\n';

describe('cuda backend (fake libcuda)', function () {
  let dir = '';
  let lib = '';
  let fake: { log(): string; reset(): void; set(key: string, value: number): void; maxConcurrentSync(): number };
  let backend: Backend;
  let ctx: DeviceContext;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'rgpu-fakecuda-'));
    lib = join(dir, 'libfakecuda.so');
    try {
      execFileSync('gcc', ['-shared', '-fPIC', '-O1', '-o', lib, FAKE_SRC]);
    } catch {
      this.skip();
    }
    const h = koffi.load(lib);
    const log = h.func('const char *fake_log(void)');
    const reset = h.func('void fake_reset(void)');
    const set = h.func('void fake_set(const char *key, int value)');
    const maxSync = h.func('int fake_max_concurrent_sync(void)');
    fake = { log: () => log() as string, reset: () => reset(), set: (k, v) => set(k, v), maxConcurrentSync: () => maxSync() as number };
    backend = createCudaBackend({ libraryPath: lib });
  });

  after(async () => {
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const lines = (re: RegExp) => fake.log().split('\n').filter((l) => re.test(l));

  it('reports the device the driver describes, mapped to its pool type', () => {
    assert.equal(backend.kind, 'cuda');
    assert.equal(backend.devices.length, 1);
    const info = backend.devices[0].info;
    assert.equal(info.name, 'Tesla T4');
    assert.equal(info.type, 'T4');
    assert.equal(info.totalMem, 15828320256);
    assert.deepEqual([...info.uuid], Array.from({ length: 16 }, (_, i) => 0xa0 + i));
    assert.deepEqual([info.ccMajor, info.ccMinor, info.pciBus, info.driverVersion], [7, 5, 0x17, 13000]);
    assert.equal(info.attributes.length, 148);
    assert.equal(info.attributes[16], 160); // the fake answers attr*10
  });

  it('creates its own context and reserves the va window at granule size', () => {
    fake.reset();
    ctx = backend.devices[0].createContext({ vaSize: 5 * MiB });
    assert.equal(ctx.va.size, 6 * MiB, 'rounded up to 2 MiB granules');
    assert.equal(ctx.va.base % (2 * MiB), 0);
    assert.ok(lines(/cuCtxCreate/).length === 1);
    assert.deepEqual(lines(/cuMemGetAllocationGranularity/), ['cuMemGetAllocationGranularity type=1 loc=1 id=0 option=0']);
  });

  it('maps physical memory exactly under client-chosen addresses, sharing granules between neighbours', () => {
    fake.reset();
    const { base } = ctx.va;
    ctx.alloc(base, 256);
    ctx.alloc(base + 256, 3 * MiB); // spills into granules 1 (shares granule 0)
    ctx.alloc(base + 4 * MiB + 512, 1024);
    assert.deepEqual(lines(/cuMemMap/), [
      'cuMemMap off=0 size=2097152',
      'cuMemMap off=2097152 size=2097152',
      'cuMemMap off=4194304 size=2097152',
    ]);
    assert.equal(lines(/cuMemSetAccess/)[0], 'cuMemSetAccess off=0 size=2097152 loc=1 flags=3 count=1');
    assert.equal(backend.devices[0].memUsed(), 6 * MiB);
    fake.reset();
    ctx.free(base); // granule 0 still used by the second allocation
    assert.deepEqual(lines(/cuMemUnmap/), []);
    ctx.free(base + 256);
    assert.deepEqual(lines(/cuMemUnmap/), ['cuMemUnmap off=0 size=2097152', 'cuMemUnmap off=2097152 size=2097152']);
    ctx.free(base + 4 * MiB + 512);
    assert.equal(backend.devices[0].memUsed(), 0);
  });

  it('rejects allocations outside the window or overlapping, and copies outside allocations', () => {
    const { base, size } = ctx.va;
    assert.throws(() => ctx.alloc(base + size - 128, 256), (e: CudaError) => e.code === 1);
    ctx.alloc(base, 1024);
    assert.throws(() => ctx.alloc(base + 512, 64), /overlaps/);
    assert.throws(() => ctx.enqueueWrite(null, base + 1000, new Uint8Array(100)), (e: CudaError) => e.code === 1);
    ctx.free(base);
    assert.throws(() => ctx.free(base), (e: CudaError) => e.code === 1);
  });

  it('round-trips data through pinned staging: 1D, device-to-device, 2D and memsets', async () => {
    const { base } = ctx.va;
    ctx.alloc(base, 64 * 1024);
    const src = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 255);
    ctx.enqueueWrite(null, base, src);
    ctx.enqueueCopy(null, base + 8192, base, 4096);
    const back = new Uint8Array(4096);
    await ctx.enqueueRead(null, base + 8192, back);
    assert.deepEqual(back, src);

    // 2D: 3 rows of 5 bytes into a pitch of 16, read back through a pitch of 16.
    const rows = Uint8Array.from({ length: 15 }, (_, i) => i + 1);
    ctx.enqueueMemset(null, base + 16384, 0xee, 1, 48, 1, 0);
    ctx.enqueueWrite2D(null, base + 16384, 16, rows, 5, 3);
    const flat = new Uint8Array(48);
    await ctx.enqueueRead(null, base + 16384, flat);
    assert.deepEqual([...flat.subarray(16, 21)], [6, 7, 8, 9, 10]);
    assert.equal(flat[21], 0xee, 'pitch padding untouched');
    const rows2 = new Uint8Array(15);
    await ctx.enqueueRead2D(null, base + 16384, 16, rows2, 5, 3);
    assert.deepEqual(rows2, rows);

    ctx.enqueueMemset(null, base + 20480, 0xbeef, 2, 4, 1, 0);
    ctx.enqueueMemset(null, base + 20488, 0xdeadbeef, 4, 2, 2, 16);
    const m = Buffer.alloc(40);
    await ctx.enqueueRead(null, base + 20480, m);
    assert.equal(m.readUInt16LE(6), 0xbeef);
    assert.equal(m.readUInt32LE(8), 0xdeadbeef);
    assert.equal(m.readUInt32LE(24 + 4), 0xdeadbeef);
    assert.equal(m.readUInt32LE(16), 0, 'between 2D rows untouched');
    ctx.free(base);
  });

  it('loads a fatbin, reads layouts and attributes from the driver and finds globals by name', () => {
    fake.reset();
    const { info } = ctx.loadModule(tinyFatbin(PTX), 'fatbin', 'k');
    assert.equal(lines(/cuModuleLoadData/)[0], `cuModuleLoadData fatbin bytes=${tinyFatbin(PTX).length}`);
    assert.deepEqual(info.kernels.map((k) => k.name), ['_Z4vaddPfS_S_i', '_Z6noargsv']);
    const [vadd, noargs] = info.kernels;
    assert.deepEqual(vadd.params, [{ offset: 0, size: 8 }, { offset: 8, size: 8 }, { offset: 16, size: 8 }, { offset: 24, size: 4 }]);
    assert.equal(vadd.paramSize, 28);
    assert.deepEqual([noargs.params, noargs.paramSize], [[], 0]);
    assert.deepEqual([vadd.attrs.maxThreadsPerBlock, vadd.attrs.numRegs, vadd.attrs.ptxVersion, vadd.attrs.maxDynamicSharedSizeBytes], [1024, 16, 90, 24]);
    assert.deepEqual(lines(/cuModuleGetGlobal/), ['cuModuleGetGlobal g_scale', 'cuModuleGetGlobal g_missing']);
    assert.deepEqual(info.globals.map((g) => [g.name, g.size]), [['g_scale', 4]]);
  });

  it('NUL-terminates PTX and rejects images that are not what they claim', () => {
    fake.reset();
    ctx.loadModule(Buffer.from(PTX), 'ptx', 'p');
    assert.deepEqual(lines(/cuModuleLoadData/), [`cuModuleLoadData ptx len=${PTX.length}`]);
    assert.throws(() => ctx.loadModule(Buffer.from(PTX), 'fatbin', 'x'), (e: CudaError) => e.code === 200);
    const bad = tinyFatbin(PTX);
    bad[16 + 8] = 0xff; // entry size overruns
    assert.throws(() => ctx.loadModule(bad, 'fatbin', 'x'), (e: CudaError) => e.code === 200 && /overruns/.test(e.message));
  });

  it('launches with the packed buffer in `extra`, runs vadd, and writes globals', async () => {
    const { handle } = ctx.loadModule(tinyFatbin(PTX), 'fatbin', 'k');
    const { base } = ctx.va;
    const n = 64;
    ctx.alloc(base, 3 * 4 * n);
    const a = new Float32Array(n).map((_, i) => i);
    const b = new Float32Array(n).map((_, i) => 100 * i);
    ctx.enqueueWrite(null, base, new Uint8Array(a.buffer));
    ctx.enqueueWrite(null, base + 4 * n, new Uint8Array(b.buffer));
    const params = Buffer.alloc(28);
    params.writeBigUInt64LE(BigInt(base), 0);
    params.writeBigUInt64LE(BigInt(base + 4 * n), 8);
    params.writeBigUInt64LE(BigInt(base + 8 * n), 16);
    params.writeInt32LE(n, 24);
    fake.reset();
    const s = ctx.createStream(1, -1);
    ctx.launch(s, handle, 0, { grid: [2, 1, 1], block: [32, 1, 1], sharedMem: 128, params, cooperative: false }, () => {});
    assert.equal(lines(/cuLaunchKernel/)[0], `cuLaunchKernel fn=f1 grid=2,1,1 block=32,1,1 shared=128 params=${params.toString('hex')}`);
    assert.deepEqual(lines(/cuStreamCreate/), ['cuStreamCreate flags=1 prio=-1']);
    await ctx.synchronize(null);
    const c = new Float32Array(n);
    await ctx.enqueueRead(s, base + 8 * n, new Uint8Array(c.buffer));
    assert.deepEqual([...c], [...a].map((x, i) => x + b[i]));

    // A padded parameter buffer is cut to the kernel's size (the fake rejects any other size for vadd).
    fake.reset();
    ctx.launch(null, handle, 0, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: Buffer.concat([params, Buffer.alloc(4, 0xff)]), cooperative: false }, () => {});
    assert.ok(lines(/cuLaunchKernel/)[0].endsWith(`params=${params.toString('hex')}`));
    await ctx.synchronize(null);

    // Cooperative launches pass kernelParams pointers into the same packed buffer.
    ctx.enqueueMemset(null, base + 8 * n, 0, 4, n, 1, 0);
    ctx.launch(null, handle, 0, { grid: [1, 1, 1], block: [64, 1, 1], sharedMem: 0, params, cooperative: true }, () => {});
    await ctx.enqueueRead(null, base + 8 * n, new Uint8Array(c.buffer));
    assert.equal(c[5], 505);

    // Globals live outside the window (placed by the driver) and are valid copy targets.
    const gScale = ctx.loadModule(tinyFatbin(PTX), 'fatbin', 'k').info.globals[0];
    ctx.enqueueWrite(null, gScale.addr, new Uint8Array(new Float32Array([3.5]).buffer));
    const g = new Float32Array(1);
    await ctx.enqueueRead(null, gScale.addr, new Uint8Array(g.buffer));
    assert.equal(g[0], 3.5);
    assert.throws(() => ctx.enqueueWrite(null, gScale.addr, new Uint8Array(8)), (e: CudaError) => e.code === 1);

    ctx.setKernelAttribute(handle, 0, 8, 65536);
    assert.ok(lines(/cuFuncSetAttribute/).includes('cuFuncSetAttribute fn=f1 attr=8 value=65536'));
    ctx.setLimit!(2, 24 << 20); // cudaLimitMallocHeapSize reaches the driver
    assert.ok(lines(/cuCtxSetLimit/).includes(`cuCtxSetLimit limit=2 value=${24 << 20}`));
    assert.throws(() => ctx.setLimit!(9, 1), (e: CudaError) => e.code === 215);
    assert.throws(() => ctx.launch(null, handle, 7, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params, cooperative: false }, () => {}),
      (e: CudaError) => e.code === 400);
    ctx.destroyStream(s);
    ctx.free(base);
  });

  it('orders the default stream against blocking streams as the legacy NULL stream does', () => {
    const { base } = ctx.va;
    ctx.alloc(base, 4096);
    const blocking = ctx.createStream(0, 0);
    const nonBlocking = ctx.createStream(1, 0);
    const ops = () => fake.log().split('\n').filter((l) => /^(cuEventRecord|cuStreamWaitEvent|cuMemsetD8Async)/.test(l)).map((l) => l.split(' ')[0]);
    fake.reset();
    ctx.enqueueMemset(null, base, 1, 1, 16, 1, 0);
    ctx.enqueueMemset(nonBlocking, base, 1, 1, 16, 1, 0); // no implicit ordering at all
    assert.deepEqual(ops(), ['cuMemsetD8Async', 'cuMemsetD8Async']);
    fake.reset();
    ctx.enqueueMemset(blocking, base, 1, 1, 16, 1, 0); // waits for the default stream's earlier work
    ctx.enqueueMemset(blocking, base, 1, 1, 16, 1, 0); // nothing new on the default stream: no wait
    ctx.enqueueMemset(null, base, 1, 1, 16, 1, 0); // waits for the blocking stream
    ctx.enqueueMemset(null, base, 1, 1, 16, 1, 0);
    assert.deepEqual(ops(), [
      'cuEventRecord', 'cuStreamWaitEvent', 'cuMemsetD8Async', 'cuMemsetD8Async',
      'cuEventRecord', 'cuStreamWaitEvent', 'cuMemsetD8Async', 'cuMemsetD8Async',
    ]);
    ctx.destroyStream(blocking);
    ctx.destroyStream(nonBlocking);
    ctx.free(base);
  });

  it('keeps a failed launch as the deferred error of the next synchronisation, then clears it', async () => {
    const { handle } = ctx.loadModule(tinyFatbin(PTX), 'fatbin', 'k');
    fake.set('launch_rc', 701);
    ctx.launch(null, handle, 1, { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: new Uint8Array(0), cooperative: false }, () => {});
    fake.set('launch_rc', 0);
    await assert.rejects(ctx.synchronize(null), (e: CudaError) => e.code === 701 && /LAUNCH_OUT_OF_RESOURCES/.test(e.message));
    await ctx.synchronize(null);
    assert.equal(ctx.stickyError, 0);
  });

  it('waits on a worker thread, so the event loop keeps running during a synchronisation', async () => {
    fake.set('busy_ms', 150);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const t0 = Date.now();
    await ctx.synchronize(null);
    clearInterval(timer);
    assert.ok(Date.now() - t0 >= 140);
    assert.ok(ticks >= 5, `only ${ticks} timer ticks during a 150 ms wait`);
    assert.equal(fake.maxConcurrentSync(), 1);
  });

  it('blocks at most two pool threads; further waits poll and all complete', async () => {
    const extra = [1, 2, 3, 4].map(() => backend.devices[0].createContext({ vaSize: 2 * MiB }));
    fake.set('busy_ms', 120);
    const t0 = Date.now();
    await Promise.all([ctx, ...extra].map((c) => c.synchronize(null)));
    assert.ok(Date.now() - t0 >= 110);
    const blocking = fake.maxConcurrentSync();
    assert.ok(blocking >= 1 && blocking <= 2, `${blocking} waits blocked pool threads at once`);
    for (const c of extra) c.destroy();
  });

  it('measures events and turns a fault into the sticky error of the context only', async () => {
    const e0 = ctx.createEvent(0);
    const e1 = ctx.createEvent(0);
    ctx.recordEvent(e0, null);
    ctx.recordEvent(e1, null);
    await ctx.synchronizeEvent(e1);
    assert.equal(ctx.elapsed(e0, e1), 1.5);
    assert.ok(ctx.queryEvent(e0) && ctx.query(null));
    const other = backend.devices[0].createContext({ vaSize: 2 * MiB });
    fake.set('sync_rc', 700);
    await assert.rejects(ctx.synchronize(null), (e: CudaError) => e.code === 700 && /ILLEGAL_ADDRESS/.test(e.message));
    fake.set('sync_rc', 0);
    assert.equal(ctx.stickyError, 700);
    assert.throws(() => ctx.alloc(ctx.va.base, 256), (e: CudaError) => e.code === 700);
    await other.synchronize(null); // other sessions carry on
    assert.equal(other.stickyError, 0);
    other.destroy();
  });

  it('tears down everything it created, once', () => {
    fake.reset();
    ctx.destroy();
    ctx.destroy();
    assert.equal(lines(/cuCtxDestroy/).length, 1);
    assert.equal(lines(/cuMemAddressFree/).length, 1);
    assert.throws(() => ctx.alloc(0, 1), CudaError);
  });

  it('takes the library from $RGPU_LIBCUDA when no path is given', async () => {
    const saved = process.env.RGPU_LIBCUDA;
    process.env.RGPU_LIBCUDA = lib;
    try {
      const b = createCudaBackend();
      assert.equal(b.devices[0].info.name, 'Tesla T4');
      await b.close();
    } finally {
      if (saved === undefined) delete process.env.RGPU_LIBCUDA;
      else process.env.RGPU_LIBCUDA = saved;
    }
  });

  it('fails with a CudaError when the library cannot be loaded', () => {
    assert.throws(() => createCudaBackend({ libraryPath: join(dir, 'nope.so') }), (e: CudaError) => e instanceof CudaError && /cannot load/.test(e.message));
  });
});

describe('cuda backend: global names from images', () => {
  it('finds module-scope .global/.const names in PTX, not .extern or locals', () => {
    const ptx = '.visible .global .align 8 .b8 buf[64];\n.const .align 4 .f32 k;\n.extern .global .u32 e;\n  .global .u32 g2 = 1;\n';
    assert.deepEqual(ptxGlobalNames(Buffer.from(ptx)), ['buf', 'k', 'g2']);
  });

  it('finds the variables (OBJECT symbols) of a real cubin and survives garbage', function () {
    this.timeout(60_000);
    let dir = '';
    try {
      dir = mkdtempSync(join(tmpdir(), 'rgpu-cubin-'));
      const cu = join(dir, 'g.cu');
      writeFileSync(cu, '__device__ float g_scale; __constant__ int c_tab[4];\n__global__ void k(float* o){ o[0] = g_scale + c_tab[1]; }\n');
      execFileSync('nvcc', ['-cubin', '-arch=sm_75', cu, '-o', join(dir, 'g.cubin')]);
    } catch {
      if (dir) rmSync(dir, { recursive: true, force: true });
      this.skip();
    }
    const cubin = new Uint8Array(readFileSync(join(dir, 'g.cubin')));
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(elfObjectSymbols(cubin).sort(), ['c_tab', 'g_scale']);
    assert.deepEqual(elfObjectSymbols(cubin.subarray(0, 100)), []);
    assert.deepEqual(elfObjectSymbols(new Uint8Array(10)), []);
  });
});
