// Tensor-core warp matrix ops: wmma.load/store/mma (m16n16k16, m32n8k16, m8n32k16 with f16/bf16/u8/s8 inputs;
// m16n16k8 tf32; m8n8k4 f64; f32/f16/s32/f64 accumulators) and mma.sync.aligned m16n8k16 / m16n8k8 (f16 or
// bf16 inputs, PTX ISA fragment layouts).
//
// An mma needs every lane's fragments. Each lane deposits its fragment registers in a per-warp scratch (on the
// launch environment, keyed by CTA and warp so interleaved cooperative CTAs do not collide), then waits at a
// warp sync (syncops.ts); on resume it computes its own output elements from all lanes' deposits. The scratch
// is double-buffered by a per-lane count of mmas: a lane can run ahead into the next mma only after every lane
// has deposited for it, so after every lane has read the previous one.
//
// wmma fragments are opaque to programs (only element-wise access is portable), so their layout is ours:
// element e of lane l is element (l * count + e) mod size of the matrix in row-major order (A: M x K, B:
// K x N, accumulators M x N); fragments larger than a 32nd of the matrix hold copies. Float products are exact
// and summed in f64, then rounded once (the hardware's accumulation order is unspecified); f64 uses a chain
// of fmas; integers are exact (s32, wrapping or .satfinite).

import { Instr, Operand } from './ir';
import type { FnGen } from './codegen';
import { UnsupportedError } from './values';
import type { HeapViews } from './memory';
import { fma64 } from './fpexact';

// Element types.
const F16 = 0, BF16 = 1, U8 = 2, S8 = 3, TF32 = 4, F64 = 5, F32 = 6, S32 = 7;
const ET: Record<string, number> = { f16: F16, bf16: BF16, u8: U8, s8: S8, tf32: TF32, f64: F64, f32: F32, s32: S32 };
const PER_REG = [2, 2, 4, 4, 1, 1, 1, 1];
const BYTES = [2, 2, 1, 1, 4, 8, 4, 4];
const REG_TYPE = ['b32', 'b32', 'b32', 'b32', 'b32', 'f64', 'f32', 's32'];
/** Scratch slots per lane: A registers from 0, B from 16, C from 32. */
const SLOTS = 48;

function elems(o: Operand): Operand[] {
  if (o.k !== 'vec') throw new UnsupportedError('expected a register vector');
  return o.elems;
}

function shapeOf(p: string[]): [number, number, number] | null {
  const sh = p.find((q) => /^m\d+n\d+k\d+$/.test(q));
  if (!sh) return null;
  const [, m, n, k] = /^m(\d+)n(\d+)k(\d+)$/.exec(sh) as RegExpExecArray;
  return [Number(m), Number(n), Number(k)];
}
const WMMA_SHAPES = new Set(['16,16,16', '32,8,16', '8,32,16', '16,16,8', '8,8,4']);

// --- emission ----------------------------------------------------------------------------------------

