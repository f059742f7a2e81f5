// Cooperative launches: a grid-sync reduction (cooperative_groups::this_grid().sync(), compiled by nvcc)
// run with every CTA resident, checked against a CPU sum; oversize grids are refused; a plain launch of the
// same kernel traps as on hardware. Drives the engine directly (loadPtx + runGrid), the way device.ts does.

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CudaError, CUresult } from '../../../gpu-runtime/server/src/backend';
import { DeviceHeap } from '../../../gpu-runtime/emulator/src/memory';
import { loadPtx } from '../../../gpu-runtime/emulator/src/module';
import { GridConfig, coopCapacity, runGrid } from '../../../gpu-runtime/emulator/src/scheduler';
import { hasNvcc, nvccPtx } from './harness';

const SRC = fs.readFileSync(path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/gridsync.cu'), 'utf8');
const BASE = 0x7f00_0000_0000;
const LIMITS = { maxBlocksPerSm: 16, maxThreadsPerSm: 1024, sharedPerSm: 65536 };

function params(...u64s: number[]): Uint8Array {
  const b = new Uint8Array(28);
  const dv = new DataView(b.buffer);
  u64s.slice(0, 3).forEach((v, i) => dv.setBigUint64(i * 8, BigInt(v), true));
  dv.setInt32(24, u64s[3], true);
  return b;
}

describe('emulator: cooperative launches (grid-wide sync)', function () {
  this.timeout(60_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SRC, ['-arch=sm_75']);
  });

  function setup(n: number, blocks: number): { heap: DeviceHeap; inp: number; part: number; out: number; want: number; data: Int32Array } {
    const heap = new DeviceHeap(BASE, 1 << 26, () => undefined);
    const up = (x: number): number => Math.ceil(x / 256) * 256;
    const inp = BASE + 0x10000, part = up(inp + 4 * n + 256), out = up(part + 4 * blocks + 256);
    heap.alloc(inp, 4 * n); heap.alloc(part, 4 * blocks); heap.alloc(out, 4);
    const data = new Int32Array(n);
    let want = 0;
    for (let i = 0; i < n; i++) { data[i] = ((i * 7919) % 1000) - 300; want += data[i]; }
    heap.write(inp, new Uint8Array(data.buffer));
    return { heap, inp, part, out, want, data };
  }

  it('reduces across 6 CTAs with two grid.sync() rounds', () => {
    const blocks = 6, n = 5000;
    const { heap, inp, part, out, want } = setup(n, blocks);
    const mod = loadPtx(ptx, heap);
    const k = mod.kernels.find((x) => x.name === 'gridSum')!;
    assert.ok(k.gridSync);
    const cfg: GridConfig = { grid: [blocks, 1, 1], block: [128, 1, 1], sharedMem: 0, params: params(inp, part, out, n), smCount: 2, watchdogMs: 30_000, printfLimit: 1 << 16, cooperative: LIMITS };
    runGrid(k, heap, cfg);
    const total = new Int32Array(1);
    heap.read(out, new Uint8Array(total.buffer));
    assert.strictEqual(total[0], want);
    // After the second grid.sync() every CTA read the final total: each wrote total + its index.
    const parts = new Int32Array(blocks);
    heap.read(part, new Uint8Array(parts.buffer));
    assert.deepStrictEqual(Array.from(parts), Array.from({ length: blocks }, (_, b) => want + b));
  });

  it('refuses a grid larger than the co-resident capacity with COOPERATIVE_LAUNCH_TOO_LARGE', () => {
    const { heap, inp, part, out } = setup(256, 64);
    const k = loadPtx(ptx, heap).kernels.find((x) => x.name === 'gridSum')!;
    const cap = coopCapacity(2, LIMITS, 256, k.sharedStatic);
    assert.strictEqual(cap, 8); // 1024 threads per SM / 256 = 4 CTAs per SM, 2 SMs
    const cfg: GridConfig = { grid: [cap + 1, 1, 1], block: [256, 1, 1], sharedMem: 0, params: params(inp, part, out, 256), smCount: 2, watchdogMs: 30_000, printfLimit: 1 << 16, cooperative: LIMITS };
    assert.throws(() => runGrid(k, heap, cfg), (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  });

  it('traps when launched without the cooperative flag, as the hardware does', () => {
    const { heap, inp, part, out } = setup(256, 2);
    const k = loadPtx(ptx, heap).kernels.find((x) => x.name === 'gridSum')!;
    const cfg: GridConfig = { grid: [2, 1, 1], block: [128, 1, 1], sharedMem: 0, params: params(inp, part, out, 256), smCount: 2, watchdogMs: 30_000, printfLimit: 1 << 16 };
    assert.throws(() => runGrid(k, heap, cfg), (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_LAUNCH_FAILED && /trap/.test(e.message));
  });
});
