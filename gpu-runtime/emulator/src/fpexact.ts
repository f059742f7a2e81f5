// Correctly rounded f32/f64 arithmetic in every PTX rounding mode (rn/rz/rm/rp), plus flush-to-zero.
//
// JS only rounds to nearest in double, so: ops whose f64 error is exactly recoverable with error-free
// transformations (TwoSum, Dekker's TwoProduct, residuals through an exact fma) decide the directed rounding
// from the sign of that error; whatever falls outside the range where those transformations are exact
// (overflow, subnormal results, zero results whose sign depends on the mode, fma's three-term sum) goes
// through an exact BigInt path (value = integer * 2^exponent, then one rounding). The BigInt path costs
// microseconds, so the hot round-to-nearest forms keep a fast path and only check that it is right.

/** Rounding modes as PTX numbers them here: 0 rn, 1 rz, 2 rm, 3 rp. */
export type Mode = 0 | 1 | 2 | 3;

const f64 = new Float64Array(1);
const u32x2 = new Uint32Array(f64.buffer);
const b64 = new BigInt64Array(f64.buffer);
const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

const FLT_MIN = 1.1754943508222875e-38;
const DBL_MIN = 2.2250738585072014e-308;
const FLT_MAX = 3.4028234663852886e38;
/** Halfway between FLT_MAX and 2^128: round-to-nearest overflows from here. */
const OVF = 2 ** 128 - 2 ** 103;

/** .ftz on an f32 value: subnormals become a zero of the same sign. */
export function ftz(x: number): number { return x < FLT_MIN && x > -FLT_MIN ? x * 0 : x; }
/** .ftz on f64 (only rcp.approx.ftz.f64 / rsqrt.approx.ftz.f64 have it). */
export function ftzd(x: number): number { return x < DBL_MIN && x > -DBL_MIN ? x * 0 : x; }

// --- exact path ------------------------------------------------------------------------------------

interface Fmt { p: number; emin: number; emax: number }
const F64: Fmt = { p: 53, emin: -1022, emax: 1023 };
const F32: Fmt = { p: 24, emin: -126, emax: 127 };

/** |x| = m * 2^e for finite x. */
function mant(x: number): bigint {
  f64[0] = x;
  const hi = u32x2[1], lo = u32x2[0];
  const m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  return (hi >>> 20) & 0x7ff ? m | (1n << 52n) : m;
}
function expo(x: number): number {
  f64[0] = x;
  const be = (u32x2[1] >>> 20) & 0x7ff;
  return be ? be - 1075 : -1074;
}
function bitlen(m: bigint): number { return m === 0n ? 0 : m.toString(2).length; }

/**
 * Rounds (-1)^neg * (m * 2^e + sticky*tiny) to the format in mode; `sticky` says the true value lies strictly
 * above m*2^e (in magnitude) by less than one unit of m's last bit. m > 0 or sticky.
 */
function roundTo(neg: boolean, m: bigint, e: number, sticky: boolean, mode: Mode, f: Fmt): number {
  const L = bitlen(m);
  const E = e + L - 1;
  const q = Math.max(E - (f.p - 1), f.emin - (f.p - 1));
  let r: bigint, rem = 0n, half = 0n, shift = q - e;
  if (shift > 0) {
    r = m >> BigInt(shift);
    rem = m & ((1n << BigInt(shift)) - 1n);
    half = 1n << BigInt(shift - 1);
  } else { r = m << BigInt(-shift); shift = 0; }
  const inexact = rem !== 0n || sticky;
  let inc = false;
  if (inexact) {
    if (mode === 0) inc = shift > 0 && (rem > half || (rem === half && (sticky || (r & 1n) === 1n)));
    else if (mode === 2) inc = neg;
    else if (mode === 3) inc = !neg;
  }
  if (inc) r += 1n;
  // r <= 2^p, so Number(r) is exact, and r * 2^q is representable unless it overflows.
  let v = Number(r) * 2 ** q;
  if (bitlen(r) + q - 1 > f.emax) {
    const away = mode === 0 || (mode === 3 && !neg) || (mode === 2 && neg);
    v = away ? Infinity : (2 - 2 ** (1 - f.p)) * 2 ** f.emax;
  }
  return neg ? -v : v;
}

