// Arithmetic, logic, compare, convert and move instructions -> JS statements. Returns null for opcodes it does
// not know so the caller can try the memory emitter and finally refuse the module.

import { Instr, Operand, typeSize } from './ir';
import type { FnGen } from './codegen';
import { Cls, UnsupportedError, clsOf, isSigned, wrapInt } from './values';
import { emitFloat, isFloatArith, roundMode } from './falu';

const HALF = new Set(['f16', 'bf16', 'f16x2', 'bf16x2']);
const HALF_OPS = ['add', 'sub', 'mul', 'fma', 'neg', 'abs', 'min', 'max', 'min.NaN', 'max.NaN', 'ex2', 'tanh'];

export function emitAlu(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  const op = p[0];
  const type = p[p.length - 1];
  const a = ins.args;
  const has = (q: string): boolean => p.includes(q);
  const R = (o: Operand, t = type): string => g.rd(o, t);
  const W = (e: string, t = type): string => g.wr(a[0], t, e);
  if (op === 'wmma') return null; // fragment loads/stores: asyncops.ts / mma.ts
  if (HALF.has(type) && op !== 'mov' && op !== 'selp' && op !== 'cvt' && op !== 'setp' && op !== 'set' && op !== 'atom' && op !== 'red') {
    const hop = HALF_OPS.indexOf(has('NaN') ? `${op}.NaN` : op);
    if (hop < 0 || has('xorsign')) throw new UnsupportedError(`'${ins.op}' (half-precision ${op}) is not supported by the emulator`);
    const x = (k: number): string => (a[k] ? R(a[k], 'b32') : '0');
    const flags = (has('sat') ? 1 : 0) | (has('relu') ? 2 : 0);
    return W(`R.hop(${hop}, '${type}', ${x(1)}, ${x(2)}, ${x(3)}, ${flags})`, type.endsWith('x2') ? 'b32' : 'b16');
  }
  if (isFloatArith(op, type)) return emitFloat(g, ins);
  switch (op) {
    case 'mov': return mov(g, ins);
    case 'add': case 'sub': {
      const c = clsOf(type);
      const sym = op === 'add' ? '+' : '-';
      if (has('cc')) return carry(g, ins);
      if (c === 'i') {
        if (has('sat')) return W(`R.sats32(${R(a[1])} ${sym} ${R(a[2])})`);
        return W(wrapInt(type, `${R(a[1])} ${sym} ${R(a[2])}`));
      }
      if (c === 'l') return W(add64(g, R(a[1]), R(a[2]), sym));
      throw new UnsupportedError(`${op}.${type}`);
    }
    case 'addc': case 'subc': return carry(g, ins);
    case 'madc': return madCarry(g, ins);
    case 'mul': case 'mul24': {
      const c = clsOf(type);
      if (op === 'mul24') { if (has('hi')) return null; return W(`Math.imul(${R(a[1])} << 8 >> 8, ${R(a[2])} << 8 >> 8)`); }
      return W(intMul(g, type, has('hi') ? 'hi' : has('wide') ? 'wide' : 'lo', R(a[1]), R(a[2])), has('wide') ? wide(type) : type);
    }
    case 'mad': case 'mad24': {
      const c = clsOf(type);
      if (has('cc')) return madCarry(g, ins);
      if (op === 'mad24') { if (has('hi')) return null; return W(`(Math.imul(${R(a[1])} << 8 >> 8, ${R(a[2])} << 8 >> 8) + ${R(a[3])}) | 0`); }
      const mode = has('hi') ? 'hi' : has('wide') ? 'wide' : 'lo';
      const prod = intMul(g, type, mode, R(a[1]), R(a[2]));
      const dt = mode === 'wide' ? wide(type) : type;
      const dc = clsOf(dt);
      if (dc === 'l') return W(add64(g, prod, g.rd(a[3], dt), '+'), dt);
      return W(wrapInt(dt, `${prod} + ${g.rd(a[3], dt)}`), dt);
    }
    case 'div': {
      const c = clsOf(type);
      if (c === 'l') return W(`R.div64(${R(a[1])}, ${R(a[2])}, ${isSigned(type)})`);
      return W(wrapInt(type, `R.div${isSigned(type) ? 's' : 'u'}(${R(a[1])}, ${R(a[2])})`));
    }
    case 'rem': {
      const c = clsOf(type);
      if (c === 'l') return W(`R.rem64(${R(a[1])}, ${R(a[2])}, ${isSigned(type)})`);
      return W(wrapInt(type, `R.rem${isSigned(type) ? 's' : 'u'}(${R(a[1])}, ${R(a[2])})`));
    }
    case 'abs': case 'neg': {
      const c = clsOf(type);
      const x = R(a[1]);
      if (c === 'l') return W(`R.${op}64(${x})`);
      return W(wrapInt(type, op === 'abs' ? `Math.abs(${x})` : `-${x}`));
    }
    case 'min': case 'max': {
      const c = clsOf(type);
      if (p.length > 2 && p.some((q) => q === 'relu' || q === 'NaN' || q === 'xorsign')) return null;
      if (c === 'l') return W(`R.${op}64(${R(a[1])}, ${R(a[2])}, ${isSigned(type)})`);
      const u = isSigned(type) ? '' : ' >>> 0';
      const cmp = op === 'min' ? '<' : '>';
      return W(`(t = ${R(a[1])}, q = ${R(a[2])}, (t${u}) ${cmp} (q${u}) ? t : q)`);
    }
    case 'and': case 'or': case 'xor': {
      const c = clsOf(type);
      const x = R(a[1]), y = R(a[2]);
      if (c === 'p') return W(op === 'and' ? `${x} && ${y}` : op === 'or' ? `${x} || ${y}` : `${x} !== ${y}`);
      if (c === 'l') return W(`R.${op}64(${x}, ${y})`);
      return W(wrapInt(type, `${x} ${op === 'and' ? '&' : op === 'or' ? '|' : '^'} ${y}`));
    }
    case 'not': {
      const c = clsOf(type);
      if (c === 'p') return W(`!${R(a[1])}`);
      if (c === 'l') return W(`R.not64(${R(a[1])})`);
      return W(wrapInt(type, `~${R(a[1])}`));
    }
    case 'cnot': return W(`(${R(a[1])} === 0 ? 1 : 0)`);
    case 'shl': case 'shr': {
      const c = clsOf(type);
      const x = R(a[1]);
      const n = g.rd(a[2], 'u32');
      if (c === 'l') return op === 'shl' ? W(`R.shl64(${x}, ${n})`) : W(`R.shr64(${x}, ${n}, ${isSigned(type)})`);
      const w = type.endsWith('16') ? 16 : type.endsWith('8') ? 8 : 32;
      if (a[2].k === 'imm') {
        // Constant shift amount (the common case): no range test at run time.
        const k = Number(BigInt.asUintN(32, BigInt(a[2].text.replace(/[uU]$/, ''))));
        if (op === 'shl') return W(k >= w ? '0' : wrapInt(type, `${x} << ${k}`));
        if (isSigned(type)) return W(`${x} >> ${Math.min(k, 31)}`);
        if (k >= w) return W('0');
        return W(wrapInt(type, w === 32 ? `${x} >>> ${k}` : `(${x} & ${w === 16 ? 65535 : 255}) >>> ${k}`));
      }
      if (op === 'shl') return W(wrapInt(type, `(q = ${n}) >>> 0 >= ${w} ? 0 : ${x} << q`));
      if (isSigned(type)) return W(`${x} >> Math.min(${n} >>> 0, 31)`);
      return W(wrapInt(type, `(q = ${n}) >>> 0 >= ${w} ? 0 : ${w === 32 ? x : `(${x} & ${w === 16 ? 65535 : 255})`} >>> q`));
    }
    case 'popc': return W(clsOf(type) === 'l' ? `R.popc64(${R(a[1])})` : `R.popc(${R(a[1])})`, 'u32');
    case 'clz': return W(clsOf(type) === 'l' ? `R.clz64(${R(a[1])})` : `Math.clz32(${R(a[1])})`, 'u32');
    case 'brev': return W(clsOf(type) === 'l' ? `R.brev64(${R(a[1])})` : `R.brev(${R(a[1])})`);
    case 'bfind': {
      const sa = has('shiftamt');
      return W(clsOf(type) === 'l' ? `R.bfind64(${R(a[1])}, ${isSigned(type)}, ${sa})` : `R.bfind(${R(a[1])}, ${isSigned(type)}, ${sa})`, 'u32');
    }
    case 'bfe': {
      const pos = g.rd(a[2], 'u32'), len = g.rd(a[3], 'u32');
      if (clsOf(type) === 'l') return W(`R.bfe64(${R(a[1])}, ${pos}, ${len}, ${isSigned(type)})`);
      return W(`R.bfe(${R(a[1])}, ${pos}, ${len}, ${isSigned(type)})`);
    }
    case 'bfi': {
      const pos = g.rd(a[3], 'u32'), len = g.rd(a[4], 'u32');
      if (clsOf(type) === 'l') return W(`R.bfi64(${R(a[1])}, ${R(a[2])}, ${pos}, ${len})`);
      return W(`R.bfi(${R(a[1])}, ${R(a[2])}, ${pos}, ${len})`);
    }
    case 'sad': {
      // d = c + |a - b|: the difference of two 32-bit values is exact in a double.
      if (clsOf(type) === 'l') return null;
      const x = isSigned(type) ? R(a[1]) : `(${R(a[1])} >>> 0)`, y = isSigned(type) ? R(a[2]) : `(${R(a[2])} >>> 0)`;
      return W(wrapInt(type, `${R(a[3])} + Math.abs(${x} - ${y})`));
    }
    case 'dp4a': return W(`R.dp4a(${R(a[1], 'b32')}, ${R(a[2], 'b32')}, ${R(a[3], 'b32')}, ${p[1] === 's32'}, ${p[2] === 's32'})`, 'b32');
    case 'dp2a': return W(`R.dp2a(${R(a[1], 'b32')}, ${R(a[2], 'b32')}, ${R(a[3], 'b32')}, ${p[1] === 'hi'}, ${p[2] === 's32'}, ${p[3] === 's32'})`, 'b32');
    case 'fns': return W(`R.fns(${R(a[1], 'b32')}, ${R(a[2], 'u32')}, ${R(a[3], 's32')})`, 'b32');
    case 'bmsk': return W(`R.bmsk(${g.rd(a[1], 'u32')}, ${g.rd(a[2], 'u32')}, ${p[1] === 'wrap'})`, 'b32');
    case 'shf': return W(`R.shf(${R(a[1], 'b32')}, ${R(a[2], 'b32')}, ${g.rd(a[3], 'u32')}, ${p[1] === 'l'}, ${p[2] === 'wrap'})`, 'b32');
    case 'prmt': {
      const mode = p.length > 2 ? p[2] : '';
      return W(`R.prmt(${R(a[1], 'b32')}, ${R(a[2], 'b32')}, ${R(a[3], 'b32')}, '${mode}')`, 'b32');
    }
    case 'testp': {
      const x = R(a[1]);
      const t: Record<string, string> = {
        finite: `Number.isFinite(${x})`, infinite: `(${x} === Infinity || ${x} === -Infinity)`, number: `(${x} === ${x})`,
        notanumber: `(${x} !== ${x})`, normal: `(Math.abs(${x}) >= ${type === 'f32' ? '1.1754943508222875e-38' : '2.2250738585072014e-308'} && Number.isFinite(${x}))`,
        subnormal: `(${x} !== 0 && Math.abs(${x}) < ${type === 'f32' ? '1.1754943508222875e-38' : '2.2250738585072014e-308'})`,
      };
      if (!t[p[1]]) return null;
      return W(t[p[1]], 'pred');
    }
    case 'copysign': return W(`((t = ${R(a[1])}) < 0 || Object.is(t, -0) ? -Math.abs(${R(a[2])}) : Math.abs(${R(a[2])}))`);
    case 'setp': return setp(g, ins);
    case 'set': return setInstr(g, ins);
    case 'selp': return W(`${g.rd(a[3], 'pred')} ? ${R(a[1])} : ${R(a[2])}`);
    case 'slct': {
      const ct = p[p.length - 1];
      const dt = p[p.length - 2];
      return W(`${g.rd(a[3], ct)} >= 0 ? ${g.rd(a[1], dt)} : ${g.rd(a[2], dt)}`, dt);
    }
    case 'cvt': return cvt(g, ins);
    case 'cvta': {
      const sz = type;
      const x = g.rd(a[1], sz);
      if (sz !== 'u64') throw new UnsupportedError('32-bit generic addresses are not supported');
      if (has('global') || has('const')) return W(x, sz);
      const win = has('shared') ? 'SHW' : has('local') ? 'LCW' : null;
      if (!win) return null;
      return W(has('to') ? `(${x}) - ${win}` : `(${x}) + ${win}`, sz);
    }
    case 'isspacep': {
      const x = g.rd(a[1], 'u64');
      const sp = p[1];
      if (sp === 'shared') return W(`((g = ${x}) >= SHW && g < SHW + 4294967296)`, 'pred');
      if (sp === 'local') return W(`((g = ${x}) >= LCW && g < LCW + 4294967296)`, 'pred');
      if (sp === 'global') return W(`!((g = ${x}) >= SHW && g < LCW + 4294967296)`, 'pred');
      if (sp === 'const') return W('false', 'pred');
      return null;
    }
    case 'vabsdiff4': {
      // vabsdiff4.dtype.atype.btype{.sat}{.add} d, a, b, c (byte selectors and masks are not emitted by nvcc).
      if (a.some((o) => o.k !== 'reg' && o.k !== 'imm')) throw new UnsupportedError(`'${ins.op}' with selectors or masks is not supported`);
      const [dt, at, bt] = p.slice(1, 4);
      return W(`R.vabsdiff4(${R(a[1], 'b32')}, ${R(a[2], 'b32')}, ${R(a[3], 'b32')}, ${at === 's32'}, ${bt === 's32'}, ${has('add')}, ${has('sat')}, ${dt === 's32'})`, 'b32');
    }
    // Programmatic dependent launch: launches run in stream order here, so the prerequisite grid is complete.
    case 'griddepcontrol':
    case 'membar': case 'fence': case 'nanosleep': case 'prefetch': case 'prefetchu': case 'discard': case 'applypriority':
    case 'pmevent':
      return ';';
    case 'createpolicy': return W('0', 'b64');
    default: return null;
  }
}

