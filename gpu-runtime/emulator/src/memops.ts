// ld / st / atom / red in every state space -> JS statements over typed-array views. Each access is
// bounds- and alignment-checked inline (global: against the context's live pages; shared: the CTA's size;
// local: the thread's frame) and faults through E.gfault/sfault/lfault, which throw the CUDA error.

import { Instr, Operand, typeSize } from './ir';
import { FnGen, jsName, sanitize } from './codegen';
import { UnsupportedError, clsOf, conv } from './values';
import { ATOM_OP } from './atomics';

type Space = 'global' | 'shared' | 'local' | 'generic';
const SPACES = new Set(['global', 'shared', 'local', 'const', 'param', 'shared::cta', 'shared::cluster']);
const ATOM_OPS = new Set(['add', 'inc', 'dec', 'min', 'max', 'and', 'or', 'xor', 'exch', 'cas']);

export function emitMem(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  const op = p[0];
  if (op !== 'ld' && op !== 'ldu' && op !== 'st' && op !== 'atom' && op !== 'red') return null;
  let space = p.find((q) => SPACES.has(q)) ?? 'generic';
  if (space.startsWith('shared')) space = 'shared';
  const vec = p.includes('v4') ? 4 : p.includes('v2') ? 2 : p.includes('v8') ? 8 : 1;
  const type = p[p.length - 1];
  // Half-precision atomics: add only, one value (atomicAdd on __half, __half2, __nv_bfloat16(2)).
  const halfAtom = (op === 'atom' || op === 'red') && HALF_ATOM.has(type) && vec === 1;
  if (!halfAtom && p.some((q) => q === 'b128' || q === 'v8' || q === 'f16x2' || q === 'bf16x2' || q === 'noftz')) {
    throw new UnsupportedError(`'${ins.op}' is not supported by the emulator`);
  }
  const es = typeSize(type);
  if (!es) throw new UnsupportedError(`'${ins.op}': unknown type`);
  if (space === 'param') return param(g, ins, type, vec);
  const sp: Space = space === 'const' ? 'global' : (space as Space);
  if (op === 'ld' || op === 'ldu') {
    const d = ins.args[0];
    const dsts = d.k === 'vec' ? d.elems : [d];
    const body = (V: string): string => dsts.map((o, k) => (o.k === 'sink' ? '' : g.wr(o, type, read(type, V, k ? `t + ${k * es}` : 't')))).join(' ');
    return access(g, sp, addrExpr(g, ins.args[1], sp), es * vec, body);
  }
  if (op === 'st') {
    const s = ins.args[1];
    const srcs = s.k === 'vec' ? s.elems : [s];
    const body = (V: string): string => srcs.map((o, k) => write(type, V, k ? `t + ${k * es}` : 't', g.rd(o, type))).join(' ');
    return access(g, sp, addrExpr(g, ins.args[0], sp), es * vec, body);
  }
  // atom / red
  const aop = p.find((q) => ATOM_OPS.has(q));
  if (!aop) throw new UnsupportedError(`'${ins.op}': unknown atomic operation`);
  const isRed = op === 'red';
  const dst = isRed ? null : ins.args[0];
  const addr = isRed ? ins.args[0] : ins.args[1];
  const b = g.rd(isRed ? ins.args[1] : ins.args[2], halfAtom ? (es === 4 ? 'b32' : 'b16') : type);
  const c = aop === 'cas' ? g.rd(ins.args[3], type) : '';
  const body = (V: string): string => atomBody(g, V, aop, type, b, c) + (dst ? ' ' + g.wr(dst, type, 'g') : '');
  return access(g, sp, addrExpr(g, addr, sp), es, body);
}

function addrExpr(g: FnGen, o: Operand, sp: Space): string {
  if (o.k !== 'addr') throw new UnsupportedError('expected an address operand');
  if (o.base === null) return String(o.off);
  if (o.base.startsWith('%')) {
    const r = g.reg(o.base);
    return o.off ? `(${r} + ${o.off})` : r;
  }
  if (sp === 'local' || sp === 'generic') {
    const isLocal = g.fn.vars.some((v) => v.name === o.base && v.space === 'local');
    if (isLocal && sp === 'generic') throw new UnsupportedError('generic access through a local symbol');
  }
  const base = g.symExpr(o.base);
  return o.off ? `(${base} + ${o.off})` : base;
}

