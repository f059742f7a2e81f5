// tex / suld / sust / txq / suq -> calls into the context's texture registry (texture.ts). The registry
// does the sampling; the compiled code only reads the operands and writes the result registers.

import { Instr, Operand } from './ir';
import type { FnGen } from './codegen';
import { UnsupportedError } from './values';
import { GEOM } from './texture';

const SURF_MODE: Record<string, number> = { trap: 0, clamp: 1, zero: 2 };
const BITS: Record<string, number> = { b8: 1, b16: 2, b32: 4, b64: 8 };

export function emitTex(g: FnGen, ins: Instr): string | null {
  switch (ins.parts[0]) {
    case 'tex': return tex(g, ins);
    case 'suld': case 'sust': return surface(g, ins);
    case 'txq': case 'suq': return query(g, ins);
    case 'tld4': return gather(g, ins);
    default: return null;
  }
}

/** [handle, {coords}] as written by the parser: the handle expression and the coordinate operands. */
function handleAndCoords(g: FnGen, o: Operand | undefined, what: string): { h: string; coords: Operand[] } {
  if (!o || o.k !== 'list' || o.elems.length !== 2) throw new UnsupportedError(`${what}: expected [object, {coordinates}]`);
  const [ho, co] = o.elems;
  if (ho.k !== 'reg') throw new UnsupportedError(`${what} through a texture/surface reference (${ho.k === 'sym' ? ho.name : '?'}); only bindless objects are supported`);
  const coords = co.k === 'vec' ? co.elems : [co];
  return { h: g.rd(ho, 'u64'), coords };
}

function geomOf(ins: Instr): number {
  for (const p of ins.parts) if (GEOM[p]) return GEOM[p];
  const other = ins.parts.find((p) => /^(cube|acube|2dms|a2dms)$/.test(p));
  throw new UnsupportedError(`'${ins.op}': ${other ? `${other} textures are` : 'this geometry is'} not supported by the emulator`);
}

function tex(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const geom = geomOf(ins);
  const ctype = p[p.length - 1], dtype = p[p.length - 2];
  if (!p.includes('v4')) throw new UnsupportedError(`'${ins.op}': only the .v4 form is supported`);
  if (ctype !== 'f32' && ctype !== 's32') throw new UnsupportedError(`'${ins.op}': coordinates of type .${ctype}`);
  if (dtype !== 'f32' && dtype !== 's32' && dtype !== 'u32') throw new UnsupportedError(`'${ins.op}': results of type .${dtype}`);
  // tex.level / tex.grad: only non-mipmapped textures exist here, so the level of detail selects level 0.
  let dst = ins.args[0];
  let pred: Operand | null = null;
  if (dst.k === 'pair') { pred = dst.b; dst = dst.a; } // sparse form: the predicate says "texel resident"
  const { h, coords } = handleAndCoords(g, ins.args[1], ins.op);
  const layered = geom === 4 || geom === 5;
  const c = [0, 1, 2, 3].map((k) => {
    const o = coords[k];
    if (!o) return '0';
    return g.rd(o, layered && k === 0 ? 'u32' : ctype);
  });
  const T = g.local('tq');
  const dsts = dst.k === 'vec' ? dst.elems : [dst];
  const writes = dsts.map((o, k) => (o.k === 'sink' ? '' : g.wr(o, dtype, `${T}[${k}]`))).join(' ');
  const pw = pred ? ' ' + g.wr(pred, 'pred', 'true') : '';
  return `${T} = R.texRegistry(E.heap).fetch(${h}, ${geom}, ${ctype === 's32'}, ${c.join(', ')}); ${writes}${pw}`;
}

const GATHER_COMP: Record<string, number> = { r: 0, g: 1, b: 2, a: 3 };

