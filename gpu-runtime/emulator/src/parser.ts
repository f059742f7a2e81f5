// PTX text -> PtxModule. Hand-written because PTX is line-noise-regular and no maintained JS PTX parser
// exists; the grammar covered is what nvcc emits (directives, functions, call sequences, vector operands).
// Untrusted input: every failure is a PtxParseError naming the line.

import { FuncDecl, Instr, Operand, ParamDecl, PtxModule, RegDecl, Stmt, TYPE_NAMES, VarDecl, typeSize } from './ir';

export class PtxParseError extends Error {
  readonly code = 'RGPU_ERR_PTX_PARSE';
  constructor(message: string, readonly line: number) {
    super(`PTX line ${line}: ${message}`);
    this.name = 'PtxParseError';
  }
}

interface Tok {
  t: 'w' | 'n' | 'p' | 's';
  v: string;
  line: number;
}

const WORD_START = /[A-Za-z_$%.]/;
const WORD_CHAR = /[A-Za-z0-9_$.%]/;

/** A declaration directive glued to its type, `.reg.b16`: split into `.reg` `.b16`. */
const DECL_GLUED = /^\.(reg|local|shared|param|const|global)\.[A-Za-z0-9_.]+$/;

export function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '/' && src[i + 1] === '/') { while (i < n && src[i] !== '\n') i++; continue; }
    if (c === '/' && src[i + 1] === '*') {
      i += 2;
      while (i < n && !(src[i] === '*' && src[i + 1] === '/')) { if (src[i] === '\n') line++; i++; }
      i += 2;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < n && src[j] !== '"') { if (src[j] === '\\') j++; j++; }
      out.push({ t: 's', v: src.slice(i + 1, j), line });
      i = j + 1;
      continue;
    }
    if (c >= '0' && c <= '9') {
      let j = i;
      if ((src[j + 1] === 'f' || src[j + 1] === 'F' || src[j + 1] === 'd' || src[j + 1] === 'D') && c === '0' && /[0-9a-fA-F]/.test(src[j + 2] ?? '')) {
        j += 2;
        while (j < n && /[0-9a-fA-F]/.test(src[j])) j++;
      } else if (c === '0' && (src[j + 1] === 'x' || src[j + 1] === 'X')) {
        j += 2;
        while (j < n && /[0-9a-fA-F]/.test(src[j])) j++;
      } else {
        while (j < n && /[0-9]/.test(src[j])) j++;
        if (src[j] === '.' && /[0-9]/.test(src[j + 1] ?? '')) { j++; while (j < n && /[0-9]/.test(src[j])) j++; }
        if ((src[j] === 'e' || src[j] === 'E') && /[-+0-9]/.test(src[j + 1] ?? '')) {
          j += 2;
          while (j < n && /[0-9]/.test(src[j])) j++;
        }
      }
      if (src[j] === 'U' || src[j] === 'u') j++;
      out.push({ t: 'n', v: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_CHAR.test(src[j])) j++;
      // `::` qualifiers (`.L2::evict_last`, `.shared::cta`) stay part of the word.
      while (src[j] === ':' && src[j + 1] === ':') { j += 2; while (j < n && WORD_CHAR.test(src[j])) j++; }
      const w = src.slice(i, j);
      // Hand-written inline asm (cuda_fp16.hpp's h2exp and friends) writes `.reg.b16 h;` without the space.
      const decl = DECL_GLUED.exec(w);
      if (decl) for (const part of w.slice(1).split('.')) out.push({ t: 'w', v: `.${part}`, line });
      else out.push({ t: 'w', v: w, line });
      i = j;
      continue;
    }
    out.push({ t: 'p', v: c, line });
    i++;
  }
  return out;
}

class Cursor {
  i = 0;
  constructor(readonly toks: Tok[]) {}
  peek(o = 0): Tok | undefined { return this.toks[this.i + o]; }
  next(): Tok {
    const t = this.toks[this.i++];
    if (!t) throw new PtxParseError('unexpected end of input', this.toks.length ? this.toks[this.toks.length - 1].line : 0);
    return t;
  }
  is(v: string, o = 0): boolean { const t = this.toks[this.i + o]; return t !== undefined && t.v === v && t.t !== 's'; }
  eat(v: string): boolean { if (this.is(v)) { this.i++; return true; } return false; }
  expect(v: string): Tok {
    const t = this.next();
    if (t.v !== v) throw new PtxParseError(`expected '${v}', found '${t.v}'`, t.line);
    return t;
  }
  line(): number { return (this.peek() ?? this.toks[this.toks.length - 1])?.line ?? 0; }
  /** Skips to just after the next `;` at this nesting level. */
  skipStatement(): void { while (this.peek() && !this.is(';')) this.i++; this.eat(';'); }
}

