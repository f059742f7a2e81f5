// What `nvidia-smi` prints, for the remote GPU: its table, `-L`, `-q` and the `--query-gpu` /
// `--query-compute-apps` CSV that scripts parse. Pure (the data comes in as an SmiView) so tests can check
// it exactly. Widths follow nvidia-smi 5xx; what a remote or emulated GPU cannot know (fan, temperature,
// power, clocks, utilisation) reads "N/A" / "[N/A]", as nvidia-smi itself prints for an unsupported field.

export interface SmiGpu {
  /** The index this process sees (CUDA device order), not the pool's. */
  index: number;
  name: string;
  type: string;
  uuid: string;
  cc: string;
  pciBusId: string;
  memTotal: number;
  memUsed: number;
  /** False: no session yet; this is the GPU type the process will be given at its first CUDA call. */
  leased: boolean;
}

export interface SmiProcess {
  gpu: number;
  pid: number;
  name: string;
  /** Bytes the session has allocated, where the pool says. */
  memUsed?: number;
}

export interface SmiView {
  gpus: SmiGpu[];
  processes: SmiProcess[];
  /** "13.0": the CUDA version the driver reports. */
  cudaVersion: string;
  /** Where the GPUs are, for the line under the table. */
  pool: string;
  now: Date;
}

export class SmiUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmiUsageError';
  }
}

const MIB = 1024 * 1024;
const mib = (n: number): number => Math.round(n / MIB);
const pad = (s: string, n: number): string => (s.length > n ? s.slice(0, n) : s.padEnd(n));
const lpad = (s: string, n: number): string => (s.length > n ? s.slice(0, n) : s.padStart(n));

/** "Wed Nov 25 11:50:00 2026", the date line nvidia-smi starts with. */
function ctime(d: Date): string {
  const [wd, mon, day, year, time] = d.toString().split(' ');
  return `${wd} ${mon} ${day.padStart(2)} ${time} ${year}`;
}

export function formatTable(v: SmiView): string {
  const sep = (c: string, l: string, r: string): string => `${l}${c.repeat(41)}+${c.repeat(24)}+${c.repeat(22)}${r}`;
  const full = (c: string, j = '+'): string => `${j}${c.repeat(89)}${j}`;
  const row = (a: string, b: string, c: string): string => `|${pad(a, 41)}|${pad(b, 24)}|${pad(c, 22)}|`;
  const out = [`${ctime(v.now)}       `, full('-'),
    `| ${pad('NVIDIA-SMI (Remote GPU)', 33)}${pad('Driver Version: N/A', 31)}${pad(`CUDA Version: ${v.cudaVersion}`, 23)} |`,
    sep('-', '|', '+'),
    row(` GPU  Name${lpad('Persistence-M', 30)} `, ` Bus-Id${lpad('Disp.A', 16)} `, ' Volatile Uncorr. ECC '),
    row(` Fan  Temp   Perf${lpad('Pwr:Usage/Cap', 23)} `, ` ${lpad('Memory-Usage', 22)} `, ' GPU-Util  Compute M. '),
    row('', '', ` ${lpad('MIG M.', 20)} `),
    sep('=', '|', '|')];
  for (const g of v.gpus) {
    out.push(row(` ${lpad(String(g.index), 3)}  ${pad(g.name, 30)}${lpad('N/A', 4)} `, ` ${pad(g.pciBusId, 16)}${lpad('N/A', 6)} `, ` ${lpad('N/A', 20)} `));
    out.push(row(` ${pad('N/A', 6)}${pad('N/A', 7)}${pad('N/A', 13)}${lpad('N/A /  N/A', 13)} `, ` ${lpad(`${mib(g.memUsed)}MiB / ${mib(g.memTotal)}MiB`, 22)} `, ` ${lpad('N/A', 6)}${lpad('Default', 14)} `));
    out.push(row('', '', ` ${lpad('N/A', 20)} `));
    out.push(sep('-', '+', '+'));
  }
  if (!v.gpus.length) out.push(full('-'));
  out.push(' '.repeat(91));
  out.push(full('-'));
  out.push(`| ${pad('Processes:', 87)} |`);
  out.push(`| ${pad(' GPU   GI   CI        PID   Type   Process name                              GPU Memory', 87)} |`);
  out.push(`| ${pad('       ID   ID                                                               Usage', 87)} |`);
  out.push(full('=', '|'));
  if (!v.processes.length) out.push(`| ${pad(' No running processes found', 87)} |`);
  for (const p of v.processes) {
    const mem = p.memUsed === undefined ? 'N/A' : `${mib(p.memUsed)}MiB`;
    out.push(`| ${pad(` ${lpad(String(p.gpu), 3)}   N/A  N/A  ${lpad(String(p.pid), 9)}      C   ${pad(p.name, 40)}${lpad(mem, 9)}`, 87)} |`);
  }
  out.push(full('-'));
  out.push(remoteLine(v));
  return `${out.join('\n')}\n`;
}

function remoteLine(v: SmiView): string {
  const waiting = v.gpus.filter((g) => !g.leased).map((g) => g.type);
  const lease = waiting.length ? `; no session yet: a ${waiting.join(', ')} is leased at the first CUDA call` : '';
  return `Remote GPU: pool ${v.pool}${lease}`;
}

export function formatList(v: SmiView): string {
  return v.gpus.map((g) => `GPU ${g.index}: ${g.name} (UUID: ${g.uuid})\n`).join('');
}

