// Indirect calls: a device function-pointer table (`.global .u64 table[] = {f, g, h}`) called through a
// register with a .callprototype, from nvcc-compiled CUDA, against a CPU reference.

import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = fs.readFileSync(path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/indirect.cu'), 'utf8');

describe('emulator: indirect calls', function () {
  this.timeout(60_000);
  before(function () { if (!hasNvcc()) this.skip(); });

  it('calls through a function-pointer table', async () => {
    const ptx = nvccPtx(SRC, ['-arch=sm_75']);
    assert.match(ptx, /\.callprototype/, 'nvcc emitted an indirect call');
    const s = new Session();
    const m = s.load(ptx);
    const n = 300;
    const a = Int32Array.from({ length: n }, (_, i) => i * 3 - 200);
    const b = Int32Array.from({ length: n }, (_, i) => (i * 7) % 50 - 9);
    const w = Int32Array.from({ length: n }, (_, i) => (i * 5) % 11);
    const da = s.upload(a), db = s.upload(b), dw = s.upload(w);
    const dout = s.alloc(4 * n);
    s.launch(m, 'apply', Math.ceil(n / 128), 128, [da, db, dw, dout, n]);
    const got = await s.download(dout, new Int32Array(n));
    const want = Array.from(a, (x, i) => [x + b[i], Math.imul(x, b[i]), x - b[i]][w[i] % 3]);
    assert.deepStrictEqual(Array.from(got), want);
  });
});

describe('emulator: brx.idx jump tables', function () {
  this.timeout(60_000);
  before(function () { if (!hasNvcc()) this.skip(); });

  it('branches through a .branchtargets table', async () => {
    const src = fs.readFileSync(path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/jumptable.cu'), 'utf8');
    const ptx = nvccPtx(src, ['-arch=sm_75']);
    assert.match(ptx, /brx\.idx/);
    const s = new Session();
    const m = s.load(ptx);
    const n = 256;
    const inp = Int32Array.from({ length: n }, (_, i) => (i * 37) % 211 - 90);
    const din = s.upload(inp);
    const dout = s.alloc(4 * n);
    s.launch(m, 'jt', 2, 128, [din, dout, n]);
    const got = await s.download(dout, new Int32Array(n));
    const f = (v: number): number => [Math.imul(v, 3), v ^ 85, v - 100, -v][v & 3];
    const want = Array.from(inp, (_, i) => { const b = i - (i % 128); return f(inp[i]) + f(inp[b + ((i % 128) + 1) % 128]); });
    assert.deepStrictEqual(Array.from(got), want);
  });
});
