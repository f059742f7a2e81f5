// `nvidia-smi` for a process on Remote GPU (`rgpu nvidia-smi`; the kernel and `rgpu run` commands find it
// on PATH as `nvidia-smi`). Notebooks run `!nvidia-smi` out of habit and scripts parse
// `--query-gpu … --format=csv`; both should see the remote GPU rather than "command not found".
//
// What it shows: the GPUs of this process's sessions (the kernel-proxy's sessions whose pid is this process
// or one of its ancestors: `!nvidia-smi` runs in a child of the kernel); with none yet, the GPU type the
// process will be given at its first CUDA call. The process list is every session of the proxy on them.
import * as fs from 'node:fs';
import { runningProxySockets } from '../../../kernel-proxy/src/socketPath';
import { proxyRequest } from './proxyRequest';
import {
  formatList, formatQuery, formatTable, parseCsvFormat, queryApps, queryGpus, SmiUsageError, type SmiGpu, type SmiView,
} from './nvidiaSmiFormat';

export const NVIDIA_SMI_USAGE = `usage: nvidia-smi [-L] [-q] [-i N] [-l SEC] [--query-gpu=FIELDS --format=csv[,noheader][,nounits]]
                  [--query-compute-apps=FIELDS --format=csv[,…]]
  Remote GPU's nvidia-smi: the remote GPU of this process, from its kernel-proxy ($REMOTE_GPU_PROXY).
  Fields a remote or emulated GPU cannot know (temperature, power, clocks, utilisation) read [N/A].`;

/** nvidia-smi's exit status when it cannot reach the driver. */
export const EXIT_NO_DRIVER = 9;

interface ProxyStatus {
  pool?: { url?: string; embedded?: boolean };
  gpuType?: string;
  sessions?: Array<{ id: string; pid?: number; argv0?: string; gpuType?: string; state?: string }>;
}

interface InventoryDevice { index: number; type: string; name: string; memory: number; memUsed: number; uuid?: string; cc?: string; pciBusId?: string; cudaVersion?: string; sessions?: string[]; clients?: Array<{ session: string; memUsed?: number }> }
interface Inventory { types?: Array<{ type: string; name: string; memory: number }>; devices?: InventoryDevice[] }

