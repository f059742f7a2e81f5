// Pure mapping from what the proxy reports to what the status bar shows; the vscode glue is statusBar.ts.
import { formatBytes, formatMs, formatRate } from '../common/format';
import type { ProxyStatus, Stats } from '../proxy/protocol';

export type StatusSeverity = 'ok' | 'warning' | 'error';

export interface StatusView {
  text: string;
  severity: StatusSeverity;
  tooltip: string;   // markdown
}

export interface StatusInputs {
  proxy: 'starting' | 'running' | 'stopped';
  proxyError?: string;
  status?: ProxyStatus;
  stats?: Stats;
  /** p99 above this (or p50 above half of it) counts as degraded. */
  warnLatencyMs: number;
  /** GPU type to show when the proxy's status names none (the pool default, from the inventory). */
  gpuType?: string;
  /** Last rgpu/ping round trip: the latency shown before any session produced samples. */
  pingMs?: number;
}

/** Latency shown: the median of recent round trips; the last one when the proxy has no median yet. */
export function shownLatency(stats: Stats | undefined, status: ProxyStatus | undefined, pingMs?: number): number | undefined {
  if (stats && Number.isFinite(stats.rtt.p50Ms) && stats.rtt.samples > 0) return stats.rtt.p50Ms;
  // Without samples the proxy reports zeros, which would read as a perfect link: use a measured ping instead.
  if (status?.rttMs !== undefined && status.rttMs > 0) return status.rttMs;
  return pingMs;
}

export function statusView(i: StatusInputs): StatusView {
  if (i.proxy === 'stopped') {
    return { text: '$(server) Remote GPU $(error)', severity: 'error', tooltip: `**Remote GPU**: kernel-proxy stopped${i.proxyError ? `: ${i.proxyError}` : ''}\n\nClick to restart.` };
  }
  if (i.proxy === 'starting' || !i.status) {
    return { text: '$(sync~spin) Remote GPU', severity: 'ok', tooltip: '**Remote GPU**: starting the kernel-proxy…' };
  }
  const st = i.status;
  const attached = st.sessions.find((x) => x.state === 'attached' && x.gpuType)?.gpuType;
  const gpu = st.gpuType || attached || i.stats?.gpuType || i.gpuType || 'GPU';
  const lines: string[] = [`**Remote GPU** — ${gpu}`, ''];
  lines.push(`Pool: \`${st.pool.embedded || !st.pool.url ? 'embedded (emulated, on this machine)' : st.pool.url}\` — ${st.pool.connected ? 'connected' : `**unreachable**${st.pool.error ? ` (${st.pool.error})` : ''}`}`);
  if (!st.pool.connected) {
    return { text: `$(server) ${gpu} · unreachable`, severity: 'error', tooltip: lines.concat('', 'Click for statistics.').join('\n') };
  }
  const queued = st.sessions.filter((s) => s.state === 'queued');
  const lat = shownLatency(i.stats, st, i.pingMs);
  const s = i.stats;
  if (s) {
    lines.push(`Round trip: p50 ${formatMs(s.rtt.p50Ms)} · p99 ${formatMs(s.rtt.p99Ms)} · last ${formatMs(s.rtt.lastMs)}`);
    lines.push(`Host→device ${formatRate(s.h2dBps)} · device→host ${formatRate(s.d2hBps)} · ${Math.round(s.opsPerSec)} ops/s`);
    lines.push(`Moved: ${formatBytes(s.bytesToDevice)} up, ${formatBytes(s.bytesFromDevice)} down${s.errors ? ` · ${s.errors} errors` : ''}`);
  } else if (lat !== undefined) {
    lines.push(`Round trip: ${formatMs(lat)}`);
  }
  lines.push(`Sessions: ${st.sessions.length}${queued.length ? ` (${queued.length} queued)` : ''}`);
  for (const ss of st.sessions) {
    lines.push(`- ${ss.argv0 ?? 'process'}${ss.pid ? ` (pid ${ss.pid})` : ''}: ${ss.state === 'queued' ? `queued, position ${ss.queuePosition ?? '?'}` : ss.device ?? ss.gpuType ?? 'attached'}`);
  }
  lines.push('', 'Click for transfer statistics.');
  const tooltip = lines.join('\n');
  if (queued.length > 0) {
    const pos = Math.min(...queued.map((q) => q.queuePosition ?? Number.POSITIVE_INFINITY));
    return { text: `$(watch) ${gpu} · queued${Number.isFinite(pos) ? ` #${pos}` : ''}`, severity: 'warning', tooltip };
  }
  const sampled = s !== undefined && s.rtt.samples > 0;
  const degraded = (sampled && ((Number.isFinite(s.rtt.p99Ms) && s.rtt.p99Ms > i.warnLatencyMs) ||
    (Number.isFinite(s.rtt.p50Ms) && s.rtt.p50Ms > i.warnLatencyMs / 2))) || (!sampled && lat !== undefined && lat > i.warnLatencyMs);
  return { text: `$(server) ${gpu} · ${formatMs(lat)}`, severity: degraded ? 'warning' : 'ok', tooltip };
}
