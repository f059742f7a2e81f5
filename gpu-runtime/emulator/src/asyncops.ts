// cp.async, mbarrier and wmma.load/store (mma.ts) -> JS. cp.async copies at issue time: a program may only read the destination after
// cp.async.wait_group / wait_all or an mbarrier wait, and the copy is done long before either, so the
// synchronous copy is exact and the commit/wait instructions are no-ops. mbarrier objects live in shared
// memory in a layout of our own (see the runtime below); the program only touches them through mbarrier
// instructions. cp.async.bulk likewise copies at issue and pays its bytes to the mbarrier at once. The waits (test_wait/try_wait) are sync points in
// syncops.ts: a wait whose phase is not complete yields to the CTA's other threads.

import { Instr, Operand } from './ir';
import type { FnGen } from './codegen';
import { UnsupportedError } from './values';
import { emitWmmaMem } from './mma';
import type { HeapViews } from './memory';

/** A 64-bit shared address expression for an [addr] operand, and whether it is generic. */
function addr(g: FnGen, o: Operand): string {
  if (o.k !== 'addr') throw new UnsupportedError('expected an address operand');
  if (o.base === null) return String(o.off);
  const base = o.base.startsWith('%') ? g.reg(o.base) : g.symExpr(o.base);
  return o.off ? `(${base} + ${o.off})` : base;
}

/** Statement that leaves the shared-memory byte offset of the operand in t (faulting if outside). */
function sharedOffset(g: FnGen, ins: Instr, o: Operand, size: number): string {
  const generic = !ins.parts.some((q) => q.startsWith('shared'));
  const a = addr(g, o);
  const conv = generic
    ? `g = ${a}; if (!(g >= SHW && g < SHW + 4294967296)) E.gfault(g, ${size}); t = g - SHW;`
    : `t = ${a};`;
  return `${conv} if (!(t >= 0 && t + ${size} <= SL && (t & ${size - 1}) === 0)) E.sfault(t, ${size});`;
}

export function emitAsync(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  if (p[0] === 'cp' && p[1] === 'async') return cpAsync(g, ins);
  if (p[0] === 'mbarrier') return mbarrier(g, ins);
  if (p[0] === 'wmma' && (p[1] === 'load' || p[1] === 'store')) return emitWmmaMem(g, ins);
  return null;
}

function cpAsync(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const a = ins.args;
  if (p[2] === 'commit_group' || p[2] === 'wait_group' || p[2] === 'wait_all') return ';';
  if (p[2] === 'mbarrier') {
    // cp.async.mbarrier.arrive{.noinc}: the copies are complete, so the arrive happens now. Without .noinc the
    // pending count is raised first, so the net effect on the barrier is nil.
    if (!p.includes('noinc')) return ';';
    return `${sharedOffset(g, ins, a[0], 8)} R.mbArrive(SH_I32, t >>> 2, 1, false);`;
  }
  if (p[2] === 'bulk') return bulk(g, ins);
  if (!p.includes('global') || !p.some((q) => q.startsWith('shared'))) throw new UnsupportedError(`'${ins.op}'`);
  // cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size | ignore-src}{, cache-policy}
  const size = a[2].k === 'imm' ? Number(a[2].text) : NaN;
  if (size !== 4 && size !== 8 && size !== 16) throw new UnsupportedError(`${ins.op}: cp-size must be 4, 8 or 16`);
  const rest = a.slice(3, p.includes('L2::cache_hint') ? a.length - 1 : a.length);
  let n: string | null = null; // bytes read from global; the rest is zero-filled
  if (rest.length) {
    const o = rest[0];
    const isPred = (o.k === 'reg' || o.k === 'sym') && g.regCls.get(o.name) === 'p';
    n = isPred ? `(${g.rd(o, 'pred')} ? 0 : ${size})` : `Math.min(${g.rd(o, 'u32')} >>> 0, ${size})`;
  }
  const words = size / 4;
  const dst = sharedOffset(g, ins, a[0], size);
  const src = addr(g, a[1]);
  if (n === null) {
    const tmp = Array.from({ length: words }, (_, k) => g.local(`ca${k}`));
    return `g = ${src}; t = g - HB; if (!(t >= 0 && t + ${size} <= HLEN && PG[t >>> 8] === 1 && (t & ${size - 1}) === 0)) E.gfault(g, ${size}); ` +
      `${tmp.map((v, k) => `${v} = G_I32[(t >>> 2) + ${k}];`).join(' ')} ${dst} ` +
      `${tmp.map((v, k) => `SH_I32[(t >>> 2) + ${k}] = ${v};`).join(' ')}`;
  }
  // Partial source: byte copy of the first n bytes (checked as a whole), zeros after.
  return `${dst} nv = ${n}; g = ${src}; q = g - HB; ` +
    `if (nv > 0 && !(q >= 0 && q + nv <= HLEN && PG[q >>> 8] === 1 && PG[(q + nv - 1) >>> 8] === 1)) E.gfault(g, nv); ` +
    `for (let k = 0; k < ${size}; k++) SH_U8[t + k] = k < nv ? G_U8[q + k] : 0;`;
}