/** pid and its ancestors, from /proc (empty where there is no /proc). */
export function ancestry(pid: number = process.pid): Set<number> {
  const out = new Set<number>();
  for (let p = pid; p > 1 && !out.has(p);) {
    out.add(p);
    try {
      // The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** The view of the proxy's answers that `pids` (this process and its ancestors) should see. */
export function viewOf(status: ProxyStatus, inv: Inventory, pids: Set<number>, now = new Date()): SmiView {
  const devices = inv.devices ?? [];
  const sessions = (status.sessions ?? []).filter((s) => s.state !== 'queued');
  const mine = sessions.filter((s) => s.pid !== undefined && pids.has(s.pid)).map((s) => s.id);
  const held = devices.filter((d) => d.sessions?.some((id) => mine.includes(id)));
  const toGpu = (d: InventoryDevice, index: number, leased: boolean): SmiGpu => ({
    index, name: d.name, type: d.type, uuid: d.uuid ?? '[N/A]', cc: d.cc ?? '[N/A]', pciBusId: d.pciBusId ?? '[N/A]',
    memTotal: d.memory, memUsed: leased ? d.memUsed : 0, leased,
  });
  // Not leased yet: the type this process will ask for (the proxy's choice, else the pool's first).
  const like = held.length ? undefined : devices.find((d) => d.type === (status.gpuType || inv.types?.[0]?.type));
  const gpus = like ? [toGpu(like, 0, false)] : held.map((d, i) => toGpu(d, i, true));
  const processes = held.flatMap((d, i) => sessions.filter((s) => d.sessions?.includes(s.id))
    .map((s) => ({ gpu: i, pid: s.pid ?? 0, name: s.argv0 ?? s.id, memUsed: d.clients?.find((c) => c.session === s.id)?.memUsed })));
  const pool = status.pool?.embedded ? 'embedded (emulated, on this machine)' : (status.pool?.url ?? '?');
  const cudaVersion = (held[0] ?? devices[0])?.cudaVersion ?? '[N/A]';
  return { gpus, processes, cudaVersion, pool, now };
}

interface SmiArgs { list: boolean; query: boolean; id?: number; queryGpu?: string[]; queryApps?: string[]; format?: string; loopS?: number; help: boolean }

/** nvidia-smi's own spelling: `--opt=value` or `--opt value`, and the short flags. */
export function parseNvidiaSmiArgs(argv: string[]): SmiArgs {
  const a: SmiArgs = { list: false, query: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new SmiUsageError(`${flag} needs a value`);
      return v;
    };
    const fields = (): string[] => value().split(',').map((f) => f.trim()).filter(Boolean);
    switch (flag) {
      case '-L': case '--list-gpus': a.list = true; break;
      case '-q': case '--query': a.query = true; break;
      case '-i': case '--id': a.id = Number(value()); break;
      case '-l': case '--loop': a.loopS = Number(value()); break;
      case '--query-gpu': a.queryGpu = fields(); break;
      case '--query-compute-apps': a.queryApps = fields(); break;
      case '--format': a.format = value(); break;
      case '-h': case '--help': a.help = true; break;
      default: throw new SmiUsageError(`option ${argv[i]} is not supported by Remote GPU's nvidia-smi`);
    }
  }
  if (a.id !== undefined && !(Number.isInteger(a.id) && a.id >= 0)) throw new SmiUsageError('-i needs a GPU index');
  if (a.loopS !== undefined && !(a.loopS > 0)) throw new SmiUsageError('-l needs a positive number of seconds');
  if ((a.queryGpu || a.queryApps) && a.format === undefined) throw new SmiUsageError('--query-gpu and --query-compute-apps need --format=csv');
  return a;
}

/** Renders what the arguments ask for. */
export function render(a: SmiArgs, v: SmiView): string {
  if (a.id !== undefined) {
    if (!v.gpus.some((g) => g.index === a.id)) throw new SmiUsageError(`No devices were found with index ${a.id}`);
    v = { ...v, gpus: v.gpus.filter((g) => g.index === a.id), processes: v.processes.filter((p) => p.gpu === a.id) };
  }
  if (a.queryGpu) return queryGpus(v, a.queryGpu, parseCsvFormat(a.format));
  if (a.queryApps) return queryApps(v, a.queryApps, parseCsvFormat(a.format));
  if (a.list) return formatList(v);
  if (a.query) return formatQuery(v);
  return formatTable(v);
}

export async function runNvidiaSmi(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  let a: SmiArgs;
  try {
    a = parseNvidiaSmiArgs(argv);
  } catch (e) {
    err(`${(e as Error).message}\n${NVIDIA_SMI_USAGE}\n`);
    return 2;
  }
  if (a.help) {
    out(`${NVIDIA_SMI_USAGE}\n`);
    return 0;
  }
  const socket = process.env.REMOTE_GPU_PROXY || (await runningProxySockets())[0];
  const pids = ancestry();
  // -l N: print again every N seconds until interrupted, as nvidia-smi does; the CSV header comes once.
  const again = { ...a, format: a.format && `${a.format.replace(/,\s*noheader/, '')},noheader` };
  for (let first = true; ; first = false) {
    if (!first) await new Promise((r) => setTimeout(r, a.loopS! * 1000));
    let status: ProxyStatus;
    let inv: Inventory;
    try {
      if (!socket) throw new Error('no kernel-proxy is running and REMOTE_GPU_PROXY is not set');
      [status, inv] = await Promise.all([
        proxyRequest(`${socket}.ctl`, 'rgpu/status') as Promise<ProxyStatus>,
        proxyRequest(`${socket}.ctl`, 'rgpu/inventory') as Promise<Inventory>,
      ]);
    } catch (e) {
      err(`NVIDIA-SMI has failed because it couldn't communicate with the remote GPU: ${(e as Error).message}\n`);
      return EXIT_NO_DRIVER;
    }
    try {
      out(render(first ? a : again, viewOf(status, inv, pids)));
    } catch (e) {
      if (!(e instanceof SmiUsageError)) throw e;
      err(`${e.message}\n`);
      return 2;
    }
    if (a.loopS === undefined) return 0;
  }
}
