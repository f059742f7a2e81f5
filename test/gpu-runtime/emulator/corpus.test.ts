// Proof corpus (issue 6): classic CUDA kernels from cuda/corpus.cu, compiled by nvcc with -fmad=false, run on
// the emulator and checked against CPU references computed here (bit-exact where float op order is fixed).

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/corpus.cu');
const f = Math.fround;

/** Deterministic pseudo-random ints in [lo, hi) so failures reproduce. */
function ints(n: number, lo: number, hi: number, seed = 1): Int32Array {
  let x = seed >>> 0 || 1;
  return Int32Array.from({ length: n }, () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return lo + (x % (hi - lo));
  });
}

describe('emulator: proof corpus of real CUDA kernels', function () {
  this.timeout(60_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(fs.readFileSync(SRC, 'utf8'), ['-fmad=false']);
  });
  const session = (): { s: Session; m: ReturnType<Session['load']> } => {
    const s = new Session({ watchdogMs: 5000 });
    return { s, m: s.load(ptx) };
  };

  it('Blelloch exclusive scan in shared memory (512 ints, one block)', async () => {
    const { s, m } = session();
    const n = 512;
    const a = ints(n, -1000, 1000, 7);
    const out = s.alloc(n * 4);
    s.launch(m, 'blelloch_scan', 1, n / 2, [s.upload(a), out, n], n * 4);
    const got = await s.download(out, new Int32Array(n));
    let acc = 0;
    for (let i = 0; i < n; i++) { assert.equal(got[i], acc, `scan[${i}]`); acc += a[i]; }
  });

  it('warp-shuffle inclusive scan (4 blocks of 256, ragged tail)', async () => {
    const { s, m } = session();
    const n = 1000, bs = 256;
    const a = ints(n, -50, 50, 3);
    const out = s.alloc(n * 4);
    s.launch(m, 'warp_scan', Math.ceil(n / bs), bs, [s.upload(a), out, n]);
    const got = await s.download(out, new Int32Array(n));
    let acc = 0;
    for (let i = 0; i < n; i++) {
      if (i % bs === 0) acc = 0;
      acc += a[i];
      assert.equal(got[i], acc, `scan[${i}]`);
    }
  });

  it('bitonic sort in shared memory (1024 ints, one block)', async () => {
    const { s, m } = session();
    const n = 1024;
    const a = ints(n, -100000, 100000, 11);
    const d = s.upload(a);
    s.launch(m, 'bitonic_sort', 1, 256, [d, n], n * 4);
    const got = await s.download(d, new Int32Array(n));
    assert.deepEqual(got, Int32Array.from(a).sort());
  });

  it('bottom-up merge sort (512 ints with duplicates, one block)', async () => {
    const { s, m } = session();
    const n = 512;
    const a = ints(n, 0, 100, 5);
    const d = s.upload(a);
    s.launch(m, 'merge_sort', 1, 128, [d, n], 2 * n * 4);
    const got = await s.download(d, new Int32Array(n));
    assert.deepEqual(got, Int32Array.from(a).sort());
  });

  for (const kind of ['naive', 'tiled'] as const) {
    it(`matrix transpose, ${kind} (96x64)`, async () => {
      const { s, m } = session();
      const w = 96, h = 64;
      const A = Float32Array.from({ length: w * h }, (_, i) => i * 0.5 - 7);
      const out = s.alloc(w * h * 4);
      if (kind === 'naive') s.launch(m, 'transpose_naive', [w / 16, h / 16, 1], [16, 16, 1], [s.upload(A), out, w, h]);
      else s.launch(m, 'transpose_tiled', [w / 32, h / 32, 1], [32, 8, 1], [s.upload(A), out, w, h]);
      const got = await s.download(out, new Float32Array(w * h));
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.equal(got[x * h + y], A[y * w + x], `(${x},${y})`);
    });
  }

  it('2D 5-point Jacobi stencil, 5 sweeps (bit-exact)', async () => {
    const { s, m } = session();
    const w = 48, h = 40, iters = 5;
    let ref = Float32Array.from({ length: w * h }, (_, i) => {
      const x = i % w, y = Math.floor(i / w);
      return x === 0 ? 1 : y === h - 1 ? Math.sin(x) : ((i * 37) % 17) / 17;
    });
    let a = s.upload(ref), b = s.alloc(w * h * 4);
    for (let it = 0; it < iters; it++) {
      s.launch(m, 'jacobi', [w / 16, h / 8, 1], [16, 8, 1], [a, b, w, h]);
      [a, b] = [b, a];
      const next = new Float32Array(w * h);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const i = y * w + x;
        next[i] = x === 0 || y === 0 || x === w - 1 || y === h - 1 ? ref[i]
          : f(0.25 * f(f(f(ref[i - 1] + ref[i + 1]) + ref[i - w]) + ref[i + w]));
      }
      ref = next;
    }
    const got = await s.download(a, new Float32Array(w * h));
    for (let i = 0; i < w * h; i++) assert.equal(got[i], ref[i], `u[${i}]`);
  });

  it('Mandelbrot iteration counts (64x48, exact)', async () => {
    const { s, m } = session();
    const w = 64, h = 48, maxIter = 200;
    const x0 = f(-2.2), y0 = f(-1.2), dx = f(3.2 / w), dy = f(2.4 / h);
    const out = s.alloc(w * h * 4);
    s.launch(m, 'mandelbrot', [w / 16, h / 16, 1], [16, 16, 1], [out, w, h, { f32: x0 }, { f32: y0 }, { f32: dx }, { f32: dy }, maxIter]);
    const got = await s.download(out, new Int32Array(w * h));
    let inside = 0;
    for (let py = 0; py < h; py++) for (let px = 0; px < w; px++) {
      const cx = f(x0 + f(px * dx)), cy = f(y0 + f(py * dy));
      let x = 0, y = 0, it = 0;
      while (it < maxIter && f(f(x * x) + f(y * y)) <= 4) {
        const xt = f(f(f(x * x) - f(y * y)) + cx);
        y = f(f(f(2 * x) * y) + cy);
        x = xt;
        it++;
      }
      if (it === maxIter) inside++;
      assert.equal(got[py * w + px], it, `(${px},${py})`);
    }
    assert.ok(inside > 0 && inside < w * h, 'grid straddles the set boundary');
  });

  it('Black-Scholes call/put (expf, logf, sqrtf, CND polynomial) within 1e-4', async () => {
    const { s, m } = session();
    const n = 1000, r = 0.02, v = 0.3;
    const u = (i: number, k: number): number => ((i * k) % 1000) / 1000;
    const S = Float32Array.from({ length: n }, (_, i) => 5 + 25 * u(i, 379));
    const X = Float32Array.from({ length: n }, (_, i) => 1 + 99 * u(i, 613));
    const T = Float32Array.from({ length: n }, (_, i) => 0.25 + 9.75 * u(i, 211));
    const call = s.alloc(n * 4), put = s.alloc(n * 4);
    s.launch(m, 'black_scholes', Math.ceil(n / 128), 128, [call, put, s.upload(S), s.upload(X), s.upload(T), { f32: r }, { f32: v }, n]);
    const C = await s.download(call, new Float32Array(n));
    const P = await s.download(put, new Float32Array(n));
    const cnd = (d: number): number => {
      const K = 1 / (1 + 0.2316419 * Math.abs(d));
      const c = 0.3989422804014327 * Math.exp(-0.5 * d * d) *
        (K * (0.31938153 + K * (-0.356563782 + K * (1.781477937 + K * (-1.821255978 + K * 1.330274429)))));
      return d > 0 ? 1 - c : c;
    };
    const rf = f(r), vf = f(v);
    for (let i = 0; i < n; i++) {
      const sq = Math.sqrt(T[i]);
      const d1 = (Math.log(S[i] / X[i]) + (rf + 0.5 * vf * vf) * T[i]) / (vf * sq), d2 = d1 - vf * sq;
      const e = Math.exp(-rf * T[i]);
      const c = S[i] * cnd(d1) - X[i] * e * cnd(d2), p = X[i] * e * (1 - cnd(d2)) - S[i] * (1 - cnd(d1));
      // Relative to the option's scale (S, X), since deep out-of-the-money prices are near zero.
      const tol = 1e-4 * Math.max(S[i], X[i]);
      assert.ok(Math.abs(C[i] - c) <= tol, `call[${i}] ${C[i]} vs ${c}`);
      assert.ok(Math.abs(P[i] - p) <= tol, `put[${i}] ${P[i]} vs ${p}`);
    }
  });

  it('radix-2 FFT of 256 complex floats in shared memory (sincosf twiddles) within 1e-3', async () => {
    const { s, m } = session();
    const n = 256, logn = 8;
    const x = Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(i * 0.37) + ((i * 13) % 7) / 7 - 0.5);
    const out = s.alloc(2 * n * 4);
    s.launch(m, 'fft_radix2', 1, n / 2, [s.upload(x), out, n, logn], n * 8);
    const got = await s.download(out, new Float32Array(2 * n));
    let maxMag = 0, maxErr = 0;
    for (let k = 0; k < n; k++) {
      let re = 0, im = 0;
      for (let t = 0; t < n; t++) {
        const a = (-2 * Math.PI * k * t) / n;
        re += x[2 * t] * Math.cos(a) - x[2 * t + 1] * Math.sin(a);
        im += x[2 * t] * Math.sin(a) + x[2 * t + 1] * Math.cos(a);
      }
      maxMag = Math.max(maxMag, Math.hypot(re, im));
      maxErr = Math.max(maxErr, Math.hypot(got[2 * k] - re, got[2 * k + 1] - im));
    }
    assert.ok(maxErr <= 1e-3 * maxMag, `max error ${maxErr} vs peak ${maxMag}`);
  });

  it('recursive __device__ functions (fib, divide-and-conquer sum) per thread', async () => {
    // The PTX must really call fib from fib, or this would not exercise the emulator's call stack.
    const fibBody = ptx.slice(ptx.indexOf('.func  (.param .b32 func_retval0) _Z3fibi('));
    assert.match(fibBody.slice(0, fibBody.indexOf('\n}')), /call\.uni[^;]*_Z3fibi/);
    const { s, m } = session();
    const n = 100;
    const a = ints(n, -20, 20, 9);
    const fo = s.alloc(n * 4), so = s.alloc(n * 4);
    s.launch(m, 'recursion', 2, 64, [s.upload(a), fo, so, n]);
    const F = await s.download(fo, new Int32Array(n));
    const S = await s.download(so, new Int32Array(n));
    const fib = (k: number): number => (k < 2 ? k : fib(k - 1) + fib(k - 2));
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += a[i];
      assert.equal(F[i], fib(i % 16), `fib[${i}]`);
      assert.equal(S[i], acc, `sum[${i}]`);
    }
  });
});
