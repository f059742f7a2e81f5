// PtxModule -> one JavaScript factory per kernel. The factory takes the launch environment (memory views,
// params, dimensions) and returns the per-thread function `K(S)`: registers are JS locals, control flow is a
// `for(;;) switch(pc)` over labels, and every sync point (barrier or warp collective) spills the live
// registers into S.v, records what it waits for and returns; the CTA scheduler resumes it later.

import { FuncDecl, Instr, Operand, PtxModule, Stmt, VarDecl, branchTargets, isLabel, typeSize } from './ir';
import { Cls, UnsupportedError, clsOf, conv, literal, wrapInt } from './values';
import { emitAlu } from './alu';
import { emitMem } from './memops';
import { emitAsync } from './asyncops';
import { emitTex } from './texops';
import { SYNC_OPS, SpillSlot, emitSync, isSyncInstr, spillSlots } from './syncops';
import { defsUses, liveAtSync } from './liveness';
import { paramLayout } from './parser';
import { inlineSyncCalls, syncFunctions } from './inline';

/** Generic address windows: shared and local memory seen through generic pointers. */
export const SHARED_WINDOW = 0x1000_0000_0000;
export const LOCAL_WINDOW = 0x2000_0000_0000;
/** Function "addresses" for function pointers: never dereferenced, only compared by indirect calls. */
export const FUNC_WINDOW = 0x3000_0000_0000;

/** Address of each defined function (the same numbering ModuleGen.funcIndex uses). */
export function functionAddrs(ptx: PtxModule): Map<string, number> {
  const out = new Map<string, number>();
  ptx.funcs.forEach((f, i) => { if (!f.external && !out.has(f.name)) out.set(f.name, FUNC_WINDOW + i * 16); });
  return out;
}
/** Per-thread stack bytes when a kernel calls non-inlined functions (recursion depth is unknown). */
export const CALL_STACK_BYTES = 8192;

export interface SymbolAddrs {
  /** Module .global/.const variables: device address. */
  global: Map<string, number>;
}

export interface KernelCode {
  name: string;
  /** `new Function('R', src)` returns { K, bind(E) }. */
  src: string;
  hasSync: boolean;
  /** Uses grid-wide sync, which needs every CTA resident at once; refused at launch. */
  gridSync: boolean;
  /** Distinct kernel-param reads to decode per launch: P[i] = value at (off, type). */
  paramReads: { off: number; type: string }[];
  sharedStatic: number;
  localBytes: number;
}

interface CallInfo {
  /** Arguments the callee reads: (param index, byte offset, class). */
  args: { idx: number; off: number; cls: Cls; type: string }[];
  rets: { off: number; cls: Cls; type: string }[];
}

export class FnGen {
  readonly regCls = new Map<string, Cls>();
  readonly regType = new Map<string, string>();
  readonly extraLocals = new Set<string>();
  readonly labels = new Map<string, number>();
  /** Resume cases of the sync points (where the scheduler re-enters a parked thread). */
  readonly restore: number[] = [];
  nextCase = 1;
  /** Index of the instruction being compiled (sync sites, back-edge detection). */
  pos = 0;
  labelPos = new Map<string, number>();
  live: Map<number, string[]> = new Map();
  /** Spill slot of every register live at a sync point (kernels with sync points). */
  slots = new Map<string, SpillSlot>();
  /**
   * Sync-live registers written only outside loops (set up once, then read across every barrier of a loop):
   * each write also stores the slot, so parking spills them no more. Others are spilled at each sync point.
   * Every register write goes through wr(), so this choice is only about speed.
   */
  writeThrough = new Set<string>();
  /** Call-sequence param slots stored in this function: slot name -> class. */
  readonly slotCls = new Map<string, Cls>();

  constructor(
    readonly mod: ModuleGen,
    readonly fn: FuncDecl,
    readonly isKernel: boolean,
  ) {
    for (const r of fn.regs) {
      this.regCls.set(r.name, clsOf(r.type));
      this.regType.set(r.name, r.type);
    }
    // Inline-asm blocks declare registers without the % prefix (`.reg .pred __$temp3;`): the parser sees
    // those operands as symbols, so turn them into registers here, where declarations are known. So is PTX's
    // predefined WARP_SZ (cuda_fp16's half shuffles move it), which special() answers like %warpsz.
    const fix = (o: Operand): Operand => {
      switch (o.k) {
        case 'sym': return this.regCls.has(o.name) || this.special(o.name) !== null ? { k: 'reg', name: o.name } : o;
        case 'vec': case 'list': return { ...o, elems: o.elems.map(fix) };
        case 'pair': return { k: 'pair', a: fix(o.a), b: fix(o.b) };
        case 'not': return { k: 'not', inner: fix(o.inner) };
        default: return o;
      }
    };
    for (const s of fn.body) if (!isLabel(s)) s.args = s.args.map(fix);
  }