/** Sign of an exact zero sum of two operands with these signs: rm gives -0 unless both are +0. */
function sgn(x: number): boolean { return x < 0 || Object.is(x, -0); }
function zeroSum(negX: boolean, negY: boolean, mode: Mode): number {
  if (negX === negY) return negX ? -0 : 0;
  return mode === 2 ? -0 : 0;
}

/** Exact (x*y or 1) + z, all finite: returns the rounded result. */
function exactFma(a: number, b: number, c: number, mode: Mode, f: Fmt): number {
  const pNeg = (a < 0 || Object.is(a, -0)) !== (b < 0 || Object.is(b, -0));
  const cNeg = c < 0 || Object.is(c, -0);
  let pm = a === 0 || b === 0 ? 0n : mant(a) * mant(b);
  let pe = a === 0 || b === 0 ? 0 : expo(a) + expo(b);
  let cm = c === 0 ? 0n : mant(c);
  let ce = c === 0 ? 0 : expo(c);
  if (pm === 0n && cm === 0n) return zeroSum(pNeg, cNeg, mode);
  if (pm === 0n) { pe = ce; } else if (cm === 0n) { ce = pe; }
  const e = Math.min(pe, ce);
  pm <<= BigInt(pe - e); cm <<= BigInt(ce - e);
  const s = (pNeg ? -pm : pm) + (cNeg ? -cm : cm);
  if (s === 0n) return zeroSum(pNeg, cNeg, mode);
  return roundTo(s < 0n, s < 0n ? -s : s, e, false, mode, f);
}

function exactDiv(a: number, b: number, mode: Mode, f: Fmt): number {
  const neg = (a < 0 || Object.is(a, -0)) !== (b < 0 || Object.is(b, -0));
  const ma = mant(a), mb = mant(b);
  const k = Math.max(0, f.p + 3 + bitlen(mb) - bitlen(ma));
  const n = ma << BigInt(k);
  const qt = n / mb;
  return roundTo(neg, qt, expo(a) - expo(b) - k, n - qt * mb !== 0n, mode, f);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitlen(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}
function exactSqrt(a: number, mode: Mode, f: Fmt): number {
  const m = mant(a);
  let e = expo(a);
  let k = Math.max(0, 2 * (f.p + 3) - bitlen(m));
  if ((e - k) & 1) k++;
  const n = m << BigInt(k);
  const r = isqrt(n);
  e = (e - k) / 2;
  return roundTo(false, r, e, r * r !== n, mode, f);
}

/**
 * op 0 add, 1 sub, 2 mul, 3 div, 4 sqrt (of a), 5 fma; exact then rounded once into f64 (or f32 when
 * single, for f32 inputs). IEEE special cases (NaN, infinities, signed zeros) as the hardware gives them.
 */
export function exactOp(op: number, a: number, b: number, c: number, mode: Mode, single: boolean): number {
  const f = single ? F32 : F64;
  switch (op) {
    case 0: case 1: {
      if (op === 1) b = -b;
      if (!Number.isFinite(a) || !Number.isFinite(b)) return a + b;
      return exactFma(1, a, b, mode, f);
    }
    case 2:
      if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0 || b === 0) return a * b;
      return exactFma(a, b, 0, mode, f) ;
    case 3:
      if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0 || b === 0) return a / b;
      return exactDiv(a, b, mode, f);
    case 4:
      if (!(a > 0) || a === Infinity) return Math.sqrt(a);
      return exactSqrt(a, mode, f);
    default:
      if (!Number.isFinite(a) || !Number.isFinite(b)) return a * b + c;
      if (!Number.isFinite(c)) return c;
      // A product that is exactly zero keeps its own sign in the sum (exactFma handles it).
      return exactFma(a, b, c, mode, f);
  }
}

// --- fast paths -----------------------------------------------------------------------------------

