// The server on the emulated backend with PTX that nvcc compiles at test time: results checked against
// CPU references. Skipped when nvcc or the emulator is missing from this build.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../../gpu-runtime/server/src/main';
import { TestClient } from '../../helpers/testClient';

const SOURCE = `
#include <cstdio>
extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
extern "C" __global__ void matmul(const float *a, const float *b, float *c, int n) {
  int r = blockIdx.y * blockDim.y + threadIdx.y, k = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= n || k >= n) return;
  float s = 0.f;
  for (int j = 0; j < n; j++) s += a[r * n + j] * b[j * n + k];
  c[r * n + k] = s;
}
extern "C" __global__ void hello(int k) {
  if (threadIdx.x == 0) printf("hello %d from block %d\\n", k, blockIdx.x);
}
`;

function nvcc(): string | null {
  for (const p of [process.env.NVCC, '/usr/local/cuda/bin/nvcc', 'nvcc']) {
    if (!p) continue;
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

const floats = (n: number, f: (i: number) => number): Buffer => {
  const b = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) b.writeFloatLE(f(i), i * 4);
  return b;
};

describe('server on the emulated backend (nvcc -ptx)', function () {
  this.timeout(120000);
  let ptx: Buffer;
  let server: RunningServer;
  let c: TestClient;

  before(async function () {
    const cc = nvcc();
    if (!cc || !existsSync(join(__dirname, '../../../gpu-runtime/emulator/src/index.js'))) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'rgpu-ptx-'));
    try {
      writeFileSync(join(dir, 'k.cu'), SOURCE);
      execFileSync(cc!, ['-ptx', '-arch=sm_75', '-o', join(dir, 'k.ptx'), join(dir, 'k.cu')], { stdio: 'pipe' });
      ptx = readFileSync(join(dir, 'k.ptx'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    server = await startServer({ port: 0, devices: 'emulated:T4' });
  });
  after(async () => {
    c?.close();
    await server?.close();
  });

  it('leases an emulated T4 and runs vector add', async () => {
    c = await TestClient.session(server.address.port);
    assert.equal(c.hello!.device.type, 'T4');
    const { module, info } = await c.loadModule(ptx, 'ptx', { cacheFirst: true });
    const k = c.kernelIndex(module, 'vadd');
    assert.deepEqual(info.kernels[k].params.map((p) => p[1]), [8, 8, 8, 4]);
    const n = 1000;
    const a = floats(n, (i) => i * 0.5), b = floats(n, (i) => 3 - i);
    const da = c.alloc(n * 4), db = c.alloc(n * 4), dc = c.alloc(n * 4);
    c.htod(da, a);
    c.htod(db, b);
    c.launch(module, k, [Math.ceil(n / 128)], [128], [da, db, dc, n]);
    const out = await c.dtoh(dc, n * 4);
    for (let i = 0; i < n; i++) assert.equal(out.readFloatLE(i * 4), Math.fround(Math.fround(i * 0.5) + Math.fround(3 - i)), `c[${i}]`);
  });

  it('runs a matmul and matches the CPU reference', async () => {
    const { module } = await c.loadModule(ptx, 'ptx', { cacheFirst: true });
    const k = c.kernelIndex(module, 'matmul');
    const n = 24;
    const a = floats(n * n, (i) => ((i * 7) % 11) - 5), b = floats(n * n, (i) => ((i * 3) % 5) * 0.25);
    const da = c.alloc(n * n * 4), db = c.alloc(n * n * 4), dc = c.alloc(n * n * 4);
    c.htod(da, a);
    c.htod(db, b);
    c.launch(module, k, [Math.ceil(n / 8), Math.ceil(n / 8)], [8, 8], [da, db, dc, n]);
    await c.sync();
    const out = await c.dtoh(dc, n * n * 4);
    for (let r = 0; r < n; r++) {
      for (let col = 0; col < n; col++) {
        let s = 0;
        for (let j = 0; j < n; j++) s = Math.fround(s + Math.fround(a.readFloatLE((r * n + j) * 4) * b.readFloatLE((j * n + col) * 4)));
        assert.ok(Math.abs(out.readFloatLE((r * n + col) * 4) - s) <= 1e-3 * Math.max(1, Math.abs(s)), `c[${r}][${col}]`);
      }
    }
  });

  it('delivers device printf before the sync reply', async () => {
    const { module } = await c.loadModule(ptx, 'ptx', { cacheFirst: true });
    c.printf.length = 0;
    c.launch(module, c.kernelIndex(module, 'hello'), [2], [32], [7]);
    await c.sync();
    const text = c.printf.join('');
    assert.match(text, /hello 7 from block 0\n/);
    assert.match(text, /hello 7 from block 1\n/);
  });
});