  reg(name: string): string {
    if (!this.regCls.has(name)) throw new UnsupportedError(`${this.fn.name}: undeclared register ${name}`);
    return jsName(name);
  }

  /** Expression of operand `o` read as instruction type `type`. */
  rd(o: Operand, type: string): string {
    const to = clsOf(type);
    switch (o.k) {
      case 'reg': {
        const sp = this.special(o.name);
        if (sp !== null) return conv(sp, 'i', to, 'u32');
        const from = this.regCls.get(o.name);
        if (!from) throw new UnsupportedError(`${this.fn.name}: undeclared register ${o.name}`);
        let e = conv(jsName(o.name), from, to, type);
        if (to === 'i' && from === 'i' && typeSize(type) < 4) e = wrapInt(type, e);
        return e;
      }
      case 'imm': return literal(o.text, type);
      case 'not': return `!${this.rd(o.inner, type)}`;
      case 'sym': return conv(String(this.symAddr(o.name)), 'l', to, 'u64');
      default: throw new UnsupportedError(`operand kind ${o.k} not allowed here`);
    }
  }

  /** Statement storing `e` (class of `type`) into operand `o`. */
  wr(o: Operand, type: string, e: string): string {
    if (o.k === 'sink') return `${e};`;
    if (o.k !== 'reg') throw new UnsupportedError(`destination must be a register`);
    const to = this.regCls.get(o.name);
    if (!to) throw new UnsupportedError(`${this.fn.name}: undeclared register ${o.name}`);
    let v = conv(e, clsOf(type), to, type);
    const rt = this.regType.get(o.name)!;
    if (to === 'i' && typeSize(rt) < 4 && typeSize(type) >= 4) v = wrapInt(rt, v);
    if (this.writeThrough.has(o.name)) return `${jsName(o.name)} = ${v}; ${this.slots.get(o.name)!.spill}`;
    return `${jsName(o.name)} = ${v};`;
  }

  special(name: string): string | null {
    switch (name) {
      case '%tid.x': return 'tx';
      case '%tid.y': return 'ty';
      case '%tid.z': return 'tz';
      case '%ntid.x': return 'NTX';
      case '%ntid.y': return 'NTY';
      case '%ntid.z': return 'NTZ';
      case '%ctaid.x': return 'E.cx';
      case '%ctaid.y': return 'E.cy';
      case '%ctaid.z': return 'E.cz';
      case '%nctaid.x': return 'NCX';
      case '%nctaid.y': return 'NCY';
      case '%nctaid.z': return 'NCZ';
      case '%laneid': return 'S.lane';
      case '%warpid': return '(S.lin >>> 5)';
      case '%nwarpid': return 'NWARP';
      case '%lanemask_eq': return '(1 << S.lane)';
      case '%lanemask_lt': return '((1 << S.lane) - 1)';
      case '%lanemask_le': return '((2 << S.lane) - 1)';
      case '%lanemask_gt': return '(~((2 << S.lane) - 1))';
      case '%lanemask_ge': return '(~((1 << S.lane) - 1))';
      case '%clock': return 'E.clock()';
      case '%clock_hi': return '0';
      case '%smid': return '0';
      case '%nsmid': return 'E.nsm';
      case '%gridid': return '0';
      case '%dynamic_smem_size': return 'E.dynsm';
      case '%total_smem_size': return 'SL';
      case '%warpsz': case 'WARP_SZ': return '32';
    }
    if (name === '%clock64' || name === '%globaltimer') return null;
    if (/^%envreg\d+$/.test(name)) {
      // %envreg1/2 hold the cooperative-launch workspace that this_grid().sync() spins on.
      // The workspace pointer is built as {hi = envreg1, lo = envreg2}; 0 outside a cooperative launch, which
      // the CG code turns into a trap, as on hardware.
      if (name === '%envreg1') { this.mod.gridSync = true; return 'E.env1'; }
      if (name === '%envreg2') { this.mod.gridSync = true; return 'E.env2'; }
      return '0';
    }
    if (/^%pm\d/.test(name)) return '0';
    return null;
  }

