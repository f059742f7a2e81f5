// Sync points: barriers and warp collectives. The thread stores its inputs and live registers in its state
// S, returns, and is resumed by the scheduler at a `case` that reloads them and picks up the result (S.r /
// S.rp). The scheduler (scheduler.ts) completes the operation across lanes in two phases.

import { Instr, Operand } from './ir';
import type { FnGen } from './codegen';
import { jsName } from './codegen';
import { Cls, UnsupportedError } from './values';
import { mbarrierDone } from './asyncops';
import { emitLdmatrix, emitMmaSync } from './mma';

export const SYNC_OPS = {
  BAR: 1, BAR_POPC: 2, BAR_AND: 3, BAR_OR: 4,
  /** Not a wait: the thread hands control back to the scheduler (cooperative grids) and stays runnable. */
  YIELD: 9,
  SHFL: 10, VOTE: 11, ACTIVEMASK: 12, MATCH_ANY: 13, MATCH_ALL: 14, REDUX: 15, WARPSYNC: 16,
} as const;

/** Float and i64 registers a thread can spill unboxed (ThreadState.vf); more go to the generic array. */
export const SPILL_F64 = 64;
/** Int and predicate registers a thread can spill unboxed (ThreadState.vi). */
export const SPILL_I32 = 64;

export const YIELD_EVERY = 32;

export const SHFL_MODES = ['up', 'down', 'bfly', 'idx'];
export const VOTE_MODES = ['all', 'any', 'uni', 'ballot'];
export const REDUX_OPS = ['add', 'min', 'max', 'and', 'or', 'xor'];

/** Where a register live at some sync point is kept while its thread is parked, as JS statements. */
export interface SpillSlot { spill: string; reload: string; zero: string }

/**
 * One fixed slot per register live at any sync point of the kernel, in typed arrays so parking a thread
 * allocates nothing (a double or address stored in a plain array is a fresh heap number): floats and i64 in
 * a Float64Array, ints and predicates in an Int32Array. An i64 that is a BigInt leaves NaN (never an i64
 * number) in its double slot and itself in the plain array. Past SPILL_F64/SPILL_I32, the plain array.
 */
export function spillSlots(live: Map<number, string[]>, regCls: Map<string, Cls>): Map<string, SpillSlot> {
  const out = new Map<string, SpillSlot>();
  let nf = 0, ni = 0, nv = 0;
  for (const regs of live.values()) for (const r of regs) {
    if (out.has(r)) continue;
    const c = regCls.get(r);
    const x = jsName(r);
    if ((c === 'f' || c === 'd') && nf < SPILL_F64) {
      const k = nf++;
      out.set(r, { spill: `S.vf[${k}] = ${x};`, reload: `${x} = S.vf[${k}];`, zero: `S.vf[${k}] = 0;` });
    } else if (c === 'l' && nf < SPILL_F64) {
      const k = nf++, j = nv++;
      out.set(r, {
        spill: `S.vf[${k}] = typeof ${x} === 'number' ? ${x} : (S.v[${j}] = ${x}, NaN);`,
        reload: `${x} = S.vf[${k}]; if (${x} !== ${x}) ${x} = S.v[${j}];`,
        zero: `S.vf[${k}] = 0;`,
      });
    } else if (c === 'i' && ni < SPILL_I32) {
      const k = ni++;
      out.set(r, { spill: `S.vi[${k}] = ${x};`, reload: `${x} = S.vi[${k}];`, zero: `S.vi[${k}] = 0;` });
    } else if (c === 'p' && ni < SPILL_I32) {
      const k = ni++;
      out.set(r, { spill: `S.vi[${k}] = ${x} ? 1 : 0;`, reload: `${x} = S.vi[${k}] !== 0;`, zero: `S.vi[${k}] = 0;` });
    } else {
      const j = nv++;
      out.set(r, { spill: `S.v[${j}] = ${x};`, reload: `${x} = S.v[${j}];`, zero: `S.v[${j}] = ${c === 'p' ? 'false' : '0'};` });
    }
  }
  return out;
}

