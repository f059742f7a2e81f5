// Real CUDA kernels (cuda/kernels.cu, compiled with nvcc -ptx at test time) run on the emulator and checked
// against CPU references computed here.

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CUresult } from '../../../gpu-runtime/server/src/backend';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/kernels.cu');

describe('emulator: CUDA kernels from nvcc PTX', function () {
  this.timeout(60_000);
  let ptx = '';
  before(function () {
    if (!hasNvcc()) this.skip();
    ptx = nvccPtx(fs.readFileSync(SRC, 'utf8'));
  });
  const session = (): { s: Session; m: ReturnType<Session['load']> } => {
    const s = new Session({ watchdogMs: 2000 });
    return { s, m: s.load(ptx) };
  };

  it('vector add', async () => {
    const { s, m } = session();
    const n = 1000;
    const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => 1 - i);
    const dc = s.alloc(n * 4);
    s.launch(m, 'vadd', Math.ceil(n / 128), 128, [s.upload(a), s.upload(b), dc, n]);
    const c = await s.download(dc, new Float32Array(n));
    for (let i = 0; i < n; i++) assert.equal(c[i], Math.fround(a[i] + b[i]), `c[${i}]`);
  });

  it('grid-stride saxpy', async () => {
    const { s, m } = session();
    const n = 5000;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const y = Float32Array.from({ length: n }, (_, i) => i % 7);
    const dy = s.upload(y);
    s.launch(m, 'saxpy', 3, 64, [n, { f32: 1.5 }, s.upload(x), dy]);
    const out = await s.download(dy, new Float32Array(n));
    // nvcc contracts a*x+y into fma.rn.f32: the exact product rounded once with the sum.
    for (let i = 0; i < n; i++) assert.equal(out[i], Math.fround(1.5 * x[i] + y[i]), `y[${i}]`);
  });

  it('tiled matrix multiply with shared memory and __syncthreads (and its speed)', async () => {
    const { s, m } = session();
    const n = 64;
    const A = Float32Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) - 6);
    const B = Float32Array.from({ length: n * n }, (_, i) => ((i * 5) % 11) - 5);
    const dC = s.alloc(n * n * 4);
    const dA = s.upload(A), dB = s.upload(B);
    s.launch(m, 'matmul', [n / 16, n / 16, 1], [16, 16, 1], [dA, dB, dC, n]);
    const C = await s.download(dC, new Float32Array(n * n));
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += A[r * n + k] * B[k * n + c];
      assert.equal(C[r * n + c], acc, `C[${r}][${c}]`);
    }
    // Speed: thread-instructions of the inner loop counted from the PTX (per tile: loads, 2 barriers, 16 FMAs
    // with their shared loads); reported, not asserted, since CI machines vary.
    const n2 = 128;
    const dA2 = s.alloc(n2 * n2 * 4), dB2 = s.alloc(n2 * n2 * 4), dC2 = s.alloc(n2 * n2 * 4);
    s.launch(m, 'matmul', [n2 / 16, n2 / 16, 1], [16, 16, 1], [dA2, dB2, dC2, n2]); // warm-up: V8 optimises K
    // CPU time of this process, not wall time: CI machines here run many jobs at once.
    const c0 = process.cpuUsage();
    const reps = 3;
    for (let r = 0; r < reps; r++) s.launch(m, 'matmul', [n2 / 16, n2 / 16, 1], [16, 16, 1], [dA2, dB2, dC2, n2]);
    const c1 = process.cpuUsage(c0);
    const ms = (c1.user + c1.system) / 1000 / reps;
    const bodyInstrs = countLoopInstrs(ptx, 'matmul');
    const threadInstrs = n2 * n2 * (n2 / 16) * bodyInstrs;
    console.log(`      matmul 128x128: ${ms.toFixed(1)} ms CPU/launch, ~${(threadInstrs / ms / 1e6).toFixed(2)} G thread-instructions/s (${bodyInstrs} instrs/tile-step)`);
  });

  it('shared-memory histogram with atomics', async () => {
    const { s, m } = session();
    const n = 10000;
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24);
    const bins = s.alloc(256 * 4);
    s.launch(m, 'histogram', 4, 128, [s.upload(data), n, bins]);
    const got = await s.download(bins, new Uint32Array(256));
    const ref = new Uint32Array(256);
    for (const d of data) ref[d]++;
    assert.deepEqual(got, ref);
  });

  it('global atomics: 32/64-bit integer, float and double', async () => {
    const { s, m } = session();
    const n = 100;
    const u64 = s.upload(new BigUint64Array([0n, 0n]));
    const f32 = s.upload(new Float32Array([0]));
    const f64 = s.upload(new Float64Array([1]));
    const i32 = s.upload(new Int32Array([-1000, 1000, 0, 0]));
    const u32 = s.upload(new Uint32Array([0, 0, 0, 0xffffffff, 0]));
    s.launch(m, 'atomics', 2, 64, [u64, f32, f64, i32, u32, n]);
    const U64 = await s.download(u64, new BigUint64Array(2));
    let sum = 0n;
    for (let i = 0; i < n; i++) sum += BigInt(i) * 0x100000001n;
    assert.equal(U64[0], sum);
    assert.equal(U64[1], 99n << 40n);
    assert.equal((await s.download(f32, new Float32Array(1)))[0], 50);
    assert.equal((await s.download(f64, new Float64Array(1)))[0], 26);
    const I = await s.download(i32, new Int32Array(4));
    assert.deepEqual([I[0], I[1], I[2]], [99 * 7 - 100, -100, 42]);
    // CAS chain: thread i turns i into i+1, threads run in order, so the value climbs to n.
    assert.equal(I[3], n);
    const U = await s.download(u32, new Uint32Array(5));
    let inc = 0, dec = 0, xor = 0;
    for (let i = 0; i < n; i++) { inc = inc >= 9 ? 0 : inc + 1; dec = dec === 0 || dec > 5 ? 5 : dec - 1; xor ^= i; }
    assert.deepEqual([U[0], U[1], U[2], U[3], U[4]], [inc, dec, 0xffffffff, 0, xor]);
  });

  it('warp-shuffle reduction across warps', async () => {
    const { s, m } = session();
    const n = 1000;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 17) - 8);
    const out = s.alloc(8 * 4);
    s.launch(m, 'reduce', 4, 256, [s.upload(x), out, n]);
    const got = await s.download(out, new Float32Array(4));
    for (let b = 0; b < 4; b++) {
      let acc = 0;
      for (let i = b * 256; i < Math.min(n, (b + 1) * 256); i++) acc += x[i];
      assert.equal(got[b], acc, `block ${b}`);
    }
  });

  it('shfl up/down/xor/idx and sub-warp widths', async () => {
    const { s, m } = session();
    const v = Int32Array.from({ length: 64 }, (_, i) => i * 11 + 3);
    const outs = [0, 1, 2, 3, 4].map(() => s.alloc(64 * 4));
    s.launch(m, 'shuffles', 1, 64, [s.upload(v), ...outs]);
    const [up, down, bfly, idx, sub] = await Promise.all(outs.map((o) => s.download(o, new Int32Array(64))));
    for (let t = 0; t < 64; t++) {
      const w = t & ~31, l = t & 31;
      assert.equal(up[t], l >= 3 ? v[t - 3] : v[t], `up ${t}`);
      assert.equal(down[t], l + 5 < 32 ? v[t + 5] : v[t], `down ${t}`);
      assert.equal(bfly[t], v[w + (l ^ 6)], `xor ${t}`);
      assert.equal(idx[t], v[w + ((t * 7) & 31)], `idx ${t}`);
      assert.equal(sub[t], (l & 7) + 2 < 8 ? v[t + 2] : v[t], `width-8 down ${t}`);
    }
  });

  it('vote all/any/ballot and activemask in divergent code', async () => {
    const { s, m } = session();
    const v = Int32Array.from({ length: 64 }, (_, i) => (i < 32 ? 1 : i === 40 ? 1 : 0));
    const outs = [0, 1, 2, 3].map(() => s.alloc(64 * 4));
    s.launch(m, 'votes', 1, 64, [s.upload(v), ...outs]);
    const [ballot, all, any, active] = await Promise.all(outs.map((o) => s.download(o, new Uint32Array(64))));
    for (let t = 0; t < 64; t++) {
      assert.equal(ballot[t], t < 32 ? 0xffffffff : 1 << 8, `ballot ${t}`);
      assert.equal(all[t], t < 32 ? 1 : 0, `all ${t}`);
      assert.equal(any[t], 1, `any ${t}`);
      if (t % 3 === 0) assert.equal(active[t], lanes3(t), `activemask ${t}`);
    }
  });

  it('64-bit integer hash: mul.wide, mul.hi, 64-bit shifts, brev, popc, clz, prmt', async () => {
    const { s, m } = session();
    const n = 64;
    const input = BigUint64Array.from({ length: n }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn);
    const out = s.alloc(n * 8), hi = s.alloc(n * 4);
    s.launch(m, 'hash64', 2, 32, [s.upload(input), out, hi, n]);
    const got = await s.download(out, new BigUint64Array(n));
    const gotHi = await s.download(hi, new Uint32Array(n));
    const M = (x: bigint): bigint => x & 0xffffffffffffffffn;
    for (let i = 0; i < n; i++) {
      let x = input[i];
      x ^= x >> 33n; x = M(x * 0xff51afd7ed558ccdn); x ^= x >> 33n; x = M(x * 0xc4ceb9fe1a85ec53n); x ^= x >> 33n;
      const w = BigInt(i) * 0xdeadbeefn;
      const mulhi = (x * 0x9e3779b97f4a7c15n) >> 64n;
      const brev = BigInt('0b' + x.toString(2).padStart(64, '0').split('').reverse().join(''));
      const popc = BigInt(x.toString(2).split('').filter((c) => c === '1').length);
      const clz = BigInt(64 - (x | 1n).toString(2).length);
      assert.equal(got[i], M(x + w + mulhi + brev + popc + clz), `out[${i}]`);
      const xl = Number(x & 0xffffffffn);
      const umulhi = Number((BigInt(xl) * 0x9e3779b9n) >> 32n);
      const brev32 = parseInt(i.toString(2).padStart(32, '0').split('').reverse().join(''), 2);
      const ffs = i === 0 ? 0 : 32 - Math.clz32(i & -i);
      const bytes = [xl & 255, (xl >>> 8) & 255, (xl >>> 16) & 255, xl >>> 24, i & 255, (i >>> 8) & 255, (i >>> 16) & 255, i >>> 24];
      const perm = (bytes[0] | (bytes[4] << 8) | (bytes[1] << 16) | (bytes[5] << 24)) >>> 0;
      assert.equal(gotHi[i], (umulhi ^ brev32 ^ ffs ^ perm) >>> 0, `hi[${i}]`);
    }
  });

  it('double arithmetic, conversions and 64-bit division', async () => {
    const { s, m } = session();
    const n = 40;
    const x = Float64Array.from({ length: n }, (_, i) => (i - 20) * 1.37 + 0.001);
    const out = s.alloc(n * 8), li = s.alloc(n * 8);
    s.launch(m, 'dmath', 1, 64, [s.upload(x), out, li, n]);
    const got = await s.download(out, new Float64Array(n));
    const gotLi = await s.download(li, new BigInt64Array(n));
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const ref = v * 3.0 + 1.0 / (v + 2.0) - Math.sqrt(Math.abs(v)) + (v * v - 1.0) + Math.trunc(v * 1e6) / 7.0;
      assert.ok(Math.abs(got[i] - ref) <= 1e-12 * Math.max(1, Math.abs(ref)), `out[${i}] ${got[i]} vs ${ref}`);
      const l = BigInt(Math.trunc(v * 1e12)) / 3n - (BigInt(i) * 1000000007n) % 97n;
      assert.equal(gotLi[i], l, `li[${i}]`);
    }
  });

  it('recursive device function, local arrays and approximate float math', async () => {
    const { s, m } = session();
    const n = 32;
    const fin = Float32Array.from({ length: n }, (_, i) => (i - 16) * 0.37);
    const out = s.alloc(n * 4), fout = s.alloc(n * 4);
    s.launch(m, 'misc', 1, n, [out, s.upload(fin), fout, n]);
    const got = await s.download(out, new Int32Array(n));
    const fib = (k: number): number => (k < 2 ? k : fib(k - 1) + fib(k - 2));
    for (let i = 0; i < n; i++) assert.equal(got[i], fib(i % 12) + ((i * 5) & 15) * i, `out[${i}]`);
    const fg = await s.download(fout, new Float32Array(n));
    const rne = (v: number): number => { const r = Math.round(v); return r - v === 0.5 && r % 2 ? r - 1 : r; };
    for (let i = 0; i < n; i++) {
      const f = fin[i];
      const ref = f / 3 + 1 / Math.sqrt(Math.abs(f) + 1) + Math.exp(f * 0.1) + Math.log(Math.abs(f) + 1) + Math.sin(f) + Math.cos(f)
        + rne(Math.fround(f * 2.5)) + Math.floor(f) + Math.ceil(Math.abs(f)) + Math.min(f, 1) + Math.max(f, -1);
      assert.ok(Math.abs(fg[i] - ref) < 1e-4 * Math.max(1, Math.abs(ref)), `fout[${i}] ${fg[i]} vs ${ref}`);
    }
  });

  it('printf through vprintf, formatted on the host', () => {
    const { s, m } = session();
    s.launch(m, 'hello', 1, 4, [7, { f64: 3.14159 }]);
    assert.equal(s.printed, 'thread 0 of 7:  3.14 str A ff -5\nthread 1 of 7:  3.14 str B ff -5\n');
  });

  it('an out-of-bounds store becomes the sticky CUDA_ERROR_ILLEGAL_ADDRESS', async () => {
    const { s, m } = session();
    const p = s.alloc(1024);
    s.launch(m, 'oob', 1, 1, [p, 255]);
    assert.equal(s.ctx.stickyError, 0);
    s.launch(m, 'oob', 1, 1, [p, 1 << 20]);
    assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    await assert.rejects(s.ctx.synchronize(null), (e: { code: number }) => e.code === CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    assert.throws(() => s.alloc(256), (e: { code: number }) => e.code === CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
  });

  it('a misaligned store is CUDA_ERROR_MISALIGNED_ADDRESS; a null pointer is ILLEGAL_ADDRESS', () => {
    const a = session();
    const p = a.s.alloc(1024);
    a.s.launch(a.m, 'oob', 1, 1, [p + 2, 0]);
    assert.equal(a.s.ctx.stickyError, CUresult.CUDA_ERROR_MISALIGNED_ADDRESS);
    const b = session();
    b.s.launch(b.m, 'oob', 1, 1, [0, 0]);
    assert.equal(b.s.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
  });

  it('device assert -> CUDA_ERROR_ASSERT with the message; a spinning kernel hits the watchdog', () => {
    const { s, m } = session();
    s.launch(m, 'checker', 1, 1, [1]);
    assert.equal(s.ctx.stickyError, 0);
    s.launch(m, 'checker', 1, 1, [0]);
    assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_ASSERT);
    assert.match(s.printed, /\.cu:\d+: void checker\(int\): block: \[0,0,0\], thread: \[0,0,0\] Assertion `v > 0` failed/);
    const t = new Session({ watchdogMs: 200 });
    const tm = t.load(ptx);
    const flag = t.alloc(4);
    t.launch(tm, 'spin', 1, 1, [flag]);
    assert.equal(t.ctx.stickyError, CUresult.CUDA_ERROR_LAUNCH_TIMEOUT);
  });

  it('generic addressing into shared, local and global; float4 vectors; __syncthreads_count/and/or; match.any', async () => {
    const { s, m } = session();
    const io = Float32Array.from({ length: 64 * 4 }, (_, i) => (i >> 2) + (i & 3) * 0.25);
    const dio = s.upload(io);
    const counts = s.alloc((3 + 64) * 4);
    s.launch(m, 'generic', 1, 64, [dio, counts]);
    const got = await s.download(dio, new Float32Array(64 * 4));
    const x = (t: number, k: number): number => io[t * 4 + k];
    for (let t = 0; t < 64; t++) {
      const loc = [1, 2];
      loc[t & 1] += x(t, 2);
      assert.deepEqual(Array.from(got.subarray(t * 4, t * 4 + 4)),
        [x(t, 0) + x(t, 1), Math.fround(loc[t & 1]), x(63 - t, 0) + x(63 - t, 1), x(t, 3) + 1], `io[${t}]`);
    }
    const c = await s.download(counts, new Int32Array(3 + 64));
    assert.deepEqual([c[0], c[1], c[2]], [53, 1, 1]);
    for (let t = 0; t < 64; t++) assert.equal(c[3 + t] >>> 0, (0xff << (((t & 31) >> 3) * 8)) >>> 0, `match ${t}`);
  });

  it('trap ends the launch with the sticky CUDA_ERROR_LAUNCH_FAILED', () => {
    const { s, m } = session();
    s.launch(m, 'trapper', 1, 1, [0]);
    assert.equal(s.ctx.stickyError, 0);
    s.launch(m, 'trapper', 1, 1, [1]);
    assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_LAUNCH_FAILED);
  });

  it('redux.sync warp reductions (sm_80)', async () => {
    const s = new Session({ type: 'A100-40GB' });
    const m = s.load(nvccPtx(fs.readFileSync(SRC.replace('kernels.cu', 'redux.cu'), 'utf8'), ['-arch=sm_80']));
    const v = Int32Array.from({ length: 64 }, (_, i) => ((i * 2654435761) | 0) >> 7);
    const out = s.alloc(64 * 16);
    s.launch(m, 'redux', 1, 64, [s.upload(v), out]);
    const got = await s.download(out, new Int32Array(64 * 4));
    for (let w = 0; w < 2; w++) {
      const lanes = Array.from(v.subarray(w * 32, w * 32 + 32));
      const add = lanes.reduce((a, b) => (a + b) | 0, 0);
      const min = Math.min(...lanes);
      const max = lanes.reduce((a, b) => ((a >>> 0) > (b >>> 0) ? a : b));
      const xor = lanes.reduce((a, b) => a ^ b, 0);
      for (let l = 0; l < 32; l++) assert.deepEqual(Array.from(got.subarray((w * 32 + l) * 4, (w * 32 + l) * 4 + 4)), [add, min, max, xor]);
    }
  });

  it('half-precision add/mul/fma/compare (sm_80)', async () => {
    const s = new Session({ type: 'A100-40GB' });
    const m = s.load(nvccPtx(fs.readFileSync(SRC.replace('kernels.cu', 'redux.cu'), 'utf8'), ['-arch=sm_80']));
    const n = 32;
    const av = Array.from({ length: n }, (_, i) => f16round((i - 16) * 0.37));
    const bv = Array.from({ length: n }, (_, i) => f16round(1.5 - i * 0.11));
    const bits = (v: number[]): Uint16Array => Uint16Array.from(v.map(f16bits));
    const dc = s.alloc(n * 2), df = s.alloc(n * 4);
    s.launch(m, 'halves', 1, n, [s.upload(bits(av)), s.upload(bits(bv)), dc, df, n]);
    const f = await s.download(df, new Float32Array(n));
    for (let i = 0; i < n; i++) {
      let x = f16round(av[i] + bv[i]);
      x = f16round(x * bv[i]);
      x = f16round(x * av[i] + bv[i]);
      assert.equal(f[i], x + (av[i] < bv[i] ? 1000 : 0), `f[${i}]`);
    }
  });

  it('libdevice double/float math slow paths and cooperative groups', async () => {
    const s = new Session();
    const m = s.load(nvccPtx(fs.readFileSync(SRC.replace('kernels.cu', 'libm.cu'), 'utf8')));
    const n = 64;
    const x = Float64Array.from({ length: n }, (_, i) => (i - 32) * 0.731 + 0.01);
    const dy = s.alloc(n * 8), dz = s.upload(new Float32Array(n));
    s.launch(m, 'mathk', 1, 64, [s.upload(x), dy, dz, n]);
    const y = await s.download(dy, new Float64Array(n));
    const z = await s.download(dz, new Float32Array(n));
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const ry = Math.sin(v) + Math.cos(v * 1e6) + Math.exp(v) + Math.log(Math.abs(v) + 1) + Math.pow(Math.abs(v), 0.3) + Math.tanh(v)
        + Math.atan2(v, 1.5) + Math.cbrt(v) + (v % 1.3);
      assert.ok(Math.abs(y[i] - ry) <= 1e-12 * Math.max(1, Math.abs(ry)), `y[${i}] ${y[i]} vs ${ry}`);
      const f = Math.fround(v);
      const rz = Math.sin(Math.fround(f * 1000)) + Math.exp(f) + Math.log(Math.abs(f) + 1) + Math.pow(Math.abs(f), 0.3) + Math.tanh(f)
        + Math.atan2(f, 1.5) + Math.sqrt(Math.abs(f));
      assert.ok(Math.abs(z[i] - rz) <= 2e-6 * Math.max(1, Math.abs(rz)), `z[${i}] ${z[i]} vs ${rz}`);
    }
    const inp = Int32Array.from({ length: 128 }, (_, i) => i * 3 + 1);
    const out = s.alloc(192 * 4);
    s.launch(m, 'cgk', 1, 128, [s.upload(inp), out]);
    const o = await s.download(out, new Int32Array(192));
    const total = inp.reduce((a, b) => a + b, 0);
    for (let w = 0; w < 4; w++) assert.equal(o[w], inp.slice(w * 32, w * 32 + 32).reduce((a, b) => a + b, 0) + total, `tile ${w}`);
    // Odd values sit at even ranks: 16 lanes per warp form the coalesced group, ranked by lane order.
    for (let t = 0; t < 128; t++) assert.equal(o[64 + t], t % 2 === 0 ? 1600 + ((t & 31) >> 1) : 0, `coalesced ${t}`);
  });
});