  /** Address of a symbol used as a value (mov %rd, sym / sym+off). */
  symAddr(name: string): number {
    let base = name;
    let off = 0;
    const plus = name.indexOf('+');
    if (plus > 0) { base = name.slice(0, plus); off = parseInt(name.slice(plus + 1), 10); }
    const g = this.mod.addrs.global.get(base);
    if (g !== undefined) return g + off;
    const s = this.mod.sharedOff.get(base);
    if (s !== undefined) return s + off;
    const d = this.fn.vars.find((v) => v.name === base && v.space === 'local');
    if (d) return off; // frame-relative; callers add FB via symExpr
    const fnIdx = this.mod.funcIndex.get(base);
    if (fnIdx !== undefined && !this.mod.ptx.funcs[fnIdx].external) return FUNC_WINDOW + fnIdx * 16 + off;
    if (fnIdx !== undefined) throw new UnsupportedError(`taking the address of external function ${base} is not supported`);
    throw new UnsupportedError(`${this.fn.name}: unknown symbol ${base}`);
  }

  /** Symbol as an expression: local depots are relative to this frame's base. */
  symExpr(name: string): string {
    const base = name.split('+')[0];
    if (this.fn.vars.some((v) => v.name === base && v.space === 'local')) return `(FB + ${this.localVarOff(base) + this.symAddr(name)})`;
    return String(this.symAddr(name));
  }

  localVarOff(name: string): number {
    let off = 0;
    for (const v of this.fn.vars) {
      if (v.space !== 'local') continue;
      off = Math.ceil(off / v.align) * v.align;
      if (v.name === name) return off;
      off += typeSize(v.type) * v.vec * v.count;
    }
    return 0;
  }

  localFrameBytes(): number {
    let off = 0;
    for (const v of this.fn.vars) {
      if (v.space !== 'local') continue;
      off = Math.ceil(off / v.align) * v.align + typeSize(v.type) * v.vec * v.count;
    }
    return Math.ceil(off / 16) * 16;
  }

  local(name: string): string {
    this.extraLocals.add(name);
    return name;
  }

  caseFor(label: string): number {
    let c = this.labels.get(label);
    if (c === undefined) { c = this.nextCase++; this.labels.set(label, c); }
    return c;
  }

  jump(label: string): string {
    const target = this.labelPos.get(label);
    if (target === undefined) throw new UnsupportedError(`${this.fn.name}: branch to unknown label ${label}`);
    const back = target <= this.pos ? 'if (--E.wd < 0) E.tick(); ' : '';
    return `{ ${back}pc = ${this.caseFor(label)}; continue L; }`;
  }

  /** brx.idx i, tbl: a JS switch over the `.branchtargets` list that follows label tbl. */
  jumpTable(ins: Instr): string {
    const targets = branchTargets(this.fn.body, symName(ins.args[1]));
    if (!targets) throw new UnsupportedError(`${this.fn.name}: brx.idx needs a .branchtargets list`);
    const cases = targets.map((t, i) => `case ${i}: ${this.jump(t)}`);
    return `switch (${this.rd(ins.args[0], 'u32')}) { ${cases.join(' ')} default: E.trap(); }`;
  }

  callInfo(name: string): CallInfo {
    return this.mod.callInfo(name);
  }

