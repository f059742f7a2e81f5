// Helpers the generated kernel code calls for operations JS has no single operator for. Hand-written because
// they sit on the hot path (V8 inlines these small functions into the compiled kernels).
//
// 64-bit integers: a JS number while the value is a safe integer, else a BigInt; always the *signed*
// two's-complement value (u64 0xffff...ff is -1). Every helper returns that canonical form, so `===` on two
// numbers is value equality and addresses (< 2^53) stay plain numbers.

export type I64 = number | bigint;

// Correctly rounded float arithmetic (all rounding modes, fma, .ftz), cp.async/mbarrier and tensor-core helpers
// live in their own modules. Re-exported as plain values, not `export ... from` (which compiles to getters
// that V8 does not inline on the generated kernels' hot path).
import * as fpx from './fpexact';
import * as asy from './asyncops';
import * as mma from './mma';
export const cvtI64 = fpx.cvtI64, drnd = fpx.drnd, exactOp = fpx.exactOp, fma32 = fpx.fma32, fma64 = fpx.fma64;
export const fmaxnan = fpx.fmaxnan, fminnan = fpx.fminnan, frnd = fpx.frnd, frnd32 = fpx.frnd32, ftz = fpx.ftz, ftzd = fpx.ftzd;
export const fma32fix = fpx.fma32fix, tf32 = fpx.tf32;
export const intToFloat = fpx.intToFloat, nextd = fpx.nextd, toHalf = fpx.toHalf;
export const mbArrive = asy.mbArrive, mbDone = asy.mbDone, mbInit = asy.mbInit, mbTx = asy.mbTx, bulkCopy = asy.bulkCopy;
export const MO = mma.MO, mmaRun = mma.mmaRun, mmaWarp = mma.mmaWarp, wmmaMem = mma.wmmaMem, ldmatrixRun = mma.ldmatrixRun;

const MAXS = Number.MAX_SAFE_INTEGER;
const MAXB = BigInt(MAXS);
const TWO32 = 4294967296;

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
const f64 = new Float64Array(1);
const i32x2 = new Int32Array(f64.buffer);
const u32x2 = new Uint32Array(f64.buffer);
const b64 = new BigInt64Array(f64.buffer);

export function norm(v: bigint): I64 {
  v = BigInt.asIntN(64, v);
  return v >= -MAXB && v <= MAXB ? Number(v) : v;
}
function big(a: I64): bigint { return typeof a === 'bigint' ? a : BigInt(a); }
function ubig(a: I64): bigint { return BigInt.asUintN(64, big(a)); }