/** wmma.load.{a,b,c} / wmma.store.d: each lane moves its own elements; no exchange needed. */
export function emitWmmaMem(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const load = p[1] === 'load';
  const shape = shapeOf(p);
  if (!shape || !WMMA_SHAPES.has(shape.join(','))) throw new UnsupportedError(`'${ins.op}': shape not supported`);
  const [M, N, K] = shape;
  const et = ET[p[p.length - 1]];
  if (et === undefined) throw new UnsupportedError(`'${ins.op}': element type not supported`);
  const frag = p[2];
  const [rows, cols] = frag === 'a' ? [M, K] : frag === 'b' ? [K, N] : [M, N];
  const col = p.includes('col');
  const space = p.includes('shared') ? 'shared' : p.includes('global') ? 'global' : 'generic';
  const [fragOp, addrOp, strideOp] = load ? [ins.args[0], ins.args[1], ins.args[2]] : [ins.args[1], ins.args[0], ins.args[2]];
  const regs = elems(fragOp);
  const cnt = regs.length * PER_REG[et];
  if (cnt * 32 < rows * cols || regs.length > 16) throw new UnsupportedError(`'${ins.op}': ${regs.length} registers cannot hold the fragment`);
  if (addrOp.k !== 'addr') throw new UnsupportedError('expected an address operand');
  const base = addrOp.base === null ? String(addrOp.off) : `${addrOp.base.startsWith('%') ? g.reg(addrOp.base) : g.symExpr(addrOp.base)} + ${addrOp.off}`;
  const stride = strideOp ? g.rd(strideOp, 'u32') : String(col ? rows : cols);
  // Generic addresses inside the shared window are shared offsets; everything else is global.
  const inSh = '(g >= SHW && g < SHW + 4294967296)';
  const sh = space === 'shared' ? 'true' : space === 'global' ? 'false' : inSh;
  const at = space === 'generic' ? `(${inSh} ? g - SHW : g)` : 'g';
  const call = `g = ${base}; R.wmmaMem(E, ${sh}, ${at}, ${stride}, S.lane, ${rows}, ${cols}, ${cnt}, ${et}, ${col}, ${load})`;
  const rt = REG_TYPE[et];
  if (load) return `${call}; ${regs.map((r, k) => g.wr(r, rt, `R.MO[${k}]`)).join(' ')}`;
  return `${regs.map((r, k) => `R.MO[${k}] = ${g.rd(r, rt)};`).join(' ')} ${call};`;
}

export interface MmaSync { set: string; resume: string }

const WKEY = '((E.cz * NCY + E.cy) * NCX + E.cx) * NWARP + (S.lin >>> 5)';

/** wmma.mma / mma.sync: deposit (before the warp sync; the caller adds it) and compute (on resume). */
export function emitMmaSync(g: FnGen, ins: Instr): MmaSync {
  const p = ins.parts;
  const [d, a, b, c] = ins.args.map(elems);
  const shape = shapeOf(p);
  if (!shape) throw new UnsupportedError(`'${ins.op}': no shape`);
  const [M, N, K] = shape;
  let kind: number, at: number, ct: number, dt: number;
  const types = p.filter((q) => q in ET);
  if (p[0] === 'wmma') {
    if (!WMMA_SHAPES.has(shape.join(','))) throw new UnsupportedError(`'${ins.op}': shape not supported`);
    // .dtype.ctype (f16 inputs implied) or .dtype.atype.btype.ctype
    kind = 0;
    dt = ET[types[0]];
    ct = ET[types[types.length - 1]];
    at = types.length === 4 ? ET[types[1]] : F16;
    if (types.length === 4 && types[1] !== types[2]) throw new UnsupportedError(`'${ins.op}': mixed input types`);
  } else {
    // mma.sync.aligned.m16n8k{16,8}.row.col.dtype.atype.btype.ctype
    kind = K === 16 ? 1 : 2;
    if (M !== 16 || N !== 8 || (K !== 16 && K !== 8) || types.length !== 4 || types[1] !== types[2] || !p.includes('row') || !p.includes('col')) {
      throw new UnsupportedError(`'${ins.op}': only m16n8k16 / m16n8k8 .row.col are supported`);
    }
    [dt, at, , ct] = types.map((t) => ET[t]);
    if (at !== F16 && at !== BF16) throw new UnsupportedError(`'${ins.op}': only f16 and bf16 inputs are supported`);
  }
  const acc = (t: number): boolean => t === F32 || t === F16 || t === S32 || t === F64;
  if (!acc(dt) || !acc(ct) || (at === F64) !== (dt === F64) || ((at === U8 || at === S8) !== (dt === S32))) {
    throw new UnsupportedError(`'${ins.op}' is not supported`);
  }
  const mw = g.local('mw');
  const put = (ops: Operand[], slot: number, type: string): string =>
    ops.map((o, k) => `${mw}.f[q + ${slot + k}] = ${g.rd(o, type)};`).join(' ');
  const set = `${mw} = R.mmaWarp(E, ${WKEY}); q = ((${mw}.n[S.lane] & 1) * 32 + S.lane) * ${SLOTS}; ` +
    `${put(a, 0, REG_TYPE[at])} ${put(b, 16, REG_TYPE[at])} ${put(c, 32, REG_TYPE[ct])}`;
  const sat = p.includes('satfinite');
  const cnts = `${a.length * PER_REG[at]}, ${b.length * PER_REG[at]}, ${c.length * PER_REG[ct]}`;
  const resume = `R.mmaRun(E, ${WKEY}, S.lane, ${kind}, ${M}, ${N}, ${K}, ${at}, ${ct}, ${dt}, ${cnts}, ${sat}); ` +
    d.map((r, k) => g.wr(r, REG_TYPE[dt], `R.MO[${k}]`)).join(' ');
  return { set, resume };
}

