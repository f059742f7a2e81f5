// Tensor-core ops (cuda/mma.cu, nvcc -arch=sm_80): wmma with f16/bf16/s8/tf32/f64 inputs and f32/f16/s32/f64
// accumulators in global and shared memory, and mma.sync m16n8k16 / m16n8k8 (also fed by ldmatrix) with the PTX
// ISA fragment layouts, against plain CPU matrix products. Float inputs are multiples of 1/4 in [-2, 2] (tf32 ones also carry bits the
// conversion rounds away), so every product and sum is exact in f32 and f16.

import { strict as assert } from 'node:assert';
import * as fs from 'fs';
import * as path from 'path';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/mma.cu');

const val = (i: number, salt: number): number => (((i * 7 + salt * 13) % 17) - 8) / 4;
function f16(v: number): number {
  if (v === 0) return 0;
  const s = v < 0 ? 0x8000 : 0, a = Math.abs(v), e = Math.floor(Math.log2(a));
  return s | ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
}
function fromF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}
function bf16(v: number): number { const f = new Float32Array([v]); return new Uint32Array(f.buffer)[0] >>> 16; }

describe('emulator: tensor-core wmma and mma.sync', function () {
  before(function () { if (!hasNvcc()) this.skip(); });

  it('computes wmma and mma.sync products like the CPU', async function () {
    this.timeout(300000);
    const s = new Session({ type: 'A100-40GB' });
    const m = s.load(nvccPtx(fs.readFileSync(SRC, 'utf8'), ['-arch=sm_80']));

    // wmma f16: C = 2 * A(32x48) * B, B given column-major (B[n][k]).
    const M = 32, N = 32, K = 48;
    const A = Array.from({ length: M * K }, (_, i) => val(i, 1)), Bt = Array.from({ length: N * K }, (_, i) => val(i, 2));
    const aB = s.upload(new Uint16Array(A.map(f16))), bB = s.upload(new Uint16Array(Bt.map(f16)));
    const cB = s.alloc(M * N * 4);
    s.launch(m, 'wmma_f16', [N / 16, M / 16, 1], 32, [aB, bB, cB, N, K]);
    const c = await s.download(cB, new Float32Array(M * N));
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += A[i * K + k] * Bt[j * K + k];
      assert.equal(c[i * N + j], 2 * acc, `wmma_f16 C[${i}][${j}]`);
    }

    // wmma bf16 through shared memory: c (col-major) += A (col-major) * B (row-major).
    const A2 = Array.from({ length: 256 }, (_, i) => val(i, 3)), B2 = Array.from({ length: 256 }, (_, i) => val(i, 4));
    const C2 = Array.from({ length: 256 }, (_, i) => val(i, 5) * 8);
    const a2 = s.upload(new Uint16Array(A2.map(bf16))), b2 = s.upload(new Uint16Array(B2.map(bf16))), c2 = s.upload(new Float32Array(C2));
    s.launch(m, 'wmma_bf16', 1, 32, [a2, b2, c2]);
    const r2 = await s.download(c2, new Float32Array(256));
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      let acc = C2[j * 16 + i];
      for (let k = 0; k < 16; k++) acc += A2[k * 16 + i] * B2[k * 16 + j];
      assert.equal(r2[j * 16 + i], acc, `wmma_bf16 C[${i}][${j}]`);
    }

    // wmma with f16 accumulators, all row-major.
    const c3 = s.upload(new Uint16Array(C2.map(f16)));
    const a3 = s.upload(new Uint16Array(A2.map(f16))), b3 = s.upload(new Uint16Array(B2.map(f16)));
    s.launch(m, 'wmma_h', 1, 32, [a3, b3, c3]);
    const r3 = await s.download(c3, new Uint16Array(256));
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      let acc = C2[i * 16 + j];
      for (let k = 0; k < 16; k++) acc += A2[i * 16 + k] * B2[k * 16 + j];
      assert.equal(fromF16(r3[i * 16 + j]), acc, `wmma_h C[${i}][${j}]`);
    }

    // mma.sync m16n8k16 (f16) and m16n8k8 (bf16): D = A * B + C, row-major 16xK, Kx8, 16x8.
    for (const [kern, Kk, conv] of [['mma_k16', 16, f16], ['mma_k8', 8, bf16]] as const) {
      const A4 = Array.from({ length: 16 * Kk }, (_, i) => val(i, 6)), B4 = Array.from({ length: Kk * 8 }, (_, i) => val(i, 7));
      const C4 = Array.from({ length: 128 }, (_, i) => val(i, 8));
      const dB = s.alloc(128 * 4);
      s.launch(m, kern, 1, 32, [s.upload(new Uint16Array(A4.map(conv))), s.upload(new Uint16Array(B4.map(conv))), s.upload(new Float32Array(C4)), dB]);
      const d = await s.download(dB, new Float32Array(128));
      for (let i = 0; i < 16; i++) for (let j = 0; j < 8; j++) {
        let acc = C4[i * 8 + j];
        for (let k = 0; k < Kk; k++) acc += A4[i * Kk + k] * B4[k * 8 + j];
        assert.equal(d[i * 8 + j], acc, `${kern} D[${i}][${j}]`);
      }
    }

    // ldmatrix (.x4, .x2, .x2.trans) feeding mma.sync m16n8k16.
    {
      const A8 = Array.from({ length: 256 }, (_, i) => val(i, 14)), B8 = Array.from({ length: 128 }, (_, i) => val(i, 15));
      const d1 = s.alloc(512), d2 = s.alloc(512);
      s.launch(m, 'mma_ldmatrix', 1, 32, [s.upload(new Uint16Array(A8.map(f16))), s.upload(new Uint16Array(B8.map(f16))), d1, d2]);
      const r1 = await s.download(d1, new Float32Array(128)), r2 = await s.download(d2, new Float32Array(128));
      for (let i = 0; i < 16; i++) for (let j = 0; j < 8; j++) {
        let acc = 0;
        for (let k = 0; k < 16; k++) acc += A8[i * 16 + k] * B8[k * 8 + j];
        assert.equal(r1[i * 8 + j], acc, `ldmatrix D1[${i}][${j}]`);
        assert.equal(r2[i * 8 + j], acc, `ldmatrix.trans D2[${i}][${j}]`);
      }
    }

    // s8 -> s32: c += A (row) * B (col), full signed range.
    const A5 = Array.from({ length: 256 }, (_, i) => ((i * 97 + 13) % 256) - 128), B5 = Array.from({ length: 256 }, (_, i) => ((i * 61 + 7) % 256) - 128);
    const C5 = Array.from({ length: 256 }, (_, i) => i * 1000 - 100000);
    const c5 = s.upload(new Int32Array(C5));
    s.launch(m, 'wmma_s8', 1, 32, [s.upload(new Int8Array(A5)), s.upload(new Int8Array(B5)), c5]);
    const r5 = await s.download(c5, new Int32Array(256));
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      let acc = C5[i * 16 + j];
      for (let k = 0; k < 16; k++) acc += A5[i * 16 + k] * B5[j * 16 + k];
      assert.equal(r5[i * 16 + j], acc, `wmma_s8 C[${i}][${j}]`);
    }

    // tf32: inputs rounded to 10 mantissa bits, ties away (cvt.rna.tf32.f32), then exact products.
    const tf = (v: number): number => {
      const b = new Uint32Array(new Float32Array([v]).buffer)[0];
      return new Float32Array(new Uint32Array([((b + 0x1000) & ~0x1fff) >>> 0]).buffer)[0];
    };
    const A6 = Array.from({ length: 128 }, (_, i) => val(i, 9) * (1 + (i % 5) * 2 ** -11)), B6 = Array.from({ length: 128 }, (_, i) => val(i, 10));
    const c6 = s.alloc(256 * 4);
    s.launch(m, 'wmma_tf32', 1, 32, [s.upload(new Float32Array(A6)), s.upload(new Float32Array(B6)), c6]);
    const r6 = await s.download(c6, new Float32Array(256));
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      let acc = 0;
      for (let k = 0; k < 8; k++) acc += tf(A6[i * 8 + k]) * tf(B6[k * 16 + j]);
      assert.equal(r6[i * 16 + j], Math.fround(acc), `wmma_tf32 C[${i}][${j}]`);
    }

    // f64: c += A (8x4 row) * B (4x8 col).
    const A7 = Array.from({ length: 32 }, (_, i) => val(i, 11) / 3), B7 = Array.from({ length: 32 }, (_, i) => val(i, 12) * 3);
    const C7 = Array.from({ length: 64 }, (_, i) => val(i, 13));
    const c7 = s.upload(new Float64Array(C7));
    s.launch(m, 'wmma_f64', 1, 32, [s.upload(new Float64Array(A7)), s.upload(new Float64Array(B7)), c7]);
    const r7 = await s.download(c7, new Float64Array(64));
    for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) {
      let acc = C7[i * 8 + j];
      for (let k = 0; k < 4; k++) acc += A7[i * 4 + k] * B7[j * 4 + k];
      assert.ok(Math.abs(r7[i * 8 + j] - acc) <= 1e-14 * (1 + Math.abs(acc)), `wmma_f64 C[${i}][${j}]: ${r7[i * 8 + j]} vs ${acc}`);
    }
    assert.equal(s.ctx.stickyError, 0);
  });
});
