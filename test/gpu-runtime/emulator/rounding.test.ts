// Float rounding exactness: every f32/f64 add/sub/mul/div/sqrt/rcp/fma in .rn/.rz/.rm/.rp, their .ftz forms and
// the rounding conversions from f64/s64/u64, run in the emulator over edge-case inputs (ties, cancellation,
// subnormals, overflow, signed zeros) and compared bit for bit with the host's C library under fesetround
// (gcc, compiled at test time; glibc's fma/fmaf/sqrt honour the rounding mode).

import { strict as assert } from 'node:assert';
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Session } from './harness';

const C_SRC = String.raw`
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#pragma STDC FENV_ACCESS ON
static const int MODES[4] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };
static float fz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
static void rd(void *p, size_t n) { if (fread(p, 1, n, stdin) != n) exit(2); }
int main(void) {
  int32_t hdr[2]; rd(hdr, 8);
  int jobs = hdr[0], n = hdr[1];
  double *d = malloc(24 * n); float *f = malloc(12 * n); int64_t *iv = malloc(8 * n);
  rd(d, 24 * n); rd(f, 12 * n); rd(iv, 8 * n);
  uint64_t *out = malloc(8 * n);
  for (int j = 0; j < jobs; j++) {
    int32_t job[2]; rd(job, 8);
    int op = job[0] & 15, ty = job[0] >> 4;
    fesetround(MODES[job[1]]);
    for (int i = 0; i < n; i++) {
      volatile double a = d[3 * i], b = d[3 * i + 1], c = d[3 * i + 2], r = 0;
      volatile float x = f[3 * i], y = f[3 * i + 1], z = f[3 * i + 2], s = 0;
      if (ty == 2) { x = fz(x); y = fz(y); z = fz(z); }
      out[i] = 0;
      if (ty == 0) {
        switch (op) {
          case 0: r = a + b; break; case 1: r = a - b; break; case 2: r = a * b; break; case 3: r = a / b; break;
          case 4: r = sqrt(a); break; case 5: r = fma(a, b, c); break; case 6: r = 1.0 / a; break;
          case 10: s = (float)a; break; case 11: s = (float)iv[i]; break; case 12: s = (float)(uint64_t)iv[i]; break;
          case 13: r = (double)iv[i]; break; case 14: r = (double)(uint64_t)iv[i]; break;
        }
        if (op >= 10 && op <= 12) { double t = s; memcpy(&out[i], &t, 8); } else memcpy(&out[i], (const void *)&r, 8);
      } else {
        switch (op) {
          case 0: s = x + y; break; case 1: s = x - y; break; case 2: s = x * y; break; case 3: s = x / y; break;
          case 4: s = sqrtf(x); break; case 5: s = fmaf(x, y, z); break; case 6: s = 1.0f / x; break;
        }
        if (ty == 2) s = fz(s);
        double t = s; memcpy(&out[i], &t, 8);
      }
    }
    fesetround(FE_TONEAREST);
    fwrite(out, 8, n, stdout);
  }
  return 0;
}
`;

function hostBinary(): string | null {
  const dir = path.join(os.tmpdir(), 'rgpu-emu-ptx');
  fs.mkdirSync(dir, { recursive: true });
  const key = createHash('sha256').update(C_SRC).digest('hex').slice(0, 16);
  const exe = path.join(dir, `round-${key}`);
  if (fs.existsSync(exe)) return exe;
  try {
    fs.writeFileSync(exe + '.c', C_SRC);
    execFileSync('gcc', ['-O0', '-frounding-math', '-o', exe + '.tmp', exe + '.c', '-lm'], { stdio: 'pipe' });
    fs.renameSync(exe + '.tmp', exe);
    return exe;
  } catch { return null; }
}

const OPS = ['add', 'sub', 'mul', 'div', 'sqrt', 'fma', 'rcp'];
const MODES = ['rn', 'rz', 'rm', 'rp'];
const CVT: Record<number, string> = { 10: 'f32.f64', 11: 'f32.s64', 12: 'f32.u64', 13: 'f64.s64', 14: 'f64.u64' };
interface Job { op: number; ty: number; mode: number; ptx: string }