function wide(type: string): string {
  const w: Record<string, string> = { u32: 'u64', s32: 's64', u16: 'u32', s16: 's32' };
  if (!w[type]) throw new UnsupportedError(`.wide.${type}`);
  return w[type];
}

const MAXS = Number.MAX_SAFE_INTEGER;

/**
 * i64 a + b (or a - b) inline: while both are numbers and the result is a safe integer it is plain double
 * arithmetic, which is exact there (addresses and indexes, the hot case); R.add64/sub64 take BigInts and
 * overflow. A call instead would box every address it returns once the kernel outgrows V8's inlining budget.
 */
function add64(g: FnGen, x: string, y: string, sym: '+' | '-'): string {
  const [a, b, c] = [g.local('i64a'), g.local('i64b'), g.local('i64c')];
  const fn = sym === '+' ? 'add64' : 'sub64';
  return `(${a} = ${x}, ${b} = ${y}, typeof ${a} === 'number' && typeof ${b} === 'number' && (${c} = ${a} ${sym} ${b}) <= ${MAXS} && ${c} >= -${MAXS} ? ${c} : R.${fn}(${a}, ${b}))`;
}

function intMul(g: FnGen, type: string, mode: 'lo' | 'hi' | 'wide', x: string, y: string): string {
  const c = clsOf(type);
  if (c === 'l') {
    if (mode === 'hi') return `R.mulhi64(${x}, ${y}, ${isSigned(type)})`;
    if (mode === 'wide') throw new UnsupportedError('mul.wide.64');
    return `R.mul64(${x}, ${y})`;
  }
  if (type === 'u32' || type === 's32' || type === 'b32') {
    if (mode === 'lo') return `Math.imul(${x}, ${y})`;
    if (mode === 'hi') return isSigned(type) ? `R.mulhis(${x}, ${y})` : `R.mulhiu(${x}, ${y})`;
    const [u, v] = isSigned(type) ? [x, y] : [`(${x} >>> 0)`, `(${y} >>> 0)`];
    // Exact as a double up to 2^53 (rounding is monotonic, so a larger product never passes the test).
    const c = g.local('i64c');
    return `((${c} = ${u} * ${v}) <= ${MAXS} && ${c} >= -${MAXS} ? ${c} : R.mulwide(${u}, ${v}))`;
  }
  // 16-bit: inputs are already normalised by type, the product fits in a double.
  if (mode === 'wide') return `(${x} * ${y})`;
  if (mode === 'hi') return `((${x} * ${y}) >> 16)`;
  return `(${x} * ${y})`;
}