/**
 * ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared{::cta}.b16: lanes 8i..8i+7 give the row addresses of
 * matrix i; lane t receives, per matrix, the two halves of row t/4 at column 2(t%4) (.trans: of column t/4 at
 * rows 2(t%4), 2(t%4)+1). The first lane to resume reads all rows for the warp, so every lane sees shared
 * memory as it was at the instruction.
 */
export function emitLdmatrix(g: FnGen, ins: Instr): MmaSync {
  const p = ins.parts;
  const num = p.includes('x4') ? 4 : p.includes('x2') ? 2 : 1;
  if (!p.includes('m8n8') || !p.includes('b16')) throw new UnsupportedError(`'${ins.op}' is not supported`);
  const d = elems(ins.args[0]);
  if (d.length !== num) throw new UnsupportedError(`'${ins.op}': expected ${num} registers`);
  const o = ins.args[1];
  if (o.k !== 'addr') throw new UnsupportedError('expected an address operand');
  const base = o.base === null ? String(o.off) : `${o.base.startsWith('%') ? g.reg(o.base) : g.symExpr(o.base)} + ${o.off}`;
  const shared = p.some((q) => q.startsWith('shared'));
  // Generic addresses must point into the shared window.
  const off = shared ? `(${base})` : `((g = ${base}) >= SHW && g < SHW + 4294967296 ? g - SHW : -1)`;
  const mw = g.local('mw');
  const set = `${mw} = R.mmaWarp(E, ${WKEY}); ${mw}.f[((${mw}.n[S.lane] & 1) * 32 + S.lane) * ${SLOTS}] = ${off};`;
  const resume = `R.ldmatrixRun(E, ${WKEY}, S.lane, ${num}, ${p.includes('trans')}, SH_U16, SL); ` +
    d.map((r, k) => g.wr(r, 'b32', `R.MO[${k}]`)).join(' ');
  return { set, resume };
}

// --- runtime (re-exported through rt.ts as R.*) -----------------------------------------------------

/** Fragment registers in/out of the runtime helpers. */
export const MO = new Float64Array(16);

export interface Warp { f: Float64Array; n: Int32Array; gen: Float64Array }
interface MmaEnv { mmaW?: Map<number, Warp> }

/** The warp's scratch: f holds [mma parity][lane][SLOTS], n each lane's mma count. */
export function mmaWarp(E: MmaEnv, key: number): Warp {
  let m = E.mmaW;
  if (!m) m = E.mmaW = new Map();
  let w = m.get(key);
  if (!w) { w = { f: new Float64Array(2 * 32 * SLOTS), n: new Int32Array(32), gen: new Float64Array([-1, -1]) }; m.set(key, w); }
  return w;
}

