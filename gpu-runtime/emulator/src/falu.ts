// f32/f64 arithmetic -> JS, honouring the rounding modifier (.rn/.rz/.rm/.rp, exact via fpexact.ts) and .ftz
// (f32 subnormal inputs and results become zeros of the same sign, as -use_fast_math code expects).
// Round-to-nearest f32 add/sub/mul/div/sqrt are Math.fround of the f64 result: f64 carries more than twice
// f32's precision, so that double rounding is innocuous; fma is not, and goes through R.fma32.

import { Instr } from './ir';
import type { FnGen } from './codegen';
import { UnsupportedError } from './values';

const ROUND: Record<string, number> = { rn: 0, rz: 1, rm: 2, rp: 3 };
const FLT_MIN = '1.1754943508222875e-38';
const OPS = new Set(['add', 'sub', 'mul', 'fma', 'mad', 'div', 'sqrt', 'rcp', 'rsqrt', 'sin', 'cos', 'ex2', 'lg2', 'tanh',
  'min', 'max', 'abs', 'neg']);

export function isFloatArith(op: string, type: string): boolean {
  return (type === 'f32' || type === 'f64') && OPS.has(op);
}

/** The rounding mode of an instruction's modifiers (0 when none or .rn). */
export function roundMode(parts: string[]): number {
  for (const q of parts) if (q in ROUND) return ROUND[q];
  return 0;
}

export function emitFloat(g: FnGen, ins: Instr): string | null {
  const p = ins.parts;
  const op = p[0];
  const type = p[p.length - 1];
  const a = ins.args;
  const single = type === 'f32';
  const ftz = single && p.includes('ftz');
  // .ftz inline: V8 inlines only so many helper calls into one kernel, and the hot ops must not be left out.
  const fz = (e: string): string => {
    const v = g.local('fz');
    return `(((${v} = ${e}) < ${FLT_MIN}) & (${v} > -${FLT_MIN}) ? ${v} * 0 : ${v})`;
  };
  const X = (k: number): string => (ftz ? fz(g.rd(a[k], type)) : g.rd(a[k], type));
  const mode = roundMode(p);
  const approx = p.includes('approx') || p.includes('full');
  // Correctly rounded op k (0 add .. 5 fma) in a directed mode.
  const directed = (k: number, x: string, y = '0', z = '0'): string =>
    single ? `R.frnd(${k}, ${x}, ${y}, ${z}, ${mode})` : `R.drnd(${k}, ${x}, ${y}, ${z}, ${mode})`;
  const near = (e: string): string => (single ? `Math.fround(${e})` : `(${e})`);
  let e: string;
  switch (op) {
    case 'add': case 'sub': case 'mul': {
      const k = op === 'add' ? 0 : op === 'sub' ? 1 : 2;
      e = mode ? directed(k, X(1), X(2)) : near(`${X(1)} ${op === 'add' ? '+' : op === 'sub' ? '-' : '*'} ${X(2)}`);
      break;
    }
    case 'fma': case 'mad':
      if (mode) e = directed(5, X(1), X(2), X(3));
      else if (!single) e = `R.fma64(${X(1)}, ${X(2)}, ${X(3)})`;
      else {
        // fpexact.fma32 inline: f64 sum of the exact product, and the rare f32-midpoint case in a call. The two
        // tests are or-ed bitwise (both always evaluated, one branch): fewer branches, less V8 compile time.
        const [fp, fs, ft, fo] = ['fp', 'fs', 'ft', 'fo'].map((n) => g.local(n));
        const z = g.local('fc');
        e = `(${fp} = ${X(1)} * ${X(2)}, ${fs} = ${fp} + (${z} = ${X(3)}), ${ft} = Math.fround(${fs}), ` +
          `(${ft} === ${fs}) | (Math.fround(${fo} = 2 * ${fs} - ${ft}) !== ${fo}) ? ${ft} : R.fma32fix(${fp}, ${z}, ${fs}, ${ft}, ${fo}))`;
      }
      break;
    case 'div':
      e = mode && !approx ? directed(3, X(1), X(2)) : near(`${X(1)} / ${X(2)}`);
      break;
    case 'sqrt':
      e = mode && !approx ? directed(4, X(1)) : near(`Math.sqrt(${X(1)})`);
      break;
    case 'rcp':
      if (!single && p.includes('ftz')) { e = `R.ftzd(1 / R.ftzd(${X(1)}))`; break; }
      e = mode && !approx ? directed(3, '1', X(1)) : near(`1 / ${X(1)}`);
      break;
    case 'rsqrt':
      if (!single && p.includes('ftz')) { e = `R.ftzd(1 / Math.sqrt(R.ftzd(${X(1)})))`; break; }
      e = near(`1 / Math.sqrt(${X(1)})`);
      break;
    case 'sin': case 'cos': case 'tanh':
      if (!single) return null;
      e = near(`Math.${op}(${X(1)})`);
      break;
    case 'ex2':
      if (!single) return null;
      e = near(`Math.pow(2, ${X(1)})`);
      break;
    case 'lg2':
      if (!single) return null;
      e = near(`Math.log2(${X(1)})`);
      break;
    case 'min': case 'max': {
      if (p.includes('xorsign') || p.includes('relu')) return null;
      const nan = p.includes('NaN') ? 'nan' : '';
      e = `R.f${op}${nan}(${X(1)}, ${X(2)})`;
      break;
    }
    case 'abs': e = `Math.abs(${X(1)})`; break;
    case 'neg': e = `(-${X(1)})`; break;
    default: throw new UnsupportedError(`'${ins.op}'`);
  }
  if (ftz) e = fz(e);
  if (p.includes('sat')) e = `R.sat(${e})`;
  return g.wr(a[0], type, e);
}