  compile(): string {
    if (this.isKernel && usesGridSync(this.fn)) this.fn.body = withLoopYields(this.fn.body);
    const body = this.fn.body;
    body.forEach((s, i) => { if (isLabel(s)) this.labelPos.set(s.label, i); });
    const syncIdx = new Set<number>();
    body.forEach((s, i) => { if (!isLabel(s) && isSyncInstr(s)) syncIdx.add(i); });
    if (syncIdx.size && !this.isKernel) {
      throw new UnsupportedError(`${this.fn.name}: barrier or warp collective inside a non-inlined function is not supported`);
    }
    if (syncIdx.size) {
      this.live = liveAtSync(this.fn, syncIdx, this.regCls);
      this.slots = spillSlots(this.live, this.regCls);
      this.writeThrough = writtenOutsideLoops(body, new Set(this.slots.keys()));
    }
    const loops = simpleLoops(body, syncIdx);
    const loopEnds = new Set(loops.values());
    const lines: string[] = [];
    for (let i = 0; i < body.length; i++) {
      this.pos = i;
      const s: Stmt = body[i];
      if (isLabel(s)) {
        lines.push(`case ${this.caseFor(s.label)}:`);
        if (loops.has(i)) lines.push('for (;;) {');
        continue;
      }
      if (loopEnds.has(i)) {
        const gd = s.guard;
        lines.push(`${gd ? `if (${gd.neg ? '' : '!'}${this.reg(gd.reg)}) break; ` : ''}if (--E.wd < 0) E.tick();\n}`);
        continue;
      }
      try {
        lines.push(this.instr(s));
      } catch (e) {
        if (e instanceof UnsupportedError) throw new UnsupportedError(`${e.message} (PTX line ${s.line}: ${s.op})`);
        throw e;
      }
    }
    const decl: string[] = [];
    for (const [name, c] of this.regCls) decl.push(`${jsName(name)} = ${c === 'p' ? 'false' : '0'}`);
    for (const n of this.extraLocals) decl.push(`${n} = 0`);
    const frame = this.localFrameBytes();
    const head = [
      'const tx = S.tx, ty = S.ty, tz = S.tz, LB = S.lb;',
      `let t = 0, g = 0, q = 0, nv = 0, CF = 0${decl.length ? ', ' + decl.join(', ') : ''};`,
    ];
    if (this.isKernel) {
      head.push(`const FB = 0;`, `let pc = S.pc;`);
      // A resumed thread enters at its resume case, which reloads its registers (syncops.ts). A thread that
      // starts zeroes its write-through slots: they hold what a register has before its first write.
      const zero = [...this.writeThrough].map((r) => this.slots.get(r)!.zero).join(' ');
      head.push(this.restore.length ? `if (pc === 0) { S.sp = ${frame}; ${zero} }` : `S.sp = ${frame};`);
    } else {
      head.push(`const FB = S.sp; S.sp = FB + ${frame}; if (S.sp > LS) E.stackOverflow();`, 'let pc = 0;');
    }
    const tail = this.isKernel ? 'return 0;' : `S.sp = FB; return ${this.retExpr()};`;
    return `${head.join('\n')}\nL: for (;;) switch (pc) {\ncase 0:\n${lines.join('\n')}\n${tail}\n}`;
  }

  retExpr(): string {
    const info = this.callInfo(this.fn.name);
    if (info.rets.length === 0) return 'undefined';
    if (info.rets.length === 1) return `fr_${info.rets[0].off}`;
    return `[${info.rets.map((r) => `fr_${r.off}`).join(', ')}]`;
  }

  instr(ins: Instr): string {
    let code: string | null;
    const base = ins.parts[0];
    if (ins.op === '.branchtargets') return '';
    if (isSyncInstr(ins)) {
      code = emitSync(this, ins);
      // A guarded sync point: skip to its resume case when the guard is false.
      return code;
    }
    switch (base) {
      case 'bra': code = this.jump(symName(ins.args[0])); break;
      case 'brx': code = this.jumpTable(ins); break;

      case 'ret': code = this.isKernel ? 'return 0;' : `{ S.sp = FB; return ${this.retExpr()}; }`; break;
      case 'exit': code = this.isKernel ? 'return 0;' : 'throw R.EXIT;'; break;
      case 'trap': code = 'E.trap();'; break;
      case 'call': code = this.call(ins); break;
      default:
        code = emitAlu(this, ins) ?? emitMem(this, ins) ?? emitTex(this, ins) ?? emitAsync(this, ins);
    }
    if (code === null) throw new UnsupportedError(`instruction '${ins.op}' is not supported by the emulator`);
    if (ins.guard) code = `if (${ins.guard.neg ? '!' : ''}${this.reg(ins.guard.reg)}) { ${code} }`;
    return code;
  }

