// Static count of the thread-instructions a kernel executes, read from its PTX text. Used only when the
// emulator does not report its own count. It handles the shapes the bench's kernels are written in (see
// bench/cuda/emu_bench.cu): counted loops (label ... `@%p bra label`, trip count supplied by the caller)
// and forward branches guarded by `setp.<cmp>.s32 %p, <tid.x register>, <immediate>`. Any other forward
// branch is assumed not taken, which the result reports as `assumedFallThrough`.

export interface PtxCountOptions {
  /** Threads per block (x, y, z). */
  block: [number, number, number];
  /** Iterations of each counted loop, in the order the loops appear in the kernel. */
  loopTrips: number[];
}

export interface PtxCount {
  /** Thread-instructions one block executes. */
  perBlock: number;
  /** PTX instructions in the kernel body (static). */
  staticInstructions: number;
  /** Forward branches whose direction could not be derived and were assumed not taken. */
  assumedFallThrough: number;
}

export class PtxCountError extends Error {
  readonly code = 'RGPU_ERR_PTX_COUNT';
  constructor(message: string) {
    super(message);
    this.name = 'PtxCountError';
  }
}

interface Stmt {
  label?: string;
  text?: string;
}

function kernelBody(ptx: string, kernel: string): Stmt[] {
  const start = ptx.indexOf(`.entry ${kernel}(`);
  if (start < 0) throw new PtxCountError(`kernel ${kernel} not found in PTX`);
  const open = ptx.indexOf('{', ptx.indexOf(')', start));
  let depth = 0;
  let end = open;
  for (; end < ptx.length; end++) {
    if (ptx[end] === '{') depth++;
    else if (ptx[end] === '}' && --depth === 0) break;
  }
  const out: Stmt[] = [];
  for (const raw of ptx.slice(open + 1, end).split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (!line) continue;
    const label = /^(\$?[\w$]+):$/.exec(line);
    if (label) out.push({ label: label[1] });
    else if (!line.startsWith('.') && line.endsWith(';')) out.push({ text: line.slice(0, -1).trim() });
  }
  return out;
}

/** How many of `threads` thread indices t satisfy NOT (t <cmp> imm), i.e. fall through the branch. */
function fallThroughThreads(cmp: string, imm: number, threads: number): number {
  let n = 0;
  for (let t = 0; t < threads; t++) {
    const taken = cmp === 'gt' ? t > imm : cmp === 'ge' ? t >= imm : cmp === 'lt' ? t < imm : cmp === 'le' ? t <= imm : cmp === 'eq' ? t === imm : t !== imm;
    if (!taken) n++;
  }
  return n;
}

export function countThreadInstructions(ptx: string, kernel: string, opts: PtxCountOptions): PtxCount {
  const body = kernelBody(ptx, kernel);
  const threads = opts.block[0] * opts.block[1] * opts.block[2];
  const labelAt = new Map<string, number>();
  body.forEach((s, i) => s.label && labelAt.set(s.label, i));
  const tidRegs = new Set<string>();
  const tidPreds = new Map<string, { cmp: string; imm: number }>();
  // Per statement: multiplier from enclosing loops, and active threads from enclosing tid guards.
  const times = new Array<number>(body.length).fill(1);
  const active = new Array<number>(body.length).fill(threads);
  let loopIndex = 0;
  let assumedFallThrough = 0;
  body.forEach((s, i) => {
    if (!s.text) return;
    const mov = /^mov\.u32\s+(%r\d+),\s*%tid\.x$/.exec(s.text);
    if (mov && opts.block[1] === 1 && opts.block[2] === 1) tidRegs.add(mov[1]);
    const setp = /^setp\.(gt|ge|lt|le|eq|ne)\.s32\s+(%p\d+),\s*(%r\d+),\s*(-?\d+)$/.exec(s.text);
    if (setp && tidRegs.has(setp[3])) tidPreds.set(setp[2], { cmp: setp[1], imm: Number(setp[4]) });
    const bra = /^@(!?)(%p\d+)\s+bra(?:\.uni)?\s+([\w$]+)$/.exec(s.text);
    if (!bra) return;
    const target = labelAt.get(bra[3]);
    if (target === undefined) throw new PtxCountError(`branch to unknown label ${bra[3]}`);
    if (target < i) {
      const trips = opts.loopTrips[loopIndex++];
      if (trips === undefined) throw new PtxCountError(`kernel ${kernel} has more loops than trip counts given`);
      for (let j = target; j <= i; j++) times[j] *= trips;
      return;
    }
    const guard = tidPreds.get(bra[2]);
    if (!guard || bra[1] === '!') {
      assumedFallThrough++;
      return;
    }
    const n = fallThroughThreads(guard.cmp, guard.imm, threads);
    for (let j = i + 1; j < target; j++) active[j] = Math.min(active[j], n);
  });
  if (loopIndex !== opts.loopTrips.length) throw new PtxCountError(`kernel ${kernel} has ${loopIndex} loops, ${opts.loopTrips.length} trip counts given`);
  let perBlock = 0;
  let staticInstructions = 0;
  body.forEach((s, i) => {
    if (!s.text) return;
    staticInstructions++;
    perBlock += times[i] * active[i];
  });
  return { perBlock, staticInstructions, assumedFallThrough };
}