function read(type: string, V: string, off: string): string {
  switch (type) {
    case 'u8': case 'b8': return `${V}_U8[${off}]`;
    case 's8': return `${V}_I8[${off}]`;
    case 'u16': case 'b16': case 'f16': case 'bf16': return `${V}_U16[(${off}) >>> 1]`;
    case 's16': return `${V}_I16[(${off}) >>> 1]`;
    case 'u32': case 's32': case 'b32': return `${V}_I32[(${off}) >>> 2]`;
    case 'f32': return `${V}_F32[(${off}) >>> 2]`;
    case 'f64': return `${V}_F64[(${off}) >>> 3]`;
    case 'u64': case 's64': case 'b64': return `R.pack64(${V}_I32[(${off}) >>> 2], ${V}_I32[((${off}) >>> 2) + 1])`;
    default: throw new UnsupportedError(`load of .${type}`);
  }
}

function write(type: string, V: string, off: string, val: string): string {
  switch (type) {
    case 'u8': case 'b8': case 's8': return `${V}_U8[${off}] = ${val};`;
    case 'u16': case 'b16': case 's16': case 'f16': case 'bf16': return `${V}_U16[(${off}) >>> 1] = ${val};`;
    case 'u32': case 's32': case 'b32': return `${V}_I32[(${off}) >>> 2] = ${val};`;
    case 'f32': return `${V}_F32[(${off}) >>> 2] = ${val};`;
    case 'f64': return `${V}_F64[(${off}) >>> 3] = ${val};`;
    case 'u64': case 's64': case 'b64':
      return `nv = ${val}; q = (${off}) >>> 2; ${V}_I32[q] = R.lo32(nv); ${V}_I32[q + 1] = R.hi32(nv);`;
    default: throw new UnsupportedError(`store of .${type}`);
  }
}

/**
 * True when the access at byte offset t faults. The conditions are or-ed bitwise, not with ||: one branch per
 * access instead of one per condition, which about halves V8's compile time of a kernel full of accesses
 * (every branch is a merge of all live registers). Every operand is safe to evaluate when an earlier one
 * already failed (an out-of-range page index reads undefined); NaN fails the first.
 */
function bad(size: number, lim: string, page: boolean): string {
  const align = size > 1 ? ` | ((t & ${size - 1}) !== 0)` : '';
  return `!(t >= 0) | (t + ${size} > ${lim})${page ? ' | (PG[t >>> 8] !== 1)' : ''}${align}`;
}

function access(g: FnGen, sp: Space, addr: string, size: number, body: (V: string) => string): string {
  void g;
  const glob = `t = g - HB; if (${bad(size, 'HLEN', true)}) E.gfault(g, ${size}); ${body('G')}`;
  const shar = `if (${bad(size, 'SL', false)}) E.sfault(t, ${size}); ${body('SH')}`;
  const loc = `if (${bad(size, 'LS', false)}) E.lfault(t, ${size}); t += LB; ${body('LC')}`;
  switch (sp) {
    case 'global': return `g = ${addr}; ${glob}`;
    case 'shared': return `t = ${addr}; ${shar}`;
    case 'local': return `t = ${addr}; ${loc}`;
    case 'generic':
      return `g = ${addr}; if (g >= SHW && g < SHW + 4294967296) { t = g - SHW; ${shar} } ` +
        `else if (g >= LCW && g < LCW + 4294967296) { t = g - LCW; ${loc} } else { ${glob} }`;
  }
}