function carry(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  const type = p[p.length - 1];
  if (type !== 'u32' && type !== 's32' && type !== 'b32') return null;
  const a = ins.args;
  const sub = p[0] === 'sub' || p[0] === 'subc';
  const cin = p[0] === 'addc' || p[0] === 'subc' ? ' + CF' : '';
  const x = g.rd(a[1], type), y = g.rd(a[2], type);
  const setCF = p.includes('cc');
  const e = sub ? `(${x} >>> 0) - (${y} >>> 0)${cin ? ' - CF' : ''}` : `(${x} >>> 0) + (${y} >>> 0)${cin}`;
  return `g = ${e}; ${setCF ? (sub ? 'CF = g < 0 ? 1 : 0; ' : 'CF = g > 4294967295 ? 1 : 0; ') : ''}${g.wr(a[0], type, 'g | 0')}`;
}

/** mad{c}.{lo,hi}{.cc}.{u32,s32}: multiply-add with carry in (madc) and carry out (.cc). */
function madCarry(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  const type = p[p.length - 1];
  if (type !== 'u32' && type !== 's32') return null;
  const a = ins.args;
  const x = g.rd(a[1], type), y = g.rd(a[2], type), z = g.rd(a[3], type);
  const prod = p.includes('hi') ? (type === 's32' ? `R.mulhis(${x}, ${y})` : `R.mulhiu(${x}, ${y})`) : `Math.imul(${x}, ${y})`;
  const cin = p[0] === 'madc' ? ' + CF' : '';
  const cout = p.includes('cc') ? 'CF = g > 4294967295 ? 1 : 0; ' : '';
  return `g = (${prod} >>> 0) + (${z} >>> 0)${cin}; ${cout}${g.wr(a[0], type, 'g | 0')}`;
}

