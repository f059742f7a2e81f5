import * as assert from 'node:assert/strict';
import { parseStats, parseStatus, type ProxyStatus } from '../../extension/src/proxy/protocol';
import { statusView } from '../../extension/src/status/statusModel';
import { GpuStatusBar } from '../../extension/src/status/statusBar';
import { createFakeVscode } from './fakeVscode';

const status = (over: Partial<ProxyStatus> = {}): ProxyStatus => parseStatus({
  pool: { url: 'tcp://127.0.0.1:7447', connected: true }, gpuType: 'T4',
  sessions: [{ id: 's-1', pid: 7, argv0: 'python3', state: 'attached', device: 'Tesla T4' }], rttMs: 0.5, ...over,
});
const stats = (p50: number, p99: number) => parseStats({ t: 1, rtt: { lastMs: p50, p50Ms: p50, p99Ms: p99, samples: 10 }, gpuType: 'T4', h2dBps: 1 << 20 });

describe('extension status bar model', () => {
  it('shows GPU type and median latency', () => {
    const v = statusView({ proxy: 'running', status: status(), stats: stats(0.42, 0.9), warnLatencyMs: 5 });
    assert.equal(v.text, '$(server) T4 · 0.42 ms');
    assert.equal(v.severity, 'ok');
    assert.match(v.tooltip, /p50 0\.42 ms · p99 0\.90 ms/);
    assert.match(v.tooltip, /python3 \(pid 7\): Tesla T4/);
  });

  it('warns when p99 exceeds the threshold or p50 half of it', () => {
    assert.equal(statusView({ proxy: 'running', status: status(), stats: stats(0.5, 12), warnLatencyMs: 5 }).severity, 'warning');
    assert.equal(statusView({ proxy: 'running', status: status(), stats: stats(3, 4), warnLatencyMs: 5 }).severity, 'warning');
    assert.equal(statusView({ proxy: 'running', status: status(), stats: stats(2, 4), warnLatencyMs: 5 }).severity, 'ok');
  });

  it('falls back to the status round trip before any stats', () => {
    const v = statusView({ proxy: 'running', status: status({ rttMs: 12.3 }), warnLatencyMs: 5 });
    assert.equal(v.text, '$(server) T4 · 12 ms');
  });

  it('marks an unreachable pool as an error', () => {
    const v = statusView({ proxy: 'running', status: status({ pool: { url: 'tls://gpu:7447', connected: false, error: 'ECONNREFUSED' } }), warnLatencyMs: 5 });
    assert.equal(v.text, '$(server) T4 · unreachable');
    assert.equal(v.severity, 'error');
    assert.match(v.tooltip, /ECONNREFUSED/);
  });

  it('names the embedded server as such, not by its private socket path', () => {
    const v = statusView({ proxy: 'running', status: status({ pool: { url: 'unix:/run/user/1/remote-gpu/proxy.sock.pool-9-1', connected: true, embedded: true } }), warnLatencyMs: 5 });
    assert.match(v.tooltip, /Pool: `embedded \(emulated, on this machine\)` — connected/);
    assert.doesNotMatch(v.tooltip, /pool-9-1/);
    const remote = statusView({ proxy: 'running', status: status(), warnLatencyMs: 5 });
    assert.match(remote.tooltip, /Pool: `tcp:\/\/127\.0\.0\.1:7447`/);
  });

  it('shows the best queue position while waiting for a GPU', () => {
    const v = statusView({ proxy: 'running', warnLatencyMs: 5, status: status({ gpuType: 'A100-40GB', sessions: [
      { id: 'a', state: 'queued', queuePosition: 3 }, { id: 'b', state: 'queued', queuePosition: 2 }] }) });
    assert.equal(v.text, '$(watch) A100-40GB · queued #2');
    assert.equal(v.severity, 'warning');
  });

  it('reports a stopped proxy with its error', () => {
    const v = statusView({ proxy: 'stopped', proxyError: 'exited (code 3)', warnLatencyMs: 5 });
    assert.equal(v.severity, 'error');
    assert.match(v.tooltip, /exited \(code 3\)/);
  });

  it('GpuStatusBar maps severity to theme colours and the click to the right command', () => {
    const f = createFakeVscode();
    const bar = new GpuStatusBar(f.vs, 5);
    const item = f.statusItems[0];
    assert.equal(item.id, 'remoteGpu.status');
    assert.ok(item.visible);
    bar.set({ proxy: 'running', status: status(), stats: stats(0.5, 20) });
    assert.equal((item.backgroundColor as { id: string }).id, 'statusBarItem.warningBackground');
    assert.equal(item.command, 'remoteGpu.showStatistics');
    bar.set({ stats: stats(0.5, 1) });
    assert.equal(item.backgroundColor as unknown, undefined);
    bar.set({ proxy: 'stopped' });
    assert.equal((item.backgroundColor as { id: string }).id, 'statusBarItem.errorBackground');
    assert.equal(item.command, 'remoteGpu.restartProxy');
    bar.dispose();
    assert.ok(item.disposed);
  });
});

describe('extension status bar model without samples', () => {
  it('shows the ping and the pool default type instead of zeros', () => {
    const st = parseStatus({ pool: { url: 'tcp://127.0.0.1:1', connected: true }, gpuType: '', sessions: [], rttMs: 0 });
    const zero = parseStats({ t: 1, rtt: { lastMs: 0, p50Ms: 0, p99Ms: 0, samples: 0 }, gpuType: '' });
    const v = statusView({ proxy: 'running', status: st, stats: zero, warnLatencyMs: 5, gpuType: 'T4', pingMs: 2.77 });
    assert.equal(v.text, '$(server) T4 · 2.8 ms');
    assert.equal(v.severity, 'ok');
    assert.equal(statusView({ proxy: 'running', status: st, stats: zero, warnLatencyMs: 2, gpuType: 'T4', pingMs: 2.77 }).severity, 'warning');
    assert.equal(statusView({ proxy: 'running', status: st, stats: zero, warnLatencyMs: 5 }).text, '$(server) GPU · –');
  });
});
