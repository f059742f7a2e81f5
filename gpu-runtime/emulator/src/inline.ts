// Inlines calls to device functions that contain barriers or warp collectives into the kernel. A sync point
// parks the thread by returning from the kernel function, which a JS call chain cannot resume; inlined, the
// callee's sync points become the kernel's own. The call's param slots (unique per call block, see the
// parser) become registers, so they survive a sync point in the inlined body like any other value.

import { FuncDecl, Instr, Operand, PtxModule, RegDecl, Stmt, VarDecl, isLabel } from './ir';
import { isSyncInstr } from './syncops';
import { UnsupportedError } from './values';

const MAX_DEPTH = 16;

/** Functions that contain a sync point themselves or through a call. */
export function syncFunctions(ptx: PtxModule): Set<string> {
  const byName = new Map(ptx.funcs.filter((f) => !f.external).map((f) => [f.name, f]));
  const out = new Set<string>();
  for (const f of byName.values()) if (f.kind === 'func' && f.body.some((s) => !isLabel(s) && isSyncInstr(s))) out.add(f.name);
  for (let changed = true; changed;) {
    changed = false;
    for (const f of byName.values()) {
      if (f.kind !== 'func' || out.has(f.name)) continue;
      if (f.body.some((s) => !isLabel(s) && s.parts[0] === 'call' && callTarget(s) !== null && out.has(callTarget(s)!))) { out.add(f.name); changed = true; }
    }
  }
  return out;
}

function callTarget(ins: Instr): string | null {
  const i = ins.args[0]?.k === 'list' ? 1 : 0;
  const t = ins.args[i];
  return t && t.k === 'sym' ? t.name : null;
}

/** `k` with every call to a function in `sync` inlined (recursively); `k` itself when there is none. */
export function inlineSyncCalls(k: FuncDecl, ptx: PtxModule, sync: Set<string>): FuncDecl {
  const isTarget = (s: Stmt): boolean => !isLabel(s) && s.parts[0] === 'call' && sync.has(callTarget(s) ?? '');
  if (!k.body.some(isTarget)) return k;
  const byName = new Map(ptx.funcs.filter((f) => !f.external).map((f) => [f.name, f]));
  const regs: RegDecl[] = [...k.regs];
  const vars: VarDecl[] = [...k.vars];
  const slots = new Set<string>();
  let body = k.body;
  let seq = 0;
  for (let depth = 0; body.some(isTarget); depth++) {
    if (depth >= MAX_DEPTH) throw new UnsupportedError(`${k.name}: recursive device function with a barrier or warp collective`);
    const out: Stmt[] = [];
    for (const s of body) {
      if (!isTarget(s)) { out.push(s); continue; }
      const call = s as Instr;
      if (call.guard) throw new UnsupportedError(`${k.name}: guarded call to ${callTarget(call)}, which contains a barrier`);
      const i = call.args[0]?.k === 'list' ? 1 : 0;
      const rets = i === 1 ? (call.args[0] as { elems: Operand[] }).elems : [];
      const args = call.args[i + 1]?.k === 'list' ? (call.args[i + 1] as { elems: Operand[] }).elems : [];
      const f = byName.get(callTarget(call)!)!;
      if (f.vars.some((v) => v.space === 'local')) throw new UnsupportedError(`${f.name}: a device function with local memory and a barrier is not supported`);
      const n = ++seq;
      const sfx = `$in${n}`;
      const rename = new Map<string, string>();
      for (const r of f.regs) { rename.set(r.name, r.name + sfx); regs.push({ name: r.name + sfx, type: r.type }); }
      const labels = new Set(f.body.filter(isLabel).map((l) => l.label));
      // Callee params/rets read or written through [name+off] map onto the caller's call-block slots.
      const slotOf = new Map<string, string>();
      f.params.forEach((p, j) => { const a = args[j]; if (a?.k === 'sym') slotOf.set(p.name, a.name); });
      f.rets.forEach((p, j) => { const a = rets[j]; if (a?.k === 'sym') slotOf.set(p.name, a.name); });
      for (const v of slotOf.values()) slots.add(v);
      for (const v of f.vars) if (v.space === 'shared' && !vars.some((x) => x.name === v.name)) vars.push(v);
      const end = `$Lret${sfx}`;
      const fix = (o: Operand): Operand => {
        switch (o.k) {
          case 'reg': return rename.has(o.name) ? { k: 'reg', name: rename.get(o.name)! } : o;
          case 'sym':
            if (rename.has(o.name)) return { k: 'reg', name: rename.get(o.name)! };
            if (labels.has(o.name)) return { k: 'sym', name: o.name + sfx };
            return o;
          case 'addr':
            if (!o.base) return o;
            if (rename.has(o.base)) return { ...o, base: rename.get(o.base)! };
            if (slotOf.has(o.base)) return { ...o, base: slotOf.get(o.base)! };
            return o;
          case 'vec': case 'list': return { ...o, elems: o.elems.map(fix) };
          case 'pair': return { k: 'pair', a: fix(o.a), b: fix(o.b) };
          case 'not': return { k: 'not', inner: fix(o.inner) };
          default: return o;
        }
      };
      for (const t of f.body) {
        if (isLabel(t)) { out.push({ label: t.label + sfx, line: t.line }); continue; }
        const guard = t.guard ? { reg: rename.get(t.guard.reg) ?? t.guard.reg, neg: t.guard.neg } : null;
        if (t.parts[0] === 'ret') { out.push({ op: 'bra', parts: ['bra'], guard, args: [{ k: 'sym', name: end }], line: t.line }); continue; }
        out.push({ ...t, guard, args: t.args.map(fix) });
      }
      out.push({ label: end, line: call.line });
    }
    body = out;
  }
  body = slotsToRegs(body, slots, regs);
  return { ...k, body, regs, vars };
}

/** st.param/ld.param on an inlined call's slots -> mov to/from one register per (slot, offset). */
function slotsToRegs(body: Stmt[], slots: Set<string>, regs: RegDecl[]): Stmt[] {
  const declared = new Map<string, string>();
  const regFor = (base: string, off: number, type: string): Operand => {
    const name = `%slot_${base}_${off}`;
    if (!declared.has(name)) { declared.set(name, type); regs.push({ name, type }); }
    return { k: 'reg', name };
  };
  return body.map((s) => {
    if (isLabel(s) || (s.parts[0] !== 'ld' && s.parts[0] !== 'st') || s.parts[1] !== 'param') return s;
    const isLd = s.parts[0] === 'ld';
    const addr = isLd ? s.args[1] : s.args[0];
    if (addr?.k !== 'addr' || !addr.base || !slots.has(addr.base)) return s;
    const type = s.parts[s.parts.length - 1];
    const val = isLd ? s.args[0] : s.args[1];
    const elems = val.k === 'vec' ? val.elems : [val];
    const es = type.endsWith('64') ? 8 : type.endsWith('16') ? 2 : type.endsWith('8') ? 1 : 4;
    const movs: Instr[] = elems.map((e, j) => {
      const r = regFor(addr.base!, addr.off + j * es, type);
      return { op: `mov.${type}`, parts: ['mov', type], guard: s.guard, args: isLd ? [e, r] : [r, e], line: s.line };
    });
    return movs;
  }).flat();
}
