// The kernel-proxy's JSON-RPC interface as fixed in docs/contracts.md ("kernel-proxy JSON-RPC"), plus the runtime
// checks the extension applies to what it receives: the proxy is another process and may be any version.
import { BadMessageError } from '../common/errors';

export const Methods = {
  status: 'rgpu/status',
  inventory: 'rgpu/inventory',
  setGpuType: 'rgpu/setGpuType',
  setPool: 'rgpu/setPool',
  stats: 'rgpu/stats',
  ping: 'rgpu/ping',
  shutdown: 'rgpu/shutdown',
  statsChanged: 'rgpu/statsChanged',
} as const;

export interface SessionInfo {
  id: string; pid?: number; argv0?: string; gpuType?: string; device?: string;
  state: 'attached' | 'queued'; queuePosition?: number;
  /** Its large copies take a data lane straight to the pool. */
  lane?: boolean;
}

export interface ProxyStatus {
  /** embedded: the proxy's own emulated server (its url is a private Unix socket, not worth showing). */
  pool: { url: string; connected: boolean; embedded?: boolean; error?: string };
  gpuType: string;
  sessions: SessionInfo[];
  rttMs?: number;
}

export interface GpuTypeInfo { type: string; name: string; memory: number; total: number; free: number; sessions: number; queued: number }
export interface Inventory { types: GpuTypeInfo[]; devices?: unknown[]; sessions?: number; queued?: number }

export interface OpStats { count: number; bytes: number; timeMs: number }
export interface Stats {
  t: number; uptimeMs: number;
  bytesToDevice: number; bytesFromDevice: number;
  h2dBps: number; d2hBps: number; opsPerSec: number;
  ops: Record<string, OpStats>;
  rtt: { lastMs: number; p50Ms: number; p99Ms: number; samples: number };
  queueDepth: number; errors: number; sessions: number; gpuType: string;
  device?: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);

/** Normalises a Stats payload: missing numbers become 0 so renderers never see undefined; non-objects throw. */
export function parseStats(v: unknown): Stats {
  if (!isObj(v)) throw new BadMessageError('rgpu/stats: expected an object');
  const rtt = isObj(v.rtt) ? v.rtt : {};
  const ops: Record<string, OpStats> = {};
  if (isObj(v.ops)) {
    for (const [name, o] of Object.entries(v.ops)) {
      if (isObj(o)) ops[name] = { count: num(o.count), bytes: num(o.bytes), timeMs: num(o.timeMs) };
    }
  }
  return {
    t: num(v.t, Date.now()), uptimeMs: num(v.uptimeMs),
    bytesToDevice: num(v.bytesToDevice), bytesFromDevice: num(v.bytesFromDevice),
    h2dBps: num(v.h2dBps), d2hBps: num(v.d2hBps), opsPerSec: num(v.opsPerSec),
    ops,
    rtt: { lastMs: num(rtt.lastMs, NaN), p50Ms: num(rtt.p50Ms, NaN), p99Ms: num(rtt.p99Ms, NaN), samples: num(rtt.samples) },
    queueDepth: num(v.queueDepth), errors: num(v.errors), sessions: num(v.sessions), gpuType: str(v.gpuType),
    device: v.device,
  };
}

export function parseStatus(v: unknown): ProxyStatus {
  if (!isObj(v)) throw new BadMessageError('rgpu/status: expected an object');
  const pool = isObj(v.pool) ? v.pool : {};
  const sessions = Array.isArray(v.sessions) ? v.sessions.filter(isObj).map((s): SessionInfo => ({
    id: str(s.id), pid: typeof s.pid === 'number' ? s.pid : undefined, argv0: str(s.argv0) || undefined,
    gpuType: str(s.gpuType) || undefined, device: typeof s.device === 'string' ? s.device : undefined,
    state: s.state === 'queued' ? 'queued' : 'attached',
    queuePosition: typeof s.queuePosition === 'number' ? s.queuePosition : undefined,
  })) : [];
  return {
    pool: { url: str(pool.url), connected: pool.connected === true, embedded: pool.embedded === true, error: typeof pool.error === 'string' ? pool.error : undefined },
    gpuType: str(v.gpuType), sessions,
    rttMs: typeof v.rttMs === 'number' ? v.rttMs : undefined,
  };
}

export function parseInventory(v: unknown): Inventory {
  if (!isObj(v) || !Array.isArray(v.types)) throw new BadMessageError('rgpu/inventory: expected {types: [...]}');
  return {
    types: v.types.filter(isObj).map((t) => ({
      type: str(t.type), name: str(t.name, str(t.type)), memory: num(t.memory), total: num(t.total),
      free: num(t.free), sessions: num(t.sessions), queued: num(t.queued),
    })).filter((t) => t.type !== ''),
    devices: Array.isArray(v.devices) ? v.devices : undefined,
    sessions: typeof v.sessions === 'number' ? v.sessions : undefined,
    queued: typeof v.queued === 'number' ? v.queued : undefined,
  };
}