export function formatQuery(v: SmiView): string {
  const out = ['', '==============NVSMI LOG==============', '', `${pad('Timestamp', 42)}: ${ctime(v.now)}`,
    `${pad('Driver Version', 42)}: N/A`, `${pad('CUDA Version', 42)}: ${v.cudaVersion}`, '', `${pad('Attached GPUs', 42)}: ${v.gpus.length}`];
  for (const g of v.gpus) {
    out.push(`GPU ${g.pciBusId}`, `    ${pad('Product Name', 38)}: ${g.name}`, `    ${pad('GPU UUID', 38)}: ${g.uuid}`,
      `    ${pad('Minor Number', 38)}: ${g.index}`, `    ${pad('Compute Capability', 38)}: ${g.cc}`, '    FB Memory Usage',
      `        ${pad('Total', 34)}: ${mib(g.memTotal)} MiB`, `        ${pad('Used', 34)}: ${mib(g.memUsed)} MiB`,
      `        ${pad('Free', 34)}: ${mib(g.memTotal - g.memUsed)} MiB`, `    ${pad('Remote GPU type', 38)}: ${g.type}${g.leased ? '' : ' (not leased yet)'}`);
  }
  out.push('', remoteLine(v));
  return `${out.join('\n')}\n`;
}

type Field = { unit?: string; get: (g: SmiGpu, v: SmiView) => string | number };
const NA: Field = { get: () => '[N/A]' };
const memField = (f: (g: SmiGpu) => number): Field => ({ unit: 'MiB', get: (g) => mib(f(g)) });

/** --query-gpu fields; those a remote GPU cannot know answer [N/A], as nvidia-smi does for unsupported ones. */
const GPU_FIELDS: Record<string, Field> = {
  timestamp: { get: (_g, v) => v.now.toISOString().replace('T', ' ').replace('Z', '').replace(/-/g, '/') },
  driver_version: NA,
  count: { get: (_g, v) => v.gpus.length },
  name: { get: (g) => g.name },
  'gpu_name': { get: (g) => g.name },
  index: { get: (g) => g.index },
  uuid: { get: (g) => g.uuid },
  'gpu_uuid': { get: (g) => g.uuid },
  serial: NA,
  'pci.bus_id': { get: (g) => g.pciBusId },
  gpu_bus_id: { get: (g) => g.pciBusId },
  compute_cap: { get: (g) => g.cc },
  'memory.total': memField((g) => g.memTotal),
  'memory.used': memField((g) => g.memUsed),
  'memory.free': memField((g) => g.memTotal - g.memUsed),
  'memory.reserved': memField(() => 0),
  'utilization.gpu': { unit: '%', get: () => '[N/A]' },
  'utilization.memory': { unit: '%', get: () => '[N/A]' },
  'temperature.gpu': NA,
  'fan.speed': { unit: '%', get: () => '[N/A]' },
  'power.draw': { unit: 'W', get: () => '[N/A]' },
  'power.limit': { unit: 'W', get: () => '[N/A]' },
  pstate: NA,
  'clocks.sm': { unit: 'MHz', get: () => '[N/A]' },
  'clocks.mem': { unit: 'MHz', get: () => '[N/A]' },
  'clocks.max.sm': { unit: 'MHz', get: () => '[N/A]' },
  'persistence_mode': NA,
  'compute_mode': { get: () => 'Default' },
  'display_mode': NA,
  'mig.mode.current': NA,
};

type AppField = (p: SmiProcess, g: SmiGpu | undefined) => string | number;
const APP_FIELDS: Record<string, { unit?: string; get: AppField }> = {
  pid: { get: (p) => p.pid },
  process_name: { get: (p) => p.name },
  name: { get: (p) => p.name },
  used_memory: { unit: 'MiB', get: (p) => (p.memUsed === undefined ? '[N/A]' : mib(p.memUsed)) },
  used_gpu_memory: { unit: 'MiB', get: (p) => (p.memUsed === undefined ? '[N/A]' : mib(p.memUsed)) },
  gpu_uuid: { get: (_p, g) => g?.uuid ?? '[N/A]' },
  gpu_name: { get: (_p, g) => g?.name ?? '[N/A]' },
  gpu_bus_id: { get: (_p, g) => g?.pciBusId ?? '[N/A]' },
  timestamp: { get: () => new Date().toISOString() },
};

export interface CsvFormat { header: boolean; units: boolean }

/** `--format=csv[,noheader][,nounits]`. */
export function parseCsvFormat(s: string | undefined): CsvFormat {
  const parts = (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (parts[0] !== 'csv') throw new SmiUsageError(`--format must be csv[,noheader][,nounits], got "${s ?? ''}"`);
  for (const p of parts.slice(1)) if (p !== 'noheader' && p !== 'nounits') throw new SmiUsageError(`unknown --format option "${p}"`);
  return { header: !parts.includes('noheader'), units: !parts.includes('nounits') };
}

function csv<T>(names: string[], table: Record<string, { unit?: string; get: T }>, rows: Array<(f: T) => string | number>, fmt: CsvFormat): string {
  const fields = names.map((n) => {
    const f = table[n];
    if (!f) throw new SmiUsageError(`Field "${n}" is not a valid field to query.`);
    return { name: n, ...f };
  });
  const out: string[] = [];
  if (fmt.header) out.push(fields.map((f) => (f.unit ? `${f.name} [${f.unit}]` : f.name)).join(', '));
  for (const get of rows) {
    out.push(fields.map((f) => {
      const val = String(get(f.get));
      return f.unit && fmt.units && val !== '[N/A]' ? `${val} ${f.unit}` : val;
    }).join(', '));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export function queryGpus(v: SmiView, names: string[], fmt: CsvFormat): string {
  return csv(names, GPU_FIELDS, v.gpus.map((g) => (get: Field['get']) => get(g, v)), fmt);
}

export function queryApps(v: SmiView, names: string[], fmt: CsvFormat): string {
  return csv(names, APP_FIELDS, v.processes.map((p) => (get: AppField) => get(p, v.gpus.find((g) => g.index === p.gpu))), fmt);
}