/** Global atomics take the real-Atomics path (atomics.ts) when the launch is split across workers (AM). */
function atomBody(g: FnGen, V: string, aop: string, type: string, b: string, c: string): string {
  if (HALF_ATOM.has(type)) return halfAtomBody(V, aop, type, b);
  if (clsOf(type) === 'i' && typeSize(type) === 2) return int16AtomBody(V, aop, type, b, c);
  const plain = plainAtomBody(g, V, aop, type, b, c);
  if (V !== 'G') return plain;
  const cls = clsOf(type);
  const op = ATOM_OP[aop];
  const signed = type[0] === 's';
  const shared = cls === 'i' ? `E.at32(${op}, t >>> 2, ${b}, ${c || 0}, ${signed})`
    : cls === 'l' ? `E.at64(${op}, t, ${b}, ${c || 0}, ${signed})`
    : `E.atf(${op}, t, ${b}, ${cls === 'd'})`;
  return `if (AM) g = ${shared}; else { ${plain} }`;
}

const HALF_ATOM = new Set(['f16', 'bf16', 'f16x2', 'bf16x2']);

/**
 * atom/red.add.noftz on f16/bf16 (a half of a 32-bit word) and their x2 packs (a whole word), rounded once per
 * half as the hardware does (R.hop).
 */
function halfAtomBody(V: string, aop: string, type: string, b: string): string {
  if (aop !== 'add') throw new UnsupportedError(`atom.${aop}.${type}`);
  const add = (x: string): string => `R.hop(0, '${type}', ${x}, ${b}, 0, 0)`;
  if (!type.endsWith('x2')) return word16Body(V, add('g'));
  const plain = `q = t >>> 2; g = ${V}_I32[q]; ${V}_I32[q] = ${add('g')};`;
  if (V !== 'G') return plain;
  return `if (AM) { q = t >>> 2; for (;;) { g = Atomics.load(G_I32, q); if (Atomics.compareExchange(G_I32, q, g, ${add('g')}) === g) break; } } else { ${plain} }`;
}

/** 16-bit integer atomics (atom.cas.b16, which nvcc emits for bf16 atomicAdd before sm_90; exch; add). */
function int16AtomBody(V: string, aop: string, type: string, b: string, c: string): string {
  if (aop === 'cas') return word16Body(V, `(${c}) & 65535`, `g === ((${b}) & 65535)`);
  if (aop === 'exch') return word16Body(V, `(${b}) & 65535`);
  if (aop === 'add') return word16Body(V, `(g + (${b})) & 65535`);
  throw new UnsupportedError(`atom.${aop}.${type}`);
}

/**
 * A read-modify-write of the 16 bits at byte offset t (bits 0-15 or 16-31 of its word, little-endian): g is the
 * old value, `next` the new one, written only when `cond` holds. A split launch (AM) makes it a compare-exchange
 * loop on the whole word, as other threads may change the word's other half meanwhile.
 */
function word16Body(V: string, next: string, cond = 'true'): string {
  const sh = '((t & 2) << 3)';
  const merged = `(nv & ~(65535 << ${sh})) | ((${next}) << ${sh})`;
  const plain = `q = t >>> 2; nv = ${V}_I32[q]; g = (nv >>> ${sh}) & 65535; if (${cond}) ${V}_I32[q] = ${merged};`;
  if (V !== 'G') return plain;
  return `if (AM) { q = t >>> 2; for (;;) { nv = Atomics.load(G_I32, q); g = (nv >>> ${sh}) & 65535; if (!(${cond}) || Atomics.compareExchange(G_I32, q, nv, ${merged}) === nv) break; } } else { ${plain} }`;
}