const SPLIT = 134217729; // 2^27 + 1, Veltkamp split for Dekker's TwoProduct
/** Exact error of a*b = p (Dekker), valid when neither a, b nor p is near overflow or underflow. */
function prodErr(a: number, b: number, p: number): number {
  const ta = SPLIT * a, ah = ta - (ta - a), al = a - ah;
  const tb = SPLIT * b, bh = tb - (tb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}
/** Range in which Dekker and TwoSum errors are exact doubles (no overflow, no subnormal error terms). */
const LO = 2 ** -900, HI = 2 ** 900;
function safe(x: number): boolean { const y = x < 0 ? -x : x; return y >= LO && y <= HI; }

function ulpOf(z: number): number {
  f64[0] = z;
  const be = (u32x2[1] >>> 20) & 0x7ff;
  return 2 ** ((be || 1) - 1075);
}

/**
 * fma.rn.f64: exact. The double-double sum s + (t + e) is checked: the result is wrong only when the
 * leftover after the last rounding reaches half an ulp, which is decided exactly from error terms; those
 * cases and out-of-range operands take the BigInt path.
 */
export function fma64(a: number, b: number, c: number): number {
  const p = a * b;
  if (!safe(a) || !safe(b) || !safe(p) || (c !== 0 && !safe(c))) {
    if (Number.isFinite(a) && Number.isFinite(b)) {
      if (!Number.isFinite(c)) return c;
      if (a !== 0 && b !== 0) return exactOp(5, a, b, c, 0, false);
    }
    return p + c;
  }
  const e = prodErr(a, b, p);
  const s = p + c;
  const z1 = s - p;
  const t = (p - (s - z1)) + (c - z1);
  // exact = s + t + e
  const w = t + e;
  const w1 = w - t;
  const d = (t - (w - w1)) + (e - w1); // t + e = w + d exactly
  const z = s + w;
  if (d === 0) return z; // exact = s + w, rounded once
  if (z === 0 || !safe(z)) return exactOp(5, a, b, c, 0, false);
  const z2 = z - s;
  const r2 = (s - (z - z2)) + (w - z2); // s + w = z + r2; exact = z + r2 + d
  // r2 and half the spacing around z are multiples of ulp(w), and |d| < ulp(w)/2: z = RN(s + w) is also
  // RN(exact) unless s + w was exactly a tie (|r2| = half the spacing, which is ulp/4 below a power of 2).
  if (r2 === 0) return z;
  const h = ulpOf(z) / 2, ar = r2 < 0 ? -r2 : r2;
  if (ar !== h && ar !== h / 2) return z;
  return exactOp(5, a, b, c, 0, false);
}

/**
 * f64 add/sub/mul/div/sqrt/fma (op 0..5) with directed rounding (mode 1 rz, 2 rm, 3 rp): the round-to-nearest
 * result moved one ulp when the exact error says the true value lies on the other side.
 */
export function drnd(op: number, a: number, b: number, c: number, mode: Mode): number {
  if (mode === 0) return op === 5 ? fma64(a, b, c) : exactOp(op, a, b, c, 0, false);
  let r: number, err: number;
  switch (op) {
    case 0: case 1: {
      if (op === 1) b = -b;
      r = a + b;
      if (!safe(r) || !Number.isFinite(a) || !Number.isFinite(b)) return exactOp(0, a, b, 0, mode, false);
      const z = r - a; err = (a - (r - z)) + (b - z);
      break;
    }
    case 2:
      r = a * b;
      if (!safe(a) || !safe(b) || !safe(r)) return exactOp(2, a, b, 0, mode, false);
      err = prodErr(a, b, r);
      break;
    case 3:
      r = a / b;
      if (!safe(a) || !safe(b) || !safe(r)) return exactOp(3, a, b, 0, mode, false);
      err = fma64(-r, b, a) * (b < 0 ? -1 : 1);
      break;
    case 4:
      r = Math.sqrt(a);
      if (!safe(a)) return exactOp(4, a, 0, 0, mode, false);
      err = fma64(-r, r, a);
      break;
    default:
      return exactOp(5, a, b, c, mode, false);
  }
  return nudge(r, err, mode);
}
function nudge(r: number, err: number, mode: Mode): number {
  if (err === 0) return r;
  const up = mode === 3 || (mode === 1 && r < 0);
  if (up && err > 0) return nextd(r, 1);
  if (!up && err < 0) return nextd(r, -1);
  return r;
}

/** The double next to r toward +inf (dir > 0) or -inf. */
export function nextd(r: number, dir: number): number {
  if (r === 0) return dir > 0 ? 5e-324 : -5e-324;
  f64[0] = r;
  b64[0] += (r > 0) === (dir > 0) ? 1n : -1n;
  return f64[0];
}
function nextf32(r: number, dir: number): number {
  if (r === 0) return dir > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45;
  f32[0] = r;
  i32[0] += (r > 0) === (dir > 0) ? 1 : -1;
  return f32[0];
}

/**
 * Rounds x to f32 in mode, where the exact value is x plus something of sign `err` (0: x is exact) that is
 * smaller than half an f64 ulp of x. f32 values are doubles, so only an x that is itself an f32 (or, to
 * nearest, an f32 midpoint) needs err.
 */
export function frnd32(x: number, mode: number, err = 0): number {
  const r = Math.fround(x);
  if (x !== x) return r;
  if (r === x) {
    if (err === 0 || mode === 0) return r;
    const up = mode === 3 || (mode === 1 && x < 0);
    if (up && err > 0) return nextf32(r, 1);
    if (!up && err < 0) return nextf32(r, -1);
    return r;
  }
  if (mode === 0) {
    if (err === 0) return r;
    // The other neighbour when x is a midpoint (the overflow threshold's is FLT_MAX beside Infinity).
    const o = r === Infinity || r === -Infinity ? (x === OVF || x === -OVF ? (x > 0 ? FLT_MAX : -FLT_MAX) : r) : 2 * x - r;
    if (o === r || Math.fround(o) !== o) return r;
    return (err > 0) === (o > r) ? o : r;
  }
  const down = mode === 2 || (mode === 1 && x > 0);
  if (down && r > x) return nextf32(r, -1);
  if (!down && r < x) return nextf32(r, 1);
  return r;
}

/** fma.rn.f32: the product of two f32 is exact in f64; only a sum landing on an f32 midpoint needs its error. */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = Math.fround(s);
  if (r === s) return r;
  const o = 2 * s - r;
  if (Math.fround(o) !== o) return r;
  return fma32fix(p, c, s, r, o);
}
/**
 * The rare end of fma32 (also reached from the inline form falu.ts emits): s = RN64(p + c) rounded to r, and o
 * = 2s - r is an f32, so s may be an f32 midpoint; the exact error of p + c decides the side.
 */