const FB = new Float32Array(1);
const IB = new Int32Array(FB.buffer);
function h2f(bits: number, bf: boolean): number {
  bits &= 0xffff;
  if (bf) { IB[0] = bits << 16; return FB[0]; }
  const s = bits & 0x8000 ? -1 : 1, e = (bits >>> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** A double to f16 bits, round to nearest even (f16 accumulators). */
function f2h(x: number): number {
  if (x !== x) return 0x7fff;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) { const q = a / 2 ** -24; let r = Math.round(q); if (r - q === 0.5 && r & 1) r--; return sign | r; }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; else if (2 ** (e + 1) <= a) e++;
  const q = (a / 2 ** e - 1) * 1024;
  let r = Math.round(q);
  if (r - q === 0.5 && r & 1) r--;
  if (r === 1024) { r = 0; e++; }
  return sign | ((e + 15) << 10) | r;
}

/** Element `sub` of a register holding elements of type et, as a number. */
function decode(et: number, v: number, sub: number): number {
  switch (et) {
    case F16: return h2f(v >>> (16 * sub), false);
    case BF16: return h2f(v >>> (16 * sub), true);
    case U8: return (v >>> (8 * sub)) & 255;
    case S8: return (v << (24 - 8 * sub)) >> 24;
    case TF32: IB[0] = v & 0xffffe000; return FB[0]; // tf32 keeps 10 mantissa bits
    default: return v;
  }
}
/** Element e of a fragment of type et that starts at slot `at` of lane `lane`. */
function fragElem(f: Float64Array, base: number, lane: number, at: number, et: number, e: number): number {
  const per = PER_REG[et];
  return decode(et, f[base + lane * SLOTS + at + ((e / per) | 0)], e % per);
}

/** A[r][k] (which 0) or B[k][n] (which 1) in an mma.sync fragment (PTX ISA layouts). */
function syncElem(f: Float64Array, base: number, kind: number, et: number, which: number, i: number, j: number): number {
  if (which === 0) {
    // A: rows g and g+8 per group of four lanes, k pairs per thread in group, second k half in registers 2-3.
    const lane = (i & 7) * 4 + ((j & 7) >> 1);
    const reg = (i >> 3) + (kind === 1 ? 2 * (j >> 3) : 0);
    return decode(et, f[base + lane * SLOTS + reg], j & 1);
  }
  // B: column g, k pairs per thread in group, second k half in register 1.
  const lane = j * 4 + ((i & 7) >> 1);
  const reg = kind === 1 ? i >> 3 : 0;
  return decode(et, f[base + lane * SLOTS + 16 + reg], i & 1);
}

/** Computes the lane's output fragment into MO and advances its mma count. kind 0 wmma, 1/2 mma.sync k16/k8. */
export function mmaRun(E: MmaEnv, key: number, lane: number, kind: number, M: number, N: number, K: number, at: number,
  ct: number, dt: number, ca: number, cb: number, cc: number, sat: boolean): void {
  const w = mmaWarp(E, key);
  const base = (w.n[lane] & 1) * 32 * SLOTS;
  w.n[lane]++;
  const f = w.f;
  const out = kind === 0 ? cc : 4;
  for (let e = 0; e < out; e++) {
    let r: number, n: number;
    if (kind === 0) { const idx = (lane * cc + e) % (M * N); r = (idx / N) | 0; n = idx % N; }
    else { r = (lane >> 2) + (e >> 1) * 8; n = (lane & 3) * 2 + (e & 1); }
    let acc = fragElem(f, base, lane, 32, ct, e);
    for (let k = 0; k < K; k++) {
      let x: number, y: number;
      if (kind === 0) {
        const ia = r * K + k, ib = k * N + n;
        x = fragElem(f, base, ((ia / ca) | 0) % 32, 0, at, ia % ca);
        y = fragElem(f, base, ((ib / cb) | 0) % 32, 16, at, ib % cb);
      } else {
        x = syncElem(f, base, kind, at, 0, r, k);
        y = syncElem(f, base, kind, at, 1, k, n);
      }
      acc = at === F64 ? fma64(x, y, acc) : acc + x * y;
    }
    MO[e] = dt === F32 ? Math.fround(acc) : dt === S32 ? (sat ? Math.max(-2147483648, Math.min(2147483647, acc)) | 0 : Number(BigInt.asIntN(32, BigInt(acc)))) : acc;
  }
  if (dt === F16) {
    for (let e = 0; e < out / 2; e++) MO[e] = (f2h(MO[2 * e]) | (f2h(MO[2 * e + 1]) << 16)) | 0;
  }
}

interface MemEnv { hb: number; hl: number; pg: Uint8Array; g: HeapViews; sh: HeapViews; sl: number;
  gfault(addr: number, size: number): never; sfault(off: number, size: number): never }

/**
 * wmma.load (MO <- memory) / wmma.store (MO -> memory) of the lane's cnt elements of a rows x cols matrix;
 * shared: addr is the offset in the CTA's shared memory, else a global address. Each element is bounds- and
 * alignment-checked.
 */
export function wmmaMem(E: MemEnv, shared: boolean, addr: number, stride: number, lane: number, rows: number, cols: number,
  cnt: number, et: number, col: boolean, load: boolean): void {
  const V = shared ? E.sh : E.g;
  const es = BYTES[et], per = PER_REG[et];
  if (per > 1 && load) MO.fill(0);
  for (let e = 0; e < cnt; e++) {
    const idx = (lane * cnt + e) % (rows * cols);
    const i = (idx / cols) | 0, j = idx % cols;
    const a = addr + (col ? j * stride + i : i * stride + j) * es;
    let t: number;
    if (shared) {
      t = a;
      if (!(t >= 0 && t + es <= E.sl && (t & (es - 1)) === 0)) E.sfault(t, es);
    } else {
      t = a - E.hb;
      if (!(t >= 0 && t + es <= E.hl && E.pg[t >>> 8] === 1 && (t & (es - 1)) === 0)) E.gfault(a, es);
    }
    const reg = (e / per) | 0, sub = e % per;
    if (load) {
      switch (es) {
        case 1: MO[reg] = (MO[reg] | (V.u8[t] << (8 * sub))) | 0; break;
        case 2: MO[reg] = (MO[reg] | (V.u16[t >>> 1] << (16 * sub))) | 0; break;
        case 4: MO[reg] = et === F32 ? V.f32[t >>> 2] : V.i32[t >>> 2]; break;
        default: MO[reg] = V.f64[t >>> 3];
      }
    } else {
      switch (es) {
        case 1: V.u8[t] = MO[reg] >>> (8 * sub); break;
        case 2: V.u16[t >>> 1] = MO[reg] >>> (16 * sub); break;
        case 4: if (et === F32) V.f32[t >>> 2] = MO[reg]; else V.i32[t >>> 2] = MO[reg]; break;
        default: V.f64[t >>> 3] = MO[reg];
      }
    }
  }
}

interface SharedFault { sfault(off: number, size: number): never }
/** The lane's ldmatrix registers into MO (the first lane of the warp to resume gathers for all). */
export function ldmatrixRun(E: MmaEnv & SharedFault, key: number, lane: number, num: number, trans: boolean, SH: Uint16Array, SL: number): void {
  const w = mmaWarp(E, key);
  const gen = w.n[lane]++;
  const par = gen & 1;
  const base = par * 32 * SLOTS;
  const f = w.f;
  if (w.gen[par] !== gen) {
    w.gen[par] = gen;
    for (let i = 0; i < num; i++) {
      for (let r = 0; r < 8; r++) {
        const a = f[base + (8 * i + r) * SLOTS];
        if (!(a >= 0 && a + 16 <= SL && (a & 15) === 0)) E.sfault(a, 16);
      }
      for (let t = 0; t < 32; t++) {
        let v: number;
        if (!trans) {
          const a = f[base + (8 * i + (t >> 2)) * SLOTS] + 4 * (t & 3);
          v = SH[a >>> 1] | (SH[(a >>> 1) + 1] << 16);
        } else {
          const a0 = f[base + (8 * i + 2 * (t & 3)) * SLOTS] + 2 * (t >> 2);
          const a1 = f[base + (8 * i + 2 * (t & 3) + 1) * SLOTS] + 2 * (t >> 2);
          v = SH[a0 >>> 1] | (SH[a1 >>> 1] << 16);
        }
        f[base + t * SLOTS + 40 + i] = v | 0;
      }
    }
  }
  for (let i = 0; i < num; i++) MO[i] = f[base + lane * SLOTS + 40 + i];
}
