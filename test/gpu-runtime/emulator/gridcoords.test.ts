// Block coordinates of a 3-D grid (%ctaid.x/y/z) for every block, with and without barriers, inline and split
// across block workers (whose ranges start in the middle of a row), against the linear block order.

import { strict as assert } from 'node:assert';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = `
__device__ int code() { return blockIdx.x | (blockIdx.y << 10) | (blockIdx.z << 20); }
__device__ int linear() { return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z); }
extern "C" __global__ void ids(int *o) { if (threadIdx.x == 0) o[linear()] = code(); }
extern "C" __global__ void ids_sync(int *o) {
  __shared__ int s;
  if (threadIdx.x == 0) s = code();
  __syncthreads();
  if (threadIdx.x == blockDim.x - 1) o[linear()] = s;
}
`;

describe('emulator: 3-D grid block coordinates', function () {
  this.timeout(60_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(SRC);
  });

  for (const workers of [0, 2]) {
    it(`every block sees its own (x, y, z), without and with a barrier (${workers ? 'split across 2 workers' : 'inline'})`, async () => {
      const s = new Session({ workers, splitMin: 1 });
      const m = s.load(ptx);
      const [gx, gy, gz] = [7, 5, 3];
      const n = gx * gy * gz;
      for (const k of ['ids', 'ids_sync']) {
        const o = s.alloc(n * 4);
        s.launch(m, k, [gx, gy, gz], 64, [o]);
        assert.equal(s.ctx.query(null), workers === 0, workers ? 'the launch runs on the workers' : 'inline');
        const got = await s.download(o, new Int32Array(n));
        for (let z = 0; z < gz; z++) for (let y = 0; y < gy; y++) for (let x = 0; x < gx; x++) {
          assert.equal(got[x + gx * (y + gy * z)], x | (y << 10) | (z << 20), `${k}: block (${x}, ${y}, ${z})`);
        }
      }
      s.ctx.destroy();
    });
  }
});
