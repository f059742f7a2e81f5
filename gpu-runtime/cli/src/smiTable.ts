// Renders a pool INVENTORY reply as an nvidia-smi style table (pure, so tests can check it exactly).

export interface SmiInventory {
  types?: Array<{ type: string; name: string; memory: number; total: number; free: number; sessions: number; queued: number }>;
  devices?: Array<{ index: number; type: string; name: string; memory: number; memUsed: number; sessions: string[] | number }>;
  sessions?: number | unknown[];
  queued?: number | unknown[];
}

const MIB = 1024 * 1024;
const count = (v: number | unknown[] | undefined): number => (Array.isArray(v) ? v.length : typeof v === 'number' ? v : 0);
const pad = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
const lpad = (s: string, n: number): string => (s.length > n ? s.slice(0, n) : s.padStart(n));

export function formatSmi(inv: SmiInventory, source: string): string {
  const W = { gpu: 3, name: 22, type: 12, mem: 23, sess: 18 };
  const rule = (c: string, j: string): string => `${j}${c.repeat(W.gpu + 2)}${j}${c.repeat(W.name + 2)}${j}${c.repeat(W.type + 2)}${j}${c.repeat(W.mem + 2)}${j}${c.repeat(W.sess + 2)}${j}`;
  const width = rule('-', '+').length;
  const row = (a: string, b: string, c: string, d: string, e: string): string => `| ${lpad(a, W.gpu)} | ${pad(b, W.name)} | ${pad(c, W.type)} | ${lpad(d, W.mem)} | ${pad(e, W.sess)} |`;
  const out: string[] = [];
  out.push(`+${'-'.repeat(width - 2)}+`);
  out.push(`| ${pad(`rgpu smi   pool ${source}`, width - 4)} |`);
  out.push(rule('-', '+'));
  out.push(row('GPU', 'Name', 'Type', 'Memory-Usage', 'Sessions'));
  out.push(rule('=', '|'));
  const devices = inv.devices ?? [];
  if (devices.length === 0) out.push(`| ${pad('no GPUs in this pool', width - 4)} |`);
  for (const d of devices) {
    const sessions = Array.isArray(d.sessions) ? (d.sessions.length ? d.sessions.join(',') : '-') : String(d.sessions ?? 0);
    const mem = `${Math.round(d.memUsed / MIB)}MiB / ${Math.round(d.memory / MIB)}MiB`;
    out.push(row(String(d.index), d.name, d.type, mem, sessions));
  }
  out.push(rule('-', '+'));
  out.push('');
  out.push('Type          Total  Free  Sessions  Queued');
  for (const t of inv.types ?? []) {
    out.push(`${pad(t.type, 12)}  ${lpad(String(t.total), 5)}  ${lpad(String(t.free), 4)}  ${lpad(String(t.sessions), 8)}  ${lpad(String(t.queued), 6)}`);
  }
  out.push('');
  out.push(`Sessions: ${count(inv.sessions)} attached, ${count(inv.queued)} queued`);
  return `${out.join('\n')}\n`;
}
