// Table-driven per-instruction checks: each row is one PTX instruction, its inputs and the value the PTX ISA
// specifies; the rows become one hand-written PTX module with a one-thread kernel per row.

import { strict as assert } from 'node:assert';
import { Session } from './harness';

type C = 'u32' | 'u64' | 'f32' | 'f64' | 'pred';
type V = number | bigint;
interface Row { ins: string; src: C | C[]; dst: C; in: V[]; out: V }

const NaN32 = NaN;
const rows: Row[] = [
  { ins: 'add.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0x7fffffff, 1], out: 0x80000000 },
  { ins: 'add.sat.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0x7fffffff, 1], out: 0x7fffffff },
  { ins: 'sub.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0, 1], out: 0xffffffff },
  { ins: 'mul.lo.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0x10001, 0x10001], out: 0x20001 },
  { ins: 'mul.hi.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xffffffff, 0xffffffff], out: 0xfffffffe },
  { ins: 'mul.hi.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xffffffff, 5], out: 0xffffffff },
  { ins: 'mul.wide.u32 %D, %A, %B', src: 'u32', dst: 'u64', in: [0xffffffff, 0xffffffff], out: 0xfffffffe00000001n },
  { ins: 'mul.wide.s32 %D, %A, %B', src: 'u32', dst: 'u64', in: [0xfffffffd, 4], out: 0xfffffffffffffff4n },
  { ins: 'mad.lo.s32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [3, 4, 5], out: 17 },
  { ins: 'mad.wide.u32 %D, %A, %B, %C', src: ['u32', 'u32', 'u64'], dst: 'u64', in: [0xffffffff, 2, 0xffffffffffffffffn], out: 0x1fffffffdn },
  { ins: 'mul.hi.u64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xffffffffffffffffn, 0xffffffffffffffffn], out: 0xfffffffffffffffen },
  { ins: 'mul.lo.u64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0x100000001n, 0x100000001n], out: 0x200000001n },
  { ins: 'div.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xfffffff9, 2], out: 0xfffffffd },
  { ins: 'rem.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xfffffff9, 2], out: 0xffffffff },
  { ins: 'div.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xfffffffe, 2], out: 0x7fffffff },
  { ins: 'div.u64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xffffffffffffffffn, 3n], out: 0x5555555555555555n },
  { ins: 'rem.s64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xfffffffffffffff9n, 3n], out: 0xffffffffffffffffn },
  { ins: 'shl.b32 %D, %A, %B', src: 'u32', dst: 'u32', in: [1, 31], out: 0x80000000 },
  { ins: 'shl.b32 %D, %A, %B', src: 'u32', dst: 'u32', in: [1, 32], out: 0 },
  { ins: 'shr.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xfffffff8, 1], out: 0xfffffffc },
  { ins: 'shr.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xfffffff8, 40], out: 0xffffffff },
  { ins: 'shr.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0x80000000, 31], out: 1 },
  { ins: 'shl.b32 %D, %A, 33', src: 'u32', dst: 'u32', in: [1], out: 0 },
  { ins: 'shl.b32 %D, %A, 4', src: 'u32', dst: 'u32', in: [0x18000001], out: 0x80000010 },
  { ins: 'shr.s32 %D, %A, 40', src: 'u32', dst: 'u32', in: [0x80000000], out: 0xffffffff },
  { ins: 'shr.u32 %D, %A, 0x1f', src: 'u32', dst: 'u32', in: [0x80000000], out: 1 },
  { ins: 'shr.u32 %D, %A, 32', src: 'u32', dst: 'u32', in: [0x80000000], out: 0 },
  { ins: 'shl.b64 %D, %A, %B', src: ['u64', 'u32'], dst: 'u64', in: [1n, 63], out: 0x8000000000000000n },
  { ins: 'shr.u64 %D, %A, %B', src: ['u64', 'u32'], dst: 'u64', in: [0x8000000000000000n, 63], out: 1n },
  { ins: 'shr.s64 %D, %A, %B', src: ['u64', 'u32'], dst: 'u64', in: [0x8000000000000000n, 62], out: 0xfffffffffffffffen },
  { ins: 'and.b64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xff00ff00ff00ff00n, 0x0ff00ff00ff00ff0n], out: 0x0f000f000f000f00n },
  { ins: 'xor.b64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xffffffff00000000n, 0xffffffffffffffffn], out: 0xffffffffn },
  { ins: 'not.b64 %D, %A', src: 'u64', dst: 'u64', in: [0n], out: 0xffffffffffffffffn },
  { ins: 'popc.b32 %D, %A', src: 'u32', dst: 'u32', in: [0xffffffff], out: 32 },
  { ins: 'popc.b64 %D, %A', src: 'u64', dst: 'u32', in: [0xf0f0f0f0f0f0f0f0n], out: 32 },
  { ins: 'clz.b32 %D, %A', src: 'u32', dst: 'u32', in: [0], out: 32 },
  { ins: 'clz.b64 %D, %A', src: 'u64', dst: 'u32', in: [1n], out: 63 },
  { ins: 'brev.b32 %D, %A', src: 'u32', dst: 'u32', in: [1], out: 0x80000000 },
  { ins: 'brev.b64 %D, %A', src: 'u64', dst: 'u64', in: [3n], out: 0xc000000000000000n },
  { ins: 'bfind.u32 %D, %A', src: 'u32', dst: 'u32', in: [0x10000], out: 16 },
  { ins: 'bfind.u32 %D, %A', src: 'u32', dst: 'u32', in: [0], out: 0xffffffff },
  { ins: 'bfind.s32 %D, %A', src: 'u32', dst: 'u32', in: [0xfffff000], out: 11 },
  { ins: 'bfind.shiftamt.u32 %D, %A', src: 'u32', dst: 'u32', in: [0x10000], out: 15 },
  { ins: 'bfe.u32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0xabcd1234, 8, 8], out: 0x12 },
  { ins: 'bfe.s32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0xff00, 8, 8], out: 0xffffffff },
  { ins: 'bfe.u64 %D, %A, %B, %C', src: ['u64', 'u32', 'u32'], dst: 'u64', in: [0xabcdef0123456789n, 36, 16], out: 0xdef0n },
  { ins: 'bfi.b32 %D, %A, %B, %C, 8', src: 'u32', dst: 'u32', in: [0xff, 0xffff0000, 4], out: 0xffff0ff0 },
  { ins: 'prmt.b32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x33221100, 0x77665544, 0x5140], out: 0x55114400 },
  { ins: 'prmt.b32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x000080ff, 0, 0x8888], out: 0xffffffff },
  { ins: 'shf.l.wrap.b32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x80000001, 1, 4], out: 0x18 },
  { ins: 'shf.r.clamp.b32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x80000001, 1, 40], out: 1 },
  { ins: 'min.u32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xffffffff, 1], out: 1 },
  { ins: 'max.s32 %D, %A, %B', src: 'u32', dst: 'u32', in: [0xffffffff, 1], out: 1 },
  { ins: 'min.s64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xfffffffffffffffbn, 3n], out: 0xfffffffffffffffbn },
  { ins: 'max.u64 %D, %A, %B', src: 'u64', dst: 'u64', in: [0xffffffffffffffffn, 3n], out: 0xffffffffffffffffn },
  { ins: 'abs.s32 %D, %A', src: 'u32', dst: 'u32', in: [0xfffffffb], out: 5 },
  { ins: 'setp.lt.u32 %P, %A, %B', src: 'u32', dst: 'pred', in: [0xffffffff, 1], out: 0 },
  { ins: 'setp.lt.s32 %P, %A, %B', src: 'u32', dst: 'pred', in: [0xffffffff, 1], out: 1 },
  { ins: 'setp.hi.u64 %P, %A, %B', src: 'u64', dst: 'pred', in: [0x8000000000000000n, 1n], out: 1 },
  { ins: 'setp.gt.s64 %P, %A, %B', src: 'u64', dst: 'pred', in: [0x8000000000000000n, 1n], out: 0 },
  { ins: 'setp.ne.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [NaN32, 1], out: 0 },
  { ins: 'setp.neu.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [NaN32, NaN32], out: 1 },
  { ins: 'setp.equ.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [NaN32, 1], out: 1 },
  { ins: 'setp.nan.f64 %P, %A, %B', src: 'f64', dst: 'pred', in: [1, NaN], out: 1 },
  { ins: 'cvt.rni.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [2.5], out: 2 },
  { ins: 'cvt.rni.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [3.5], out: 4 },
  { ins: 'cvt.rzi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [-2.75], out: 0xfffffffe },
  { ins: 'cvt.rmi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [-2.5], out: 0xfffffffd },
  { ins: 'cvt.rpi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [2.25], out: 3 },
  { ins: 'cvt.rzi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [3e9], out: 0x7fffffff },
  { ins: 'cvt.rzi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [NaN32], out: 0 },
  { ins: 'cvt.rzi.u32.f32 %D, %A', src: 'f32', dst: 'u32', in: [-5], out: 0 },
  { ins: 'cvt.rn.f32.u32 %D, %A', src: 'u32', dst: 'f32', in: [0xffffffff], out: 4294967296 },
  { ins: 'cvt.rz.f32.u32 %D, %A', src: 'u32', dst: 'f32', in: [0xffffffff], out: 4294967040 },
  { ins: 'cvt.rz.f32.f64 %D, %A', src: 'f64', dst: 'f32', in: [1 + 2 ** -30], out: 1 },
  { ins: 'cvt.rp.f32.f64 %D, %A', src: 'f64', dst: 'f32', in: [1 + 2 ** -30], out: 1 + 2 ** -23 },
  { ins: 'cvt.rm.f32.f64 %D, %A', src: 'f64', dst: 'f32', in: [-(1 + 2 ** -30)], out: -(1 + 2 ** -23) },
  { ins: 'cvt.s64.s32 %D, %A', src: 'u32', dst: 'u64', in: [0xffffffff], out: 0xffffffffffffffffn },
  { ins: 'cvt.u64.u32 %D, %A', src: 'u32', dst: 'u64', in: [0xffffffff], out: 0xffffffffn },
  { ins: 'cvt.u32.u64 %D, %A', src: 'u64', dst: 'u32', in: [0x100000005n], out: 5 },
  { ins: 'cvt.rn.f64.s64 %D, %A', src: 'u64', dst: 'f64', in: [0xfffffffffffffffdn], out: -3 },
  { ins: 'cvt.rn.f64.u64 %D, %A', src: 'u64', dst: 'f64', in: [0xffffffffffffffffn], out: 18446744073709551616 },
  { ins: 'cvt.rzi.s64.f64 %D, %A', src: 'f64', dst: 'u64', in: [-1e18], out: BigInt.asUintN(64, -(10n ** 18n)) },
  { ins: 'cvt.rzi.u64.f64 %D, %A', src: 'f64', dst: 'u64', in: [1.5e19], out: 15000000000000000000n },
  { ins: 'fma.rn.f32 %D, %A, %B, %C', src: 'f32', dst: 'f32', in: [1.5, 2, 0.25], out: 3.25 },
  { ins: 'fma.rn.f64 %D, %A, %B, %C', src: 'f64', dst: 'f64', in: [1 + 2 ** -30, 1 - 2 ** -30, -1], out: -(2 ** -60) },
  { ins: 'add.rp.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, 2 ** -60], out: 1 + 2 ** -52 },
  { ins: 'add.rm.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, 2 ** -60], out: 1 },
  { ins: 'sub.rz.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, 2 ** -60], out: 1 - 2 ** -53 },
  { ins: 'mul.rz.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1 + 2 ** -30, 1 - 2 ** -30], out: 1 - 2 ** -53 },
  { ins: 'mul.rp.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1 + 2 ** -30, 1 + 2 ** -30], out: 1 + 2 ** -29 + 2 ** -52 },
  { ins: 'div.rp.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, 3], out: 1 / 3 + 2 ** -54 },
  { ins: 'div.rm.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, 3], out: 1 / 3 },
  { ins: 'sqrt.rm.f64 %D, %A', src: 'f64', dst: 'f64', in: [2], out: Math.SQRT2 - 2 ** -52 },
  { ins: 'rcp.rn.f32 %D, %A', src: 'f32', dst: 'f32', in: [4], out: 0.25 },
  { ins: 'sqrt.rn.f32 %D, %A', src: 'f32', dst: 'f32', in: [2], out: Math.fround(Math.SQRT2) },
  { ins: 'rsqrt.approx.f32 %D, %A', src: 'f32', dst: 'f32', in: [4], out: 0.5 },
  { ins: 'ex2.approx.f32 %D, %A', src: 'f32', dst: 'f32', in: [3], out: 8 },
  { ins: 'lg2.approx.f32 %D, %A', src: 'f32', dst: 'f32', in: [8], out: 3 },
  { ins: 'div.rn.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [1, 3], out: Math.fround(1 / 3) },
  { ins: 'min.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [NaN32, 1], out: 1 },
  { ins: 'max.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [1, NaN], out: 1 },
  { ins: 'copysign.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [-1, 2], out: -2 },
  { ins: 'testp.finite.f32 %P, %A', src: 'f32', dst: 'pred', in: [Infinity], out: 0 },
  { ins: 'add.rn.sat.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [0.75, 0.5], out: 1 },
  // .ftz: f32 subnormal inputs and results are zeros of the same sign.
  { ins: 'setp.eq.ftz.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [2 ** -140, 0], out: 1 },
  { ins: 'setp.eq.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [2 ** -140, 0], out: 0 },
  { ins: 'setp.lt.ftz.f32 %P, %A, %B', src: 'f32', dst: 'pred', in: [-(2 ** -140), 0], out: 0 },
  { ins: 'max.ftz.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [2 ** -140, -1], out: 0 },
  { ins: 'mul.rn.ftz.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [-(2 ** -70), 2 ** -70], out: -0 },
  { ins: 'mul.rn.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [-(2 ** -70), 2 ** -70], out: -(2 ** -140) },
  { ins: 'add.ftz.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [2 ** -140, 1], out: 1 },
  { ins: 'rcp.approx.ftz.f32 %D, %A', src: 'f32', dst: 'f32', in: [-(2 ** -140)], out: -Infinity },
  { ins: 'lg2.approx.ftz.f32 %D, %A', src: 'f32', dst: 'f32', in: [2 ** -140], out: -Infinity },
  { ins: 'ex2.approx.ftz.f32 %D, %A', src: 'f32', dst: 'f32', in: [-140], out: 0 },
  { ins: 'sqrt.approx.ftz.f32 %D, %A', src: 'f32', dst: 'f32', in: [-(2 ** -140)], out: -0 },
  { ins: 'cvt.rpi.ftz.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [2 ** -140], out: 0 },
  { ins: 'cvt.rpi.s32.f32 %D, %A', src: 'f32', dst: 'u32', in: [2 ** -140], out: 1 },
  { ins: 'cvt.ftz.f64.f32 %D, %A', src: 'f32', dst: 'f64', in: [-(2 ** -140)], out: -0 },
  { ins: 'cvt.rn.ftz.f32.f64 %D, %A', src: 'f64', dst: 'f32', in: [2 ** -130], out: 0 },
  { ins: 'rcp.approx.ftz.f64 %D, %A', src: 'f64', dst: 'f64', in: [2 ** -1030], out: Infinity },
  { ins: 'max.NaN.f32 %D, %A, %B', src: 'f32', dst: 'f32', in: [NaN32, 1], out: NaN32 },
  { ins: 'min.NaN.f64 %D, %A, %B', src: 'f64', dst: 'f64', in: [-0, 0], out: -0 },
  { ins: 'cvt.rna.tf32.f32 %D, %A', src: 'f32', dst: 'u32', in: [1 + 2 ** -11], out: 0x3f802000 },
  { ins: 'cvt.rn.satfinite.tf32.f32 %D, %A', src: 'f32', dst: 'u32', in: [1 + 2 ** -11], out: 0x3f800000 },
  { ins: 'cvt.rna.satfinite.tf32.f32 %D, %A', src: 'f32', dst: 'u32', in: [-Infinity], out: 0xff7fe000 },
  { ins: 'vabsdiff4.u32.u32.u32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x10ff0580, 0x2001ff7f, 0], out: 0x10fefa01 },
  { ins: 'vabsdiff4.u32.u32.u32.add %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x10ff0580, 0x2001ff7f, 7], out: 7 + 0x10 + 0xfe + 0xfa + 1 },
  { ins: 'vabsdiff4.u32.s32.s32 %D, %A, %B, %C', src: 'u32', dst: 'u32', in: [0x00ff0080, 0x0001007f, 0], out: 0x000200ff },
  { ins: 'griddepcontrol.wait; mov.u32 %D, %A', src: 'u32', dst: 'u32', in: [5], out: 5 },
  { ins: 'mov.b64 %D, {%A, %B}', src: 'u32', dst: 'u64', in: [0x89abcdef, 0x01234567], out: 0x0123456789abcdefn },
  { ins: 'add.cc.u32 %r6, %A, %B; addc.u32 %D, 0, 0', src: 'u32', dst: 'u32', in: [0xffffffff, 1], out: 1 },
  { ins: 'sub.cc.u32 %r6, %A, %B; subc.u32 %D, 5, 0', src: 'u32', dst: 'u32', in: [0, 1], out: 4 },
];

const REG: Record<Exclude<C, 'pred'>, string[]> = {
  u32: ['%r1', '%r2', '%r3', '%r4'], u64: ['%rd3', '%rd4', '%rd5', '%rd6'], f32: ['%f1', '%f2', '%f3', '%f4'], f64: ['%fd1', '%fd2', '%fd3', '%fd4'],
};

function moduleText(): string {
  const entries = rows.map((r, i) => {
    const srcs = Array.isArray(r.src) ? r.src : [r.src, r.src, r.src];
    let body = r.ins;
    const loads: string[] = [];
    ['%A', '%B', '%C'].forEach((tok, k) => {
      if (!body.includes(tok)) return;
      const c = srcs[k] as Exclude<C, 'pred'>;
      const reg = REG[c][k];
      loads.push(`ld.global.${c} ${reg}, [%rd2+${k * 8}];`);
      body = body.split(tok).join(reg);
    });
    let store: string;
    if (r.dst === 'pred') {
      body = body.replace('%P', '%p1');
      store = 'selp.u32 %r5, 1, 0, %p1; st.global.u32 [%rd1], %r5;';
    } else {
      const d = REG[r.dst][3];
      body = body.replace('%D', d);
      store = `st.global.${r.dst} [%rd1], ${d};`;
    }
    return `.visible .entry t${i}(.param .u64 t${i}_out, .param .u64 t${i}_in)
{
  .reg .pred %p<2>; .reg .b32 %r<8>; .reg .b64 %rd<8>; .reg .f32 %f<8>; .reg .f64 %fd<8>;
  ld.param.u64 %rd1, [t${i}_out];
  ld.param.u64 %rd2, [t${i}_in];
  ${loads.join('\n  ')}
  ${body};
  ${store}
  ret;
}`;
  });
  return `.version 8.0\n.target sm_75\n.address_size 64\n\n${entries.join('\n\n')}\n`;
}

describe('emulator: per-instruction semantics (table)', () => {
  it(`runs ${rows.length} instruction rows`, async () => {
    const s = new Session();
    const m = s.load(moduleText());
    const inBuf = s.alloc(24), outBuf = s.alloc(8);
    const failures: string[] = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const srcs = Array.isArray(r.src) ? r.src : [r.src, r.src, r.src];
      const bytes = new DataView(new ArrayBuffer(24));
      r.in.forEach((v, k) => {
        const c = srcs[k];
        if (c === 'u32') bytes.setUint32(k * 8, Number(v), true);
        else if (c === 'u64') bytes.setBigUint64(k * 8, BigInt(v), true);
        else if (c === 'f32') bytes.setFloat32(k * 8, Number(v), true);
        else bytes.setFloat64(k * 8, Number(v), true);
      });
      s.ctx.enqueueWrite(null, inBuf, new Uint8Array(bytes.buffer));
      s.ctx.enqueueMemset(null, outBuf, 0xab, 1, 8, 1, 8);
      s.launch(m, `t${i}`, 1, 1, [outBuf, inBuf]);
      const out = new DataView((await s.download(outBuf, new Uint8Array(8))).buffer);
      const got = r.dst === 'u32' || r.dst === 'pred' ? out.getUint32(0, true) : r.dst === 'u64' ? out.getBigUint64(0, true)
        : r.dst === 'f32' ? out.getFloat32(0, true) : out.getFloat64(0, true);
      if (!Object.is(got, r.out) && (got !== r.out || Object.is(r.out, -0) || Object.is(got, -0))) failures.push(`${r.ins} (${r.in.join(', ')}): got ${got}, want ${r.out}`);
    }
    assert.equal(s.ctx.stickyError, 0);
    assert.deepEqual(failures, []);
  });
});

describe('emulator: forms refused at load instead of computed another way', () => {
  for (const ins of ['cvt.rn.relu.f16x2.f32 %r1, %f1, %f2;', 'cvt.rs.f16x2.f32 %r1, %f1, %f2, %r2;', 'min.xorsign.abs.f16 %rs1, %rs2, %rs3;',
    'mbarrier.arrive.noComplete.shared.b64 %rd1, [%r1], 1;', 'cp.async.bulk.tensor.1d.shared::cluster.global.mbarrier::complete_tx::bytes [%r1], [%rd1, {%r2}], [%r3];']) {
    it(ins, () => {
      const s = new Session();
      const ptx = `.version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k()\n{\n .reg .b16 %rs<4>; .reg .b32 %r<4>; .reg .b64 %rd<4>; .reg .f32 %f<4>;\n ${ins}\n ret;\n}\n`;
      assert.throws(() => s.load(ptx), (e: Error & { code?: unknown }) => /not supported/.test(e.message));
    });
  }
});
