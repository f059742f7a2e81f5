// The typed message union between the statistics webview (media/stats.js) and the extension.
import { BadMessageError } from '../common/errors';
import type { Stats, ProxyStatus } from '../proxy/protocol';

/** A compact sample per tick: the webview keeps its own bounded rings of these. */
export interface Sample { t: number; h2d: number; d2h: number; ops: number; p50: number; p99: number; queue: number }

export type ToWebview =
  | { type: 'history'; samples: Sample[] }
  | { type: 'stats'; sample: Sample; stats: Stats }
  | { type: 'status'; status: ProxyStatus | undefined; proxy: string; gpuType: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'command'; command: 'switchGpu' | 'connectPool' | 'restartProxy' };

const COMMANDS = new Set(['switchGpu', 'connectPool', 'restartProxy']);

/** Validates a message from the webview; anything else is rejected (the webview is a less trusted context). */
export function parseFromWebview(m: unknown): FromWebview {
  if (typeof m !== 'object' || m === null) throw new BadMessageError('webview message: not an object');
  const o = m as Record<string, unknown>;
  if (o.type === 'ready') return { type: 'ready' };
  if (o.type === 'command' && typeof o.command === 'string' && COMMANDS.has(o.command)) {
    return { type: 'command', command: o.command as 'switchGpu' };
  }
  throw new BadMessageError(`webview message: unknown ${JSON.stringify(o.type)}`);
}

export function sampleOf(s: Stats): Sample {
  const f = (v: number) => (Number.isFinite(v) ? v : 0);
  return { t: s.t, h2d: f(s.h2dBps), d2h: f(s.d2hBps), ops: f(s.opsPerSec), p50: f(s.rtt.p50Ms), p99: f(s.rtt.p99Ms), queue: f(s.queueDepth) };
}
