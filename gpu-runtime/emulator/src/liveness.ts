// Which registers are live right after each sync point, so a thread that parks there spills only those
// (standard backward dataflow over the instruction list; bitsets keep it linear in practice).

import { FuncDecl, Instr, Operand, branchTargets, isLabel } from './ir';
import type { Cls } from './values';

// '' is `.branchtargets` (its opcode splits to ['', 'branchtargets']).
const NO_DEF = new Set(['st', 'sust', 'red', 'bra', 'brx', '', 'ret', 'exit', 'trap', 'call', 'bar', 'barrier', 'membar', 'fence', 'prefetch',
  'prefetchu', 'pmevent', 'nanosleep', 'discard', 'applypriority']);

function regsOf(o: Operand | undefined, out: string[]): void {
  if (!o) return;
  switch (o.k) {
    case 'reg': out.push(o.name); break;
    case 'addr': if (o.base && o.base.startsWith('%')) out.push(o.base); break;
    case 'vec': case 'list': o.elems.forEach((e) => regsOf(e, out)); break;
    case 'pair': regsOf(o.a, out); regsOf(o.b, out); break;
    case 'not': regsOf(o.inner, out); break;
  }
}

export function defsUses(ins: Instr): { defs: string[]; uses: string[] } {
  const defs: string[] = [];
  const uses: string[] = [];
  const writes = !NO_DEF.has(ins.parts[0]) && !(ins.parts[0] === 'bar' && ins.parts[1] !== 'red');
  ins.args.forEach((a, i) => {
    if (i === 0 && writes && a.k !== 'addr') regsOf(a, defs);
    else regsOf(a, uses);
  });
  if (ins.guard) { uses.push(ins.guard.reg); uses.push(...defs); }
  return { defs: ins.guard ? [] : defs, uses };
}

export function liveAtSync(fn: FuncDecl, syncIdx: Set<number>, regCls: Map<string, Cls>): Map<number, string[]> {
  const names = [...regCls.keys()];
  const index = new Map(names.map((n, i) => [n, i]));
  const W = Math.max(1, Math.ceil(names.length / 32));
  const body = fn.body;
  const n = body.length;
  const labelAt = new Map<string, number>();
  body.forEach((s, i) => { if (isLabel(s)) labelAt.set(s.label, i); });
  // Flat bitsets (instruction i owns words [i*W, (i+1)*W)): thrust-sized kernels have thousands of
  // instructions and hundreds of registers, and per-instruction arrays made this the load-time hot spot.
  const use = new Uint32Array(n * W);
  const def = new Uint32Array(n * W);
  const succ: number[][] = [];
  const set = (bs: Uint32Array, base: number, r: string): void => {
    const k = index.get(r);
    if (k !== undefined) bs[base + (k >>> 5)] |= 1 << (k & 31);
  };
  for (let i = 0; i < n; i++) {
    const s = body[i];
    const next = i + 1 < n ? [i + 1] : [];
    if (isLabel(s)) { succ.push(next); continue; }
    const du = defsUses(s);
    for (const r of du.uses) set(use, i * W, r);
    for (const r of du.defs) set(def, i * W, r);
    const op = s.parts[0];
    if (op === 'bra') {
      const t = s.args[0]?.k === 'sym' ? labelAt.get(s.args[0].name) : undefined;
      const targets = t === undefined ? [] : [t];
      succ.push(s.guard ? [...next, ...targets] : targets);
    } else if (op === 'brx') {
      const tbl = s.args[1]?.k === 'sym' ? branchTargets(body, s.args[1].name) : null;
      const targets = (tbl ?? []).map((l) => labelAt.get(l)).filter((t): t is number => t !== undefined);
      succ.push(s.guard ? [...next, ...targets] : targets);
    } else if ((op === 'ret' || op === 'exit' || op === 'trap') && !s.guard) succ.push([]);
    else succ.push(next);
  }
  const liveIn = new Uint32Array(n * W);
  const liveOut = new Uint32Array(n * W);
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = n - 1; i >= 0; i--) {
      const ob = i * W;
      for (const sIdx of succ[i]) { const ib = sIdx * W; for (let w = 0; w < W; w++) liveOut[ob + w] |= liveIn[ib + w]; }
      for (let w = 0; w < W; w++) {
        const v = (use[ob + w] | (liveOut[ob + w] & ~def[ob + w])) >>> 0;
        if (v !== liveIn[ob + w]) { liveIn[ob + w] = v; changed = true; }
      }
    }
  }
  const out = new Map<number, string[]>();
  for (const i of syncIdx) {
    const regs: string[] = [];
    names.forEach((nm, k) => { if (liveOut[i * W + (k >>> 5)] & (1 << (k & 31))) regs.push(nm); });
    out.set(i, regs);
  }
  return out;
}