export function add64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number') { const r = a + b; if (r <= MAXS && r >= -MAXS) return r; }
  return norm(big(a) + big(b));
}
export function sub64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number') { const r = a - b; if (r <= MAXS && r >= -MAXS) return r; }
  return norm(big(a) - big(b));
}
export function mul64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number') { const r = a * b; if (r <= MAXS && r >= -MAXS) return r; }
  return norm(big(a) * big(b));
}
export function mulhi64(a: I64, b: I64, signed: boolean): I64 {
  return signed ? norm((big(a) * big(b)) >> 64n) : norm((ubig(a) * ubig(b)) >> 64n);
}
/** mul.wide.s32 / u32: a, b are int32 values already sign- or zero-extended by the caller. */
export function mulwide(a: number, b: number): I64 {
  const r = a * b;
  if (r <= MAXS && r >= -MAXS) return r;
  return norm(BigInt(a) * BigInt(b));
}
export function div64(a: I64, b: I64, signed: boolean): I64 {
  if (typeof a === 'number' && typeof b === 'number' && b !== 0 && (signed || (a >= 0 && b > 0)) && Math.abs(a) < 2 ** 31 * 2 ** 20) {
    return Math.trunc(a / b) + 0;
  }
  if (big(b) === 0n) return -1;
  return signed ? norm(big(a) / big(b)) : norm(ubig(a) / ubig(b));
}
export function rem64(a: I64, b: I64, signed: boolean): I64 {
  if (typeof a === 'number' && typeof b === 'number' && b !== 0 && (signed || (a >= 0 && b > 0))) return (a % b) + 0;
  if (big(b) === 0n) return a;
  return signed ? norm(big(a) % big(b)) : norm(ubig(a) % ubig(b));
}
export function and64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number') {
    if ((a | 0) === a && (b | 0) === b) return a & b;
    if (b >= 0 && b <= 0x7fffffff) return (a | 0) & b;
    if (a >= 0 && a <= 0x7fffffff) return (b | 0) & a;
  }
  return norm(big(a) & big(b));
}
export function or64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number' && (a | 0) === a && (b | 0) === b) return a | b;
  return norm(big(a) | big(b));
}
export function xor64(a: I64, b: I64): I64 {
  if (typeof a === 'number' && typeof b === 'number' && (a | 0) === a && (b | 0) === b) return a ^ b;
  return norm(big(a) ^ big(b));
}
export function not64(a: I64): I64 {
  return typeof a === 'number' ? -a - 1 : norm(~a);
}
export function neg64(a: I64): I64 {
  return typeof a === 'number' ? 0 - a : norm(-a);
}
export function shl64(a: I64, n: number): I64 {
  n >>>= 0;
  if (n >= 64) return 0;
  if (typeof a === 'number') { const r = a * 2 ** n; if (r <= MAXS && r >= -MAXS) return r; }
  return norm(big(a) << BigInt(n));
}
export function shr64(a: I64, n: number, signed: boolean): I64 {
  n >>>= 0;
  if (n > 63) n = 64;
  if (typeof a === 'number' && (signed || a >= 0)) return n >= 64 ? (a < 0 ? -1 : 0) : Math.floor(a / 2 ** n);
  if (n >= 64) return signed && big(a) < 0n ? -1 : 0;
  return signed ? norm(big(a) >> BigInt(n)) : norm(ubig(a) >> BigInt(n));
}
export function lt64(a: I64, b: I64, signed: boolean): boolean {
  if (typeof a === 'number' && typeof b === 'number' && (signed || (a >= 0 && b >= 0))) return a < b;
  return signed ? big(a) < big(b) : ubig(a) < ubig(b);
}
export function eq64(a: I64, b: I64): boolean {
  return typeof a === typeof b ? a === b : big(a) === big(b);
}
export function min64(a: I64, b: I64, signed: boolean): I64 { return lt64(a, b, signed) ? a : b; }
export function max64(a: I64, b: I64, signed: boolean): I64 { return lt64(a, b, signed) ? b : a; }
export function abs64(a: I64): I64 { return typeof a === 'number' ? Math.abs(a) : norm(a < 0n ? -a : a); }

/** Low 32 bits as int32. ToInt32 is exact modulo 2^32 for any safe integer. */
export function lo32(a: I64): number { return typeof a === 'number' ? a | 0 : Number(BigInt.asIntN(32, a)); }
export function hi32(a: I64): number { return typeof a === 'number' ? Math.floor(a / TWO32) | 0 : Number(BigInt.asIntN(32, a >> 32n)); }
export function pack64(lo: number, hi: number): I64 {
  if (hi >= -0x200000 && hi < 0x200000) return hi * TWO32 + (lo >>> 0);
  return norm((BigInt(hi) << 32n) | BigInt(lo >>> 0));
}
/** Zero-extended u32 -> i64. */
export function u32to64(a: number): number { return a >>> 0; }
/** u64 as a (possibly rounded) JS number, for cvt to float. */
export function u64num(a: I64): number { return typeof a === 'number' && a >= 0 ? a : Number(ubig(a)); }
export function s64num(a: I64): number { return typeof a === 'number' ? a : Number(a); }