function jobs(): Job[] {
  const out: Job[] = [];
  for (let ty = 0; ty < 3; ty++) {
    for (let op = 0; op < OPS.length; op++) {
      for (let mode = 0; mode < 4; mode++) {
        const t = ty === 0 ? 'f64' : 'f32';
        const R = ty === 0 ? ['%fd1', '%fd2', '%fd3', '%fd4'] : ['%f1', '%f2', '%f3', '%f4'];
        const args = op === 4 || op === 6 ? `${R[3]}, ${R[0]}` : op === 5 ? `${R[3]}, ${R[0]}, ${R[1]}, ${R[2]}` : `${R[3]}, ${R[0]}, ${R[1]}`;
        out.push({ op, ty, mode, ptx: `${OPS[op]}.${MODES[mode]}${ty === 2 ? '.ftz' : ''}.${t} ${args};` });
      }
    }
  }
  for (const op of [10, 11, 12, 13, 14]) {
    for (let mode = 0; mode < 4; mode++) {
      const [dt, st] = CVT[op].split('.');
      const dst = dt === 'f32' ? '%f4' : '%fd4';
      out.push({ op, ty: 0, mode, ptx: `cvt.${MODES[mode]}.${dt}.${st} ${dst}, ${st === 'f64' ? '%fd1' : '%rd5'};` });
    }
  }
  return out;
}

function kernel(i: number, j: Job): string {
  const toF64 = (j.ty > 0 && j.op < 10) || (j.op >= 10 && j.op <= 12);
  return `.visible .entry k${i}(.param .u64 k${i}_out, .param .u64 k${i}_d, .param .u64 k${i}_f, .param .u64 k${i}_i)
{
  .reg .pred %p<2>; .reg .b32 %r<8>; .reg .b64 %rd<12>; .reg .f32 %f<8>; .reg .f64 %fd<8>;
  mov.u32 %r1, %ctaid.x; mov.u32 %r2, %ntid.x; mov.u32 %r3, %tid.x; mad.lo.s32 %r4, %r1, %r2, %r3;
  cvt.u64.u32 %rd1, %r4;
  ld.param.u64 %rd2, [k${i}_d]; mad.lo.u64 %rd3, %rd1, 24, %rd2;
  ld.global.f64 %fd1, [%rd3]; ld.global.f64 %fd2, [%rd3+8]; ld.global.f64 %fd3, [%rd3+16];
  ld.param.u64 %rd2, [k${i}_f]; mad.lo.u64 %rd3, %rd1, 12, %rd2;
  ld.global.f32 %f1, [%rd3]; ld.global.f32 %f2, [%rd3+4]; ld.global.f32 %f3, [%rd3+8];
  ld.param.u64 %rd2, [k${i}_i]; mad.lo.u64 %rd3, %rd1, 8, %rd2; ld.global.u64 %rd5, [%rd3];
  ${j.ptx}
  ${toF64 ? 'cvt.f64.f32 %fd4, %f4;' : ''}
  ld.param.u64 %rd2, [k${i}_out]; mad.lo.u64 %rd3, %rd1, 8, %rd2; st.global.f64 [%rd3], %fd4;
  ret;
}`;
}