export function fma32fix(p: number, c: number, s: number, r: number, o: number): number {
  // The other neighbour of the overflow threshold is FLT_MAX, beside Infinity.
  if (r === Infinity || r === -Infinity) o = s === OVF || s === -OVF ? (s > 0 ? FLT_MAX : -FLT_MAX) : r;
  if (o === r || Math.fround(o) !== o) return r;
  const z = s - p;
  const t = (p - (s - z)) + (c - z);
  if (t === 0 || t !== t) return r;
  return (t > 0) === (o > r) ? o : r;
}

/**
 * f32 add/sub/mul/div/sqrt/fma (op 0..5) in mode 0..3 on f32 inputs. The f64 result plus the sign of its
 * exact error (TwoSum, or an exact fma residual) is enough: f64 has more than twice f32's precision.
 */
export function frnd(op: number, a: number, b: number, c: number, mode: number): number {
  let x: number, err = 0;
  switch (op) {
    case 0: case 1: {
      if (op === 1) b = -b;
      x = a + b;
      if (x === 0) return zeroSum(sgn(a), sgn(b), mode as Mode);
      const z = x - a; err = (a - (x - z)) + (b - z);
      break;
    }
    case 2: x = a * b; break;
    case 3:
      x = a / b;
      if (Number.isFinite(x) && x !== 0) err = fma64(-x, b, a) * (b < 0 ? -1 : 1);
      break;
    case 4:
      x = Math.sqrt(a);
      if (Number.isFinite(x) && x !== 0) err = fma64(-x, x, a);
      break;
    default: {
      const p = a * b;
      x = p + c;
      if (x === 0) return zeroSum(sgn(p), sgn(c), mode as Mode);
      const z = x - p; err = (p - (x - z)) + (c - z);
      break;
    }
  }
  if (err !== err) err = 0;
  return frnd32(x, mode, err);
}

