// Launch state the scheduler keeps between launches must belong to one context. These run the same module
// text in several contexts on different devices, with launches interleaved, a context destroyed and a new one
// taking its slot (same va window), in process and through the server, whose module cache hands the second
// session the first one's image by hash.

import * as assert from 'assert';
import { createEmulatedBackend } from '../../../gpu-runtime/emulator/src/index';
import { DeviceContext, ModuleInfo } from '../../../gpu-runtime/server/src/backend';
import { startServer, type RunningServer } from '../../../gpu-runtime/server/src/main';
import { TestClient } from '../../helpers/testClient';
import { hasNvcc, nvccPtx } from './harness';

const SOURCE = `
#include <cstdio>
extern "C" __global__ void fill(int *out, int v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = v + i;
}
extern "C" __global__ void blocksum(const int *in, int *out) {
  __shared__ int s[128];
  s[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}
extern "C" __global__ void say(int k) {
  if (threadIdx.x == 0) printf("say %d\\n", k);
}
`;

interface Ctx { ctx: DeviceContext; mod: { handle: unknown; info: ModuleInfo }; next: number; printed: string }

function open(ctx: DeviceContext, ptx: string): Ctx {
  return { ctx, mod: ctx.loadModule(Buffer.from(ptx), 'ptx', 'ms'), next: ctx.va.base, printed: '' };
}
function alloc(c: Ctx, n: number): number {
  const a = c.next;
  c.ctx.alloc(a, n);
  c.next += Math.ceil(n / 256) * 256;
  return a;
}
function launch(c: Ctx, name: string, grid: number, block: number, args: (number | bigint)[]): void {
  const ki = c.mod.info.kernels.findIndex((k) => k.name === name);
  const k = c.mod.info.kernels[ki];
  const buf = Buffer.alloc(Math.max(k.paramSize, 1));
  args.forEach((a, i) => {
    if (k.params[i].size === 8) buf.writeBigUInt64LE(BigInt(a), k.params[i].offset);
    else buf.writeInt32LE(Number(a), k.params[i].offset);
  });
  c.ctx.launch(null, c.mod.handle, ki, { grid: [grid, 1, 1], block: [block, 1, 1], sharedMem: 0, params: buf, cooperative: false }, (t) => { c.printed += t; });
}
async function ints(c: Ctx, addr: number, n: number): Promise<number[]> {
  const b = Buffer.alloc(n * 4);
  await c.ctx.enqueueRead(null, addr, b);
  return Array.from({ length: n }, (_, i) => b.readInt32LE(i * 4));
}

/** One round of every kernel kind in context `c`, checked against the host. */
async function round(c: Ctx, v: number): Promise<void> {
  const n = 512;
  const a = alloc(c, n * 4), s = alloc(c, 4 * 4);
  launch(c, 'fill', 4, 128, [a, v, n]);
  launch(c, 'blocksum', 4, 128, [a, s]);
  launch(c, 'say', 1, 32, [v]);
  assert.equal(c.ctx.stickyError, 0);
  await c.ctx.synchronize(null);
  const got = await ints(c, s, 4);
  const want = [0, 1, 2, 3].map((b) => { let t = 0; for (let i = b * 128; i < (b + 1) * 128; i++) t += v + i; return t; });
  assert.deepStrictEqual(got, want, `block sums with v=${v}`);
  assert.ok(c.printed.endsWith(`say ${v}\n`), `printf of round ${v}: ${JSON.stringify(c.printed)}`);
}

describe('emulator: launch state across contexts, devices and sessions', function () {
  this.timeout(120000);
  let ptx: string;
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SOURCE, ['-arch=sm_75']);
  });

  it('two contexts on two devices, interleaved; a new context in a freed slot starts clean', async () => {
    const be = createEmulatedBackend([{ type: 'T4', count: 1 }, { type: 'A100-40GB', count: 1 }]);
    const a = open(be.devices[0].createContext({ vaSize: 1 << 26 }), ptx);
    await round(a, 1);
    const b = open(be.devices[1].createContext({ vaSize: 1 << 26 }), ptx);
    await round(b, 2);
    await round(a, 3);
    await round(b, 4);
    const aBase = a.ctx.va.base;
    a.ctx.destroy();
    await round(b, 5);
    // The freed slot goes to the next context: same device addresses, a different heap.
    const c = open(be.devices[0].createContext({ vaSize: 1 << 26 }), ptx);
    assert.equal(c.ctx.va.base, aBase);
    await round(c, 6);
    await round(b, 7);
    await round(c, 8);
    b.ctx.destroy();
    c.ctx.destroy();
    await be.close();
  });

  it('through the server: a second session on another device reuses the cached module while the first runs', async () => {
    const server: RunningServer = await startServer({ port: 0, devices: 'emulated:T4,emulated:A100-40GB' });
    const clients: TestClient[] = [];
    try {
      const image = Buffer.from(ptx);
      const run = async (c: TestClient, m: number, v: number): Promise<void> => {
        const n = 256;
        const a = c.alloc(n * 4), s = c.alloc(2 * 4);
        c.launch(m, c.kernelIndex(m, 'fill'), [2], [128], [a, v, n]);
        c.launch(m, c.kernelIndex(m, 'blocksum'), [2], [128], [a, s]);
        c.launch(m, c.kernelIndex(m, 'say'), [1], [32], [v]);
        const got = await c.dtoh(s, 8);
        const want = [0, 1].map((b) => { let t = 0; for (let i = b * 128; i < (b + 1) * 128; i++) t += v + i; return t; });
        assert.deepStrictEqual([got.readInt32LE(0), got.readInt32LE(4)], want, `session round v=${v}`);
        await c.sync();
      };
      const t4 = await TestClient.session(server.address.port, { gpuType: 'T4' });
      clients.push(t4);
      const m1 = (await t4.loadModule(image, 'ptx', { cacheFirst: true })).module;
      await run(t4, m1, 10);
      const a100 = await TestClient.session(server.address.port, { gpuType: 'A100-40GB' });
      clients.push(a100);
      const l2 = await a100.loadModule(image, 'ptx', { cacheFirst: true });
      assert.ok(l2.cacheHit, 'the second session loads the module from the cache');
      await Promise.all([run(t4, m1, 11), run(a100, l2.module, 12)]);
      t4.close();
      // A new session after the first one ends, while the A100 session keeps launching.
      const again = await TestClient.session(server.address.port, { gpuType: 'T4' });
      clients.push(again);
      const m3 = (await again.loadModule(image, 'ptx', { cacheFirst: true })).module;
      await Promise.all([run(again, m3, 13), run(a100, l2.module, 14)]);
      assert.deepStrictEqual(a100.printf.join('').match(/say \d+/g), ['say 12', 'say 14']);
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  });
});
