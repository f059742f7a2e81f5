// The PTX module as the parser hands it to the compiler: declarations kept as written, instructions as
// opcode parts plus typed operands, so the compiler never re-reads text.

export type Operand =
  | { k: 'reg'; name: string }
  | { k: 'imm'; text: string }
  | { k: 'sym'; name: string }
  /** `[base+off]`; base null means an absolute address. */
  | { k: 'addr'; base: string | null; off: number }
  | { k: 'vec'; elems: Operand[] }
  /** `d|p`: a result plus a predicate result (shfl, setp). */
  | { k: 'pair'; a: Operand; b: Operand }
  | { k: 'not'; inner: Operand }
  | { k: 'sink' }
  /** `(a, b)`: call argument or return lists. */
  | { k: 'list'; elems: Operand[] };

export interface Instr {
  /** Full opcode as written, e.g. `ld.global.nc.v4.f32`. */
  op: string;
  /** The opcode split on dots: `['ld','global','nc','v4','f32']`. */
  parts: string[];
  guard: { reg: string; neg: boolean } | null;
  args: Operand[];
  line: number;
}

export interface Label {
  label: string;
  line: number;
}

export type Stmt = Instr | Label;

export function isLabel(s: Stmt): s is Label {
  return (s as Label).label !== undefined;
}

/** A `.global`/`.const`/`.shared`/`.local`/`.param` variable. */
export interface VarDecl {
  space: 'global' | 'const' | 'shared' | 'local' | 'param';
  name: string;
  /** Element type, e.g. `b8`, `f32`, `u64`. */
  type: string;
  align: number;
  /** Vector width (.v2/.v4) of the element, 1 otherwise. */
  vec: number;
  /** Element count after array dimensions; 0 for `[]` (extern/unsized). */
  count: number;
  unsized: boolean;
  extern: boolean;
  /** Initialiser elements as written (numbers, float literals or symbol names for address initialisers). */
  init: string[] | null;
}

export interface ParamDecl {
  name: string;
  type: string;
  align: number;
  /** Byte size (arrays: elements * element size). */
  size: number;
}

export interface RegDecl {
  name: string;
  type: string;
}

export interface FuncDecl {
  kind: 'entry' | 'func';
  name: string;
  visible: boolean;
  /** Declared only (`.extern .func ...;`): vprintf, __assertfail, malloc ... */
  external: boolean;
  params: ParamDecl[];
  rets: ParamDecl[];
  regs: RegDecl[];
  vars: VarDecl[];
  body: Stmt[];
  /** `.maxntid`, `.reqntid` if given. */
  maxntid: number[] | null;
  reqntid: number[] | null;
}

export interface PtxModule {
  version: number;
  target: string;
  addressSize: number;
  vars: VarDecl[];
  funcs: FuncDecl[];
}

/** The labels of `tbl: .branchtargets L0, L1, ...;`, or null. */
export function branchTargets(body: Stmt[], tbl: string): string[] | null {
  const i = body.findIndex((s) => isLabel(s) && s.label === tbl);
  const s = body[i + 1];
  if (i < 0 || !s || isLabel(s) || s.op !== '.branchtargets') return null;
  return s.args.map((a) => (a.k === 'sym' ? a.name : ''));
}

/** Byte size of a PTX fundamental type. */
export function typeSize(t: string): number {
  switch (t) {
    case 'pred': return 1;
    case 'b8': case 'u8': case 's8': return 1;
    case 'b16': case 'u16': case 's16': case 'f16': case 'bf16': return 2;
    case 'b32': case 'u32': case 's32': case 'f32': case 'f16x2': case 'bf16x2': case 'tf32': return 4;
    case 'b64': case 'u64': case 's64': case 'f64': return 8;
    case 'b128': return 16;
    default: return 0;
  }
}

export const TYPE_NAMES = new Set([
  'pred', 'b8', 'u8', 's8', 'b16', 'u16', 's16', 'f16', 'bf16', 'b32', 'u32', 's32', 'f32', 'f16x2', 'bf16x2',
  'tf32', 'b64', 'u64', 's64', 'f64', 'b128',
]);