export function parsePtx(src: string): PtxModule {
  const c = new Cursor(tokenize(src));
  const mod: PtxModule = { version: 0, target: '', addressSize: 64, vars: [], funcs: [] };
  while (c.peek()) {
    const t = c.peek()!;
    if (t.t !== 'w') throw new PtxParseError(`unexpected '${t.v}' at module level`, t.line);
    switch (t.v) {
      case '.version': c.next(); mod.version = parseFloat(c.next().v); continue;
      case '.target': c.next(); mod.target = c.next().v; while (c.eat(',')) c.next(); continue;
      case '.address_size': c.next(); mod.addressSize = parseInt(c.next().v, 10); continue;
      case '.file': case '.loc': case '.section': case '.pragma': case '@@DWARF':
        skipDirective(c); continue;
    }
    // Linkage prefixes, then a variable or a function.
    let visible = false;
    let external = false;
    while (c.is('.visible') || c.is('.extern') || c.is('.weak') || c.is('.common')) {
      const v = c.next().v;
      if (v === '.visible' || v === '.weak' || v === '.common') visible = true;
      if (v === '.extern') external = true;
    }
    if (c.is('.entry') || c.is('.func')) { mod.funcs.push(parseFunction(c, visible, external)); continue; }
    if (c.is('.global') || c.is('.const') || c.is('.shared') || c.is('.local')) {
      mod.vars.push(parseVar(c, external));
      continue;
    }
    throw new PtxParseError(`unsupported module-level directive '${c.peek()?.v}'`, c.line());
  }
  return mod;
}

function skipDirective(c: Cursor): void {
  const line = c.next().line;
  // .file/.loc/.pragma end at the line end (or `;`).
  while (c.peek() && c.peek()!.line === line && !c.is(';')) c.next();
  c.eat(';');
}

function parseVar(c: Cursor, external: boolean): VarDecl {
  const space = c.next().v.slice(1) as VarDecl['space'];
  let align = 0;
  let vec = 1;
  let type = '';
  for (;;) {
    const t = c.peek();
    if (!t || t.t !== 'w' || !t.v.startsWith('.')) break;
    c.next();
    if (t.v === '.align') align = parseInt(c.next().v, 10);
    else if (t.v === '.v2') vec = 2;
    else if (t.v === '.v4') vec = 4;
    else if (TYPE_NAMES.has(t.v.slice(1))) type = t.v.slice(1);
    else if (t.v === '.ptr' || t.v === '.global' || t.v === '.shared' || t.v === '.const' || t.v === '.local') { /* .ptr.space qualifiers on params */ }
    else throw new PtxParseError(`unsupported variable qualifier '${t.v}'`, t.line);
  }
  if (!type) throw new PtxParseError('variable without a type', c.line());
  const nameTok = c.next();
  let count = 1;
  let unsized = false;
  while (c.eat('[')) {
    if (c.eat(']')) { unsized = true; count = 0; continue; }
    count *= parseIntLit(c.next());
    c.expect(']');
  }
  let init: string[] | null = null;
  if (c.eat('=')) {
    init = [];
    const flat = (): void => {
      if (c.eat('{')) {
        if (!c.is('}')) { do flat(); while (c.eat(',')); }
        c.expect('}');
        return;
      }
      // Address initialisers may be `generic(sym)` or `sym+off`.
      let text = c.next().v;
      if (text === '-') text = '-' + c.next().v;
      if (c.is('(')) { c.next(); text = c.next().v; c.expect(')'); }
      if (c.is('+')) { c.next(); text += '+' + c.next().v; }
      init!.push(text);
    };
    flat();
  }
  c.expect(';');
  if (align === 0) align = typeSize(type) * vec || 1;
  return { space, name: nameTok.v, type, align, vec, count, unsized, extern: external, init };
}

function parseIntLit(t: Tok): number {
  const s = t.v.replace(/[uU]$/, '');
  const v = s.startsWith('0x') || s.startsWith('0X') ? parseInt(s.slice(2), 16) : parseInt(s, 10);
  if (!Number.isFinite(v)) throw new PtxParseError(`expected an integer, found '${t.v}'`, t.line);
  return v;
}

