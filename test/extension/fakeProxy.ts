// A stand-in kernel-proxy for the supervisor tests and the e2e fallback: answers the contract's rgpu/* methods
// over stdio with vscode-jsonrpc and sends rgpu/statsChanged on a timer. `test/crash` makes it exit(3).
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rpc: typeof JsonRpc = require('vscode-jsonrpc/node');

const intervalArg = process.argv.indexOf('--stats-interval');
const intervalMs = intervalArg > 0 ? Number(process.argv[intervalArg + 1]) : 200;
const types = [
  { type: 'T4', name: 'Tesla T4', memory: 16106127360, total: 2, free: 1, sessions: 1, queued: 0 },
  { type: 'A100-40GB', name: 'NVIDIA A100-SXM4-40GB', memory: 42949672960, total: 1, free: 0, sessions: 1, queued: 2 },
];
let gpuType = 'T4';
let pool = { url: '', connected: true } as { url: string; connected: boolean; error?: string };
let tick = 0;
const started = Date.now();

const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(process.stdin), new rpc.StreamMessageWriter(process.stdout));
const stats = () => ({
  t: Date.now(), uptimeMs: Date.now() - started, bytesToDevice: tick * 4 << 20, bytesFromDevice: tick * 1 << 20,
  h2dBps: (4 << 20) * (1 + (tick % 3)), d2hBps: 1 << 20, opsPerSec: 100 + tick,
  ops: { LAUNCH: { count: tick * 10, bytes: 0, timeMs: tick * 0.5 }, MEMCPY_HTOD: { count: tick, bytes: tick * 4 << 20, timeMs: tick * 2 } },
  rtt: { lastMs: 0.4, p50Ms: 0.42, p99Ms: 0.9, samples: tick }, queueDepth: tick % 4, errors: 0, sessions: 1, gpuType,
});
conn.onRequest('rgpu/status', () => ({ pool, gpuType, sessions: [{ id: 's-1', pid: 42, argv0: 'python3', gpuType, device: `Tesla ${gpuType}`, state: 'attached' }], rttMs: 0.42 }));
conn.onRequest('rgpu/inventory', () => ({ types, devices: [], sessions: 2, queued: 2 }));
conn.onRequest('rgpu/setGpuType', (p: { type: string }) => { gpuType = p.type; return { type: gpuType }; });
conn.onRequest('rgpu/setPool', (p: { url: string; token?: string }) => {
  pool = { url: p.url, connected: p.token === 'good-token' || !p.url.startsWith('tls'), error: p.token === 'good-token' ? undefined : 'bad token' };
  return { ok: pool.connected };
});
conn.onRequest('rgpu/stats', () => stats());
conn.onRequest('rgpu/ping', () => ({ rttMs: 0.42 }));
conn.onRequest('rgpu/shutdown', () => { setTimeout(() => process.exit(0), 10); return {}; });
conn.onRequest('test/crash', () => { process.exit(3); });
conn.onRequest('test/lastPool', () => pool);
conn.onClose(() => process.exit(0));
conn.listen();
setInterval(() => { tick++; void conn.sendNotification('rgpu/statsChanged', stats()); }, intervalMs);