/**
 * cp.async.bulk{.dst}{.src}{.completion}: copied now; a shared destination's mbarrier gets its complete_tx at
 * once; the bulk_group commit/wait and prefetches are no-ops.
 */
function bulk(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const a = ins.args;
  if (p[3] === 'commit_group' || p[3] === 'wait_group' || p[3] === 'prefetch') return ';';
  if (p.includes('tensor') || p.includes('multicast::cluster')) throw new UnsupportedError(`'${ins.op}' is not supported by the emulator`);
  const spaces = p.slice(3).filter((q) => q.startsWith('shared') || q === 'global');
  if (spaces.length !== 2) throw new UnsupportedError(`'${ins.op}'`);
  const dstSh = spaces[0].startsWith('shared'), srcSh = spaces[1].startsWith('shared');
  const n = g.rd(a[2], 'u32');
  const copy = `R.bulkCopy(E, ${dstSh}, ${addr(g, a[0])}, ${srcSh}, ${addr(g, a[1])}, ${n} >>> 0);`;
  if (!p.some((q) => q.startsWith('mbarrier'))) return copy;
  return `${copy} ${sharedOffset(g, ins, a[3], 8)} R.mbTx(SH_I32, t >>> 2, -(${n} >>> 0));`;
}

function mbarrier(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const a = ins.args;
  if (p.includes('noComplete')) throw new UnsupportedError(`'${ins.op}' is not supported by the emulator`);
  if (p[1] === 'expect_tx' || p[1] === 'complete_tx') {
    const bytes = g.rd(a[1], 'u32');
    return `${sharedOffset(g, ins, a[0], 8)} R.mbTx(SH_I32, t >>> 2, ${p[1] === 'expect_tx' ? '' : '-'}(${bytes} >>> 0));`;
  }
  if (p.includes('expect_tx')) {
    // mbarrier.arrive.expect_tx state, [addr], txCount: the bytes are expected, then one arrival.
    const st = a[0].k === 'sink' ? null : a[0];
    const call = `R.mbArrive(SH_I32, t >>> 2, 1, false)`;
    return `${sharedOffset(g, ins, a[1], 8)} R.mbTx(SH_I32, t >>> 2, ${g.rd(a[2], 'u32')} >>> 0); ${st ? g.wr(st, 'b64', call) : call + ';'}`;
  }
  switch (p[1]) {
    case 'init': return `${sharedOffset(g, ins, a[0], 8)} R.mbInit(SH_I32, t >>> 2, ${g.rd(a[1], 'u32')});`;
    case 'inval': return ';';
    case 'arrive': case 'arrive_drop': {
      // mbarrier.arrive{_drop}.shared.b64 state, [addr]{, count}; the state is the phase the arrival was in.
      const cnt = a[2] ? g.rd(a[2], 'u32') : '1';
      const drop = p[1] === 'arrive_drop';
      const st = a[0].k === 'sink' ? null : a[0];
      const call = `R.mbArrive(SH_I32, t >>> 2, ${cnt}, ${drop})`;
      return `${sharedOffset(g, ins, a[1], 8)} ${st ? g.wr(st, 'b64', call) : call + ';'}`;
    }
    default: throw new UnsupportedError(`'${ins.op}' is not supported by the emulator`);
  }
}

