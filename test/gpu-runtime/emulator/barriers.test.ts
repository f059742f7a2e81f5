// Named barriers with partial thread counts (bar.arrive + bar.sync id, count), from nvcc-compiled CUDA,
// checked against a CPU model of the same producer/consumer rounds.

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Session, hasNvcc, nvccPtx } from './harness';

const CUDA = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda');

describe('emulator: named barriers', function () {
  this.timeout(60_000);
  before(function () { if (!hasNvcc()) this.skip(); });

  it('bar.arrive producers hand rounds to bar.sync consumers', async () => {
    const s = new Session();
    const m = s.load(nvccPtx(fs.readFileSync(path.join(CUDA, 'barriers.cu'), 'utf8'), ['-arch=sm_75']));
    const rounds = 5;
    const input = Int32Array.from({ length: rounds * 64 }, (_, i) => (i * 37) % 101 - 50);
    const din = s.upload(input);
    const dout = s.alloc(input.byteLength);
    s.launch(m, 'prodcons', 1, 128, [din, dout, rounds]);
    const got = await s.download(dout, new Int32Array(input.length));
    const want = new Int32Array(input.length);
    for (let r = 0; r < rounds; r++) for (let c = 0; c < 64; c++) want[r * 64 + c] = input[r * 64 + (63 - c)] * 2 + r;
    assert.deepStrictEqual(Array.from(got), Array.from(want));
  });
});

describe('emulator: sync points inside non-inlined device functions', function () {
  this.timeout(60_000);
  before(function () { if (!hasNvcc()) this.skip(); });

  it('__noinline__ block and warp reductions called twice per kernel', async () => {
    const s = new Session();
    const ptx = nvccPtx(fs.readFileSync(path.join(CUDA, 'noinline_sync.cu'), 'utf8'), ['-arch=sm_75']);
    assert.match(ptx, /\.func .*blockSum/, 'nvcc kept blockSum out of line');
    const m = s.load(ptx);
    const blocks = 3, threads = 128;
    const input = Int32Array.from({ length: blocks * threads }, (_, i) => (i * 13) % 29 - 14);
    const din = s.upload(input);
    const dout = s.alloc(8 * blocks);
    s.launch(m, 'sums', blocks, threads, [din, dout]);
    const got = await s.download(dout, new Int32Array(2 * blocks));
    const want: number[] = [];
    for (let b = 0; b < blocks; b++) {
      let s1 = 0, s2 = 0;
      for (let t = 0; t < threads; t++) { const v = input[b * threads + t]; s1 += v; s2 += v * v; }
      want.push(s1, s2);
    }
    assert.deepStrictEqual(Array.from(got), want);
  });
});
