// Launches split across block workers (blockPool.ts): the same results as inline launches (atomics included),
// the context's later ops kept in stream order behind them, their errors becoming the context's, a dead worker
// or a destroyed context not wedging anything, and the server serving other sessions meanwhile.

import * as assert from 'assert';
import { createEmulatedBackend } from '../../../gpu-runtime/emulator/src/index';
import { Backend, CUresult, DeviceContext, ModuleInfo } from '../../../gpu-runtime/server/src/backend';
import { startServer } from '../../../gpu-runtime/server/src/main';
import { TestClient } from '../../helpers/testClient';
import { hasNvcc, nvccPtx } from './harness';

const SOURCE = `
#include <cstdio>
#include <cassert>
extern "C" __global__ void hist(const int *in, int n, int *bins, int nb) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&bins[in[i] % nb], 1);
}
extern "C" __global__ void reduce(const float *in, int n, float *sum, unsigned long long *wsum, int *mm, double *dsum) {
  __shared__ float s[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  s[threadIdx.x] = i < n ? in[i] : 0.f;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) { atomicAdd(sum, s[0]); atomicAdd(dsum, (double)s[0]); }
  if (i < n) {
    atomicAdd(wsum, (unsigned long long)i * 4000000007ull);
    atomicMax(mm, (i * 7919) % 100003);
    atomicMin(mm + 1, 100003 - (i * 7919) % 100003);
    atomicInc((unsigned *)mm + 2, 1000);
    int old = mm[3], seen;
    do { seen = old; old = atomicCAS(mm + 3, seen, seen + 1); } while (old != seen);
  }
}
extern "C" __global__ void spin(int *out, int iters) {
  int x = threadIdx.x + blockIdx.x;
  for (int k = 0; k < iters; k++) x = x * 1103515245 + 12345;
  out[blockIdx.x * blockDim.x + threadIdx.x] = iters == 0 ? blockIdx.x * blockDim.x + threadIdx.x : x;
}
extern "C" __global__ void oob(int *p, int bad) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  p[i == bad ? (1 << 28) : i] = i;
}
extern "C" __global__ void trapper(int bad) {
  if (blockIdx.x * blockDim.x + threadIdx.x == bad) __trap();
}
extern "C" __global__ void checker(int bad) {
  assert(blockIdx.x * blockDim.x + threadIdx.x != bad);
}
extern "C" __global__ void say(int k) {
  if (threadIdx.x == 0) printf("say %d block %d\\n", k, blockIdx.x);
}
`;

// The last block to finish sums what the others wrote: it relies on earlier blocks being done, which a
// fence-using module keeps by running inline.
const FENCED = `
extern "C" __global__ void lastblock(const int *in, int *partial, unsigned *count, int *total) {
  __shared__ bool last;
  int s = 0;
  for (int i = threadIdx.x; i < 256; i += blockDim.x) s += in[blockIdx.x * 256 + i];
  atomicAdd(&partial[blockIdx.x], s);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicInc(count, gridDim.x) == gridDim.x - 1;
  __syncthreads();
  if (last && threadIdx.x == 0) { int t = 0; for (int b = 0; b < gridDim.x; b++) t += ((volatile int *)partial)[b]; *total = t; }
}
`;