/**
 * set.cmp{.bool}{.ftz}.dtype.stype d, a, b{, {!}c}: like setp, but the result is a value: all ones (integer
 * dtype) or 1.0 (float dtype) for true, 0 for false; per half for f16x2/bf16x2 sources.
 */
function setInstr(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const cmp = p[1];
  const st = p[p.length - 1], dt = p[p.length - 2];
  const boolOp = p.find((q) => q === 'and' || q === 'or' || q === 'xor') ?? null;
  const a = ins.args;
  const comb = (x: string): string => {
    if (!boolOp) return x;
    const c = g.rd(a[3], 'pred');
    return boolOp === 'and' ? `(${x}) && ${c}` : boolOp === 'or' ? `(${x}) || ${c}` : `(${x}) !== ${c}`;
  };
  if (st === 'f16x2' || st === 'bf16x2') {
    const one = dt === 'f16x2' ? 0x3c00 : dt === 'bf16x2' ? 0x3f80 : 0xffff;
    if (one === 0xffff && dt !== 'u32' && dt !== 's32' && dt !== 'b32') throw new UnsupportedError(`set.${dt}.${st}`);
    const lane = (k: number): string => `((${comb(halfLaneCmp(g, cmp, st, a[1], a[2], k))}) ? ${one} : 0)`;
    return g.wr(a[0], 'b32', `(${lane(0)} | (${lane(1)} << 16))`);
  }
  const e = comb(compare(g, cmp, st, a[1], a[2], p.includes('ftz')));
  const vals: Record<string, [string, string]> = {
    u32: ['-1', '0'], s32: ['-1', '0'], b32: ['-1', '0'], f32: ['1', '0'], f16: ['15360', '0'], bf16: ['16256', '0'],
    u16: ['65535', '0'], s16: ['-1', '0'], b16: ['65535', '0'],
  };
  const v = vals[dt];
  if (!v) throw new UnsupportedError(`set.${dt}.${st}`);
  return g.wr(a[0], dt, `(${e}) ? ${v[0]} : ${v[1]}`);
}

