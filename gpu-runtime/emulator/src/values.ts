// How PTX values live in generated JS (see rt.ts for 64-bit): the "class" of a register or instruction type,
// literals, and the conversions between classes that PTX performs implicitly (bit moves, size mismatches).

import { b2f } from './rt';

/** p: boolean; i: int32 (all <=32-bit ints and f16 bits); l: i64 (number|bigint); f: f32 in a double; d: f64. */
export type Cls = 'p' | 'i' | 'l' | 'f' | 'd';

export class UnsupportedError extends Error {
  readonly code = 'RGPU_ERR_PTX_UNSUPPORTED';
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedError';
  }
}

export function clsOf(type: string): Cls {
  switch (type) {
    case 'pred': return 'p';
    case 'b8': case 'u8': case 's8': case 'b16': case 'u16': case 's16': case 'f16': case 'bf16':
    case 'b32': case 'u32': case 's32': case 'f16x2': case 'bf16x2': return 'i';
    case 'b64': case 'u64': case 's64': return 'l';
    case 'f32': return 'f';
    case 'f64': return 'd';
    default: throw new UnsupportedError(`type .${type} is not supported`);
  }
}

export function isSigned(type: string): boolean { return type[0] === 's'; }
export function bits(type: string): number {
  const m = /(\d+)/.exec(type);
  return m ? parseInt(m[1], 10) : 32;
}

/** Normalise an int32-class expression to the canonical form of a <=32-bit type. */
export function wrapInt(type: string, e: string): string {
  switch (type) {
    case 'u8': case 'b8': return `((${e}) & 255)`;
    case 's8': return `((${e}) << 24 >> 24)`;
    case 'u16': case 'b16': case 'f16': case 'bf16': return `((${e}) & 65535)`;
    case 's16': return `((${e}) << 16 >> 16)`;
    default: return `((${e}) | 0)`;
  }
}

/** Converts an expression of class `from` to class `to` for an instruction of type `type`. */
export function conv(e: string, from: Cls, to: Cls, type: string): string {
  if (from === to) return e;
  const k = from + to;
  switch (k) {
    case 'il': return isSigned(type) ? e : `((${e}) >>> 0)`;
    case 'li': return `R.lo32(${e})`;
    case 'fi': return `R.f2b(${e})`;
    case 'if': return `R.b2f(${e})`;
    case 'dl': return `R.d2b(${e})`;
    case 'ld': return `R.b2d(${e})`;
    case 'pi': return `((${e}) ? 1 : 0)`;
    case 'ip': return `((${e}) !== 0)`;
    case 'fl': return `((R.f2b(${e})) >>> 0)`;
    case 'lf': return `R.b2f(R.lo32(${e}))`;
    case 'di': return `R.dlo(${e})`;
    case 'id': return `R.b2d(${e})`;
    default: throw new UnsupportedError(`cannot use a .${from} value as .${to} (${type})`);
  }
}

function numLit(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '(-Infinity)';
  if (Object.is(v, -0)) return '(-0)';
  return v < 0 ? `(${v})` : String(v);
}

function parseIntBig(text: string): bigint {
  let t = text.replace(/[uU]$/, '');
  let neg = false;
  if (t.startsWith('-')) { neg = true; t = t.slice(1); }
  let v: bigint;
  if (/^0[xX]/.test(t)) v = BigInt(t);
  else if (/^0[0-7]+$/.test(t)) v = BigInt('0o' + t.slice(1));
  else if (/^\d+$/.test(t)) v = BigInt(t);
  else throw new UnsupportedError(`bad integer literal '${text}'`);
  return neg ? -v : v;
}

function floatValue(text: string, type: 'f' | 'd'): number {
  let t = text;
  let neg = false;
  if (t.startsWith('-')) { neg = true; t = t.slice(1); }
  let v: number;
  if (/^0[fF][0-9a-fA-F]{8}$/.test(t)) v = b2f(parseInt(t.slice(2), 16) | 0);
  else if (/^0[dD][0-9a-fA-F]{16}$/.test(t)) {
    const b = new DataView(new ArrayBuffer(8));
    b.setBigUint64(0, BigInt('0x' + t.slice(2)));
    v = b.getFloat64(0);
  } else if (/^0[xX]/.test(t) || /^\d+[uU]?$/.test(t)) v = Number(parseIntBig(t));
  else v = parseFloat(t);
  if (neg) v = -v;
  return type === 'f' ? Math.fround(v) : v;
}

/** A literal as an expression of the class of `type`. */
export function literal(text: string, type: string): string {
  const c = clsOf(type);
  if (c === 'f' || c === 'd') return numLit(floatValue(text, c));
  if (c === 'p') return parseIntBig(text) !== 0n ? 'true' : 'false';
  if (/^-?0[fF][0-9a-fA-F]{8}$/.test(text)) {
    // A float literal used as raw bits (mov.b32 %r, 0f3F800000).
    const v = parseInt(text.replace('-', '').slice(2), 16) | 0;
    return numLit(c === 'i' ? v : v >>> 0);
  }
  if (/^-?0[dD][0-9a-fA-F]{16}$/.test(text)) {
    const v = BigInt.asIntN(64, BigInt('0x' + text.replace('-', '').slice(2)));
    return bigLit(v);
  }
  const v = parseIntBig(text);
  if (c === 'i') {
    const w = Number(BigInt.asIntN(32, v));
    return numLit(Number(BigInt.asIntN(bits(type) >= 32 ? 32 : 32, BigInt(w))));
  }
  return bigLit(BigInt.asIntN(64, v));
}

function bigLit(v: bigint): string {
  if (v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return numLit(Number(v));
  return `(${v}n)`;
}