type Arg = number | bigint;
class Ctx {
  readonly mod: { handle: unknown; info: ModuleInfo };
  private next: number;
  printed = '';
  constructor(readonly ctx: DeviceContext, ptx: string, readonly name = 'bw') {
    this.mod = ctx.loadModule(Buffer.from(ptx), 'ptx', name);
    this.next = ctx.va.base;
  }
  alloc(n: number): number {
    const a = this.next;
    this.ctx.alloc(a, n);
    this.next += Math.ceil(n / 256) * 256;
    return a;
  }
  launch(name: string, grid: number, block: number, args: Arg[]): void {
    const ki = this.mod.info.kernels.findIndex((k) => k.name === name);
    const k = this.mod.info.kernels[ki];
    const buf = Buffer.alloc(Math.max(k.paramSize, 1));
    args.forEach((a, i) => {
      if (k.params[i].size === 8) buf.writeBigUInt64LE(BigInt(a), k.params[i].offset);
      else buf.writeInt32LE(Number(a), k.params[i].offset);
    });
    this.ctx.launch(null, this.mod.handle, ki, { grid: [grid, 1, 1], block: [block, 1, 1], sharedMem: 0, params: buf, cooperative: false }, (t) => { this.printed += t; });
  }
  async read(addr: number, n: number): Promise<Buffer> {
    const b = Buffer.alloc(n);
    await this.ctx.enqueueRead(null, addr, b);
    return b;
  }
}

type Slots = { slots: { w: { terminate(): Promise<number> }; busy: unknown }[] };
const poolOf = (be: Backend): Slots & { handoffs: number } => (be.devices[0] as unknown as { opts: { pool: Slots & { handoffs: number } } }).opts.pool;

