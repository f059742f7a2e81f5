// Thrust's reduce and radix sort as nvcc emits them (cub kernels, inline-asm blocks, bmsk, vote.ballot.sync):
// the whole module loads, and its single-tile kernels, launched the way cub's dispatch launches them for a
// few thousand ints, agree with a CPU reference.

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = fs.readFileSync(path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/thrust.cu'), 'utf8');

function randomInts(n: number, seed: number): Int32Array {
  const a = new Int32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) | 0; a[i] = (x >> 8) % 100000; }
  return a;
}

describe('emulator: thrust (cub) kernels', function () {
  this.timeout(120_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SRC, ['-arch=sm_75']);
  });

  it('loads the whole thrust reduce+sort module quickly', () => {
    const s = new Session();
    const t0 = Date.now();
    const m = s.load(ptx);
    const ms = Date.now() - t0;
    assert.ok(m.info.kernels.some((k) => k.name.includes('DeviceRadixSortOnesweepKernel')));
    assert.ok(m.info.kernels.length >= 8, `${m.info.kernels.length} kernels`);
    assert.ok(ms < 8000, `load took ${ms} ms`); // generous: the test VM is shared and loaded
  });

  it('loads thrust float/double/int64 sorts, sort_by_key, scan, transform_reduce and unique', function () {
    const more = nvccPtx(fs.readFileSync(path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/thrust_more.cu'), 'utf8'), ['-arch=sm_75']);
    const m = new Session().load(more);
    for (const want of ['DeviceRadixSortOnesweepKernel', 'DeviceScanKernel', 'DeviceReduceKernel']) {
      assert.ok(m.info.kernels.some((k) => k.name.includes(want)), want);
    }
  });

  it('DeviceReduceSingleTileKernel sums 3000 ints', async () => {
    const s = new Session();
    const m = s.load(ptx);
    const n = 3000;
    const data = randomInts(n, 7);
    const din = s.upload(data);
    const dout = s.alloc(4);
    // (device_ptr in, int* out, unsigned n, plus, init, identity)
    s.launch(m, 'DeviceReduceSingleTileKernelINS2_10policy_hubIijN4cuda3std3__44plusIiEEE10Policy1000EN6thrust', 1, 256, [din, dout, n, 0, 5, 0]);
    const got = await s.download(dout, new Int32Array(1));
    let want = 5;
    for (const v of data) want = (want + v) | 0;
    assert.strictEqual(got[0], want);
  });

  it('DeviceRadixSortSingleTileKernel sorts 2000 ints', async () => {
    const s = new Session();
    const m = s.load(ptx);
    const n = 2000;
    const data = randomInts(n, 11).map((v, i) => (i % 3 === 0 ? -v : v));
    const din = s.upload(data);
    const dout = s.alloc(4 * n);
    // (keys in, keys out, values in, values out, num_items, begin_bit, end_bit, decomposer)
    s.launch(m, 'DeviceRadixSortSingleTileKernel', 1, 256, [din, dout, 0, 0, n, 0, 32, 0]);
    const got = await s.download(dout, new Int32Array(n));
    const want = Int32Array.from(data).sort();
    assert.deepStrictEqual(Array.from(got), Array.from(want));
  });
});