function setp(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const cmp = p[1];
  const type = p[p.length - 1];
  const boolOp = p.find((q) => q === 'and' || q === 'or' || q === 'xor') ?? null;
  const a = ins.args;
  if (type === 'f16x2' || type === 'bf16x2') {
    // setp.cmp.f16x2 p|q, a, b: p from the low halves, q from the high halves.
    if (a[0].k !== 'pair') throw new UnsupportedError(`${ins.op} needs a p|q destination`);
    const comb2 = (x: string): string => {
      if (!boolOp) return x;
      const c = g.rd(a[3], 'pred');
      return boolOp === 'and' ? `(${x}) && ${c}` : boolOp === 'or' ? `(${x}) || ${c}` : `(${x}) !== ${c}`;
    };
    return `g = ${halfLaneCmp(g, cmp, type, a[1], a[2], 0)}; nv = ${halfLaneCmp(g, cmp, type, a[1], a[2], 1)}; ` +
      `${g.wr(a[0].a, 'pred', comb2('g'))} ${g.wr(a[0].b, 'pred', comb2('nv'))}`;
  }
  const e = compare(g, cmp, type, a[1], a[2], p.includes('ftz'));
  const dst = a[0].k === 'pair' ? a[0].a : a[0];
  const dst2 = a[0].k === 'pair' ? a[0].b : null;
  const comb = (x: string): string => {
    if (!boolOp) return x;
    const c = g.rd(a[3], 'pred');
    return boolOp === 'and' ? `(${x}) && ${c}` : boolOp === 'or' ? `(${x}) || ${c}` : `(${x}) !== ${c}`;
  };
  let s = `g = ${e}; ${g.wr(dst, 'pred', comb('g'))}`;
  if (dst2) s += ' ' + g.wr(dst2, 'pred', comb('!g'));
  return s;
}

