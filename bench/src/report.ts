// The bench's output: one table row per figure, its ratio to the raw limit measured in the same run, and
// the goal it is judged against (a pass/fail column, never an assertion), plus bench/results.json.

export type Value = number | { unavailable: string };

export interface Row {
  key: string;
  label: string;
  value: Value;
  unit: string;
  /** Name of the results key this figure is divided by, and the divisor itself. */
  ratioTo?: { key: string; value: Value };
  goal?: { text: string; pass: (v: number, ratio: number | undefined) => boolean };
}

export interface RowResult {
  key: string;
  label: string;
  value: number | null;
  unit: string;
  unavailable?: string;
  ratio?: number | null;
  ratio_to?: string;
  goal?: string;
  pass?: boolean | null;
}

export function isNumber(v: Value | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export function evaluate(rows: Row[]): RowResult[] {
  return rows.map((r) => {
    const out: RowResult = { key: r.key, label: r.label, value: isNumber(r.value) ? r.value : null, unit: r.unit };
    if (!isNumber(r.value)) out.unavailable = typeof r.value === 'object' ? r.value.unavailable : 'not measured';
    let ratio: number | undefined;
    if (r.ratioTo) {
      out.ratio_to = r.ratioTo.key;
      ratio = isNumber(r.value) && isNumber(r.ratioTo.value) && r.ratioTo.value !== 0 ? r.value / r.ratioTo.value : undefined;
      out.ratio = ratio ?? null;
    }
    if (r.goal) {
      out.goal = r.goal.text;
      out.pass = isNumber(r.value) ? r.goal.pass(r.value, ratio) : null;
    }
    return out;
  });
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 3)}...`;
}

/** A Markdown table (also readable as plain text in a terminal). */
export function renderTable(results: RowResult[]): string {
  const head = ['figure', 'value', 'unit', 'ratio to raw', 'goal', 'pass'];
  const body = results.map((r) => [
    r.label,
    r.value === null ? `unavailable: ${shorten(r.unavailable ?? '', 90)}` : fmt(r.value),
    r.unit,
    r.ratio === undefined ? '' : r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x ${r.ratio_to}`,
    r.goal ?? '',
    r.pass === undefined ? '' : r.pass === null ? 'n/a' : r.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.min(110, Math.max(h.length, ...body.map((b) => b[i].length))));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