/** Round to the nearest IEEE half (ties to even), independent of the emulator's own conversion. */
function f16round(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = 2 ** (e - 10);
  const q = x / ulp;
  let r = Math.round(q);
  // Math.round breaks ties upwards; ties go to the even neighbour instead.
  if (q - Math.floor(q) === 0.5 && r % 2 !== 0) r -= 1;
  return r * ulp;
}
function f16bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

function lanes3(t: number): number {
  let m = 0;
  const w = t & ~31;
  for (let l = 0; l < 32; l++) if ((w + l) % 3 === 0) m |= 1 << l;
  return m >>> 0;
}

/** Instructions in the body of the kernel's outermost loop (between its first label and the back-branch). */
function countLoopInstrs(ptx: string, kernel: string): number {
  const start = ptx.indexOf(`.entry ${kernel}(`);
  const body = ptx.slice(start, ptx.indexOf('\n}', start));
  const lines = body.split('\n').map((l) => l.trim());
  const first = lines.findIndex((l) => /^\$L__BB\d+_\d+:$/.test(l));
  const label = lines[first].slice(0, -1);
  const back = lines.findIndex((l, i) => i > first && l.includes(`bra`) && l.includes(label));
  return lines.slice(first + 1, back + 1).filter((l) => l.endsWith(';') && !l.startsWith('.') && !l.startsWith('//')).length;
}