function plainAtomBody(g: FnGen, V: string, aop: string, type: string, b: string, c: string): string {
  const cls = clsOf(type);
  const signed = type[0] === 's';
  if (cls === 'i') {
    const nv: Record<string, string> = {
      add: `(g + bv) | 0`, and: `g & bv`, or: `g | bv`, xor: `g ^ bv`, exch: `bv`, cas: `g === bv ? cv : g`,
      min: signed ? `Math.min(g, bv)` : `((g >>> 0) < (bv >>> 0) ? g : bv)`,
      max: signed ? `Math.max(g, bv)` : `((g >>> 0) > (bv >>> 0) ? g : bv)`,
      inc: `((g >>> 0) >= (bv >>> 0) ? 0 : (g + 1) | 0)`, dec: `(g === 0 || (g >>> 0) > (bv >>> 0) ? bv : (g - 1) | 0)`,
    };
    if (typeSize(type) !== 4) throw new UnsupportedError(`atom on .${type}`);
    return `q = t >>> 2; g = ${V}_I32[q]; ${V}_I32[q] = ${subst(nv[aop], b, c)};`;
  }
  if (cls === 'f' || cls === 'd') {
    const view = cls === 'f' ? `${V}_F32[t >>> 2]` : `${V}_F64[t >>> 3]`;
    if (aop === 'add') return `g = ${view}; ${view} = ${cls === 'f' ? `Math.fround(g + ${b})` : `g + ${b}`};`;
    if (aop === 'exch') return `g = ${view}; ${view} = ${b};`;
    if (aop === 'min' || aop === 'max') return `g = ${view}; ${view} = R.f${aop}(g, ${b});`;
    throw new UnsupportedError(`atom.${aop}.${type}`);
  }
  if (cls === 'l') {
    const nv: Record<string, string> = {
      add: `R.add64(g, bv)`, and: `R.and64(g, bv)`, or: `R.or64(g, bv)`, xor: `R.xor64(g, bv)`, exch: `bv`,
      cas: `R.eq64(g, bv) ? cv : g`, min: `R.min64(g, bv, ${signed})`, max: `R.max64(g, bv, ${signed})`,
      inc: `(!R.lt64(g, bv, false) ? 0 : R.add64(g, 1))`, dec: `(R.eq64(g, 0) || R.lt64(bv, g, false) ? bv : R.sub64(g, 1))`,
    };
    return `q = t >>> 2; g = R.pack64(${V}_I32[q], ${V}_I32[q + 1]); nv = ${subst(nv[aop], b, c)}; ${V}_I32[q] = R.lo32(nv); ${V}_I32[q + 1] = R.hi32(nv);`;
  }
  throw new UnsupportedError(`atom on .${type}`);
}

function subst(tpl: string, b: string, c: string): string {
  return tpl.replace(/bv/g, `(${b})`).replace(/cv/g, `(${c})`);
}

/** Param space: kernel params are per-launch constants; function params and call slots are JS locals. */
function param(g: FnGen, ins: Instr, type: string, vec: number): string {
  const isLd = ins.parts[0] === 'ld';
  const addr = isLd ? ins.args[1] : ins.args[0];
  const val = isLd ? ins.args[0] : ins.args[1];
  if (addr.k !== 'addr' || !addr.base) throw new UnsupportedError('param access needs a named parameter');
  const es = typeSize(type);
  const elems = val.k === 'vec' ? val.elems : [val];
  if (elems.length !== vec) throw new UnsupportedError('vector width mismatch');
  const fn = g.fn;
  const out: string[] = [];
  elems.forEach((o, k) => {
    const off = addr.off + k * es;
    if (isLd) {
      const kp = fn.params.findIndex((x) => x.name === addr.base);
      if (kp >= 0 && g.isKernel) {
        out.push(g.wr(o, type, g.mod.paramSlot(g, g.mod.kernelParamOffset(fn, kp) + off, type)));
      } else if (kp >= 0) {
        const info = g.callInfo(fn.name).args.find((a) => a.idx === kp && a.off === off);
        out.push(g.wr(o, type, info ? conv(`fa_${kp}_${off}`, info.cls, clsOf(type), type) : '0'));
      } else {
        const slot = `cr_${sanitize(addr.base!)}_${off}`;
        const have = g.slotCls.get(slot);
        if (!have) throw new UnsupportedError(`read of call result ${addr.base}+${off} that the callee does not return`);
        out.push(g.wr(o, type, conv(slot, have, clsOf(type), type)));
      }
    } else {
      if (fn.rets.some((r) => r.name === addr.base)) {
        const info = g.callInfo(fn.name).rets.find((r) => r.off === off);
        const v = g.rd(o, type);
        out.push(`${g.local(`fr_${off}`)} = ${info ? conv(v, clsOf(type), info.cls, type) : v};`);
      } else {
        const slot = g.local(`cp_${sanitize(addr.base!)}_${off}`);
        g.slotCls.set(slot, clsOf(type));
        out.push(`${slot} = ${g.rd(o, type)};`);
      }
    }
  });
  return out.join(' ');
}

export { jsName };