/** A float comparison of two JS expressions (each evaluated once). */
function fcmp(cmp: string, type: string, x: string, y: string): string {
  const t: Record<string, string> = {
    eq: `${x} === ${y}`, ne: `((t = ${x}) !== (q = ${y}) && t === t && q === q)`, lt: `${x} < ${y}`, le: `${x} <= ${y}`,
    gt: `${x} > ${y}`, ge: `${x} >= ${y}`, equ: `((t = ${x}) === (q = ${y}) || t !== t || q !== q)`, neu: `${x} !== ${y}`,
    ltu: `!(${x} >= ${y})`, leu: `!(${x} > ${y})`, gtu: `!(${x} <= ${y})`, geu: `!(${x} < ${y})`,
    num: `((t = ${x}) === t && (q = ${y}) === q)`, nan: `((t = ${x}) !== t || (q = ${y}) !== q)`,
  };
  if (!t[cmp]) throw new UnsupportedError(`setp.${cmp}.${type}`);
  return t[cmp];
}

/** One lane (0 low, 1 high) of an f16x2/bf16x2 comparison. */
function halfLaneCmp(g: FnGen, cmp: string, type: string, x0: Operand, y0: Operand, lane: number): string {
  const bf = type === 'bf16x2';
  const h = (o: Operand): string => `R.h2f(${g.rd(o, 'b32')}${lane ? ' >>> 16' : ''}, ${bf})`;
  return fcmp(cmp, type, h(x0), h(y0));
}

export function compare(g: FnGen, cmp: string, type: string, x0: Operand, y0: Operand, ftz = false): string {
  if (type === 'f16x2' || type === 'bf16x2') throw new UnsupportedError(`setp.${cmp}.${type} is not supported`);
  const half = type === 'f16' || type === 'bf16';
  const c: Cls = half ? 'f' : clsOf(type);
  const fz = (e: string): string => (ftz && type === 'f32' ? `R.ftz(${e})` : e);
  const x = half ? `R.h2f(${g.rd(x0, type)}, ${type === 'bf16'})` : fz(g.rd(x0, type));
  const y = half ? `R.h2f(${g.rd(y0, type)}, ${type === 'bf16'})` : fz(g.rd(y0, type));
  if (c === 'f' || c === 'd') return fcmp(cmp, type, x, y);
  const unsignedCmp = cmp === 'lo' || cmp === 'ls' || cmp === 'hi' || cmp === 'hs' || !isSigned(type);
  const norm: Record<string, string> = { lo: 'lt', ls: 'le', hi: 'gt', hs: 'ge' };
  const k = norm[cmp] ?? cmp;
  if (c === 'p') {
    if (k === 'eq') return `${x} === ${y}`;
    if (k === 'ne') return `${x} !== ${y}`;
    throw new UnsupportedError(`setp.${cmp}.pred`);
  }
  if (c === 'l') {
    const s = !unsignedCmp;
    switch (k) {
      case 'eq': return `R.eq64(${x}, ${y})`;
      case 'ne': return `!R.eq64(${x}, ${y})`;
      case 'lt': return `R.lt64(${x}, ${y}, ${s})`;
      case 'le': return `!R.lt64(${y}, ${x}, ${s})`;
      case 'gt': return `R.lt64(${y}, ${x}, ${s})`;
      case 'ge': return `!R.lt64(${x}, ${y}, ${s})`;
    }
    throw new UnsupportedError(`setp.${cmp}.${type}`);
  }
  const u = unsignedCmp && typeSize(type) === 4 ? ' >>> 0' : '';
  const ops: Record<string, string> = { eq: '===', ne: '!==', lt: '<', le: '<=', gt: '>', ge: '>=' };
  if (!ops[k]) throw new UnsupportedError(`setp.${cmp}.${type}`);
  return `(${x}${u}) ${ops[k]} (${y}${u})`;
}

