// Pure analysis behind the language server: finds the calls in Python (notebook cells, .py files) that cost a
// network round trip or a transfer per loop iteration on a remote GPU. Line-based with indentation tracking:
// cells are short and often not valid Python on their own (magics, partial code), so no full parser.

export type FindingKind = 'sync' | 'copy' | 'manyCopies';

export interface Finding {
  kind: FindingKind;
  line: number;        // 0-based
  start: number;       // columns, 0-based, end exclusive
  end: number;
  what: string;        // the call as written, e.g. ".item()"
  loopLine: number;    // line of the innermost enclosing loop header
  /** Iterations of the outermost enclosing loops when every one is `range(<literal>)`; else undefined. */
  iterations?: number;
  copies?: number;     // manyCopies: transfers found in that loop body
}

interface Rule { kind: 'sync' | 'copy'; re: RegExp }

// Each pattern's match is what gets underlined.
const RULES: Rule[] = [
  { kind: 'sync', re: /\.item\(\s*\)/g },
  { kind: 'sync', re: /\.cpu\(\s*\)/g },
  { kind: 'sync', re: /\.numpy\(\s*\)/g },
  { kind: 'sync', re: /\.tolist\(\s*\)/g },
  { kind: 'sync', re: /\.to\(\s*["']cpu["']/g },
  { kind: 'sync', re: /\btorch\.cuda\.synchronize\s*\(/g },
  { kind: 'sync', re: /\bcudaDeviceSynchronize\s*\(/g },
  { kind: 'sync', re: /\bcuCtxSynchronize\s*\(/g },
  { kind: 'sync', re: /\bcuda\.synchronize\s*\(/g },
  { kind: 'sync', re: /\.synchronize\s*\(\s*\)/g },
  { kind: 'sync', re: /\bcp\.asnumpy\s*\(/g },
  { kind: 'copy', re: /\.cuda\(\s*\)/g },
  { kind: 'copy', re: /\.to\(\s*(["']cuda[^"']*["']|device\b|dev\b)/g },
  { kind: 'copy', re: /\bcudaMemcpy\w*\s*\(/g },
  { kind: 'copy', re: /\bcuMemcpy\w*\s*\(/g },
  { kind: 'copy', re: /\bcp\.asarray\s*\(/g },
  { kind: 'copy', re: /\bcuda\.to_device\s*\(/g },
  { kind: 'copy', re: /\btorch\.(tensor|as_tensor|from_numpy)\s*\([^)]*device\s*=\s*["']?cuda/g },
];

/** A loop body with at least this many transfers also gets a "batch them" finding on its header. */
export const MANY_COPIES = 3;

const LOOP = /^(\s*)(?:async\s+)?(for|while)\b.*:\s*$/;
const RANGE = /\bin\s+(?:\w+\()?range\(\s*(?:(\d[\d_]*)\s*,\s*)?(\d[\d_]*)\s*(?:,\s*(\d[\d_]*)\s*)?\)/;

/** Code part of a line: comments removed, string contents blanked (same length, so columns stay right). */
export function codeOf(line: string): string {
  let out = '';
  let q: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '\\') { out += '  '; i++; continue; }
      if (c === q) { q = undefined; out += c; } else out += ' ';
      continue;
    }
    if (c === '#') break;
    if (c === '"' || c === "'") q = c;
    out += c;
  }
  return out;
}

function rangeCount(header: string): number | undefined {
  const m = RANGE.exec(header);
  if (!m) return undefined;
  const n = (s: string | undefined) => (s === undefined ? undefined : Number(s.replaceAll('_', '')));
  const a = n(m[1]);
  const b = n(m[2])!;
  const step = n(m[3]) ?? 1;
  const count = a === undefined ? b : Math.ceil((b - a) / step);
  return step > 0 && count > 0 ? count : undefined;
}

interface Loop { indent: number; line: number; iterations?: number; copies: number }

export function analyze(text: string): Finding[] {
  const lines = text.split(/\r?\n/);
  const out: Finding[] = [];
  const loops: Loop[] = [];
  const closeLoop = (l: Loop) => {
    if (l.copies >= MANY_COPIES) {
      const hdr = lines[l.line];
      const start = hdr.length - hdr.trimStart().length;
      out.push({ kind: 'manyCopies', line: l.line, start, end: hdr.trimEnd().length, what: hdr.trim(), loopLine: l.line, iterations: l.iterations, copies: l.copies });
    }
  };
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = lines[ln];
    const code = codeOf(raw);
    if (code.trim() === '' ) continue;
    // IPython magics and shell escapes are not Python; they neither open nor close blocks.
    if (/^\s*[%!]/.test(code)) continue;
    const indent = code.length - code.trimStart().length;
    while (loops.length && loops[loops.length - 1].indent >= indent) closeLoop(loops.pop()!);
    const header = LOOP.exec(code);
    if (header) {
      loops.push({ indent, line: ln, iterations: rangeCount(code), copies: 0 });
      continue;
    }
    if (!loops.length) continue;
    const inner = loops[loops.length - 1];
    let iterations: number | undefined = 1;
    for (const l of loops) iterations = iterations !== undefined && l.iterations !== undefined ? iterations * l.iterations : undefined;
    const seen: [number, number][] = [];
    // Patterns see string contents (`.to("cuda")`) but not comments; a match starting inside a string is skipped.
    const visible = raw.slice(0, code.length);
    for (const rule of RULES) {
      rule.re.lastIndex = 0;
      for (let m = rule.re.exec(visible); m; m = rule.re.exec(visible)) {
        const start = m.index;
        const end = start + m[0].length;
        if (code[start] !== visible[start]) continue;
        // `.synchronize()` also matches `torch.cuda.synchronize(`: keep only the first, longer match per spot.
        if (seen.some(([s, e]) => start < e && end > s)) continue;
        seen.push([start, end]);
        out.push({ kind: rule.kind, line: ln, start, end, what: raw.slice(start, end), loopLine: inner.line, iterations });
        if (rule.kind === 'copy') for (const l of loops) l.copies++;
      }
    }
  }
  while (loops.length) closeLoop(loops.pop()!);
  return out.sort((a, b) => a.line - b.line || a.start - b.start);
}

export interface LiveStats { gpuType?: string; rttP50Ms?: number; rttP99Ms?: number; h2dBps?: number }

export function diagnosticMessage(f: Finding): string {
  switch (f.kind) {
    case 'sync': return `${f.what} inside a loop waits for the remote GPU every iteration (one network round trip each). Move it out of the loop or accumulate on the device.`;
    case 'copy': return `${f.what} inside a loop moves data between host and remote GPU every iteration. Upload once before the loop, or batch.`;
    case 'manyCopies': return `${f.copies} host↔device transfers in this loop body: each small copy pays the network latency. Batch them into one tensor/buffer.`;
  }
}

const ms = (v: number) => (v < 1 ? `${v.toFixed(2)} ms` : v < 1000 ? `${v.toFixed(1)} ms` : `${(v / 1000).toFixed(2)} s`);

/** Hover text: the diagnosis plus what it costs now, from the proxy's live round-trip times. */
export function hoverMarkdown(f: Finding, live: LiveStats | undefined): string {
  const lines = [`**Remote GPU** — ${diagnosticMessage(f)}`, ''];
  const rtt = live?.rttP50Ms;
  if (rtt === undefined || !Number.isFinite(rtt)) {
    lines.push('_No live round-trip time yet: the kernel-proxy has not measured one._');
    return lines.join('\n');
  }
  lines.push(`Now${live?.gpuType ? ` on ${live.gpuType}` : ''}: round trip p50 **${ms(rtt)}**${live?.rttP99Ms !== undefined && Number.isFinite(live.rttP99Ms) ? `, p99 ${ms(live.rttP99Ms)}` : ''}.`);
  if (f.kind !== 'manyCopies') {
    if (f.iterations !== undefined) {
      lines.push(`This loop runs ${f.iterations.toLocaleString('en-US')} times: at least **${ms(rtt * f.iterations)}** of waiting for this call alone.`);
    } else {
      lines.push(`Every 1,000 iterations cost at least **${ms(rtt * 1000)}** of waiting for this call.`);
    }
  } else if (f.copies !== undefined) {
    const per = rtt * f.copies;
    lines.push(`${f.copies} transfers per iteration ≈ ${ms(per)} per iteration${f.iterations !== undefined ? `, **${ms(per * f.iterations)}** for the whole loop` : ''}.`);
  }
  return lines.join('\n');
}