// --- bit views ---------------------------------------------------------------------------------------
export function f2b(x: number): number { f32[0] = x; return i32[0]; }
export function b2f(x: number): number { i32[0] = x; return f32[0]; }
export function d2b(x: number): I64 { f64[0] = x; return pack64(i32x2[0], i32x2[1]); }
export function b2d(x: I64): number {
  if (typeof x === 'number' && (x | 0) === x) { i32x2[0] = x; i32x2[1] = x < 0 ? -1 : 0; return f64[0]; }
  b64[0] = big(x); return f64[0];
}
export function dhi(x: number): number { f64[0] = x; return i32x2[1]; }
export function dlo(x: number): number { f64[0] = x; return i32x2[0]; }
export function dpack(lo: number, hi: number): number { i32x2[0] = lo; i32x2[1] = hi; return f64[0]; }

// --- 32-bit integer helpers --------------------------------------------------------------------------
export function mulhiu(a: number, b: number): number {
  a >>>= 0; b >>>= 0;
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
}
export function mulhis(a: number, b: number): number {
  return (mulhiu(a, b) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}
export function divs(a: number, b: number): number { return b === 0 ? -1 : (a / b) | 0; }
export function divu(a: number, b: number): number { return b === 0 ? -1 : ((a >>> 0) / (b >>> 0)) | 0; }
export function rems(a: number, b: number): number { return b === 0 ? a : (a % b) | 0; }
export function remu(a: number, b: number): number { return b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0; }
export function popc(a: number): number {
  a = a - ((a >>> 1) & 0x55555555);
  a = (a & 0x33333333) + ((a >>> 2) & 0x33333333);
  return (Math.imul((a + (a >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}
export function popc64(a: I64): number { return popc(lo32(a)) + popc(hi32(a)); }
export function clz64(a: I64): number { const h = hi32(a); return h !== 0 ? Math.clz32(h) : 32 + Math.clz32(lo32(a)); }
export function brev(a: number): number {
  a = ((a >>> 1) & 0x55555555) | ((a & 0x55555555) << 1);
  a = ((a >>> 2) & 0x33333333) | ((a & 0x33333333) << 2);
  a = ((a >>> 4) & 0x0f0f0f0f) | ((a & 0x0f0f0f0f) << 4);
  a = ((a >>> 8) & 0x00ff00ff) | ((a & 0x00ff00ff) << 8);
  return ((a >>> 16) | (a << 16)) | 0;
}
export function brev64(a: I64): I64 { return pack64(brev(hi32(a)), brev(lo32(a))); }
/** bfind: position of the most significant non-sign bit; -1 (0xffffffff) if none. */
export function bfind(a: number, signed: boolean, shiftamt: boolean): number {
  const v = signed && a < 0 ? ~a : a;
  if (v === 0) return -1;
  const pos = 31 - Math.clz32(v);
  return shiftamt ? 31 - pos : pos;
}
export function bfind64(a: I64, signed: boolean, shiftamt: boolean): number {
  let v = a;
  if (signed && lt64(a, 0, true)) v = not64(a);
  if (eq64(v, 0)) return -1;
  const pos = 63 - clz64(v);
  return shiftamt ? 63 - pos : pos;
}
export function bfe(a: number, pos: number, len: number, signed: boolean): number {
  pos &= 0xff; len &= 0xff;
  if (len === 0) return 0;
  const msb = pos + len - 1;
  const sbit = signed ? (pos >= 32 ? a >> 31 : (a >> Math.min(msb, 31)) & 1) : 0;
  let r = pos >= 32 ? 0 : a >>> pos;
  if (len < 32) r &= (1 << len) - 1;
  if (sbit && (signed)) {
    const width = Math.min(len, 32 - Math.min(pos, 32));
    if (width < 32) r |= ~((1 << width) - 1);
  }
  return r | 0;
}
export function bfe64(a: I64, pos: number, len: number, signed: boolean): I64 {
  pos &= 0xff; len &= 0xff;
  if (len === 0) return 0;
  const v = signed ? big(a) : ubig(a);
  if (pos > 63) return signed && v < 0n ? -1 : 0;
  const width = Math.min(len, 64 - pos);
  const r = BigInt.asUintN(width, v >> BigInt(pos));
  return signed ? norm(BigInt.asIntN(width, r)) : norm(r);
}
export function bfi(a: number, b: number, pos: number, len: number): number {
  pos &= 0xff; len &= 0xff;
  if (len === 0 || pos > 31) return b;
  const m = (len >= 32 ? -1 : (1 << len) - 1) << pos;
  return ((b & ~m) | ((a << pos) & m)) | 0;
}
/** dp4a: c + the four products of a's and b's bytes (each signed or not), wrapped to 32 bits. */
export function dp4a(a: number, b: number, c: number, sa: boolean, sb: boolean): number {
  let r = c;
  for (let i = 0; i < 32; i += 8) {
    const x = sa ? (a << (24 - i)) >> 24 : (a >>> i) & 255;
    const y = sb ? (b << (24 - i)) >> 24 : (b >>> i) & 255;
    r = (r + x * y) | 0;
  }
  return r;
}

/** dp2a.lo/.hi: c + a's two 16-bit halves times two bytes of b (bytes 0-1 for .lo, 2-3 for .hi). */
export function dp2a(a: number, b: number, c: number, hi: boolean, sa: boolean, sb: boolean): number {
  let r = c;
  for (let k = 0; k < 2; k++) {
    const x = sa ? (a << (16 - 16 * k)) >> 16 : (a >>> (16 * k)) & 65535;
    const i = 8 * (k + (hi ? 2 : 0));
    const y = sb ? (b << (24 - i)) >> 24 : (b >>> i) & 255;
    r = (r + x * y) | 0;
  }
  return r;
}

/**
 * fns.b32: the bit position of the |offset|-th set bit of mask counting from base (inclusive) towards the MSB
 * (offset > 0) or the LSB (offset < 0); offset 0 asks whether bit base itself is set. 0xffffffff when none.
 */
export function fns(mask: number, base: number, offset: number): number {
  if (offset === 0) return base < 32 && (mask >>> base) & 1 ? base : -1;
  const inc = offset > 0 ? 1 : -1;
  let count = Math.abs(offset) - 1;
  for (let pos = base; pos >= 0 && pos < 32; pos += inc) {
    if ((mask >>> pos) & 1) {
      if (count === 0) return pos;
      count--;
    }
  }
  return -1;
}

/** bmsk.{clamp,wrap}.b32: b one-bits starting at bit a; bits past 31 drop off. */
export function bmsk(a: number, b: number, wrap: boolean): number {
  if (wrap) { a &= 31; b &= 31; } else { a = Math.min(a >>> 0, 32); b = Math.min(b >>> 0, 32); }
  if (a >= 32 || b === 0) return 0;
  return ((b >= 32 ? -1 : (1 << b) - 1) << a) | 0;
}
export function bfi64(a: I64, b: I64, pos: number, len: number): I64 {
  pos &= 0xff; len &= 0xff;
  if (len === 0 || pos > 63) return b;
  const m = ((1n << BigInt(Math.min(len, 64))) - 1n) << BigInt(pos);
  return norm((ubig(b) & ~m) | ((ubig(a) << BigInt(pos)) & m));
}
export function prmt(a: number, b: number, c: number, mode: string): number {
  const bytes = [a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, (a >>> 24) & 0xff, b & 0xff, (b >>> 8) & 0xff, (b >>> 16) & 0xff, (b >>> 24) & 0xff];
  let r = 0;
  if (mode === '') {
    for (let i = 0; i < 4; i++) {
      const sel = (c >>> (i * 4)) & 0xf;
      let v = bytes[sel & 7];
      if (sel & 8) v = v & 0x80 ? 0xff : 0;
      r |= v << (i * 8);
    }
    return r | 0;
  }
  const s = c & 3;
  const idx: Record<string, number[]> = {
    f4e: [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]][s],
    b4e: [[0, 7, 6, 5], [1, 0, 7, 6], [2, 1, 0, 7], [3, 2, 1, 0]][s],
    rc8: [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]][s],
    ecl: [[0, 1, 2, 3], [1, 1, 2, 3], [2, 2, 2, 3], [3, 3, 3, 3]][s],
    ecr: [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 1, 2, 3]][s],
    rc16: [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]][s],
  };
  const sel = idx[mode];
  for (let i = 0; i < 4; i++) r |= bytes[sel[i]] << (i * 8);
  return r | 0;
}

// --- float helpers -----------------------------------------------------------------------------------
/** NaN-ignoring min/max as PTX defines them (one NaN operand: the other is returned). */
export function fmin(a: number, b: number): number { return a !== a ? b : b !== b ? a : (a === 0 && b === 0 ? (Object.is(a, -0) ? a : b) : a < b ? a : b); }
export function fmax(a: number, b: number): number { return a !== a ? b : b !== b ? a : (a === 0 && b === 0 ? (Object.is(a, -0) ? b : a) : a > b ? a : b); }
export function sat(x: number): number { return x !== x ? 0 : x < 0 ? 0 : x > 1 ? 1 : x; }

/** Round half to even (cvt.rni). */
export function rint(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** Float -> int32 with saturation; NaN -> 0. */
export function f2s32(x: number): number { return x !== x ? 0 : x >= 2147483647 ? 2147483647 : x <= -2147483648 ? -2147483648 : x | 0; }
export function f2u32(x: number): number { return x !== x ? 0 : x >= 4294967295 ? -1 : x <= 0 ? 0 : (x >>> 0) | 0; }
export function f2s64(x: number): I64 {
  if (x !== x) return 0;
  if (x >= 9223372036854775807) return 2n ** 63n - 1n;
  if (x <= -9223372036854775808) return -(2n ** 63n);
  return Math.abs(x) <= MAXS ? x + 0 : norm(BigInt(x));
}
export function f2u64(x: number): I64 {
  if (x !== x || x <= 0) return 0;
  if (x >= 18446744073709551615) return -1;
  return x <= MAXS ? x : norm(BigInt(x));
}
// --- f16 ------------------------------------------------------------------------------------------
export function f16tof32(h: number): number {
  h &= 0xffff;
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** Rounds a double straight to half precision (ties to even); no intermediate f32 rounding. */
export function f32tof16(x: number): number {
  if (x !== x) return 0x7fff; // the canonical NaN the hardware produces
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a === Infinity) return sign | 0x7c00;
  const e = Math.max(ilog2(a), -14);
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const v = r * ulp;
  if (v > 65504) return sign | 0x7c00;
  if (v < 2 ** -14) return sign | (v / 2 ** -24);
  const E = ilog2(v);
  return sign | ((E + 15) << 10) | ((v / 2 ** E - 1) * 1024);
}
function ilog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}
export function sats32(x: number): number { return x > 2147483647 ? 2147483647 : x < -2147483648 ? -2147483648 : x; }
/** Thrown by `exit` inside a non-inlined function; the scheduler treats it as the thread ending. */
export const EXIT = { exit: true };
/** shf.l / shf.r: funnel shift of the 64-bit value hi:lo. */
export function shf(lo: number, hi: number, c: number, left: boolean, wrap: boolean): number {
  const n = wrap ? c & 31 : Math.min(c >>> 0, 32);
  if (n === 0) return left ? hi : lo;
  if (n === 32) return left ? lo : hi;
  return left ? ((hi << n) | (lo >>> (32 - n))) | 0 : ((lo >>> n) | (hi << (32 - n))) | 0;
}

// --- half precision arithmetic: computed in f32 (exact for +,-,* of halves up to the final rounding) ----
function bf16tof32(h: number): number { return b2f((h & 0xffff) << 16); }
/** A double rounded once to bf16 (ties to even); NaN is the canonical 0x7fff. */
function f32tobf16(x: number): number {
  if (x !== x) return 0x7fff;
  const b = f2b(x);
  // Rounding through f32 first is only wrong when it lands exactly on a bf16 midpoint: then x's side decides.
  if ((b & 0xffff) === 0x8000 && b2f(b) !== x) return (((Math.abs(x) > Math.abs(b2f(b)) ? b + 0x8000 : b - 0x8000) >>> 16) & 0xffff);
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
function half1(op: number, bf: boolean, a: number, b: number, c: number, flags: number): number {
  const to = bf ? bf16tof32 : f16tof32;
  const x = to(a), y = to(b), z = to(c);
  let r: number;
  switch (op) {
    case 0: r = x + y; break;
    case 1: r = x - y; break;
    case 2: r = x * y; break;
    case 3: r = x * y + z; break;
    case 4: r = -x; break;
    case 5: r = Math.abs(x); break;
    case 6: r = fmin(x, y); break;
    case 7: r = fmax(x, y); break;
    case 8: r = fpx.fminnan(x, y); break;
    case 9: r = fpx.fmaxnan(x, y); break;
    case 10: r = Math.pow(2, x); break;
    default: r = Math.tanh(x); break;
  }
  if (flags & 1) r = sat(r);
  const h = bf ? f32tobf16(r) : f32tof16(r);
  // .relu on the rounded result: a negative becomes +0 (a -0 is not negative), NaN stays the canonical NaN.
  return flags & 2 && h > 0x8000 && r === r ? 0 : h;
}
/**
 * add/sub/mul/fma/neg/abs/min/max/min.NaN/max.NaN/ex2/tanh (op 0..11) on f16, bf16 and their x2 packs (raw bits
 * in, raw bits out); flags: 1 .sat, 2 .relu.
 */
export function hop(op: number, type: string, a: number, b: number, c: number, flags: number): number {
  const bf = type.startsWith('bf');
  if (!type.endsWith('x2')) return half1(op, bf, a, b, c, flags);
  const lo = half1(op, bf, a & 0xffff, b & 0xffff, c & 0xffff, flags);
  const hi = half1(op, bf, a >>> 16, b >>> 16, c >>> 16, flags);
  return (lo | (hi << 16)) | 0;
}
/** A scalar f16/bf16 as an f32 value (setp on halves). */
export function h2f(x: number, bf: boolean): number { return bf ? bf16tof32(x) : f16tof32(x); }

/** The texture/surface registry compiled tex/suld/sust/txq/suq code calls (texops.ts). */
export { texRegistry } from './texture';

/**
 * vabsdiff4: per-byte |a - b| (bytes signed per sa/sb); .add sums them onto c (32-bit, .sat saturating per the
 * destination's signedness), else packs them as bytes (.sat clamping to the destination byte range).
 */
export function vabsdiff4(a: number, b: number, c: number, sa: boolean, sb: boolean, add: boolean, sat: boolean, sd: boolean): number {
  let sum = 0, packed = 0;
  for (let i = 0; i < 4; i++) {
    const x = sa ? (a << (24 - 8 * i)) >> 24 : (a >>> (8 * i)) & 255;
    const y = sb ? (b << (24 - 8 * i)) >> 24 : (b >>> (8 * i)) & 255;
    let d = Math.abs(x - y);
    sum += d;
    if (sat) d = Math.min(d, sd ? 127 : 255);
    packed |= (d & 255) << (8 * i);
  }
  if (!add) return packed | 0;
  const r = (sd ? c : c >>> 0) + sum;
  if (sat) return sd ? sats32(r) : (r > 4294967295 ? -1 : r | 0);
  return r | 0;
}