function mov(g: FnGen, ins: Instr): string {
  const type = ins.parts[ins.parts.length - 1];
  const [d, s] = ins.args;
  if (d.k === 'vec') {
    // Unpack: mov.b64 {lo, hi}, %rd / mov.b32 {h0, h1}, %r
    if (type === 'b64') {
      const src = g.rd(s, 'b64');
      return `q = ${src}; ${g.wr(d.elems[0], 'b32', 'R.lo32(q)')} ${d.elems[1] ? g.wr(d.elems[1], 'b32', 'R.hi32(q)') : ''}`;
    }
    if (type === 'b32') {
      const src = g.rd(s, 'b32');
      return `q = ${src}; ${g.wr(d.elems[0], 'b16', 'q & 65535')} ${g.wr(d.elems[1], 'b16', 'q >>> 16')}`;
    }
    throw new UnsupportedError(`mov.${type} vector unpack`);
  }
  if (s.k === 'vec') {
    if (type === 'b64') return g.wr(d, 'b64', `R.pack64(${g.rd(s.elems[0], 'b32')}, ${g.rd(s.elems[1], 'b32')})`);
    if (type === 'b32') return g.wr(d, 'b32', `(${g.rd(s.elems[0], 'b16')} & 65535) | (${g.rd(s.elems[1], 'b16')} << 16)`);
    throw new UnsupportedError(`mov.${type} vector pack`);
  }
  if (s.k === 'reg' && (s.name === '%clock64' || s.name === '%globaltimer')) return g.wr(d, 'u64', s.name === '%clock64' ? 'E.clock64()' : 'E.gtimer()');
  if (s.k === 'sym') return g.wr(d, type === 'u32' || type === 'b32' ? 'u32' : 'u64', g.symExpr(s.name));
  return g.wr(d, type, g.rd(s, type));
}