  call(ins: Instr): string {
    // call{.uni} (rets), fname, (args) | call fname, (args) | call (rets), fname
    let i = 0;
    let rets: Operand[] = [];
    if (ins.args[0]?.k === 'list') { rets = (ins.args[0] as { elems: Operand[] }).elems; i = 1; }
    const target = ins.args[i];
    const argOps = ins.args[i + 1]?.k === 'list' ? (ins.args[i + 1] as { elems: Operand[] }).elems : [];
    if (target?.k === 'reg') return this.indirectCall(target, rets, argOps);
    if (!target || target.k !== 'sym') throw new UnsupportedError('bad call target');
    if (ins.args.length > i + 2) throw new UnsupportedError('call through a prototype to a named function');
    const name = target.name;
    const argSlot = (a: Operand, off: number, cls: Cls, type: string): string => this.callArg(a, off, cls, type);
    if (name === 'vprintf') {
      const a0 = argSlot(argOps[0], 0, 'l', 'u64');
      const a1 = argSlot(argOps[1], 0, 'l', 'u64');
      const r = rets[0] && rets[0].k === 'sym' ? `${this.local(`cr_${sanitize(rets[0].name)}_0`)} = ` : '';
      if (rets[0]?.k === 'sym') this.slotCls.set(`cr_${sanitize(rets[0].name)}_0`, 'i');
      return `${r}E.vprintf(S, ${a0}, ${a1});`;
    }
    if (name === 'malloc') {
      // Device malloc (deviceMalloc.ts): the pointer comes back in the return parameter, NULL when full.
      const size = argSlot(argOps[0], 0, 'l', 'u64');
      if (rets[0]?.k !== 'sym') return `E.malloc(S, ${size});`;
      const slot = `cr_${sanitize(rets[0].name)}_0`;
      this.slotCls.set(slot, 'l');
      return `${this.local(slot)} = E.malloc(S, ${size});`;
    }
    if (name === 'free') return `E.free(S, ${argSlot(argOps[0], 0, 'l', 'u64')});`;
    if (name === '__assertfail') {
      const a = [0, 1, 2, 3].map((k) => argSlot(argOps[k], 0, k === 2 ? 'i' : 'l', k === 2 ? 'u32' : 'u64'));
      return `E.assertfail(S, ${a.join(', ')});`;
    }
    const idx = this.mod.funcIndex.get(name);
    if (idx === undefined || this.mod.ptx.funcs[idx].external) {
      throw new UnsupportedError(`call to external function '${name}' is not supported`);
    }
    return this.directCall(name, rets, argOps);
  }

  /** One call argument: a register, an immediate, or a `.param` slot the caller filled (0/false if never set). */
  callArg(a: Operand, off: number, cls: Cls, type: string): string {
    if (a.k === 'reg') return this.rd(a, type);
    if (a.k === 'imm') return literal(a.text, type);
    if (a.k !== 'sym') throw new UnsupportedError('bad call argument');
    const slot = `cp_${sanitize(a.name)}_${off}`;
    const have = this.slotCls.get(slot);
    if (!have) return cls === 'p' ? 'false' : '0';
    return conv(slot, have, cls, type);
  }

  /** Call through a function pointer: a switch over every function whose address the module takes. */
  indirectCall(target: Operand, rets: Operand[], argOps: Operand[]): string {
    const cands = [...this.mod.addressTaken()].filter((n) => {
      const f = this.mod.ptx.funcs[this.mod.funcIndex.get(n)!];
      return f.params.length === argOps.length && f.rets.length === rets.length;
    });
    const cases = cands.map((n) => `case ${FUNC_WINDOW + this.mod.funcIndex.get(n)! * 16}: ${this.directCall(n, rets, argOps)} break;`);
    return `switch (Number(${this.rd(target, 'u64')})) { ${cases.join(' ')} default: E.badcall(Number(${this.rd(target, 'u64')})); }`;
  }

  directCall(name: string, rets: Operand[], argOps: Operand[]): string {
    const idx = this.mod.funcIndex.get(name)!;
    const argSlot = (a: Operand, off: number, cls: Cls, type: string): string => this.callArg(a, off, cls, type);
    const info = this.callInfo(name);
    const args = info.args.map((a) => argSlot(argOps[a.idx], a.off, a.cls, a.type));
    this.mod.reach(name);
    const callExpr = `F_${idx}(S, ${args.join(', ')})`;
    if (info.rets.length === 0) return `${callExpr};`;
    const retName = rets[0] && rets[0].k === 'sym' ? sanitize(rets[0].name) : 'ret';
    if (info.rets.length === 1) {
      const slot = this.local(`cr_${retName}_${info.rets[0].off}`);
      this.slotCls.set(slot, info.rets[0].cls);
      return `${slot} = ${callExpr};`;
    }
    const parts = [`q = ${callExpr};`];
    info.rets.forEach((r, k) => {
      const slot = this.local(`cr_${retName}_${r.off}`);
      this.slotCls.set(slot, r.cls);
      parts.push(`${slot} = q[${k}];`);
    });
    return parts.join(' ');
  }
}

/**
 * Loops whose body is one straight block: label, instructions with no label or sync point among them, then a
 * branch back to the label. They compile to a JS `for (;;)` instead of a jump through the dispatch switch on
 * every pass (branches out of the body still leave through the switch). Label index -> back-branch index.
 */