/** mbarrier.test_wait / try_wait{.parity}: the JS condition "the awaited phase is complete". */
export function mbarrierDone(g: FnGen, ins: Instr): { setup: string; done: string } {
  const a = ins.args;
  const token = ins.parts.includes('parity') ? g.rd(a[2], 'u32') : `R.lo32(${g.rd(a[2], 'b64')})`;
  return { setup: sharedOffset(g, ins, a[1], 8), done: `R.mbDone(SH_I32, t >>> 2, ${token})` };
}

// --- runtime (re-exported through rt.ts as R.*) ------------------------------------------------------
// Word 0: pending arrivals (bits 0-19), tx-count bits 0-10 (bits 20-30), phase (bit 31); word 1: expected
// arrivals (bits 0-19), tx-count bits 11-22 (bits 20-31). The tx-count (bytes of asynchronous copies still
// owed, signed) may dip below zero: a bulk copy completes before its expect_tx is counted.

function txOf(V: Int32Array, w: number): number {
  const raw = ((V[w] >>> 20) & 0x7ff) | (((V[w + 1] >>> 20) & 0xfff) << 11);
  return (raw << 9) >> 9;
}
function store(V: Int32Array, w: number, pend: number, phase: number, exp: number, tx: number): void {
  const t = tx & 0x7fffff;
  V[w] = (pend & 0xfffff) | ((t & 0x7ff) << 20) | (phase << 31);
  V[w + 1] = (exp & 0xfffff) | ((t >>> 11) << 20);
}
/** Settles the state: a phase with no arrivals and no bytes pending completes (flips, re-arms). */
function settle(V: Int32Array, w: number, pend: number, phase: number, exp: number, tx: number): void {
  if (pend <= 0 && tx === 0) { phase ^= 1; pend = exp; }
  store(V, w, Math.max(pend, 0), phase, exp, tx);
}

export function mbInit(V: Int32Array, w: number, count: number): void {
  store(V, w, count, 0, count, 0);
}
/** Arrives `count` times (arrive_drop: also for every later phase). Returns the phase arrived in (0/1). */
export function mbArrive(V: Int32Array, w: number, count: number, drop: boolean): number {
  const phase = V[w] >>> 31;
  const exp = (V[w + 1] & 0xfffff) - (drop ? count : 0);
  settle(V, w, (V[w] & 0xfffff) - count, phase, exp, txOf(V, w));
  return phase;
}
/** expect_tx (+bytes) / complete_tx (-bytes). */
export function mbTx(V: Int32Array, w: number, bytes: number): void {
  settle(V, w, V[w] & 0xfffff, V[w] >>> 31, V[w + 1] & 0xfffff, txOf(V, w) + bytes);
}
/** The phase with parity `parity` (a token from arrive, or a .parity operand) has completed. */
export function mbDone(V: Int32Array, w: number, parity: number): boolean {
  return (V[w] >>> 31) !== (parity & 1);
}

interface BulkEnv { hb: number; hl: number; pg: Uint8Array; g: HeapViews; sh: HeapViews; sl: number;
  gfault(addr: number, size: number): never; sfault(off: number, size: number): never }
/** Bounds-checked byte offset of an n-byte range (shared offset, or global address). */
function range(E: BulkEnv, shared: boolean, a: number, n: number): number {
  if (shared) {
    if (!(a >= 0 && a + n <= E.sl && (a & 15) === 0)) E.sfault(a, n);
    return a;
  }
  const t = a - E.hb;
  if (!(t >= 0 && t + n <= E.hl && (t & 15) === 0)) E.gfault(a, n);
  for (let p = t >>> 8; p <= (t + n - 1) >>> 8; p++) if (E.pg[p] !== 1) E.gfault(a, n);
  return t;
}
/** cp.async.bulk: n bytes (a multiple of 16) between shared and global memory, now. */
export function bulkCopy(E: BulkEnv, dstShared: boolean, dst: number, srcShared: boolean, src: number, n: number): void {
  if (n <= 0) return;
  if (n & 15) { if (dstShared) E.sfault(dst, n); else E.gfault(dst, n); } // sizes are multiples of 16
  const d = range(E, dstShared, dst, n), s = range(E, srcShared, src, n);
  const from = (srcShared ? E.sh : E.g).u8, to = (dstShared ? E.sh : E.g).u8;
  if (from === to) to.copyWithin(d, s, s + n);
  else to.set(from.subarray(s, s + n), d);
}