/** Waits until `n` of the pool's workers run a range (a fixed sleep is too short on a loaded machine). */
async function untilBusy(pool: Slots, n = 1, timeoutMs = 20000): Promise<void> {
  const t0 = Date.now();
  while (pool.slots.filter((s) => s.busy).length < n) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`fewer than ${n} workers busy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function code(p: Promise<unknown>): Promise<number> {
  try { await p; return 0; } catch (e) { return (e as { code?: number }).code ?? -1; }
}

describe('emulator: launches split across block workers', function () {
  this.timeout(120000);
  let ptx: string;
  let split: Backend;
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SOURCE, ['-arch=sm_75']);
    split = createEmulatedBackend([{ type: 'T4', count: 2 }], { workers: 2, splitMin: 1, watchdogMs: 60000 });
  });
  after(async () => { await split?.close(); });

  const open = (be: Backend, dev = 0): Ctx => new Ctx(be.devices[dev].createContext({ vaSize: 1 << 28 }), ptx);

  async function histogramAndReduction(c: Ctx, expectSplit: boolean): Promise<Buffer[]> {
    const n = 1 << 15;
    const input = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) input.writeInt32LE(((i * 2654435761) >>> 7) & 0xffff, i * 4);
    const floats = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) floats.writeFloatLE((i % 5) - 1, i * 4);
    const inp = c.alloc(n * 4), bins = c.alloc(64 * 4), fin = c.alloc(n * 4), acc = c.alloc(64);
    c.ctx.enqueueWrite(null, inp, input);
    c.ctx.enqueueWrite(null, fin, floats);
    const init = Buffer.alloc(64);
    init.writeInt32LE(0x7fffffff, 28);
    c.ctx.enqueueWrite(null, acc, init);
    c.launch('hist', 64, 128, [inp, n, bins, 61]);
    assert.equal(c.ctx.query(null), !expectSplit, expectSplit ? 'the launch runs on the workers' : 'inline');
    c.launch('reduce', n / 256, 256, [fin, n, acc, acc + 8, acc + 24, acc + 16]);
    return [await c.read(bins, 64 * 4), await c.read(acc, 64)];
  }

  it('gives the results of an inline launch: integer, float, double and 64-bit atomics, barrier reductions', async () => {
    const inline = createEmulatedBackend([{ type: 'T4', count: 1 }], { workers: 0 });
    const want = await histogramAndReduction(open(inline), false);
    await inline.close();
    const c = open(split);
    const got = await histogramAndReduction(c, true);
    assert.deepStrictEqual(got[0], want[0], 'histogram');
    assert.deepStrictEqual(got[1], want[1], 'atomics');
    // And both against the host.
    let total = 0;
    for (let i = 0; i < 61; i++) total += got[0].readInt32LE(i * 4);
    assert.equal(total, 1 << 15);
    const n = 1 << 15;
    let fs = 0, ws = 0n, mx = 0, mn = 1 << 30;
    for (let i = 0; i < n; i++) {
      fs += (i % 5) - 1;
      ws += BigInt(i) * 4000000007n;
      mx = Math.max(mx, (i * 7919) % 100003);
      mn = Math.min(mn, 100003 - (i * 7919) % 100003);
    }
    assert.equal(got[1].readFloatLE(0), fs);
    assert.equal(got[1].readDoubleLE(16), fs);
    assert.equal(got[1].readBigUInt64LE(8), BigInt.asUintN(64, ws));
    assert.deepStrictEqual([got[1].readInt32LE(24), got[1].readInt32LE(28)], [mx, mn]);
    assert.equal(got[1].readUInt32LE(32), n % 1001, 'atomicInc wraps at 1000');
    assert.equal(got[1].readInt32LE(36), n, 'a compare-and-swap loop');
    c.ctx.destroy();
  });

  it('keeps the context\'s later ops in stream order behind the launch: writes, reads, frees, events, views', async () => {
    const c = open(split);
    const n = 64 * 128;
    const out = c.alloc(n * 4), tmp = c.alloc(4096);
    const e0 = c.ctx.createEvent(0), e1 = c.ctx.createEvent(0);
    c.ctx.recordEvent(e0, null);
    c.launch('spin', 64, 128, [out, 0]);
    assert.equal(c.ctx.query(null), false);
    assert.equal(c.ctx.hostView!(null, out, 256), null, 'no view of memory a launch in flight may write');
    c.ctx.enqueueWrite(null, out, Buffer.alloc(64, 0xee));
    c.ctx.recordEvent(e1, null);
    assert.equal(c.ctx.queryEvent(e1), false);
    c.ctx.free(tmp);
    c.launch('spin', 64, 128, [tmp, 0]); // queued behind the free: faults when it runs
    await c.ctx.synchronizeEvent(e1);
    assert.ok(c.ctx.elapsed(e0, e1) >= 0);
    assert.equal(await code(c.ctx.synchronize(null)), CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    c.ctx.destroy();

    const d = open(split);
    const o = d.alloc(n * 4);
    d.launch('spin', 64, 128, [o, 0]);
    d.ctx.enqueueWrite(null, o, Buffer.alloc(64, 0xee));
    const got = await d.read(o, n * 4);
    for (let i = 0; i < 16; i++) assert.equal(got.readUInt32LE(i * 4), 0xeeeeeeee, `word ${i} written after the launch`);
    for (let i = 16; i < n; i++) if (got.readInt32LE(i * 4) !== i) assert.fail(`word ${i}: ${got.readInt32LE(i * 4)}`);
    assert.equal(d.ctx.query(null), true);
    assert.ok(d.ctx.hostView!(null, o, 256), 'a view again once idle');
    d.ctx.destroy();
  });

  it('runs launches of two contexts at once on the shared workers, each over its own heap', async () => {
    const a = open(split), b = open(split, 1);
    const n = 64 * 128;
    const oa = a.alloc(n * 4), ob = b.alloc(n * 4);
    b.ctx.enqueueWrite(null, ob, Buffer.alloc(n * 4, 0x55));
    for (let r = 0; r < 3; r++) {
      a.launch('spin', 64, 128, [oa, 0]);
      b.launch('spin', 64, 128, [ob, 3]);
    }
    const [ga, gb] = await Promise.all([a.read(oa, n * 4), b.read(ob, n * 4)]);
    for (let i = 0; i < n; i++) if (ga.readInt32LE(i * 4) !== i) assert.fail(`A word ${i}: ${ga.readInt32LE(i * 4)}`);
    for (let i = 0; i < n; i++) {
      let x = (i % 128) + Math.floor(i / 128);
      for (let k = 0; k < 3; k++) x = (Math.imul(x, 1103515245) + 12345) | 0;
      if (gb.readInt32LE(i * 4) !== x) assert.fail(`B word ${i}: ${gb.readInt32LE(i * 4)} != ${x}`);
    }
    a.ctx.destroy();
    b.ctx.destroy();
  });

  it('runs kernels of a module with fences or volatile loads inline, CTAs in order', async () => {
    const c = new Ctx(split.devices[0].createContext({ vaSize: 1 << 28 }), nvccPtx(FENCED, ['-arch=sm_75']), 'fenced');
    const nb = 128;
    const inp = c.alloc(nb * 256 * 4), part = c.alloc(nb * 4), cnt = c.alloc(8);
    const data = Buffer.alloc(nb * 256 * 4);
    let want = 0;
    for (let i = 0; i < nb * 256; i++) { data.writeInt32LE(i % 11, i * 4); want += i % 11; }
    c.ctx.enqueueWrite(null, inp, data);
    c.launch('lastblock', nb, 256, [inp, part, cnt, cnt + 4]);
    assert.equal(c.ctx.query(null), true, 'not split');
    assert.equal((await c.read(cnt + 4, 4)).readInt32LE(0), want);
    c.ctx.destroy();
  });

  it('a long launch hands workers to a later one of another context between its ranges', async () => {
    const a = open(split), b = open(split, 1);
    const pool = poolOf(split);
    const handoffs = pool.handoffs;
    const pa = a.alloc(64 * 128 * 4), pb = b.alloc(64 * 128 * 4);
    a.launch('spin', 64, 128, [pa, 1 << 18]); // a second or more: 16 ranges, each short enough to hand over soon
    const ta = code(a.ctx.synchronize(null));
    await untilBusy(pool, pool.slots.length); // A holds every worker
    b.launch('spin', 64, 128, [pb, 0]);
    await b.ctx.synchronize(null);
    assert.equal(a.ctx.query(null), false, 'A is still running when B is done');
    assert.ok(pool.handoffs > handoffs, 'a worker left A for B');
    assert.equal((await b.read(pb + 4 * 999, 4)).readInt32LE(0), 999);
    a.ctx.destroy(); // stops A at its workers' next watchdog check
    assert.equal(await ta, CUresult.CUDA_ERROR_CONTEXT_IS_DESTROYED);
    b.ctx.destroy();
  });

  it('delivers printf of every range in block order before the sync resolves', async () => {
    const c = open(split);
    c.launch('say', 48, 32, [5]);
    await c.ctx.synchronize(null);
    const want = Array.from({ length: 48 }, (_, b) => `say 5 block ${b}\n`).join('');
    assert.equal(c.printed, want);
    c.ctx.destroy();
  });

  it('makes a fault, a trap and an assert in any range the context\'s sticky error', async () => {
    const cases: [string, number][] = [['oob', CUresult.CUDA_ERROR_ILLEGAL_ADDRESS], ['trapper', CUresult.CUDA_ERROR_LAUNCH_FAILED], ['checker', CUresult.CUDA_ERROR_ASSERT]];
    for (const [name, want] of cases) {
      const c = open(split);
      const p = c.alloc(64 * 128 * 4);
      c.launch(name, 64, 128, name === 'oob' ? [p, 5000] : [5000]);
      c.launch('spin', 64, 128, [p, 0]); // must not run after the fault
      assert.equal(await code(c.ctx.synchronize(null)), want, name);
      assert.equal(c.ctx.stickyError, want);
      assert.equal(await code(c.read(p, 4)), want, `${name}: later ops fail too`);
      if (name === 'checker') assert.match(c.printed, /block: \[39,0,0\], thread: \[8,0,0\] Assertion/);
      c.ctx.destroy();
    }
  });

  it('stops a split launch at the watchdog with LAUNCH_TIMEOUT', async () => {
    const be = createEmulatedBackend([{ type: 'T4', count: 1 }], { workers: 2, splitMin: 1, watchdogMs: 300 });
    try {
      const c = open(be);
      const p = c.alloc(64 * 128 * 4);
      const t0 = Date.now();
      c.launch('spin', 64, 128, [p, 1 << 30]);
      assert.equal(await code(c.ctx.synchronize(null)), CUresult.CUDA_ERROR_LAUNCH_TIMEOUT);
      assert.ok(Date.now() - t0 < 10000, `stopped after ${Date.now() - t0} ms`);
    } finally {
      await be.close();
    }
  });

  it('closing the backend fails a launch in flight instead of leaving its context waiting', async () => {
    const be = createEmulatedBackend([{ type: 'T4', count: 1 }], { workers: 2, splitMin: 1 });
    const c = open(be);
    const p = c.alloc(64 * 128 * 4);
    c.launch('spin', 64, 128, [p, 1 << 30]);
    const sync = code(c.ctx.synchronize(null));
    await new Promise((r) => setTimeout(r, 50));
    await be.close();
    assert.equal(await sync, CUresult.CUDA_ERROR_LAUNCH_FAILED);
  });

  it('a dead worker fails only its launch; destroying a context stops its launch; the pool keeps serving', async () => {
    const c = open(split);
    const p = c.alloc(64 * 128 * 4);
    c.launch('spin', 64, 128, [p, 1 << 30]);
    await untilBusy(poolOf(split));
    // Kill a worker while it runs a range of that launch.
    const busy = poolOf(split).slots.find((s) => s.busy);
    assert.ok(busy, 'a worker is running the launch');
    await busy.w.terminate();
    assert.equal(await code(c.ctx.synchronize(null)), CUresult.CUDA_ERROR_LAUNCH_FAILED);
    c.ctx.destroy();

    const d = open(split, 1);
    const q = d.alloc(64 * 128 * 4);
    d.launch('spin', 64, 128, [q, 1 << 30]);
    await untilBusy(poolOf(split));
    const t0 = Date.now();
    d.ctx.destroy(); // the workers stop at their next watchdog check rather than run to the 60 s watchdog

    const e = open(split);
    const o = e.alloc(64 * 128 * 4);
    e.launch('spin', 64, 128, [o, 0]);
    const got = await e.read(o, 64 * 128 * 4);
    assert.ok(Date.now() - t0 < 20000, `the pool was free again after ${Date.now() - t0} ms`);
    assert.equal(got.readInt32LE(4 * 777), 777);
    e.ctx.destroy();
  });

  it('through the server: other sessions are answered while one session\'s long kernel runs', async () => {
    const server = await startServer({ port: 0, devices: 'emulated:T4x2', workers: 2 });
    const clients: TestClient[] = [];
    try {
      const a = await TestClient.session(server.address.port);
      clients.push(a);
      const { module } = await a.loadModule(Buffer.from(ptx));
      // 256 x 128 threads: above the default split threshold.
      const out = a.alloc(256 * 128 * 4);
      // Calibrate: some 300 ms of work (inline it would hold the server that long).
      let iters = 1 << 10;
      for (;;) {
        const t = Date.now();
        a.launch(module, a.kernelIndex(module, 'spin'), [256], [128], [out, iters]);
        await a.sync();
        if (Date.now() - t > 150 || iters >= 1 << 24) break;
        iters *= 4;
      }
      const b = await TestClient.session(server.address.port);
      clients.push(b);
      const pb = b.alloc(4096);
      const t0 = Date.now();
      a.launch(module, a.kernelIndex(module, 'spin'), [256], [128], [out, iters * 2]);
      let aDone = 0;
      const aSync = a.sync().then(() => { aDone = Date.now(); });
      b.htod(pb, Buffer.alloc(4096, 7));
      const back = await b.dtoh(pb, 4096);
      const bDone = Date.now();
      assert.equal(back[4095], 7);
      await aSync;
      assert.ok(bDone < aDone, `B answered at +${bDone - t0} ms, before A's kernel ended at +${aDone - t0} ms`);
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  });
});