function simpleLoops(body: Stmt[], syncIdx: Set<number>): Map<number, number> {
  const out = new Map<number, number>();
  let head = -1;
  for (let i = 0; i < body.length; i++) {
    const s = body[i];
    if (isLabel(s)) { head = i; continue; }
    if (head < 0) continue;
    if (syncIdx.has(i) || s.op === '.branchtargets') { head = -1; continue; }
    const h = body[head];
    if (s.parts[0] === 'bra' && s.args[0]?.k === 'sym' && isLabel(h) && s.args[0].name === h.label) {
      out.set(head, i);
      head = -1;
    }
  }
  return out;
}

/** Those of `regs` that no instruction inside a loop (between a label and a later branch back to it) writes. */
function writtenOutsideLoops(body: Stmt[], regs: Set<string>): Set<string> {
  const at = new Map<string, number>();
  body.forEach((s, i) => { if (isLabel(s)) at.set(s.label, i); });
  const inLoop = new Uint8Array(body.length);
  body.forEach((s, j) => {
    if (isLabel(s)) return;
    const targets = s.parts[0] === 'bra' && s.args[0]?.k === 'sym' ? [s.args[0].name]
      : s.parts[0] === 'brx' && s.args[1]?.k === 'sym' ? branchTargets(body, s.args[1].name) ?? [] : [];
    for (const l of targets) {
      const t = at.get(l);
      if (t !== undefined && t <= j) inLoop.fill(1, t, j + 1);
    }
  });
  const out = new Set(regs);
  body.forEach((s, i) => {
    if (isLabel(s) || !inLoop[i]) return;
    for (const r of defsUses({ ...s, guard: null }).defs) out.delete(r);
  });
  return out;
}

/** A kernel that reads the cooperative workspace (this_grid().sync()) spins on other CTAs. */
function usesGridSync(fn: FuncDecl): boolean {
  return fn.body.some((s) => !isLabel(s) && s.args.some((a) => a.k === 'reg' && (a.name === '%envreg1' || a.name === '%envreg2')));
}

/**
 * Puts a `yield` sync point at the head of every loop (a label some later branch jumps back to), so a thread
 * spinning on another CTA hands the scheduler back control and the other CTAs of the grid make progress.
 */
function withLoopYields(body: Stmt[]): Stmt[] {
  const at = new Map<string, number>();
  body.forEach((s, i) => { if (isLabel(s)) at.set(s.label, i); });
  const heads = new Set<number>();
  body.forEach((s, i) => {
    if (isLabel(s) || s.parts[0] !== 'bra' || s.args[0]?.k !== 'sym') return;
    const t = at.get(s.args[0].name);
    if (t !== undefined && t <= i) heads.add(t);
  });
  if (heads.size === 0) return body;
  const out: Stmt[] = [];
  body.forEach((s, i) => {
    out.push(s);
    if (heads.has(i)) out.push({ op: 'yield', parts: ['yield'], guard: null, args: [], line: s.line });
  });
  return out;
}

export function jsName(reg: string): string {
  return 'r_' + sanitize(reg.replace(/^%/, ''));
}
export function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_]/g, (c) => '$' + c.charCodeAt(0).toString(16));
}
function symName(o: Operand | undefined): string {
  if (!o || o.k !== 'sym') throw new UnsupportedError('branch target must be a label');
  return o.name;
}

export class ModuleGen {
  readonly funcIndex = new Map<string, number>();
  readonly sharedOff = new Map<string, number>();
  private readonly infos = new Map<string, CallInfo>();
  private reached = new Set<string>();
  /** Set while compiling a kernel that uses grid-wide sync (cooperative groups). */
  gridSync = false;

  constructor(readonly ptx: PtxModule, readonly addrs: SymbolAddrs) {
    ptx.funcs.forEach((f, i) => { if (!f.external || !this.funcIndex.has(f.name)) this.funcIndex.set(f.name, i); });
  }

  reach(name: string): void { this.reached.add(name); }

  private taken: Set<string> | null = null;
  /** Functions whose address is used as a value (mov, initialisers): the possible indirect-call targets. */
  addressTaken(): Set<string> {
    if (this.taken) return this.taken;
    const out = new Set<string>();
    const isFn = (n: string): boolean => { const i = this.funcIndex.get(n); return i !== undefined && !this.ptx.funcs[i].external; };
    const walk = (o: Operand): void => {
      if (o.k === 'sym') { const b = o.name.split('+')[0]; if (isFn(b)) out.add(b); }
      else if (o.k === 'vec' || o.k === 'list') o.elems.forEach(walk);
    };
    for (const f of this.ptx.funcs) for (const s of f.body) if (!isLabel(s) && s.parts[0] !== 'call') s.args.forEach(walk);
    for (const v of this.ptx.vars) for (const t of v.init ?? []) { const b = t.split('+')[0]; if (isFn(b)) out.add(b); }
    this.taken = out;
    return out;
  }

