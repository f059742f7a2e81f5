// Registers parked at barriers (syncops.ts spill slots): 64-bit values past 2^53 (BigInt in the emulator)
// both in a register set once before the loop (kept in its slot at every write) and in one the loop changes
// (spilled at each barrier), and 64-bit and float kernel params, against BigInt arithmetic on the host.

import { strict as assert } from 'node:assert';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = `
extern "C" __global__ void park(unsigned long long v, unsigned long long *o, float f, double d) {
  __shared__ int s[64];
  unsigned long long a = v + threadIdx.x;
  unsigned long long acc = v;
  for (int k = 0; k < 3; k++) {
    s[threadIdx.x] = k + threadIdx.x;
    __syncthreads();
    acc = acc * 3 + s[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
  }
  o[threadIdx.x * 4] = a;
  o[threadIdx.x * 4 + 1] = acc;
  o[threadIdx.x * 4 + 2] = (unsigned long long)(f * 2.0f);
  o[threadIdx.x * 4 + 3] = (unsigned long long)(d * 4.0);
}`;

describe('emulator: registers parked at barriers', function () {
  this.timeout(60_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SRC);
  });

  it('keep 64-bit values past 2^53, and 64-bit and float params, exact', async () => {
    const s = new Session({ workers: 0 });
    const m = s.load(ptx);
    const n = 32;
    const o = s.alloc(n * 32);
    for (const v of [0xfedcba9876543210n, (1n << 53n) + 5n, 12345n, (1n << 64n) - 1n]) {
      s.launch(m, 'park', 1, n, [v, o, { f32: 1.5 }, { f64: 2.25 }]);
      const got = await s.download(o, new BigUint64Array(n * 4));
      for (let t = 0; t < n; t++) {
        let acc = v;
        for (let k = 0; k < 3; k++) acc = BigInt.asUintN(64, acc * 3n + BigInt(k + (t + 1) % n));
        const want = [BigInt.asUintN(64, v + BigInt(t)), acc, 3n, 9n];
        for (let j = 0; j < 4; j++) assert.equal(got[t * 4 + j], want[j], `v=0x${v.toString(16)} thread ${t} value ${j}`);
      }
    }
    s.ctx.destroy();
  });
});