/** Deterministic edge-heavy inputs (xorshift). */
function inputs(n: number): { d: Float64Array; f: Float32Array; i: BigInt64Array } {
  let s = 0x2545f491;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296; };
  const rbits = (): number => Math.floor(rnd() * 2 ** 26) * 2 ** 26 + Math.floor(rnd() * 2 ** 26);
  const d = new Float64Array(3 * n), f = new Float32Array(3 * n), iv = new BigInt64Array(n);
  const sign = (): number => (rnd() < 0.5 ? -1 : 1);
  for (let k = 0; k < n; k++) {
    const kind = k % 8;
    let a: number, b: number, c: number;
    const m = (): number => 1 + rbits() / 2 ** 52;
    if (kind === 0) { a = sign() * m() * 2 ** Math.floor(rnd() * 200 - 100); b = sign() * m() * 2 ** Math.floor(rnd() * 200 - 100); c = sign() * m() * 2 ** Math.floor(rnd() * 200 - 100); }
    else if (kind === 1) { a = m(); b = m(); c = -(a * b); } // fma cancellation: exposes the product's error
    else if (kind === 2) { a = 1 + Math.floor(rnd() * 2 ** 26) * 2 ** -26; b = 1 + Math.floor(rnd() * 2 ** 26) * 2 ** -26; c = sign() * 2 ** -53 * Math.floor(rnd() * 4); } // near ties
    else if (kind === 3) { a = sign() * m() * 2 ** (-1022 - Math.floor(rnd() * 40)); b = sign() * m() * 2 ** Math.floor(rnd() * 60 - 30); c = sign() * m() * 2 ** -1070; } // subnormal f64
    else if (kind === 4) { a = sign() * m() * 2 ** (1000 + Math.floor(rnd() * 23)); b = m() * 2 ** Math.floor(rnd() * 30); c = -a; } // overflow
    else if (kind === 5) { a = sign() * Math.fround(m()) * 2 ** (-126 - Math.floor(rnd() * 20)); b = Math.fround(m()) * 2 ** Math.floor(rnd() * 6 - 3); c = sign() * 2 ** -140; } // subnormal f32
    else if (kind === 6) { const z = [0, -0, 1, -1, Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149), 3.4028234663852886e38]; a = z[k % 10]; b = z[(k >> 3) % 10]; c = z[(k >> 2) % 10]; }
    else { a = Math.fround(m()) * 2 ** Math.floor(rnd() * 60 - 30); b = Math.fround(m()) * 2 ** Math.floor(rnd() * 60 - 30); c = sign() * Math.fround(m()) * 2 ** Math.floor(rnd() * 60 - 30); }
    d[3 * k] = a; d[3 * k + 1] = b; d[3 * k + 2] = c;
    // f32 triples: the f64 values rounded, plus exact-product sums for fmaf midpoints.
    f[3 * k] = a; f[3 * k + 1] = b; f[3 * k + 2] = kind === 1 ? -Math.fround(Math.fround(a) * Math.fround(b)) : c;
    const big = BigInt(rbits()) * BigInt(1 + Math.floor(rnd() * 4096)) + BigInt(Math.floor(rnd() * 2048));
    iv[k] = BigInt.asIntN(64, k % 3 === 0 ? big : k % 3 === 1 ? -big : big << 11n);
  }
  return { d, f, i: iv };
}

describe('emulator: float rounding modes and .ftz against the host C library', function () {
  const exe = hostBinary();
  before(function () { if (!exe) this.skip(); });

  it('matches C bit for bit in rn/rz/rm/rp, fma, .ftz and 64-bit-int conversions', async () => {
    const n = 256;
    const js = jobs();
    const inp = inputs(n);
    const hdr = new Int32Array([js.length, n]);
    const jobBytes = new Int32Array(js.flatMap((j) => [j.op | (j.ty << 4), j.mode]));
    const stdin = Buffer.concat([hdr, inp.d, inp.f, inp.i, jobBytes].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
    const cOut = execFileSync(exe as string, { input: stdin, maxBuffer: 1 << 26 });
    const want = new Float64Array(cOut.buffer.slice(cOut.byteOffset, cOut.byteOffset + cOut.byteLength));

    const s = new Session();
    const m = s.load(`.version 8.0\n.target sm_80\n.address_size 64\n\n${js.map((j, i) => kernel(i, j)).join('\n\n')}\n`);
    const dBuf = s.upload(inp.d), fBuf = s.upload(inp.f), iBuf = s.upload(inp.i), out = s.alloc(8 * n);
    const failures: string[] = [];
    const got = new Float64Array(n);
    for (let k = 0; k < js.length; k++) {
      s.launch(m, `k${k}`, n / 64, 64, [out, dBuf, fBuf, iBuf]);
      await s.download(out, got);
      for (let i = 0; i < n; i++) {
        const w = want[k * n + i], g = got[i];
        if (Object.is(w, g) || (w !== w && g !== g)) continue;
        const j = js[k];
        const ins = j.op >= 10 ? `${inp.d[3 * i]} / ${inp.i[i]}` : j.ty === 0 ? `${inp.d[3 * i]}, ${inp.d[3 * i + 1]}, ${inp.d[3 * i + 2]}`
          : `${inp.f[3 * i]}, ${inp.f[3 * i + 1]}, ${inp.f[3 * i + 2]}`;
        failures.push(`${j.ptx} (${ins}): got ${g}, want ${w}`);
      }
    }
    assert.equal(s.ctx.stickyError, 0);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
  });
});