  callInfo(name: string): CallInfo {
    let info = this.infos.get(name);
    if (info) return info;
    const f = this.ptx.funcs[this.funcIndex.get(name)!];
    const args = new Map<string, CallInfo['args'][number]>();
    const rets = new Map<number, CallInfo['rets'][number]>();
    for (const s of f.body) {
      if (isLabel(s) || s.parts[0] !== 'ld' && s.parts[0] !== 'st') continue;
      if (s.parts[1] !== 'param') continue;
      const addrOp = s.parts[0] === 'ld' ? s.args[1] : s.args[0];
      if (!addrOp || addrOp.k !== 'addr' || !addrOp.base) continue;
      const type = s.parts[s.parts.length - 1];
      const vec = s.parts.includes('v4') ? 4 : s.parts.includes('v2') ? 2 : 1;
      for (let e = 0; e < vec; e++) {
        const off = addrOp.off + e * typeSize(type);
        const pIdx = f.params.findIndex((p) => p.name === addrOp.base);
        if (s.parts[0] === 'ld' && pIdx >= 0) args.set(`${pIdx}:${off}`, { idx: pIdx, off, cls: clsOf(type), type });
        if (s.parts[0] === 'st' && f.rets.some((r) => r.name === addrOp.base)) rets.set(off, { off, cls: clsOf(type), type });
      }
    }
    info = { args: [...args.values()], rets: [...rets.values()].sort((a, b) => a.off - b.off) };
    this.infos.set(name, info);
    return info;
  }

  /** Shared layout for one kernel: module-level .shared first, then the kernel's own, extern at the end. */
  sharedLayout(k: FuncDecl): number {
    this.sharedOff.clear();
    let off = 0;
    const externs: VarDecl[] = [];
    const place = (v: VarDecl): void => {
      if (v.space !== 'shared') return;
      if (v.unsized || v.extern) { externs.push(v); return; }
      off = Math.ceil(off / v.align) * v.align;
      this.sharedOff.set(v.name, off);
      off += typeSize(v.type) * v.vec * v.count;
    };
    // Only what the kernel can reach: cub/thrust modules declare each kernel's shared storage at module
    // level, and summing all of them would exceed the per-block limit for every kernel.
    const { funcs, syms } = this.reachable(k);
    for (const v of this.ptx.vars) if (syms.has(v.name)) place(v);
    k.vars.forEach(place);
    for (const f of funcs) if (f !== k) f.vars.forEach(place);
    const dyn = Math.ceil(off / 16) * 16;
    for (const v of externs) this.sharedOff.set(v.name, dyn);
    return dyn;
  }

  private readonly symsOf = new Map<FuncDecl, Set<string>>();

  /** Symbol names a function's instructions mention (operands, address bases, call targets). */
  private symbols(f: FuncDecl): Set<string> {
    let out = this.symsOf.get(f);
    if (out) return out;
    const set = new Set<string>();
    const walk = (o: Operand): void => {
      switch (o.k) {
        case 'sym': set.add(o.name.split('+')[0]); break;
        case 'addr': if (o.base) set.add(o.base); break;
        case 'vec': case 'list': o.elems.forEach(walk); break;
        case 'pair': walk(o.a); walk(o.b); break;
        case 'not': walk(o.inner); break;
        default: break;
      }
    };
    for (const s of f.body) if (!isLabel(s)) s.args.forEach(walk);
    this.symsOf.set(f, set);
    return set;
  }

  /** Functions transitively referenced from `k` (by call or by address) and every symbol they mention. */
  reachable(k: FuncDecl): { funcs: FuncDecl[]; syms: Set<string> } {
    const funcs: FuncDecl[] = [k];
    const seen = new Set<FuncDecl>([k]);
    const syms = new Set<string>();
    for (let i = 0; i < funcs.length; i++) {
      for (const n of this.symbols(funcs[i])) {
        syms.add(n);
        const idx = this.funcIndex.get(n);
        if (idx === undefined) continue;
        const f = this.ptx.funcs[idx];
        if (!seen.has(f)) { seen.add(f); funcs.push(f); }
      }
    }
    return { funcs, syms };
  }

  private syncFuncs: Set<string> | null = null;