export function isSyncInstr(ins: Instr): boolean {
  const p = ins.parts;
  switch (p[0]) {
    case 'bar': case 'barrier': return true;
    case 'shfl': case 'vote': case 'activemask': case 'match': case 'redux': case 'yield': return true;
    case 'mbarrier': return p[1] === 'test_wait' || p[1] === 'try_wait';
    case 'mma': case 'ldmatrix': return true;
    case 'wmma': return p[1] === 'mma';
    default: return false;
  }
}

/** bar.arrive a{, b}: counts toward barrier a without waiting, so it is not a sync point. */
function arrive(g: FnGen, ins: Instr): string {
  const a = ins.args;
  // Each arriving thread counts once; the count operand is the barrier's total, checked by its waiters.
  const id = a[0] ? g.rd(a[0], 'u32') : '0';
  const code = `E.ba[(${id}) & 15]++;`;
  return ins.guard ? `if (${ins.guard.neg ? '!' : ''}${g.reg(ins.guard.reg)}) { ${code} }` : code;
}

export function emitSync(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const a = ins.args;
  const set: string[] = [];
  let resume = '';
  const u32 = (o: Operand | undefined): string => (o ? g.rd(o, 'u32') : '-1');
  let pre = '';
  switch (p[0]) {
    case 'yield':
      // Yield only every YIELD_EVERY passes: a spin loop still returns promptly, a hot loop barely pays.
      set.push(`E.yc = ${YIELD_EVERY}; S.op = ${SYNC_OPS.YIELD};`);
      pre = `if (--E.yc >= 0) { pc = ${g.nextCase}; continue L; } `;
      break;
    case 'mbarrier': {
      // A complete phase answers at once; otherwise the thread yields to the CTA's others and answers false
      // (the program's wait loop asks again).
      const { setup, done } = mbarrierDone(g, ins);
      const dst = ins.args[0];
      const check = `${setup} if (${done}) { ${g.wr(dst, 'pred', 'true')} pc = ${g.nextCase}; continue L; }`;
      pre = ins.guard ? `if (${ins.guard.neg ? '!' : ''}${g.reg(ins.guard.reg)}) { ${check} } ` : `${check} `;
      set.push(`S.op = ${SYNC_OPS.YIELD};`);
      resume = g.wr(dst, 'pred', 'false');
      break;
    }
    case 'mma': case 'wmma': case 'ldmatrix': {
      // Fragments deposited per warp, then a full-warp sync; each lane computes its outputs on resume (mma.ts).
      const m = p[0] === 'ldmatrix' ? emitLdmatrix(g, ins) : emitMmaSync(g, ins);
      set.push(`${m.set} S.op = ${SYNC_OPS.WARPSYNC}; S.m = -1;`);
      resume = m.resume;
      break;
    }
    case 'bar': case 'barrier': {
      if (p[1] === 'warp') { set.push(`S.op = ${SYNC_OPS.WARPSYNC}; S.m = ${u32(a[0])};`); break; }
      if (p.includes('arrive')) return arrive(g, ins);
      if (p.includes('red')) {
        // bar.red.popc.u32 d, a{, b}, {!}c
        const kind = p.includes('popc') ? SYNC_OPS.BAR_POPC : p.includes('and') ? SYNC_OPS.BAR_AND : SYNC_OPS.BAR_OR;
        const cnt = a.length === 4 ? u32(a[2]) : '0';
        set.push(`S.op = ${kind}; S.a = ${u32(a[1])}; S.b = ${cnt}; S.c = ${g.rd(a[a.length - 1], 'pred')};`);
        resume = g.wr(a[0], kind === SYNC_OPS.BAR_POPC ? 'u32' : 'pred', 'S.r');
        break;
      }
      set.push(`S.op = ${SYNC_OPS.BAR}; S.a = ${a[0] ? u32(a[0]) : '0'}; S.b = ${a[1] ? u32(a[1]) : '0'};`);
      break;
    }
    case 'shfl': {
      if (!p.includes('sync')) throw new UnsupportedError('shfl without .sync (pre-Volta) is not supported');
      const mode = SHFL_MODES.indexOf(p[2]);
      if (mode < 0 || p[3] !== 'b32') throw new UnsupportedError(`'${ins.op}' is not supported`);
      const d = a[0];
      set.push(`S.op = ${SYNC_OPS.SHFL}; S.k = ${mode}; S.a = ${g.rd(a[1], 'b32')}; S.b = ${u32(a[2])}; S.c = ${u32(a[3])}; S.m = ${u32(a[4])};`);
      resume = d.k === 'pair' ? `${g.wr(d.a, 'b32', 'S.r')} ${g.wr(d.b, 'pred', 'S.rp')}` : g.wr(d, 'b32', 'S.r');
      break;
    }
    case 'vote': {
      const sync = p.includes('sync');
      // nvcc writes both `vote.sync.ballot` and `vote.ballot.sync`.
      const mode = VOTE_MODES.findIndex((m) => p.includes(m));
      if (mode < 0) throw new UnsupportedError(`'${ins.op}' is not supported`);
      set.push(`S.op = ${SYNC_OPS.VOTE}; S.k = ${mode}; S.a = ${g.rd(a[1], 'pred')}; S.m = ${sync ? u32(a[2]) : '-1'};`);
      resume = g.wr(a[0], mode === 3 ? 'b32' : 'pred', 'S.r');
      break;
    }
    case 'activemask':
      set.push(`S.op = ${SYNC_OPS.ACTIVEMASK}; S.m = -1;`);
      resume = g.wr(a[0], 'b32', 'S.r');
      break;
    case 'match': {
      const all = p[1] === 'all';
      const type = p[p.length - 1];
      set.push(`S.op = ${all ? SYNC_OPS.MATCH_ALL : SYNC_OPS.MATCH_ANY}; S.a = ${g.rd(a[1], type)}; S.m = ${u32(a[2])};`);
      const d = a[0];
      resume = d.k === 'pair' ? `${g.wr(d.a, 'b32', 'S.r')} ${g.wr(d.b, 'pred', 'S.rp')}` : g.wr(d, 'b32', 'S.r');
      break;
    }
    case 'redux': {
      const op = REDUX_OPS.indexOf(p[2]);
      const type = p[p.length - 1];
      if (op < 0 || (type !== 'u32' && type !== 's32' && type !== 'b32')) throw new UnsupportedError(`'${ins.op}' is not supported`);
      set.push(`S.op = ${SYNC_OPS.REDUX}; S.k = ${op}; S.c = ${type === 's32'}; S.a = ${g.rd(a[1], type)}; S.m = ${u32(a[2])};`);
      resume = g.wr(a[0], type, 'S.r');
      break;
    }
    default:
      throw new UnsupportedError(`'${ins.op}' is not supported`);
  }
  // Two cases: `back` (the scheduler resumes the thread there: reload, take the result) falls through into
  // `next`, where a thread that did not park (guard false, phase already complete, yield skipped) continues.
  // `next` is allocated first: the `pre` jumps above already name g.nextCase.
  const next = g.nextCase++;
  const back = g.nextCase++;
  const live = g.live.get(g.pos) ?? [];
  // Registers kept in their slot at every write (g.writeThrough) are already there.
  const spill = live.filter((r) => !g.writeThrough.has(r)).map((r) => g.slots.get(r)!.spill).join(' ');
  const reload = live.map((r) => g.slots.get(r)!.reload).join(' ');
  g.restore.push(back);
  const guard = ins.guard ? `if (${ins.guard.neg ? '' : '!'}${g.reg(ins.guard.reg)}) { pc = ${next}; continue L; } ` : '';
  return `${pre}${guard}${set.join(' ')} ${spill} S.site = ${g.pos}; S.pc = ${back}; return 1;\ncase ${back}: ${reload} ${resume}\ncase ${next}:`;
}