/** An integer (BigInt) converted to f32 or f64 in mode: exact, unlike Number(), which rounds to f64 first. */
export function intToFloat(v: bigint, mode: number, single: boolean): number {
  if (v === 0n) return 0;
  const neg = v < 0n;
  const m = neg ? -v : v;
  if (m <= 9007199254740992n) {
    const x = Number(v);
    return single ? frnd32(x, mode) : x;
  }
  return roundTo(neg, m, 0, false, mode as Mode, single ? F32 : F64);
}

/** min.NaN / max.NaN: a NaN operand gives NaN (the plain forms return the other operand). */
export function fminnan(a: number, b: number): number { return a !== a || b !== b ? NaN : a === 0 && b === 0 ? (Object.is(a, -0) ? a : b) : a < b ? a : b; }
export function fmaxnan(a: number, b: number): number { return a !== a || b !== b ? NaN : a === 0 && b === 0 ? (Object.is(a, -0) ? b : a) : a > b ? a : b; }

/** cvt.{f32,f64}.{s64,u64} (x in rt.ts's I64 form: the signed value, a number when safe) in mode. */
export function cvtI64(x: number | bigint, unsigned: boolean, mode: number, single: boolean): number {
  if (typeof x === 'number' && (x >= 0 || !unsigned) && x <= 9007199254740992 && x >= -9007199254740992) {
    return single && mode ? frnd32(x, mode) : single ? Math.fround(x) : x;
  }
  let v = BigInt(x);
  if (unsigned) v = BigInt.asUintN(64, v);
  return intToFloat(v, mode, single);
}

const F16: Fmt = { p: 11, emin: -14, emax: 15 };
const BF16: Fmt = { p: 8, emin: -126, emax: 127 };
/** x rounded in mode to f16 (or bf16) bits; NaN gives the canonical 0x7fff. */
export function toHalf(x: number, mode: number, bf: boolean): number {
  if (x !== x) return 0x7fff;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (bf && mode === 0 && Math.fround(x) === x) {
    f32[0] = x;
    const b = i32[0];
    return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  let v = x;
  if (x !== 0 && Number.isFinite(x)) v = roundTo(sign !== 0, mant(x), expo(x), false, mode as Mode, bf ? BF16 : F16);
  if (bf) { f32[0] = v; return i32[0] >>> 16; }
  const av = v < 0 ? -v : v;
  if (av === Infinity) return sign | 0x7c00;
  if (av < 2 ** -14) return sign | (av / 2 ** -24);
  const E = expo(av) + 52;
  return sign | ((E + 15) << 10) | ((av / 2 ** E - 1) * 1024);
}

/** f32 -> tf32 bits (mode 0 rn, 1 rz, 4 rna: ties away from zero); .satfinite turns infinities into the max. */
export function tf32(x: number, mode: number, satfinite: boolean): number {
  if (x !== x) return 0x7fffffff;
  f32[0] = x;
  let b = i32[0];
  const exp = (b >>> 23) & 0xff;
  if (exp !== 0xff) {
    if (mode === 4) b += 0x1000;
    else if (mode === 0) b += 0xfff + ((b >>> 13) & 1);
  }
  b &= ~0x1fff;
  if (satfinite && ((b >>> 23) & 0xff) === 0xff) b = (b & 0x80000000) | 0x7f7fe000;
  return b | 0;
}