  kernel(k0: FuncDecl): KernelCode {
    const k = inlineSyncCalls(k0, this.ptx, this.syncFuncs ??= syncFunctions(this.ptx));
    const sharedStatic = this.sharedLayout(k);
    this.reached = new Set();
    this.gridSync = false;
    const kg = new FnGen(this, k, true);
    const kbody = kg.compile();
    const hasSync = kg.restore.length > 0 || kg.live.size > 0;
    // Compile every function the kernel reaches (transitively).
    const funcs: string[] = [];
    const done = new Set<string>();
    for (;;) {
      const next = [...this.reached].find((n) => !done.has(n));
      if (next === undefined) break;
      done.add(next);
      const idx = this.funcIndex.get(next)!;
      const f = this.ptx.funcs[idx];
      const g = new FnGen(this, f, false);
      const info = this.callInfo(next);
      const params = info.args.map((a) => `fa_${a.idx}_${a.off}`);
      funcs.push(`function F_${idx}(S${params.map((p) => ', ' + p).join('')}) {\n${g.compile()}\n}`);
    }
    let frame = kg.localFrameBytes();
    if (done.size) frame += CALL_STACK_BYTES;
    // Module-level `let`s rebound per launch: one closure per loaded kernel, so V8 optimises K once.
    const views = ['U8', 'I8', 'U16', 'I16', 'I32', 'F32', 'F64'];
    const viewVars = views.flatMap((v) => [`G_${v}`, `SH_${v}`, `LC_${v}`]);
    const params = this.paramReads.map((_, i) => `P${i}`);
    const src = [
      '"use strict";',
      `const SHW = ${SHARED_WINDOW}, LCW = ${LOCAL_WINDOW};`,
      `let E, AM, HB, PG, SL, LS, NTX, NTY, NTZ, NCX, NCY, NCZ, NWARP, HLEN, ${viewVars.join(', ')}${params.length ? ', ' + params.join(', ') : ''};`,
      'function bind(E_) {',
      'E = E_; AM = E.am; HB = E.hb; PG = E.pg; SL = E.sl; LS = E.ls; NTX = E.ntx; NTY = E.nty; NTZ = E.ntz; NCX = E.ncx; NCY = E.ncy; NCZ = E.ncz; NWARP = E.nwarp; HLEN = E.hl;',
      ...views.map((v) => `G_${v} = E.g.${v.toLowerCase()}; SH_${v} = E.sh.${v.toLowerCase()}; LC_${v} = E.lc.${v.toLowerCase()};`),
      // An i64 param holds its number, or NaN for a BigInt (read from E.P then; see paramSlot).
      ...params.map((p, i) => clsOf(this.paramReads[i].type) === 'l' ? `${p} = typeof E.P[${i}] === 'number' ? E.P[${i}] : NaN;` : `${p} = E.P[${i}];`),
      '}',
      ...funcs,
      `function K(S) {\n${kbody}\n}`,
      'return { K, bind };',
      `//# sourceURL=kernel_${sanitize(k.name)}.js`,
    ].join('\n');
    return { name: k.name, src, hasSync, gridSync: this.gridSync, paramReads: this.takeParamReads(), sharedStatic, localBytes: frame };
  }

  kernelParamOffset(k: FuncDecl, idx: number): number {
    return paramLayout(k.params).offsets[idx];
  }

  // Kernel-param reads collected while compiling the kernel body.
  private paramReads: { off: number; type: string }[] = [];
  /**
   * Expression reading a kernel param. Float and i64 params are read through a unary `+`, so V8 holds the
   * registers they flow into as raw doubles: one boxed value among a register's sources makes V8 box every
   * value it takes, an allocation per resume of a parked thread. A BigInt i64 param takes the E.P branch.
   */
  paramSlot(g: FnGen, off: number, type: string): string {
    let i = this.paramReads.findIndex((p) => p.off === off && p.type === type);
    if (i < 0) { i = this.paramReads.length; this.paramReads.push({ off, type }); }
    const c = clsOf(type);
    if (c === 'f' || c === 'd') return `(+P${i})`;
    if (c !== 'l') return `P${i}`;
    const t = g.local('i64p');
    return `((${t} = +P${i}) === ${t} ? ${t} : E.P[${i}])`;
  }
  private takeParamReads(): { off: number; type: string }[] {
    const r = this.paramReads;
    this.paramReads = [];
    return r;
  }
}

export function compileModule(ptx: PtxModule, addrs: SymbolAddrs): KernelCode[] {
  const mg = new ModuleGen(ptx, addrs);
  return ptx.funcs.filter((f) => f.kind === 'entry' && !f.external).map((k) => mg.kernel(k));
}

export { SYNC_OPS };
