// Tensor-core warp matrix ops: wmma.load/store/mma (m16n16k16; f16 or bf16 inputs, f32 or f16 accumulators)
// and mma.sync.aligned m16n8k16 / m16n8k8 (f16 or bf16 inputs; PTX ISA fragment layouts).
//
// An mma needs every lane's fragments. Each lane deposits its fragment registers in a per-warp scratch (on the
// launch environment, keyed by CTA and warp so interleaved cooperative CTAs do not collide), then waits at a
// warp sync (syncops.ts); on resume it computes its own output elements from all lanes' deposits. The scratch
// is double-buffered by a per-lane count of mmas: a lane can run ahead into the next mma only after every lane
// has deposited for it, so after every lane has read the previous one.
//
// wmma fragments are opaque to programs (only element-wise access is portable), so their layout is ours:
// f16 A: lane l holds row l&15 (16 halves in 8 registers; lanes 16-31 repeat 0-15); f16 B: column l&15;
// bf16 A (4 registers): row l>>1, k from (l&1)*8; bf16 B: column l>>1; accumulator: row l>>1, columns from
// (l&1)*8. Products are exact and summed in f64, then rounded once (the hardware's internal accumulation
// order is unspecified).

import { Instr, Operand } from './ir';
import type { FnGen } from './codegen';
import { UnsupportedError } from './values';
import type { HeapViews } from './memory';

// Fragment kinds.
const A16 = 0, B16 = 1, ABF = 2, BBF = 3, C32 = 4, C16 = 5;
const REGS = [8, 8, 4, 4, 8, 4];

function elems(o: Operand): Operand[] {
  if (o.k !== 'vec') throw new UnsupportedError('expected a register vector');
  return o.elems;
}

/** (row, col) of slot e of a wmma fragment kind held by lane l (row = first index: A r, B k, C r). */
function wmmaCoord(kind: number, l: number, e: number): [number, number] {
  switch (kind) {
    case A16: return [l & 15, e];
    case B16: return [e, l & 15];
    case ABF: return [l >> 1, (l & 1) * 8 + e];
    case BBF: return [(l & 1) * 8 + e, l >> 1];
    default: return [l >> 1, (l & 1) * 8 + e];
  }
}

// --- emission ----------------------------------------------------------------------------------------

function kindOf(frag: string, type: string): number {
  if (frag === 'a') return type === 'bf16' ? ABF : type === 'f16' ? A16 : -1;
  if (frag === 'b') return type === 'bf16' ? BBF : type === 'f16' ? B16 : -1;
  return type === 'f32' ? C32 : type === 'f16' ? C16 : -1;
}

/** wmma.load.{a,b,c} / wmma.store.d: each lane moves its own elements; no exchange needed. */
export function emitWmmaMem(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const load = p[1] === 'load';
  if (!p.includes('m16n16k16')) throw new UnsupportedError(`'${ins.op}': only the m16n16k16 shape is supported`);
  const type = p[p.length - 1];
  const kind = kindOf(p[2], type);
  if (kind < 0) throw new UnsupportedError(`'${ins.op}': .${type} fragments are not supported`);
  const col = p.includes('col');
  const space = p.includes('shared') ? 'shared' : p.includes('global') ? 'global' : 'generic';
  const [fragOp, addrOp, strideOp] = load ? [ins.args[0], ins.args[1], ins.args[2]] : [ins.args[1], ins.args[0], ins.args[2]];
  const regs = elems(fragOp);
  if (regs.length !== REGS[kind]) throw new UnsupportedError(`'${ins.op}': expected ${REGS[kind]} registers`);
  if (addrOp.k !== 'addr') throw new UnsupportedError('expected an address operand');
  const base = addrOp.base === null ? String(addrOp.off) : `${addrOp.base.startsWith('%') ? g.reg(addrOp.base) : g.symExpr(addrOp.base)} + ${addrOp.off}`;
  const stride = strideOp ? g.rd(strideOp, 'u32') : '16';
  const es = type === 'f32' ? 4 : 2;
  const regType = kind === C32 ? 'f32' : 'b32';
  // Generic addresses inside the shared window are shared offsets; everything else is global.
  const inSh = '(g >= SHW && g < SHW + 4294967296)';
  const sh = space === 'shared' ? 'true' : space === 'global' ? 'false' : inSh;
  const at = space === 'generic' ? `(${inSh} ? g - SHW : g)` : 'g';
  const call = `g = ${base}; R.wmmaMem(E, ${sh}, ${at}, ${stride}, S.lane, ${kind}, ${col}, ${es}, ${load})`;
  if (load) return `${call}; ${regs.map((r, k) => g.wr(r, regType, `R.MO[${k}]`)).join(' ')}`;
  return `${regs.map((r, k) => `R.MO[${k}] = ${g.rd(r, regType)};`).join(' ')} ${call};`;
}

