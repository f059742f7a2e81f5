// Global-memory atomics for a launch split across block workers: other threads write the same shared heap,
// so a read-modify-write must be one Atomics operation (or a compare-exchange loop for what Atomics lacks:
// min/max/inc/dec and float add). Inline launches keep the plain typed-array code; the generated kernel picks
// per launch (E.am), so one compiled kernel serves both.

import * as R from './rt';

/** Atomic operation codes shared by the code generator (memops.ts) and these helpers. */
export const ATOM_OP: Record<string, number> = { add: 0, and: 1, or: 2, xor: 3, exch: 4, cas: 5, min: 6, max: 7, inc: 8, dec: 9 };
const ADD = 0, AND = 1, OR = 2, XOR = 3, EXCH = 4, CAS = 5, MIN = 6, MAX = 7, INC = 8;

function next32(op: number, g: number, b: number, signed: boolean): number {
  switch (op) {
    case MIN: return signed ? Math.min(g, b) | 0 : ((g >>> 0) < (b >>> 0) ? g : b) | 0;
    case MAX: return signed ? Math.max(g, b) | 0 : ((g >>> 0) > (b >>> 0) ? g : b) | 0;
    case INC: return (g >>> 0) >= (b >>> 0) ? 0 : (g + 1) | 0;
    default: return g === 0 || (g >>> 0) > (b >>> 0) ? b | 0 : (g - 1) | 0; // DEC
  }
}

/** 32-bit integer atomic at word `q`; returns the old value. */
export function atomic32(a: Int32Array, op: number, q: number, b: number, c: number, signed: boolean): number {
  switch (op) {
    case ADD: return Atomics.add(a, q, b);
    case AND: return Atomics.and(a, q, b);
    case OR: return Atomics.or(a, q, b);
    case XOR: return Atomics.xor(a, q, b);
    case EXCH: return Atomics.exchange(a, q, b);
    case CAS: return Atomics.compareExchange(a, q, b, c);
  }
  for (;;) {
    const g = Atomics.load(a, q);
    if (Atomics.compareExchange(a, q, g, next32(op, g, b, signed)) === g) return g;
  }
}

const f32 = new Float32Array(1), f32bits = new Int32Array(f32.buffer);
const f64 = new Float64Array(1), f64bits = new BigInt64Array(f64.buffer);

function nextF(op: number, g: number, b: number, single: boolean): number {
  switch (op) {
    case ADD: return single ? Math.fround(g + b) : g + b;
    case MIN: return R.fmin(g, b);
    case MAX: return R.fmax(g, b);
    default: return b; // EXCH
  }
}

/** f32 or f64 atomic at byte offset `t` (add, exch, min, max) by compare-exchange on the bits; returns the old value. */
export function atomicFloat(i32: Int32Array, i64: BigInt64Array, op: number, t: number, b: number, double: boolean): number {
  if (!double) {
    const q = t >>> 2;
    for (;;) {
      const old = Atomics.load(i32, q);
      f32bits[0] = old;
      const g = f32[0];
      f32[0] = nextF(op, g, b, true);
      if (Atomics.compareExchange(i32, q, old, f32bits[0]) === old) return g;
    }
  }
  const q = t >>> 3;
  for (;;) {
    const old = Atomics.load(i64, q);
    f64bits[0] = old;
    const g = f64[0];
    f64[0] = nextF(op, g, b, false);
    if (Atomics.compareExchange(i64, q, old, f64bits[0]) === old) return g;
  }
}

function next64(op: number, g: R.I64, b: R.I64, c: R.I64, signed: boolean): R.I64 {
  switch (op) {
    case ADD: return R.add64(g, b);
    case AND: return R.and64(g, b);
    case OR: return R.or64(g, b);
    case XOR: return R.xor64(g, b);
    case EXCH: return b;
    case CAS: return R.eq64(g, b) ? c : g;
    case MIN: return R.min64(g, b, signed);
    case MAX: return R.max64(g, b, signed);
    case INC: return !R.lt64(g, b, false) ? 0 : R.add64(g, 1);
    default: return R.eq64(g, 0) || R.lt64(b, g, false) ? b : R.sub64(g, 1); // DEC
  }
}

/** 64-bit integer atomic at byte offset `t` (8-aligned); returns the old value in the emulator's I64 form. */
export function atomic64(i64: BigInt64Array, op: number, t: number, b: R.I64, c: R.I64, signed: boolean): R.I64 {
  const q = t >>> 3;
  for (;;) {
    const old = Atomics.load(i64, q);
    const g = R.pack64(Number(BigInt.asIntN(32, old)), Number(old >> 32n));
    const nv = next64(op, g, b, c, signed);
    if (Atomics.compareExchange(i64, q, old, BigInt.asIntN(64, BigInt(nv))) === old) return g;
  }
}