/** tld4.comp.{2d,a2d}.v4.dtype.f32 d, [t, {coords}] */
function gather(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  const comp = GATHER_COMP[p[1]];
  const geom = geomOf(ins);
  if (comp === undefined || (geom !== 2 && geom !== 5)) throw new UnsupportedError(`'${ins.op}': only tld4.{r,g,b,a}.2d/a2d is supported`);
  const dtype = p[p.length - 2];
  if (p[p.length - 1] !== 'f32' || (dtype !== 'f32' && dtype !== 's32' && dtype !== 'u32')) throw new UnsupportedError(`'${ins.op}': unsupported types`);
  let dst = ins.args[0];
  let pred: Operand | null = null;
  if (dst.k === 'pair') { pred = dst.b; dst = dst.a; }
  const { h, coords } = handleAndCoords(g, ins.args[1], ins.op);
  const c = [0, 1, 2].map((k) => (coords[k] ? g.rd(coords[k], geom === 5 && k === 0 ? 'u32' : 'f32') : '0'));
  const T = g.local('tq');
  const dsts = dst.k === 'vec' ? dst.elems : [dst];
  const writes = dsts.map((o, k) => (o.k === 'sink' ? '' : g.wr(o, dtype, `${T}[${k}]`))).join(' ');
  const pw = pred ? ' ' + g.wr(pred, 'pred', 'true') : '';
  return `${T} = R.texRegistry(E.heap).gather(${h}, ${geom}, ${comp}, ${c.join(', ')}); ${writes}${pw}`;
}

function surface(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  if (p[1] !== 'b') throw new UnsupportedError(`'${ins.op}': only the .b (raw bytes) form is supported`);
  const geom = geomOf(ins);
  const type = p.find((q) => BITS[q]);
  if (!type) throw new UnsupportedError(`'${ins.op}': unknown element type`);
  const n = p.includes('v4') ? 4 : p.includes('v2') ? 2 : 1;
  const mode = SURF_MODE[p.find((q) => q in SURF_MODE) ?? 'trap'];
  const load = p[0] === 'suld';
  const { h, coords } = handleAndCoords(g, ins.args[load ? 1 : 0], ins.op);
  const c = [0, 1, 2].map((k) => (coords[k] ? g.rd(coords[k], 's32') : '0'));
  const cb = BITS[type];
  const T = g.local('tr');
  const slot = cb === 8 ? 'outL' : 'out';
  const head = `${T} = R.texRegistry(E.heap);`;
  const call = `${T}.${load ? 'load' : 'store'}(${h}, ${geom}, ${mode}, ${cb}, ${n}, ${c.join(', ')});`;
  const vo = ins.args[load ? 0 : 1];
  const elems = vo.k === 'vec' ? vo.elems : [vo];
  if (elems.length !== n) throw new UnsupportedError(`'${ins.op}': ${elems.length} operands for a .v${n} access`);
  if (load) {
    const writes = elems.map((o, k) => (o.k === 'sink' ? '' : g.wr(o, type, `${T}.${slot}[${k}]`))).join(' ');
    return `${head} ${call} ${writes}`;
  }
  const sets = elems.map((o, k) => `${T}.${slot}[${k}] = ${g.rd(o, type)};`).join(' ');
  return `${head} ${sets} ${call}`;
}

function query(g: FnGen, ins: Instr): string {
  const p = ins.parts;
  if (p[1] === 'level') throw new UnsupportedError(`'${ins.op}': mipmap level queries are not supported`);
  const what = p[1];
  const a = ins.args[1];
  if (!a || a.k !== 'addr' || !a.base || !a.base.startsWith('%') || a.off) {
    throw new UnsupportedError(`'${ins.op}' through a texture/surface reference; only bindless objects are supported`);
  }
  const h = g.rd({ k: 'reg', name: a.base }, 'u64');
  return g.wr(ins.args[0], 'b32', `R.texRegistry(E.heap).query(${h}, ${p[0] === 'suq'}, ${JSON.stringify(what)})`);
}