function cvt(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const dt = p[p.length - 2];
  const st = p[p.length - 1];
  const mods = p.slice(1, -2);
  const [d, s] = ins.args;
  // Modifiers that would change the result and are not implemented: refuse rather than round another way.
  const bad = mods.find((m) => m === 'relu' || m === 'rs' || (m === 'satfinite' && dt !== 'tf32'));
  if (bad) throw new UnsupportedError(`'${ins.op}': .${bad} is not supported by the emulator`);
  if (dt === 'tf32') {
    // cvt.rna{.satfinite}.tf32.f32 / cvt.{rn,rz}.satfinite.tf32.f32: f32 bits with the low 13 mantissa bits cleared.
    const m = mods.includes('rna') ? 4 : roundMode(mods);
    return g.wr(d, 'b32', `R.tf32(${g.rd(s, 'f32')}, ${m}, ${mods.includes('satfinite')})`);
  }
  const dc = clsOf(dt), sc = clsOf(st);
  const x = g.rd(s, st);
  const isF = (t: string): boolean => t === 'f32' || t === 'f64' || t === 'f16' || t === 'bf16';
  const irnd = mods.find((m) => m === 'rni' || m === 'rzi' || m === 'rmi' || m === 'rpi');
  const roundInt = (e: string): string =>
    irnd === 'rni' ? `R.rint(${e})` : irnd === 'rmi' ? `Math.floor(${e})` : irnd === 'rpi' ? `Math.ceil(${e})` : `Math.trunc(${e})`;
  const satw = (e: string): string => (mods.includes('sat') ? `R.sat(${e})` : e);
  const mode = roundMode(mods);
  // .ftz: an f32 source or result that is subnormal counts as a zero of the same sign.
  const ftz = mods.includes('ftz');
  const src = ftz && st === 'f32' ? `R.ftz(${x})` : x;
  const outF32 = (e: string): string => (ftz ? `R.ftz(${e})` : e);
  if ((dt === 'f16x2' || dt === 'bf16x2') && st === 'f32') {
    // a goes to the upper half, b to the lower.
    const h = (e: string): string => `R.toHalf(${e}, ${mode}, ${dt === 'bf16x2'})`;
    return g.wr(d, 'b32', `(${h(g.rd(ins.args[2], 'f32'))} | (${h(x)} << 16))`);
  }
  if (isF(dt) && isF(st)) {
    let v = st === 'f16' ? `R.f16tof32(${src})` : st === 'bf16' ? `R.b2f(${src} << 16)` : src;
    if (irnd) v = roundInt(v);
    if (dt === 'f32') v = outF32(mode && st === 'f64' ? `R.frnd32(${v}, ${mode})` : `Math.fround(${v})`);
    if (dt === 'f16') return g.wr(d, dt, mode ? `R.toHalf(${satw(v)}, ${mode}, false)` : `R.f32tof16(${satw(v)})`);
    if (dt === 'bf16') return g.wr(d, dt, `R.toHalf(${satw(v)}, ${mode}, true)`);
    return g.wr(d, dt, satw(v));
  }
  if (isF(st)) {
    // float -> int: round per .rxi (default rzi for float->int is required by PTX), saturate.
    let v = st === 'f16' ? `R.f16tof32(${src})` : st === 'bf16' ? `R.b2f(${src} << 16)` : src;
    v = roundInt(v);
    const sat: Record<string, string> = {
      s32: `R.f2s32(${v})`, u32: `R.f2u32(${v})`, s64: `R.f2s64(${v})`, u64: `R.f2u64(${v})`,
      s16: `((t = ${v}) !== t ? 0 : Math.max(-32768, Math.min(32767, t)))`, u16: `((t = ${v}) !== t ? 0 : Math.max(0, Math.min(65535, t)))`,
      s8: `((t = ${v}) !== t ? 0 : Math.max(-128, Math.min(127, t)))`, u8: `((t = ${v}) !== t ? 0 : Math.max(0, Math.min(255, t)))`,
    };
    if (!sat[dt]) throw new UnsupportedError(`cvt.${dt}.${st}`);
    return g.wr(d, dt, sat[dt]);
  }
  if (isF(dt)) {
    if (sc === 'l') {
      // Number() of a 64-bit integer would round to f64 first (twice for f32): convert exactly instead.
      const v = `R.cvtI64(${x}, ${!isSigned(st)}, ${mode}, ${dt === 'f32'})`;
      if (dt === 'f16' || dt === 'bf16') return g.wr(d, dt, `R.toHalf(${v}, ${mode}, ${dt === 'bf16'})`);
      return g.wr(d, dt, satw(v));
    }
    let v = isSigned(st) ? x : `(${x} >>> 0)`;
    if (dt === 'f32') v = mode ? `R.frnd32(${v}, ${mode})` : `Math.fround(${v})`;
    if (dt === 'f16') return g.wr(d, dt, mode ? `R.toHalf(${v}, ${mode}, false)` : `R.f32tof16(${v})`);
    if (dt === 'bf16') return g.wr(d, dt, `R.toHalf(${v}, ${mode}, true)`);
    return g.wr(d, dt, satw(v));
  }
  // int -> int
  if (mods.includes('sat')) {
    const lim: Record<string, [number, number]> = {
      s8: [-128, 127], u8: [0, 255], s16: [-32768, 32767], u16: [0, 65535], s32: [-2147483648, 2147483647], u32: [0, 4294967295],
    };
    const l = lim[dt];
    if (!l) throw new UnsupportedError(`cvt.sat.${dt}.${st}`);
    const num = sc === 'l' ? (isSigned(st) ? `R.s64num(${x})` : `R.u64num(${x})`) : isSigned(st) ? x : `(${x} >>> 0)`;
    return g.wr(d, dt, wrapInt(dt, `Math.max(${l[0]}, Math.min(${l[1]}, ${num}))`));
  }
  if (dc === 'l') {
    if (sc === 'l') return g.wr(d, dt, x);
    return g.wr(d, dt, isSigned(st) ? x : `(${x} >>> 0)`);
  }
  const lo = sc === 'l' ? `R.lo32(${x})` : x;
  return g.wr(d, dt, wrapInt(dt, lo));
}