function parseParamList(c: Cursor): ParamDecl[] {
  const out: ParamDecl[] = [];
  c.expect('(');
  if (c.eat(')')) return out;
  do {
    const space = c.next();
    if (space.v !== '.param' && space.v !== '.reg') throw new PtxParseError(`expected .param, found '${space.v}'`, space.line);
    let align = 0;
    let type = '';
    while (c.peek()?.t === 'w' && c.peek()!.v.startsWith('.')) {
      const q = c.next().v;
      if (q === '.align') align = parseInt(c.next().v, 10);
      else if (TYPE_NAMES.has(q.slice(1))) type = q.slice(1);
      // .ptr/.global/.shared/.const/.local qualifiers do not change the layout.
    }
    const name = c.next().v;
    let count = 1;
    while (c.eat('[')) { count *= parseIntLit(c.next()); c.expect(']'); }
    const es = typeSize(type);
    if (!es) throw new PtxParseError(`parameter ${name} has no size`, c.line());
    if (align === 0) align = es;
    out.push({ name, type, align, size: es * count });
  } while (c.eat(','));
  c.expect(')');
  return out;
}

function parseFunction(c: Cursor, visible: boolean, external: boolean): FuncDecl {
  const kind = c.next().v === '.entry' ? 'entry' : 'func';
  let rets: ParamDecl[] = [];
  if (kind === 'func' && c.is('(')) rets = parseParamList(c);
  const name = c.next().v;
  const params = c.is('(') ? parseParamList(c) : [];
  const f: FuncDecl = { kind, name, visible, external, params, rets, regs: [], vars: [], body: [], maxntid: null, reqntid: null };
  // Performance directives before the body.
  while (c.peek()?.t === 'w' && c.peek()!.v.startsWith('.')) {
    const d = c.next().v;
    const nums: number[] = [];
    while (c.peek()?.t === 'n') { nums.push(parseIntLit(c.next())); if (!c.eat(',')) break; }
    if (d === '.maxntid') f.maxntid = nums;
    else if (d === '.reqntid') f.reqntid = nums;
  }
  if (c.eat(';')) { f.external = true; return f; }
  c.expect('{');
  parseBody(c, f);
  return f;
}

function parseBody(c: Cursor, f: FuncDecl): void {
  let depth = 1;
  // Inline-asm `{ .reg .u32 r0; ... }` blocks declare registers that shadow outer ones and repeat per block:
  // each nested declaration gets a function-unique name, and operands inside the block are renamed to it.
  // Call blocks' `.param` slots (param0, retval0 in every block) are renamed the same way, so each call's
  // slots are distinct symbols (the inliner turns them into registers).
  const scopes: Map<string, Scoped>[] = [];
  let scopeSeq = 0;
  while (depth > 0) {
    const t = c.next();
    if (t.v === '{' && t.t === 'p') { depth++; scopes.push(new Map()); scopeSeq++; continue; }
    if (t.v === '}' && t.t === 'p') { depth--; scopes.pop(); continue; }
    if (t.t === 'w' && (t.v === '.pragma' || t.v === '.loc' || t.v === '.file')) { c.i--; skipDirective(c); continue; }
    if (t.t === 'w' && t.v === '.reg') {
      const scope = scopes[scopes.length - 1];
      parseRegs(c, f.regs, scope ? (n) => { const u = `${n}$${scopeSeq}`; scope.set(n, { name: u, reg: true }); return u; } : null);
      continue;
    }
    if (t.t === 'w' && (t.v === '.local' || t.v === '.shared' || t.v === '.param' || t.v === '.global' || t.v === '.const')) {
      c.i--;
      const v = parseVar(c, false);
      const scope = scopes[scopes.length - 1];
      if (scope && v.space === 'param') { const u = `${v.name}$${scopeSeq}`; scope.set(v.name, { name: u, reg: false }); v.name = u; }
      f.vars.push(v);
      continue;
    }
    if (t.t === 'w' && c.is(':')) { c.next(); f.body.push({ label: t.v, line: t.line }); continue; }
    // An indirect call's prototype only restates the callee's signature, which the compiler reads from the
    // callee itself.
    if (t.t === 'w' && t.v === '.callprototype') { c.skipStatement(); continue; }
    c.i--;
    const ins = parseInstr(c);
    if (scopes.length) renameScoped(ins, scopes);
    f.body.push(ins);
  }
}

interface Scoped { name: string; reg: boolean }

function renameScoped(ins: Instr, scopes: Map<string, Scoped>[]): void {
  const look = (n: string): Scoped | undefined => {
    for (let i = scopes.length - 1; i >= 0; i--) { const u = scopes[i].get(n); if (u !== undefined) return u; }
    return undefined;
  };
  const fix = (o: Operand): Operand => {
    switch (o.k) {
      case 'reg': case 'sym': { const u = look(o.name); return u === undefined ? o : { k: u.reg ? 'reg' : 'sym', name: u.name }; }
      case 'addr': { if (o.base === null) return o; const u = look(o.base); return u === undefined ? o : { ...o, base: u.name }; }
      case 'vec': case 'list': return { ...o, elems: o.elems.map(fix) };
      case 'pair': return { k: 'pair', a: fix(o.a), b: fix(o.b) };
      case 'not': return { k: 'not', inner: fix(o.inner) };
      default: return o;
    }
  };
  ins.args = ins.args.map(fix);
  if (ins.guard) { const u = look(ins.guard.reg); if (u !== undefined) ins.guard = { reg: u.name, neg: ins.guard.neg }; }
}