export interface MmaSync { set: string; resume: string }

const WKEY = '((E.cz * NCY + E.cy) * NCX + E.cx) * NWARP + (S.lin >>> 5)';

/** wmma.mma / mma.sync: deposit (before the warp sync) and compute (on resume). */
export function emitMmaSync(g: FnGen, ins: Instr): MmaSync {
  const p = ins.parts;
  const [d, a, b, c] = ins.args.map(elems);
  let shape: number, ka: number, kb: number, kc: number, kd: number;
  if (p[0] === 'wmma') {
    if (!p.includes('m16n16k16')) throw new UnsupportedError(`'${ins.op}': only the m16n16k16 shape is supported`);
    // wmma.mma.sync.aligned.alayout.blayout.m16n16k16{.dtype.ctype | .f32.bf16.bf16.f32}
    const bf = p.includes('bf16');
    const dt = bf ? p[p.length - 4] : p[p.length - 2], ct = p[p.length - 1];
    shape = 0; ka = bf ? ABF : A16; kb = bf ? BBF : B16;
    kc = ct === 'f32' ? C32 : ct === 'f16' ? C16 : -1;
    kd = dt === 'f32' ? C32 : dt === 'f16' ? C16 : -1;
    if (p.some((q) => q === 'satfinite') || kc < 0 || kd < 0) throw new UnsupportedError(`'${ins.op}' is not supported`);
  } else {
    // mma.sync.aligned.m16n8k{16,8}.row.col.dtype.atype.btype.ctype
    const k16 = p.includes('m16n8k16');
    if (!k16 && !p.includes('m16n8k8')) throw new UnsupportedError(`'${ins.op}': only m16n8k16 and m16n8k8 are supported`);
    const [dt, at, bt, ct] = p.slice(-4);
    if (at !== bt || (at !== 'f16' && at !== 'bf16') || !p.includes('row') || !p.includes('col') || p.includes('satfinite')) {
      throw new UnsupportedError(`'${ins.op}' is not supported`);
    }
    if ((dt !== 'f32' && dt !== 'f16') || (ct !== 'f32' && ct !== 'f16')) throw new UnsupportedError(`'${ins.op}' is not supported`);
    shape = k16 ? 1 : 2; ka = at === 'bf16' ? 1 : 0; kb = ka;
    kc = ct === 'f32' ? C32 : C16; kd = dt === 'f32' ? C32 : C16;
  }
  const mw = g.local('mw');
  const put = (ops: Operand[], slot: number, type: string): string =>
    ops.map((o, k) => `${mw}.f[q + ${slot + k}] = ${g.rd(o, type)};`).join(' ');
  // The caller adds the warp sync.
  const set = `${mw} = R.mmaWarp(E, ${WKEY}); q = ((${mw}.n[S.lane] & 1) * 32 + S.lane) * 32; ${put(a, 0, 'b32')} ${put(b, 8, 'b32')} ` +
    `${put(c, 16, kc === C32 ? 'f32' : 'b32')}`;
  const dType = kd === C32 ? 'f32' : 'b32';
  const resume = `R.mmaRun(E, ${WKEY}, S.lane, ${shape}, ${ka}, ${kb}, ${kc}, ${kd}); ${d.map((r, k) => g.wr(r, dType, `R.MO[${k}]`)).join(' ')}`;
  return { set, resume };
}

// --- runtime (re-exported through rt.ts as R.*) -----------------------------------------------------

/** Fragment values in/out of the runtime helpers (at most 8 registers). */
export const MO = new Float64Array(8);
export interface Warp { f: Float64Array; n: Int32Array }
interface MmaEnv { mmaW?: Map<number, Warp> }

/** The warp's scratch: f holds [mma parity][lane][32 slots], n each lane's mma count. */
export function mmaWarp(E: MmaEnv, key: number): Warp {
  let m = E.mmaW;
  if (!m) m = E.mmaW = new Map();
  let w = m.get(key);
  if (!w) { w = { f: new Float64Array(2 * 32 * 32), n: new Int32Array(32) }; m.set(key, w); }
  return w;
}