function parseRegs(c: Cursor, regs: RegDecl[], rename: ((name: string) => string) | null): void {
  let type = '';
  while (c.peek()?.t === 'w' && c.peek()!.v.startsWith('.')) {
    const q = c.next().v.slice(1);
    if (TYPE_NAMES.has(q)) type = q;
    else if (q === 'v2' || q === 'v4') throw new PtxParseError('vector registers are not supported', c.line());
  }
  if (!type) throw new PtxParseError('.reg without a type', c.line());
  const add = (name: string): void => { regs.push({ name: rename ? rename(name) : name, type }); };
  do {
    const name = c.next().v;
    if (c.eat('<')) {
      const n = parseIntLit(c.next());
      c.expect('>');
      for (let i = 0; i < n; i++) add(name + i);
    } else add(name);
  } while (c.eat(','));
  c.expect(';');
}

function parseInstr(c: Cursor): Instr {
  const line = c.line();
  let guard: Instr['guard'] = null;
  if (c.eat('@')) {
    const neg = c.eat('!');
    guard = { reg: c.next().v, neg };
  }
  const opTok = c.next();
  if (opTok.t !== 'w') throw new PtxParseError(`expected an instruction, found '${opTok.v}'`, opTok.line);
  const args: Operand[] = [];
  if (!c.is(';')) {
    do args.push(parseOperand(c)); while (c.eat(','));
  }
  c.expect(';');
  return { op: opTok.v, parts: opTok.v.split('.'), guard, args, line };
}

function parseOperand(c: Cursor): Operand {
  const t = c.peek()!;
  let op: Operand;
  if (c.eat('[')) {
    let base: string | null = null;
    let off = 0;
    if (c.peek()?.t === 'w') {
      base = c.next().v;
      // Texture and surface operands: [handle, {coordinates}] (tex, tld4, suld, sust).
      if (c.eat(',')) {
        const elems: Operand[] = [base.startsWith('%') ? { k: 'reg', name: base } : { k: 'sym', name: base }];
        do elems.push(parseOperand(c)); while (c.eat(','));
        c.expect(']');
        return { k: 'list', elems };
      }
    } else off = signedInt(c);
    while (c.is('+') || c.is('-')) {
      const neg = c.next().v === '-';
      const v = signedInt(c);
      off += neg ? -v : v;
    }
    c.expect(']');
    op = { k: 'addr', base, off };
  } else if (c.eat('{')) {
    const elems: Operand[] = [];
    if (!c.is('}')) { do elems.push(parseOperand(c)); while (c.eat(',')); }
    c.expect('}');
    op = { k: 'vec', elems };
  } else if (c.eat('(')) {
    const elems: Operand[] = [];
    if (!c.is(')')) { do elems.push(parseOperand(c)); while (c.eat(',')); }
    c.expect(')');
    op = { k: 'list', elems };
  } else if (c.eat('!')) {
    op = { k: 'not', inner: parseOperand(c) };
  } else if (c.is('-') && c.peek(1)?.t === 'n') {
    c.next();
    op = { k: 'imm', text: '-' + c.next().v };
  } else if (t.t === 'n') {
    c.next();
    op = { k: 'imm', text: t.v };
  } else if (t.t === 'w') {
    c.next();
    if (t.v === '_') op = { k: 'sink' };
    else if (t.v.startsWith('%')) op = { k: 'reg', name: t.v };
    else if (c.is('+') && c.peek(1)?.t === 'n') {
      // `sym+off` outside brackets (mov.u64 %rd, sym+4).
      c.next();
      op = { k: 'sym', name: `${t.v}+${parseIntLit(c.next())}` };
    } else op = { k: 'sym', name: t.v };
  } else {
    throw new PtxParseError(`unexpected '${t.v}' in operand`, t.line);
  }
  if (c.eat('|')) op = { k: 'pair', a: op, b: parseOperand(c) };
  return op;
}

function signedInt(c: Cursor): number {
  const neg = c.eat('-');
  const v = parseIntLit(c.next());
  return neg ? -v : v;
}

/** Kernel parameter layout exactly as the driver packs it (cudart-shim.md §4.2c). */
export function paramLayout(params: ParamDecl[]): { offsets: number[]; total: number } {
  let off = 0;
  const offsets: number[] = [];
  for (const p of params) {
    off = Math.ceil(off / p.align) * p.align;
    offsets.push(off);
    off += p.size;
  }
  return { offsets, total: off };
}

export type { Stmt };