function h2f(bits: number, bf: boolean): number {
  bits &= 0xffff;
  if (bf) { B32[0] = bits << 16; return F32[0]; }
  const s = bits & 0x8000 ? -1 : 1, e = (bits >>> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
const F32 = new Float32Array(1);
const B32 = new Int32Array(F32.buffer);
function f2h(x: number): number {
  // f32 -> f16 bits, round to nearest even (accumulators stored as f16).
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

function slot(f: Float64Array, base: number, lane: number, reg: number, hi: number): number {
  const bits = f[base + lane * 32 + reg];
  return hi ? (bits >>> 16) : bits;
}

/** Input element A[r][k] (which 0) or B[k][n] (which 1) from the deposits. */
function elem(f: Float64Array, base: number, shape: number, kind: number, which: number, i: number, j: number): number {
  let lane: number, reg: number;
  if (shape === 0) {
    // wmma: find the lane and slot that hold (i, j) in our layout.
    switch (kind) {
      case A16: lane = i; reg = j >> 1; break;
      case B16: lane = j; reg = i >> 1; break;
      case ABF: lane = i * 2 + (j >> 3); reg = (j & 7) >> 1; break;
      default: lane = j * 2 + (i >> 3); reg = (i & 7) >> 1; break; // BBF
    }
    const hi = which === 0 ? j & 1 : i & 1;
    return h2f(slot(f, base, lane, which === 0 ? reg : 8 + reg, hi), kind === ABF || kind === BBF);
  }
  const bf = kind === 1;
  if (which === 0) {
    // A (16 x K), row-major fragment: rows g and g+8, k pairs per thread-in-group, second k half in regs 2-3.
    const r = i, k = j;
    lane = (r & 7) * 4 + ((k & 7) >> 1);
    reg = (r >> 3) + (shape === 1 ? 2 * (k >> 3) : 0);
    return h2f(slot(f, base, lane, reg, k & 1), bf);
  }
  // B (K x 8), column fragment: column g, k pairs per thread-in-group, second k half in reg 1.
  const k = i, n = j;
  lane = n * 4 + ((k & 7) >> 1);
  reg = shape === 1 ? k >> 3 : 0;
  return h2f(slot(f, base, lane, 8 + reg, k & 1), bf);
}

/** Computes the lane's output fragment into MO and advances its mma count. */
export function mmaRun(E: MmaEnv, key: number, lane: number, shape: number, ka: number, kb: number, kc: number, kd: number): void {
  const w = mmaWarp(E, key);
  const base = (w.n[lane] & 1) * 32 * 32;
  w.n[lane]++;
  const f = w.f;
  const K = shape === 2 ? 8 : 16;
  const out = shape === 0 ? 8 : 4;
  const own = base + lane * 32 + 16;
  for (let e = 0; e < out; e++) {
    let r: number, n: number;
    if (shape === 0) [r, n] = wmmaCoord(C32, lane, e);
    else { r = (lane >> 2) + (e >> 1) * 8; n = (lane & 3) * 2 + (e & 1); }
    let acc = kc === C32 ? f[own + e] : h2f(slot(f, base, lane, 16 + (e >> 1), e & 1), false);
    for (let k = 0; k < K; k++) acc += elem(f, base, shape, ka, 0, r, k) * elem(f, base, shape, kb, 1, k, n);
    MO[e] = Math.fround(acc);
  }
  if (kd === C16) {
    for (let e = 0; e < out / 2; e++) MO[e] = (f2h(MO[2 * e]) | (f2h(MO[2 * e + 1]) << 16)) | 0;
  }
}

interface MemEnv { hb: number; hl: number; pg: Uint8Array; g: HeapViews; sh: HeapViews; sl: number;
  gfault(addr: number, size: number): never; sfault(off: number, size: number): never }

/**
 * wmma.load (MO <- memory) / wmma.store (MO -> memory) of the lane's elements; shared: addr is the offset in
 * the CTA's shared memory, else a global address. Each element is bounds- and alignment-checked.
 */
export function wmmaMem(E: MemEnv, shared: boolean, addr: number, stride: number, lane: number, kind: number,
  col: boolean, es: number, load: boolean): void {
  const n = kind === A16 || kind === B16 ? 16 : 8;
  const V = shared ? E.sh : E.g;
  if (kind !== C32 && load) MO.fill(0);
  for (let e = 0; e < n; e++) {
    const [i, j] = wmmaCoord(kind, lane, e);
    const a = addr + (col ? j * stride + i : i * stride + j) * es;
    let t: number;
    if (shared) {
      t = a;
      if (!(t >= 0 && t + es <= E.sl && (t & (es - 1)) === 0)) E.sfault(t, es);
    } else {
      t = a - E.hb;
      if (!(t >= 0 && t + es <= E.hl && E.pg[t >>> 8] === 1 && (t & (es - 1)) === 0)) E.gfault(a, es);
    }
    if (kind === C32) {
      if (load) MO[e] = V.f32[t >>> 2]; else V.f32[t >>> 2] = MO[e];
    } else {
      const reg = e >> 1, hi = e & 1;
      if (load) MO[reg] = (MO[reg] | (V.u16[t >>> 1] << (hi * 16))) | 0;
      else V.u16[t >>> 1] = hi ? MO[reg] >>> 16 : MO[reg] & 0xffff;
    }
  }
}
